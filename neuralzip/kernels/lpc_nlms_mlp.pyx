# Per-sample kernels of the lpc-nlms-mlp audio model (neuralzip/models/lpc_nlms_mlp.py is the face).
#
# One *lane* is a stretch of the recording (all channels) whose adaptive state starts
# fresh, so lanes are independent: the encoder runs each lane start to end (in parallel),
# the decoder steps every lane of a chunk in lockstep, one coder call per time step for
# all of them (lanes decoded in lockstep).
#
# Per lane, channel c and frame t, the prediction cascade is
#   1. forward-adaptive LPC (coefficients and stereo mode chosen per block by the encoder
#      and stored), run on a history that continues across blocks;
#   2. a cascade of NLMS filters on the LPC residual (32 taps slow, then 16 taps slower
#      still; backward adaptive: integer weights, normalisation by an exact integer division);
#   3. the learned stage: a small quantized MLP that reads the recent final residuals, the
#      scale estimate and the cascade's output, and predicts a mean correction and a scale
#      class for the residual.
# The residual is coded as a bucket symbol under adaptive counts chosen by the scale class
# (table BASE without stage 3, NET with it; each block says which), plus uniform low bits.
# Both tables are updated at every sample whatever the block chose, so the encoder can
# price both options per block.
#
# Everything on the coding path is integer (the MLP is evaluated on integers held exactly
# in float64), so a file decodes exactly on any machine. Division keeps Python's floor
# semantics where an operand can be negative (floor_div below).
#
# The state lives in numpy arrays owned by LaneState (shapes fixed at construction); the
# loops read them through raw pointers (struct Lanes), so a per-sample call costs no
# reference counting. Histories are stored whole for the lane with an offset (HIST,
# RES_HIST) so t-1-j never goes below 0.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport floor, rint
from libc.stdint cimport int32_t, int64_t, uint8_t
from neuralzip.kernels.audio cimport copy_row, scale_class, stereo_channel, stereo_restore
from neuralzip.kernels.classic_audio cimport BlockPlans
from neuralzip.kernels.primitives cimport (Bucket, bucket_of, clip, count_update, floor_div, low_bits_of_bucket,
                                           unzigzag, value_of, zigzag)

# C constants (a trailing _ where the module also exports the name to Python)
cdef enum:
    C_MAX_ORDER = 32
    N_STAGES = 2
    MAX_TAPS_ = 32
    NLMS_SHIFT = 16  # weights carry 16 fractional bits
    HIST_ = 40  # history offset in cod/u (> MAX_ORDER, MAX_TAPS)
    RES_HIST_ = 8  # final residuals the network reads
    N_FEATURES_ = 12
    NCLS_ = 80
    INC_ = 32
    LIMIT_ = 1 << 16
    BASE_ = 0
    NET_ = 1
    FLOAT_ = 2
    CORR_UNIT_ = 5  # the mean correction is in units of scale / 2^CORR_UNIT
    U_CLIP = 1 << 20  # NLMS inputs (int32 histories, int64 sums far from overflow)
    E2_CLIP = 1 << 30  # stored final residuals (int32 history; the network reads them clipped further)
    SCRATCH = 7 + N_STAGES  # per (lane, channel): lpc pred, cascade pred, class, net class, net corr,
                            # float class, float corr, stage predictions

MAX_ORDER = C_MAX_ORDER
# the NLMS cascade: stage s predicts the residual left by the stages before it from its own last
# NLMS_TAPS[s] inputs, with step size 2^-NLMS_MU[s] (long and slow, then short and fast); predict
# and update spell these out as constants
NLMS_TAPS = (32, 16)
NLMS_MU = (4, 6)
MAX_TAPS = MAX_TAPS_
HIST = HIST_
RES_HIST = RES_HIST_
N_FEATURES = N_FEATURES_
NCLS = NCLS_
INC = INC_
LIMIT = LIMIT_
BASE, NET, FLOAT = BASE_, NET_, FLOAT_  # count tables: without the learned stage, with it, with its float twin
CORR_UNIT = CORR_UNIT_


ctypedef struct Lanes:
    Py_ssize_t nlanes, nch, lane, nblocks, blen, ntables, nbk
    int64_t vmax
    const int64_t* lengths
    int64_t* orig      # [lane][channel][lane frames]
    int64_t* cod       # [lane][channel][HIST + lane frames]: coded signal, after the block's transform
    int32_t* u         # [lane][channel][stage][HIST + lane frames]: NLMS inputs
    int32_t* e2        # [lane][channel][RES_HIST + lane frames]: final residuals
    int32_t* wn        # [lane][channel][stage][MAX_TAPS]: NLMS weights
    int64_t* norm      # [lane][channel][stage]: |window|^2 of each NLMS stage
    int64_t* ema       # [lane][channel]: 16x running mean of |residual| (fast)
    int64_t* emas      # [lane][channel]: the same, slow
    int32_t* cnt       # [lane][table][class][bucket]
    int32_t* tot       # [lane][table][class]
    int64_t* scratch   # [lane][channel][SCRATCH]
    const int64_t* modes     # plans, [lane * nblocks + block]
    const int64_t* wshift    # [lane * nblocks + block][channel]
    const int64_t* orders
    const int64_t* qshifts
    const int64_t* coefs     # [lane * nblocks + block][channel][MAX_ORDER]
    const uint8_t* flags     # [lane * nblocks + block]: the block uses the learned stage


