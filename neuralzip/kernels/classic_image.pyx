# The classic image model's passes over one wavefront step (the Python face and the
# model itself are described in neuralzip/models/classic_image.py).
#
# Per step and channel: predict_pass (every pixel's prediction, context and count
# row, from the state as it was before the step), then the coder, then update_pass
# (write decoded values, adapt every statistic, in pixel order). Integer arithmetic
# only, with Python's floor rounding wherever an operand can be negative, so a file
# decodes on any machine to the same bytes.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport floor
from libc.stdint cimport int16_t, int32_t, int64_t
from neuralzip.kernels.coding cimport KernelRangeEncoder
from neuralzip.kernels.job_worker cimport NZ_WORKER_JOBS, nz_worker_free, nz_worker_new, nz_worker_post, nz_worker_wait
from neuralzip.kernels.lsq cimport LSQ_MAX_N, cholesky_solve, decay_add
from neuralzip.kernels.primitives cimport Bucket, bucket_of, count_update, floor_div, unzigzag, value_of, zigzag

cdef enum:
    N_THRESHOLDS = 28    # N_CLASSES - 1 class boundaries
    N_TEXTURES = 27 * 8  # bias contexts: 3 gradient signs (3**3) x 8 coarse activities
    COUNT_INC = 32       # count increment per observation
    COUNT_LIMIT = 1 << 17  # halve a count row above this total
    BIAS_WINDOW_N = 256  # halve a bias accumulator after this many observations
    BIAS_DEAD_8BIT = 6   # gradients within this (8-bit scale) count as flat
    MAX_SHIFT = 16       # |bits - 8| for any supported depth (keeps every shift defined)
    FLAT_TEXTURE = 13    # the texture context whose three gradients are all flat (sign class 1)
    # an outside predictor (local-ls's least squares): its recent error counts EXTRA_ERROR/16 in
    # the blend (it is trusted more than the simple predictors), and its distance from the blend,
    # times EXTRA_SPREAD/16, adds to the activity (where the two disagree the pixel is uncertain)
    EXTRA_ERROR = 8
    EXTRA_SPREAD = 8
    # with `fine` (local-ls, and classic with the mixer) the blend and the bias are kept in 1/FINE
    # units and rounded once; where the fine prediction lies above the rounded one the residual's
    # sign is flipped, so the likelier side of the prediction gets the smaller zigzag code
    FINE = 16
    # The online mixer (classic's and local-ls's files since "blend": 3): a linear correction of the fine blend from the
    # sub-predictors' deviations from it, with one weight vector per texture context (the bias
    # context's three gradient signs) x coarse activity, trained by normalized LMS after every
    # pixel. Deviations and errors are taken on an 8-bit scale in 1/FINE units, clipped to
    # MIX_CLIP_8BIT levels; the correction to MIX_CORR_8BIT levels; weights in 1/2^MIX_SHIFT,
    # clipped to MIX_W_MAX; the step is MIX_RATE/256 with MIX_EPS levels^2 added to the norm (its
    # common factor kept to MIX_GAIN_BITS fractional bits).
    MIX_SETS = 27 * 4
    MIX_SHIFT = 20
    MIX_RATE = 3
    MIX_CLIP_8BIT = 64
    MIX_CORR_8BIT = 8
    MIX_EPS = 16
    MIX_W_MAX = 1 << 24
    MIX_GAIN_BITS = 16
    # The online least-squares mixer (files since "blend": 4) corrects the fine blend over the same
    # deviations and, after them, the residuals (the value against the mixed prediction, on the
    # NLMS inputs' scale and clip) of the pixel's causal neighbours W, N, NE, NW, WW, NN and of up
    # to two earlier channels at the pixel. Its weights are the least-squares fit of the blend's
    # error over those inputs, with forgetting OLS_LAMBDA and ridge OLS_RIDGE (in the inputs'
    # units squared), one fit per weight set (activity class / 4, times texture flat or not),
    # solved every OLS_SOLVE_EVERY pixels of the set and rounded to integer weights, so the
    # prediction itself is integer arithmetic. The correction is clipped to MIX_CLIP_8BIT levels.
    OLS_SETS_ = 16
    # "blend": 5 (files since stop 55), in chunks whose parity byte says so: the least-squares
    # mixer's weight sets of the later channels also split by the pixel's (row % 2, column % 2)
    # in the image (models/grid_parity.py). A photo whose chroma was once subsampled 2x2 and interpolated
    # (a film scan kept as subsampled YCC, a decoded 4:2:0 JPEG) has colours that are, at some
    # positions of each 2x2 cell, a fixed blend of their neighbours' and at others free: one fit
    # for all positions averages the two.
    PARITY_CLASSES = 4
    # "blend": 7 (files since stop 57), in those chunks: the later channels' mixer also reads the
    # colour difference (channel c minus channel c - 1) at PARITY_TAPS more causal neighbours, the
    # ring beyond the sub-predictors' (WWW, NWW, NNW, NNE, NNEE, NNN), each as the deviation of
    # "channel c - 1 here plus that difference" from the blend. Where colour was interpolated from
    # a coarser grid, a difference is a fixed blend of differences further away than W, N, NE, NW,
    # WW and NN, and of more of them than those six to average the rounding out.
    PARITY_TAPS = 6
    # "blend": 6 (files since stop 56), in chunks large enough to fill them (the Python face's
    # rule): each activity class has four count rows, by whether the final fine prediction lies at
    # least OFFSET_HALF/FINE of a level from the value it rounds to (then the residual's two
    # smallest codes are near equally likely) and whether the texture is flat (the pixel's three
    # gradients within the dead zone)
    ROWS_PER_CLASS = 4
    OFFSET_HALF = 5
    OLS_NEIGHBOURS = 6
    OLS_MAX_IN_ = 2 * N_BASE + 1 + OLS_NEIGHBOURS + 2 + PARITY_TAPS
    OLS_STRIDE_ = OLS_MAX_IN_ + 1  # rows of a fit's matrix (a pair more than the inputs: decay_add)
    OLS_SOLVE_EVERY = 32
    # The error maps keep each image row's last RING_COLUMNS pixels of each tile, not the whole
    # chunk: a pixel's errors are last read by the pixel two rows down (its NN), four wavefront
    # steps later, when its own row has moved on by four pixels. A 768x512 photo's maps then take
    # 0.7 MB instead of 68: they stay in the cache, and no fresh memory is touched per pixel
    # (first touch cost about 4 ms per MB on the machine this was measured on). Where the errors
    # are kept changes no value read.
    RING_COLUMNS = 8
    # The worker's job id for the first channel's prediction of the next step (the fits' jobs are
    # the channels, below it)
    AHEAD_JOB = NZ_WORKER_JOBS - 1
    # ImageChunkState's `mixer`
    NO_MIXER = 0
    NLMS_MIXER = 1
    OLS_MIXER = 2

