# cython: boundscheck=False
# The integer primitives of the per-pixel networks (gated_pixelcnn.pyx, row_lstm.pyx), written
# once and inlined where they are cimported: the int16 inner product, the per-channel rescale,
# and sigmoid and tanh read from the exact logistic CDF table every model ships
# (neuralzip/exact/logistic.py: 2 * Z_MAX + 1 entries, 1/64 of a unit apart, 24-bit values).
#
# Pre-activations come in 1/4096 of a logistic unit (PRE_ONE), finer than the table's 1/64
# steps; the table is read between its steps by linear interpolation, so the gates' error is
# that of the interpolation (below 1e-5), not of a 1/128 rounding of their argument.

from libc.stdint cimport int16_t, int32_t, int64_t
from neuralzip.kernels.primitives cimport clip

cdef enum:
    ONE_BITS = 12
    ONE = 1 << ONE_BITS  # an activation (or gate) of 1.0
    PRE_ONE = 4096  # a pre-activation of 1.0 (a logistic unit)
    FINE_BITS = 6
    FINE = 1 << FINE_BITS  # PRE_ONE / the table's steps per unit
    CDF_BITS = 24
    Z_MAX = 24 * 64  # the table spans -24..24 in 1/64 steps


cdef inline int64_t rescale(int64_t acc, int64_t b, int64_t m, int64_t s) noexcept nogil:
    """round((acc + b) * m / 2**s): a layer's integer sum into its output units."""
    return ((acc + b) * m + ((<int64_t>1) << (s - 1))) >> s


cdef inline int64_t times(int64_t a, int64_t b) noexcept nogil:
    """a * b / ONE for a, b in 1/ONE, rounded (half up): products of gates and activations."""
    return (a * b + (ONE >> 1)) >> ONE_BITS


cdef inline int32_t dot(const int16_t* w, const int16_t* x, Py_ssize_t n) noexcept nogil:
    """Sum of w[k] * x[k], which the weights' checks at load keep within an int32."""
    cdef int32_t acc = 0
    cdef Py_ssize_t k
    for k in range(n):
        acc += <int32_t>w[k] * <int32_t>x[k]
    return acc


cdef inline int64_t sigmoid(int64_t pre, const int64_t* cdf) noexcept nogil:
    """sigmoid(pre / PRE_ONE) in 1/ONE, the table interpolated between its steps."""
    cdef int64_t f = clip(pre, -Z_MAX * FINE, Z_MAX * FINE - 1) + Z_MAX * FINE
    cdef int64_t i = f >> FINE_BITS, frac = f & (FINE - 1)
    return (cdf[i] + (((cdf[i + 1] - cdf[i]) * frac) >> FINE_BITS)) >> (CDF_BITS - ONE_BITS)


cdef inline int64_t tanh(int64_t pre, const int64_t* cdf) noexcept nogil:
    """tanh(pre / PRE_ONE) in 1/ONE: 2 sigmoid(2 pre) - 1."""
    return 2 * sigmoid(2 * pre, cdf) - ONE
