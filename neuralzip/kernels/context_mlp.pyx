# The context-MLP image model's per-step loops (the model is described in
# neuralzip/models/context_mlp.py): the network's integer inputs, the integer pmf rows
# the coder uses (exact on any machine), and the float model's bits for the report.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport exp, log2
from libc.stdint cimport int32_t, int64_t
from neuralzip.kernels.classic_image cimport N_BASE, N_CLASSES, StepBuffers
from neuralzip.kernels.logistic cimport Z_MAX, mixture_row

cdef enum:
    FEATURE_LIMIT = 255  # features are clipped to -255..255
    MIX_SHIFT = 4        # the trained weight of the network against the adaptive counts is mix_w / 2**MIX_SHIFT
    # The weight a pixel's row uses is its channel and context class's entry of a table in
    # 1/2**WEIGHT_SHIFT (the trained weight, unless learned: learn_weights). A learning step moves
    # an entry by rate * (p_net - p_counts) / p_mixed of the coded bucket (the gradient of its
    # log-probability), at most WEIGHT_STEP_MAX, and keeps it within 0..1.
    WEIGHT_SHIFT = 16
    WEIGHT_STEP_MAX = 1 << 12
    RATE_MAX = 1 << 16

FEATURE_CLIP = FEATURE_LIMIT
MIX_BITS = MIX_SHIFT
WEIGHT_BITS = WEIGHT_SHIFT


cdef inline int64_t clip_feature(int64_t v) noexcept nogil:
    return -FEATURE_LIMIT if v < -FEATURE_LIMIT else (FEATURE_LIMIT if v > FEATURE_LIMIT else v)


cdef class MixtureTables:
    """What turns a network's mixture heads into pmf rows: the shipped lookup tables
    (lut.cdf/inv/exp), the bucket boundaries and spans (logistic.bucket_intervals), the
    number of components, and the float model's log-scale range (report only)."""
    cdef const int64_t[::1] cdf, inv, expt, bounds
    cdef const int64_t[:, ::1] spans
    cdef readonly Py_ssize_t k_mix
    cdef readonly double log_scale_min, log_scale_max

    def __init__(self, *, cdf, inv, expt, bounds, spans, Py_ssize_t k_mix, double log_scale_min,
                 double log_scale_max):
        self.cdf, self.inv, self.expt, self.bounds, self.spans = cdf, inv, expt, bounds, spans
        self.k_mix = k_mix
        self.log_scale_min, self.log_scale_max = log_scale_min, log_scale_max
        if not 1 <= k_mix <= 8:
            raise ValueError("mixture components out of range")
        if self.cdf.shape[0] != 2 * Z_MAX + 1 or self.inv.shape[0] < 1:
            raise ValueError("logistic tables have the wrong size")
        if self.spans.shape[1] != 4 or self.spans.shape[0] < 1 or self.bounds.shape[0] < 1:
            raise ValueError("bucket spans have the wrong shape")
        s = np.asarray(spans)
        if s.min() < 0 or s.max() >= self.bounds.shape[0]:
            raise ValueError("bucket spans point outside the boundaries")


@cython.boundscheck(False)
def features(StepBuffers step, Py_ssize_t c, Py_ssize_t n, float[:, ::1] x):
    """The network's integer inputs for the n pixels of a step, channel c, as integer-valued
    float32 rows: sub-predictions relative to the prediction, activity, the prediction, and
    for later channels the residuals of the two channels before."""
    cdef Py_ssize_t nsub = N_BASE if c == 0 else 2 * N_BASE, i, k
    cdef int64_t p
    if not 0 <= n <= step.n_max or x.shape[0] < n or x.shape[1] != nsub + (2 if c == 0 else 4):
        raise ValueError("feature rows do not fit the step")
    if not 0 <= c < step.resid.shape[1] or step.subs.shape[1] < nsub:
        raise ValueError("channel out of range")
    # local views: the compiler keeps their strides in registers
    cdef const int64_t[::1] preds = step.preds, acts = step.acts
    cdef const int64_t[:, ::1] subs = step.subs, resid = step.resid
    with nogil:
        for i in range(n):
            p = preds[i]
            for k in range(nsub):
                x[i, k] = clip_feature(subs[i, k] - p)
            x[i, nsub] = min(acts[i], <int64_t>FEATURE_LIMIT)
            x[i, nsub + 1] = p - 128
            if c > 0:
                x[i, nsub + 2] = clip_feature(resid[i, c - 1])
                x[i, nsub + 3] = clip_feature(resid[i, c - 2]) if c > 1 else 0