cdef double OLS_LAMBDA = 0.9995
cdef double OLS_RIDGE = 30000.0
assert <int>OLS_STRIDE_ <= <int>LSQ_MAX_N and OLS_MAX_IN_ >= 2 * N_BASE + 1


# the parity taps (rows up, columns right): each in an earlier wavefront step than its pixel
cdef int TAP_DY[PARITY_TAPS]
cdef int TAP_DX[PARITY_TAPS]
TAP_DY[:] = [0, -1, -2, -2, -2, -3]
TAP_DX[:] = [-3, -2, -1, 1, 2, 0]


# Python-visible copies of the format constants (the Python face imports these).
BASE = N_BASE
NCLS = N_CLASSES
N_BIAS_CONTEXTS = N_TEXTURES
INC = COUNT_INC
LIMIT = COUNT_LIMIT
BIAS_WINDOW = BIAS_WINDOW_N
BIAS_DEAD = BIAS_DEAD_8BIT
MIXER_NONE, MIXER_NLMS, MIXER_OLS = NO_MIXER, NLMS_MIXER, OLS_MIXER
OLS_MAX_IN, OLS_SETS, OLS_STRIDE = OLS_MAX_IN_, OLS_SETS_, OLS_STRIDE_
PARITIES = PARITY_CLASSES
N_PARITY_TAPS = PARITY_TAPS
OFFSET_ROWS = ROWS_PER_CLASS

# activity thresholds (on an 8-bit scale) that separate the classes
cdef int64_t ACTIVITY_THRESHOLDS[N_THRESHOLDS]
ACTIVITY_THRESHOLDS[:] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33, 40, 49, 60, 73, 89, 108, 132, 161,
                          196, 240, 300, 380, 480, 600]
THRESHOLDS = np.array([ACTIVITY_THRESHOLDS[i] for i in range(N_THRESHOLDS)], dtype=np.int64)


cdef inline int64_t clamp(int64_t v, int64_t hi) noexcept nogil:
    return 0 if v < 0 else (hi if v > hi else v)


cdef inline int64_t iabs(int64_t v) noexcept nogil:
    return -v if v < 0 else v


cdef inline int64_t floor_shift(int64_t v, int64_t s) noexcept nogil:
    """floor(v / 2^s) for s >= 0, also for negative v (no implementation-defined shift)."""
    return v >> s if v >= 0 else ~((~v) >> s)


cdef inline int64_t to_8bit_scale(int64_t v, int64_t shift) noexcept nogil:
    """v / 2^shift rounded down (shift >= 0) or v * 2^-shift (shift < 0): from the image's scale to
    an 8-bit one (or back, with -shift); any sign of v."""
    return floor_shift(v, shift) if shift >= 0 else v * (<int64_t>1 << -shift)


cdef inline int64_t clip(int64_t v, int64_t bound) noexcept nogil:
    return -bound if v < -bound else (bound if v > bound else v)


cdef inline int64_t gradient_sign(int64_t d, int64_t dead) noexcept nogil:
    return 0 if d < -dead else (2 if d > dead else 1)


cdef struct Around:
    # the error maps' rows of a pixel and of its causal neighbours in its tile (meaningful only
    # where the neighbour exists: predict_rows's has* flags)
    Py_ssize_t here, w, n, ne, nw, ww, nn


cdef inline Py_ssize_t ring_row(ImageChunkState st, Py_ssize_t y, Py_ssize_t tile, Py_ssize_t tx) noexcept nogil:
    """The error maps' row of the pixel in column tx of tile column `tile`, image row y: its column
    modulo the RING_COLUMNS slots a tile row keeps (a narrower tile keeps all of its columns). A
    column outside the tile (-2..tile_w) gives some row; only pixels of the tile are ever read."""
    return (y * st.ntiles + tile) * st.ring_columns + (tx & (RING_COLUMNS - 1) if st.ring_columns == RING_COLUMNS
                                                       else tx)


cdef inline Around around(ImageChunkState st, Py_ssize_t y, Py_ssize_t x, int64_t tx0) noexcept nogil:
    """The rows of pixel (y, x), in the tile starting at column tx0, and of its neighbours."""
    cdef Around a
    cdef Py_ssize_t tile = tx0 // st.tile_w, tx = x - tx0
    a.here = ring_row(st, y, tile, tx)
    a.w = ring_row(st, y, tile, tx - 1)
    a.ww = ring_row(st, y, tile, tx - 2)
    a.n = ring_row(st, y - 1, tile, tx)
    a.ne = ring_row(st, y - 1, tile, tx + 1)
    a.nw = ring_row(st, y - 1, tile, tx - 1)
    a.nn = ring_row(st, y - 2, tile, tx)
    return a


