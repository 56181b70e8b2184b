# cython: language_level=3
"""The colour table of classic and the models built on it (params "colour_table": 1; the Python
face is neuralzip/models/colour_table.py, which says what it is for).

Per chunk, for the second and third channel of an 8-bit image: how often each value came at each
combination of the earlier channels' values at the pixel (the key: the first channel's value for
the second channel, the first two channels' values for the third), the RANKS most frequent values
of each key, and the adaptive counts of the binary flags "the value is the key's most frequent
one", then "... the next one", per flag context. Integers only, updated in pixel order: every
machine keeps the same table."""

import numpy as np

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t
from neuralzip.kernels.coding cimport KernelRangeDecoder, KernelRangeEncoder, check_count_row
from neuralzip.kernels.primitives cimport bit_length, bucket_of, Bucket, low_bits_of_bucket, zigzag
from neuralzip.kernels.range_decoder cimport (range_decode, range_decode_counts, range_decode_low_bits,
                                              range_decode_uniform)

cdef enum:
    MAXV = 255
    KEYS_1 = 256  # the second channel's keys (the first channel's value)
    KEYS = 256 + 65536  # ... and the third channel's (the first two channels' values), after them
    TABLE_LIMIT = 1 << 15  # a key's values are halved when it has been seen this often
    RANKS = 2  # the candidates of a key, each with a flag: its most frequent value, then the next
    N_CLASSES = 8  # how often the key was seen: 1, 2-3, 4-7, ..., 128+
    N_SHARES = 4  # the candidate's share of the key's count, in quarters
    N_PRICES = 8  # -log2 of the model's probability of the candidate, whole bits, 7 and more together
    N_FLAG_CONTEXTS = RANKS * 2 * N_CLASSES * N_SHARES * N_PRICES  # also by rank and channel
    FLAG_START = 20  # each context's counts of miss and hit sum to this at the start of a chunk ...
    FLAG_INC = 5
    FLAG_LIMIT = 1 << 16  # a context's two counts are halved when their sum passes this
    UNDECIDED = -1  # a pixel's state before a flag hits: then the rank that hit

FLAG_CONTEXTS = N_FLAG_CONTEXTS  # for Python
KEY_COUNT = KEYS
MAX_VALUE = MAXV
CANDIDATES = RANKS