# The arrays are read through local views so the compiler keeps their strides in registers.
@cython.boundscheck(False)
@cython.cdivision(True)
cdef int mix_rows(MixtureTables tab, StepBuffers step, Py_ssize_t c, Py_ssize_t start, Py_ssize_t stop,
                  const int64_t[:, ::1] heads, const int64_t[:, ::1] weights, double[:, ::1] out,
                  int64_t[:, ::1] net_p, int64_t[:, ::1] count_p, int64_t[::1] head, int64_t[::1] row,
                  int64_t[::1] cj) noexcept nogil:
    """Rows start..stop-1 of step_rows, with this thread's scratch (head, row, cj).
    -> 1 if a row's context class or count total is impossible (a corrupt state), else 0."""
    cdef const int64_t[::1] cdf = tab.cdf, inv = tab.inv, expt = tab.expt, bounds = tab.bounds
    cdef const int64_t[:, ::1] spans = tab.spans
    cdef const int64_t[:, :, ::1] counts = step.counts
    cdef const int64_t[:, ::1] totals = step.totals
    cdef const int64_t[::1] preds = step.preds, classes = step.classes, flip = step.flip
    cdef Py_ssize_t i, j, b, nbk = out.shape[1], k_mix = tab.k_mix
    cdef int64_t one = <int64_t>1 << WEIGHT_SHIFT, maxv = step.maxv, total, ratio, cn, cls, p, w
    for i in range(start, stop):
        for j in range(head.shape[0]):  # a private copy: slicing heads here would share a refcount
            head[j] = heads[i, j]
        p = preds[i]
        if flip[i]:  # the coded residual is -(v - p): the mixture's mirror image (means negated)
            for j in range(k_mix):
                head[j] = -head[j]
            p = maxv - p
        total = mixture_row(p, maxv, head, k_mix, cdf, inv, expt, bounds, spans, cj, row)
        cls = classes[i]
        if not 0 <= cls < N_CLASSES or totals[c, cls] <= 0:
            return 1
        w = weights[c, cls]  # 0..one (learn_weights keeps it there)
        # the counts rescaled to the mixture's total (one division per row; both >= 0)
        ratio = (total << 16) // totals[c, cls]  # total < 2**42 (k_mix <= 8): no overflow
        for b in range(nbk):
            cn = (counts[c, cls, b] * ratio) >> 16
            net_p[i, b] = row[b]
            count_p[i, b] = cn
            out[i, b] = <double>(((w * row[b] + (one - w) * cn) >> WEIGHT_SHIFT) + 1)
    return 0


# Rows are independent and each is computed by one thread start to end, so how the
# rows are split among threads never changes a result.
@cython.cdivision(True)
def step_rows(MixtureTables tab, StepBuffers step, Py_ssize_t c, Py_ssize_t n, const int64_t[:, ::1] heads,
              const int64_t[:, ::1] weights, double[:, ::1] out, int64_t[:, ::1] net_p, int64_t[:, ::1] count_p,
              int n_threads):
    """Integer pmf rows of one step, channel c: each pixel's mixture (heads[i]) mixed with the
    count row of its context class, the network weighing weights[c, class] / 2**WEIGHT_BITS;
    net_p and count_p keep the two parts of every row (for learn_weights); n_threads blocks in
    parallel."""
    cdef Py_ssize_t nbk = tab.spans.shape[0], nblk = max(1, n_threads), blk
    if not 0 <= n <= step.n_max or heads.shape[0] < n or out.shape[0] < n or net_p.shape[0] < n or count_p.shape[0] < n:
        raise ValueError("rows do not fit the step")
    if (heads.shape[1] < 3 * tab.k_mix or out.shape[1] != nbk or step.counts.shape[2] != nbk
            or net_p.shape[1] != nbk or count_p.shape[1] != nbk):
        raise ValueError("mixture heads or rows have the wrong width")
    if not 0 <= c < step.counts.shape[0]:
        raise ValueError("channel out of range")
    check_weights(weights, step.counts.shape[0])
    head_a = np.zeros((nblk, 3 * tab.k_mix), np.int64)
    row_a = np.zeros((nblk, nbk), np.int64)
    cj_a = np.zeros((nblk, tab.bounds.shape[0]), np.int64)
    failed_a = np.zeros(nblk, np.int32)
    cdef int64_t[:, ::1] head = head_a, row = row_a, cj = cj_a
    cdef int32_t[::1] failed = failed_a
    for blk in prange(nblk, nogil=True, schedule="static", num_threads=nblk):
        failed[blk] = mix_rows(tab, step, c, blk * n // nblk, (blk + 1) * n // nblk, heads, weights, out, net_p,
                               count_p, head[blk], row[blk], cj[blk])
    if failed_a.any():
        raise ValueError("corrupt state: a count row has no total")


def check_weights(const int64_t[:, ::1] weights, Py_ssize_t nch):
    """The network's weights: one per channel and class, each in 0..1 (1/2**WEIGHT_BITS)."""
    if weights.shape[0] != nch or weights.shape[1] != N_CLASSES:
        raise ValueError("the weight table does not match the channels and classes")
    if np.asarray(weights).min() < 0 or np.asarray(weights).max() > (1 << WEIGHT_SHIFT):
        raise ValueError("a weight lies outside 0..1")


