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
from neuralzip.kernels.primitives cimport bit_length, bucket_of, Bucket, low_bits_of_bucket, zigzag

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


cdef class ColourTable:
    """One chunk's table: counts[key, value] (uint16, halved with the key at TABLE_LIMIT), each key's
    total and its RANKS most frequent values, top[key, rank] (-1: none yet; the first to reach a
    count ranks first), and the flag counts [context, miss / hit]."""
    cdef public object counts, totals, top, flags

    def __init__(self):
        self.counts = np.zeros((KEYS, MAXV + 1), np.uint16)  # zero pages: only the keys met take memory
        self.totals = np.zeros(KEYS, np.int64)
        self.top = np.full((KEYS, RANKS), -1, np.int64)
        # ... in the odds the model's price class gives the candidate: p = 2^-(price + 1/2), at least
        # one count a side (so a table that knows no more than the model costs little to learn)
        self.flags = np.empty((N_FLAG_CONTEXTS, 2), np.int64)
        for k in range(N_FLAG_CONTEXTS):
            hit = min(max(round(FLAG_START * 2.0 ** -(k % N_PRICES + 0.5)), 1), FLAG_START - 1)
            self.flags[k] = (FLAG_START - hit, hit)


cdef inline int64_t checked(int64_t v) except -1:
    if v < 0 or v > MAXV:
        raise ValueError("colour table: a value outside 0..255")
    return v


cdef int64_t key_of(const int64_t[:, :, ::1] img, Py_ssize_t y, Py_ssize_t x, Py_ssize_t c) except -1:
    if c == 1:
        return checked(img[y, x, 0])
    return KEYS_1 + checked(img[y, x, 0]) * (MAXV + 1) + checked(img[y, x, 1])


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void tally(uint16_t[:, ::1] counts, int64_t[::1] totals, int64_t[:, ::1] top, int64_t key,
                int64_t v) noexcept nogil:
    """Count value v at key, keeping the key's two most frequent values (a value's count grows by
    one at a time, so only the value just counted can overtake); a key seen TABLE_LIMIT times has
    its counts halved (which keeps their order, ties staying as they ranked)."""
    cdef Py_ssize_t u
    cdef int64_t t
    counts[key, v] += 1
    totals[key] += 1
    if top[key, 0] != v:
        if top[key, 1] != v and (top[key, 1] < 0 or counts[key, v] > counts[key, top[key, 1]]):
            top[key, 1] = v
        if top[key, 1] == v and (top[key, 0] < 0 or counts[key, v] > counts[key, top[key, 0]]):
            t = top[key, 0]
            top[key, 0] = v
            top[key, 1] = t
    if totals[key] >= TABLE_LIMIT:
        totals[key] = 0
        for u in range(MAXV + 1):
            counts[key, u] >>= 1
            totals[key] += counts[key, u]