@cython.final
cdef class ColourTable:
    """One chunk's table: the counts of each key's values (uint16, halved with the key at
    TABLE_LIMIT), each key's total and its RANKS most frequent values, top[key, rank] (-1: none
    yet; the first to reach a count ranks first), and the flag counts [context, miss / hit].

    A key's counts are a row of `counts` that the key is given when it is first counted (row_of[key];
    -1: none yet), rows in the order keys come: the memory a chunk touches grows with the keys it
    meets (kodim01-06 of the Kodak set meet 8,000 to 23,000 of the 65,792: 4 to 11 MB) rather
    than spreading over the whole table's 34 MB, and touching fresh memory is much of the table's
    time."""
    cdef public object counts, row_of, totals, top, flags
    cdef uint16_t[:, ::1] counts_v
    cdef int32_t[::1] row_of_v
    cdef int64_t[::1] totals_v
    cdef int64_t[:, ::1] top_v
    cdef Py_ssize_t rows_used

    def __init__(self):
        self.counts = np.zeros((KEYS, MAXV + 1), np.uint16)  # zero pages: touched as rows are given out
        self.row_of = np.full(KEYS, -1, np.int32)
        self.totals = np.zeros(KEYS, np.int64)
        self.top = np.full((KEYS, RANKS), -1, np.int64)
        self.counts_v, self.row_of_v, self.totals_v, self.top_v = self.counts, self.row_of, self.totals, self.top
        self.rows_used = 0
        # ... in the odds the model's price class gives the candidate: p = 2^-(price + 1/2), at least
        # one count a side (so a table that knows no more than the model costs little to learn)
        self.flags = np.empty((N_FLAG_CONTEXTS, 2), np.int64)
        for k in range(N_FLAG_CONTEXTS):
            hit = min(max(round(FLAG_START * 2.0 ** -(k % N_PRICES + 0.5)), 1), FLAG_START - 1)
            self.flags[k] = (FLAG_START - hit, hit)

    def count(self, Py_ssize_t key, Py_ssize_t value):
        """How often value came at key (as the table keeps it, halvings included)."""
        if not (0 <= key < KEYS and 0 <= value <= MAXV):
            raise ValueError("colour table: no such key or value")
        return 0 if self.row_of_v[key] < 0 else int(self.counts_v[self.row_of_v[key], value])

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef inline int64_t counted(self, int64_t key, int64_t v) noexcept nogil:
        """The count of value v at a key that has been counted (its total above 0)."""
        return self.counts_v[self.row_of_v[key], v]

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void tally(self, int64_t key, int64_t v) noexcept nogil:
        """Count value v at key, keeping the key's two most frequent values (a value's count grows
        by one at a time, so only the value just counted can overtake); a key seen TABLE_LIMIT times
        has its counts halved (which keeps their order, ties staying as they ranked)."""
        cdef Py_ssize_t u, row = self.row_of_v[key]
        cdef int64_t t
        cdef uint16_t[:, ::1] counts = self.counts_v
        cdef int64_t[:, ::1] top = self.top_v
        if row < 0:  # (at most KEYS rows: one a key)
            row = self.rows_used
            self.row_of_v[key] = <int32_t>row
            self.rows_used += 1
        counts[row, v] += 1
        self.totals_v[key] += 1
        if top[key, 0] != v:
            if top[key, 1] != v and (top[key, 1] < 0 or counts[row, v] > counts[row, top[key, 1]]):
                top[key, 1] = v
            if top[key, 1] == v and (top[key, 0] < 0 or counts[row, v] > counts[row, top[key, 0]]):
                t = top[key, 0]
                top[key, 0] = v
                top[key, 1] = t
        if self.totals_v[key] >= TABLE_LIMIT:
            self.totals_v[key] = 0
            for u in range(MAXV + 1):
                counts[row, u] >>= 1
                self.totals_v[key] += counts[row, u]


cdef inline int64_t checked(int64_t v) except -1:
    if v < 0 or v > MAXV:
        raise ValueError("colour table: a value outside 0..255")
    return v


cdef inline int64_t key_at(const int64_t[:, :, ::1] img, Py_ssize_t y, Py_ssize_t x, Py_ssize_t c) noexcept nogil:
    """Channel c's key at (y, x): the earlier channels' values there (0..255, as the caller checked)."""
    return img[y, x, 0] if c == 1 else KEYS_1 + img[y, x, 0] * (MAXV + 1) + img[y, x, 1]


cdef int64_t key_of(const int64_t[:, :, ::1] img, Py_ssize_t y, Py_ssize_t x, Py_ssize_t c) except -1:
    checked(img[y, x, 0])
    if c > 1:
        checked(img[y, x, 1])
    return key_at(img, y, x, c)


