# cython: boundscheck=False
# (No per-index checks in the loops: the constructor checks every weight shape, the pixel
# coordinates are checked on entry to predict/update, and every other index is bounded by
# the plane's width or the layer widths fixed at construction.)
# The exact Row LSTM of the pixelrnn model, computed once per pixel along wavefronts
# (neuralzip/models/pixelrnn.py explains the network and the decoding order).

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int16_t, int32_t, int64_t
from neuralzip.kernels.gates cimport ONE, ONE_BITS, Z_MAX, dot, rescale, sigmoid, tanh, times
from neuralzip.kernels.primitives cimport clip

cdef enum:
    PIXEL_STEP = 32  # a pixel enters as (value - 128) * 32, in 1/ONE
    CELL_LIMIT = 8 * ONE  # the cell state is clipped to +-8.0
    IN = 3  # channels of a plane



cdef class RowLstm:
    """The Row LSTM layers of one plane of height x width pixels.

    layers: per layer l, (w, b, m, s) of its gates: w [4C, 2 * Cin + 3C] int16 reads the layer
    below at (i, j - 1) and (i, j) (for l = 0 the pixels (i, j - 2) and (i, j - 1)), then this
    layer's state in the row above at j - 1, j, j + 1; the rescale gives pre-activations in
    1/PRE_ONE; the gates are ordered input, forget, output, candidate. Cin is 3 for the first
    layer, C after. predict(i, j) computes every layer at pixels whose left neighbours and
    upper-right neighbour are computed, and gives the last layer's state; update(i, j, values)
    records their values. The state of two rows is kept (row parity): a pixel reads the row
    above, and the row below overwrites a column only after the pixels reading it.
    """
    cdef readonly int n_layers, channels, height, width, blocks
    cdef object keep
    cdef const int16_t[::1] w
    cdef const int64_t[::1] woff, fan
    cdef const int64_t[:, ::1] b, m, s
    cdef const int64_t[::1] cdf
    cdef int16_t[:, :, ::1] x  # [2, W, 3] pixel inputs by row parity
    cdef int16_t[:, :, :, ::1] h  # [2, L, W, C] hidden state by row parity
    cdef int32_t[:, :, :, ::1] c  # [2, L, W, C] cell state by row parity
    cdef int16_t[:, ::1] buf  # scratch per thread block
    cdef int64_t[:, ::1] z

    def __init__(self, layers, const int64_t[::1] cdf, int height, int width, int blocks=1):
        if not layers:
            raise ValueError("the Row LSTM needs a layer")
        if height < 1 or width < 1:
            raise ValueError("empty plane")
        if cdf.shape[0] != 2 * Z_MAX + 1:
            raise ValueError("logistic table has the wrong size")
        n = len(layers)
        ch = layers[0][0].shape[0] // 4
        if ch < 1 or ch > 256:
            raise ValueError("layer width out of range")
        weights, offsets, fans = [], [], []
        bms = np.zeros((3, n, 4 * ch), np.int64)
        off = 0
        for l, (w, b, m, s) in enumerate(layers):
            shape = (4 * ch, 2 * (IN if l == 0 else ch) + 3 * ch)
            w = np.asarray(w)
            if w.dtype != np.int16 or w.shape != shape or any(len(a) != shape[0] for a in (b, m, s)):
                raise ValueError(f"Row LSTM layer {l}: wrong shape")
            if int(np.abs(w.astype(np.int64)).max(initial=0)) * shape[1] * ONE >= 2 ** 31:
                raise ValueError(f"Row LSTM layer {l}: weights too large for exact int32 sums")
            s_, m_, b_ = np.asarray(s), np.asarray(m), np.asarray(b)
            if s_.min() < 1 or s_.max() > 62 or np.abs(m_).max() >= 2 ** 20 or np.abs(b_).max() >= 2 ** 40:
                raise ValueError(f"Row LSTM layer {l}: rescale out of range")
            bms[0, l], bms[1, l], bms[2, l] = b_, m_, s_
            weights.append(w.reshape(-1))
            offsets.append(off)
            fans.append(shape[1])
            off += w.size
        self.n_layers, self.channels, self.height, self.width = n, ch, height, width
        self.keep = (np.concatenate(weights), np.array(offsets, np.int64), np.array(fans, np.int64), bms)
        self.w, self.woff, self.fan = self.keep[0], self.keep[1], self.keep[2]
        self.b, self.m, self.s = bms[0], bms[1], bms[2]
        self.cdf = cdf
        self.x = np.zeros((2, width, IN), np.int16)
        self.h = np.zeros((2, n, width, ch), np.int16)
        self.c = np.zeros((2, n, width, ch), np.int32)
        self.blocks = max(1, blocks)
        self.buf = np.zeros((self.blocks, 2 * max(IN, ch) + 3 * ch), np.int16)
        self.z = np.zeros((self.blocks, 4 * ch), np.int64)

    @cython.cdivision(True)  # i is non-negative
    cdef void pixel(self, int blk, int i, int j, int64_t* out) noexcept nogil:
        """Every layer at (i, j); the last layer's hidden state into out."""
        cdef int ch = self.channels, cin, l, k, o, dc, col, cur = i % 2, up = (i + 1) % 2
        cdef int16_t* buf = &self.buf[blk, 0]
        cdef int64_t* z = &self.z[blk, 0]
        cdef const int16_t* w
        cdef int64_t fan, gi, gf, go, gg, cell, cprev
        for l in range(self.n_layers):
            cin = IN if l == 0 else ch
            for k in range(cin):  # the layer below at (i, j - 1), (i, j): the pixels left of j for l = 0
                if l == 0:
                    buf[k] = self.x[cur, j - 2, k] if j >= 2 else 0
                    buf[cin + k] = self.x[cur, j - 1, k] if j >= 1 else 0
                else:
                    buf[k] = self.h[cur, l - 1, j - 1, k] if j >= 1 else 0
                    buf[cin + k] = self.h[cur, l - 1, j, k]
            for dc in range(3):  # this layer's hidden state in the row above, j - 1..j + 1
                col = j - 1 + dc
                for k in range(ch):
                    buf[2 * cin + dc * ch + k] = self.h[up, l, col, k] if i >= 1 and 0 <= col < self.width else 0
            fan = 2 * cin + 3 * ch
            w = &self.w[self.woff[l]]
            for o in range(4 * ch):
                z[o] = rescale(dot(w + o * fan, buf, fan), self.b[l, o], self.m[l, o], self.s[l, o])
            for o in range(ch):
                gi = sigmoid(z[o], &self.cdf[0])
                gf = sigmoid(z[ch + o], &self.cdf[0])
                go = sigmoid(z[2 * ch + o], &self.cdf[0])
                gg = tanh(z[3 * ch + o], &self.cdf[0])
                cprev = self.c[up, l, j, o] if i >= 1 else 0
                cell = clip((gf * cprev + gi * gg + (ONE >> 1)) >> ONE_BITS, -CELL_LIMIT, CELL_LIMIT)
                self.c[cur, l, j, o] = <int32_t>cell
                self.h[cur, l, j, o] = <int16_t>times(go, tanh(cell, &self.cdf[0]))
        for o in range(ch):
            out[o] = self.h[cur, self.n_layers - 1, j, o]

    def _check(self, const int64_t[::1] i, const int64_t[::1] j):
        if i.shape[0] != j.shape[0]:
            raise ValueError("pixel coordinates differ in length")
        for p in range(i.shape[0]):
            if not (0 <= i[p] < self.height and 0 <= j[p] < self.width):
                raise ValueError("pixel outside the plane")

    def predict(self, i, j):
        """-> the last layer's hidden state [n, C] int64 at pixels (i[p], j[p]) (one per row)."""
        i, j = np.ascontiguousarray(i, np.int64), np.ascontiguousarray(j, np.int64)
        self._check(i, j)
        out_a = np.empty((len(i), self.channels), np.int64)
        cdef int64_t[:, ::1] out = out_a
        cdef const int64_t[::1] iv = i, jv = j
        cdef Py_ssize_t n = iv.shape[0], nblk = max(1, min(self.blocks, n)), blk, p
        if nblk == 1:  # no parallel region for one block: waking the threads would cost more
            for p in range(n):
                self.pixel(0, <int>iv[p], <int>jv[p], &out[p, 0])
            return out_a
        with nogil:
            for blk in prange(nblk, schedule="static", chunksize=1):
                for p in range(blk * n // nblk, (blk + 1) * n // nblk):
                    self.pixel(blk, <int>iv[p], <int>jv[p], &out[p, 0])
        return out_a

    def update(self, i, j, values):
        """Record the values [n, 3] (0..255) of pixels (i[p], j[p])."""
        i, j = np.ascontiguousarray(i, np.int64), np.ascontiguousarray(j, np.int64)
        self._check(i, j)
        vals = np.ascontiguousarray(values, np.int64)
        if vals.shape != (len(i), IN) or (len(vals) and (vals.min() < 0 or vals.max() > 255)):
            raise ValueError("values must be [n, 3] in 0..255")
        cdef const int64_t[::1] iv = i, jv = j
        cdef const int64_t[:, ::1] val = vals
        cdef Py_ssize_t p
        cdef int k
        for p in range(iv.shape[0]):
            for k in range(IN):
                self.x[iv[p] % 2, jv[p], k] = <int16_t>((val[p, k] - 128) * PIXEL_STEP)
