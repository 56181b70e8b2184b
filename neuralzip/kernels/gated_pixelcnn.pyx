# cython: boundscheck=False
# (No per-index checks in the loops: the constructor checks every weight shape, the pixel
# coordinates are checked on entry to predict/update, and every other index is bounded by
# the image's size, the ring's size or the layer widths fixed at construction.)
# The exact Gated PixelCNN stacks, computed once per pixel along wavefronts
# (neuralzip/models/gated_pixelcnn.py explains the network and the decoding order).

import numpy as np

cimport cython
from libc.stdint cimport int16_t, int32_t, int64_t
from cython.parallel cimport prange
from neuralzip.kernels.gates cimport ONE, Z_MAX, dot, rescale, sigmoid, tanh, times
from neuralzip.kernels.primitives cimport clip

cdef enum:
    PIXEL_STEP = 32  # a pixel enters as (value - 128) * 32, in 1/ONE
    H_LIMIT = 4  # the horizontal stack is clipped to +-4.0
    IN = 3  # channels of a plane


cdef inline int16_t gate(int64_t pre_a, int64_t pre_b, const int64_t* cdf) noexcept nogil:
    """tanh(a) * sigmoid(b) in 1/ONE."""
    return <int16_t>times(tanh(pre_a, cdf), sigmoid(pre_b, cdf))



