# The context-MLP image model's per-step loops (the model is described in
# neuralzip/models/context_mlp.py): the network's integer inputs, the integer pmf rows
# the coder uses (exact on any machine), the weight and the output layer learned while
# coding, and the float model's bits for the report.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport exp, log2
from libc.stdint cimport int32_t, int64_t
from neuralzip.kernels.classic_image cimport N_BASE, N_CLASSES, StepBuffers
from neuralzip.kernels.logistic cimport Z_MAX, cdf_at, clamped_inverse, mixture_row, saturation_reach

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
    # The output layer learned online (params "head": 2 and 3; correct_heads, learn_heads): each
    # channel has a table D [outputs, width + 1] (zero when a chunk starts) that adds
    #   (h . D[o, :width] + BIAS_INPUT * D[o, width]) / 2**CORRECTION_SHIFT, rounded, within +-HEAD_SHIFT_MAX
    # to head o, h the table's inputs: the last hidden layer's activations, then (in "head": 3)
    # indicator inputs (the pixel's position: see correct_heads), width in all. Gradients of -ln(the network's probability
    # of the coded bucket) are in 1/2**GRAD_SHIFT nat per head unit, each within +-GRAD_MAX (larger
    # steps from a few unlikely pixels made the learning diverge); the means' and scales' are a
    # central difference of the bucket's mass over +-MEAN_STEP (1/16 step) and +-SCALE_STEP (1/16
    # of a log unit). A step moves D by rate * (gradient . h summed over the step's pixels) /
    # (the summed power of their h, bias input included) / 2**RATE_SHIFT (NLMS's normalization),
    # truncated, each entry kept within +-ENTRY_MAX.
    CORRECTION_SHIFT = 16
    ENTRY_MAX = 1 << 26
    HEAD_SHIFT_MAX = 1 << 10
    BIAS_INPUT = 255
    GRAD_SHIFT = 16
    GRAD_ONE = 1 << GRAD_SHIFT
    GRAD_MAX = 1 << 14
    MEAN_STEP = 4
    SCALE_STEP = 4
    RATE_SHIFT = 4
    HEAD_RATE_MAX = 1 << 16
    # In double: every product h * D (< 2**16 * 2**26) and every sum of at most MAX_WIDTH of them,
    # and every product gradient * h (< 2**14 * 2**16) summed over at most MAX_ROWS pixels, is an
    # integer below 2**53: exact, in any order.
    MAX_WIDTH = 1024
    MAX_ROWS = 1 << 20
    MAX_OUTPUTS = 24  # 3 * the most components (8)

FEATURE_CLIP = FEATURE_LIMIT
GRAD_LIMIT, CORRECTION_LIMIT, HEAD_WIDTH_MAX = GRAD_MAX, ENTRY_MAX, MAX_WIDTH
# a step's summed gradient, clipped so that rate times it fits an int64 (an enum cannot hold it)
cdef int64_t STEP_MAX = (<int64_t>1) << 46
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
    cdef const int64_t[::1] preds = step.preds, classes = step.classes, crows = step.crows, flip = step.flip
    cdef Py_ssize_t i, j, b, nbk = out.shape[1], k_mix = tab.k_mix, nrows = counts.shape[1]
    cdef int64_t one = <int64_t>1 << WEIGHT_SHIFT, maxv = step.maxv, total, ratio, cn, cls, crow, p, w
    for i in range(start, stop):
        for j in range(head.shape[0]):  # a private copy: slicing heads here would share a refcount
            head[j] = heads[i, j]
        p = preds[i]
        if flip[i]:  # the coded residual is -(v - p): the mixture's mirror image (means negated)
            for j in range(k_mix):
                head[j] = -head[j]
            p = maxv - p
        total = mixture_row(p, maxv, head, k_mix, cdf, inv, expt, bounds, spans, cj, row)
        cls, crow = classes[i], crows[i]
        if not (0 <= cls < N_CLASSES and 0 <= crow < nrows) or totals[c, crow] <= 0:
            return 1
        w = weights[c, cls]  # 0..one (learn_weights keeps it there)
        # the pixel's count row rescaled to the mixture's total (one division per row; both >= 0)
        ratio = (total << 16) // totals[c, crow]  # total < 2**42 (k_mix <= 8): no overflow
        for b in range(nbk):
            cn = (counts[c, crow, b] * ratio) >> 16
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
    pixel's count row (that of its context class, or one of the class's rows by offset), the network
    weighing weights[c, class] / 2**WEIGHT_BITS;
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


# ---------------------------------------------------------------- the output layer learned online