ctypedef struct Net:
    Py_ssize_t nh, fnh
    const double* w1t  # [feature][hidden]
    const double* b1
    const double* m1
    int64_t s1
    const double* w2   # [2][hidden]
    const double* b2
    const double* m2
    int64_t s2
    const double* fw1  # float twin: [hidden][feature]
    const double* fb1
    const double* fw2  # [2][hidden]
    const double* fb2


cdef size_t address(object a, object dtype, tuple shape) except 0:
    """Data address of a C-contiguous array of exactly this dtype and shape (the kernels read it raw)."""
    if a.dtype != dtype or not a.flags.c_contiguous or tuple(a.shape) != shape:
        raise ValueError(f"kernel array: expected {np.dtype(dtype)} {shape}, got {a.dtype} {a.shape}")
    return <size_t>a.ctypes.data


cdef class NetWeights:
    """The learned stage: int8 weights, uint8 hidden activations and integer rescaling, held as
    integer-valued float64 (w1t is (features, hidden), the rescale is acc * m / 2^s), plus the
    float (training) twin used for the report only. Zero hidden units switch the stage off."""
    cdef readonly object w1t, b1, m1, w2, b2, m2, fw1, fb1, fw2, fb2
    cdef readonly int64_t s1, s2
    cdef readonly Py_ssize_t hidden
    cdef Net c

    def __init__(self, *, w1t, b1, m1, int64_t s1, w2, b2, m2, int64_t s2, fw1, fb1, fw2, fb2):
        f64 = lambda a: np.ascontiguousarray(a, np.float64)  # noqa: E731
        self.w1t, self.b1, self.m1, self.w2, self.b2, self.m2 = f64(w1t), f64(b1), f64(m1), f64(w2), f64(b2), f64(m2)
        self.fw1, self.fb1, self.fw2, self.fb2 = f64(fw1), f64(fb1), f64(fw2), f64(fb2)
        if self.w1t.ndim != 2 or self.fw1.ndim != 2 or not (1 <= s1 <= 62 and 1 <= s2 <= 62):
            raise ValueError("network weights of the wrong shape")
        nh, fnh = self.w1t.shape[1], self.fw1.shape[0]
        self.hidden, self.s1, self.s2 = nh, s1, s2
        d = np.float64
        self.c.nh, self.c.fnh, self.c.s1, self.c.s2 = nh, fnh, s1, s2
        self.c.w1t = <const double*>address(self.w1t, d, (N_FEATURES_, nh))
        self.c.b1 = <const double*>address(self.b1, d, (nh,))
        self.c.m1 = <const double*>address(self.m1, d, (nh,))
        self.c.w2 = <const double*>address(self.w2, d, (2, nh))
        self.c.b2 = <const double*>address(self.b2, d, (2,))
        self.c.m2 = <const double*>address(self.m2, d, (2,))
        self.c.fw1 = <const double*>address(self.fw1, d, (fnh, N_FEATURES_))
        self.c.fb1 = <const double*>address(self.fb1, d, (fnh,))
        self.c.fw2 = <const double*>address(self.fw2, d, (2, fnh))
        self.c.fb2 = <const double*>address(self.fb2, d, (2,))


