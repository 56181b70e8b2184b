# Coding-layer kernels: bucket symbols of whole arrays, and low-bit fields cut into
# pieces the coder takes (at most PIECE_BITS bits each, least significant first).
# One implementation of each primitive (primitives.pxd); the Python face is
# neuralzip/coding/buckets.py and neuralzip/coding/stream.py.

import numpy as np

cimport cython
from libc.float cimport DBL_MAX, DBL_MIN
from libc.math cimport log2
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free
from neuralzip.kernels.primitives cimport Bucket, bucket_of, low_bits_of_bucket, value_of
from neuralzip.kernels.range_decoder cimport (RangeDecoder, range_decode_counts, range_decode_low_bits,
                                              range_decode_uniform,
                                              range_decoder_init, RANGE_PRECISION)
from neuralzip.kernels.range_encoder cimport (RangeEncoder, range_encode, range_encoder_init,
                                              range_encoder_seal)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int nz_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int nz_max_threads(void) { return 1; }
    #endif
    """
    int nz_max_threads() nogil

PIECE_BITS = 16
# 62 value bits: the most any model's alphabet reaches (32-bit audio side channels use 36)
MAX_LOW_BITS = 60


def max_threads() -> int:
    """Threads the parallel kernels use (OMP_NUM_THREADS, else every core)."""
    return nz_max_threads()


def bucket_low_bits(int64_t b) -> int:
    return low_bits_of_bucket(b)


def bucket_value(int64_t b, int64_t low) -> int:
    return value_of(b, low)


@cython.boundscheck(False)
def information(const int32_t[::1] symbols, const double[:, :] counts) -> float:
    """The information content of symbols[i] under row i of counts, summed in order: the sum of
    -log2(counts[i, symbols[i]] / the sum of row i) (the cost coder's; one call where numpy took
    eight, which cost more than coding the symbols)."""
    cdef Py_ssize_t i, k, n = symbols.shape[0], m = counts.shape[1]
    cdef double total, bits = 0.0
    if counts.shape[0] < n:
        raise ValueError("fewer count rows than symbols")
    for i in range(n):
        if not 0 <= symbols[i] < m:
            raise ValueError("symbol outside its row")
        total = 0.0
        for k in range(m):
            total = total + counts[i, k]
        bits = bits - log2(counts[i, symbols[i]] / total)
    return bits


def buckets_of(const int64_t[::1] values, int32_t[::1] sym, int64_t[::1] nlow, int64_t[::1] low):
    """sym/nlow/low[i] = the bucket of values[i] (values >= 0)."""
    cdef Py_ssize_t i
    cdef Bucket b
    for i in range(values.shape[0]):
        b = bucket_of(values[i])
        sym[i] = b.sym
        nlow[i] = b.nlow
        low[i] = b.low


def values_of(const int32_t[::1] sym, const int64_t[::1] low, int64_t[::1] out):
    cdef Py_ssize_t i
    for i in range(sym.shape[0]):
        out[i] = value_of(sym[i], low[i])


def low_bit_counts(const int32_t[::1] sym, int64_t[::1] out):
    """out[i] = how many low bits follow bucket sym[i]."""
    cdef Py_ssize_t i
    for i in range(sym.shape[0]):
        out[i] = low_bits_of_bucket(sym[i])


cdef Py_ssize_t cut_field(int64_t n, Py_ssize_t i, int32_t[::1] sizes, int64_t[::1] owner, int64_t[::1] shift,
                          Py_ssize_t k) except -1:
    """Field i of n low bits as pieces k, k+1, ... (at most 16 bits each, least significant first);
    -> the next free piece index."""
    cdef int64_t s = 0, width
    if n < 0 or n > MAX_LOW_BITS:
        raise ValueError("low-bit field width out of range")
    while s < n:
        width = min(16, n - s)
        sizes[k] = 1 << width
        owner[k] = i
        shift[k] = s
        s += width
        k += 1
    return k


def split_pieces(const int64_t[::1] values, const int64_t[::1] nbits, bint with_values):
    """Each low-bit field as pieces of at most PIECE_BITS bits, least significant first.
    -> (piece values (zeros unless with_values), piece alphabet sizes, owner index, shift)."""
    cdef Py_ssize_t i, j, k = 0, total = 0
    cdef int64_t n
    for i in range(nbits.shape[0]):
        n = nbits[i]
        if n < 0 or n > MAX_LOW_BITS:
            raise ValueError("low-bit field width out of range")
        total += (n + 15) // 16
    vals_a = np.zeros(total, np.int32)
    sizes_a = np.empty(total, np.int32)
    owner_a = np.empty(total, np.int64)
    shift_a = np.empty(total, np.int64)
    cdef int32_t[::1] vals = vals_a, sizes = sizes_a
    cdef int64_t[::1] owner = owner_a, shift = shift_a
    for i in range(nbits.shape[0]):
        k = cut_field(nbits[i], i, sizes, owner, shift, k)
    if with_values:
        for j in range(k):
            vals[j] = (values[owner[j]] >> shift[j]) & (sizes[j] - 1)
    return vals_a, sizes_a, owner_a, shift_a


def join_pieces(const int32_t[::1] pieces, const int64_t[::1] owner, const int64_t[::1] shift, Py_ssize_t n):
    out = np.empty(n, np.int64)
    join_pieces_into(pieces, owner, shift, out, n)
    return out


def bucket_pieces_into(const int32_t[::1] sym, Py_ssize_t m, int32_t[::1] sizes, int64_t[::1] owner,
                       int64_t[::1] shift) -> int:
    """The low-bit fields of buckets sym[:m] cut into coder pieces as split_pieces cuts them, written
    into buffers the caller keeps (at least 4 per bucket: 62 value bits at most); -> the piece count.
    For decoders that run one step at a time and would otherwise allocate per step."""
    cdef Py_ssize_t i, k = 0
    if m > sym.shape[0] or sizes.shape[0] < 4 * m or owner.shape[0] < 4 * m or shift.shape[0] < 4 * m:
        raise ValueError("bucket_pieces_into: buffers too small")
    for i in range(m):
        k = cut_field(low_bits_of_bucket(sym[i]), i, sizes, owner, shift, k)
    return k


def join_pieces_into(const int32_t[::1] pieces, const int64_t[::1] owner, const int64_t[::1] shift,
                     int64_t[::1] out, Py_ssize_t n):
    """out[:n] = the low-bit fields rebuilt from their pieces (join_pieces into a kept buffer)."""
    cdef Py_ssize_t k
    if n > out.shape[0] or owner.shape[0] < pieces.shape[0] or shift.shape[0] < pieces.shape[0]:
        raise ValueError("join_pieces_into: buffers too small")
    for k in range(n):
        out[k] = 0
    for k in range(pieces.shape[0]):
        if not 0 <= owner[k] < n:
            raise ValueError("join_pieces_into: a piece outside the fields")
        out[owner[k]] |= (<int64_t>pieces[k]) << shift[k]


cdef int check_count_row(const double* row, Py_ssize_t n) except -1:
    """A row the kernels' range decoder takes: non-negative integer counts summing below 2^53, so
    that every partial sum is exact and the decoder reads it as constriction does."""
    cdef Py_ssize_t s
    cdef double v, total = 0.0, limit = 9007199254740992.0  # 2^53
    for s in range(n):
        v = row[s]
        # (NaN fails the first test; the cast is taken only where it is defined)
        if not (v >= 0.0 and v < limit and v == <double>(<int64_t>v)):
            raise ValueError("range decoder: counts must be non-negative integers")
        total = total + v
    if not total < limit:
        raise ValueError("range decoder: counts must sum to less than 2^53")
    return 0


cdef class KernelRangeDecoder:
    """A range-coded payload decoded by the kernels' decoder (range_decoder.pxd), with the methods of
    coding/stream.py's RangeDecoderStream: each returns what constriction's RangeDecoder returns from
    the same words under the same integer count rows (tests/test_range_decoder.py), and kernels that
    take the object decode from the same state in between (colour_table.decode_step)."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise ValueError("payload length is not a multiple of 4")
        self.words = np.frombuffer(data, dtype=np.uint32).copy()
        cdef const uint32_t[::1] w = self.words
        range_decoder_init(&self.d, &w[0] if w.shape[0] else NULL, w.shape[0])

    cdef int decode_rows(self, const double[:, ::1] rows, int32_t* sym) except -1:
        """One symbol under each row of integer counts, into sym[:len(rows)]."""
        cdef Py_ssize_t i, nb = rows.shape[1]
        cdef int32_t got
        for i in range(rows.shape[0]):
            got = -1
            if nb:
                check_count_row(&rows[i, 0], nb)
                got = range_decode_counts(&self.d, &rows[i, 0], nb)
            if got < 0:
                raise ValueError(f"corrupt stream: symbol {i} cannot be decoded under its row")
            sym[i] = got
        return 0

    cdef int decode_low_bits(self, const int64_t* nbits, int64_t* low, Py_ssize_t n) except -1:
        """Low-bit fields of nbits[i] bits, into low[:n]."""
        cdef Py_ssize_t i
        cdef int64_t got
        for i in range(n):
            got = range_decode_low_bits(&self.d, nbits[i])
            if got < 0:
                raise ValueError(f"corrupt stream: low-bit field {i} cannot be decoded")
            low[i] = got
        return 0

    def symbols(self, const double[:, ::1] rows):
        """One symbol under each row of integer counts (as RangeDecoderStream.symbols)."""
        out = np.zeros(rows.shape[0], np.int32)
        cdef int32_t[::1] sym = out
        if rows.shape[0]:
            self.decode_rows(rows, &sym[0])
        return out

    def residuals(self, const double[:, ::1] rows, int32_t[::1] sym, int64_t[::1] nlow, int64_t[::1] low):
        """A step's residuals as classic codes them, into sym, nlow and low[:len(rows)]: a bucket
        symbol under each row, then each symbol's low bits (what `symbols`, then `low_bits` with
        the buckets' low-bit counts, decode; one call a step)."""
        cdef Py_ssize_t i, n = rows.shape[0]
        if sym.shape[0] < n or nlow.shape[0] < n or low.shape[0] < n:
            raise ValueError("residual buffers shorter than the rows")
        if n == 0:
            return
        self.decode_rows(rows, &sym[0])
        for i in range(n):
            nlow[i] = low_bits_of_bucket(sym[i])
        self.decode_low_bits(&nlow[0], &low[0], n)

    def low_bits(self, const int64_t[::1] nbits):
        """Low-bit fields of nbits[i] bits (as RangeDecoderStream.low_bits)."""
        out = np.zeros(nbits.shape[0], np.int64)
        cdef int64_t[::1] v = out
        if nbits.shape[0]:
            self.decode_low_bits(&nbits[0], &v[0], nbits.shape[0])
        return out

    def uniform(self, const int32_t[::1] sizes):
        """Values each uniform over sizes[i] values, 2..2^16 (as RangeDecoderStream.uniform)."""
        cdef Py_ssize_t i, n = sizes.shape[0]
        cdef int64_t got
        out = np.zeros(n, np.int32)
        cdef int32_t[::1] v = out
        for i in range(n):
            got = range_decode_uniform(&self.d, sizes[i])
            if got < 0:
                raise ValueError(f"corrupt stream: uniform value {i} cannot be decoded")
            v[i] = <int32_t>got
        return out


