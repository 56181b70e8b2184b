# The classic image model's state and step buffers, shared with the learned image
# models that build on it (context_mlp.pyx reads a step's predictions and counts).

from libc.stdint cimport int16_t, int32_t, int64_t
from neuralzip.kernels.job_worker cimport nz_worker

cdef enum:
    N_BASE = 12          # predictors per channel (later channels have 2 * N_BASE sub-predictors)
    N_CLASSES = 29       # activity classes


cdef class StepBuffers


cdef struct Fits:
    # The least-squares mixer's fits as plain pointers into ImageChunkState's arrays (what
    # learn_fits, on the worker thread or the caller's, reads and writes): per channel and weight
    # set the decayed lower triangle R, right-hand side b, pixels added n and integer weights w;
    # and per channel the pixels of its last step waiting to join the fits (job_n of them: each
    # one's weight set, the blend's error, the inputs as doubles, a row of OLS_STRIDE_).
    double* R
    double* b
    int64_t* n
    int64_t* w
    int64_t* job_set
    double* job_err
    double* job_x
    int64_t* job_n
    int64_t* n_in      # per channel: the inputs its mixer reads
    Py_ssize_t sets, step_max


cdef class ImageChunkState:
    """Everything one chunk's passes read and adapt: the image, per-pixel error maps,
    count rows per (channel, class), bias accumulators, and the chunk's constants."""
    cdef int64_t[:, :, ::1] img
    # The error maps keep each tile row's last ring_columns pixels (classic_image.pyx's ring_row):
    # [ring row, channel, ...]
    cdef int16_t[:, :, ::1] perr      # each sub-predictor's error, on an 8-bit scale
    cdef int32_t[:, ::1] ferr         # the final prediction's error, on an 8-bit scale
    cdef int64_t[:, :, ::1] counts    # [channel, count row, bucket]: a row per class (or four, offset_rows)
    cdef int64_t[:, ::1] totals       # [channel, count row]
    cdef int64_t[:, ::1] bias_sum, bias_cnt  # [channel, texture context]
    cdef readonly int64_t maxv, shift, nsub, tile_h, tile_w
    cdef readonly Py_ssize_t ntiles, ring_columns  # tiles side by side; the error maps' slots a tile row
    cdef readonly int64_t n_extra     # 1: an outside predictor (StepBuffers.extra) joins the blend
    cdef readonly bint fine           # the blend and bias in 1/FINE units, the residual's sign flipped
    cdef readonly int64_t mixer       # (with fine) the blend corrected by an online mixer (NO_MIXER, NLMS_MIXER, OLS_MIXER)
    cdef readonly bint parity         # (with OLS_MIXER) its weight sets split by the pixel's row and column parity
    cdef readonly int64_t row_parity  # the parity of the chunk's first row in the image
    cdef readonly bint parity_taps    # (with parity) the later channels' mixer reads the parity taps too
    cdef readonly bint offset_rows    # (with fine) count rows per class split by fine offset and flat texture
    cdef int64_t[:, :, ::1] mix_w     # its weights [channel, weight set, input], 1/2^MIX_SHIFT
    # the least-squares mixer's residual map ([ring row, channel]; 1/FINE units, 8-bit scale) and its
    # fits: the decayed lower triangle and right-hand side [channel, weight set, ...], pixels added
    cdef int32_t[:, ::1] resid_map
    cdef double[:, :, ::1] ols_R, ols_b
    cdef int64_t[:, ::1] ols_n
    cdef object job_arrays            # owns the memory fits.job_* point into
    cdef Fits fits
    cdef nz_worker* worker            # learns the fits beside the caller (NULL: the caller does)
    # what the worker predicts channel 0 of the next step into (predict_ahead), and whether it failed
    cdef StepBuffers ahead
    cdef const int64_t[::1] ahead_ys, ahead_xs
    cdef int ahead_failed
    cdef start_fits(self, Py_ssize_t sets, Py_ssize_t step_max, bint fit_thread)


cdef class StepBuffers:
    """What the predict pass writes for the pixels of one step and channel (row i =
    pixel i of the step), and the count statistics a learned model mixes with."""
    cdef int64_t[::1] preds, classes, bctx, acts
    cdef readonly int64_t[::1] crows  # the count row (of counts[c]) each pixel is coded with
    cdef int64_t[::1] extra           # the outside predictor's value per pixel (< 0: none there)
    cdef int64_t[::1] fine0, flip     # with fine: the prediction in 1/FINE units before the bias, sign flip
    # with the mixer: its correction (1/FINE units), weight set, inputs and their squared norm
    cdef int64_t[::1] mix_corr, mix_set, mix_norm
    cdef int64_t[:, ::1] mix_x
    cdef int64_t[:, ::1] subs, resid
    cdef double[:, ::1] rows
    cdef int64_t[:, :, ::1] counts
    cdef int64_t[:, ::1] totals
    cdef readonly int64_t maxv
    cdef readonly Py_ssize_t n_max