def error_map_rows(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t tile_w):
    """The rows of a chunk's error maps (perr: 2 * nsub bytes a channel, ferr and the residual map:
    4 each)."""
    return rows * ((width + tile_w - 1) // tile_w) * min(tile_w, RING_COLUMNS)


cdef class ImageChunkState:
    def __init__(self, *, img, counts, totals, bias_sum, bias_cnt, int64_t maxv, int64_t shift,
                 int64_t nsub, int64_t tile_h, int64_t tile_w, int64_t n_extra=0, bint fine=False,
                 int64_t mixer=NO_MIXER, bint parity=False, int64_t row0=0, bint offset_rows=False,
                 bint parity_taps=False, Py_ssize_t step_max=0, bint fit_thread=False):
        """step_max: the most pixels a step has (the least-squares mixer keeps a step's pixels
        for its fits); fit_thread: learn the fits on a worker thread beside the caller's (where
        threads are available; the results are the same either way)."""
        if self.worker != NULL:
            raise ValueError("a chunk's state is made once")
        self.img = img
        self.counts, self.totals = counts, totals
        self.bias_sum, self.bias_cnt = bias_sum, bias_cnt
        self.maxv, self.shift, self.nsub, self.tile_h, self.tile_w = maxv, shift, nsub, tile_h, tile_w
        self.n_extra, self.fine, self.mixer, self.parity = n_extra, fine, mixer, parity
        self.row_parity = row0 & 1  # parities are the image's, whichever row a chunk starts at
        self.offset_rows = offset_rows
        self.parity_taps = parity and parity_taps
        h, w, nch = img.shape[0], img.shape[1], img.shape[2]
        if tile_h < 1 or tile_w < 1:
            raise ValueError("tile size out of range")
        self.ntiles = (w + tile_w - 1) // tile_w
        self.ring_columns = min(tile_w, RING_COLUMNS)
        ring = error_map_rows(h, w, tile_w)
        self.perr = np.zeros((ring, nch, nsub), np.int16)
        self.ferr = np.zeros((ring, nch), np.int32)
        if mixer not in (NO_MIXER, NLMS_MIXER, OLS_MIXER) or (mixer != NO_MIXER and not fine):
            raise ValueError("an online mixer needs the fine blend")
        if parity and mixer != OLS_MIXER:
            raise ValueError("weight sets by parity need the least-squares mixer")
        if offset_rows and not fine:
            raise ValueError("count rows by offset need the fine blend")
        ols = mixer == OLS_MIXER
        sets = OLS_SETS_ * (PARITY_CLASSES if parity else 1)
        self.mix_w = np.zeros((nch, sets if ols else (MIX_SETS if mixer else 1), OLS_MAX_IN_), np.int64)
        self.resid_map = np.zeros((ring, nch) if ols else (1, 1), np.int32)
        self.ols_R = np.zeros((nch, sets, OLS_STRIDE_ * OLS_STRIDE_) if ols else (1, 1, 1))
        self.ols_b = np.zeros((nch, sets, OLS_STRIDE_) if ols else (1, 1, 1))
        self.ols_n = np.zeros((nch, sets) if ols else (1, 1), np.int64)

        if maxv < 1 or not -MAX_SHIFT <= shift <= MAX_SHIFT:
            raise ValueError("sample depth out of range")
        if n_extra not in (0, 1) or nch < 1 or nsub != (N_BASE if nch == 1 else 2 * N_BASE) + n_extra:
            raise ValueError("sub-predictor count does not match the channels")
        if counts.shape[0] != nch or counts.shape[1] != N_CLASSES * (ROWS_PER_CLASS if offset_rows else 1) \
                or counts.shape[2] < 1:
            raise ValueError("count rows do not match the image")
        if tuple(totals.shape) != tuple(counts.shape[:2]):
            raise ValueError("count totals do not match the count rows")
        if tuple(bias_sum.shape) != (nch, N_TEXTURES) or tuple(bias_cnt.shape) != (nch, N_TEXTURES):
            raise ValueError("bias accumulators have the wrong shape")
        if ols:
            self.start_fits(sets, step_max, fit_thread)

    cdef start_fits(self, Py_ssize_t sets, Py_ssize_t step_max, bint fit_thread):
        """The fits' waiting pixels, the pointers learn_fits reads, and the worker thread."""
        cdef Py_ssize_t nch = self.img.shape[2], c
        if step_max < 1:
            raise ValueError("the least-squares mixer needs the chunk's longest step")
        job_set = np.zeros((nch, step_max), np.int64)
        job_err = np.zeros((nch, step_max))
        job_x = np.zeros((nch, step_max, OLS_STRIDE_))
        job_n = np.zeros(nch, np.int64)
        n_in = np.array([n_inputs(self, c, N_BASE if c == 0 else self.nsub - self.n_extra) for c in range(nch)],
                        np.int64)
        self.job_arrays = (job_set, job_err, job_x, job_n, n_in)
        cdef int64_t[:, ::1] set_v = job_set
        cdef double[:, ::1] err_v = job_err
        cdef double[:, :, ::1] x_v = job_x
        cdef int64_t[::1] n_v = job_n, in_v = n_in
        self.fits.R, self.fits.b = &self.ols_R[0, 0, 0], &self.ols_b[0, 0, 0]
        self.fits.n, self.fits.w = &self.ols_n[0, 0], &self.mix_w[0, 0, 0]
        self.fits.job_set, self.fits.job_err, self.fits.job_x = &set_v[0, 0], &err_v[0, 0], &x_v[0, 0, 0]
        self.fits.job_n, self.fits.n_in = &n_v[0], &in_v[0]
        self.fits.sets, self.fits.step_max = sets, step_max
        if fit_thread and nch < AHEAD_JOB:
            self.worker = nz_worker_new(worker_job, <void*>self)  # self outlives it: __dealloc__ joins it

    def __dealloc__(self):
        with nogil:
            nz_worker_free(self.worker)  # after the fits' last posted pixels, before their arrays go

    @property
    def fit_thread(self) -> bool:
        """Whether a worker thread learns the fits."""
        return self.worker != NULL


cdef class StepBuffers:
    def __init__(self, *, preds, classes, bctx, acts, subs, rows, resid, counts, totals, int64_t maxv, extra=None,
                 flip=None):
        self.preds, self.classes, self.bctx, self.acts = preds, classes, bctx, acts
        self.crows = np.zeros(preds.shape[0], np.int64)
        self.extra = np.full(preds.shape[0], -1, np.int64) if extra is None else extra
        self.fine0 = np.zeros(preds.shape[0], np.int64)
        self.flip = np.zeros(preds.shape[0], np.int64) if flip is None else flip
        self.mix_corr = np.zeros(preds.shape[0], np.int64)
        self.mix_set = np.zeros(preds.shape[0], np.int64)
        self.mix_norm = np.zeros(preds.shape[0], np.int64)
        self.mix_x = np.zeros((preds.shape[0], OLS_MAX_IN_), np.int64)
        self.subs, self.rows, self.resid = subs, rows, resid
        self.counts, self.totals, self.maxv = counts, totals, maxv
        n = preds.shape[0]
        self.n_max = n
        if any(a.shape[0] != n for a in (classes, bctx, acts, subs, rows, resid, self.extra, self.flip)):
            raise ValueError("step buffers differ in length")
        if subs.shape[1] < N_BASE or rows.shape[1] != counts.shape[2] or resid.shape[1] != counts.shape[0]:
            raise ValueError("step buffers do not match the count rows")
        if counts.shape[1] not in (N_CLASSES, N_CLASSES * ROWS_PER_CLASS) \
                or tuple(totals.shape) != tuple(counts.shape[:2]):
            raise ValueError("count totals do not match the count rows")


cdef check_step(ImageChunkState st, StepBuffers sb, Py_ssize_t c, const int64_t[::1] ys, const int64_t[::1] xs):
    """The pixels of a step lie in the image and fit the buffers, channel c exists: after
    this every index in the passes below is in range."""
    cdef Py_ssize_t i
    cdef Py_ssize_t h = st.img.shape[0], w = st.img.shape[1]
    if ys.shape[0] != xs.shape[0] or ys.shape[0] > sb.n_max:
        raise ValueError("step coordinates do not fit the buffers")
    if not 0 <= c < st.img.shape[2] or sb.subs.shape[1] < st.nsub:
        raise ValueError("channel out of range")
    if sb.rows.shape[1] != st.counts.shape[2] or sb.resid.shape[1] != st.img.shape[2] \
            or tuple(sb.counts.shape) != tuple(st.counts.shape):
        raise ValueError("step buffers do not match the chunk")
    for i in range(ys.shape[0]):
        if not (0 <= ys[i] < h and 0 <= xs[i] < w):
            raise ValueError("pixel outside the chunk")


cdef inline void base_predictions(const int64_t* at, Py_ssize_t row, Py_ssize_t col, bint hasN, bint hasW,
                                  bint hasNE, bint hasNN, bint hasWW, int64_t mid, int64_t* out) noexcept nogil:
    """The N_BASE predictors of the sample `at` points to (row/col: the distance to the sample
    one row up / one pixel left), with edge fallbacks: a neighbour is read only where the
    has* flags say it exists in the tile."""
    cdef int64_t n, w, nw, ne, mx, mn, nn, nne, ww
    if hasN and hasW:
        n, w, nw = at[-row], at[-col], at[-row - col]
    elif hasN:
        n = at[-row]
        w, nw = n, n
    elif hasW:
        w = at[-col]
        n, nw = w, w
    else:
        n, w, nw = mid, mid, mid
    ne = at[-row + col] if hasNE else n
    mx, mn = max(n, w), min(n, w)
    if nw >= mx:
        out[0] = mn
    elif nw <= mn:
        out[0] = mx
    else:
        out[0] = n + w - nw
    out[1] = w + ne - n
    out[2] = n
    out[3] = w
    out[4] = (w + ne + 1) >> 1
    out[5] = n + w - nw
    out[6] = ne
    out[7] = nw
    out[8] = (n + w + 1) >> 1
    nn = at[-2 * row] if hasNN else n
    nne = at[-2 * row + col] if (hasNN and hasNE) else ne
    ww = at[-2 * col] if hasWW else w
    out[9] = n + ne - nne
    out[10] = 2 * w - ww
    out[11] = 2 * n - nn


# The online mixers' steps (indices in range as below; every division through floor_div or
# floor_shift).
@cython.boundscheck(False)
@cython.cdivision(True)
cdef inline int64_t mix_input(ImageChunkState st, StepBuffers sb, Py_ssize_t i, Py_ssize_t j, int64_t ncore,
                              int64_t blend) noexcept nogil:
    """Input j's deviation from the fine blend, on an 8-bit scale, clipped: the sub-predictors of
    the blend, and the outside predictor after them where there is one."""
    cdef Py_ssize_t k = j if j < ncore else st.nsub - 1
    return clip(to_8bit_scale(FINE * sb.subs[i, k] - blend, st.shift), FINE * MIX_CLIP_8BIT)


cdef inline int64_t n_inputs(ImageChunkState st, Py_ssize_t c, int64_t ncore) noexcept nogil:
    """How many inputs channel c's mixer reads."""
    if st.mixer == OLS_MIXER:
        return ncore + st.n_extra + OLS_NEIGHBOURS + min(c, 2) + (PARITY_TAPS if st.parity_taps and c > 0 else 0)
    return ncore + st.n_extra


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void mix_inputs(ImageChunkState st, StepBuffers sb, Py_ssize_t i, Py_ssize_t c, int64_t ncore,
                            int64_t blend, Py_ssize_t y, Py_ssize_t x, const Around* r, bint hasN, bint hasW,
                            bint hasNE, bint hasNN, bint hasWW, int64_t ty0, int64_t tx0, int64_t tx1) noexcept nogil:
    """Pixel i's inputs into sb.mix_x[i]: the deviations (mix_input), then for the least-squares
    mixer the residuals of the neighbours (0 where the tile has none) and of the earlier channels,
    then with parity_taps (later channels) the parity taps' deviations (0 outside the tile)."""
    cdef Py_ssize_t j, n = ncore + st.n_extra, ty, tx
    cdef int64_t here
    for j in range(n):
        sb.mix_x[i, j] = mix_input(st, sb, i, j, ncore, blend)
    if st.mixer != OLS_MIXER:
        return
    sb.mix_x[i, n] = st.resid_map[r.w, c] if hasW else 0
    sb.mix_x[i, n + 1] = st.resid_map[r.n, c] if hasN else 0
    sb.mix_x[i, n + 2] = st.resid_map[r.ne, c] if hasNE else 0
    sb.mix_x[i, n + 3] = st.resid_map[r.nw, c] if hasN and hasW else 0
    sb.mix_x[i, n + 4] = st.resid_map[r.ww, c] if hasWW else 0
    sb.mix_x[i, n + 5] = st.resid_map[r.nn, c] if hasNN else 0
    for j in range(min(c, 2)):
        sb.mix_x[i, n + OLS_NEIGHBOURS + j] = st.resid_map[r.here, c - 1 - j]
    if not (st.parity_taps and c > 0):
        return
    n += OLS_NEIGHBOURS + min(c, 2)
    here = st.img[y, x, c - 1]
    for j in range(PARITY_TAPS):
        ty, tx = y + TAP_DY[j], x + TAP_DX[j]
        if ty < ty0 or tx < tx0 or tx >= tx1:
            sb.mix_x[i, n + j] = 0
            continue
        sb.mix_x[i, n + j] = clip(to_8bit_scale(FINE * (here + st.img[ty, tx, c] - st.img[ty, tx, c - 1]) - blend,
                                                st.shift), FINE * MIX_CLIP_8BIT)


@cython.boundscheck(False)
@cython.cdivision(True)
cdef inline int64_t mixed(ImageChunkState st, StepBuffers sb, Py_ssize_t i, Py_ssize_t c, int64_t n_in,
                          int64_t wset, int64_t pf, int64_t maxv) noexcept nogil:
    """The fine blend pf corrected by weight set wset of channel c's mixer over pixel i's n_in
    inputs (sb.mix_x; the set, the inputs' squared norm and the correction kept for the update)."""
    cdef int64_t j, x, dot = 0, norm = FINE * FINE * MIX_EPS, corr
    cdef int64_t bound = MIX_CLIP_8BIT if st.mixer == OLS_MIXER else MIX_CORR_8BIT
    for j in range(n_in):
        x = sb.mix_x[i, j]
        dot += st.mix_w[c, wset, j] * x
        norm += x * x
    corr = clip(floor_shift(dot, MIX_SHIFT - st.shift), to_8bit_scale(FINE * bound, -st.shift))
    sb.mix_set[i] = wset
    sb.mix_norm[i] = norm
    sb.mix_corr[i] = corr
    return clamp(pf + corr, FINE * maxv)


@cython.boundscheck(False)
@cython.cdivision(True)
cdef inline void nlms_update(ImageChunkState st, StepBuffers sb, Py_ssize_t i, Py_ssize_t c, int64_t n_in,
                             int64_t target) noexcept nogil:
    """One normalized LMS step of the weight set pixel i used, toward target (1/FINE units)."""
    cdef int64_t j, norm = sb.mix_norm[i], wset = sb.mix_set[i], err, gain, step
    err = clip(to_8bit_scale(target - sb.fine0[i], st.shift), FINE * MIX_CLIP_8BIT)
    # the step of weight j is MIX_RATE/256 * err * x[j] / norm (in 1/2^MIX_SHIFT): one division,
    # gain = that factor without x[j] in 1/2^MIX_GAIN_BITS, then each step rounded to nearest
    gain = floor_div(MIX_RATE * err * (<int64_t>1 << (MIX_SHIFT + MIX_GAIN_BITS - 8)), norm)
    for j in range(n_in):
        step = floor_shift(gain * sb.mix_x[i, j] + (<int64_t>1 << (MIX_GAIN_BITS - 1)), MIX_GAIN_BITS)
        st.mix_w[c, wset, j] = clip(st.mix_w[c, wset, j] + step, MIX_W_MAX)


@cython.boundscheck(False)
cdef void learn_fits(Fits* f, int c) noexcept nogil:
    """Channel c's pixels of its last step join their weight sets' fits, in pixel order: each adds
    the blend's error over its inputs; every OLS_SOLVE_EVERY pixels of a set the fit is solved and
    rounded into the set's integer weights (a solve that fails keeps them). Reads and writes only
    channel c's part of f, which only channel c's next prediction reads."""
    cdef Py_ssize_t i, j, k, at
    cdef int64_t n_in = f.n_in[c]
    cdef double z[OLS_STRIDE_]
    cdef double work[OLS_STRIDE_ * OLS_STRIDE_]
    cdef double w
    for i in range(f.job_n[c]):
        k = c * f.step_max + i
        at = c * f.sets + f.job_set[k]
        decay_add(f.R + at * OLS_STRIDE_ * OLS_STRIDE_, f.b + at * OLS_STRIDE_, f.job_x + k * OLS_STRIDE_, n_in,
                  OLS_STRIDE_, OLS_LAMBDA, 1.0, f.job_err[k])
        f.n[at] += 1
        if f.n[at] % OLS_SOLVE_EVERY != 0:
            continue
        if not cholesky_solve(f.R + at * OLS_STRIDE_ * OLS_STRIDE_, f.b + at * OLS_STRIDE_, z, work, n_in,
                              OLS_STRIDE_, OLS_RIDGE):
            continue
        for j in range(n_in):
            w = floor(z[j] * (1 << MIX_SHIFT) + 0.5)
            if not w >= -MIX_W_MAX:  # NaN too
                w = -MIX_W_MAX
            elif w > MIX_W_MAX:
                w = MIX_W_MAX
            f.w[at * OLS_MAX_IN_ + j] = <int64_t>w


# Indices here are in range by check_step and the shapes ImageChunkState/StepBuffers
# checked; divisions with a possibly negative numerator go through floor_div. The arrays
# are read through local views so the compiler keeps their strides in registers.
@cython.boundscheck(False)
@cython.cdivision(True)
cdef int predict_rows(ImageChunkState st, StepBuffers sb, Py_ssize_t c, const int64_t[::1] ys,
                      const int64_t[::1] xs, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Prediction, context and count row of channel c for pixels start..stop-1 of the step.
    -> 1 if a blend had no weight at all (only a corrupt stream gets there), else 0."""
    cdef const int64_t[:, :, ::1] img = st.img
    cdef const int16_t[:, :, ::1] perr = st.perr
    cdef const int32_t[:, ::1] ferr = st.ferr
    cdef const int64_t[:, :, ::1] counts = st.counts
    cdef const int64_t[:, ::1] bias_sum = st.bias_sum, bias_cnt = st.bias_cnt
    cdef int64_t[:, ::1] subs = sb.subs
    cdef double[:, ::1] rows = sb.rows
    cdef int64_t[::1] preds = sb.preds, classes = sb.classes, bctx = sb.bctx, acts = sb.acts
    cdef const int64_t[::1] extra = sb.extra
    cdef int64_t[::1] fine0 = sb.fine0, flip = sb.flip, crows = sb.crows
    cdef int64_t base[N_BASE]
    cdef int64_t refb[N_BASE]
    cdef Py_ssize_t W = img.shape[1], nbk = counts.shape[2], i, k, b
    cdef Py_ssize_t row = img.shape[1] * img.shape[2], col = img.shape[2]
    cdef int64_t tile_h = st.tile_h, tile_w = st.tile_w, maxv = st.maxv, mid = (st.maxv + 1) >> 1
    # the first channel has no cross-channel predictors; an outside predictor takes the last slot
    cdef int64_t ncore = N_BASE if c == 0 else st.nsub - st.n_extra, n_extra = st.n_extra, slot = st.nsub - 1
    cdef bint fine = st.fine
    cdef int64_t dead = to_8bit_scale(BIAS_DEAD_8BIT, -st.shift)  # on the image's own scale
    cdef int64_t y, x, ty0, tx0, tx1, fallback, xr, num, den, emin, e, wgt, p, a, t, n, cls, ctx, j, pf, wset, crow
    cdef bint hasN, hasW, hasNE, hasNN, hasWW, outside
    cdef Around r
    for i in range(start, stop):
        y, x = ys[i], xs[i]
        ty0 = (y // tile_h) * tile_h
        tx0 = (x // tile_w) * tile_w
        tx1 = min(tx0 + tile_w, W)
        hasN = y > ty0
        hasW = x > tx0
        hasNE = hasN and x + 1 < tx1
        hasNN = y - 1 > ty0
        hasWW = x - 1 > tx0
        r = around(st, y, x, tx0)
        fallback = mid if c == 0 else img[y, x, c - 1]
        base_predictions(&img[y, x, c], row, col, hasN, hasW, hasNE, hasNN, hasWW, fallback, base)
        for k in range(N_BASE):
            subs[i, k] = base[k]
        if c > 0:
            base_predictions(&img[y, x, c - 1], row, col, hasN, hasW, hasNE, hasNN, hasWW, mid, refb)
            xr = img[y, x, c - 1]
            for k in range(N_BASE):
                subs[i, N_BASE + k] = base[k] + (xr - refb[k])
        if n_extra:
            subs[i, slot] = extra[i] if extra[i] >= 0 else base[0]
        # blend: weight ~ 1 / (1 + recent error^2) of each sub-predictor
        num = 0
        den = 0
        emin = <int64_t>1 << 40
        for j in range(ncore + n_extra):
            outside = j >= ncore
            k = slot if outside else j
            e = 0
            if hasN:
                e += perr[r.n, c, k]
                if hasNE:
                    e += perr[r.ne, c, k]
                if hasW:
                    e += perr[r.nw, c, k] >> 1
            if hasW:
                e += perr[r.w, c, k]
            if hasNN:
                e += perr[r.nn, c, k] >> 1
            if hasWW:
                e += perr[r.ww, c, k] >> 1
            if c > 0 and (k < N_BASE or outside):
                e += perr[r.here, c - 1, k]
            if outside:
                e = (e * EXTRA_ERROR) >> 4
            emin = min(emin, e)
            wgt = (<int64_t>1 << 24) // (16 + e * e)  # e >= 0
            num += wgt * subs[i, k]
            den += wgt
        if den <= 0:
            return 1
        if fine:
            pf = clamp(floor_div(FINE * num + (den >> 1), den), FINE * maxv)
            p = (pf + FINE // 2) // FINE
        else:
            p = clamp(floor_div(num + (den >> 1), den), maxv)
        # activity of the neighbourhood -> context class
        a = 0
        if hasN:
            a += ferr[r.n, c]
            if hasNE:
                a += ferr[r.ne, c]
            if hasW:
                a += ferr[r.nw, c] >> 1
        if hasW:
            a += ferr[r.w, c]
        if hasNN:
            a += ferr[r.nn, c] >> 1
        if hasWW:
            a += ferr[r.ww, c] >> 1
        if c > 0:
            a += ferr[r.here, c - 1]
        a = (a + emin) >> 1
        if n_extra:
            a += to_8bit_scale(iabs(subs[i, slot] - p) * EXTRA_SPREAD >> 4, st.shift)
        if not hasN and not hasW:
            a = ACTIVITY_THRESHOLDS[N_THRESHOLDS // 2]
        acts[i] = a
        cls = 0
        while cls < N_THRESHOLDS and a >= ACTIVITY_THRESHOLDS[cls]:
            cls += 1
        # bias correction per local texture: signs of three gradients x coarse activity
        t = gradient_sign(base[6] - base[2], dead)
        t = 3 * t + gradient_sign(base[2] - base[7], dead)
        t = 3 * t + gradient_sign(base[7] - base[3], dead)
        if n_extra:  # x which side of the blend the outside predictor lies on (and a coarser activity)
            ctx = t * 8 + 2 * gradient_sign(subs[i, slot] - p, dead >> 1) + min(cls >> 4, 1)
        else:
            ctx = t * 8 + min(cls >> 2, 7)
        bctx[i] = ctx
        n = bias_cnt[c, ctx]
        if st.mixer != NO_MIXER:
            mix_inputs(st, sb, i, c, ncore, pf, y, x, &r, hasN, hasW, hasNE, hasNN, hasWW, ty0, tx0, tx1)
            if st.mixer == OLS_MIXER:
                wset = 2 * min(cls >> 2, 7) + (1 if t == FLAT_TEXTURE else 0)
                if st.parity and c > 0:  # the later channels: where an interpolated chroma shows
                    wset = wset * PARITY_CLASSES + ((y + st.row_parity) & 1) * 2 + (x & 1)
            else:
                wset = t * 4 + min(cls >> 3, 3)
            pf = mixed(st, sb, i, c, n_inputs(st, c, ncore), wset, pf, maxv)
        if fine:
            fine0[i] = pf
            if n > 0:  # the bias in 1/FINE units
                pf = clamp(pf + floor_div(2 * bias_sum[c, ctx] + n, 2 * n), FINE * maxv)
            p = (pf + FINE // 2) // FINE
            flip[i] = pf > p * FINE
        elif n > 0:
            p = clamp(p + floor_div(2 * bias_sum[c, ctx] + n, 2 * n), maxv)
        crow = cls
        if st.offset_rows:
            crow = (cls * ROWS_PER_CLASS + (2 if iabs(pf - p * FINE) >= OFFSET_HALF else 0)
                    + (1 if t == FLAT_TEXTURE else 0))
        preds[i] = p
        classes[i] = cls
        crows[i] = crow
        for b in range(nbk):
            rows[i, b] = <double>counts[c, crow, b]
    return 0


# Pixels of a pass only read the state, each is computed by one thread start to end,
# so how they are split among threads never changes a result.
@cython.cdivision(True)
def predict_pass(ImageChunkState st, StepBuffers step, Py_ssize_t c, const int64_t[::1] ys,
                 const int64_t[::1] xs, int n_threads):
    """Pass A: prediction, context and count row of channel c for every pixel (ys[i], xs[i])
    of a step, into step's row i; n_threads blocks in parallel."""
    check_step(st, step, c, ys, xs)
    cdef Py_ssize_t n = ys.shape[0], nblk = max(1, n_threads), blk
    if st.worker != NULL:  # channel c's weights as its fits left them after the last step
        with nogil:
            nz_worker_wait(st.worker, c)
    failed_a = np.zeros(nblk, np.int32)
    cdef int32_t[::1] failed = failed_a
    for blk in prange(nblk, nogil=True, schedule="static", num_threads=nblk):
        failed[blk] = predict_rows(st, step, c, ys, xs, blk * n // nblk, (blk + 1) * n // nblk)
    if failed_a.any():
        raise ValueError("corrupt stream: a prediction has no weight")


cdef void predict_next(ImageChunkState st) noexcept nogil:
    st.ahead_failed = predict_rows(st, st.ahead, 0, st.ahead_ys, st.ahead_xs, 0, st.ahead_ys.shape[0])


cdef void worker_job(void* state, int job) noexcept nogil:
    """The worker's jobs: channel `job`'s fits, or AHEAD_JOB, the first channel's prediction of the
    next step (predict_ahead). `state` is the chunk's ImageChunkState, borrowed: it joins the worker
    before it goes."""
    if job == AHEAD_JOB:
        predict_next(<ImageChunkState>state)
    else:
        learn_fits(&(<ImageChunkState>state).fits, job)


# The first channel of the next step reads only the first channel's values and statistics, which
# its update of this step has settled: the worker can predict it while the caller codes this step's
# later channels. The fits of that channel were posted before, so the worker learns them first.
def predict_ahead(ImageChunkState st, StepBuffers step, const int64_t[::1] ys, const int64_t[::1] xs):
    """Post the prediction of channel 0 for the next step's pixels (ys, xs) into `step`, after this
    step's update of channel 0 (the chunk must have a worker; predicted() waits for it)."""
    check_step(st, step, 0, ys, xs)
    if st.worker == NULL:
        raise ValueError("no worker to predict ahead")
    with nogil:
        nz_worker_wait(st.worker, AHEAD_JOB)
    st.ahead, st.ahead_ys, st.ahead_xs, st.ahead_failed = step, ys, xs, 0
    with nogil:
        nz_worker_post(st.worker, AHEAD_JOB)


def predicted(ImageChunkState st):
    """Wait for predict_ahead's prediction (as predict_pass would have made it)."""
    if st.worker == NULL:
        raise ValueError("no worker to predict ahead")
    with nogil:
        nz_worker_wait(st.worker, AHEAD_JOB)
    if st.ahead_failed:
        raise ValueError("corrupt stream: a prediction has no weight")


@cython.boundscheck(False)
def residual_symbols(ImageChunkState st, StepBuffers step, Py_ssize_t c, const int64_t[::1] ys,
                     const int64_t[::1] xs, int32_t[::1] sym, int64_t[::1] nlow, int64_t[::1] low,
                     KernelRangeEncoder encoder=None, const double[:, ::1] rows=None):
    """Encoder side: the bucket symbol and low bits of each pixel's actual residual; with an
    `encoder`, also coded into it (the symbols under `rows`, then the low bits), as the coder's
    symbols and low_bits calls would."""
    check_step(st, step, c, ys, xs)
    cdef Py_ssize_t i, n = ys.shape[0]
    if sym.shape[0] < n or nlow.shape[0] < n or low.shape[0] < n:
        raise ValueError("symbol buffers shorter than the step")
    if encoder is not None and (rows is None or rows.shape[0] < n):
        raise ValueError("fewer count rows than symbols")
    cdef const int64_t[:, :, ::1] img = st.img
    cdef const int64_t[::1] preds = step.preds, flip = step.flip
    cdef Bucket bk
    cdef bint fine = st.fine
    cdef int64_t r
    for i in range(n):
        r = img[ys[i], xs[i], c] - preds[i]
        bk = bucket_of(zigzag(-r if fine and flip[i] else r))
        sym[i] = bk.sym
        nlow[i] = bk.nlow
        low[i] = bk.low
    if encoder is not None and n:
        encoder.encode_counts(&sym[0], n, &rows[0, 0], rows.shape[1], rows.shape[1])
        encoder.encode_low_bits(&low[0], &nlow[0], n)


@cython.boundscheck(False)
def update_pass(ImageChunkState st, StepBuffers step, Py_ssize_t c, const int64_t[::1] ys,
                const int64_t[::1] xs, const int32_t[::1] sym, const int64_t[::1] low, bint write):
    """Pass B, in pixel order: write the decoded values (decoder: write) and adapt every
    statistic; step.resid[i, c] = the final residual. Symbols come from a stream and are
    checked against the count rows. The least-squares mixer's fits learn last: on the chunk's
    worker thread where it has one (this returns at once), else here."""
    check_step(st, step, c, ys, xs)
    if sym.shape[0] < ys.shape[0] or low.shape[0] < ys.shape[0]:
        raise ValueError("fewer symbols than pixels")
    cdef bint ols = st.mixer == OLS_MIXER
    if ols and ys.shape[0] > st.fits.step_max:
        raise ValueError("step longer than the chunk's longest")
    if ols and st.worker != NULL:  # channel c's pixels waiting to join the fits are read until then
        with nogil:
            nz_worker_wait(st.worker, c)
    cdef int64_t[:, :, ::1] img = st.img, counts = st.counts
    cdef int16_t[:, :, ::1] perr = st.perr
    cdef int32_t[:, ::1] ferr = st.ferr
    cdef int64_t[:, ::1] totals = st.totals, bias_sum = st.bias_sum, bias_cnt = st.bias_cnt
    cdef const int64_t[:, ::1] subs = step.subs
    cdef int64_t[:, ::1] resid = step.resid
    cdef const int64_t[::1] preds = step.preds, crows = step.crows, bctx = step.bctx
    cdef const int64_t[::1] fine0 = step.fine0, flip = step.flip
    cdef Py_ssize_t n = ys.shape[0], nbk = counts.shape[2], nrows = counts.shape[1], i, k
    cdef int64_t ncore = N_BASE if c == 0 else st.nsub - st.n_extra, n_extra = st.n_extra, slot = st.nsub - 1
    cdef bint fine = st.fine
    cdef int64_t shift = st.shift, y, x, p, v, e, crow, ctx, b, j, n_in = n_inputs(st, c, ncore)
    cdef Fits* fits = &st.fits
    cdef Py_ssize_t at, here, tile, tile_w = st.tile_w
    for i in range(n):
        y, x = ys[i], xs[i]
        tile = x // tile_w
        here = ring_row(st, y, tile, x - tile * tile_w)
        p = preds[i]
        b = sym[i]
        crow = crows[i]
        ctx = bctx[i]
        if not (0 <= b < nbk and 0 <= crow < nrows and 0 <= ctx < N_TEXTURES):
            raise ValueError("corrupt stream: symbol out of range")
        if write:
            e = unzigzag(value_of(b, low[i]))
            img[y, x, c] = p + (-e if fine and flip[i] else e)
        v = img[y, x, c]
        for j in range(ncore + n_extra):
            k = j if j < ncore else slot
            e = to_8bit_scale(iabs(v - subs[i, k]), shift)
            perr[here, c, k] = <int16_t>min(e, 32767)
        e = v - p
        resid[i, c] = e
        ferr[here, c] = <int32_t>min(to_8bit_scale(iabs(e), shift), <int64_t>1 << 30)
        bias_sum[c, ctx] += FINE * v - fine0[i] if fine else e
        bias_cnt[c, ctx] += 1
        if bias_cnt[c, ctx] >= BIAS_WINDOW_N:
            bias_sum[c, ctx] = floor_div(bias_sum[c, ctx], 2)
            bias_cnt[c, ctx] = bias_cnt[c, ctx] >> 1  # >= 0
        count_update(&counts[c, crow, 0], &totals[c, crow], nbk, b, COUNT_INC, COUNT_LIMIT)
        if st.mixer == NLMS_MIXER:
            nlms_update(st, step, i, c, n_inputs(st, c, ncore), FINE * v)
        elif ols:
            st.resid_map[here, c] = <int32_t>clip(to_8bit_scale(FINE * v - fine0[i], shift), FINE * MIX_CLIP_8BIT)
            # the pixel's place in the fits: its weight set, the blend's error before the mixer, its inputs
            at = c * fits.step_max + i
            fits.job_set[at] = step.mix_set[i]
            fits.job_err[at] = <double>to_8bit_scale(FINE * v - (fine0[i] - step.mix_corr[i]), shift)
            for j in range(n_in):
                fits.job_x[at * OLS_STRIDE_ + j] = <double>step.mix_x[i, j]
            fits.job_x[at * OLS_STRIDE_ + n_in] = 0.0  # decay_add reads a pair past an odd count
    if ols:
        fits.job_n[c] = n
        if st.worker != NULL:
            with nogil:
                nz_worker_post(st.worker, c)
        else:
            learn_fits(fits, c)
