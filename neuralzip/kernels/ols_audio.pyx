# Per-sample kernels of the ols-cascade audio model (neuralzip/models/ols_audio.py is the face).
#
# A *lane* is a stretch of the recording (all channels) whose adaptive state starts fresh.
# The encoder runs every lane start to end; the decoder steps every lane of a chunk in
# lockstep, one *step* being one channel of one frame: the chunk's symbol stream holds step
# s = t * nch + c of every active lane, lane after lane, before step s + 1 (channel c reads
# channel c - 1's sample of the same frame, so the channels of a frame are separate steps),
# and decode_lanes range-decodes each symbol here (range_decoder.pxd).
#
# Per lane, channel c and frame t (the same code in encoder and decoder, in this order):
#   1. online least squares: x = the channel's last n_own samples and n_cross samples of a
#      partner channel (channel c - 1 from its current sample back, or for channel 0 of a
#      multichannel recording channel 1 from its previous sample back), scaled by
#      2^-(bits-1); R = lam R + x x', b = lam b + x y (R kept as two rows a sample, see
#      rebuild), or with irls R = lam R + c x x', b = lam b + c x y where
#      c = (a + 2)^-3/4 and a = a / 2 + |y - w.x| / 2 in sample units (the whole triangle
#      updated: a weight per sample breaks rebuild's shift); every solve_every samples w solves
#      (R + nu I) w = b by Cholesky
#      (nu = NU_REL * trace(R) / n + 2^-2(bits-1); a failed factorisation keeps the old w).
#      The prediction w.x is rounded to an integer.
#      With lam2 > 0 a second fit R2 = lam2 R2 + c x x', b2 = lam2 b2 + c x y (c = 1 without
#      irls; the whole triangle) on the same inputs, with a shorter memory, is solved at the same
#      times; its prediction minus the first's, in the cascade's units, is the mixer's last input
#      (step 3).
#   2. a cascade of NLMS stages: stage 1 predicts the least-squares residual from its last
#      taps[0] values, stage i predicts what stage i - 1 left; double weights,
#      w += mu err u / (|u|^2 + 16 taps) with |u|^2 the window's exact (integer) sum of
#      squares; with pow_norm 1 the sum of (1 + lag)^-3/4 u_lag^2 scaled to the same size,
#      with pow_norm 2 4 g, g = (1 - 4 / taps) g + u_0^2 after each sample (recent samples
#      count more, so a stage steps carefully right after an onset); each prediction rounded
#      to an integer. With fine_stages the cascade's values are in 1/64 sample units (its
#      first target is the sample against the least squares rounded to 1/64, and the step's
#      floor 16 taps becomes 16 taps 64^2): a quiet recording keeps the fractions whole
#      samples lose.
#      With rls_n > 0 an RLS stage follows: exponentially weighted recursive least squares
#      (forgetting factor rls_lam, a few tens of samples' memory) predicts what the cascade
#      left from its last rls_n values (rls_step).
#   3. a mixer of the stage predictions and a bias correction. Mixer 0: integer weights
#      (2^14 = 1), sign-sign LMS. Mixer 1: double weights over the stages', the RLS stage's and
#      the second fit's predictions (the last two start at weight 0), each stepped by the sign
#      of the error times its input over the input's running mean |gradient| (ada_learn). The bias (bias_rate > 0): a median
#      tracker of the final error (sign steps scaled by the slow running mean of |residual|,
#      1/64 sample units, with a leak of 2^-6 a sample) in a context of the last two errors'
#      signs and the mixer output's sign;
#   4. the residual, zigzagged, as a bucket symbol (primitives.pxd) under adaptive counts
#      chosen by the scale class of a running mean of |residual| (two tables, fast and slow
#      context, added), plus raw low bits written into a per-lane bit stream.
#      Coder 1 rounds least squares + mixer + bias to an integer prediction. Coder 2 keeps
#      their sum in 1/64 units (`fine`), rounds that, and flips the residual's sign where
#      `fine` lies above the rounded prediction, so the likelier side of it gets the smaller
#      zigzag code (worth most on quiet, tonal recordings where |residual| is a few units);
#      its bias tracks the sign of the error against `fine`.
# Steps 1, 2 and mixer 1 are strict IEEE-754 float64: only + - * / and sqrt, in a fixed order (the
# vector helpers below fix their summation order), built without contraction or fast-math,
# so encoder and decoder compute the same bits on any machine; everything else is integer
# (the count tables hold integers in doubles: they are the coder's rows as they are).

import math

import numpy as np

cimport cython
from libc.math cimport fabs, floor, frexp, log2, sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from neuralzip.kernels.audio cimport coarse_scale_class, fine_scale_class, scale_class
from neuralzip.kernels.range_decoder cimport RangeDecoder, range_decode, range_decoder_init
from neuralzip.kernels.primitives cimport (Bucket, bucket_of, clip, low_bits_of_bucket, unzigzag,
                                           value_of, zigzag)
from neuralzip.kernels.lsq cimport (NZ_VECTOR_LANES, LSQ_MAX_N, cholesky_solve, decay_add, nz_axpy_dot,
                                    nz_cpu_has_avx, nz_decay_axpy, nz_decay_axpy_to, nz_dot, nz_mix2, nz_wsq)

VECTOR_LANES = NZ_VECTOR_LANES  # doubles per vector in this build's helpers: 4 with AVX, else 2

cdef enum:
    HIST_ = 40          # history offset of the sample arrays (>= MAX_OWN, MAX_CROSS)
    MAX_OWN_ = 32
    MAX_CROSS_ = 8
    MAX_N_ = MAX_OWN_ + MAX_CROSS_  # at most lsq.LSQ_MAX_N (checked below)
    FD_ = 32            # depth of the boundary-row history: a power of 2, >= MAX_OWN, MAX_CROSS
    MAX_STAGES_ = 4
    MAX_TAPS_ = 2048
    MIX_ONE = 1 << 14   # mixer weight 1
    MIX_STEP = 4
    N_BIAS_ = 27
    BIAS_SHIFT = 6      # bias table entries: 2^6 x the running mean of the error
    BIAS_LEAK = 6       # the bias decays by 2^-6 a sample (it follows a recording that turns quiet)
    NCLS_ = 64
    NTAB_ = 2           # count tables added per row: fast and slow context
    NCTX_ = 2           # contexts the encoder records per sample: the fast table's class and the fine class
                        # of the slow running mean (the slow table's class is a function of it)
    NQ_ = 240           # fine scale classes (eight an octave) of the logistic row: uncapped for 16x means
                        # below 2^29 (the model's stay at most 16 U_CLIP = 2^28)
    LSHARE_ONE = 16     # the logistic row's share of the coder's row in sixteenths
    INC_ = 24
    LIMIT_ = 1 << 16
    U_CLIP = 1 << 24    # NLMS inputs and errors
    W_CLIP = 1 << 24    # bias bound (x 2^16)
    SC_ = 22            # per (lane, channel) scratch, see below
    # scratch fields
    SC_PRED = 0
    SC_POLS = 1
    SC_MIX = 2
    SC_BCTX = 3
    SC_CLS0 = 4
    SC_CLS1 = 5
    SC_P0 = 6           # stage predictions SC_P0 .. SC_P0 + MAX_STAGES - 1
    SC_E1 = SC_P0 + MAX_STAGES_  # last two final errors
    SC_E2 = SC_E1 + 1
    SC_NUPD = SC_E1 + 2  # samples seen (the solve cadence)
    SC_N0 = SC_E1 + 3   # the stages' predictions for the next sample (update computes them)
    SC_FLIP = SC_N0 + MAX_STAGES_  # coder 2: 1 where the residual's sign is flipped before the zigzag
    SC_FINE = SC_FLIP + 1  # coder 2: the prediction in 1/64 sample units
    SC_RERR = SC_FLIP + 2  # the coded residual (in ranks of the value map where there is one), for the scale contexts
    SC_FOLS = SC_FLIP + 3  # fine stages: the least-squares prediction in 1/64 units
    SC_QLOG = SC_FLIP + 4  # the logistic row's fine scale class (of the slow running |residual|)
    # the adaptive-step mixer (mixer 1): per (lane, channel) doubles
    MAX_MIX_ = MAX_STAGES_ + 2  # its inputs: the stages' predictions, the RLS stage's and the second fit's
    AM_W = 0            # weights
    AM_G = MAX_MIX_     # running mean |gradient|s
    AM_IN = 2 * MAX_MIX_  # the inputs of the current sample
    AM_OUT = 3 * MAX_MIX_  # the mix
    AM_ = AM_OUT + 1
    # the RLS stage: per (lane, channel) doubles
    MAX_RLS_ = 8
    RL_W = 0            # weights
    RL_P = MAX_RLS_     # inverse covariance, MAX_RLS x MAX_RLS
    RL_X = RL_P + MAX_RLS_ * MAX_RLS_  # its inputs: the cascade's last residuals, newest first
    RL_PRED = RL_X + MAX_RLS_
    RL_ = RL_PRED + 1
    MAP_MAX_BITS_ = 16  # value maps are for recordings of at most this many bits