cdef class GatedStacks:
    """The vertical and horizontal stacks of one plane of height x width pixels.

    layers: per layer l, (w, b, m, s) of its vertical gate (w [2C, 6 * Cin]: rows i-1, i x
    columns j-1..j+1, channels minor), its horizontal gate (w [2C, 2 * Cin + C]: h(j-1), h(j),
    then the vertical stack at (i, j)) and its residual 1x1 layer (w [C, C]); Cin is 3 for the
    first layer, C after. w is int16 within the bound that keeps every sum in an int32; a gate's
    rescale gives pre-activations in 1/PRE_ONE, the residual's outputs in 1/ONE.
    predict(i, j) gives the last horizontal stack of pixels whose inputs are known; update(i, j,
    values) records their values and computes what they complete of the next row's vertical stack.
    """
    cdef readonly int n_layers, channels, height, width, ring, span
    cdef int first_row_done  # diagonals of row 0's vertical stack computed
    cdef object keep
    cdef const int16_t[::1] w
    cdef const int64_t[::1] woff, fan
    cdef const int64_t[:, ::1] b, m, s
    cdef const int64_t[::1] cdf
    cdef int16_t[:, :, ::1] x  # [H, W, 3] pixel inputs
    cdef int16_t[:, :, :, ::1] v  # [L, ring, W, C] vertical stack, row i at i % ring
    cdef int16_t[:, :, ::1] hprev  # [H, L, C] the horizontal stack at the row's last predicted pixel
    cdef int16_t[:, ::1] buf, gbuf, hcur  # scratch per thread block
    cdef int64_t[:, ::1] z
    cdef readonly int blocks

    def __init__(self, layers, const int64_t[::1] cdf, int height, int width, int blocks=1):
        if len(layers) % 3 or not layers:
            raise ValueError("the stacks need a vertical, a horizontal and a residual layer per level")
        if height < 1 or width < 1:
            raise ValueError("empty plane")
        if cdf.shape[0] != 2 * Z_MAX + 1:
            raise ValueError("logistic table has the wrong size")
        n = len(layers) // 3
        c = layers[0][0].shape[0] // 2
        if c < 1 or c > 256:
            raise ValueError("stack width out of range")
        weights, offsets, fans = [], [], []
        bms = np.zeros((3, 3 * n, 2 * c), np.int64)
        off = 0
        for idx, (w, b, m, s) in enumerate(layers):
            l, kind = divmod(idx, 3)
            cin = IN if l == 0 else c
            shape = [(2 * c, 6 * cin), (2 * c, 2 * cin + c), (c, c)][kind]
            w = np.asarray(w)
            if w.dtype != np.int16 or w.shape != shape or any(len(a) != shape[0] for a in (b, m, s)):
                raise ValueError(f"stack layer {idx}: wrong shape")
            # the largest input: pixels and vertical/gated activations 1.0, the horizontal stack H_LIMIT
            in_max = ONE * (H_LIMIT if kind == 1 else 1)
            if int(np.abs(w.astype(np.int64)).max(initial=0)) * shape[1] * in_max >= 2 ** 31:
                raise ValueError(f"stack layer {idx}: weights too large for exact int32 sums")
            s_, m_, b_ = np.asarray(s), np.asarray(m), np.asarray(b)
            if s_.min() < 1 or s_.max() > 62 or np.abs(m_).max() >= 2 ** 20 or np.abs(b_).max() >= 2 ** 40:
                raise ValueError(f"stack layer {idx}: rescale out of range")
            bms[0, idx, :shape[0]], bms[1, idx, :shape[0]], bms[2, idx, :shape[0]] = b_, m_, s_
            weights.append(w.reshape(-1))
            offsets.append(off)
            fans.append(shape[1])
            off += w.size
        self.n_layers, self.channels, self.height, self.width = n, c, height, width
        # Rows alive along a wavefront (slope n + 1): about width / (n + 1), plus the row being
        # filled and the two it reads; columns alive in a row: those between where the row below
        # reads it and where the row above writes it, about 2 (n + 1) plus the kernel's reach.
        # Pixel inputs and the vertical stack are kept in a ring of rows x a ring of columns.
        self.ring = (width - 1) // (n + 1) + 4
        self.span = 2 * (n + 1) + 16
        self.keep = (np.concatenate(weights), np.array(offsets, np.int64), np.array(fans, np.int64), bms)
        self.w, self.woff, self.fan = self.keep[0], self.keep[1], self.keep[2]
        self.b, self.m, self.s = bms[0], bms[1], bms[2]
        self.cdf = cdf
        self.x = np.zeros((self.ring, self.span, IN), np.int16)
        self.v = np.zeros((n, self.ring, self.span, c), np.int16)
        self.hprev = np.zeros((height, n, c), np.int16)
        self.blocks = max(1, blocks)
        self.buf = np.zeros((self.blocks, 6 * c), np.int16)
        self.gbuf = np.zeros((self.blocks, c), np.int16)
        self.hcur = np.zeros((self.blocks, n * c), np.int16)
        self.z = np.zeros((self.blocks, 2 * c), np.int64)
        self.first_row_done = 0

    cdef void first_row(self, int j) noexcept nogil:
        """Row 0's vertical stack up to what pixel (0, j) reads. It reads only the padding above
        the image, but it is computed diagonal by diagonal as if a row -1 were being decoded, so
        that it never runs further ahead of the pixels than the ring of columns holds."""
        while self.first_row_done <= min(j + self.n_layers, self.width - 1):
            self.next_row(0, -1, self.first_row_done)
            self.first_row_done += 1

    cdef void gated(self, int blk, int idx, Py_ssize_t fan, int16_t* out) noexcept nogil:
        """out[c] = gate of layer idx's 2C pre-activations over block blk's buf[:fan]."""
        cdef int c = self.channels, o
        cdef const int16_t* w = &self.w[self.woff[idx]]
        cdef int64_t* z = &self.z[blk, 0]
        for o in range(2 * c):
            z[o] = rescale(dot(w + o * fan, &self.buf[blk, 0], fan), self.b[idx, o], self.m[idx, o], self.s[idx, o])
        for o in range(c):
            out[o] = gate(z[o], z[c + o], &self.cdf[0])

    @cython.cdivision(True)  # row and i are non-negative where they are reduced modulo the ring
    cdef void vertical(self, int blk, int l, int r, int jj) noexcept nogil:
        """v_l(r, jj) from rows r - 1 and r of the layer below (the image shifted down for l = 0)."""
        cdef int cin = IN if l == 0 else self.channels, dr, dc, row, col, k
        cdef int16_t* dst
        for dr in range(2):
            row = r - 1 + dr
            for dc in range(3):
                col = jj - 1 + dc
                dst = &self.buf[blk, (dr * 3 + dc) * cin]
                if col < 0 or col >= self.width or row - (1 if l == 0 else 0) < 0:
                    for k in range(cin):
                        dst[k] = 0
                elif l == 0:
                    for k in range(cin):
                        dst[k] = self.x[(row - 1) % self.ring, col % self.span, k]
                else:
                    for k in range(cin):
                        dst[k] = self.v[l - 1, row % self.ring, col % self.span, k]
        self.gated(blk, 3 * l, 6 * cin, &self.v[l, r % self.ring, jj % self.span, 0])

    @cython.cdivision(True)
    cdef void horizontal(self, int blk, int i, int j, int64_t* out) noexcept nogil:
        """The horizontal stack at (i, j), every layer; the last into out, all into hprev[i]."""
        cdef int c = self.channels, cin, l, k, o
        cdef int16_t* buf = &self.buf[blk, 0]
        cdef int16_t* hcur = &self.hcur[blk, 0]
        cdef int16_t* gbuf = &self.gbuf[blk, 0]
        cdef int64_t acc
        cdef const int16_t* w
        for l in range(self.n_layers):
            cin = IN if l == 0 else c
            for k in range(cin):
                if l == 0:
                    buf[k] = self.x[i % self.ring, (j - 2) % self.span, k] if j >= 2 else 0
                    buf[cin + k] = self.x[i % self.ring, (j - 1) % self.span, k] if j >= 1 else 0
                else:
                    buf[k] = self.hprev[i, l - 1, k] if j >= 1 else 0
                    buf[cin + k] = hcur[(l - 1) * c + k]
            for k in range(c):
                buf[2 * cin + k] = self.v[l, i % self.ring, j % self.span, k]
            self.gated(blk, 3 * l + 1, 2 * cin + c, gbuf)
            w = &self.w[self.woff[3 * l + 2]]
            for o in range(c):
                acc = rescale(dot(w + o * c, gbuf, c), self.b[3 * l + 2, o], self.m[3 * l + 2, o],
                              self.s[3 * l + 2, o])
                if l:
                    acc += hcur[(l - 1) * c + o]
                hcur[l * c + o] = <int16_t>clip(acc, -H_LIMIT * ONE, H_LIMIT * ONE)
        for l in range(self.n_layers):
            for k in range(c):
                self.hprev[i, l, k] = hcur[l * c + k]
        for k in range(c):
            out[k] = hcur[(self.n_layers - 1) * c + k]

    def _check(self, const int64_t[::1] i, const int64_t[::1] j):
        if i.shape[0] != j.shape[0]:
            raise ValueError("pixel coordinates differ in length")
        for p in range(i.shape[0]):
            if not (0 <= i[p] < self.height and 0 <= j[p] < self.width):
                raise ValueError("pixel outside the plane")

    def predict(self, i, j):
        """-> the last horizontal stack [n, C] int64 at pixels (i[p], j[p]), whose left neighbours
        and whose row above up to column j + layers are recorded."""
        i, j = np.ascontiguousarray(i, np.int64), np.ascontiguousarray(j, np.int64)
        self._check(i, j)
        out_a = np.empty((len(i), self.channels), np.int64)
        cdef int64_t[:, ::1] out = out_a
        cdef const int64_t[::1] iv = i, jv = j
        cdef Py_ssize_t n = iv.shape[0], nblk = max(1, min(self.blocks, n)), blk, p
        for p in range(n):
            if iv[p] == 0:
                self.first_row(<int>jv[p])
        if nblk == 1:  # no parallel region for one block: waking the threads would cost more
            for p in range(n):
                self.horizontal(0, <int>iv[p], <int>jv[p], &out[p, 0])
            return out_a
        with nogil:
            for blk in prange(nblk, schedule="static", chunksize=1):
                for p in range(blk * n // nblk, (blk + 1) * n // nblk):
                    self.horizontal(blk, <int>iv[p], <int>jv[p], &out[p, 0])
        return out_a

    def update(self, i, j, values):
        """Record the values [n, 3] (0..255) of pixels (i[p], j[p]), then compute the next row's
        vertical stack where they complete it (a diagonal; the rest of the row at its end)."""
        i, j = np.ascontiguousarray(i, np.int64), np.ascontiguousarray(j, np.int64)
        self._check(i, j)
        vals = np.ascontiguousarray(values, np.int64)
        if vals.shape != (len(i), IN) or (len(vals) and (vals.min() < 0 or vals.max() > 255)):
            raise ValueError("values must be [n, 3] in 0..255")
        cdef const int64_t[::1] iv = i, jv = j
        cdef const int64_t[:, ::1] val = vals
        cdef Py_ssize_t n = iv.shape[0], nblk = max(1, min(self.blocks, n)), blk, p
        cdef int k
        for p in range(n):
            for k in range(IN):
                self.x[iv[p] % self.ring, jv[p] % self.span, k] = <int16_t>((val[p, k] - 128) * PIXEL_STEP)
        if nblk == 1:
            for p in range(n):
                self.next_row(0, <int>iv[p], <int>jv[p])
            return
        with nogil:
            for blk in prange(nblk, schedule="static", chunksize=1):
                for p in range(blk * n // nblk, (blk + 1) * n // nblk):
                    self.next_row(blk, <int>iv[p], <int>jv[p])

    cdef void next_row(self, int blk, int i, int j) noexcept nogil:
        """What pixel (i, j) completes of row i + 1's vertical stack: v_l(i + 1, j - l - 1) in every
        layer l (it reads row i up to column j), and at the row's end the rest of the row."""
        cdef int l, jj, first
        if i + 1 >= self.height:
            return
        for l in range(self.n_layers):
            first = j - l - 1
            if j < self.width - 1:
                if first >= 0:
                    self.vertical(blk, l, i + 1, first)
            else:
                for jj in range(max(first, 0), self.width):
                    self.vertical(blk, l, i + 1, jj)