cdef class LaneState:
    """The adaptive state of every lane of one chunk, with the chunk's block plans (plans[lane *
    nblocks + block]) and learned-stage flags (flags[lane, block]). Lanes are `lane` frames long at
    most, the first is the longest and lengths never increase (the active lanes of a step are a
    prefix, the decoder's coding order). `tables` is (count tables, NCLS, buckets): the initial
    counts of each table of every lane."""
    cdef readonly object lengths, orig, cod, u, e2, wn, norm, ema, emas, cnt, tot, scratch, flags
    cdef readonly BlockPlans plans
    cdef readonly Py_ssize_t nlanes, nch, lane, nblocks, blen, ntables, nbk
    cdef readonly int64_t vmax
    cdef object _work  # per-lane buffers of the kernels: features, hidden units, outputs, predictions
    cdef Lanes c

    def __init__(self, *, lengths, Py_ssize_t nch, Py_ssize_t blen, BlockPlans plans, tables, int64_t vmax):
        lengths = np.ascontiguousarray(lengths, np.int64)
        tables = np.asarray(tables)
        nlanes = len(lengths)
        lane = max(int(lengths[0]), 1) if nlanes else 1
        if nlanes == 0 or blen < 1 or (lengths < 0).any() or (np.diff(lengths) > 0).any():
            raise ValueError("lanes: lengths must be non-negative and non-increasing")
        nblocks = -(-lane // blen)
        if plans.nblocks != nlanes * nblocks or plans.nch != nch:
            raise ValueError("lanes: the plans do not match the lanes")
        if tables.ndim != 3 or tables.shape[1] != NCLS_ or tables.min(initial=1) < 1:
            raise ValueError("lanes: count tables of the wrong shape")
        totals = tables.sum(axis=2, dtype=np.int64)
        if totals.max(initial=0) >= 1 << 30:
            raise ValueError("lanes: initial counts too large")
        ntables, nbk = tables.shape[0], tables.shape[2]
        self.lengths, self.plans = lengths, plans
        self.nlanes, self.nch, self.lane, self.nblocks, self.blen = nlanes, nch, lane, nblocks, blen
        self.ntables, self.nbk, self.vmax = ntables, nbk, vmax
        self.orig = np.zeros((nlanes, nch, lane), np.int64)
        self.cod = np.zeros((nlanes, nch, HIST_ + lane), np.int64)
        self.u = np.zeros((nlanes, nch, N_STAGES, HIST_ + lane), np.int32)  # clipped to +-U_CLIP
        self.e2 = np.zeros((nlanes, nch, RES_HIST_ + lane), np.int32)  # clipped to +-E2_CLIP
        self.wn = np.zeros((nlanes, nch, N_STAGES, MAX_TAPS_), np.int32)  # clipped to +-U_CLIP
        self.norm = np.zeros((nlanes, nch, N_STAGES), np.int64)
        self.ema = np.full((nlanes, nch), 16 << 4, np.int64)
        self.emas = np.full((nlanes, nch), 16 << 4, np.int64)
        # int32 counts: the tables of every lane are the decoder's working set (cache); rows are
        # widened to float64 for the coder as they are copied out
        self.cnt = np.repeat(tables.astype(np.int32)[None], nlanes, axis=0)
        self.tot = np.repeat(totals.astype(np.int32)[None], nlanes, axis=0)
        self.scratch = np.zeros((nlanes, nch, SCRATCH), np.int64)
        self.flags = np.zeros((nlanes, nblocks), np.uint8)
        self._work = None
        i64, i32 = np.int64, np.int32
        self.c.nlanes, self.c.nch, self.c.lane, self.c.nblocks, self.c.blen = nlanes, nch, lane, nblocks, blen
        self.c.ntables, self.c.nbk, self.c.vmax = ntables, nbk, vmax
        self.c.lengths = <const int64_t*>address(self.lengths, i64, (nlanes,))
        self.c.orig = <int64_t*>address(self.orig, i64, (nlanes, nch, lane))
        self.c.cod = <int64_t*>address(self.cod, i64, (nlanes, nch, HIST_ + lane))
        self.c.u = <int32_t*>address(self.u, i32, (nlanes, nch, N_STAGES, HIST_ + lane))
        self.c.e2 = <int32_t*>address(self.e2, i32, (nlanes, nch, RES_HIST_ + lane))
        self.c.wn = <int32_t*>address(self.wn, i32, (nlanes, nch, N_STAGES, MAX_TAPS_))
        self.c.norm = <int64_t*>address(self.norm, i64, (nlanes, nch, N_STAGES))
        self.c.ema = <int64_t*>address(self.ema, i64, (nlanes, nch))
        self.c.emas = <int64_t*>address(self.emas, i64, (nlanes, nch))
        self.c.cnt = <int32_t*>address(self.cnt, i32, (nlanes, ntables, NCLS_, nbk))
        self.c.tot = <int32_t*>address(self.tot, i32, (nlanes, ntables, NCLS_))
        self.c.scratch = <int64_t*>address(self.scratch, i64, (nlanes, nch, SCRATCH))
        nb = nlanes * nblocks
        self.c.modes = <const int64_t*>address(plans.modes, i64, (nb,))
        self.c.wshift = <const int64_t*>address(plans.shifts, i64, (nb, nch))
        self.c.orders = <const int64_t*>address(plans.orders, i64, (nb, nch))
        self.c.qshifts = <const int64_t*>address(plans.qshifts, i64, (nb, nch))
        self.c.coefs = <const int64_t*>address(plans.coefs, i64, (nb, nch, C_MAX_ORDER))
        self.c.flags = <const uint8_t*>address(self.flags, np.uint8, (nlanes, nblocks))
        self._check_plans()

    def _check_plans(self):
        """Plans index the histories and shift 64-bit values: checked once (they may come from a file)."""
        p = self.plans
        if (p.orders < 0).any() or (p.orders > C_MAX_ORDER).any() or (p.qshifts < 0).any() or (p.qshifts > 63).any() \
                or (p.shifts < 0).any() or (p.shifts > 63).any() or (p.modes < 0).any() or (p.modes > 3).any():
            raise ValueError("corrupt side information")

    cdef tuple work(self, Py_ssize_t hidden):
        if self._work is None or self._work[1].shape[1] != hidden:
            self._work = (np.zeros((self.nlanes, N_FEATURES_), np.int64), np.zeros((self.nlanes, hidden), np.float64),
                          np.zeros((self.nlanes, 2), np.int64), np.zeros((self.nlanes, self.nch), np.int64))
        return self._work


cdef class Records:
    """What encoder pass 1 leaves for pass 2 and the block choice: per block the exact bits of each
    option (costs[lane, block, BASE/NET/FLOAT]), per sample the residual without correction, the
    network's correction and both classes."""
    cdef readonly object costs, res, corr, cls_base, cls_net
    cdef readonly Py_ssize_t nlanes, nch, lane, nblocks

    def __init__(self, LaneState lanes):
        self.nlanes, self.nch, self.lane, self.nblocks = lanes.nlanes, lanes.nch, lanes.lane, lanes.nblocks
        shape = (lanes.nlanes, lanes.nch, lanes.lane)
        self.costs = np.zeros((lanes.nlanes, lanes.nblocks, 3), np.float64)
        self.res, self.corr = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        self.cls_base, self.cls_net = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)


# -- per-sample steps (raw pointers; callers keep every index in range) ----------------------------

cdef inline int64_t coded_value(const Lanes* L, Py_ssize_t k, Py_ssize_t t, Py_ssize_t pb, Py_ssize_t c) noexcept nogil:
    """Channel c of frame t of lane k after block pb's stereo transform and shift."""
    cdef const int64_t* o = L.orig + k * L.nch * L.lane + t
    cdef int64_t v
    if L.nch == 2:
        v = stereo_channel(o[0], o[L.lane], L.modes[pb], c)
    else:
        v = o[c * L.lane]
    return v >> L.wshift[pb * L.nch + c]