cdef class TableStep:
    """The working arrays of one step of a chunk's table (at most n_max pixels, the model's rows over
    nbk buckets), kept for the chunk. Per pixel i of the step: its key's candidates m[rank, i] (-1:
    none) with their bucket symbols, low-bit counts and low bits (sym_m, nlow_m, low_m) and their
    flags' contexts (ctx); state[i] (UNDECIDED, or the rank that hit) and excluded[i] (a bit per
    rank whose flag missed). Per rank r: the pixels whose flag is coded, has[r, :k], in order, the
    flags' rows [miss, hit] and (encoder) their values, hits. Then what the model codes: the pixels
    still undecided, rest, their symbols (rest_symbols) and rows less the missed candidates (used);
    of those, plain (low bits coded as they are: plain_low, plain_nlow) and inner (low bits as an
    index among the bucket's values not excluded: index, sizes)."""
    cdef readonly int64_t[:, ::1] m, ctx, sym_m, nlow_m, low_m, has
    cdef readonly int32_t[:, ::1] hits
    cdef readonly double[:, :, ::1] flag_rows
    cdef readonly int64_t[::1] state, excluded, rest, plain, plain_low, plain_nlow, inner, index
    cdef readonly int32_t[::1] rest_symbols, sizes
    cdef readonly double[:, ::1] used
    cdef readonly Py_ssize_t n_max, nbk, shift

    def __init__(self, Py_ssize_t n_max, Py_ssize_t nbk):
        if n_max < 0 or nbk < 2:
            raise ValueError("colour table: a step needs rows of two buckets or more")
        self.n_max, self.nbk = n_max, nbk
        # the rows are scaled by 2^shift before a missed candidate's share is taken out of its bucket
        # (integers stay integers)
        self.shift = low_bits_of_bucket(nbk - 1)
        if self.shift > 30:
            raise ValueError("colour table: buckets too wide")
        self.m, self.ctx, self.sym_m, self.nlow_m, self.low_m, self.has = np.empty((6, RANKS, n_max), np.int64)
        self.hits = np.empty((RANKS, n_max), np.int32)
        self.flag_rows = np.empty((RANKS, n_max, 2), np.float64)
        self.state, self.excluded, self.rest, self.plain, self.plain_low, self.plain_nlow, self.inner, \
            self.index = np.empty((8, n_max), np.int64)
        self.rest_symbols, self.sizes = np.empty((2, n_max), np.int32)
        self.used = np.empty((n_max, nbk), np.float64)


