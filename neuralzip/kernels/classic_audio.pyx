# Kernels of the classical audio model (neuralzip/models/classic_audio.py is the face):
# the encoder's per-block analysis (stereo mode, wasted bits, LPC by Levinson-Durbin) and
# the lockstep residual coding of every block of a chunk.
#
# The analysis is float64 and runs on the encoder only: its results (orders, shifts,
# quantised coefficients) are stored, so the decoder never repeats it. Everything that
# feeds the coder is integer, so a file decodes exactly on any machine.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport floor, log2, rint
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from neuralzip.kernels.audio cimport (N_STEREO_MODES, copy_row, scale_class, stereo_channel, stereo_restore,
                                      wasted_bits)
from neuralzip.kernels.primitives cimport Bucket, bucket_of, count_update, unzigzag, value_of, zigzag

cdef enum:
    C_MAX_ORDER = 32
    C_PRECISION = 15
    C_NCLS = 80
    C_INC = 32
    C_LIMIT = 1 << 16
    # most always-zero low bits a stored plan may claim (64-bit shifts stay defined)
    C_MAX_WASTED = 63

MAX_ORDER = C_MAX_ORDER
PRECISION = C_PRECISION  # bits per quantised coefficient, sign included
NCLS = C_NCLS
INC = C_INC
LIMIT = C_LIMIT


cdef class BlockPlans:
    """Per block: stereo mode, and per coded channel the always-zero low bits (`shifts`), the LPC
    order, the coefficient shift and the quantised coefficients. Arrays: modes (blocks,),
    shifts/orders/qshifts (blocks, channels), coefs (blocks, channels, MAX_ORDER), int64."""

    def __init__(self, Py_ssize_t nblocks, Py_ssize_t nch):
        self.nblocks, self.nch = nblocks, nch
        self.modes = np.zeros(nblocks, np.int64)
        self.shifts = np.zeros((nblocks, nch), np.int64)
        self.orders = np.zeros((nblocks, nch), np.int64)
        self.qshifts = np.zeros((nblocks, nch), np.int64)
        self.coefs = np.zeros((nblocks, nch, C_MAX_ORDER), np.int64)

    def pack(self) -> bytes:
        """The side information that stores the plans (read back by unpack)."""
        out = []
        for b in range(self.nblocks):
            out.append(bytes([self.modes[b]]))
            for c in range(self.nch):
                order = int(self.orders[b, c])
                out.append(bytes([self.shifts[b, c], order, self.qshifts[b, c]]))
                out.append(np.asarray(self.coefs[b, c, :order], "<i2").tobytes())
        return b"".join(out)

    @staticmethod
    def unpack(data: bytes, Py_ssize_t nblocks, Py_ssize_t nch) -> BlockPlans:
        """Plans from stored side information; every field is checked, since it comes from a file."""
        plans = BlockPlans(nblocks, nch)
        pos = 0
        try:
            for b in range(nblocks):
                mode = data[pos]
                pos += 1
                if mode >= N_STEREO_MODES:
                    raise ValueError
                plans.modes[b] = mode
                for c in range(nch):
                    w, order, qs = data[pos], data[pos + 1], data[pos + 2]
                    pos += 3
                    if order > C_MAX_ORDER or qs > 31 or w > C_MAX_WASTED:
                        raise ValueError
                    plans.shifts[b, c], plans.orders[b, c], plans.qshifts[b, c] = w, order, qs
                    plans.coefs[b, c, :order] = np.frombuffer(data, "<i2", order, pos)
                    pos += 2 * order
        except (IndexError, ValueError):
            raise ValueError("corrupt side information") from None
        if pos != len(data):
            raise ValueError("corrupt side information")
        return plans


# -- encoder analysis (float64, results stored) --------------------------------------------------