@cython.cdivision(True)
cdef void enter_block(const Lanes* L, Py_ssize_t k, Py_ssize_t t, Py_ssize_t blk) noexcept nogil:
    """Rebuild the coded-signal history before frame t in the new block's mode and shift."""
    cdef Py_ssize_t j, c, pb = k * L.nblocks + blk
    for j in range(1, HIST_ + 1):
        if t - j < 0:
            break
        for c in range(L.nch):
            L.cod[(k * L.nch + c) * (HIST_ + L.lane) + HIST_ + t - j] = coded_value(L, k, t - j, pb, c)


@cython.cdivision(True)
cdef inline void features(const Lanes* L, Py_ssize_t k, Py_ssize_t c, Py_ssize_t t, int64_t s, int64_t cls,
                          int64_t pn, int64_t* f) noexcept nogil:
    """Recent residuals and the NLMS output in units of scale/8 (one division: an integer reciprocal)."""
    cdef const int32_t* e2 = L.e2 + (k * L.nch + c) * (RES_HIST_ + L.lane) + RES_HIST_ + t
    cdef int64_t inv = (<int64_t>1 << 40) // (s if s > 0 else 1)  # s >= 1 unless the stream is corrupt
    cdef Py_ssize_t i
    for i in range(RES_HIST_):
        f[i] = clip((clip(e2[-1 - i], -(1 << 22), 1 << 22) * inv) >> 37, -127, 127)
    f[8] = cls
    f[9] = clip((clip(pn, -(1 << 22), 1 << 22) * inv) >> 37, -127, 127)
    f[10] = scale_class(L.emas[k * L.nch + c], NCLS_) - cls
    f[11] = c


cdef inline void net_exact(const Net* N, const int64_t* f, double* hid, int64_t* out) noexcept nogil:
    """int8 weights, uint8 hidden activations, integer rescaling: every sum adds integers far below
    2^53 held in float64, so it is exact in any order; the rescale acc * m1[h] / 2^s1 (one shift for
    the layer) rounds by IEEE rules in this fixed order (no fast-math, no contraction), so the
    result is the same on any machine."""
    # struct fields in locals: the stores to hid cannot then force them to be reloaded
    cdef Py_ssize_t nh = N.nh, h, i
    cdef const double* w1t = N.w1t
    cdef const double* m1 = N.m1
    cdef const double* w2 = N.w2
    cdef double fd[N_FEATURES_]
    cdef double a, acc, acc0, acc1
    cdef double scale = 1.0 / <double>(<int64_t>1 << N.s1)
    for i in range(N_FEATURES_):
        fd[i] = <double>f[i]
    for h in range(nh):  # each unit's sum in a register, features in order (exact anyway)
        acc = N.b1[h]
        for i in range(N_FEATURES_):
            acc += w1t[i * nh + h] * fd[i]
        hid[h] = acc
    acc0 = N.b2[0]
    acc1 = N.b2[1]
    for h in range(nh):
        a = floor(hid[h] * m1[h] * scale + 0.5)
        a = 0.0 if a < 0.0 else (255.0 if a > 255.0 else a)
        acc0 += w2[h] * a
        acc1 += w2[nh + h] * a
    out[0] = <int64_t>floor(acc0 * N.m2[0] / <double>(<int64_t>1 << N.s2) + 0.5)
    out[1] = <int64_t>floor(acc1 * N.m2[1] / <double>(<int64_t>1 << N.s2) + 0.5)


cdef void net_float(const Net* N, const int64_t* f, int64_t* out) noexcept nogil:
    """The float (training) twin, for the report only."""
    cdef Py_ssize_t h, i, nh = N.fnh
    cdef const double* fw1 = N.fw1
    cdef const double* fw2 = N.fw2
    cdef double o0 = N.fb2[0], o1 = N.fb2[1], acc
    for h in range(nh):
        acc = N.fb1[h]
        for i in range(N_FEATURES_):
            acc += fw1[h * N_FEATURES_ + i] * <double>f[i]
        if acc > 0:
            o0 += fw2[h] * acc
            o1 += fw2[nh + h] * acc
    out[0] = <int64_t>rint(o0)
    out[1] = <int64_t>rint(o1)


cdef inline int64_t nlms_output(const int32_t* w, const int32_t* u, Py_ssize_t taps) noexcept nogil:
    """One NLMS stage's prediction from its inputs before u[0] (32x32 -> 64-bit products)."""
    cdef int64_t acc = 0
    cdef Py_ssize_t j
    for j in range(taps):
        acc += <int64_t>w[j] * <int64_t>u[-1 - j]
    return acc >> NLMS_SHIFT


@cython.cdivision(True)
cdef inline int64_t nlms_adapt(int32_t* w, int32_t* u, int64_t* norm, int64_t target, int64_t output,
                               Py_ssize_t taps, int64_t mu) noexcept nogil:
    """Adapt one NLMS stage to its target (the residual the stages before it left) and store the
    target as its next input u[0]. -> the target clipped to the inputs' range."""
    cdef int64_t un = clip(target, -U_CLIP, U_CLIP), err = un - output, new, old, g, step
    cdef Py_ssize_t j
    # NLMS: w += mu * err * x / (|x|^2 + eps), in integers (the division is exact and deterministic)
    # the window slides: u[t-1] enters, u[t-1-taps] leaves (int64: u is stored as int32)
    new = <int64_t>(u - 1)[0]
    old = <int64_t>u[-1 - taps]
    norm[0] += new * new - old * old
    # norm[0] >= 0 (a sum of squares), so the divisor is positive; err may be negative: floor
    g = <int64_t><int32_t>clip(floor_div(err << (NLMS_SHIFT + 8 - mu), norm[0] + 64 + taps), -(1 << 30), 1 << 30)
    for j in range(taps):
        step = (g * <int64_t>u[-1 - j]) >> 8
        w[j] = <int32_t>clip(<int64_t>w[j] + step, -U_CLIP, U_CLIP)
    u[0] = <int32_t>un
    return un