@cython.boundscheck(False)  # b is checked by learn_heads, the spans when the tables were loaded
@cython.wraparound(False)
cdef inline int64_t bucket_mass(int64_t b, int64_t m16, int64_t iv, int64_t reach, int64_t p, int64_t maxv,
                                const int64_t[::1] cdf, const int64_t[::1] bounds,
                                const int64_t[:, ::1] spans) noexcept nogil:
    """Bucket b's mass (in 2**-CDF_BITS) under one component (mean m16, inverse scale iv with its
    saturation reach) for a value predicted at p."""
    cdef int64_t lo_edge = -p, hi_edge = maxv - p + 1
    cdef int64_t m = (cdf_at(bounds[spans[b, 1]], m16, iv, lo_edge, hi_edge, cdf, 16, reach)
                      - cdf_at(bounds[spans[b, 0]], m16, iv, lo_edge, hi_edge, cdf, 16, reach))
    if spans[b, 3] != spans[b, 2]:  # the bucket's second span (the buckets of single residuals have none)
        m += (cdf_at(bounds[spans[b, 3]], m16, iv, lo_edge, hi_edge, cdf, 16, reach)
              - cdf_at(bounds[spans[b, 2]], m16, iv, lo_edge, hi_edge, cdf, 16, reach))
    return m


cdef inline int64_t clip_grad(int64_t g) noexcept nogil:
    return -GRAD_MAX if g < -GRAD_MAX else (GRAD_MAX if g > GRAD_MAX else g)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)  # truncating divisions, the same in C on every machine
