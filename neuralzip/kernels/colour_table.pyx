# cython: language_level=3
"""The colour table of classic and the models built on it (params "colour_table": 1; the Python
face is neuralzip/models/colour_table.py, which says what it is for).

Per chunk, for the second and third channel of an 8-bit image: how often each value came at each
combination of the earlier channels' values at the pixel (the key: the first channel's value for
the second channel, the first two channels' values for the third), the most frequent value of
each key, and the adaptive counts of a binary flag "the value is the key's most frequent one" per
flag context. Integers only, updated in pixel order: every machine keeps the same table."""

import numpy as np

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t
from neuralzip.kernels.primitives cimport bit_length, bucket_of, Bucket, zigzag

cdef enum:
    MAXV = 255
    KEYS_1 = 256  # the second channel's keys (the first channel's value)
    KEYS = 256 + 65536  # ... and the third channel's (the first two channels' values), after them
    TABLE_LIMIT = 1 << 15  # a key's values are halved when it has been seen this often
    N_CLASSES = 8  # how often the key was seen: 1, 2-3, 4-7, ..., 128+
    N_SHARES = 4  # the most frequent value's share of the key's count, in quarters
    N_PRICES = 8  # -log2 of the model's probability of that value, whole bits, 7 and more together
    N_FLAG_CONTEXTS = 2 * N_CLASSES * N_SHARES * N_PRICES  # also by the channel (second or third)
    FLAG_START = 20  # each context's counts of miss and hit sum to this at the start of a chunk ...
    FLAG_INC = 5
    FLAG_LIMIT = 1 << 16  # a context's two counts are halved when their sum passes this
FLAG_CONTEXTS = N_FLAG_CONTEXTS  # for Python
KEY_COUNT = KEYS
MAX_VALUE = MAXV


cdef class ColourTable:
    """One chunk's table: counts[key, value] (uint16, halved with the key at TABLE_LIMIT), each key's
    total and most frequent value (the first to reach the highest count), and the flag counts
    [context, miss / hit]."""
    cdef public object counts, totals, best, best_n, flags

    def __init__(self):
        self.counts = np.zeros((KEYS, MAXV + 1), np.uint16)  # zero pages: only the keys met take memory
        self.totals = np.zeros(KEYS, np.int64)
        self.best = np.zeros(KEYS, np.int64)
        self.best_n = np.zeros(KEYS, np.int64)
        # ... in the odds the model's price class gives m: p = 2^-(price + 1/2), at least one count a side
        # (so a table that knows no more than the model costs little to learn)
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
cdef void tally(uint16_t[:, ::1] counts, int64_t[::1] totals, int64_t[::1] best, int64_t[::1] best_n, int64_t key,
                int64_t v) noexcept nogil:
    """Count value v at key: the key's most frequent value is the first to reach the highest count,
    and a key seen TABLE_LIMIT times has its counts halved."""
    cdef Py_ssize_t u
    counts[key, v] += 1
    totals[key] += 1
    if counts[key, v] > best_n[key]:
        best[key] = v
        best_n[key] = counts[key, v]
    if totals[key] >= TABLE_LIMIT:
        totals[key] = 0
        for u in range(MAXV + 1):
            counts[key, u] >>= 1
            totals[key] += counts[key, u]
        best_n[key] = counts[key, best[key]]