cdef inline int64_t predict(const Lanes* L, const Net* N, Py_ssize_t k, Py_ssize_t c, Py_ssize_t t, Py_ssize_t blk,
                     bint use_float, int64_t* f, double* hid, int64_t* o) noexcept nogil:
    """-> prediction of (lane k, channel c, frame t); the lane's scratch gets the stages' outputs."""
    cdef Py_ssize_t kc = k * L.nch + c, pbc = (k * L.nblocks + blk) * L.nch + c, j, st
    cdef int64_t* sc = L.scratch + kc * SCRATCH
    cdef const int64_t* cod = L.cod + kc * (HIST_ + L.lane) + HIST_ + t
    cdef const int64_t* q = L.coefs + pbc * C_MAX_ORDER
    cdef const int32_t* u
    cdef const int32_t* w
    cdef int64_t order = L.orders[pbc], plpc = 0, acc, pn = 0, pred, s, cls, vmax = L.vmax
    if order > 0:
        acc = 0
        for j in range(order):
            acc += q[j] * cod[-1 - j]
        plpc = acc >> L.qshifts[pbc]
    u = L.u + kc * N_STAGES * (HIST_ + L.lane) + HIST_ + t
    w = L.wn + kc * N_STAGES * MAX_TAPS_
    # stage 1 then 2, with their tap counts as constants (unrolled loops)
    sc[7] = nlms_output(w, u, 32)
    sc[8] = nlms_output(w + MAX_TAPS_, u + (HIST_ + L.lane), 16)
    pn = sc[7] + sc[8]
    # the prediction, with or without the correction, stays within the coded signal's range, so
    # every residual fits the alphabet whatever the adaptive filters do
    pred = clip(plpc + pn, -vmax, vmax)
    s = (L.ema[kc] >> 4) + 1
    cls = scale_class(L.ema[kc], NCLS_)
    sc[0] = plpc
    sc[1] = pn
    sc[2] = cls
    if N.nh > 0:
        features(L, k, c, t, s, cls, pn, f)
        net_exact(N, f, hid, o)
        sc[3] = clip(cls + o[1], 0, NCLS_ - 1)
        sc[4] = clip(pred + ((clip(o[0], -255, 255) * s) >> CORR_UNIT_), -vmax, vmax) - pred
        if use_float:
            net_float(N, f, o)
            sc[5] = clip(cls + o[1], 0, NCLS_ - 1)
            sc[6] = clip(pred + ((clip(o[0], -255, 255) * s) >> CORR_UNIT_), -vmax, vmax) - pred
    else:
        sc[3] = cls
        sc[4] = 0
        sc[5] = cls
        sc[6] = 0
    return pred


cdef inline bint count(const Lanes* L, Py_ssize_t k, Py_ssize_t table, int64_t cls, int64_t u) noexcept nogil:
    """Adapt count row (table, cls) of lane k to the bucket of u. -> False if that bucket is outside
    the alphabet (only a corrupt stream gets there; the row is left alone)."""
    cdef int64_t sym = bucket_of(u).sym
    cdef Py_ssize_t row = (k * L.ntables + table) * NCLS_ + cls
    if sym >= L.nbk:
        return False
    count_update(L.cnt + row * L.nbk, L.tot + row, L.nbk, sym, INC_, LIMIT_)
    return True


@cython.cdivision(True)
cdef inline bint update(const Lanes* L, Py_ssize_t k, Py_ssize_t c, Py_ssize_t t, int64_t value, int64_t pred,
                 Py_ssize_t ntables) noexcept nogil:
    """Adapt every stage to the coded value of (lane k, channel c, frame t). -> False if a residual
    fell outside the alphabet (corrupt stream)."""
    cdef Py_ssize_t kc = k * L.nch + c
    cdef int64_t* sc = L.scratch + kc * SCRATCH
    cdef int32_t* u
    cdef int32_t* w
    cdef int64_t plpc = sc[0], cls = sc[2], target, r, ar
    cdef int64_t* norm
    cdef bint ok
    L.cod[kc * (HIST_ + L.lane) + HIST_ + t] = value
    target = value - plpc
    u = L.u + kc * N_STAGES * (HIST_ + L.lane) + HIST_ + t
    w = L.wn + kc * N_STAGES * MAX_TAPS_
    norm = L.norm + kc * N_STAGES
    nlms_adapt(w, u, norm, target, sc[7], 32, 4)
    target -= sc[7]
    nlms_adapt(w + MAX_TAPS_, u + (HIST_ + L.lane), norm + 1, target, sc[8], 16, 6)
    r = value - pred
    L.e2[kc * (RES_HIST_ + L.lane) + RES_HIST_ + t] = <int32_t>clip(r, -E2_CLIP, E2_CLIP)
    ar = r if r >= 0 else -r
    L.ema[kc] += ((ar << 4) - L.ema[kc]) >> 4
    L.emas[kc] += ((ar << 4) - L.emas[kc]) >> 7
    ok = count(L, k, BASE_, cls, zigzag(r))
    ok &= count(L, k, NET_, sc[3], zigzag(r - sc[4]))
    if ntables > 2:
        ok &= count(L, k, FLOAT_, sc[5], zigzag(r - sc[6]))
    return ok