@cython.boundscheck(False)
cdef void levinson(const double* x, Py_ssize_t n, Py_ssize_t max_order, double* xw, double* coefs,
                   double* errs) noexcept nogil:
    """Levinson-Durbin on the Welch-windowed autocorrelation: coefs[k * C_MAX_ORDER + j] holds the
    order-(k+1) predictor, errs[k] the prediction error of order k. xw: n doubles of scratch."""
    cdef double r[C_MAX_ORDER + 1]
    cdef double a[C_MAX_ORDER]
    cdef double prev[C_MAX_ORDER]
    cdef double t, s, err, acc, ref
    cdef Py_ssize_t i, j, k, lag
    for i in range(n):  # Welch window
        t = (2.0 * i - (n - 1)) / (n + 1)
        xw[i] = x[i] * (1.0 - t * t)
    for lag in range(max_order + 1):
        s = 0.0
        for i in range(lag, n):
            s += xw[i] * xw[i - lag]
        r[lag] = s
    for i in range(C_MAX_ORDER * C_MAX_ORDER):
        coefs[i] = 0.0
    for i in range(max_order + 1):
        errs[i] = 0.0
    for i in range(C_MAX_ORDER):
        a[i] = 0.0
    errs[0] = r[0]
    err = r[0]
    for k in range(max_order):
        if err <= 0.0:
            for j in range(k, max_order):
                errs[j + 1] = 0.0
                for i in range(k):
                    coefs[j * C_MAX_ORDER + i] = a[i]
            break
        acc = r[k + 1]
        for j in range(k):
            acc -= a[j] * r[k - j]
        ref = acc / err
        for j in range(max_order):
            prev[j] = a[j]
        a[k] = ref
        for j in range(k):
            a[j] = prev[j] - ref * prev[k - 1 - j]
        err *= 1.0 - ref * ref
        errs[k + 1] = err
        for j in range(k + 1):
            coefs[k * C_MAX_ORDER + j] = a[j]


@cython.boundscheck(False)
cdef int64_t quantize(const double* a, Py_ssize_t n, int64_t* q) noexcept nogil:
    """Coefficients as PRECISION-bit integers scaled by 2^shift (rounded half to even, with error
    feedback so the rounded filter stays close). -> shift."""
    cdef double cmax = 0.0, v, carry = 0.0
    cdef int64_t limit = (1 << (C_PRECISION - 1)) - 1, shift = 0, qi
    cdef Py_ssize_t i
    for i in range(n):
        v = a[i] if a[i] >= 0 else -a[i]
        if v > cmax:
            cmax = v
    if cmax > 0:
        shift = C_PRECISION - 2 - <int64_t>floor(log2(cmax))
    shift = 0 if shift < 0 else (31 if shift > 31 else shift)
    for i in range(n):
        v = a[i] * <double>(<int64_t>1 << shift) + carry
        qi = <int64_t>rint(v)
        qi = -limit if qi < -limit else (limit if qi > limit else qi)
        carry = v - qi
        q[i] = qi
    return shift


cdef inline double bits_estimate(double err, Py_ssize_t n) noexcept nogil:
    cdef double v = err / n
    if 1e-3 > v:
        v = 1e-3
    return 0.5 * n * log2(v)


@cython.boundscheck(False)
cdef Py_ssize_t analyse(const int64_t* x, Py_ssize_t n, int64_t* out_q, int64_t* qshift, double* est,
                        double* work) noexcept nogil:
    """Best LPC order for one coded channel of one block by Levinson-Durbin's error estimates
    (residual bits + PRECISION bits per coefficient). -> order; the shift and estimated bits go to
    qshift/est, the quantised coefficients to out_q. work: 2n + C_MAX_ORDER^2 + C_MAX_ORDER + 1 doubles."""
    cdef Py_ssize_t i, k, best_k = 0, max_order
    cdef bint nonzero = False
    cdef double best, e
    cdef double* xd = work
    cdef double* xw = work + n
    cdef double* coefs = work + 2 * n
    cdef double* errs = coefs + C_MAX_ORDER * C_MAX_ORDER
    qshift[0] = 0
    est[0] = 0.0
    for i in range(n):
        if x[i] != 0:
            nonzero = True
            break
    if n < 2 or not nonzero:
        return 0
    max_order = n - 1 if n - 1 < C_MAX_ORDER else C_MAX_ORDER
    for i in range(n):
        xd[i] = <double>x[i]
    levinson(xd, n, max_order, xw, coefs, errs)
    best = bits_estimate(errs[0], n)
    for k in range(1, max_order + 1):
        e = bits_estimate(errs[k], n) + k * C_PRECISION
        if e < best:
            best_k = k
            best = e
    est[0] = best
    if best_k == 0:
        return 0
    qshift[0] = quantize(coefs + (best_k - 1) * C_MAX_ORDER, best_k, out_q)
    return best_k


