"""libjpeg's YCbCr -> RGB colour conversion, and its inverse on the colours it reaches.

A JPEG decoder turns each pixel's integer (Y, Cb, Cr) into RGB with fixed-point tables (16
fractional bits, rounded, then clamped to 0..255):

    R = Y + floor((1.40200 (Cr - 128) 2^16 + 2^15) / 2^16)
    G = Y + floor((-0.34414 (Cb - 128) 2^16 - 0.71414 (Cr - 128) 2^16 + 2^15) / 2^16)
    B = Y + floor((1.77200 (Cb - 128) 2^16 + 2^15) / 2^16)

with the constants as 16-bit fixed point (91881, 22554, 46802, 116130). Only about a quarter of
the 2^24 RGB colours are reached, so a photo that is a JPEG decoded to RGB has every pixel among
them, which almost no other photo has. Coding such a photo in the (Y, Cb, Cr) it was decoded from
spends no probability on colours the decoder could not have produced (models/jpeg_colour.py).

Where no value is clamped the conversion is one to one; a clamped colour (a channel at 0 or 255)
can have many preimages, of which `preimages_slow` picks one that the decoder never needs to
know: decoding only applies the forward conversion. Integer arithmetic throughout (floor division
from primitives.pxd for the negative products).
"""

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport abs
from neuralzip.kernels.primitives cimport clip, floor_div

cdef enum:
    ONE_HALF = 1 << 15
    CR_R = 91881   # 1.40200 in 1/2^16
    CB_B = 116130  # 1.77200
    CR_G = 46802   # 0.71414
    CB_G = 22554   # 0.34414
    BINV_OFFSET = 256
    NO_CB = -1
    # per pixel from preimages_fast: found, no preimage, or a clamped colour left to preimages_slow
    FOUND = 0
    UNREACHED = 1
    CLAMPED = 2

# Python-visible copies of the statuses
STATUS_FOUND, STATUS_UNREACHED, STATUS_CLAMPED = FOUND, UNREACHED, CLAMPED

cdef int32_t R_OF_CR[256]
cdef int32_t B_OF_CB[256]
cdef int32_t G_OF_CB[256]  # the Cb part of G's offset, its rounding half included
cdef int32_t G_OF_CR[256]
cdef int32_t CB_OF_B[512]  # B - Y -> the Cb whose offset it is, or NO_CB


cdef inline int fixed16(int64_t v) noexcept nogil:
    """v / 2^16 rounded down, for either sign."""
    return <int>floor_div(v, 1 << 16)


cdef inline int g_offset(int cb, int cr) noexcept nogil:
    return fixed16(<int64_t>G_OF_CB[cb] + G_OF_CR[cr])


cdef inline int clamp255(int64_t v) noexcept nogil:
    return <int>clip(v, 0, 255)


cdef void _tables():
    cdef int i, x
    for i in range(512):
        CB_OF_B[i] = NO_CB
    for i in range(256):
        x = i - 128
        R_OF_CR[i] = fixed16(<int64_t>CR_R * x + ONE_HALF)
        B_OF_CB[i] = fixed16(<int64_t>CB_B * x + ONE_HALF)
        G_OF_CB[i] = -CB_G * x + ONE_HALF
        G_OF_CR[i] = -CR_G * x
        CB_OF_B[B_OF_CB[i] + BINV_OFFSET] = i  # B's offset grows by 1.772 a step: one Cb per value

_tables()


@cython.boundscheck(False)
@cython.wraparound(False)
def to_rgb(int64_t[:, :, ::1] img):
    """The first three channels of `img` (rows, width, >= 3), read as (Y, Cb, Cr) in 0..255,
    replaced by the RGB a JPEG decoder makes of them (in place)."""
    cdef Py_ssize_t i, j, h = img.shape[0], w = img.shape[1]
    cdef int64_t y, cb, cr
    if img.shape[2] < 3:
        raise ValueError("to_rgb: fewer than three channels")
    with nogil:
        for i in range(h):
            for j in range(w):
                y, cb, cr = img[i, j, 0], img[i, j, 1], img[i, j, 2]
                if not (0 <= y <= 255 and 0 <= cb <= 255 and 0 <= cr <= 255):
                    with gil:
                        raise ValueError("to_rgb: a value outside 0..255")
                img[i, j, 0] = clamp255(<int>y + R_OF_CR[cr])
                img[i, j, 1] = clamp255(<int>y + g_offset(<int>cb, <int>cr))
                img[i, j, 2] = clamp255(<int>y + B_OF_CB[cb])


cdef inline void estimate(int r, int g, int b, int *y, int *cb, int *cr) noexcept nogil:
    """JPEG's RGB -> YCbCr (16-bit fixed point, rounded): where to start looking."""
    y[0] = clamp255(fixed16(19595 * r + 38470 * g + 7471 * b + ONE_HALF))
    cb[0] = clamp255(128 + fixed16(-11059 * r - 21709 * g + 32768 * b + ONE_HALF))
    cr[0] = clamp255(128 + fixed16(32768 * r - 27439 * g - 5329 * b + ONE_HALF))