cdef inline double bits_of(const Lanes* L, Py_ssize_t k, Py_ssize_t table, int64_t cls, int64_t u,
                           const double* log2, bint* outside) noexcept nogil:
    """Exact bits of u under count row (table, cls); log2[n] = log2(n) for every possible count.
    Sets outside (and returns 0) if u's bucket is not in the alphabet: the prediction is clipped to
    the coded signal's range, so only a sample beyond the stated bit depth gets there."""
    cdef Bucket b = bucket_of(u)
    cdef Py_ssize_t row = (k * L.ntables + table) * NCLS_ + cls
    if b.sym >= L.nbk:
        outside[0] = True
        return 0.0
    return b.nlow + log2[L.tot[row]] - log2[L.cnt[row * L.nbk + b.sym]]


cdef void restore_frame(const Lanes* L, Py_ssize_t k, Py_ssize_t t, Py_ssize_t blk) noexcept nogil:
    """Original channel values of frame t from the coded ones (inverse stereo transform)."""
    cdef Py_ssize_t nch = L.nch, pb = k * L.nblocks + blk, c
    cdef const int64_t* cod = L.cod + k * nch * (HIST_ + L.lane) + HIST_ + t
    cdef int64_t* o = L.orig + k * nch * L.lane + t
    cdef int64_t a, b
    if nch == 2:
        a = cod[0] << L.wshift[pb * 2]
        b = cod[HIST_ + L.lane] << L.wshift[pb * 2 + 1]
        stereo_restore(L.modes[pb], a, b, &o[0], &o[L.lane])
    else:
        for c in range(nch):
            o[c * L.lane] = cod[c * (HIST_ + L.lane)] << L.wshift[pb * nch + c]


# -- the passes ---------------------------------------------------------------------------------------

@cython.boundscheck(False)
@cython.cdivision(True)
def model_lanes(LaneState lanes, NetWeights net, Records rec, bint use_float, int64_t[:, ::1] dump=None,
                Py_ssize_t dump_every=1):
    """Encoder pass 1: run every lane start to end (in parallel): add up per block the exact bits
    of each option and record per sample what pass 2 needs (see Records). Optionally dump network
    inputs for training (rows: features, residual, scale; every dump_every-th sample)."""
    cdef Lanes* L = &lanes.c
    cdef Net* N = &net.c
    if rec.nlanes != L.nlanes or rec.nch != L.nch or rec.lane != L.lane or rec.nblocks != L.nblocks:
        raise ValueError("model_lanes: records of another chunk")
    if dump_every < 1 or (dump is not None and dump.shape[1] != N_FEATURES_ + 2):
        raise ValueError("model_lanes: dump rows are features, residual, scale")
    # log2 of every count a table can hold (initial counts, then at most LIMIT + INC per row)
    log2_a = np.log2(np.maximum(np.arange(max(int(lanes.tot.max()), LIMIT_) + INC_ + 1), 1)).astype(np.float64)
    cdef const double[::1] log2 = log2_a
    f_a, hid_a, o_a, pred_a = lanes.work(N.nh)
    cdef int64_t[:, ::1] fbuf = f_a, obuf = o_a, pbuf = pred_a
    cdef double[:, ::1] hbuf = hid_a
    cdef double[:, :, ::1] costs = rec.costs
    cdef int64_t[:, :, ::1] res = rec.res, corr = rec.corr
    cdef uint8_t[:, :, ::1] cls_base = rec.cls_base, cls_net = rec.cls_net
    cdef Py_ssize_t ndump = dump.shape[0] if dump is not None else 0
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, ntables = L.ntables, k, t, c, blk, row, pb, i
    cdef int64_t value, r
    cdef int64_t* sc
    cdef bint outside
    cdef double bits_base, bits_net, bits_float
    errors_a = np.zeros(nlanes, np.uint8)
    cdef uint8_t[::1] errors = errors_a
    if ntables < 2 or (use_float and ntables < 3):
        raise ValueError("model_lanes: pass 1 needs the BASE, NET (and FLOAT) tables")
    lanes._check_plans()  # the encoder's analysis filled them in after the lanes were made
    for k in prange(nlanes, nogil=True, schedule="dynamic", chunksize=1):
        for t in range(L.lengths[k]):
            blk = t // L.blen
            pb = k * L.nblocks + blk
            if t % L.blen == 0:
                enter_block(L, k, t, blk)
            for c in range(nch):  # every channel's prediction before any update, as the decoder does
                pbuf[k, c] = predict(L, N, k, c, t, blk, use_float, &fbuf[k, 0], &hbuf[k, 0], &obuf[k, 0])
            for c in range(nch):
                value = coded_value(L, k, t, pb, c)
                r = value - pbuf[k, c]
                sc = L.scratch + (k * nch + c) * SCRATCH
                outside = False
                bits_base = bits_of(L, k, BASE_, sc[2], zigzag(r), &log2[0], &outside)
                bits_net = bits_of(L, k, NET_, sc[3], zigzag(r - sc[4]), &log2[0], &outside)
                bits_float = bits_of(L, k, FLOAT_, sc[5], zigzag(r - sc[6]), &log2[0], &outside) if ntables > 2 else 0.0
                if outside:
                    errors[k] = 1
                    continue
                costs[k, blk, BASE_] += bits_base
                costs[k, blk, NET_] += bits_net
                if ntables > 2:
                    costs[k, blk, FLOAT_] += bits_float
                if ndump > 0 and (t * nch + c) % dump_every == 0:
                    row = ((k * L.lengths[0] + t) * nch + c) // dump_every
                    if row < ndump:
                        features(L, k, c, t, (L.ema[k * nch + c] >> 4) + 1, sc[2], sc[1], &fbuf[k, 0])
                        for i in range(N_FEATURES_):
                            dump[row, i] = fbuf[k, i]
                        dump[row, N_FEATURES_] = r
                        dump[row, N_FEATURES_ + 1] = (L.ema[k * nch + c] >> 4) + 1
                res[k, c, t] = r
                corr[k, c, t] = sc[4]
                cls_base[k, c, t] = <uint8_t>sc[2]
                cls_net[k, c, t] = <uint8_t>sc[3]
                if not update(L, k, c, t, value, pbuf[k, c], ntables):
                    errors[k] = 1
    if errors_a.any():
        raise ValueError("a sample lies outside the recording's bit depth")