@cython.boundscheck(False)
def learn_weights(int64_t[:, ::1] weights, Py_ssize_t c, const int64_t[::1] classes, const int32_t[::1] sym,
                  const int64_t[:, ::1] net_p, const int64_t[:, ::1] count_p, const double[:, ::1] rows,
                  Py_ssize_t n, int64_t rate):
    """After a step's symbols are known, in pixel order: each pixel's entry of channel c's weights
    moves toward the part (network or counts) that gave its coded bucket more probability."""
    cdef Py_ssize_t i, b
    cdef int64_t cls, a, q, m, d, w, one = <int64_t>1 << WEIGHT_SHIFT
    if not 0 <= rate <= RATE_MAX:
        raise ValueError("learning rate out of range")
    if not 0 <= c < weights.shape[0] or weights.shape[1] != N_CLASSES:
        raise ValueError("channel out of range")
    if (classes.shape[0] < n or sym.shape[0] < n or net_p.shape[0] < n or count_p.shape[0] < n
            or rows.shape[0] < n or net_p.shape[1] != rows.shape[1] or count_p.shape[1] != rows.shape[1]):
        raise ValueError("learning inputs do not fit the step")
    for i in range(n):
        cls, b = classes[i], sym[i]
        if not (0 <= cls < N_CLASSES and 0 <= b < rows.shape[1]):
            raise ValueError("corrupt stream: symbol out of range")
        a, q = net_p[i, b], count_p[i, b]  # each < 2**42
        m = <int64_t>rows[i, b]  # >= 1: the mixed row's entry, exact in a double (< 2**53)
        d = (rate * (a - q)) // m  # floor division (the kernels' default); |rate * (a - q)| < 2**58
        d = -WEIGHT_STEP_MAX if d < -WEIGHT_STEP_MAX else (WEIGHT_STEP_MAX if d > WEIGHT_STEP_MAX else d)
        w = weights[c, cls] + d
        weights[c, cls] = 0 if w < 0 else (one if w > one else w)


@cython.boundscheck(False)
def float_bits(MixtureTables tab, int64_t maxv, const int64_t[::1] preds, const int64_t[::1] flip,
               const int32_t[::1] sym, const double[::1] csym, const double[::1] ctot, const int64_t[::1] wq,
               const double[:, ::1] heads, double[::1] out):
    """-log2 p of each coded bucket under the float model (float network outputs `heads`, true
    logistic CDF, mirrored where flip as in step_rows, the same mixing with the counts: csym = the
    bucket's count, ctot = the row's total, wq = the network's weight the row used, in
    1/2**WEIGHT_BITS): the report's nll_float_bits, never used for coding."""
    cdef Py_ssize_t n = preds.shape[0], k_mix = tab.k_mix, i, k, part
    cdef int64_t p, b, a, e
    cdef double lmax, wsum, mass, wk, mu, ls, inv_s, m, hi, lo, w, q
    if (sym.shape[0] != n or flip.shape[0] != n or csym.shape[0] != n or ctot.shape[0] != n or out.shape[0] != n
            or heads.shape[0] != n or wq.shape[0] != n):
        raise ValueError("float-model inputs differ in length")
    if heads.shape[1] < 3 * k_mix:
        raise ValueError("float heads have the wrong width")
    cdef const int64_t[::1] bounds = tab.bounds
    cdef const int64_t[:, ::1] spans = tab.spans
    cdef double log_scale_min = tab.log_scale_min, log_scale_max = tab.log_scale_max
    for i in range(n):
        if not 0 <= sym[i] < spans.shape[0]:
            raise ValueError("symbol out of range")
    for i in prange(n, nogil=True, schedule="static"):
        p = maxv - preds[i] if flip[i] else preds[i]
        b = sym[i]
        lmax = heads[i, 2 * k_mix]
        for k in range(1, k_mix):
            lmax = max(lmax, heads[i, 2 * k_mix + k])
        wsum = 0.0
        mass = 0.0
        for k in range(k_mix):
            wk = exp(heads[i, 2 * k_mix + k] - lmax)
            wsum = wsum + wk
            mu = -heads[i, k] if flip[i] else heads[i, k]
            ls = min(max(heads[i, k_mix + k], log_scale_min), log_scale_max)
            inv_s = exp(-ls)
            m = 0.0
            for part in range(2):
                a = bounds[spans[b, 2 * part]]
                e = bounds[spans[b, 2 * part + 1]]
                if e <= a:
                    continue
                hi = 1.0 if e >= maxv - p + 1 else 1.0 / (1.0 + exp(-((e - 0.5) - mu) * inv_s))
                lo = 0.0 if a <= -p else 1.0 / (1.0 + exp(-((a - 0.5) - mu) * inv_s))
                m = m + (hi - lo)
            mass = mass + wk * m
        w = wq[i] / <double>(1 << WEIGHT_SHIFT)
        q = w * mass / wsum + (1 - w) * csym[i] / ctot[i]
        out[i] = -log2(max(q, 1e-300))