cdef void head_gradient(MixtureTables tab, const int64_t[:, ::1] heads, Py_ssize_t i, int64_t b, int64_t p,
                        int64_t maxv, bint flipped, int64_t[::1] w, int64_t[::1] mass, int64_t[::1] g) noexcept nogil:
    """g = the gradient of -ln(the network's probability of bucket b) by each of heads[i]'s units
    (the outputs as coded: means not yet mirrored), in 1/2**GRAD_SHIFT nat per unit; zero where
    the mixture gave the bucket no mass. w and mass are scratch of k_mix entries."""
    cdef const int64_t[::1] cdf = tab.cdf, inv = tab.inv, expt = tab.expt, bounds = tab.bounds
    cdef const int64_t[:, ::1] spans = tab.spans
    cdef Py_ssize_t k_mix = tab.k_mix, k, n_sc = inv.shape[0]
    cdef int64_t lmax = heads[i, 2 * k_mix], d, wsum = 0, total = 0, m16, si, lo, hi, up, down, sign, iv, reach
    for k in range(3 * k_mix):
        g[k] = 0
    for k in range(1, k_mix):
        lmax = max(lmax, heads[i, 2 * k_mix + k])
    sign = -1 if flipped else 1
    for k in range(k_mix):
        d = lmax - heads[i, 2 * k_mix + k]
        w[k] = expt[d] if d < expt.shape[0] else 0
        wsum += w[k]
        mass[k] = 0
        if w[k]:
            si = heads[i, k_mix + k]
            iv = clamped_inverse(inv, si)
            mass[k] = bucket_mass(b, sign * heads[i, k], iv, saturation_reach(iv, 16), p, maxv, cdf, bounds, spans)
        total += w[k] * mass[k]  # < 2**15 * 2**25 * 8
    if total <= 0:
        return
    for k in range(k_mix):
        if not w[k]:
            continue
        m16, si = sign * heads[i, k], heads[i, k_mix + k]
        # d(-ln P)/d mean: -w_k dP_k/dm / P; the mirrored mean moves the other way
        iv = clamped_inverse(inv, si)
        reach = saturation_reach(iv, 16)
        up = bucket_mass(b, m16 + MEAN_STEP, iv, reach, p, maxv, cdf, bounds, spans)
        down = bucket_mass(b, m16 - MEAN_STEP, iv, reach, p, maxv, cdf, bounds, spans)
        g[k] = clip_grad(-sign * (w[k] * (up - down) * GRAD_ONE) // (2 * MEAN_STEP * total))
        # d(-ln P)/d scale index, over the part of +-SCALE_STEP inside the table
        lo = max(si - SCALE_STEP, 0)
        hi = min(si + SCALE_STEP, n_sc - 1)
        if hi > lo:
            iv = inv[hi]
            up = bucket_mass(b, m16, iv, saturation_reach(iv, 16), p, maxv, cdf, bounds, spans)
            iv = inv[lo]
            down = bucket_mass(b, m16, iv, saturation_reach(iv, 16), p, maxv, cdf, bounds, spans)
            g[k_mix + k] = clip_grad(-(w[k] * (up - down) * GRAD_ONE) // ((hi - lo) * total))
        # d(-ln P)/d logit (1/16 nat): (w_k / 16) (1 / sum w - P_k / P)
        g[2 * k_mix + k] = clip_grad(((w[k] * GRAD_ONE) // wsum - (w[k] * mass[k] * GRAD_ONE) // total) // 16)


def check_correction(const double[:, ::1] table, Py_ssize_t width, Py_ssize_t outputs):
    """One channel's table: a row per output (at most MAX_OUTPUTS), width + 1 columns (the last
    the bias, width at most MAX_WIDTH), each entry an integer within +-ENTRY_MAX (held in a
    double, exactly; learn_heads keeps it so)."""
    cdef Py_ssize_t o, j
    if not 1 <= width <= MAX_WIDTH or not 1 <= outputs <= MAX_OUTPUTS:
        raise ValueError("the network is too wide to learn its output layer")
    if table.shape[0] != outputs or table.shape[1] != width + 1:
        raise ValueError("the correction table does not match the network")
    for o in range(outputs):
        for j in range(width + 1):
            if not (-ENTRY_MAX <= table[o, j] <= ENTRY_MAX and table[o, j] == <int64_t>table[o, j]):
                raise ValueError("a correction lies outside its range")


def check_marks(const int64_t[:, ::1] marks, Py_ssize_t n, Py_ssize_t indicators, int64_t mark_value):
    """The indicator inputs of n pixels: indicators inputs after the hidden ones, of which row i
    of marks names those that are mark_value (distinct, within 0..indicators - 1); the others are 0."""
    cdef Py_ssize_t i, k, q
    if not 0 <= indicators <= MAX_WIDTH or not 0 <= mark_value <= 65535 or marks.shape[1] > indicators:
        raise ValueError("indicator inputs out of range")
    if marks.shape[0] < n:
        raise ValueError("indicator inputs do not fit the step")
    for i in range(n):
        for k in range(marks.shape[1]):
            if not 0 <= marks[i, k] < indicators:
                raise ValueError("indicator inputs out of range")
            for q in range(k):
                if marks[i, q] == marks[i, k]:
                    raise ValueError("indicator inputs repeat")


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline bint hidden_row(const float[:, ::1] hidden, Py_ssize_t i, double[::1] h) noexcept nogil:
    """h[:width] = row i of the hidden activations (integers: the network's ReLU layers make
    them so); False if one is not within 0..65535."""
    cdef Py_ssize_t j
    cdef float v
    cdef bint ok = True
    for j in range(hidden.shape[1]):
        v = hidden[i, j]
        ok &= 0 <= v <= 65535  # NaN fails too
        h[j] = v
    return ok


# The table's inputs (correct_heads, learn_heads): the hidden activations (hidden [n, width]),
# then `indicators` inputs that are 0 but for those each pixel's row of marks names, which are
# mark_value (the pixel's position, for instance), then the bias input. The indicator inputs are
# summed as the dense inputs would be: every product and sum stays an exact integer, so the
# result is the same as with all of them written out.

@cython.boundscheck(False)
@cython.wraparound(False)
def correct_heads(int64_t[:, ::1] heads, const float[:, ::1] hidden, const int64_t[:, ::1] marks,
                  Py_ssize_t indicators, int64_t mark_value, const double[:, ::1] table, Py_ssize_t n,
                  int64_t[:, ::1] shift):
    """heads[i, o] += shift[i, o], the correction of output o by the channel's table (see the
    constants above) for the n pixels of a step; hidden holds their last hidden activations and
    marks their indicator inputs (see above)."""
    cdef Py_ssize_t width = hidden.shape[1], no = heads.shape[1], nm = marks.shape[1], i, j, k, o
    cdef int64_t v, half = (<int64_t>1) << (CORRECTION_SHIFT - 1)
    cdef bint failed = False
    if heads.shape[0] < n or hidden.shape[0] < n or shift.shape[0] < n or shift.shape[1] != no or n < 0:
        raise ValueError("heads do not fit the step")
    check_marks(marks, n, indicators, mark_value)
    check_correction(table, width + indicators, no)
    h_a = np.zeros(width + 3, np.float64)  # zero-padded to a multiple of 4
    cdef double[::1] h = h_a
    cdef double a0, a1, a2, a3, mv = <double>mark_value
    with nogil:
        for i in range(n):
            if not hidden_row(hidden, i, h):
                failed = True
                break
            for o in range(no):
                # four running sums (any order of these sums is exact: see MAX_WIDTH)
                a0 = a1 = a2 = a3 = 0
                for j in range(0, width - 3, 4):
                    a0 += h[j] * table[o, j]
                    a1 += h[j + 1] * table[o, j + 1]
                    a2 += h[j + 2] * table[o, j + 2]
                    a3 += h[j + 3] * table[o, j + 3]
                for j in range(width & ~3, width):
                    a0 += h[j] * table[o, j]
                for k in range(nm):
                    a1 += mv * table[o, width + marks[i, k]]
                v = (<int64_t>((a0 + a1) + (a2 + a3) + BIAS_INPUT * table[o, width + indicators]) + half) >> CORRECTION_SHIFT
                v = -HEAD_SHIFT_MAX if v < -HEAD_SHIFT_MAX else (HEAD_SHIFT_MAX if v > HEAD_SHIFT_MAX else v)
                shift[i, o] = v
                heads[i, o] += v
    if failed:
        raise ValueError("a hidden activation is out of range")


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)  # truncating divisions, the same in C on every machine
def learn_heads(MixtureTables tab, StepBuffers step, Py_ssize_t n, const int64_t[:, ::1] heads,
                const float[:, ::1] hidden, const int64_t[:, ::1] marks, Py_ssize_t indicators, int64_t mark_value,
                const int32_t[::1] sym, double[:, ::1] table, int64_t rate):
    """After a step's symbols are known: one step of the channel's table (see the constants
    above) on -ln of the network's probability of each coded bucket, heads being the corrected
    outputs the rows used (their means mirrored where the residual's sign was flipped, as
    step_rows mirrors them); hidden and marks: the table's inputs (see above correct_heads)."""
    cdef Py_ssize_t width = hidden.shape[1], no = heads.shape[1], nm = marks.shape[1], k_mix = tab.k_mix
    cdef Py_ssize_t cols = width + indicators, i, j, k, o
    cdef const int64_t[::1] preds = step.preds, flip = step.flip
    cdef int64_t maxv = step.maxv, power = 0, v, s, m
    cdef double go, row_power
    cdef bint failed = False
    if not 0 <= rate <= HEAD_RATE_MAX:
        raise ValueError("learning rate out of range")
    if (not 0 <= n <= min(step.n_max, MAX_ROWS) or heads.shape[0] < n or hidden.shape[0] < n or sym.shape[0] < n
            or no != 3 * k_mix):
        raise ValueError("learning inputs do not fit the step")
    check_marks(marks, n, indicators, mark_value)
    check_correction(table, cols, no)
    for i in range(n):
        if not 0 <= sym[i] < tab.spans.shape[0]:
            raise ValueError("corrupt stream: symbol out of range")
    sums_a = np.zeros((no, cols), np.float64)
    bias_a = np.zeros(no, np.int64)
    w_a, mass_a, g_a, h_a = np.zeros(k_mix, np.int64), np.zeros(k_mix, np.int64), np.zeros(no, np.int64), np.zeros(width)
    cdef double[:, ::1] sums = sums_a
    cdef int64_t[::1] bias = bias_a, w = w_a, mass = mass_a, g = g_a
    cdef double[::1] h = h_a
    cdef double mv = <double>mark_value
    with nogil:
        for i in range(n):
            if not hidden_row(hidden, i, h):
                failed = True
                break
            head_gradient(tab, heads, i, sym[i], maxv - preds[i] if flip[i] else preds[i], maxv, flip[i] != 0,
                          w, mass, g)
            row_power = 0
            for j in range(width):
                row_power += h[j] * h[j]  # < 2**32 * MAX_WIDTH: exact
            power += <int64_t>row_power + nm * mark_value * mark_value + BIAS_INPUT * BIAS_INPUT
            for o in range(no):
                if g[o] == 0:
                    continue
                bias[o] += g[o] * BIAS_INPUT
                go = <double>g[o]
                for j in range(width):
                    sums[o, j] += go * h[j]  # exact: see MAX_ROWS
                for k in range(nm):
                    sums[o, width + marks[i, k]] += go * mv
        if not failed:
            for o in range(no):
                for j in range(cols + 1):
                    s = bias[o] if j == cols else <int64_t>sums[o, j]
                    s = -STEP_MAX if s < -STEP_MAX else (STEP_MAX if s > STEP_MAX else s)
                    m = (rate * s) // power >> RATE_SHIFT  # power > 0: the bias input alone gives n * 255**2
                    v = <int64_t>table[o, j] - m
                    table[o, j] = -ENTRY_MAX if v < -ENTRY_MAX else (ENTRY_MAX if v > ENTRY_MAX else v)
    if failed:
        raise ValueError("a hidden activation is out of range")