ctypedef struct ReplayView:
    Py_ssize_t t0, t1, nch, nbk, blen, lane, nblocks
    const int64_t* offs      # [t - t0]: first position of frame t
    const uint8_t* flags     # [lane][block]
    const int64_t* res       # [lane][channel][frame]
    const int64_t* corr
    const uint8_t* cls_base
    const uint8_t* cls_net
    int32_t* cnt             # [lane][BASE/NET][class][bucket]
    int32_t* tot             # [lane][BASE/NET][class]
    int32_t* sym             # [position]
    int64_t* nlow
    int64_t* low
    double* rows             # [position][bucket]


@cython.cdivision(True)
cdef bint replay_lane(const ReplayView* v, Py_ssize_t k, Py_ssize_t length) noexcept nogil:
    """Frames t0..min(t1, length) of lane k (see Replay.window). Raw pointers in locals: a lane's
    loop then keeps them in registers. -> False if a record lies outside the alphabet."""
    cdef Py_ssize_t nch = v.nch, nbk = v.nbk, lane = v.lane, t, c, m, at, row
    cdef const int64_t* res = v.res + k * nch * lane
    cdef const int64_t* corr = v.corr + k * nch * lane
    cdef const uint8_t* cls_base = v.cls_base + k * nch * lane
    cdef const uint8_t* cls_net = v.cls_net + k * nch * lane
    cdef int32_t* cnt = v.cnt + k * 2 * NCLS_ * nbk
    cdef int32_t* tot = v.tot + k * 2 * NCLS_
    cdef int64_t r, cb, cn
    cdef bint use_net
    cdef Bucket b
    for t in range(v.t0, min(v.t1, length)):
        use_net = v.flags[k * v.nblocks + t // v.blen]
        for c in range(nch):
            m = v.offs[t - v.t0] + k * nch + c
            at = c * lane + t
            r = res[at]
            b = bucket_of(zigzag(r - corr[at] if use_net else r))
            v.sym[m] = <int32_t>b.sym
            v.nlow[m] = b.nlow
            v.low[m] = b.low
            row = NET_ * NCLS_ + cls_net[at] if use_net else BASE_ * NCLS_ + cls_base[at]
            if cls_net[at] >= NCLS_ or cls_base[at] >= NCLS_:
                return False
            copy_row(v.rows + m * nbk, cnt + row * nbk, nbk)
        for c in range(nch):
            at = c * lane + t
            r = res[at]
            cb = cls_base[at]
            cn = cls_net[at]
            if cb >= NCLS_ or cn >= NCLS_:
                return False
            b = bucket_of(zigzag(r))
            if b.sym >= nbk:
                return False
            count_update(cnt + (BASE_ * NCLS_ + cb) * nbk, tot + BASE_ * NCLS_ + cb, nbk, b.sym, INC_, LIMIT_)
            b = bucket_of(zigzag(r - corr[at]))
            if b.sym >= nbk:
                return False
            count_update(cnt + (NET_ * NCLS_ + cn) * nbk, tot + NET_ * NCLS_ + cn, nbk, b.sym, INC_, LIMIT_)
    return True


cdef class Replay:
    """Encoder pass 2: replays the count tables from pass 1's records, window by window, and hands
    out the chosen option's symbols and count rows in the decoder's order (frame, lane, channel).
    counts/totals: the BASE and NET tables of every lane as they were before pass 1; flags[lane,
    block]: the block uses the learned stage."""
    cdef readonly Records rec
    cdef readonly object lengths, counts, totals, flags
    cdef readonly Py_ssize_t blen, nbk

    def __init__(self, Records rec, *, lengths, counts, totals, flags, Py_ssize_t blen):
        self.rec, self.blen = rec, blen
        self.lengths = np.ascontiguousarray(lengths, np.int64)
        self.counts = np.array(counts, np.int32, order="C")
        self.totals = np.array(totals, np.int32, order="C")
        self.flags = np.ascontiguousarray(flags, np.uint8)
        self.nbk = self.counts.shape[3]
        if (self.counts.shape[:3] != (rec.nlanes, 2, NCLS_) or self.totals.shape != (rec.nlanes, 2, NCLS_)
                or self.flags.shape != (rec.nlanes, rec.nblocks) or self.lengths.shape != (rec.nlanes,)
                or (self.lengths > rec.lane).any() or (np.diff(self.lengths) > 0).any()):
            raise ValueError("Replay: arrays of another chunk")

    @cython.boundscheck(False)
    @cython.cdivision(True)
    def window(self, Py_ssize_t t0, Py_ssize_t t1, const int64_t[::1] offs):
        """Frames t0..t1 (offs[t - t0] is frame t's first position, offs[-1] their number)
        -> (symbols, low-bit counts, low bits, count rows)."""
        cdef Py_ssize_t nlanes = self.rec.nlanes, nch = self.rec.nch, nbk = self.nbk, blen = self.blen
        cdef const int64_t[::1] lengths = self.lengths
        cdef int32_t[:, :, :, ::1] cnt = self.counts
        cdef int32_t[:, :, ::1] tot = self.totals
        cdef const uint8_t[:, ::1] flags = self.flags
        cdef const int64_t[:, :, ::1] res = self.rec.res, corr = self.rec.corr
        cdef const uint8_t[:, :, ::1] cls_base = self.rec.cls_base, cls_net = self.rec.cls_net
        cdef Py_ssize_t k, t, n
        if t0 < 0 or t1 < t0 or offs.shape[0] != t1 - t0 + 1:
            raise ValueError("Replay.window: bad window")
        for t in range(t0, t1):  # every position in range: the active lanes of frame t are a prefix
            n = 0
            for k in range(nlanes):
                if t < lengths[k]:
                    n += nch
            if offs[t - t0] < 0 or offs[t - t0 + 1] - offs[t - t0] != n:
                raise ValueError("Replay.window: offsets do not match the lanes")
        n = offs[t1 - t0]
        sym_a, nlow_a, low_a = np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, np.int64)
        rows_a = np.empty((n, nbk), np.float64)
        cdef int32_t[::1] sym = sym_a
        cdef int64_t[::1] nlow = nlow_a, low = low_a
        cdef double[:, ::1] rows = rows_a
        errors_a = np.zeros(nlanes, np.uint8)
        cdef uint8_t[::1] errors = errors_a
        cdef ReplayView v
        v.t0, v.t1, v.nch, v.nbk, v.blen, v.lane, v.nblocks = t0, t1, nch, nbk, blen, self.rec.lane, self.rec.nblocks
        v.offs, v.flags = &offs[0], &flags[0, 0]
        v.res, v.corr, v.cls_base, v.cls_net = &res[0, 0, 0], &corr[0, 0, 0], &cls_base[0, 0, 0], &cls_net[0, 0, 0]
        v.cnt, v.tot = &cnt[0, 0, 0, 0], &tot[0, 0, 0]
        v.sym, v.nlow, v.low, v.rows = &sym[0] if n else NULL, &nlow[0] if n else NULL, &low[0] if n else NULL, \
            &rows[0, 0] if n else NULL
        for k in prange(nlanes, nogil=True, schedule="static"):
            if not replay_lane(&v, k, lengths[k]):
                errors[k] = 1
        if errors_a.any():
            raise ValueError("Replay: records outside the alphabet")
        return sym_a, nlow_a, low_a, rows_a