# TableStep's numbers a pixel in 8-byte units, less `used`: six int64 arrays by rank, the int32
# hits by rank, the flags' two rows by rank, eight int64 arrays and two int32 ones
WORK_PER_PIXEL = 6 * RANKS + RANKS // 2 + 2 * RANKS + 8 + 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline double row_total(const double[:, ::1] rows, Py_ssize_t i) noexcept nogil:
    """Row i's sum in four running sums (integer counts: exact, so the order does not matter)."""
    cdef double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0
    cdef Py_ssize_t b, nb = rows.shape[1]
    for b in range(0, nb - 3, 4):
        t0 += rows[i, b]
        t1 += rows[i, b + 1]
        t2 += rows[i, b + 2]
        t3 += rows[i, b + 3]
    for b in range(nb - nb % 4, nb):
        t0 += rows[i, b]
    return (t0 + t1) + (t2 + t3)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int lookup(ColourTable table, TableStep w, const int64_t[:, :, ::1] img, Py_ssize_t c,
                const int64_t[::1] ys, const int64_t[::1] xs, const double[:, ::1] rows,
                const int64_t[::1] preds, const int64_t[::1] flip, bint fine) except -1:
    """For the n pixels (ys, xs) of a step of channel c (1 or 2), whose earlier channels img holds:
    the candidates of the pixel's key, and for each its bucket symbol, low-bit count and low bits as
    the residual from preds (sign flipped where fine and flip) and its flag's context (rank and
    channel, the key's count class, the candidate's share of it, the model's price of it from its
    count rows). Every pixel starts UNDECIDED, nothing excluded."""
    cdef Py_ssize_t n = ys.shape[0], nb = rows.shape[1], i, r
    cdef int64_t key, total, d, rb, rt, q, v
    cdef const int64_t[::1] totals = table.totals
    cdef const int64_t[:, ::1] top = table.top
    cdef Bucket bk
    if c not in (1, 2) or img.shape[2] < 3 or xs.shape[0] != n or n > w.n_max or rows.shape[0] < n \
            or nb != w.nbk or preds.shape[0] < n or flip.shape[0] < n:
        raise ValueError("colour table: mismatched step")
    for i in range(n):
        if not (0 <= ys[i] < img.shape[0] and 0 <= xs[i] < img.shape[1]):
            raise ValueError("colour table: a pixel outside the chunk")
        w.state[i] = UNDECIDED
        w.excluded[i] = 0
        key = key_of(img, ys[i], xs[i], c)
        total = totals[key]
        rt = -1
        for r in range(RANKS):
            v = top[key, r] if total > 0 else -1
            w.m[r, i] = v
            if v < 0:
                continue
            d = v - preds[i]
            bk = bucket_of(zigzag(-d if fine and flip[i] else d))
            if bk.sym >= nb:
                raise ValueError("colour table: the count rows do not cover the residuals")
            w.sym_m[r, i], w.nlow_m[r, i], w.low_m[r, i] = bk.sym, bk.nlow, bk.low
            if rt < 0:  # the row's total (integer counts: every partial sum exact in a double)
                rt = <int64_t>row_total(rows, i)
            rb = <int64_t>rows[i, bk.sym]
            # the model's price of the candidate in whole bits: p = rb / 2^nlow / rt
            q = (rt << bk.nlow) // rb if rb > 0 else 1 << 62
            w.ctx[r, i] = ((((r * 2 + c - 1) * N_CLASSES + min(bit_length(total) - 1, N_CLASSES - 1)) * N_SHARES
                            + min(N_SHARES * table.counted(key, v) // total, N_SHARES - 1)) * N_PRICES
                           + min(bit_length(q) - 1, N_PRICES - 1))
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t flags(ColourTable table, TableStep w, Py_ssize_t rank, Py_ssize_t n):
    """The pixels whose flag of this rank is coded (still UNDECIDED, with a candidate of the rank)
    into has[rank], and their flags' rows [miss, hit]. -> how many."""
    cdef Py_ssize_t i, nh = 0
    cdef const int64_t[:, ::1] counts = table.flags
    for i in range(n):
        if w.state[i] == UNDECIDED and w.m[rank, i] >= 0:
            w.has[rank, nh] = i
            w.flag_rows[rank, nh, 0] = <double>counts[w.ctx[rank, i], 0]
            w.flag_rows[rank, nh, 1] = <double>counts[w.ctx[rank, i], 1]
            nh += 1
    return nh


cdef inline void settle(TableStep w, Py_ssize_t rank, Py_ssize_t i, bint hit) noexcept:
    """Pixel i's flag of this rank: its state is the rank where it hit, and where it missed the
    candidate is excluded (a bit per rank)."""
    if hit:
        w.state[i] = rank
    else:
        w.excluded[i] |= 1 << rank


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int used_row(TableStep w, const double[:, ::1] rows, Py_ssize_t i, Py_ssize_t k) except -1:
    """used[k]: pixel i's rows with every bucket scaled by 2^shift, less each excluded candidate's
    share of its bucket, 2^(shift - its nlow) of the bucket's former mass (the low bits are uniform
    within a bucket; integers stay integers)."""
    cdef Py_ssize_t b, r, nb = w.nbk
    cdef double scale = <double>(1 << w.shift)
    for b in range(nb):
        w.used[k, b] = rows[i, b] * scale
    for r in range(RANKS):
        if w.excluded[i] & (1 << r):
            if not (0 <= w.sym_m[r, i] < nb and 0 <= w.nlow_m[r, i] <= w.shift):
                raise ValueError("colour table: mismatched split")
            w.used[k, w.sym_m[r, i]] -= rows[i, w.sym_m[r, i]] * <double>(1 << (w.shift - w.nlow_m[r, i]))
    return 0


cdef inline int64_t inner_size(int64_t sym, Py_ssize_t i, const int64_t[::1] excluded,
                               const int64_t[:, ::1] sym_m, const int64_t[:, ::1] nlow_m) noexcept:
    """0 where pixel i's low bits in bucket sym are coded as they are; else how many of the bucket's
    values are not excluded candidates (its low bits are an index among those)."""
    cdef Py_ssize_t r
    cdef int64_t out = 0
    for r in range(RANKS):
        if excluded[i] & (1 << r) and sym_m[r, i] == sym and nlow_m[r, i] > 0:
            out += 1
    # a bucket with low bits holds at least 8 values (primitives.pxd), more than RANKS
    return (<int64_t>1 << low_bits_of_bucket(sym)) - out if out else 0


cdef inline int64_t inner_index_of(Py_ssize_t i, int64_t sym, int64_t low, const int64_t[::1] excluded,
                                   const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m) noexcept:
    """Encoder: pixel i's low bits as an index among its bucket's values not excluded."""
    cdef Py_ssize_t r
    cdef int64_t k = 0
    for r in range(RANKS):
        if excluded[i] & (1 << r) and sym_m[r, i] == sym and low_m[r, i] < low:
            k += 1
    return low - k


cdef inline int64_t inner_low_of(Py_ssize_t i, int64_t sym, int64_t index, const int64_t[::1] excluded,
                                 const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m) noexcept:
    """Decoder: inner_index_of undone, the index-th of the bucket's values that are not excluded."""
    cdef Py_ssize_t r, j, ns = 0
    cdef int64_t t
    cdef int64_t skip[RANKS]
    for r in range(RANKS):
        if excluded[i] & (1 << r) and sym_m[r, i] == sym:
            skip[ns] = low_m[r, i]
            ns += 1
    for r in range(ns):  # ascending (insertion sort of at most RANKS values)
        for j in range(r + 1, ns):
            if skip[j] < skip[r]:
                t = skip[r]
                skip[r] = skip[j]
                skip[j] = t
    for r in range(ns):
        if index >= skip[r]:
            index += 1
    return index


@cython.boundscheck(False)
@cython.wraparound(False)
def encode_step(ColourTable table, TableStep w, const int64_t[:, :, ::1] img, Py_ssize_t c,
                const int64_t[::1] ys, const int64_t[::1] xs, const double[:, ::1] rows,
                const int64_t[::1] preds, const int64_t[::1] flip, bint fine, const int32_t[::1] sym,
                const int64_t[::1] nlow, const int64_t[::1] low, KernelRangeEncoder encoder=None):
    """Encoder, a step of channel c whose values are (sym, nlow, low) as residual_symbols gives them:
    everything the coder then takes, in its order, into w: each rank's flags (has, flag_rows,
    hits), the model's symbols (rest_symbols under used), the plain low bits (plain_low,
    plain_nlow) and the inner indices (index under sizes); with an `encoder`, also coded into it in
    that order (one call a step instead of one per batch). -> (flags coded per rank, len(rest),
    len(plain), len(inner))."""
    cdef Py_ssize_t n = ys.shape[0], rank, k, i, nr = 0, npl = 0, ni = 0
    cdef Py_ssize_t coded[RANKS]
    cdef int64_t size
    cdef bint hit
    if sym.shape[0] < n or nlow.shape[0] < n or low.shape[0] < n:
        raise ValueError("colour table: mismatched step")
    lookup(table, w, img, c, ys, xs, rows, preds, flip, fine)
    for rank in range(RANKS):
        coded[rank] = flags(table, w, rank, n)
        for k in range(coded[rank]):
            i = w.has[rank, k]
            hit = sym[i] == w.sym_m[rank, i] and low[i] == w.low_m[rank, i]
            w.hits[rank, k] = hit
            settle(w, rank, i, hit)
    for i in range(n):
        if w.state[i] != UNDECIDED:
            continue
        w.rest[nr] = i
        w.rest_symbols[nr] = sym[i]
        used_row(w, rows, i, nr)
        nr += 1
    for k in range(nr):
        i = w.rest[k]
        size = inner_size(sym[i], i, w.excluded, w.sym_m, w.nlow_m)
        if size:
            w.inner[ni] = i
            w.sizes[ni] = <int32_t>size
            w.index[ni] = inner_index_of(i, sym[i], low[i], w.excluded, w.sym_m, w.low_m)
            ni += 1
        else:
            w.plain[npl] = i
            w.plain_low[npl] = low[i]
            w.plain_nlow[npl] = nlow[i]
            npl += 1
    if encoder is not None:
        for rank in range(RANKS):
            if coded[rank]:
                encoder.encode_counts(&w.hits[rank, 0], coded[rank], &w.flag_rows[rank, 0, 0], 2, 2)
        if nr:
            encoder.encode_counts(&w.rest_symbols[0], nr, &w.used[0, 0], w.nbk, w.nbk)
        if npl:
            encoder.encode_low_bits(&w.plain_low[0], &w.plain_nlow[0], npl)
        if ni:
            encoder.encode_uniform(&w.index[0], &w.sizes[0], ni)
    return tuple(coded[rank] for rank in range(RANKS)), nr, npl, ni


@cython.boundscheck(False)
@cython.wraparound(False)
def decode_step(ColourTable table, TableStep w, KernelRangeDecoder decoder, const int64_t[:, :, ::1] img,
                Py_ssize_t c, const int64_t[::1] ys, const int64_t[::1] xs, const double[:, ::1] rows,
                const int64_t[::1] preds, const int64_t[::1] flip, bint fine, int32_t[::1] sym,
                int64_t[::1] nlow, int64_t[::1] low):
    """Decoder, a step of channel c: decodes from `decoder` what encode_step had coded, in the
    coder's order, into sym, nlow and low (as the encoder's)."""
    cdef Py_ssize_t n = ys.shape[0], rank, k, i, nh, nr = 0, ni = 0
    cdef int64_t got, size
    if sym.shape[0] < n or nlow.shape[0] < n or low.shape[0] < n:
        raise ValueError("colour table: mismatched step")
    lookup(table, w, img, c, ys, xs, rows, preds, flip, fine)
    for rank in range(RANKS):
        nh = flags(table, w, rank, n)
        for k in range(nh):
            got = range_decode(&decoder.d, &w.flag_rows[rank, k, 0], 2, w.flag_rows[rank, k, 0] + w.flag_rows[rank, k, 1])
            if got < 0:
                raise ValueError("corrupt stream: a colour-table flag cannot be decoded")
            settle(w, rank, w.has[rank, k], got == 1)
    for i in range(n):
        if w.state[i] != UNDECIDED:
            rank = w.state[i]
            sym[i], nlow[i], low[i] = <int32_t>w.sym_m[rank, i], w.nlow_m[rank, i], w.low_m[rank, i]
            continue
        check_count_row(&rows[i, 0], w.nbk)
        w.rest[nr] = i
        used_row(w, rows, i, 0)
        got = range_decode_counts(&decoder.d, &w.used[0, 0], w.nbk)
        if got < 0:
            raise ValueError("corrupt stream: a symbol cannot be decoded under its row")
        sym[i] = <int32_t>got
        nlow[i] = low_bits_of_bucket(got)
        nr += 1
    for k in range(nr):  # the plain low bits, then the inner indices (the encoder's order)
        i = w.rest[k]
        size = inner_size(sym[i], i, w.excluded, w.sym_m, w.nlow_m)
        if size:
            w.inner[ni] = i
            w.sizes[ni] = <int32_t>size
            ni += 1
            continue
        low[i] = range_decode_low_bits(&decoder.d, nlow[i])
        if low[i] < 0:
            raise ValueError("corrupt stream: low bits cannot be decoded")
    for k in range(ni):
        i = w.inner[k]
        got = range_decode_uniform(&decoder.d, w.sizes[k])
        if got < 0:
            raise ValueError("corrupt stream: low bits cannot be decoded")
        low[i] = inner_low_of(i, sym[i], got, w.excluded, w.sym_m, w.low_m)


def inner_index(const int64_t[::1] inner, const int32_t[::1] sym, const int64_t[::1] low, const int64_t[::1] excluded,
                const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m, int64_t[::1] out):
    """inner_index_of for each pixel of `inner` (the mapping encode_step uses, for tests)."""
    cdef Py_ssize_t k, i
    for k in range(inner.shape[0]):
        i = inner[k]
        if not (0 <= i < sym.shape[0] and i < low.shape[0] and i < excluded.shape[0] and i < sym_m.shape[1]
                and i < low_m.shape[1] and sym_m.shape[0] == low_m.shape[0] == RANKS and k < out.shape[0]):
            raise ValueError("colour table: mismatched low bits")
        out[k] = inner_index_of(i, sym[i], low[i], excluded, sym_m, low_m)


def inner_low(const int64_t[::1] inner, const int32_t[::1] sym, const int64_t[::1] index, const int64_t[::1] excluded,
              const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m, int64_t[::1] low):
    """inner_low_of for each pixel of `inner` (the mapping decode_step uses, for tests)."""
    cdef Py_ssize_t k, i
    for k in range(inner.shape[0]):
        i = inner[k]
        if not (0 <= i < sym.shape[0] and i < low.shape[0] and i < excluded.shape[0] and i < sym_m.shape[1]
                and i < low_m.shape[1] and sym_m.shape[0] == low_m.shape[0] == RANKS and k < index.shape[0]):
            raise ValueError("colour table: mismatched low bits")
        low[i] = inner_low_of(i, sym[i], index[k], excluded, sym_m, low_m)


@cython.boundscheck(False)
@cython.wraparound(False)
def learn(ColourTable table, const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys,
          const int64_t[::1] xs, const int64_t[:, ::1] m, const int64_t[:, ::1] ctx):
    """After a step of channel c is decoded, in pixel order: the counts of each flag that was coded
    (ranks in order while a candidate was there and missed), then the table's counts of each
    pixel's value at its key."""
    cdef Py_ssize_t n = ys.shape[0], i, r
    cdef int64_t v, hit, k
    cdef int64_t[:, ::1] flags = table.flags
    if c not in (1, 2) or img.shape[2] < 3 or xs.shape[0] != n or m.shape[0] != RANKS or m.shape[1] < n \
            or ctx.shape[0] != RANKS or ctx.shape[1] < n:
        raise ValueError("colour table: mismatched step")
    for i in range(n):
        if not (0 <= ys[i] < img.shape[0] and 0 <= xs[i] < img.shape[1]):
            raise ValueError("colour table: a pixel outside the chunk")
        v = checked(img[ys[i], xs[i], c])
        for r in range(RANKS):
            if m[r, i] < 0:
                break
            k = ctx[r, i]
            if not 0 <= k < N_FLAG_CONTEXTS:
                raise ValueError("colour table: a flag context out of range")
            hit = 1 if v == m[r, i] else 0
            flags[k, hit] += FLAG_INC
            if flags[k, 0] + flags[k, 1] > FLAG_LIMIT:
                flags[k, 0] = (flags[k, 0] + 1) >> 1
                flags[k, 1] = (flags[k, 1] + 1) >> 1
            if hit:
                break
        table.tally(key_of(img, ys[i], xs[i], c), v)


@cython.boundscheck(False)
@cython.wraparound(False)
def repeats(const int64_t[:, :, ::1] img):
    """The encoder's measure of whether a chunk's colours repeat: its pixels in raster order through
    a table of its own, -> (how many pixels' second channel, and how many's third, were their key's
    most frequent value so far). No flags, no model: a few passes of integer arithmetic."""
    cdef ColourTable table = ColourTable()
    cdef int64_t[:, ::1] top = table.top
    cdef Py_ssize_t y, x, c
    cdef int64_t key, v
    cdef int64_t hits[3]
    if img.shape[2] < 3:
        raise ValueError("colour table: fewer than three channels")
    for y in range(img.shape[0]):  # every value checked first, so that the count runs without the GIL
        for x in range(img.shape[1]):
            for c in range(3):
                checked(img[y, x, c])
    hits[1] = hits[2] = 0
    with nogil:  # (the encoder measures the chunk's parity meanwhile: models/classic_image.py)
        for y in range(img.shape[0]):
            for x in range(img.shape[1]):
                for c in range(1, 3):
                    key = key_at(img, y, x, c)
                    v = img[y, x, c]
                    if top[key, 0] == v:
                        hits[c] += 1
                    table.tally(key, v)
    return hits[1], hits[2]