cdef double sizes_information(const int32_t* sizes, Py_ssize_t n) noexcept:
    """The sum of log2 sizes[i], in order: the information content of n uniform values."""
    cdef Py_ssize_t i
    cdef double bits = 0.0
    for i in range(n):
        bits = bits + log2(<double>sizes[i])
    return bits


def uniform_information(const int32_t[::1] sizes) -> float:
    """sizes_information of an array (the cost coder's, summed as the encoder's tally sums it)."""
    return sizes_information(&sizes[0], sizes.shape[0]) if sizes.shape[0] else 0.0


cdef inline double row_total(const double* row, Py_ssize_t n) except -1.0:
    """A count row's sum, left to right as constriction adds it; the row must be non-negative,
    finite and not all zero."""
    cdef Py_ssize_t s
    cdef double v, total = 0.0
    for s in range(n):
        v = row[s]
        if not v >= 0.0:  # (NaN fails it too)
            raise ValueError("range encoder: counts must be non-negative")
        total = total + v
    if not (total >= DBL_MIN and total <= DBL_MAX):
        raise ValueError("range encoder: a row's counts must have a finite, positive sum")
    return total


cdef class KernelRangeEncoder:
    """The kernels' range encoder (range_encoder.pxd) with the methods of coding/stream.py's
    RangeEncoderStream: it writes the words constriction's RangeEncoder writes for the same symbols,
    rows, low bits and uniform values (tests/test_range_encoder.py). With `tally` it adds up in
    `bits` the exact model's information content of what it codes, as CostCoder does. Kernels code
    through the same state with its cdef methods (colour_table.encode_step)."""

    def __cinit__(self, bint tally=False):
        range_encoder_init(&self.e)
        self.tally = tally
        self.bits = 0.0
        self.sealed = None

    def __dealloc__(self):
        free(self.e.words)

    @property
    def held_words(self) -> int:
        """Words held back while the interval wraps (what the tests read to show a carry was met)."""
        return self.e.held

    cdef int check_open(self) except -1:
        if self.sealed is not None:
            raise ValueError("range encoder: the stream is finished")
        return 0

    cdef int encode_counts(self, const int32_t* symbols, Py_ssize_t n, const double* rows, Py_ssize_t row_step,
                           Py_ssize_t m) except -1:
        """Symbol i under the m counts at rows + i * row_step (row_step 0: one row for all); the tally
        adds their information content (code_counts)."""
        return self.code_counts(symbols, n, rows, row_step, m, self.tally)

    @cython.boundscheck(False)
    cdef int code_counts(self, const int32_t* symbols, Py_ssize_t n, const double* rows, Py_ssize_t row_step,
                         Py_ssize_t m, bint tally) except -1:
        """encode_counts, quantized as range_decoder.pxd's range_decode reads the rows: C(s) =
        trunc(S(s) * f) + s with S(s) the counts before s and f = (2^24 - m) / total, C(m) = 2^24.
        With `tally`, their information content, summed in order from zero as `information` sums
        it, is added to bits."""
        cdef Py_ssize_t i, k, s
        cdef const double* row
        cdef double total = 0.0, f = 0.0, before, bits = 0.0
        cdef uint64_t left, right
        self.check_open()
        if m < 2 or m >= (1 << RANGE_PRECISION) - 1:
            raise ValueError("range encoder: rows need 2 to 2^24 - 2 counts")
        for i in range(n):
            row = rows + i * row_step
            s = symbols[i]
            if not 0 <= s < m:
                raise ValueError("symbol outside its row")
            if i == 0 or row_step:
                total = row_total(row, m)
                f = <double>((1 << RANGE_PRECISION) - m) / total
            before = 0.0
            for k in range(s):
                before = before + row[k]
            left = <uint64_t>(<uint32_t>(before * f)) + <uint64_t>s if s else 0
            right = (<uint64_t>(<uint32_t>((before + row[s]) * f)) + <uint64_t>(s + 1) if s + 1 < m
                     else <uint64_t>1 << RANGE_PRECISION)
            if range_encode(&self.e, left, right - left) < 0:
                raise MemoryError()
            if tally:
                bits = bits - log2(row[s] / total)
        if tally:
            self.bits += bits
        return 0

    cdef int encode_low_bits(self, const int64_t* values, const int64_t* nbits, Py_ssize_t n) except -1:
        """values[i]'s low nbits[i] bits (0..MAX_LOW_BITS), in pieces of at most PIECE_BITS bits,
        least significant first, each uniform over its 2^width values; the tally adds their count."""
        cdef Py_ssize_t i
        cdef int64_t shift, width, nb, total = 0
        self.check_open()
        for i in range(n):
            nb = nbits[i]
            if nb < 0 or nb > MAX_LOW_BITS:
                raise ValueError("low-bit field width out of range")
            total += nb
            shift = 0
            while shift < nb:
                width = min(16, nb - shift)
                if range_encode(&self.e, <uint64_t>((values[i] >> shift) & ((<int64_t>1 << width) - 1))
                                << (RANGE_PRECISION - width), <uint64_t>1 << (RANGE_PRECISION - width)) < 0:
                    raise MemoryError()
                shift += width
        if self.tally:
            self.bits += <double>total
        return 0

    cdef int encode_uniform(self, const int64_t* values, const int32_t* sizes, Py_ssize_t n) except -1:
        """values[i] uniform over sizes[i] values (2..2^16): floor(2^24 / size) slots each, the last
        value also the remainder; the tally adds the sum of log2 sizes[i], in order."""
        cdef Py_ssize_t i
        cdef uint64_t per_bin, v, size
        self.check_open()
        for i in range(n):
            if not 2 <= sizes[i] <= (1 << 16) or not 0 <= values[i] < sizes[i]:
                raise ValueError("uniform value outside its size, or a size outside 2..2^16")
            size, v = <uint64_t>sizes[i], <uint64_t>values[i]
            per_bin = (<uint64_t>1 << RANGE_PRECISION) // size
            if range_encode(&self.e, v * per_bin,
                            per_bin if v + 1 < size else (<uint64_t>1 << RANGE_PRECISION) - v * per_bin) < 0:
                raise MemoryError()
        if self.tally:
            self.bits += sizes_information(sizes, n)
        return 0

    def symbols(self, const int32_t[::1] symbols, const double[:, ::1] rows):
        """symbols[i] under row i of non-negative counts."""
        cdef Py_ssize_t n = symbols.shape[0]
        if n == 0:
            return
        if rows.shape[0] < n:
            raise ValueError("fewer count rows than symbols")
        self.encode_counts(&symbols[0], n, &rows[0, 0], rows.shape[1], rows.shape[1])

    def symbols_iid(self, const int32_t[::1] symbols, const double[::1] counts):
        """Every symbol under the one row of counts (no tally: the caller adds it, as numpy sums it)."""
        if symbols.shape[0]:
            self.code_counts(&symbols[0], symbols.shape[0], &counts[0], 0, counts.shape[0], False)

    def low_bits(self, const int64_t[::1] values, const int64_t[::1] nbits):
        """values[i]'s low nbits[i] bits (encode_low_bits)."""
        if values.shape[0] < nbits.shape[0]:
            raise ValueError("fewer values than low-bit fields")
        if nbits.shape[0]:
            self.encode_low_bits(&values[0], &nbits[0], nbits.shape[0])

    def uniform(self, const int64_t[::1] values, const int32_t[::1] sizes):
        """values[i] uniform over sizes[i] values (encode_uniform)."""
        if values.shape[0] < sizes.shape[0]:
            raise ValueError("fewer values than sizes")
        if sizes.shape[0]:
            self.encode_uniform(&values[0], &sizes[0], sizes.shape[0])

    def finish(self) -> bytes:
        """The stream's bytes (sealed on the first call; the encoder takes nothing after it)."""
        if self.sealed is None:
            if range_encoder_seal(&self.e) < 0:
                raise MemoryError()
            self.sealed = (<char*>self.e.words)[:self.e.nwords * 4] if self.e.nwords else b""
        return self.sealed