@cython.boundscheck(False)
@cython.wraparound(False)
def lookup(ColourTable table, const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys,
           const int64_t[::1] xs, const double[:, ::1] rows, const int64_t[::1] preds, const int64_t[::1] flip,
           bint fine, int64_t[::1] m, int64_t[::1] ctx, int64_t[::1] sym_m, int64_t[::1] nlow_m,
           int64_t[::1] low_m, int64_t[::1] has, double[:, ::1] flag_rows):
    """For the n pixels (ys, xs) of a step of channel c (1 or 2), whose earlier channels img holds:
    m, the most frequent value of the pixel's key (-1: the key was never seen, no flag); where there
    is one, its bucket symbol, low-bit count and low bits as the residual from preds (sign flipped
    where fine and flip), the flag's context (the key's count class, m's share of it, the model's
    price of m from its count rows) and, for the k-th such pixel, has[k] its index and
    flag_rows[k] its flag's row [miss, hit]. -> how many pixels have a flag."""
    cdef Py_ssize_t n = ys.shape[0], nb = rows.shape[1], i, b, nh = 0
    cdef int64_t key, total, r, rb, rt, q
    cdef const int64_t[:, ::1] flags = table.flags
    cdef const int64_t[::1] totals = table.totals, best = table.best, best_n = table.best_n
    cdef Bucket bk
    if c not in (1, 2) or img.shape[2] < 3 or xs.shape[0] != n or rows.shape[0] < n or preds.shape[0] < n \
            or flip.shape[0] < n or m.shape[0] < n or ctx.shape[0] < n or sym_m.shape[0] < n \
            or nlow_m.shape[0] < n or low_m.shape[0] < n or has.shape[0] < n or flag_rows.shape[0] < n \
            or flag_rows.shape[1] != 2:
        raise ValueError("colour table: mismatched step")
    for i in range(n):
        if not (0 <= ys[i] < img.shape[0] and 0 <= xs[i] < img.shape[1]):
            raise ValueError("colour table: a pixel outside the chunk")
        key = key_of(img, ys[i], xs[i], c)
        total = totals[key]
        if total == 0:
            m[i] = -1
            continue
        m[i] = best[key]
        r = m[i] - preds[i]
        bk = bucket_of(zigzag(-r if fine and flip[i] else r))
        if bk.sym >= nb:
            raise ValueError("colour table: the count rows do not cover the residuals")
        sym_m[i], nlow_m[i], low_m[i] = bk.sym, bk.nlow, bk.low
        rt = 0
        for b in range(nb):
            rt += <int64_t>rows[i, b]
        rb = <int64_t>rows[i, bk.sym]
        # the model's price of m in whole bits: p(m) = rb / 2^nlow / rt
        q = (rt << bk.nlow) // rb if rb > 0 else 1 << 62
        ctx[i] = (((c - 1) * N_CLASSES + min(bit_length(total) - 1, N_CLASSES - 1)) * N_SHARES
                  + min(N_SHARES * best_n[key] // total, N_SHARES - 1)) * N_PRICES + min(bit_length(q) - 1, N_PRICES - 1)
        has[nh] = i
        flag_rows[nh, 0] = <double>flags[ctx[i], 0]
        flag_rows[nh, 1] = <double>flags[ctx[i], 1]
        nh += 1
    return nh


@cython.boundscheck(False)
@cython.wraparound(False)
def split(const double[:, ::1] rows, Py_ssize_t n, const int64_t[::1] has, const int32_t[::1] hits,
          const int64_t[::1] sym_m, const int64_t[::1] nlow_m, Py_ssize_t shift, uint8_t[::1] hit,
          int64_t[::1] rest, double[:, ::1] used):
    """After the flags of the step's pixels has[:len(hits)] (hits: 1 where the value is m): hit[i]
    per pixel, rest the pixels the model codes (not hits), in order, and used[k] the rows of rest[k]:
    the model's rows, every bucket scaled by 2^shift, and where the pixel has a flag (a miss) bucket
    sym_m less m's share, 2^(shift - nlow_m) of its former mass (the low bits are uniform within a
    bucket; integers stay integers). -> how many pixels the model codes."""
    cdef Py_ssize_t nh = hits.shape[0], nb = rows.shape[1], i, k, b, nr = 0
    cdef double scale = <double>(1 << shift)
    if rows.shape[0] < n or hit.shape[0] < n or rest.shape[0] < n or used.shape[0] < n or used.shape[1] != nb \
            or has.shape[0] < nh or not 0 <= shift <= 30:
        raise ValueError("colour table: mismatched split")
    for i in range(n):
        hit[i] = 0
    for k in range(nh):
        i = has[k]
        if not (0 <= i < n and 0 <= sym_m[i] < nb and 0 <= nlow_m[i] <= shift):
            raise ValueError("colour table: mismatched split")
        hit[i] = 2 if hits[k] == 0 else 1  # 2: a miss
    for i in range(n):
        if hit[i] == 1:
            continue
        rest[nr] = i
        for b in range(nb):
            used[nr, b] = rows[i, b] * scale
        if hit[i] == 2:
            used[nr, sym_m[i]] -= rows[i, sym_m[i]] * <double>(1 << (shift - nlow_m[i]))
        nr += 1
    return nr


@cython.boundscheck(False)
@cython.wraparound(False)
def low_sets(const int32_t[::1] sym, Py_ssize_t n, const uint8_t[::1] hit, const int64_t[::1] sym_m,
             const int64_t[::1] nlow_m, int64_t[::1] plain, int64_t[::1] inner):
    """Of the step's pixels the model coded (hit[i] != 1), with their symbols: plain, those whose
    low bits are coded as they are, and inner, the misses in m's own bucket with low bits, whose
    low bits are coded among the bucket's other 2^nlow - 1 values. -> (len(plain), len(inner))."""
    cdef Py_ssize_t i, npl = 0, ni = 0
    if sym.shape[0] < n or hit.shape[0] < n or plain.shape[0] < n or inner.shape[0] < n:
        raise ValueError("colour table: mismatched low bits")
    for i in range(n):
        if hit[i] == 1:
            continue
        if hit[i] == 2 and sym[i] == sym_m[i] and nlow_m[i] > 0:
            inner[ni] = i
            ni += 1
        else:
            plain[npl] = i
            npl += 1
    return npl, ni


@cython.boundscheck(False)
@cython.wraparound(False)
def learn(ColourTable table, const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys,
          const int64_t[::1] xs, const int64_t[::1] m, const int64_t[::1] ctx):
    """After a step of channel c is decoded, in pixel order: each flag's counts (where there was
    one), then the table's counts of each pixel's value at its key."""
    cdef Py_ssize_t n = ys.shape[0], i
    cdef int64_t v, hit, k
    cdef int64_t[:, ::1] flags = table.flags
    cdef uint16_t[:, ::1] counts = table.counts
    cdef int64_t[::1] totals = table.totals, best = table.best, best_n = table.best_n
    if c not in (1, 2) or img.shape[2] < 3 or xs.shape[0] != n or m.shape[0] < n or ctx.shape[0] < n:
        raise ValueError("colour table: mismatched step")
    for i in range(n):
        if not (0 <= ys[i] < img.shape[0] and 0 <= xs[i] < img.shape[1]):
            raise ValueError("colour table: a pixel outside the chunk")
        v = checked(img[ys[i], xs[i], c])
        if m[i] >= 0:
            k = ctx[i]
            if not 0 <= k < N_FLAG_CONTEXTS:
                raise ValueError("colour table: a flag context out of range")
            hit = 1 if v == m[i] else 0
            flags[k, hit] += FLAG_INC
            if flags[k, 0] + flags[k, 1] > FLAG_LIMIT:
                flags[k, 0] = (flags[k, 0] + 1) >> 1
                flags[k, 1] = (flags[k, 1] + 1) >> 1
        tally(counts, totals, best, best_n, key_of(img, ys[i], xs[i], c), v)


@cython.boundscheck(False)
@cython.wraparound(False)
def repeats(const int64_t[:, :, ::1] img):
    """The encoder's measure of whether a chunk's colours repeat: its pixels in raster order through
    a table of its own, -> (how many pixels' second channel, and how many's third, were their key's
    most frequent value so far). No flags, no model: a few passes of integer arithmetic."""
    cdef ColourTable table = ColourTable()
    cdef uint16_t[:, ::1] counts = table.counts
    cdef int64_t[::1] totals = table.totals, best = table.best, best_n = table.best_n
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
                if totals[key] > 0 and best[key] == v:
                    hits[c] += 1
                tally(counts, totals, best, best_n, key, v)
    return hits[1], hits[2]