@cython.boundscheck(False)
cdef void plan_block(const int64_t* block, Py_ssize_t n, Py_ssize_t nch, int64_t* mode_out, int64_t* shifts,
                     int64_t* orders, int64_t* qshifts, int64_t* coefs, int64_t* coded,
                     Py_ssize_t coded_stride, int64_t* sigs, double* work) noexcept nogil:
    """One block (n frames of nch interleaved channels): stereo mode, then per coded channel c the
    wasted bits, order, shift and coefficients (coefs + c * C_MAX_ORDER); coded (if not NULL) gets
    the coded signal of channel c at c * coded_stride. sigs: 5n int64 of scratch."""
    cdef Py_ssize_t i, c, m, best = 0
    cdef int64_t w, qs
    cdef int64_t mode = 0
    cdef int64_t scratch_q[C_MAX_ORDER]
    cdef double est[4]
    cdef double cost[4]
    cdef int64_t* x = sigs + 4 * n
    if nch == 2:
        for i in range(n):  # L R S M
            sigs[i] = block[2 * i]
            sigs[n + i] = block[2 * i + 1]
            sigs[2 * n + i] = stereo_channel(block[2 * i], block[2 * i + 1], 2, 0)
            sigs[3 * n + i] = stereo_channel(block[2 * i], block[2 * i + 1], 3, 0)
        for m in range(4):
            w = wasted_bits(sigs + m * n, n)
            for i in range(n):
                x[i] = sigs[m * n + i] >> w
            analyse(x, n, scratch_q, &qs, &est[m], work)
        # modes LR, LS, SR, MS as pairs of (L, R, S, M) = (0, 1, 2, 3)
        cost[0] = est[0] + est[1]
        cost[1] = est[0] + est[2]
        cost[2] = est[2] + est[1]
        cost[3] = est[3] + est[2]
        for m in range(1, 4):
            if cost[m] < cost[best]:
                best = m
        mode = best
    mode_out[0] = mode
    for c in range(nch):
        for i in range(n):
            if nch == 2:
                x[i] = stereo_channel(block[2 * i], block[2 * i + 1], mode, c)
            else:
                x[i] = block[i * nch + c]
        w = wasted_bits(x, n)
        shifts[c] = w
        for i in range(n):
            x[i] = x[i] >> w
        orders[c] = analyse(x, n, coefs + c * C_MAX_ORDER, &qshifts[c], &est[0], work)
        if coded != NULL:
            for i in range(n):
                coded[c * coded_stride + i] = x[i]


def plan_blocks(const int64_t[:, ::1] samples, const int64_t[::1] starts, const int64_t[::1] lengths,
                BlockPlans plans, int64_t[:, :, ::1] coded=None):
    """The encoder's per-block analysis, over many blocks at once (in parallel): block b is
    samples[starts[b]:starts[b] + lengths[b]] -> plans[b]; coded[b, c, :length] (if given) gets the
    coded signal of channel c."""
    cdef Py_ssize_t nb = starts.shape[0], nch = samples.shape[1], frames = samples.shape[0]
    cdef Py_ssize_t b, n, longest = 0, coded_stride = 0
    if lengths.shape[0] != nb or plans.nblocks != nb or plans.nch != nch:
        raise ValueError("plan_blocks: blocks and plans do not match")
    for b in range(nb):
        if lengths[b] < 0 or (lengths[b] > 0 and (starts[b] < 0 or starts[b] + lengths[b] > frames)):
            raise ValueError("plan_blocks: block outside the samples")
        longest = max(longest, lengths[b])
    if coded is not None:
        if coded.shape[0] != nb or coded.shape[1] != nch or coded.shape[2] < longest:
            raise ValueError("plan_blocks: coded has the wrong shape")
        coded_stride = coded.shape[2]
    cdef int64_t[::1] modes = plans.modes
    cdef int64_t[:, ::1] shifts = plans.shifts, orders = plans.orders, qshifts = plans.qshifts
    cdef int64_t[:, :, ::1] coefs = plans.coefs
    cdef int64_t* sigs
    cdef double* work
    cdef int64_t* coded_at
    if nb == 0 or nch == 0:
        return
    for b in prange(nb, nogil=True, schedule="dynamic"):
        n = lengths[b]
        if n == 0:
            continue
        sigs = <int64_t*>malloc(5 * n * sizeof(int64_t))
        work = <double*>malloc((2 * n + C_MAX_ORDER * C_MAX_ORDER + C_MAX_ORDER + 1) * sizeof(double))
        coded_at = NULL
        if coded is not None:
            coded_at = &coded[b, 0, 0]
        if sigs != NULL and work != NULL:
            plan_block(&samples[starts[b], 0], n, nch, &modes[b], &shifts[b, 0], &orders[b, 0], &qshifts[b, 0],
                       &coefs[b, 0, 0], coded_at, coded_stride, sigs, work)
        else:
            orders[b, 0] = -1  # reported below (no memory)
        free(sigs)
        free(work)
    for b in range(nb):
        if orders[b, 0] < 0:
            raise MemoryError()


# -- lockstep residual coding ---------------------------------------------------------------------

