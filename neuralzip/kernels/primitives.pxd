# Primitives every kernel shares, written once (inlined where they are cimported).
#
# Large alphabets as a bucket symbol plus raw low bits. A non-negative integer u
# (a zigzagged residual, or a sample value) becomes
#   u < EXACT:  bucket u, no low bits;
#   otherwise:  with n = bit_length(u), the bucket names n and the MANTISSA bits
#               under the leading one; the remaining n-1-MANTISSA bits are "low
#               bits", coded uniformly.
# So the modelled alphabet stays small (a few dozen buckets even for 32-bit audio)
# while small values, which dominate, are modelled exactly.
#
# Division: the kernels are compiled with Python's floor semantics for // and %
# (cdivision off), which is what the format was defined with; a function may switch
# to C division only where both operands are provably non-negative.

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t

cdef enum:
    EXACT = 32        # values below this get their own bucket (2**EXACT_BITS)
    EXACT_BITS = 5
    MANTISSA = 2

ctypedef struct Bucket:
    int64_t sym    # the modelled symbol
    int64_t nlow   # how many raw low bits follow it
    int64_t low    # their value


cdef extern from *:
    """
    /* a / b rounded toward -infinity (Python's //) for b > 0: C division truncates toward 0, so a
       negative quotient with a remainder is stepped down. Plain C, so it means the same in every
       kernel, whatever division Cython compiles that kernel's own // with. */
    static inline int64_t nz_floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (q * b > a) ? q - 1 : q;
    }
    """
    int64_t floor_div "nz_floor_div"(int64_t a, int64_t b) noexcept nogil


cdef inline int64_t zigzag(int64_t r) noexcept nogil:
    return 2 * r if r >= 0 else -2 * r - 1


cdef inline int64_t unzigzag(int64_t u) noexcept nogil:
    return u >> 1 if (u & 1) == 0 else -((u + 1) >> 1)


cdef inline int64_t bit_length(int64_t u) noexcept nogil:
    cdef int64_t n = 0
    while u > 0:
        u >>= 1
        n += 1
    return n


cdef inline Bucket bucket_of(int64_t u) noexcept nogil:
    cdef Bucket b
    cdef int64_t n
    if u < EXACT:
        b.sym = u
        b.nlow = 0
        b.low = 0
        return b
    n = bit_length(u)
    b.nlow = n - 1 - MANTISSA
    b.sym = EXACT + (n - EXACT_BITS - 1) * (1 << MANTISSA) + ((u >> b.nlow) & ((1 << MANTISSA) - 1))
    b.low = u & ((<int64_t>1 << b.nlow) - 1)
    return b


cdef inline int64_t low_bits_of_bucket(int64_t b) noexcept nogil:
    # b < 0 never comes from a coder (symbols are row indices); treated as exact.
    if b < EXACT:
        return 0
    return (b - EXACT) // (1 << MANTISSA) + EXACT_BITS - MANTISSA


cdef inline int64_t value_of(int64_t b, int64_t low) noexcept nogil:
    """The value of bucket b with its low bits. Callers bound b by their alphabet
    (at most 62 value bits), so the shift below is always defined."""
    cdef int64_t nlow, mant
    if b < EXACT:
        return b
    nlow = low_bits_of_bucket(b)
    mant = (b - EXACT) % (1 << MANTISSA)
    return (((1 << MANTISSA) | mant) << nlow) | low


cdef inline int64_t clip(int64_t v, int64_t lo, int64_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


ctypedef fused count_t:
    int32_t
    int64_t


cdef inline void count_update(count_t* row, count_t* total, Py_ssize_t n, int64_t sym, int64_t inc,
                              int64_t limit) noexcept nogil:
    """Adaptive counts over a row of n buckets: add `inc` to the observed symbol; above
    `limit` in total, halve every count (rounding up, so none reaches zero) and recount.
    The caller guarantees 0 <= sym < n."""
    cdef Py_ssize_t j
    cdef int64_t t = 0
    row[sym] += inc
    total[0] += inc
    if total[0] > limit:
        for j in range(n):
            row[j] = (row[j] + 1) >> 1
            t += row[j]
        total[0] = t
