# A range decoder that kernels call once per symbol, for streams written by the range encoder of
# neuralzip/coding/stream.py (constriction's RangeEncoder: 32-bit words, a 64-bit state, 24-bit
# probabilities) with rows of counts under Categorical(perfect=False), or raw low bits under
# Uniform. It decodes exactly what constriction's RangeDecoder decodes from the same words and
# rows, valid or not (the test against it is tests/test_range_decoder.py); docs/FORMAT.md,
# "Range-coded symbols", spells the arithmetic out.
#
# Why a second decoder: a lockstep decoder (ols-cascade, wavenet) needs one symbol per lane and
# step, and a call into constriction from Python per step cost more than the model's own step did.

cimport cython
from libc.float cimport DBL_MAX, DBL_MIN
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

cdef enum:
    RANGE_PRECISION = 24  # bits of a quantized probability


ctypedef struct RangeDecoder:
    uint64_t lower      # the interval's lower end (wrapping)
    uint64_t range      # its width; at least 2^32 between symbols
    uint64_t point      # the 64 bits of the stream the interval is narrowed onto
    const uint32_t* words
    Py_ssize_t nwords
    Py_ssize_t pos      # next word to shift in; zeros once the stream is spent


cdef inline void range_decoder_init(RangeDecoder* d, const uint32_t* words, Py_ssize_t nwords) noexcept nogil:
    """The state before the first symbol: the whole 64-bit interval, the point from the first two
    words (most significant first; missing words read as zeros)."""
    d.lower = 0
    d.range = <uint64_t>0xFFFFFFFFFFFFFFFF
    d.words = words
    d.nwords = nwords
    d.point = (<uint64_t>words[0] << 32) if nwords > 0 else 0
    if nwords > 1:
        d.point |= words[1]
    d.pos = 2 if nwords > 1 else nwords


cdef inline void narrow(RangeDecoder* d, uint64_t scale, uint64_t left, uint64_t prob) noexcept nogil:
    """The interval after a symbol whose slots are [left, left + prob) of 2^24, and one more word
    of the stream shifted in where it has grown too narrow."""
    d.lower = d.lower + scale * left
    d.range = scale * prob
    if d.range < (<uint64_t>1 << 32):
        d.lower = d.lower << 32
        d.range = d.range << 32
        d.point = d.point << 32
        if d.pos < d.nwords:
            d.point |= d.words[d.pos]
            d.pos += 1


@cython.cdivision(True)  # scale >= 2^8: range never falls below 2^32 between symbols
cdef inline int32_t range_decode(RangeDecoder* d, const double* counts, Py_ssize_t n, double total) noexcept nogil:
    """range_decode_counts for a caller that knows the counts' sum (`total`, which must be exactly
    their sum: a model that keeps its tables' totals saves adding up the row).

    The row's quantized cumulative of symbol s is floor(c_s * f) + s, with c_s the sum of the
    counts before s and f = (2^24 - n) / total, both in doubles; the cumulative past the last
    symbol is 2^24. Every symbol keeps at least one of the 2^24 slots, whatever its count."""
    cdef double f, cum = 0.0
    cdef uint64_t scale, q, left = 0, right = 0
    cdef Py_ssize_t s
    if n < 2 or n >= (1 << RANGE_PRECISION) - 1 or not (total >= DBL_MIN and total <= DBL_MAX):
        return -1
    f = <double>((1 << RANGE_PRECISION) - n) / total
    scale = d.range >> RANGE_PRECISION
    q = (d.point - d.lower) // scale
    if q >= (<uint64_t>1 << RANGE_PRECISION):
        return -1
    s = 0
    while True:
        if s == n - 1:
            right = <uint64_t>1 << RANGE_PRECISION
            break
        cum = cum + counts[s]
        right = <uint64_t>(<uint32_t>(cum * f)) + <uint64_t>(s + 1)
        if right > q:
            break
        left = right
        s += 1
    narrow(d, scale, left, right - left)
    return <int32_t>s


cdef inline int32_t range_decode_counts(RangeDecoder* d, const double* counts, Py_ssize_t n) noexcept nogil:
    """One symbol under a row of n non-negative integer counts (as doubles, summing to less than
    2^53, so that every sum of them is exact); -1 where the stream is invalid for this row (or the
    row cannot be a distribution)."""
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0
    cdef Py_ssize_t s
    # four running sums, not one: with integer counts every partial sum is exact, so the order does
    # not matter, and four independent additions at a time are about four times faster (80 counts a
    # row for 16-bit audio)
    for s in range(0, n - 3, 4):
        t0 = t0 + counts[s]
        t1 = t1 + counts[s + 1]
        t2 = t2 + counts[s + 2]
        t3 = t3 + counts[s + 3]
    for s in range(n - n % 4, n):
        t0 = t0 + counts[s]
    return range_decode(d, counts, n, (t0 + t1) + (t2 + t3))


@cython.cdivision(True)  # scale >= 2^8 as above; size >= 2
cdef inline int64_t range_decode_uniform(RangeDecoder* d, int64_t size) noexcept nogil:
    """One symbol of a uniform model over `size` values (2..2^16): each gets floor(2^24 / size)
    slots, the last one also the remainder. -1 where the stream is invalid."""
    cdef uint64_t per_bin, scale, q, s
    if size < 2 or size > (1 << 16):
        return -1
    per_bin = (<uint64_t>1 << RANGE_PRECISION) // <uint64_t>size
    scale = d.range >> RANGE_PRECISION
    q = (d.point - d.lower) // scale
    if q >= (<uint64_t>1 << RANGE_PRECISION):
        return -1
    s = q // per_bin
    if s >= <uint64_t>(size - 1):
        s = <uint64_t>(size - 1)
        narrow(d, scale, s * per_bin, (<uint64_t>1 << RANGE_PRECISION) - s * per_bin)
    else:
        narrow(d, scale, s * per_bin, per_bin)
    return <int64_t>s


cdef inline int64_t range_decode_low_bits(RangeDecoder* d, int64_t nlow) noexcept nogil:
    """A field of nlow raw low bits (0..60, coding.pyx's MAX_LOW_BITS), as coding/stream.py's
    low_bits codes it: pieces of at most 16 bits, least significant first, each under a uniform
    model. -1 where the stream is invalid."""
    cdef int64_t v = 0, shift = 0, width, piece
    if nlow < 0 or nlow > 60:
        return -1
    while shift < nlow:
        width = min(16, nlow - shift)
        piece = range_decode_uniform(d, <int64_t>1 << width)
        if piece < 0:
            return -1
        v |= piece << shift
        shift += width
    return v