cdef class Residuals:
    """The lockstep coding state of one chunk: every block and channel advances one sample per
    step, so one coder call codes (or decodes) sample t of all of them (blocks decoded in
    lockstep; the counts are shared and updated per step).

    sig (blocks, channels, block length): the coded signals (the encoder's input, the decoder's
    output); counts (NCLS, buckets): the adaptive counts, starting from a prior. Per step, at
    positions 0..m-1 (active blocks x channels, in coding order): preds, classes, rows (the count
    row each symbol is coded under), sym/nlow/low (the bucket symbols and their low bits)."""
    cdef readonly object sig, lengths, counts, totals, ema, preds, classes, rows, sym, nlow, low
    cdef readonly BlockPlans plans
    cdef readonly Py_ssize_t nbk
    # typed views of the arrays above, taken once (a step is short: per-call views would show)
    cdef int64_t[:, :, ::1] sig_v, coefs_v
    cdef int64_t[:, ::1] orders_v, qshifts_v, ema_v, counts_v
    cdef int64_t[::1] lengths_v, totals_v, preds_v, classes_v, nlow_v, low_v
    cdef int32_t[::1] sym_v
    cdef double[:, ::1] rows_v

    def __init__(self, sig, lengths, BlockPlans plans, prior_counts):
        self.sig = sig
        self.lengths = np.ascontiguousarray(lengths, np.int64)
        self.plans = plans
        nblk, nch, blen = sig.shape
        if sig.dtype != np.int64 or not sig.flags.c_contiguous or len(self.lengths) != nblk:
            raise ValueError("Residuals: sig must be C-contiguous int64 (blocks, channels, block length)")
        if plans.nblocks != nblk or plans.nch != nch or (self.lengths > blen).any() or (self.lengths < 0).any():
            raise ValueError("Residuals: plans or lengths do not match the blocks")
        if (plans.orders < 0).any() or (plans.orders > C_MAX_ORDER).any() or (plans.qshifts < 0).any() \
                or (plans.qshifts > 63).any():
            raise ValueError("Residuals: LPC order or shift out of range")
        self.counts = np.array(prior_counts, np.int64, order="C")  # a copy: it adapts
        if self.counts.ndim != 2 or self.counts.shape[0] != C_NCLS:
            raise ValueError("Residuals: counts must be (NCLS, buckets)")
        self.nbk = self.counts.shape[1]
        self.totals = self.counts.sum(axis=1)
        self.ema = np.full((nblk, nch), 16 << 4, np.int64)
        width = nblk * nch
        self.preds = np.empty(width, np.int64)
        self.classes = np.empty(width, np.int64)
        self.rows = np.empty((width, self.nbk), np.float64)
        self.sym = np.zeros(width, np.int32)
        self.nlow = np.zeros(width, np.int64)
        self.low = np.zeros(width, np.int64)
        self.sig_v, self.coefs_v = self.sig, plans.coefs
        self.orders_v, self.qshifts_v, self.ema_v, self.counts_v = plans.orders, plans.qshifts, self.ema, self.counts
        self.lengths_v, self.totals_v, self.preds_v, self.classes_v = self.lengths, self.totals, self.preds, self.classes
        self.nlow_v, self.low_v, self.sym_v, self.rows_v = self.nlow, self.low, self.sym, self.rows

    cdef check_step(self, Py_ssize_t t):
        if t < 0 or t >= self.sig_v.shape[2]:
            raise ValueError("step outside the block")

    @cython.boundscheck(False)
    def context(self, Py_ssize_t t) -> int:
        """Prediction, context class and count row of every active (block, channel) at step t.
        -> m, the number of active positions."""
        self.check_step(t)
        cdef int64_t[:, :, ::1] sig = self.sig_v, coefs = self.coefs_v
        cdef int64_t[:, ::1] orders = self.orders_v, qshifts = self.qshifts_v, ema = self.ema_v, counts = self.counts_v
        cdef int64_t[::1] lengths = self.lengths_v, preds = self.preds_v, classes = self.classes_v
        cdef double[:, ::1] rows = self.rows_v
        cdef Py_ssize_t k, c, b, j, m = 0, order, nch = sig.shape[1], nbk = self.nbk
        cdef int64_t acc, cls
        with nogil:
            for k in range(sig.shape[0]):
                if t >= lengths[k]:
                    continue
                for c in range(nch):
                    # integer prediction of x[t] from x[:t]; a short fixed warm-up before `order` samples
                    order = orders[k, c]
                    if order == 0 or t == 0:
                        acc = 0
                    elif t < order:
                        acc = sig[k, c, t - 1] if t == 1 else 2 * sig[k, c, t - 1] - sig[k, c, t - 2]
                    else:
                        acc = 0
                        for j in range(order):
                            acc = acc + coefs[k, c, j] * sig[k, c, t - 1 - j]
                        acc = acc >> qshifts[k, c]
                    preds[m] = acc
                    cls = scale_class(ema[k, c], C_NCLS)
                    classes[m] = cls
                    copy_row(&rows[m, 0], &counts[cls, 0], nbk)
                    m += 1
        return m

    @cython.boundscheck(False)
    def symbols(self, Py_ssize_t t) -> None:
        """Encoder: the bucket symbols and low bits of sample t's residuals (after context(t))."""
        self.check_step(t)
        cdef int64_t[:, :, ::1] sig = self.sig_v
        cdef int64_t[::1] lengths = self.lengths_v, preds = self.preds_v, nlow = self.nlow_v, low = self.low_v
        cdef int32_t[::1] sym = self.sym_v
        cdef Py_ssize_t k, c, m = 0
        cdef Bucket bk
        for k in range(sig.shape[0]):
            if t >= lengths[k]:
                continue
            for c in range(sig.shape[1]):
                bk = bucket_of(zigzag(sig[k, c, t] - preds[m]))
                if bk.sym >= self.nbk:
                    raise ValueError("residual outside the alphabet of this bit depth")
                sym[m] = <int32_t>bk.sym
                nlow[m] = bk.nlow
                low[m] = bk.low
                m += 1

    @cython.boundscheck(False)
    def update(self, Py_ssize_t t, bint decoded) -> None:
        """Adapt to sample t (decoded: first rebuild it from sym/low into sig)."""
        self.check_step(t)
        cdef int64_t[:, :, ::1] sig = self.sig_v
        cdef int64_t[::1] lengths = self.lengths_v, preds = self.preds_v, classes = self.classes_v
        cdef int64_t[::1] low = self.low_v, totals = self.totals_v
        cdef int32_t[::1] sym = self.sym_v
        cdef int64_t[:, ::1] ema = self.ema_v, counts = self.counts_v
        cdef Py_ssize_t k, c, m = 0, nbk = self.nbk
        cdef int64_t r, cls, s
        for k in range(sig.shape[0]):
            if t >= lengths[k]:
                continue
            for c in range(sig.shape[1]):
                s = sym[m]
                if s < 0 or s >= nbk:  # decoded symbols index the count rows
                    raise ValueError("corrupt stream: bucket symbol outside the alphabet")
                if decoded:
                    sig[k, c, t] = preds[m] + unzigzag(value_of(s, low[m]))
                r = sig[k, c, t] - preds[m]
                if r < 0:
                    r = -r
                ema[k, c] += ((r << 4) - ema[k, c]) >> 4
                cls = classes[m]  # from context(t): scale_class < NCLS
                count_update(&counts[cls, 0], &totals[cls], nbk, s, C_INC, C_LIMIT)
                m += 1