assert <int>MAX_N_ <= <int>LSQ_MAX_N, "a solve takes at most LSQ_MAX_N unknowns"

HIST = HIST_
MAP_MAX_BITS = MAP_MAX_BITS_
HISTORY_DEPTH = FD_
MAX_OWN = MAX_OWN_
MAX_CROSS = MAX_CROSS_
MAX_STAGES = MAX_STAGES_
MAX_TAPS = MAX_TAPS_
NCLS = NCLS_
NTAB = NTAB_
NCTX = NCTX_
NQ = NQ_
INC = INC_
LIMIT = LIMIT_
MIXER_DOUBLES = AM_  # per (lane, channel): the adaptive-step mixer's state
RLS_DOUBLES = RL_  # ... and the RLS stage's

# pow_norm 1's weights 1 / (q^(1/2) q^(1/4)), q = 1 + lag (sqrt and division are exactly rounded in
# IEEE-754, so every machine gets the same table), and their running sums in order (cumsum adds
# one after another, unlike sum's pairwise order)
POWER_WEIGHTS = np.array([1.0 / (math.sqrt(q) * math.sqrt(math.sqrt(q))) for q in range(1, MAX_TAPS_ + 1)])
POWER_WEIGHT_SUMS = np.cumsum(POWER_WEIGHTS)



def cpu_has_avx():
    """True where this process may use AVX: the CPU has it and the system saves its registers."""
    return bool(nz_cpu_has_avx())


cdef double P_LIMIT = 4294967296.0  # |prediction| beyond this (or NaN): treated as 0 before clipping


ctypedef struct Lanes:
    Py_ssize_t nlanes, nch, lane, nbk, n_own, n_cross, n, solve_every, nstages, row
    int64_t mix_step, bias_rate, ema_fast, ema_slow, inc, limit, wfast, wslow, coder
    int64_t mixer       # 0: sign-sign integer weights; 1: adaptive-step double weights (see ada_mix)
    double mix_mu, mix_beta
    Py_ssize_t rls_n, nmix  # the RLS stage's order (0: none); the mixer's inputs
    double rls_lam, rls_il  # its forgetting factor and 1 / that
    double* rls         # [kc][RL]
    bint fine_stages    # the cascade's targets and predictions in 1/64 sample units (not whole samples)
    int64_t unit        # 64 with fine stages, else 1
    double* am          # [kc][AM]: the adaptive-step mixer
    double nu_rel
    Py_ssize_t taps[MAX_STAGES_]
    double mu[MAX_STAGES_]
    double pscale[MAX_STAGES_]  # taps / the sum of the stage's power weights
    double gbeta[MAX_STAGES_]   # 1 - 4 / taps: the geometric power's decay
    int64_t pow_norm
    double* gp          # [kc][stage]: geometric power of the stage's inputs (pow_norm 2)
    bint irls           # least squares weighted by (recent |error| + 2)^-3/4 (full triangle updates)
    const double* pw    # [MAX_TAPS]: power weights 1 / (1 + lag)^(3/4) (pow_norm)
    double lam, scale, inv_scale, eps2
    double lam2         # the second least-squares fit's forgetting factor (0: none)
    double* R2          # [kc][MAX_N][MAX_N]: its (weighted) covariance, lower triangle
    double* bv2         # [kc][MAX_N]
    double* w2          # [kc][MAX_N]
    int64_t vmin, vmax
    const int64_t* lengths
    int32_t* s          # [lane][channel][HIST + lane frames]: the samples
    double* R           # [kc][MAX_N][MAX_N] (lower triangle, rebuilt from F at each solve)
    double* F           # [kc][FD][2][MAX_N]: rows 0 and n_own of R after update number u, at u % FD
    double* bv          # [kc][MAX_N]
    double* w           # [kc][MAX_N]
    double* x           # [kc][MAX_N]: the current input vector
    bint mapped         # a value map: residuals are differences of ranks among the values used
    const int32_t* below  # [v - vmin], v in vmin..vmax + 1: how many used values lie below v
    const int32_t* used   # [nused]: the used values, increasing
    int64_t nused
    double* ols         # [kc][2]: the least-squares prediction (samples) and the running |error| (irls)
    double* ch          # [kc][MAX_N][MAX_N]: Cholesky factor (work)
    double* ring        # [kc][stage][2 MAX_TAPS]: NLMS inputs (integers), the window newest first from
                        # head; a push writes below it, or at MAX_TAPS with the window copied up
    double* wt          # [kc][stage][MAX_TAPS]
    int64_t* norm       # [kc][stage]
    int64_t* head       # [kc][stage]
    int64_t* mix        # [kc][stage]
    int64_t* bias       # [kc][N_BIAS]
    int64_t* ema        # [kc][2]: 16x running mean of |residual|, fast and slow
    int64_t* sc         # [kc][SC]
    double* cnt         # [kc][NTAB][NCLS][nbk]: counts (integers, kept as doubles: the coder's rows)
    double* tot         # [kc][NTAB][NCLS]
    bint logistic       # coder rows may mix in the logistic row (coder 5)
    const uint8_t* share  # [lane]: the logistic row's share of the lane's coder rows, in sixteenths (0: counts alone)
    const double* lrow  # [NQ][nbk]: a discretized logistic's bucket masses per fine scale class (integers)
    const double* ltot  # [NQ]: their sums
    uint64_t* low       # [lane][low words]: raw low bits, lane by lane
    int64_t* lowpos     # [lane]: bits written / read
    int64_t* lowcap     # [lane]: bits available


cdef size_t address(object a, object dtype, tuple shape) except 0:
    if a.dtype != dtype or not a.flags.c_contiguous or tuple(a.shape) != shape:
        raise ValueError(f"kernel array: expected {np.dtype(dtype)} {shape}, got {a.dtype} {a.shape}")
    return <size_t>a.ctypes.data


cdef class Config:
    """The model's shape (from the level): least-squares orders and cadence, forgetting factor,
    NLMS taps (multiples of 4) and step shifts (mu = 2^-mu_shift)."""
    cdef readonly Py_ssize_t n_own, n_cross, solve_every
    cdef readonly double lam, nu_rel
    cdef readonly tuple taps, mu_shift
    cdef readonly int64_t mix_step, bias_rate, ema_fast, ema_slow, inc, limit, wfast, wslow, coder, pow_norm, irls
    cdef readonly int64_t mixer, fine_stages, logistic
    cdef readonly double mix_mu, mix_beta, rls_lam, lam2
    cdef readonly Py_ssize_t rls_n

    def __init__(self, *, Py_ssize_t n_own, Py_ssize_t n_cross, Py_ssize_t solve_every, double lam, taps, mu_shift,
                 double nu_rel=0.0001, int64_t mix_step=4, int64_t bias_rate=5, int64_t ema_fast=2,
                 int64_t ema_slow=5, int64_t inc=24, int64_t limit=1 << 16, int64_t wfast=1, int64_t wslow=1,
                 int64_t coder=1, int64_t pow_norm=0, int64_t irls=0, int64_t mixer=0, double mix_mu=0.005,
                 double mix_beta=0.95, int64_t fine_stages=0, Py_ssize_t rls_n=0, double rls_lam=0.999,
                 double lam2=0.0, int64_t logistic=0):
        if not (0.0 <= nu_rel <= 1.0 and 0 <= mix_step <= 1024 and 0 <= bias_rate <= 16 and 0 <= ema_fast <= 12
                and 0 <= ema_slow <= 12 and 1 <= inc <= 1024 and 1024 <= limit <= 1 << 20 and 0 <= wfast <= 16
                and 0 <= wslow <= 16 and wfast + wslow >= 1 and coder in (1, 2) and pow_norm in (0, 1, 2)
                and irls in (0, 1) and mixer in (0, 1) and 0.0 < mix_mu <= 1.0 and 0.5 <= mix_beta < 1.0
                and fine_stages in (0, 1) and 0 <= rls_n <= MAX_RLS_ and (rls_n == 0 or mixer > 0)
                and 0.5 <= rls_lam < 1.0 and (not fine_stages or (coder == 2 and mixer > 0 and pow_norm > 0))
                and (lam2 == 0.0 or (0.5 <= lam2 < 1.0 and mixer > 0)) and logistic in (0, 1)):
            raise ValueError("ols config out of range")
        self.nu_rel, self.mix_step, self.bias_rate, self.ema_fast, self.ema_slow = nu_rel, mix_step, bias_rate, ema_fast, ema_slow
        self.inc, self.limit, self.wfast, self.wslow, self.coder, self.pow_norm = inc, limit, wfast, wslow, coder, pow_norm
        self.irls, self.mixer, self.mix_mu, self.mix_beta, self.fine_stages = irls, mixer, mix_mu, mix_beta, fine_stages
        self.rls_n, self.rls_lam, self.lam2, self.logistic = rls_n, rls_lam, lam2, logistic
        taps, mu_shift = tuple(int(v) for v in taps), tuple(int(v) for v in mu_shift)
        if not (1 <= n_own <= MAX_OWN_ and 0 <= n_cross <= MAX_CROSS_ and 1 <= solve_every <= 1024
                and 0.5 <= lam < 1.0 and len(taps) == len(mu_shift) and len(taps) <= MAX_STAGES_
                and all(4 <= v <= MAX_TAPS_ and v % 4 == 0 for v in taps) and all(0 <= v <= 16 for v in mu_shift)):
            raise ValueError("ols config out of range")
        self.n_own, self.n_cross, self.solve_every, self.lam = n_own, n_cross, solve_every, lam
        self.taps, self.mu_shift = taps, mu_shift


