# cython: boundscheck=False
# (No per-index checks in the loops: WaveNetWeights checks every layer's shape when it is built,
# WaveLanes checks the lane lengths and the window bounds on entry, and every other index is
# bounded by the widths fixed at construction.)
# The exact WaveNet of the wavenet audio model (neuralzip/models/wavenet.py explains the network,
# the input scaling and the lanes), one sample at a time with cached activations: each layer keeps
# a queue of its last `dilation` inputs, so a step computes one new column of every layer and
# never recomputes the receptive field (fast WaveNet queues).
#
# The predictor whose residual the network reads is a linear one per block of each lane (`plans`:
# an order, a shift and quantised coefficients per block, chosen by the encoder and stored). The
# fixed second-order predictor of the first weights is the plan of order 2, coefficients (2, -1)
# and shift 0 in every block: one code path for both.

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t
from neuralzip.kernels.gates cimport ONE, Z_MAX, dot, rescale, sigmoid, tanh, times
from neuralzip.kernels.logistic cimport mixture_row
from neuralzip.kernels.primitives cimport Bucket, bucket_of, clip, low_bits_of_bucket, unzigzag, value_of, zigzag
from neuralzip.kernels.range_decoder cimport RangeDecoder, range_decode_counts, range_decode_low_bits, range_decoder_init

cdef enum:
    LIMIT = 8 * ONE - 1  # activations, the residual stream and the input are clipped to +-8.0
    SCALE_RATE = 4  # the running mean |residual| moves 1/16 of the way per sample
    SCALE_MIN = 16  # ... in 1/16 of a level, at least one level
    SCALE_START = 16 * 16  # ... and 16 levels at the start of a lane
    LN_BITS = 5  # log tables read the running mean's top 5 bits under its leading one
    INV_BITS = 24  # the scale table's inverse scales, in 2**-24 (kernels/logistic.pxd)
    MAX_BITS = 24  # sample bits this kernel codes (every product stays in an int64)
    PARALLEL_LANES = 4  # a decoder step runs its lanes on threads from this many lanes up
    C_MAX_ORDER = 32  # predictor orders, coefficients below 2**15 in magnitude, shifts up to 31

MAX_ORDER = C_MAX_ORDER


cdef inline int64_t prediction(const int64_t* x, Py_ssize_t t, Py_ssize_t block, const int64_t* orders,
                               const int64_t* shifts, const int64_t* coefs, int64_t mid, int64_t maxv) noexcept nogil:
    """The linear prediction of sample t of a lane (x: its values so far, stored 0..maxv) from the
    plan of t's block: mid + (sum_i coefs[i] (x[t-1-i] - mid)) >> shift, within the sample range.
    Samples before the lane's start count as mid (zero)."""
    cdef Py_ssize_t b = t // block, i, n = orders[b]
    cdef const int64_t* q = coefs + b * C_MAX_ORDER
    cdef int64_t acc = 0
    if n > t:
        n = t
    for i in range(n):
        acc += q[i] * (x[t - 1 - i] - mid)
    return clip(mid + (acc >> shifts[b]), 0, maxv)


def check_plans(int64_t length, int64_t block, orders, shifts, coefs):
    """(orders, shifts, coefs) as int64 arrays [..., blocks] / [..., blocks, MAX_ORDER], checked:
    blocks of `block` samples covering `length` samples, every order, shift and coefficient in range."""
    orders, shifts, coefs = (np.ascontiguousarray(a, np.int64) for a in (orders, shifts, coefs))
    if block < 1 or orders.shape != shifts.shape or coefs.shape != orders.shape + (C_MAX_ORDER,):
        raise ValueError("predictor plans have the wrong shape")
    if orders.shape[orders.ndim - 1] * block < length:  # (no negative indices: boundscheck is off)
        raise ValueError("predictor plans do not cover the lane")
    if orders.size and (orders.min() < 0 or orders.max() > C_MAX_ORDER or shifts.min() < 0 or shifts.max() > 31
                        or np.abs(coefs).max() >= 1 << 15):
        raise ValueError("predictor plan out of range")
    return orders, shifts, coefs