def restore_blocks(const int64_t[:, :, ::1] sig, const int64_t[::1] starts, const int64_t[::1] lengths,
                   BlockPlans plans, int32_t[:, ::1] out):
    """Decoder: the original samples of every block (wasted bits back, inverse stereo transform)
    into out[starts[k]:starts[k] + lengths[k]]."""
    cdef Py_ssize_t k, c, i, nch = out.shape[1]
    cdef const int64_t[::1] modes = plans.modes
    cdef const int64_t[:, ::1] shifts = plans.shifts
    cdef int64_t a, b, left, right
    if sig.shape[0] != starts.shape[0] or sig.shape[1] != nch or plans.nblocks != sig.shape[0]:
        raise ValueError("restore_blocks: shapes do not match")
    if (plans.shifts < 0).any() or (plans.shifts > C_MAX_WASTED).any() or (plans.modes < 0).any() \
            or (plans.modes >= N_STEREO_MODES).any():
        raise ValueError("restore_blocks: corrupt plans")
    for k in range(sig.shape[0]):
        if starts[k] < 0 or lengths[k] < 0 or lengths[k] > sig.shape[2] or starts[k] + lengths[k] > out.shape[0]:
            raise ValueError("restore_blocks: block outside the recording")
        for i in range(lengths[k]):
            if nch == 2:
                a = sig[k, 0, i] << shifts[k, 0]
                b = sig[k, 1, i] << shifts[k, 1]
                stereo_restore(modes[k], a, b, &left, &right)
                out[starts[k] + i, 0] = <int32_t>left
                out[starts[k] + i, 1] = <int32_t>right
            else:
                for c in range(nch):
                    out[starts[k] + i, c] = <int32_t>(sig[k, c, i] << shifts[k, c])
