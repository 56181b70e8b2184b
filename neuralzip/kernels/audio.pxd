# Helpers both audio families share (classic_audio.pyx, lpc_nlms_mlp.pyx), written once and
# inlined where they are cimported: the stereo transforms, the scale class of a running
# mean of |residual|, and the always-zero low bits of a block.

from libc.stdint cimport int32_t, int64_t

cdef enum:
    STEREO_LR = 0
    STEREO_LS = 1
    STEREO_SR = 2
    STEREO_MS = 3
    N_STEREO_MODES = 4


cdef inline int64_t stereo_channel(int64_t left, int64_t right, int64_t mode, int64_t c) noexcept nogil:
    """Coded channel c of a stereo pair in mode LR, LS, SR, MS (0..3)."""
    if mode == STEREO_LR:
        return left if c == 0 else right
    if mode == STEREO_LS:
        return left if c == 0 else left - right
    if mode == STEREO_SR:
        return left - right if c == 0 else right
    return (left + right) >> 1 if c == 0 else left - right


cdef inline void stereo_restore(int64_t mode, int64_t a, int64_t b, int64_t* left, int64_t* right) noexcept nogil:
    """Inverse of stereo_channel: (left, right) from the coded pair (a, b)."""
    cdef int64_t total
    if mode == STEREO_LR:
        left[0] = a
        right[0] = b
    elif mode == STEREO_LS:
        left[0] = a
        right[0] = a - b
    elif mode == STEREO_SR:
        left[0] = a + b
        right[0] = b
    else:  # MS: a = mid, b = side; the side's lowest bit is the one the mid dropped
        total = 2 * a + (b & 1)
        left[0] = (total + b) >> 1
        right[0] = (total - b) >> 1


cdef inline int64_t scale_class(int64_t q, int64_t ncls) noexcept nogil:
    """Class of a 16x running mean of |residual|: two classes per octave, at most ncls - 1."""
    cdef int64_t bl = 0, v = q, cls
    while v > 0:
        v >>= 1
        bl += 1
    if bl == 0:
        cls = 0
    else:
        cls = 2 * bl - 1 + (((q >> (bl - 2)) & 1) if bl >= 2 else 0)
    return cls if cls < ncls - 1 else ncls - 1


cdef inline int64_t fine_scale_class(int64_t q, int64_t ncls) noexcept nogil:
    """Class of a 16x running mean of |residual|, eight classes per octave: 8 x its bit length plus
    the three bits below its top bit (q << 3 >> (bit length - 1) - 8; small values leave some classes
    unused), at most ncls - 1. neuralzip.models.ols_audio.fine_class_scale inverts it."""
    cdef int64_t bl = 0, v = q, cls
    while v > 0:
        v >>= 1
        bl += 1
    if bl == 0:
        return 0
    cls = 8 * bl + ((q << 3) >> (bl - 1)) - 8
    return cls if cls < ncls - 1 else ncls - 1


cdef inline int64_t coarse_scale_class(int64_t fine, int64_t ncls) noexcept nogil:
    """scale_class of the mean whose fine_scale_class is `fine` (its bit length is fine // 8, and the
    bit below its top bit the top of fine's three), where that fine class is not capped: the same
    two classes an octave, at most ncls - 1."""
    cdef int64_t bl = fine >> 3, cls
    if bl == 0:
        return 0
    cls = 2 * bl - 1 + (((fine & 7) >> 2) if bl >= 2 else 0)
    return cls if cls < ncls - 1 else ncls - 1


cdef inline int64_t wasted_bits(const int64_t* x, Py_ssize_t n) noexcept nogil:
    """Low bits that are zero in every sample (0 for an all-zero signal)."""
    cdef int64_t acc = 0, w = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc |= x[i]
    if acc == 0:
        return 0
    while (acc >> w) & 1 == 0:
        w += 1
    return w


ctypedef fused row_count_t:
    int32_t
    int64_t


cdef inline void copy_row(double* dst, const row_count_t* src, Py_ssize_t n) noexcept nogil:
    """A count row widened to float64 for the coder. Through plain pointers: copied through
    memoryviews, every store could alias the views' fields and the loop would reload them."""
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]