cdef inline int64_t scaled_input(int64_t r, int64_t a) noexcept nogil:
    """The network's input: residual r over the running mean |residual| (a, in 1/16 level), in
    1/ONE, rounded half up, clipped to +-8."""
    cdef int64_t num = 2 * r * 16 * ONE + a, den = 2 * a
    return clip(num // den, -LIMIT, LIMIT)


cdef inline int64_t next_scale(int64_t a, int64_t r) noexcept nogil:
    """The running mean |residual| (in 1/16 level) after residual r."""
    a += (16 * (r if r >= 0 else -r) - a) >> SCALE_RATE
    return a if a > SCALE_MIN else SCALE_MIN


cdef inline int64_t log_scale(int64_t a, const int64_t[:, ::1] ln16) noexcept nogil:
    """round(16 ln(a / 16)) from the shipped table [bit length, top LN_BITS bits under the lead]."""
    cdef int64_t n = 0, v = a
    while v > 0:
        v >>= 1
        n += 1
    v = (a >> (n - 1 - LN_BITS)) if n > LN_BITS else (a << (LN_BITS + 1 - n))
    return ln16[n, v & ((1 << LN_BITS) - 1)]


def track(const int64_t[::1] values, int64_t bits, int64_t block, orders, shifts, coefs):
    """The model's input side of a lane (values as stored, 0..2**bits - 1; its predictor plans
    orders/shifts [blocks], coefs [blocks, MAX_ORDER] for blocks of `block` samples): -> (residuals
    r[t] of the predictor, running mean |residual| a[t] in 1/16 level used for sample t, the
    network's input u[t] = r[t] / a[t] in 1/ONE). The trainer's data and the report's float network
    read these; the coder computes the same integers step by step."""
    cdef Py_ssize_t n = values.shape[0], t
    if not 1 <= bits <= MAX_BITS:
        raise ValueError("sample bits out of range")
    po, ps, pc = check_plans(n, block, orders, shifts, coefs)
    if po.ndim != 1:
        raise ValueError("one lane's plans expected")
    cdef const int64_t[::1] o = po, sh = ps
    cdef const int64_t[:, ::1] q = pc
    r_a, a_a, u_a = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    cdef int64_t[::1] r = r_a, av = a_a, u = u_a
    cdef int64_t maxv = ((<int64_t>1) << bits) - 1, mid = (<int64_t>1) << (bits - 1)
    cdef int64_t a = SCALE_START
    for t in range(n):
        r[t] = values[t] - prediction(&values[0], t, block, &o[0], &sh[0], &q[0, 0], mid, maxv)
        av[t] = a
        u[t] = scaled_input(r[t], a)
        a = next_scale(a, r[t])
    return r_a, a_a, u_a


cdef inline int64_t unit(const int16_t* w, const int64_t* bms, Py_ssize_t outs, Py_ssize_t fan, Py_ssize_t o,
                         const int16_t* x) noexcept nogil:
    """Output o of an exact layer: w [outs, fan] int16, bms [3, outs] its rescale (gates.pxd)."""
    return rescale(dot(w + o * fan, x, fan), bms[o], bms[outs + o], bms[2 * outs + o])


def _layer(w, b, m, s, int fan, int outs, int64_t in_max):
    """(w, [b, m, s]) of one exact layer, checked: int16 weights whose sums fit an int32."""
    w = np.ascontiguousarray(w)
    bms = np.stack([np.asarray(a, np.int64).reshape(-1) for a in (b, m, s)])
    if w.dtype != np.int16 or w.shape != (outs, fan) or bms.shape != (3, outs):
        raise ValueError(f"layer of shape {w.shape}: expected ({outs}, {fan})")
    if int(np.abs(w.astype(np.int64)).max(initial=0)) * fan * in_max >= 2 ** 31:
        raise ValueError("weights too large for exact int32 sums")
    if bms[2].min() < 1 or bms[2].max() > 62 or np.abs(bms[1]).max() >= 2 ** 20 or np.abs(bms[0]).max() >= 2 ** 40:
        raise ValueError("rescale out of range")
    return w, bms


cdef class WaveNetWeights:
    """The exact network: `embed` (C x 1: the input into the residual stream), per layer l
    `gates[l]` (2C x 2C over [h(t - 2**l), h(t)]: tanh half, sigmoid half) and `outs[l]` (C + S x C:
    the residual's update, then the layer's skip contribution), `hidden` (H x S) and `head`
    (3 k_mix x H: means in 1/ONE of the running scale, log-scales and logits in 1/16), each as
    (w, b, m, s); the logistic tables (cdf, inv over the scale indices, exp) and ln16 (log_scale's
    table)."""
    cdef readonly int channels, skip, hidden_units, n_layers, k_mix
    cdef readonly object keep
    cdef const int16_t[:, ::1] ew, hw, headw
    cdef const int16_t[:, :, ::1] gw, ow
    cdef const int64_t[:, ::1] ebms, hbms, headbms
    cdef const int64_t[:, :, ::1] gbms, obms
    cdef const int64_t[::1] cdf, inv, expt
    cdef const int64_t[:, ::1] ln16

    def __init__(self, embed, gates, outs, hidden, head, int k_mix, cdf, inv, expt, ln16):
        c = np.shape(embed[0])[0]
        n = len(gates)
        s = np.shape(outs[0][0])[0] - c if n and len(outs) else 0
        h = np.shape(hidden[0])[0]
        if not (1 <= c <= 128 and 1 <= n <= 14 and len(outs) == n and 1 <= s <= 256 and 1 <= h <= 256
                and 1 <= k_mix <= 8):
            raise ValueError("network size out of range")
        ew, ebms = _layer(*embed, fan=1, outs=c, in_max=LIMIT)
        g = [_layer(*x, fan=2 * c, outs=2 * c, in_max=LIMIT) for x in gates]
        o = [_layer(*x, fan=c, outs=c + s, in_max=ONE) for x in outs]
        hw, hbms = _layer(*hidden, fan=s, outs=h, in_max=LIMIT)
        headw, headbms = _layer(*head, fan=h, outs=3 * k_mix, in_max=LIMIT)
        tables = [np.ascontiguousarray(t, np.int64) for t in (cdf, inv, expt, ln16)]
        if tables[0].shape != (2 * Z_MAX + 1,) or not 1 <= len(tables[1]) <= 4096 or not 1 <= len(tables[2]) <= 4096:
            raise ValueError("logistic tables have the wrong size")
        if tables[3].shape != (64, 1 << LN_BITS) or np.abs(tables[3]).max() > 1 << 16:
            raise ValueError("log table has the wrong size")
        if tables[1].min() < 0 or tables[1].max() >= 1 << 32:
            raise ValueError("inverse scales out of range")
        gw, gbms = np.stack([x[0] for x in g]), np.stack([x[1] for x in g])
        ow, obms = np.stack([x[0] for x in o]), np.stack([x[1] for x in o])
        self.keep = (ew, ebms, gw, gbms, ow, obms, hw, hbms, headw, headbms, tables)
        self.ew, self.ebms, self.gw, self.gbms, self.ow, self.obms = ew, ebms, gw, gbms, ow, obms
        self.hw, self.hbms, self.headw, self.headbms = hw, hbms, headw, headbms
        self.cdf, self.inv, self.expt, self.ln16 = tables
        self.channels, self.skip, self.hidden_units, self.n_layers, self.k_mix = c, s, h, n, k_mix


cdef class WaveLanes:
    """The lanes of one chunk, stepped together: lane k codes values[k, :lengths[k]] (stored values,
    0..2**bits - 1), lengths non-increasing, so the lanes alive at step t are a prefix, with its
    predictor plans (orders/shifts [lane, block], coefs [lane, block, MAX_ORDER], blocks of `block`
    samples). Per lane: the layer queues, the predictor's prediction of its next sample (linear),
    the running scale, and the mixture (pred, heads) of its next sample."""
    cdef WaveNetWeights net
    cdef readonly object lengths_a, values_a
    cdef const int64_t[::1] lengths
    cdef int64_t[:, ::1] values
    cdef const int64_t[::1] bounds
    cdef const int64_t[:, ::1] spans
    cdef int16_t[:, :, ::1] queue  # [lane, 2**L - 1, C]: layer l's inputs at l's offset 2**l - 1
    cdef int64_t[::1] pos, linear, scale, pred
    cdef const int64_t[:, ::1] orders, shifts
    cdef const int64_t[:, :, ::1] coefs
    cdef int64_t block, mid
    cdef int64_t[:, ::1] heads, cj, row, z
    cdef int16_t[:, ::1] cur, gate, skip16, hid
    cdef int64_t[:, ::1] skip
    cdef readonly int64_t maxv, n_lanes, n_buckets, steps

    def __init__(self, WaveNetWeights net, lengths, int64_t bits, bounds, spans, int64_t block, orders, shifts,
                 coefs):
        lengths = np.ascontiguousarray(lengths, np.int64)
        if not 1 <= bits <= MAX_BITS:
            raise ValueError("sample bits out of range")
        if len(lengths) < 1 or lengths.min() < 0 or np.any(np.diff(lengths) > 0):
            raise ValueError("lane lengths must be non-increasing")
        spans = np.ascontiguousarray(spans, np.int64)
        if spans.ndim != 2 or spans.shape[1] != 4 or spans.min() < 0 or spans.max() >= len(bounds):
            raise ValueError("bucket spans do not index the boundaries")
        n, c, k = len(lengths), net.channels, net.k_mix
        orders, shifts, coefs = check_plans(int(lengths[0]), block, orders, shifts, coefs)
        if orders.ndim != 2 or orders.shape[0] != n:
            raise ValueError("predictor plans do not match the lanes")
        self.orders, self.shifts, self.coefs = orders, shifts, coefs  # (the views keep the arrays alive)
        self.block, self.mid = block, 1 << (bits - 1)
        self.net, self.lengths_a, self.lengths = net, lengths, lengths
        self.maxv, self.n_lanes, self.n_buckets, self.steps = (1 << bits) - 1, n, spans.shape[0], int(lengths[0])
        self.bounds, self.spans = np.ascontiguousarray(bounds, np.int64), spans
        self.values_a = np.zeros((n, max(int(lengths[0]), 1)), np.int64)
        self.values = self.values_a
        self.queue = np.zeros((n, (1 << net.n_layers) - 1, c), np.int16)
        self.pos, self.pred = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.linear = np.zeros(n, np.int64)
        self.scale = np.full(n, SCALE_START, np.int64)
        self.heads, self.z = np.zeros((n, 3 * k), np.int64), np.zeros((n, 2 * c), np.int64)
        self.cj, self.row = np.zeros((n, len(bounds)), np.int64), np.zeros((n, spans.shape[0]), np.int64)
        self.cur, self.gate = np.zeros((n, 2 * c), np.int16), np.zeros((n, c), np.int16)
        self.skip, self.skip16 = np.zeros((n, net.skip), np.int64), np.zeros((n, net.skip), np.int16)
        self.hid = np.zeros((n, net.hidden_units), np.int16)
        for lane in range(n):
            self.forward(lane, 0)

    cdef void forward(self, Py_ssize_t k, int64_t u) noexcept nogil:
        """Lane k's network on its newest input u (in 1/ONE): one new column of every layer, pushed
        into the queues; then the mixture of the lane's next sample into heads[k] and pred[k]."""
        cdef int c = self.net.channels, sk = self.net.skip, l, i, top, km = self.net.k_mix
        cdef int16_t x0 = <int16_t>u
        cdef int16_t* cur = &self.cur[k, 0]  # [0, C): the layer's older input, [C, 2C): its newest
        cdef int16_t* q
        cdef int16_t* gate = &self.gate[k, 0]
        cdef int64_t* z = &self.z[k, 0]
        cdef int64_t d, slot, a = self.scale[k], base, lnq
        for i in range(c):
            cur[c + i] = <int16_t>clip(unit(&self.net.ew[0, 0], &self.net.ebms[0, 0], c, 1, i, &x0), -LIMIT, LIMIT)
        for i in range(sk):
            self.skip[k, i] = 0
        d = 1
        for l in range(self.net.n_layers):
            slot = d - 1 + self.pos[k] % d  # the queue holds the inputs of times pos - d .. pos - 1
            q = &self.queue[k, slot, 0]
            for i in range(c):
                cur[i] = q[i]
                q[i] = cur[c + i]
            for i in range(2 * c):
                z[i] = unit(&self.net.gw[l, 0, 0], &self.net.gbms[l, 0, 0], 2 * c, 2 * c, i, cur)
            for i in range(c):
                gate[i] = <int16_t>times(tanh(z[i], &self.net.cdf[0]), sigmoid(z[c + i], &self.net.cdf[0]))
            for i in range(c):
                cur[c + i] = <int16_t>clip(cur[c + i] + unit(&self.net.ow[l, 0, 0], &self.net.obms[l, 0, 0], c + sk, c, i, gate), -LIMIT, LIMIT)
            for i in range(sk):
                self.skip[k, i] += unit(&self.net.ow[l, 0, 0], &self.net.obms[l, 0, 0], c + sk, c, c + i, gate)
            d *= 2
        for i in range(sk):
            self.skip16[k, i] = <int16_t>clip(self.skip[k, i], 0, LIMIT)
        for i in range(self.net.hidden_units):
            self.hid[k, i] = <int16_t>clip(unit(&self.net.hw[0, 0], &self.net.hbms[0, 0], self.net.hidden_units, sk, i, &self.skip16[k, 0]), 0, LIMIT)
        # the head: means in 1/ONE of the running scale -> 1/16 level from the linear prediction;
        # log-scales in 1/16 relative to the running scale -> indices of the scale table
        lnq = log_scale(a, self.net.ln16) + 48  # the table starts at log-scale -3
        self.linear[k] = self.mid  # past the lane's end: no plan, and no sample to predict
        if self.pos[k] < self.lengths[k]:
            self.linear[k] = prediction(&self.values[k, 0], self.pos[k], self.block, &self.orders[k, 0],
                                        &self.shifts[k, 0], &self.coefs[k, 0, 0], self.mid, self.maxv)
        base = 16 * self.linear[k]
        for i in range(3 * km):
            self.heads[k, i] = unit(&self.net.headw[0, 0], &self.net.headbms[0, 0], 3 * km, self.net.hidden_units, i,
                                    &self.hid[k, 0])
        for i in range(km):
            self.heads[k, i] = base + ((clip(self.heads[k, i], -LIMIT, LIMIT) * a + ONE // 2) >> 12)
            self.heads[k, km + i] += lnq
        # residuals are coded from the most weighted component's mean, rounded into the range
        top = 0
        for i in range(1, km):
            if self.heads[k, 2 * km + i] > self.heads[k, 2 * km + top]:
                top = i
        self.pred[k] = clip((self.heads[k, top] + 8) >> 4, 0, self.maxv)
        for i in range(km):
            self.heads[k, i] -= 16 * self.pred[k]
        self.pos[k] += 1

    cdef void push(self, Py_ssize_t k, int64_t value) noexcept nogil:
        """Lane k's sample `value`: the linear predictor's residual updates the scale, goes into the
        network, and gives the mixture of the next sample."""
        cdef int64_t r = value - self.linear[k], a = self.scale[k]
        cdef int64_t u = scaled_input(r, a)
        self.values[k, self.pos[k] - 1] = value
        self.scale[k] = next_scale(a, r)
        self.forward(k, u)

    cdef void row_of(self, Py_ssize_t k, double* out) noexcept nogil:
        """The integer pmf of lane k's next residual over zigzag buckets, every bucket raised by
        2**-20 of the total: no bucket falls below what the range coder can represent (it would
        round such a bucket up, and the coded size would part from the model's), and a sample far
        off the mixture costs about 20 bits plus its low bits."""
        cdef Py_ssize_t b
        cdef int64_t total = mixture_row(self.pred[k], self.maxv, self.heads[k], self.net.k_mix, self.net.cdf,
                                         self.net.inv, self.net.expt, self.bounds, self.spans, self.cj[k], self.row[k],
                                         INV_BITS)
        cdef int64_t floor = (total >> 20) + 1
        for b in range(self.n_buckets):
            out[b] = <double>(self.row[k, b] + floor)

    def encode_window(self, const int64_t[:, ::1] values, int64_t t0, int64_t t1, const int64_t[::1] offs,
                      int32_t[::1] sym, int64_t[::1] nlow, int64_t[::1] low, double[:, ::1] rows):
        """Steps t0..t1 - 1 of every lane with its values known (values[k, t]): the bucket symbol,
        low bits and row of lane k's sample t at offs[t - t0] + k, the coder's order (step major)."""
        cdef Py_ssize_t k, t, n = self.n_lanes, at
        cdef Bucket bk
        if not 0 <= t0 <= t1 <= self.steps or values.shape[0] != n or values.shape[1] < t1 or offs.shape[0] < t1 - t0 + 1:
            raise ValueError("window outside the lanes")
        if rows.shape[1] != self.n_buckets or offs[t1 - t0] > min(sym.shape[0], nlow.shape[0], low.shape[0], rows.shape[0]):
            raise ValueError("window buffers too small")
        for k in range(n):
            if self.pos[k] != min(t0, self.lengths[k]) + 1:
                raise ValueError("lanes are not at the window's start")
            for t in range(t0, min(t1, self.lengths[k])):
                if not 0 <= values[k, t] <= self.maxv:
                    raise ValueError("sample outside the range")
        with nogil:
            for k in prange(n, schedule="dynamic", chunksize=1):
                for t in range(t0, min(t1, self.lengths[k])):
                    at = offs[t - t0] + k
                    self.row_of(k, &rows[at, 0])
                    bk = bucket_of(zigzag(values[k, t] - self.pred[k]))
                    sym[at], nlow[at], low[at] = <int32_t>bk.sym, bk.nlow, bk.low
                    self.push(k, values[k, t])

    def decode_step(self, int64_t t, const int32_t[::1] sym, const int64_t[::1] low, double[:, ::1] rows):
        """Step t of the decoder: first the values of step t - 1 from their decoded buckets (sym, low
        per live lane; ignored at t = 0), then the rows of step t's live lanes into rows[:m].
        -> m, the lanes alive at step t. (decode_chunk runs every step with its own symbols.)"""
        cdef Py_ssize_t k, n = self.n_lanes, prev = 0, m
        if not 0 <= t <= self.steps or rows.shape[0] < n or rows.shape[1] != self.n_buckets:
            raise ValueError("step outside the lanes")
        if t > 0:
            while prev < n and self.lengths[prev] > t - 1:
                prev += 1
            if sym.shape[0] < prev or low.shape[0] < prev:
                raise ValueError("decoded symbols missing")
            for k in range(prev):
                if not 0 <= sym[k] < self.n_buckets or low[k] < 0:
                    raise ValueError("decoded symbol outside the alphabet")
        with nogil:
            m = self.step_lanes(t, sym, low, rows)
        return m

    def decode_chunk(self, const uint32_t[::1] sym_words, const uint32_t[::1] low_words, object progress=None):
        """The decoder over the whole chunk: at every step each live lane's bucket is range-decoded
        here from the symbol stream's words under the lane's row, and its low bits from the low-bit
        stream's words (range_decoder.pxd: what the encoder's coders wrote), then the step is taken.
        progress(fraction) now and then."""
        cdef Py_ssize_t n = self.n_lanes, nbk = self.n_buckets, steps = self.steps, t = 0, m, k, end
        cdef RangeDecoder ds, dl
        cdef int32_t got
        cdef int64_t v
        cdef bint bad = False
        rows_a = np.zeros((n, nbk), np.float64)
        sym_a, low_a = np.zeros(n, np.int32), np.zeros(n, np.int64)
        cdef double[:, ::1] rows = rows_a
        cdef int32_t[::1] sym = sym_a
        cdef int64_t[::1] low = low_a
        range_decoder_init(&ds, &sym_words[0] if sym_words.shape[0] else NULL, sym_words.shape[0])
        range_decoder_init(&dl, &low_words[0] if low_words.shape[0] else NULL, low_words.shape[0])
        with nogil:
            m = self.step_lanes(0, sym, low, rows)
        while t < steps and not bad:
            if progress is not None and t:
                progress(t / steps)
            end = min(t + 4096, steps)
            with nogil:
                while t < end and not bad:
                    for k in range(m):
                        got = range_decode_counts(&ds, &rows[k, 0], nbk)
                        v = -1 if got < 0 else range_decode_low_bits(&dl, low_bits_of_bucket(got))
                        if v < 0:
                            bad = True
                            break
                        sym[k], low[k] = got, v
                    if not bad:
                        t += 1
                        m = self.step_lanes(t, sym, low, rows)
        if bad:
            raise ValueError("corrupt stream: a bucket or low bits the range decoder cannot place")

    cdef Py_ssize_t step_lanes(self, int64_t t, const int32_t[::1] sym, const int64_t[::1] low,
                               double[:, ::1] rows) noexcept nogil:
        """decode_step's work, its arguments known good: step t - 1's values in, step t's rows out."""
        cdef Py_ssize_t k, n = self.n_lanes, prev = 0, m = 0, busy
        if t > 0:
            while prev < n and self.lengths[prev] > t - 1:
                prev += 1
        while m < n and self.lengths[m] > t:
            m += 1
        busy = max(prev, m)
        if busy < PARALLEL_LANES:  # a parallel region per step costs more than a few lanes' work
            for k in range(busy):
                self.decode_lane(k, k < prev, k < m, sym, low, rows)
        else:
            for k in prange(busy, schedule="static", chunksize=1):
                self.decode_lane(k, k < prev, k < m, sym, low, rows)
        return m

    cdef void decode_lane(self, Py_ssize_t k, bint decoded, bint alive, const int32_t[::1] sym,
                          const int64_t[::1] low, double[:, ::1] rows) noexcept nogil:
        """Lane k's part of a decoder step: its decoded value in (a damaged stream's value is
        clipped into the range: the container's checksum refuses the result), its next row out."""
        if decoded:
            self.push(k, clip(self.pred[k] + unzigzag(value_of(sym[k], low[k])), 0, self.maxv))
        if alive:
            self.row_of(k, &rows[k, 0])

    def lane_values(self):
        """The lanes' values so far [lane, step] (the decoder's output)."""
        return self.values_a