@cython.cdivision(True)
def decode_step(LaneState lanes, NetWeights net, Py_ssize_t t, const int32_t[::1] sym, const int64_t[::1] low,
                int64_t[::1] preds, double[:, ::1] rows):
    """Decoder: finish frame t-1 (its symbols and low bits are decoded: rebuild the values, adapt),
    then give the prediction and count row of every active (lane, channel) at frame t.
    Lanes are independent (the active ones are a prefix), so they are split over threads.
    -> number of positions at frame t."""
    cdef Lanes* L = &lanes.c
    cdef Net* N = &net.c
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, nbk = L.nbk, width = L.nlanes * L.nch
    cdef Py_ssize_t k, c, m, j, blk, pb, row, i
    cdef int64_t lo, corr, value, s
    cdef int64_t* sc
    if sym.shape[0] < width or low.shape[0] < width or preds.shape[0] < width or rows.shape[0] < width \
            or rows.shape[1] != nbk or L.ntables < 2:
        raise ValueError("decode_step: buffers do not match the lanes")
    if t > 0:
        for m in range(width):  # decoded symbols index the count rows
            if (sym[m] < 0 or sym[m] >= nbk) and t - 1 < L.lengths[m // nch]:
                raise ValueError("corrupt stream: bucket symbol outside the alphabet")
    f_a, hid_a, o_a, _ = lanes.work(N.nh)
    cdef int64_t[:, ::1] fbuf = f_a, obuf = o_a
    cdef double[:, ::1] hbuf = hid_a
    errors_a = np.zeros(nlanes, np.uint8)
    cdef uint8_t[::1] errors = errors_a
    with cython.boundscheck(False):
        for k in prange(nlanes, nogil=True, schedule="static"):
            if t > 0 and t - 1 < L.lengths[k]:
                blk = (t - 1) // L.blen
                pb = k * L.nblocks + blk
                for c in range(nch):
                    m = k * nch + c
                    s = sym[m]
                    lo = low[m] if low_bits_of_bucket(s) > 0 else 0
                    corr = L.scratch[m * SCRATCH + 4] if L.flags[pb] else 0
                    value = preds[m] + corr + unzigzag(value_of(s, lo))
                    if not update(L, k, c, t - 1, value, preds[m], 2):
                        errors[k] = 1
                restore_frame(L, k, t - 1, blk)
            if t < L.lengths[k]:
                blk = t // L.blen
                pb = k * L.nblocks + blk
                if t % L.blen == 0:
                    enter_block(L, k, t, blk)
                for c in range(nch):
                    m = k * nch + c
                    preds[m] = predict(L, N, k, c, t, blk, False, &fbuf[k, 0], &hbuf[k, 0], &obuf[k, 0])
                    sc = L.scratch + m * SCRATCH
                    if L.flags[pb]:
                        row = (k * L.ntables + NET_) * NCLS_ + sc[3]
                    else:
                        row = (k * L.ntables + BASE_) * NCLS_ + sc[2]
                    copy_row(&rows[m, 0], L.cnt + row * nbk, nbk)
    if errors_a.any():
        raise ValueError("corrupt stream: a residual outside the alphabet")
    m = 0
    for k in range(nlanes):
        if t < L.lengths[k]:
            m += nch
    return m