cdef inline bint unclamped_preimage(int r, int g, int b, int64_t *out) noexcept nogil:
    """The (Y, Cb, Cr) that converts to (r, g, b) without clamping, searched for within 3 steps of
    Cr around JPEG's forward conversion (where it always lies; it is the only one) -> found."""
    cdef int y0, cb0, cr0, k, cr, y, cb
    cdef int steps[7]
    steps[:] = [0, -1, 1, -2, 2, -3, 3]
    estimate(r, g, b, &y0, &cb0, &cr0)
    for k in range(7):
        cr = cr0 + steps[k]
        if cr < 0 or cr > 255:
            continue
        y = r - R_OF_CR[cr]
        if y < 0 or y > 255:
            continue
        cb = CB_OF_B[b - y + BINV_OFFSET]
        if cb != NO_CB and y + g_offset(cb, cr) == g:
            out[0], out[1], out[2] = y, cb, cr
            return True
    return False


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int fast_pass(const int64_t[:, :, ::1] img, int64_t[:, :, ::1] out, uint8_t[:, ::1] status) noexcept nogil:
    """preimages_fast's loop over the checked arrays."""
    cdef Py_ssize_t i, j
    cdef int r, g, b
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            r, g, b = <int>img[i, j, 0], <int>img[i, j, 1], <int>img[i, j, 2]
            if not (0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255):
                status[i, j] = UNREACHED
            elif unclamped_preimage(r, g, b, &out[i, j, 0]):
                status[i, j] = FOUND
            elif r == 0 or r == 255 or g == 0 or g == 255 or b == 0 or b == 255:
                status[i, j] = CLAMPED
            else:
                status[i, j] = UNREACHED
            if status[i, j] == UNREACHED:
                return 1
    return 0


def preimages_fast(const int64_t[:, :, ::1] img, int64_t[:, :, ::1] out, uint8_t[:, ::1] status):
    """For each pixel of `img`'s first three channels (RGB), its unclamped preimage
    (unclamped_preimage), written to `out` with status FOUND. Otherwise the status is CLAMPED where
    a channel is 0 or 255 (preimages_slow may find a clamped preimage), else UNREACHED. -> 1 when
    some pixel is UNREACHED (the search stops at it), else 0."""
    cdef int unreached
    if img.shape[2] < 3 or out.shape[0] != img.shape[0] or out.shape[1] != img.shape[1] or out.shape[2] < 3 \
            or status.shape[0] != img.shape[0] or status.shape[1] != img.shape[1]:
        raise ValueError("preimages_fast: shapes do not agree")
    with nogil:
        unreached = fast_pass(img, out, status)
    return unreached


cdef inline void narrow(int v, int offset, int *lo, int *hi) noexcept nogil:
    """Limit Y to where clamp(Y + offset) == v."""
    if v == 0:
        hi[0] = min(hi[0], -offset)
    elif v == 255:
        lo[0] = max(lo[0], 255 - offset)
    else:
        lo[0] = max(lo[0], v - offset)
        hi[0] = min(hi[0], v - offset)


cdef inline int clamped_preimage(int r, int g, int b, int cb, int cr, int y0) noexcept nogil:
    """The Y nearest y0 for which (Y, cb, cr) converts to (r, g, b), clamping included; -1: none."""
    cdef int lo = 0, hi = 255
    narrow(r, R_OF_CR[cr], &lo, &hi)
    narrow(b, B_OF_CB[cb], &lo, &hi)
    narrow(g, g_offset(cb, cr), &lo, &hi)
    if lo > hi:
        return -1
    return lo if y0 < lo else (hi if y0 > hi else y0)


cdef inline bint nearest_clamped_preimage(int r, int g, int b, int max_ring, int64_t *out) noexcept nogil:
    """A (Y, Cb, Cr) that converts to (r, g, b), clamping included: the (Cb, Cr) nearest to JPEG's
    forward conversion (the sum of the two distances, at most `max_ring`; rings of equal distance
    searched outward, Cr then Cb ascending within a ring), Y the nearest to the conversion's within
    what that pair allows -> found."""
    cdef int y0, cb0, cr0, d, dcr, cr, cb, side, y
    estimate(r, g, b, &y0, &cb0, &cr0)
    for d in range(max_ring + 1):
        for dcr in range(-d, d + 1):
            cr = cr0 + dcr
            if cr < 0 or cr > 255:
                continue
            for side in range(2 if abs(dcr) < d else 1):
                cb = cb0 - (d - abs(dcr)) if side == 0 else cb0 + (d - abs(dcr))
                if cb < 0 or cb > 255:
                    continue
                y = clamped_preimage(r, g, b, cb, cr, y0)
                if y >= 0:
                    out[0], out[1], out[2] = y, cb, cr
                    return True
    return False


@cython.boundscheck(False)
@cython.wraparound(False)
def preimages_slow(const int64_t[:, ::1] colours, int64_t[:, ::1] out, int max_ring):
    """For each RGB colour (rows of `colours`, a channel at 0 or 255), its nearest preimage within
    `max_ring` (nearest_clamped_preimage), written to `out`. -> 0, or 1 when some colour has none
    that near: the other colours are then left unsearched (the caller codes the chunk as stored),
    so a chunk costs at most its colours times 2 max_ring^2 trials."""
    cdef Py_ssize_t n = colours.shape[0], k
    cdef int r, g, b
    cdef int[::1] failed = np.zeros(1, np.intc)
    if colours.shape[1] != 3 or out.shape[0] != n or out.shape[1] != 3:
        raise ValueError("preimages_slow: shapes do not agree")
    if not 0 <= max_ring <= 510:
        raise ValueError("preimages_slow: max_ring outside 0..510")
    for k in prange(n, nogil=True, schedule="dynamic"):
        if failed[0]:
            continue
        r, g, b = <int>colours[k, 0], <int>colours[k, 1], <int>colours[k, 2]
        if not (0 <= r <= 255 and 0 <= g <= 255 and 0 <= b <= 255
                and nearest_clamped_preimage(r, g, b, max_ring, &out[k, 0])):
            failed[0] = 1
    return failed[0]