@cython.boundscheck(False)
@cython.wraparound(False)
def lookup(ColourTable table, const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys,
           const int64_t[::1] xs, const double[:, ::1] rows, const int64_t[::1] preds, const int64_t[::1] flip,
           bint fine, int64_t[:, ::1] m, int64_t[:, ::1] ctx, int64_t[:, ::1] sym_m, int64_t[:, ::1] nlow_m,
           int64_t[:, ::1] low_m, int64_t[::1] state, int64_t[::1] excluded):
    """For the n pixels (ys, xs) of a step of channel c (1 or 2), whose earlier channels img holds:
    the candidates m[rank, i] of the pixel's key (-1: none), and for each its bucket symbol,
    low-bit count and low bits as the residual from preds (sign flipped where fine and flip) and
    its flag's context (rank and channel, the key's count class, the candidate's share of it, the
    model's price of it from its count rows). Every pixel starts UNDECIDED, nothing excluded."""
    cdef Py_ssize_t n = ys.shape[0], nb = rows.shape[1], i, b, r
    cdef int64_t key, total, d, rb, rt, q, v
    cdef const int64_t[::1] totals = table.totals
    cdef const int64_t[:, ::1] top = table.top
    cdef const uint16_t[:, ::1] counts = table.counts
    cdef Bucket bk
    if c not in (1, 2) or img.shape[2] < 3 or xs.shape[0] != n or rows.shape[0] < n or preds.shape[0] < n \
            or flip.shape[0] < n or state.shape[0] < n or excluded.shape[0] < n:
        raise ValueError("colour table: mismatched step")
    if not (m.shape[0] == ctx.shape[0] == sym_m.shape[0] == nlow_m.shape[0] == low_m.shape[0] == RANKS) \
            or min(m.shape[1], ctx.shape[1], sym_m.shape[1], nlow_m.shape[1], low_m.shape[1]) < n:
        raise ValueError("colour table: mismatched step")
    for i in range(n):
        if not (0 <= ys[i] < img.shape[0] and 0 <= xs[i] < img.shape[1]):
            raise ValueError("colour table: a pixel outside the chunk")
        state[i] = UNDECIDED
        excluded[i] = 0
        key = key_of(img, ys[i], xs[i], c)
        total = totals[key]
        rt = -1
        for r in range(RANKS):
            v = top[key, r] if total > 0 else -1
            m[r, i] = v
            if v < 0:
                continue
            d = v - preds[i]
            bk = bucket_of(zigzag(-d if fine and flip[i] else d))
            if bk.sym >= nb:
                raise ValueError("colour table: the count rows do not cover the residuals")
            sym_m[r, i], nlow_m[r, i], low_m[r, i] = bk.sym, bk.nlow, bk.low
            if rt < 0:
                rt = 0
                for b in range(nb):
                    rt += <int64_t>rows[i, b]
            rb = <int64_t>rows[i, bk.sym]
            # the model's price of the candidate in whole bits: p = rb / 2^nlow / rt
            q = (rt << bk.nlow) // rb if rb > 0 else 1 << 62
            ctx[r, i] = ((((r * 2 + c - 1) * N_CLASSES + min(bit_length(total) - 1, N_CLASSES - 1)) * N_SHARES
                          + min(N_SHARES * counts[key, v] // total, N_SHARES - 1)) * N_PRICES
                         + min(bit_length(q) - 1, N_PRICES - 1))


@cython.boundscheck(False)
@cython.wraparound(False)
def flags(ColourTable table, Py_ssize_t rank, Py_ssize_t n, const int64_t[:, ::1] m, const int64_t[:, ::1] ctx,
          const int64_t[::1] state, int64_t[::1] has, double[:, ::1] flag_rows):
    """The pixels whose flag of this rank is coded (still UNDECIDED, with a candidate of the rank):
    has[k] the k-th one, flag_rows[k] its flag's row [miss, hit]. -> how many."""
    cdef Py_ssize_t i, nh = 0
    cdef const int64_t[:, ::1] counts = table.flags
    if not 0 <= rank < RANKS or m.shape[1] < n or ctx.shape[1] < n or state.shape[0] < n or has.shape[0] < n \
            or flag_rows.shape[0] < n or flag_rows.shape[1] != 2:
        raise ValueError("colour table: mismatched flags")
    for i in range(n):
        if state[i] == UNDECIDED and m[rank, i] >= 0:
            has[nh] = i
            flag_rows[nh, 0] = <double>counts[ctx[rank, i], 0]
            flag_rows[nh, 1] = <double>counts[ctx[rank, i], 1]
            nh += 1
    return nh


@cython.boundscheck(False)
@cython.wraparound(False)
def settle(Py_ssize_t rank, const int64_t[::1] has, const int32_t[::1] hits, int64_t[::1] state,
           int64_t[::1] excluded):
    """After the flags of this rank (hits[k]: 1 where pixel has[k] is the candidate): the pixel's
    state is the rank where it hit, and where it missed the candidate is excluded (a bit per rank)."""
    cdef Py_ssize_t k, i
    if hits.shape[0] > has.shape[0] or not 0 <= rank < RANKS:
        raise ValueError("colour table: mismatched flags")
    for k in range(hits.shape[0]):
        i = has[k]
        if not (0 <= i < state.shape[0] and i < excluded.shape[0]):
            raise ValueError("colour table: mismatched flags")
        if hits[k]:
            state[i] = rank
        else:
            excluded[i] |= 1 << rank


@cython.boundscheck(False)
@cython.wraparound(False)
def split(const double[:, ::1] rows, Py_ssize_t n, const int64_t[::1] state, const int64_t[::1] excluded,
          const int64_t[:, ::1] sym_m, const int64_t[:, ::1] nlow_m, Py_ssize_t shift, int64_t[::1] rest,
          double[:, ::1] used):
    """The pixels the model codes (still UNDECIDED), rest, in order, and used[k] the rows of rest[k]:
    the model's rows, every bucket scaled by 2^shift, less each excluded candidate's share of its
    bucket, 2^(shift - its nlow) of the bucket's former mass (the low bits are uniform within a
    bucket; integers stay integers). -> how many pixels the model codes."""
    cdef Py_ssize_t nb = rows.shape[1], i, b, r, nr = 0
    cdef double scale = <double>(1 << shift)
    if rows.shape[0] < n or state.shape[0] < n or excluded.shape[0] < n or rest.shape[0] < n \
            or used.shape[0] < n or used.shape[1] != nb or not 0 <= shift <= 30 or sym_m.shape[1] < n:
        raise ValueError("colour table: mismatched split")
    for i in range(n):
        if state[i] != UNDECIDED:
            continue
        rest[nr] = i
        for b in range(nb):
            used[nr, b] = rows[i, b] * scale
        for r in range(RANKS):
            if excluded[i] & (1 << r):
                if not (0 <= sym_m[r, i] < nb and 0 <= nlow_m[r, i] <= shift):
                    raise ValueError("colour table: mismatched split")
                used[nr, sym_m[r, i]] -= rows[i, sym_m[r, i]] * <double>(1 << (shift - nlow_m[r, i]))
        nr += 1
    return nr


cdef inline int64_t skipped_below(Py_ssize_t i, int64_t sym, int64_t low, const int64_t[::1] excluded,
                                  const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m) noexcept nogil:
    """How many of pixel i's excluded candidates lie in bucket sym below low bits `low`."""
    cdef Py_ssize_t r
    cdef int64_t k = 0
    for r in range(RANKS):
        if excluded[i] & (1 << r) and sym_m[r, i] == sym and low_m[r, i] < low:
            k += 1
    return k


@cython.boundscheck(False)
@cython.wraparound(False)
def low_sets(const int32_t[::1] sym, const int64_t[::1] rest, const int64_t[::1] excluded,
             const int64_t[:, ::1] sym_m, const int64_t[:, ::1] nlow_m, int64_t[::1] plain, int64_t[::1] inner,
             int64_t[::1] sizes):
    """Of the pixels the model coded (rest), with their symbols: plain, those whose low bits are
    coded as they are, and inner, those in the bucket of an excluded candidate (with low bits),
    whose low bits are coded among the bucket's other values (sizes: how many). -> (len(plain),
    len(inner))."""
    cdef Py_ssize_t k, i, r, npl = 0, ni = 0
    cdef int64_t out
    if plain.shape[0] < rest.shape[0] or inner.shape[0] < rest.shape[0] or sizes.shape[0] < rest.shape[0]:
        raise ValueError("colour table: mismatched low bits")
    for k in range(rest.shape[0]):
        i = rest[k]
        if not (0 <= i < sym.shape[0] and i < excluded.shape[0] and i < sym_m.shape[1]):
            raise ValueError("colour table: mismatched low bits")
        out = 0
        for r in range(RANKS):
            if excluded[i] & (1 << r) and sym_m[r, i] == sym[i] and nlow_m[r, i] > 0:
                out += 1
        if out:
            inner[ni] = i
            # a bucket with low bits holds at least 8 values (primitives.pxd), more than RANKS
            sizes[ni] = (1 << low_bits_of_bucket(sym[i])) - out
            ni += 1
        else:
            plain[npl] = i
            npl += 1
    return npl, ni


@cython.boundscheck(False)
@cython.wraparound(False)
def inner_index(const int64_t[::1] inner, const int32_t[::1] sym, const int64_t[::1] low, const int64_t[::1] excluded,
                const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m, int64_t[::1] out):
    """Encoder: each inner pixel's low bits as an index among its bucket's values not excluded."""
    cdef Py_ssize_t k, i
    for k in range(inner.shape[0]):
        i = inner[k]
        out[k] = low[i] - skipped_below(i, sym[i], low[i], excluded, sym_m, low_m)


@cython.boundscheck(False)
@cython.wraparound(False)
def inner_low(const int64_t[::1] inner, const int32_t[::1] sym, const int64_t[::1] index, const int64_t[::1] excluded,
              const int64_t[:, ::1] sym_m, const int64_t[:, ::1] low_m, int64_t[::1] low):
    """Decoder: the low bits of each inner pixel from its index (inner_index undone): the index-th
    of the bucket's values that are not excluded."""
    cdef Py_ssize_t k, i, r, j, ns
    cdef int64_t v, t
    cdef int64_t skip[RANKS]
    if index.shape[0] < inner.shape[0]:
        raise ValueError("colour table: mismatched low bits")
    for k in range(inner.shape[0]):
        i = inner[k]
        if not (0 <= i < sym.shape[0] and i < low.shape[0] and i < excluded.shape[0] and i < sym_m.shape[1]):
            raise ValueError("colour table: mismatched low bits")
        ns = 0
        for r in range(RANKS):
            if excluded[i] & (1 << r) and sym_m[r, i] == sym[i]:
                skip[ns] = low_m[r, i]
                ns += 1
        for r in range(ns):  # ascending (insertion sort of at most RANKS values)
            for j in range(r + 1, ns):
                if skip[j] < skip[r]:
                    t = skip[r]
                    skip[r] = skip[j]
                    skip[j] = t
        v = index[k]
        for r in range(ns):
            if v >= skip[r]:
                v += 1
        low[i] = v


@cython.boundscheck(False)
@cython.wraparound(False)
def learn(ColourTable table, const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys,
          const int64_t[::1] xs, const int64_t[:, ::1] m, const int64_t[:, ::1] ctx):
    """After a step of channel c is decoded, in pixel order: the counts of each flag that was coded
    (ranks in order while a candidate was there and missed), then the table's counts of each
    pixel's value at its key."""
    cdef Py_ssize_t n = ys.shape[0], i, r
    cdef int64_t v, hit, k
    cdef int64_t[:, ::1] flags = table.flags, top = table.top
    cdef uint16_t[:, ::1] counts = table.counts
    cdef int64_t[::1] totals = table.totals
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
        tally(counts, totals, top, key_of(img, ys[i], xs[i], c), v)


@cython.boundscheck(False)
@cython.wraparound(False)
def repeats(const int64_t[:, :, ::1] img):
    """The encoder's measure of whether a chunk's colours repeat: its pixels in raster order through
    a table of its own, -> (how many pixels' second channel, and how many's third, were their key's
    most frequent value so far). No flags, no model: a few passes of integer arithmetic."""
    cdef ColourTable table = ColourTable()
    cdef int64_t[:, ::1] top = table.top
    cdef uint16_t[:, ::1] counts = table.counts
    cdef int64_t[::1] totals = table.totals
    cdef Py_ssize_t y, x, c
    cdef int64_t key, v
    cdef int64_t hits[3]
    if img.shape[2] < 3:
        raise ValueError("colour table: fewer than three channels")
    hits[1] = hits[2] = 0
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            for c in range(1, 3):
                key = key_of(img, y, x, c)
                v = checked(img[y, x, c])
                if top[key, 0] == v:
                    hits[c] += 1
                tally(counts, totals, top, key, v)
    return hits[1], hits[2]