cdef class LaneState:
    """The adaptive state of every lane of one chunk. `lengths`: frames per lane, non-increasing
    (the active lanes of a step are a prefix). `prior`: (NCLS, nbk) initial counts of every table.
    `logistic` (where cfg.logistic): (NQ, nbk) integer bucket masses of the logistic row; each lane's
    share of it (`shares`, 0 until set_shares) is the encoder's choice."""
    cdef readonly object lengths, s, R, F, bv, w, x, ch, ring, wt, norm, head, mix, bias, ema, sc, cnt, tot, pw, ols, gp
    cdef readonly object am, rls, R2, bv2, w2
    cdef readonly object used, below
    cdef readonly object low, lowpos, lowcap, lrow, ltot, shares
    cdef readonly Py_ssize_t nlanes, nch, lane, nbk
    cdef readonly int64_t bits
    cdef readonly bint logistic
    cdef Lanes c

    def __init__(self, Config cfg, *, lengths, Py_ssize_t nch, int64_t bits, prior, logistic=None, low_words=None):
        cdef Lanes* c = &self.c
        lengths = np.ascontiguousarray(lengths, np.int64)
        prior = np.ascontiguousarray(prior, np.int32)
        nlanes = len(lengths)
        if nlanes == 0 or nch < 1 or (lengths < 0).any() or (np.diff(lengths) > 0).any():
            raise ValueError("lanes: lengths must be non-negative and non-increasing")
        if not 2 <= bits <= 32:
            raise ValueError("lanes: 2..32 bits per sample")
        if prior.ndim != 2 or prior.shape[0] != NCLS_ or prior.min(initial=1) < 1 or prior.max(initial=1) > 1 << 16:
            raise ValueError("lanes: count prior of the wrong shape")
        lane = max(int(lengths[0]), 1)
        nbk = prior.shape[1]
        if cfg.logistic:
            if logistic is None or np.shape(logistic) != (NQ_, nbk):
                raise ValueError("lanes: logistic rows of the wrong shape")
            self.lrow = np.ascontiguousarray(logistic, np.float64)
            self.ltot = self.lrow.sum(axis=1)
            if not ((self.lrow >= 0).all() and (self.lrow == np.floor(self.lrow)).all() and (self.ltot >= 1).all()
                    and (self.ltot <= 1 << 20).all()):
                raise ValueError("lanes: logistic rows must be integer masses of at most 2^20")
        else:
            self.lrow, self.ltot = np.zeros((1, 1)), np.ones(1)
        kc = nlanes * nch
        self.lengths, self.nlanes, self.nch, self.lane, self.nbk, self.bits = lengths, nlanes, nch, lane, nbk, bits
        i32, i64, f64 = np.int32, np.int64, np.float64
        self.s = np.zeros((nlanes, nch, HIST_ + lane), i32)
        self.R = np.zeros((kc, MAX_N_, MAX_N_), f64)
        self.F = np.zeros((kc, FD_, 2, MAX_N_), f64)
        self.bv = np.zeros((kc, MAX_N_), f64)
        self.w = np.zeros((kc, MAX_N_), f64)
        self.x = np.zeros((kc, MAX_N_), f64)
        self.ch = np.zeros((kc, MAX_N_, MAX_N_), f64)
        self.ring = np.zeros((kc, MAX_STAGES_, 2 * MAX_TAPS_), f64)
        self.wt = np.zeros((kc, MAX_STAGES_, MAX_TAPS_), f64)
        self.norm = np.zeros((kc, MAX_STAGES_), i64)
        self.head = np.full((kc, MAX_STAGES_), MAX_TAPS_, i64)
        self.mix = np.full((kc, MAX_STAGES_), MIX_ONE, i64)
        self.bias = np.zeros((kc, N_BIAS_), i64)
        self.ema = np.full((kc, 2), 16 << 4, i64)
        self.sc = np.zeros((kc, SC_), i64)
        self.ols = np.zeros((kc, 2), f64)
        self.gp = np.zeros((kc, MAX_STAGES_), f64)
        self.am = np.zeros((kc, AM_), f64)
        self.am[:, AM_W:AM_W + MAX_MIX_] = 1.0
        self.am[:, AM_W + len(cfg.taps)] = 0.0  # the RLS stage starts unheard: its cold fits extrapolate far
        if cfg.lam2 > 0.0:  # so does the second fit (the last input)
            self.am[:, AM_W + len(cfg.taps) + (1 if cfg.rls_n > 0 else 0)] = 0.0
        self.R2 = np.zeros((kc, MAX_N_, MAX_N_) if cfg.lam2 > 0.0 else (1, 1, 1), f64)
        self.bv2 = np.zeros((kc, MAX_N_) if cfg.lam2 > 0.0 else (1, 1), f64)
        self.w2 = np.zeros((kc, MAX_N_) if cfg.lam2 > 0.0 else (1, 1), f64)
        self.rls = np.zeros((kc, RL_), f64)
        for i in range(MAX_RLS_):
            self.rls[:, RL_P + i * MAX_RLS_ + i] = 1.0
        self.cnt = np.empty((kc, NTAB_, NCLS_, nbk), f64)
        self.cnt[...] = prior
        self.tot = np.empty((kc, NTAB_, NCLS_), f64)
        self.tot[...] = prior.sum(axis=1, dtype=np.int64)
        if low_words is None:  # encoder: room for the largest low-bit field of every sample
            per_lane = (lane * nch * (bits + 2)) // 64 + 2
            self.low = np.zeros((nlanes, per_lane), np.uint64)
            self.lowcap = np.full(nlanes, per_lane * 64, i64)
        else:  # decoder: the lanes' words back to back, lane k's from offset k * max words
            low_words = list(low_words)
            per_lane = max([len(a) for a in low_words] + [1])
            self.low = np.zeros((nlanes, per_lane), np.uint64)
            for k, a in enumerate(low_words):
                self.low[k, :len(a)] = a
            self.lowcap = np.array([64 * len(a) for a in low_words], i64)
        self.lowpos = np.zeros(nlanes, i64)

        c.nlanes, c.nch, c.lane, c.nbk = nlanes, nch, lane, nbk
        c.n_own = cfg.n_own
        c.n_cross = cfg.n_cross if nch > 1 else 0
        c.n = c.n_own + c.n_cross
        c.solve_every = cfg.solve_every
        c.nstages = len(cfg.taps)
        for i in range(MAX_STAGES_):
            c.taps[i] = cfg.taps[i] if i < c.nstages else 4
            c.mu[i] = 1.0 / <double>(<int64_t>1 << cfg.mu_shift[i]) if i < c.nstages else 0.0
        c.row = per_lane
        self.pw = POWER_WEIGHTS
        c.pw = <const double*>address(self.pw, f64, (MAX_TAPS_,))
        c.pow_norm = cfg.pow_norm
        for i in range(MAX_STAGES_):
            c.pscale[i] = c.taps[i] / POWER_WEIGHT_SUMS[c.taps[i] - 1]
            c.gbeta[i] = 1.0 - 4.0 / c.taps[i]
        c.nu_rel, c.mix_step, c.bias_rate, c.ema_fast, c.ema_slow = cfg.nu_rel, cfg.mix_step, cfg.bias_rate, cfg.ema_fast, cfg.ema_slow
        c.inc, c.limit, c.wfast, c.wslow, c.coder = cfg.inc, cfg.limit, cfg.wfast, cfg.wslow, cfg.coder
        c.mapped = False
        c.lam = cfg.lam
        c.scale = <double>(<int64_t>1 << (bits - 1))
        c.inv_scale = 1.0 / c.scale
        c.eps2 = c.inv_scale * c.inv_scale
        c.vmin = -(<int64_t>1 << (bits - 1))
        c.vmax = (<int64_t>1 << (bits - 1)) - 1
        c.lengths = <const int64_t*>address(self.lengths, i64, (nlanes,))
        c.s = <int32_t*>address(self.s, i32, (nlanes, nch, HIST_ + lane))
        c.R = <double*>address(self.R, f64, (kc, MAX_N_, MAX_N_))
        c.F = <double*>address(self.F, f64, (kc, FD_, 2, MAX_N_))
        c.bv = <double*>address(self.bv, f64, (kc, MAX_N_))
        c.w = <double*>address(self.w, f64, (kc, MAX_N_))
        c.x = <double*>address(self.x, f64, (kc, MAX_N_))
        c.ch = <double*>address(self.ch, f64, (kc, MAX_N_, MAX_N_))
        c.ring = <double*>address(self.ring, f64, (kc, MAX_STAGES_, 2 * MAX_TAPS_))
        c.wt = <double*>address(self.wt, f64, (kc, MAX_STAGES_, MAX_TAPS_))
        c.norm = <int64_t*>address(self.norm, i64, (kc, MAX_STAGES_))
        c.head = <int64_t*>address(self.head, i64, (kc, MAX_STAGES_))
        c.mix = <int64_t*>address(self.mix, i64, (kc, MAX_STAGES_))
        c.bias = <int64_t*>address(self.bias, i64, (kc, N_BIAS_))
        c.ema = <int64_t*>address(self.ema, i64, (kc, 2))
        c.sc = <int64_t*>address(self.sc, i64, (kc, SC_))
        c.ols = <double*>address(self.ols, f64, (kc, 2))
        c.gp = <double*>address(self.gp, f64, (kc, MAX_STAGES_))
        c.irls = cfg.irls
        c.mixer, c.mix_mu, c.mix_beta, c.fine_stages = cfg.mixer, cfg.mix_mu, cfg.mix_beta, cfg.fine_stages
        c.unit = 64 if cfg.fine_stages else 1
        c.rls_n, c.rls_lam, c.rls_il = cfg.rls_n, cfg.rls_lam, 1.0 / cfg.rls_lam
        c.nmix = len(cfg.taps) + (1 if cfg.rls_n > 0 else 0) + (1 if cfg.lam2 > 0.0 else 0)
        c.lam2 = cfg.lam2
        c.R2 = <double*>address(self.R2, f64, tuple(self.R2.shape))
        c.bv2 = <double*>address(self.bv2, f64, tuple(self.bv2.shape))
        c.w2 = <double*>address(self.w2, f64, tuple(self.w2.shape))
        c.rls = <double*>address(self.rls, f64, (kc, RL_))
        c.am = <double*>address(self.am, f64, (kc, AM_))
        c.cnt = <double*>address(self.cnt, f64, (kc, NTAB_, NCLS_, nbk))
        c.logistic = self.logistic = cfg.logistic
        self.shares = np.zeros(nlanes, np.uint8)
        c.share = <const uint8_t*>address(self.shares, np.uint8, (nlanes,))
        c.lrow = <const double*>address(self.lrow, f64, tuple(self.lrow.shape))
        c.ltot = <const double*>address(self.ltot, f64, tuple(self.ltot.shape))
        c.tot = <double*>address(self.tot, f64, (kc, NTAB_, NCLS_))
        c.low = <uint64_t*>address(self.low, np.uint64, (nlanes, per_lane))
        c.lowpos = <int64_t*>address(self.lowpos, i64, (nlanes,))
        c.lowcap = <int64_t*>address(self.lowcap, i64, (nlanes,))

    def set_shares(self, shares):
        """Each lane's share of the logistic row in its coder rows, in sixteenths (0..15)."""
        shares = np.asarray(shares)
        if shares.shape != (self.nlanes,) or (shares < 0).any() or (shares >= LSHARE_ONE).any() \
                or (not self.c.logistic and (shares != 0).any()):
            raise ValueError("lanes: logistic shares out of range")
        self.shares[:] = shares

    def set_value_map(self, used):
        """Code residuals as rank differences among `used` (the sorted distinct sample values of the
        chunk, at most MAP_MAX_BITS bits): a recording that uses only some values (a gain applied
        after quantisation) pays nothing for the values it never takes."""
        cdef Lanes* c = &self.c
        used = np.ascontiguousarray(used, np.int32)
        if self.bits > MAP_MAX_BITS_ or used.ndim != 1 or len(used) == 0 or used[0] < c.vmin or used[-1] > c.vmax \
                or (len(used) > 1 and (np.diff(used) <= 0).any()):
            raise ValueError("value map: sorted distinct values inside the bit depth")
        span = int(c.vmax - c.vmin) + 2
        below = np.zeros(span, np.int32)
        below[used.astype(np.int64) - c.vmin + 1] = 1
        self.below = np.cumsum(below, dtype=np.int32)
        self.used = used
        c.below = <const int32_t*>address(self.below, np.int32, (span,))
        c.used = <const int32_t*>address(self.used, np.int32, (len(used),))
        c.nused = len(used)
        c.mapped = True

    def load(self, samples):
        """Encoder: the chunk's frames (frames, nch), cut into the lanes."""
        samples = np.asarray(samples)
        a = 0
        for k in range(self.nlanes):
            n = int(self.lengths[k])
            self.s[k, :, HIST_:HIST_ + n] = samples[a:a + n].T
            a += n

    def unload(self):
        """Decoder: the lanes' samples as (frames, nch)."""
        return np.concatenate([self.s[k, :, HIST_:HIST_ + int(self.lengths[k])].T for k in range(self.nlanes)])

    def low_words(self, Py_ssize_t k):
        """Encoder: lane k's low bits as whole 64-bit words."""
        return self.low[k, :(int(self.lowpos[k]) + 63) // 64].copy()


# -- the per-sample model (raw pointers; callers keep every index in range) -----------------------------

# R_u = lam R_(u-1) + x_u x_u' (u: the update number) needs only two rows a sample: inside a
# block (own samples, partner samples) x_u[i] = x_(u-1)[i - 1], and before the lane's start every
# sample is 0, so R_u[i][j] = R_(u-k)[i-k][j-k] with k the smaller of i and j counted inside
# their blocks, which is row 0 or row n_own (the block's first) of an earlier R: the same
# operations on the same values, hence the same bits as updating the whole triangle.
cdef void rebuild(const Lanes* L, Py_ssize_t kc) noexcept nogil:
    """R (lower triangle) of the latest update from the boundary rows' history."""
    cdef Py_ssize_t n = L.n, no = L.n_own, i, j, li, u = L.sc[kc * SC_ + SC_NUPD] - 1
    cdef double* R = L.R + kc * MAX_N_ * MAX_N_
    cdef const double* F = L.F + kc * FD_ * 2 * MAX_N_
    # F at update u - k, boundary row r, entry e: F[(((u - k) & (FD - 1)) * 2 + r) * MAX_N + e]
    for i in range(no):  # own x own: k = j, row 0
        for j in range(i + 1):
            R[i * MAX_N_ + j] = F[(((u - j) & (FD_ - 1)) * 2) * MAX_N_ + i - j]
    for i in range(no, n):
        li = i - no
        for j in range(no):  # cross x own: k = the smaller of li and j
            if j <= li:
                R[i * MAX_N_ + j] = F[(((u - j) & (FD_ - 1)) * 2) * MAX_N_ + i - j]
            else:
                R[i * MAX_N_ + j] = F[(((u - li) & (FD_ - 1)) * 2 + 1) * MAX_N_ + j - li]
        for j in range(no, i + 1):  # cross x cross: k = j - no, row n_own
            R[i * MAX_N_ + j] = F[(((u - j + no) & (FD_ - 1)) * 2 + 1) * MAX_N_ + i - j + no]


cdef bint solve(const Lanes* L, Py_ssize_t kc) noexcept nogil:
    """The least-squares weights of lane-channel kc from its statistics (and the second fit's)."""
    if not L.irls:
        rebuild(L, kc)
    if L.lam2 > 0.0:
        cholesky_solve(L.R2 + kc * MAX_N_ * MAX_N_, L.bv2 + kc * MAX_N_, L.w2 + kc * MAX_N_,
                       L.ch + kc * MAX_N_ * MAX_N_, L.n, MAX_N_, ridge(L, L.R2 + kc * MAX_N_ * MAX_N_))
    return cholesky_solve(L.R + kc * MAX_N_ * MAX_N_, L.bv + kc * MAX_N_, L.w + kc * MAX_N_,
                          L.ch + kc * MAX_N_ * MAX_N_, L.n, MAX_N_, ridge(L, L.R + kc * MAX_N_ * MAX_N_))


cdef inline double ridge(const Lanes* L, const double* R) noexcept nogil:
    """nu of a solve of R: NU_REL times R's mean diagonal, plus the floor eps2."""
    cdef Py_ssize_t i
    cdef double tr = 0.0
    for i in range(L.n):
        tr = tr + R[i * MAX_N_ + i]
    return L.nu_rel * tr / L.n + L.eps2


cdef inline int64_t sign3(int64_t v) noexcept nogil:
    return 1 if v > 0 else (-1 if v < 0 else 0)


cdef double MIX_EPS = 1e-5  # the adaptive step's floor of the gradient scale


cdef double RLS_P_MAX = 1.0  # the inverse covariance stops growing once its trace passes this much a
                              # row (where it starts): a silent stretch must not leave a huge gain


@cython.cdivision(True)
cdef void rls_step(const Lanes* L, Py_ssize_t kc, double value) noexcept nogil:
    """The RLS stage: learn the cascade's residual `value` from its last rls_n values, push it,
    and predict the next one (exponentially weighted recursive least squares; only + - * /)."""
    cdef double* r = L.rls + kc * RL_
    cdef double* w = r + RL_W
    cdef double* P = r + RL_P
    cdef double* x = r + RL_X
    cdef Py_ssize_t n = L.rls_n, i, j
    cdef double ph[MAX_RLS_]
    cdef double phi = 0.0, den, err = value - r[RL_PRED], il = L.rls_il, tr = 0.0, acc
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc = acc + P[i * MAX_RLS_ + j] * x[j]
        ph[i] = acc
        phi = phi + x[i] * acc
        tr = tr + P[i * MAX_RLS_ + i]
    if tr > RLS_P_MAX * <double>n:
        il = 1.0
    if phi >= 0.0 and phi < P_LIMIT * P_LIMIT:
        den = 1.0 / (L.rls_lam + phi)
        for i in range(n):
            w[i] = w[i] + err * (den * ph[i])
            for j in range(n):
                P[i * MAX_RLS_ + j] = (P[i * MAX_RLS_ + j] - den * (ph[i] * ph[j])) * il
    else:  # rounding made P indefinite (inputs of nearly lower rank, a pure tone): start it again
        for i in range(n):
            for j in range(n):
                P[i * MAX_RLS_ + j] = 1.0 if i == j else 0.0
    cdef double top = 0.0
    for i in range(n - 1, 0, -1):
        x[i] = x[i - 1]
    x[0] = value
    acc = 0.0
    for i in range(n):
        acc = acc + w[i] * x[i]
        top = top if fabs(x[i]) <= top else fabs(x[i])
    # an ill-conditioned fit may extrapolate far: never more than twice the largest recent value
    r[RL_PRED] = acc if (acc > -2.0 * top and acc < 2.0 * top) else (2.0 * top if acc > 0.0 else -2.0 * top)


@cython.cdivision(True)
cdef int64_t ada_mix(const Lanes* L, Py_ssize_t kc) noexcept nogil:
    """The adaptive-step mixer's prediction of what the least squares left: a weighted sum of the
    stages' predictions (and the RLS stage's, and the second fit's). -> it in 2^-14 units, as the
    sign-sign mixer's."""
    cdef double* a = L.am + kc * AM_
    cdef const int64_t* sc = L.sc + kc * SC_
    cdef double m = 0.0, p2, d2, d2max
    cdef Py_ssize_t i
    for i in range(L.nstages):
        a[AM_IN + i] = <double>sc[SC_P0 + i]
    if L.rls_n > 0:
        a[AM_IN + L.nstages] = L.rls[kc * RL_ + RL_PRED]
    if L.lam2 > 0.0:  # the second fit's prediction against the first's (L.ols), in the stages' units
        p2 = nz_dot(L.w2 + kc * MAX_N_, L.x + kc * MAX_N_, L.n) * L.scale
        d2 = (p2 - L.ols[kc * 2]) * <double>L.unit if (p2 > -P_LIMIT and p2 < P_LIMIT) else 0.0
        d2max = <double>(U_CLIP * L.unit)
        a[AM_IN + L.nmix - 1] = d2 if fabs(d2) <= d2max else (d2max if d2 > 0.0 else -d2max)
    for i in range(L.nmix):
        m = m + a[AM_W + i] * a[AM_IN + i]
    if not (m > -P_LIMIT and m < P_LIMIT):
        m = 0.0
    a[AM_OUT] = m
    return <int64_t>floor(m * <double>MIX_ONE + 0.5)


@cython.cdivision(True)
cdef void ada_learn(const Lanes* L, Py_ssize_t kc, int64_t target) noexcept nogil:
    """The mixer's step toward `target` (what the stages should have summed to): the sign of the
    error times each input, over the input's running mean |gradient| (so every
    input steps at the same pace whatever its size)."""
    cdef double* a = L.am + kc * AM_
    cdef double beta = L.mix_beta, e = <double>target - a[AM_OUT], s, g
    cdef Py_ssize_t i
    s = 1.0 if e > 0.0 else (-1.0 if e < 0.0 else 0.0)
    for i in range(L.nmix):
        g = s * a[AM_IN + i]
        a[AM_G + i] = beta * a[AM_G + i] + (1.0 - beta) * fabs(g)
        a[AM_W + i] = a[AM_W + i] + L.mix_mu * g / (a[AM_G + i] + MIX_EPS)


@cython.boundscheck(False)
cdef void predict(const Lanes* L, Py_ssize_t k, Py_ssize_t c, Py_ssize_t t) noexcept nogil:
    """Prediction and count-table classes of channel c at frame t of lane k (into the scratch)."""
    cdef Py_ssize_t nch = L.nch, kc = k * nch + c, span = HIST_ + L.lane, j, i, q, off, taps
    cdef const int32_t* own = L.s + kc * span + HIST_ + t
    cdef const int32_t* other
    cdef double* x = L.x + kc * MAX_N_
    cdef const double* w = L.w + kc * MAX_N_
    cdef int64_t* sc = L.sc + kc * SC_
    cdef double p, acc
    cdef int64_t pols, mix = 0, bctx, fine, pred, frac
    for j in range(L.n_own):
        x[j] = own[-1 - j] * L.inv_scale
    if L.n_cross > 0:
        q = c - 1 if c > 0 else 1
        off = 0 if c > 0 else 1
        other = L.s + (k * nch + q) * span + HIST_ + t - off
        for j in range(L.n_cross):
            x[L.n_own + j] = other[-j] * L.inv_scale
    p = nz_dot(w, x, L.n) * L.scale
    if not (p > -P_LIMIT and p < P_LIMIT):
        p = 0.0
    pols = clip(<int64_t>floor(p + 0.5), L.vmin, L.vmax)
    L.ols[kc * 2] = p
    for i in range(L.nstages):  # the stages' predictions, made by the last update
        sc[SC_P0 + i] = sc[SC_N0 + i]
    if L.mixer > 0:  # mix in 2^-14 units, from the adaptive-step mixer
        mix = ada_mix(L, kc)
    else:
        for i in range(L.nstages):
            mix = mix + L.mix[kc * MAX_STAGES_ + i] * sc[SC_P0 + i]
    if L.fine_stages:  # mix in 2^-14 units of 1/64 samples
        bctx = (sign3(sc[SC_E1]) + 1) * 9 + (sign3(sc[SC_E2]) + 1) * 3 + sign3(mix >> 20) + 1
        sc[SC_FOLS] = clip(<int64_t>floor(p * 64.0 + 0.5), L.vmin * 64, L.vmax * 64)
        sc[SC_MIX] = mix >> 20
        fine = sc[SC_FOLS] + (mix >> 14) + L.bias[kc * N_BIAS_ + bctx]
    else:
        bctx = (sign3(sc[SC_E1]) + 1) * 9 + (sign3(sc[SC_E2]) + 1) * 3 + sign3(mix >> 14) + 1
        sc[SC_MIX] = mix >> 14
    sc[SC_POLS] = pols
    sc[SC_BCTX] = bctx
    sc[SC_CLS0] = scale_class(L.ema[kc * 2], NCLS_)
    sc[SC_QLOG] = fine_scale_class(L.ema[kc * 2 + 1], NQ_)
    # = scale_class of the same mean: it is at most 16 U_CLIP = 2^28, so its fine class is never capped
    sc[SC_CLS1] = coarse_scale_class(sc[SC_QLOG], NCLS_)
    if L.coder == 1:
        sc[SC_PRED] = clip(pols + (mix >> 14) + ((L.bias[kc * N_BIAS_ + bctx] + (1 << (BIAS_SHIFT - 1))) >> BIAS_SHIFT),
                           L.vmin, L.vmax)
        return
    # coder 2: the prediction in 1/64 units (least squares, mixer and bias unrounded); where it falls
    # between two integers says which side of the rounded prediction the value more likely lies on,
    # and the residual's sign is flipped so that side gets the smaller zigzag code
    if not L.fine_stages:
        fine = (clip(<int64_t>floor(p * 64.0 + 0.5), L.vmin * 64, L.vmax * 64) + (mix >> (14 - BIAS_SHIFT))
                + L.bias[kc * N_BIAS_ + bctx])
    pred = (fine + 32) >> BIAS_SHIFT
    frac = fine - pred * 64
    if pred < L.vmin or pred > L.vmax:
        pred = clip(pred, L.vmin, L.vmax)
        frac = 0
    sc[SC_FINE] = fine
    sc[SC_PRED] = pred
    sc[SC_FLIP] = frac > 0


@cython.boundscheck(False)
@cython.cdivision(True)
cdef void update(const Lanes* L, Py_ssize_t k, Py_ssize_t c, Py_ssize_t t, int64_t value) noexcept nogil:
    """Adapt every stage to the coded value of channel c at frame t (after predict)."""
    cdef Py_ssize_t nch = L.nch, kc = k * nch + c, span = HIST_ + L.lane, n = L.n, i, j, taps, h
    cdef double* b = L.bv + kc * MAX_N_
    cdef const double* x = L.x + kc * MAX_N_
    cdef int64_t* sc = L.sc + kc * SC_
    cdef double lam = L.lam, y = value * L.inv_scale, acc, pw_norm, q, cw
    cdef double* dv
    cdef double* wt
    cdef Py_ssize_t nh
    cdef double* Fu
    cdef double* Fp
    cdef int64_t upd
    cdef int64_t tgt, tgt0, err, e, eb, u, old, ae
    cdef double* ring
    cdef int64_t* m
    L.s[kc * span + HIST_ + t] = <int32_t>value
    # 1. least squares statistics, and the solve every solve_every samples
    if L.irls:  # weighted: a sample counts less while the errors are large (coding cost is ~log|e|)
        dv = L.ols + kc * 2
        dv[1] = 0.5 * dv[1] + 0.5 * fabs(<double>value - dv[0])
        q = dv[1] + 2.0
        cw = 1.0 / (sqrt(q) * sqrt(sqrt(q)))
        decay_add(L.R + kc * MAX_N_ * MAX_N_, b, x, n, MAX_N_, lam, cw, y)
    else:  # R's boundary rows (see rebuild), rounded up to a pair (x[n] is 0 when n is odd)
        upd = sc[SC_NUPD]
        Fu = L.F + (kc * FD_ + (upd & (FD_ - 1))) * 2 * MAX_N_
        Fp = L.F + (kc * FD_ + ((upd - 1) & (FD_ - 1))) * 2 * MAX_N_
        nz_decay_axpy_to(Fu, Fp, x, lam, x[0], (n + 1) & ~1)
        if L.n_cross > 0:
            nz_decay_axpy_to(Fu + MAX_N_, Fp + MAX_N_, x, lam, x[L.n_own], (n + 1) & ~1)
        nz_decay_axpy(b, x, lam, y, (n + 1) & ~1)
        cw = 1.0
    if L.lam2 > 0.0:  # the second fit: the same (weighted) samples, another memory
        decay_add(L.R2 + kc * MAX_N_ * MAX_N_, L.bv2 + kc * MAX_N_, x, n, MAX_N_, L.lam2, cw, y)
    sc[SC_NUPD] += 1
    if sc[SC_NUPD] % L.solve_every == 0:
        solve(L, kc)
    # 2. the NLMS cascade: stage i learns what the stages before it left
    cdef int64_t uclip = U_CLIP * L.unit
    tgt = value * 64 - sc[SC_FOLS] if L.fine_stages else value - sc[SC_POLS]
    tgt0 = tgt
    for i in range(L.nstages):
        taps = L.taps[i]
        h = L.head[kc * MAX_STAGES_ + i]
        ring = L.ring + (kc * MAX_STAGES_ + i) * 2 * MAX_TAPS_
        wt = L.wt + (kc * MAX_STAGES_ + i) * MAX_TAPS_
        tgt = clip(tgt, -uclip, uclip)
        err = clip(tgt - sc[SC_P0 + i], -uclip, uclip)
        # push tgt below the window (the old window stays where it is for the update)
        old = <int64_t>ring[h + taps - 1]
        if h == 0:
            for j in range(taps - 1):
                ring[MAX_TAPS_ + 1 + j] = ring[j]
            nh = MAX_TAPS_
        else:
            nh = h - 1
        ring[nh] = <double>tgt
        # w += mu err u / (|u|^2 + 16 taps) over the old window u, then the next prediction
        if err != 0:
            if L.pow_norm == 1:  # normalised by the recent samples more than the old (onsets)
                pw_norm = nz_wsq(L.pw, ring + h, taps) * L.pscale[i] + <double>(taps * 16 * L.unit * L.unit)
            elif L.pow_norm == 2:
                pw_norm = 4.0 * L.gp[kc * MAX_STAGES_ + i] + <double>(taps * 16 * L.unit * L.unit)
            else:
                pw_norm = <double>(L.norm[kc * MAX_STAGES_ + i] + taps * 16)
            acc = nz_axpy_dot(wt, ring + h, ring + nh, (<double>err * L.mu[i]) / pw_norm, taps)
        else:
            acc = nz_dot(wt, ring + nh, taps)
        sc[SC_N0 + i] = clip(<int64_t>floor(acc + 0.5), -uclip, uclip) if (acc > -P_LIMIT and acc < P_LIMIT) else 0
        if not L.fine_stages:  # (fine stages need pow_norm 1 or 2: squares of 1/64 units overflow this sum)
            L.norm[kc * MAX_STAGES_ + i] += tgt * tgt - old * old
        if L.pow_norm == 2:
            L.gp[kc * MAX_STAGES_ + i] = L.gp[kc * MAX_STAGES_ + i] * L.gbeta[i] + <double>(tgt * tgt)
        L.head[kc * MAX_STAGES_ + i] = nh
        tgt = tgt - sc[SC_P0 + i]
    if L.rls_n > 0:
        rls_step(L, kc, <double>tgt)
    # 3. the mixer and the bias
    if L.mixer > 0:
        ada_learn(L, kc, tgt0)
    else:
        eb = value - sc[SC_POLS] - sc[SC_MIX]
        m = L.mix + kc * MAX_STAGES_
        for i in range(L.nstages):
            u = sign3(eb) * sign3(sc[SC_P0 + i])
            m[i] = clip(m[i] + u * L.mix_step, 0, 2 * MIX_ONE)
    j = kc * N_BIAS_ + sc[SC_BCTX]
    e = value - sc[SC_PRED]
    eb = e if L.coder == 1 else value * 64 - sc[SC_FINE]
    if L.bias_rate > 0:  # sign steps: the bias tracks the context's median error (means chase outliers)
        L.bias[j] = clip(L.bias[j] - (L.bias[j] >> BIAS_LEAK) + sign3(eb) * (1 + (L.ema[kc * 2 + 1] >> L.bias_rate)),
                         -(<int64_t>W_CLIP << 16), <int64_t>W_CLIP << 16)
    sc[SC_E2] = sc[SC_E1]
    sc[SC_E1] = e
    # 4. the scale contexts (of the coded residual)
    ae = sc[SC_RERR] if sc[SC_RERR] >= 0 else -sc[SC_RERR]
    if ae > U_CLIP:
        ae = U_CLIP
    L.ema[kc * 2] += ((ae << 4) - L.ema[kc * 2]) >> L.ema_fast
    L.ema[kc * 2 + 1] += ((ae << 4) - L.ema[kc * 2 + 1]) >> L.ema_slow


cdef inline bint put_bits(const Lanes* L, Py_ssize_t k, int64_t v, int64_t nbits) noexcept nogil:
    cdef int64_t pos = L.lowpos[k], off
    cdef uint64_t* words = L.low + k * L.row
    if nbits == 0:
        return True
    if pos + nbits > L.lowcap[k]:
        return False
    off = pos & 63
    words[pos >> 6] |= (<uint64_t>v) << off
    if off + nbits > 64:
        words[(pos >> 6) + 1] |= (<uint64_t>v) >> (64 - off)
    L.lowpos[k] = pos + nbits
    return True


cdef inline int64_t get_bits(const Lanes* L, Py_ssize_t k, int64_t nbits, bint* ok) noexcept nogil:
    cdef int64_t pos = L.lowpos[k], off
    cdef const uint64_t* words = L.low + k * L.row
    cdef uint64_t v
    if nbits == 0:
        return 0
    if pos + nbits > L.lowcap[k]:
        ok[0] = False
        return 0
    off = pos & 63
    v = words[pos >> 6] >> off
    if off + nbits > 64:
        v |= words[(pos >> 6) + 1] << (64 - off)
    L.lowpos[k] = pos + nbits
    return <int64_t>(v & ((<uint64_t>1 << nbits) - 1))


cdef inline void count_row(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1, double* dst) noexcept nogil:
    """The count row of the current sample: the fast and the slow context's tables added."""
    cdef Py_ssize_t nbk = L.nbk
    nz_mix2(dst, L.cnt + (kc * NTAB_ * NCLS_ + cls0) * nbk, L.cnt + (kc * NTAB_ * NCLS_ + NCLS_ + cls1) * nbk,
            <double>L.wfast, <double>L.wslow, nbk)


cdef inline double count_total(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1) noexcept nogil:
    """The sum of count_row's row, from the tables' kept totals (integers: exact)."""
    return (L.wfast * L.tot[kc * NTAB_ * NCLS_ + cls0]
            + L.wslow * L.tot[kc * NTAB_ * NCLS_ + NCLS_ + cls1])


# The coder's row: the count row alone (share a = 0), or mixed with the logistic row of the sample's fine
# scale class as (16 - a) * ltot * counts + a * T * logistic (T the counts' total), so that
# its probabilities are ((16 - a) p_counts + a p_logistic) / 16 exactly: integers, every product and sum
# below 2^53 (counts' totals below 2^26, logistic totals at most 2^20).

cdef inline double coder_total(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1, int64_t q,
                               int64_t a) noexcept nogil:
    cdef double t = count_total(L, kc, cls0, cls1)
    return t if a == 0 else LSHARE_ONE * t * L.ltot[q]


cdef inline void coder_row(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1, int64_t q, int64_t a,
                           double* dst) noexcept nogil:
    cdef Py_ssize_t nbk = L.nbk
    count_row(L, kc, cls0, cls1, dst)
    if a:  # in place, element by element (nbk is even, as nz_mix2's generic build needs)
        nz_mix2(dst, dst, L.lrow + q * nbk, <double>(LSHARE_ONE - a) * L.ltot[q],
                <double>a * count_total(L, kc, cls0, cls1), nbk)


cdef inline double coder_pick(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1, int64_t q,
                              int64_t a, Py_ssize_t sy) noexcept nogil:
    """coder_row's entry for symbol sy."""
    cdef Py_ssize_t nbk = L.nbk
    cdef double pick = (L.wfast * L.cnt[(kc * NTAB_ * NCLS_ + cls0) * nbk + sy]
                        + L.wslow * L.cnt[(kc * NTAB_ * NCLS_ + NCLS_ + cls1) * nbk + sy])
    if a == 0:
        return pick
    return ((LSHARE_ONE - a) * L.ltot[q] * pick + a * count_total(L, kc, cls0, cls1) * L.lrow[q * nbk + sy])


cdef inline void count_add(double* row, double* total, Py_ssize_t n, int64_t sym, int64_t inc,
                           int64_t limit) noexcept nogil:
    """primitives.count_update on integer-valued doubles: add `inc` to the observed symbol; above
    `limit` in total, halve every count (rounding up) and recount."""
    cdef Py_ssize_t j
    cdef int64_t t = 0, v
    row[sym] += inc
    total[0] += inc
    if total[0] > limit:
        for j in range(n):
            v = (<int64_t>row[j] + 1) >> 1
            row[j] = <double>v
            t += v
        total[0] = <double>t


cdef inline void count_learn(const Lanes* L, Py_ssize_t kc, int64_t cls0, int64_t cls1, int64_t sym) noexcept nogil:
    cdef Py_ssize_t nbk = L.nbk
    cdef Py_ssize_t r0 = kc * NTAB_ * NCLS_ + cls0, r1 = kc * NTAB_ * NCLS_ + NCLS_ + cls1
    count_add(L.cnt + r0 * nbk, L.tot + r0, nbk, sym, L.inc, L.limit)
    count_add(L.cnt + r1 * nbk, L.tot + r1, nbk, sym, L.inc, L.limit)


# -- encoder -----------------------------------------------------------------------------------------

@cython.boundscheck(False)
def model_lanes(LaneState lanes, uint8_t[:, :, ::1] sym, uint8_t[:, :, :, ::1] cls, int64_t[:, :, ::1] res=None):
    """Encoder pass 1: every lane start to end: the bucket symbol and the coder's contexts of every
    sample (sym[lane, channel, frame]; cls[lane, channel, i, frame]: the fast table's class, i = 0, and
    the fine scale class of the slow running mean, i = 1, which gives the slow table's class and the
    logistic row); the low bits go into the lanes'
    bit streams. `res` (optional, for experiments): the final residuals. One thread (the caller runs
    chunks in parallel: one long task per thread, no barriers that a busy machine turns into waits)."""
    cdef Lanes* L = &lanes.c
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, k, t, c, kc, span = HIST_ + L.lane
    cdef int64_t value, r
    cdef Bucket bk
    cdef int64_t* sc
    cdef bint keep = res is not None
    if sym.shape[0] != nlanes or sym.shape[1] != nch or sym.shape[2] < L.lane or cls.shape[0] != nlanes \
            or cls.shape[1] != nch or cls.shape[2] != NCTX_ or cls.shape[3] < L.lane:
        raise ValueError("model_lanes: record arrays of another chunk")
    if keep and (res.shape[0] != nlanes or res.shape[1] != nch or res.shape[2] < L.lane):
        raise ValueError("model_lanes: residual array of another chunk")
    if L.nbk > 255:
        raise ValueError("model_lanes: alphabet too large")
    cdef bint bad = False
    with nogil:
        for k in range(nlanes):
            for t in range(L.lengths[k]):
                for c in range(nch):
                    kc = k * nch + c
                    sc = L.sc + kc * SC_
                    predict(L, k, c, t)
                    value = L.s[kc * span + HIST_ + t]
                    if value < L.vmin or value > L.vmax:
                        bad = True
                        value = clip(value, L.vmin, L.vmax)
                    r = value - sc[SC_PRED]
                    if L.mapped:
                        if L.below[value - L.vmin + 1] == L.below[value - L.vmin]:
                            bad = True  # a value the map does not have
                        r = L.below[value - L.vmin] - L.below[sc[SC_PRED] - L.vmin]
                    if sc[SC_FLIP]:
                        r = -r
                    sc[SC_RERR] = r
                    if keep:
                        res[k, c, t] = r
                    bk = bucket_of(zigzag(r))
                    if bk.sym >= L.nbk or not put_bits(L, k, bk.low, bk.nlow):
                        bad = True
                        bk.sym = 0
                    sym[k, c, t] = <uint8_t>bk.sym
                    cls[k, c, 0, t] = <uint8_t>sc[SC_CLS0]
                    cls[k, c, 1, t] = <uint8_t>sc[SC_QLOG]
                    update(L, k, c, t, value)
    if bad:
        raise ValueError("a sample lies outside the recording's bit depth")


@cython.boundscheck(False)
def replay(LaneState lanes, const uint8_t[:, :, ::1] sym, const uint8_t[:, :, :, ::1] cls, Py_ssize_t t0,
           Py_ssize_t t1, const int64_t[::1] offs, int32_t[::1] out_sym, double[:, ::1] rows=None):
    """Encoder pass 2: frames t0..t1 in the decoder's order (frame, channel, lane): every sample's
    symbol and coder row (rows None: no rows, for a cost count), adapting the count tables as the
    decoder will. offs[(t - t0) * nch + c]: the first position of step (t, c). -> the window's
    information content in bits under the integer counts (a figure, never coded: log2 is fine)."""
    cdef Lanes* L = &lanes.c
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, nbk = L.nbk, k, t, c, kc, m, s, sy, c0, c1, q
    cdef bint want = rows is not None
    cdef double bits = 0.0, pick, total
    if t0 < 0 or t1 < t0 or t1 > L.lane or offs.shape[0] != (t1 - t0) * nch + 1 \
            or out_sym.shape[0] < offs[offs.shape[0] - 1] or (want and (rows.shape[1] != nbk
                                                                     or rows.shape[0] < offs[offs.shape[0] - 1])):
        raise ValueError("replay: buffers do not match the window")
    for s in range((t1 - t0) * nch):
        t = t0 + s // nch
        m = 0
        for k in range(nlanes):
            if t < L.lengths[k]:
                m += 1
        if offs[s + 1] - offs[s] != m or offs[s] < 0:
            raise ValueError("replay: offsets do not match the lanes")
    with nogil:
        for k in range(nlanes):
            for t in range(t0, min(t1, L.lengths[k])):
                for c in range(nch):
                    kc = k * nch + c
                    m = offs[(t - t0) * nch + c] + k
                    sy, c0, q = sym[k, c, t], cls[k, c, 0, t], cls[k, c, 1, t]
                    c1 = coarse_scale_class(q, NCLS_)
                    if want:
                        coder_row(L, kc, c0, c1, q, L.share[k], &rows[m, 0])
                    out_sym[m] = <int32_t>sy
                    pick = coder_pick(L, kc, c0, c1, q, L.share[k], sy)
                    total = coder_total(L, kc, c0, c1, q, L.share[k])
                    bits = bits + log2(total / pick)
                    count_learn(L, kc, c0, c1, sy)
    return bits


@cython.boundscheck(False)
def share_costs(LaneState lanes, const uint8_t[:, :, ::1] sym, const uint8_t[:, :, :, ::1] cls, shares):
    """Encoder, between pass 1 and the replay: what every lane would cost (bits of its bucket symbols)
    under each candidate share of the logistic row. The count tables adapt as in the replay (the
    same whatever the share) and are put back as they were. Each lane's probabilities are multiplied
    up, the product's exponent moved aside (frexp, exact) every 16 samples, so a lane takes one log2
    per candidate, not one a sample. -> (nlanes, shares)."""
    cdef Lanes* L = &lanes.c
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, k, t, c, kc, i, sy, c0, c1, q, n
    cdef double prod[LSHARE_ONE]
    cdef int64_t expo[LSHARE_ONE]
    cdef int e
    cand_a = np.ascontiguousarray(shares, np.int64)
    if cand_a.ndim != 1 or not 1 <= len(cand_a) <= LSHARE_ONE or (cand_a < 0).any() or (cand_a >= LSHARE_ONE).any() \
            or not L.logistic \
            or sym.shape[0] != nlanes or sym.shape[1] != nch or sym.shape[2] < L.lane or cls.shape[0] != nlanes \
            or cls.shape[1] != nch or cls.shape[2] != NCTX_ or cls.shape[3] < L.lane:
        raise ValueError("share_costs: candidates or record arrays out of range")
    out_a = np.zeros((nlanes, len(cand_a)), np.float64)
    saved = lanes.cnt.copy(), lanes.tot.copy()
    cdef const int64_t[::1] cand = cand_a
    cdef double[:, ::1] out = out_a
    cdef Py_ssize_t ncand = cand.shape[0]
    with nogil:
        for k in range(nlanes):
            for i in range(ncand):
                prod[i] = 1.0
                expo[i] = 0
            n = 0
            for t in range(L.lengths[k]):
                for c in range(nch):
                    kc = k * nch + c
                    sy, c0, q = sym[k, c, t], cls[k, c, 0, t], cls[k, c, 1, t]
                    c1 = coarse_scale_class(q, NCLS_)
                    for i in range(ncand):  # each factor is at least 2^-30: 16 of them stay normal
                        prod[i] *= coder_pick(L, kc, c0, c1, q, cand[i], sy) / coder_total(L, kc, c0, c1, q, cand[i])
                    count_learn(L, kc, c0, c1, sy)
                    n += 1
                    if n % 16 == 0:
                        for i in range(ncand):
                            prod[i] = frexp(prod[i], &e)
                            expo[i] += e
            for i in range(ncand):
                out[k, i] = -(log2(prod[i]) + <double>expo[i])
    lanes.cnt[...] = saved[0]
    lanes.tot[...] = saved[1]
    return out_a


def coarse_class_mismatch(int64_t top):
    """Test face: the first running mean m <= top (in 16x units) where coarse_scale_class of its
    fine_scale_class is not scale_class(m), or -1. Checks every m below 2^12 and, above, both sides
    of every boundary of the fine classes (the classes are constant between them)."""
    cdef int64_t m, bl, j, d
    for m in range(min(top, 4095) + 1):
        if coarse_scale_class(fine_scale_class(m, NQ_), NCLS_) != scale_class(m, NCLS_):
            return m
    for bl in range(13, 64):
        for j in range(8):
            for d in (-1, 0):
                m = (<int64_t>1 << (bl - 1)) + j * (<int64_t>1 << (bl - 4)) + d
                if m > top:
                    return -1
                if coarse_scale_class(fine_scale_class(m, NQ_), NCLS_) != scale_class(m, NCLS_):
                    return m
    return -1


# -- decoder -----------------------------------------------------------------------------------------

cdef Py_ssize_t step(const Lanes* L, Py_ssize_t s, const int32_t* sym, double* rows, uint8_t* errors) noexcept nogil:
    """Finish step s - 1 (its symbols, sym[lane], are decoded and in the alphabet: read the low
    bits, rebuild the values, adapt), then the coder row of every lane active at step s (frame
    s // nch, channel s % nch). -> the number of lanes active at step s; errors[lane] set where
    a value falls outside the bit depth or the low bits run past the lane's stream.
    One thread: a step's work (a few microseconds) is too small to share; an OpenMP region per
    step made the decoder 5x slower on a busy 2-core machine (threads waiting at the barrier)."""
    cdef Py_ssize_t nlanes = L.nlanes, nch = L.nch, nbk = L.nbk, k, t, c, tp, cp, kc, m
    cdef int64_t v, lo, nlow, u, rank
    cdef int64_t* sc
    cdef bint ok
    t = s // nch
    c = s - t * nch
    tp = (s - 1) // nch if s > 0 else -1
    cp = s - 1 - tp * nch
    for k in range(nlanes):
        if s > 0 and tp < L.lengths[k]:
            kc = k * nch + cp
            sc = L.sc + kc * SC_
            ok = True
            nlow = low_bits_of_bucket(sym[k])
            lo = get_bits(L, k, nlow, &ok)
            u = unzigzag(value_of(sym[k], lo))
            sc[SC_RERR] = u
            if sc[SC_FLIP]:
                u = -u
            if L.mapped:
                rank = L.below[sc[SC_PRED] - L.vmin] + u
                if rank < 0 or rank >= L.nused:
                    errors[k] = 1
                    rank = 0
                v = L.used[rank]
            else:
                v = sc[SC_PRED] + u
            if not ok or v < L.vmin or v > L.vmax:
                errors[k] = 1
                v = clip(v, L.vmin, L.vmax)
            count_learn(L, kc, sc[SC_CLS0], sc[SC_CLS1], sym[k])
            update(L, k, cp, tp, v)
        if t < L.lengths[k]:
            kc = k * nch + c
            predict(L, k, c, t)
            sc = L.sc + kc * SC_
            coder_row(L, kc, sc[SC_CLS0], sc[SC_CLS1], sc[SC_QLOG], L.share[k], rows + k * nbk)
    m = 0
    for k in range(nlanes):
        if t < L.lengths[k]:
            m += 1
        if errors[k]:
            return -1
    return m


def decode_lanes(LaneState lanes, const uint32_t[::1] words, object progress=None):
    """Decoder: every step of the chunk's lanes in lockstep, each active lane's symbol range-decoded
    here from the chunk's symbol stream (its 32-bit words) under the lane's coder row
    (range_decoder.pxd: what the encoder's coder wrote); progress(fraction) now and then."""
    cdef Lanes* L = &lanes.c
    cdef Py_ssize_t nl = L.nlanes, nbk = L.nbk, steps = L.lengths[0] * L.nch, s = 0, m, k, c, kc, end
    cdef int64_t* sc
    cdef RangeDecoder d
    cdef int32_t got
    rows_a = np.zeros((nl, nbk), np.float64)
    sym_a = np.zeros(nl, np.int32)
    errors_a = np.zeros(nl, np.uint8)
    cdef double[:, ::1] rows = rows_a
    cdef int32_t[::1] sym = sym_a
    cdef uint8_t[::1] errors = errors_a
    range_decoder_init(&d, &words[0] if words.shape[0] else NULL, words.shape[0])
    with nogil:
        m = step(L, 0, &sym[0], &rows[0, 0], &errors[0])
    while s < steps and m >= 0:
        if progress is not None and s:
            progress(s / steps)
        end = min(s + 65536, steps)
        with nogil:
            while s < end and m >= 0:
                c = s % L.nch
                for k in range(m):
                    kc = k * L.nch + c
                    sc = L.sc + kc * SC_
                    got = range_decode(&d, &rows[k, 0], nbk, coder_total(L, kc, sc[SC_CLS0], sc[SC_CLS1], sc[SC_QLOG],
                                                                     L.share[k]))
                    if got < 0:
                        m = -2
                        break
                    sym[k] = got
                if m >= 0:
                    s += 1
                    m = step(L, s, &sym[0], &rows[0, 0], &errors[0])
    if m == -2:
        raise ValueError("corrupt stream: a symbol the range decoder cannot place")
    if m < 0:
        raise ValueError("corrupt stream: a sample outside the bit depth or low bits past the lane's end")
