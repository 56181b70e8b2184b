# Kernels of the vae's neighbour counts (neuralzip/models/neighbour_counts.py explains the
# model): a prediction of each subpixel from its decoded neighbours, a small context, the
# counts' pmf folded onto the vae's residual buckets and mixed with the vae's row, and the
# counts' updates (and their undoing, for the encoder, which codes in the other order).
# Integers only; each row is computed on its own.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t
from neuralzip.kernels.primitives cimport (bit_length, bucket_of, clip, floor_div, low_bits_of_bucket, unzigzag,
                                          value_of, zigzag)

cdef enum:
    PATCH = 8
    PIXELS = PATCH * PATCH
    MAXV = 255
    SPAN = 2 * MAXV + 1      # residuals -MAXV..MAXV
    N_RINGS = 3
    RING_SIZE = 8            # at most this many neighbours in a ring
    RING_CLASSES = N_RINGS + 1   # + none decoded
    SPREAD_CLASSES = 8
    PREV_CLASSES = 6          # 4 before weights v6
    CONTEXTS = 3 * RING_CLASSES * SPREAD_CLASSES * PREV_CLASSES
    SHARE_BITS = 4           # the vae's share of the mixture, in 1/16
    MAX_TAPS = 16            # linear taps per position in the patch (weights v5 on)
    TAP_REACH = 8            # how far a tap may lie, in rows and columns
    COEF_BITS = 12           # the taps' coefficients in 1/2**COEF_BITS
    COEF_LIMIT = 1 << 20     # |coefficient| (and the constant, in 1/2**COEF_BITS of a value)
    MIX_BITS = 20            # each part's row is scaled to 2**MIX_BITS per unit of share
    SPLIT_BITS = 12          # v7 on: the taps' table's part of the counts' mixture, in 1/2**SPLIT_BITS
    PROB_BITS = 24           # the mixer's gradient reads each table's probability in 1/2**PROB_BITS

LAYOUT = {"PATCH": PATCH, "MAXV": MAXV, "CONTEXTS": CONTEXTS, "PREV_CLASSES": PREV_CLASSES, "SHARE_BITS": SHARE_BITS, "MAX_TAPS": MAX_TAPS,
          "TAP_REACH": TAP_REACH, "COEF_BITS": COEF_BITS, "COEF_LIMIT": COEF_LIMIT, "SPLIT_BITS": SPLIT_BITS,
          "PROB_BITS": PROB_BITS}

# The rings, nearest first: the 4 at distance 1, the 8 at distance 2 (with the diagonals), the 4 at
# distance 4 (dy, dx); a subpixel reads the first ring with a decoded neighbour.
cdef int64_t RING_LEN[N_RINGS]
cdef int64_t RING_DY[N_RINGS][RING_SIZE]
cdef int64_t RING_DX[N_RINGS][RING_SIZE]
RING_LEN[:] = [4, 8, 4]
RING_DY[0][:] = [0, 0, -1, 1, 0, 0, 0, 0]
RING_DX[0][:] = [-1, 1, 0, 0, 0, 0, 0, 0]
RING_DY[1][:] = [0, 0, -2, 2, -2, -2, 2, 2]
RING_DX[1][:] = [-2, 2, 0, 0, -2, 2, -2, 2]
RING_DY[2][:] = [0, 0, -4, 4, 0, 0, 0, 0]
RING_DX[2][:] = [-4, 4, 0, 0, 0, 0, 0, 0]

# The residuals -MAXV..MAXV of each bucket of the vae's rows: zigzag interleaves the signs, so a
# bucket's residuals are one run of non-negative ones and one of negative ones (empty: lo > hi).
cdef enum:
    MAX_BUCKETS = 64
cdef int64_t RUN_LO[MAX_BUCKETS][2]
cdef int64_t RUN_HI[MAX_BUCKETS][2]


def _residual_runs():
    cdef Py_ssize_t b, side
    cdef int64_t r
    for b in range(MAX_BUCKETS):
        for side in range(2):
            RUN_LO[b][side] = MAXV + 1
            RUN_HI[b][side] = -MAXV - 1
    for r in range(-MAXV, MAXV + 1):
        b = bucket_of(zigzag(r)).sym
        side = 0 if r >= 0 else 1
        RUN_LO[b][side] = min(RUN_LO[b][side], r)
        RUN_HI[b][side] = max(RUN_HI[b][side], r)
    for b in range(MAX_BUCKETS):  # each run holds only its bucket's residuals
        for side in range(2):
            for r in range(RUN_LO[b][side], RUN_HI[b][side] + 1):
                if bucket_of(zigzag(r)).sym != b:
                    raise ImportError("neighbour_counts: a bucket's residuals are not two runs")


_residual_runs()


# The mixture's two parts, shared by the buckets' rows and the low bits' rows so that together they
# code the one value-by-value mixture: a count of value v weighs scale * count + 1 of the counts'
# total over 0..MAXV, a vae row entry its share of the row's total.

cdef inline int64_t counts_total(const int32_t* row, int64_t scale) noexcept nogil:
    """The counts' total mass over the values 0..MAXV (row[v]: the count of value v)."""
    cdef int64_t v, tc = 0
    for v in range(MAXV + 1):
        tc += scale * row[v] + 1
    return tc


cdef inline int64_t vae_total(const double[:, ::1] vae_rows, Py_ssize_t k) noexcept nogil:
    """Row k's total, + 1: the vae's rows (pixel_rows: integer masses + 1, far below 2**40) never
    sum to 0, and the 1 keeps the division defined whatever a caller passes."""
    cdef Py_ssize_t b
    cdef int64_t tv = 1
    for b in range(vae_rows.shape[1]):
        tv += <int64_t>vae_rows[k, b]
    return tv


cdef inline int64_t vae_part(int64_t share, int64_t mass, int64_t tv) noexcept nogil:
    return (share * mass << MIX_BITS) // tv


cdef inline int64_t counts_part(int64_t share, int64_t mass, int64_t tc) noexcept nogil:
    return ((((1 << SHARE_BITS) - share) * mass) << MIX_BITS) // tc


cdef inline int64_t split_part(int64_t share, int64_t split, int64_t mass, int64_t tc) noexcept nogil:
    """One table's part of the counts' share when two are mixed (v7 on): `split` of 2**SPLIT_BITS."""
    return ((((1 << SHARE_BITS) - share) * split * mass) << (MIX_BITS - SPLIT_BITS)) // tc


cdef inline int64_t decoded_at(const int64_t[:, ::1] grid, const int64_t[::1] position,
                              const int64_t[:, ::1] shapes, const int64_t[::1] phase_of, int64_t u, int64_t p,
                              int64_t phase, int64_t dy, int64_t dx) noexcept nogil:
    """Where the neighbour (dy, dx) of subpixel p of unit u is, as unit * PIXELS + pixel, if the
    decoder surely has it at this step (`phase`): inside the image and not padding, in an earlier
    wave (patch row + column) or in the unit itself at an earlier phase; else -1."""
    cdef int64_t y = grid[u, 3] * PATCH + p // PATCH + dy
    cdef int64_t xx = grid[u, 4] * PATCH + p % PATCH + dx
    cdef int64_t r2, c2, u2, p2
    if y < 0 or xx < 0:
        return -1
    r2 = y // PATCH
    c2 = xx // PATCH
    if r2 >= grid[u, 1] or c2 >= grid[u, 2]:
        return -1
    u2 = position[grid[u, 0] + r2 * grid[u, 2] + c2]
    if y % PATCH >= shapes[u2, 0] or xx % PATCH >= shapes[u2, 1]:
        return -1  # the padding of a cut patch: never coded
    p2 = (y % PATCH) * PATCH + xx % PATCH
    if not (r2 + c2 < grid[u, 3] + grid[u, 4] or (u2 == u and phase_of[p2] < phase)):
        return -1
    return u2 * PIXELS + p2


@cython.boundscheck(False)
@cython.wraparound(False)
def predict(const uint8_t[:, :, ::1] x, const int64_t[:, ::1] grid, const int64_t[::1] position,
            const int64_t[:, ::1] shapes, const int64_t[::1] phase_of, Py_ssize_t c, Py_ssize_t phase,
            const int64_t[::1] units, const int64_t[::1] pix, int64_t[::1] ctx, int64_t[::1] pred,
            const int64_t[:, :, ::1] taps, const int64_t[::1] ntaps, const int64_t[:, :, ::1] coefs,
            const uint8_t[:, :, ::1] errors=None, int64_t[::1] median=None):
    """The prediction and context of channel c at the subpixels (units[k], pix[k]) of one step
    (`phase`), into ctx[k] and pred[k]. x [n, PIXELS, 3]: the chain's units; grid [n, 5]: each
    unit's plane (its first unit in cut order, patch rows, patch columns) and its patch row and
    column; position: cut order -> chain; shapes [n, 3]: the valid rows, columns, channels.
    A neighbour counts where the decoder surely has it (decoded_at).
    Prediction and context come from the rings unless the pixel's position in the patch has
    linear taps (weights v5 on; ntaps [PIXELS] > 0) and the decoder has every one of them: then
    the prediction is the taps' linear prediction, coefs [3, PIXELS, MAX_TAPS + 1] in
    1/2**COEF_BITS (the last: the constant), of the channel's values (R) or of its difference from
    the earlier channel (G, B: added to the earlier channel's value at the pixel), and the
    context's class of the earlier channel's residual is that of its residual from its own linear
    prediction. taps [PIXELS, MAX_TAPS, 2]: (dy, dx). ntaps empty: the rings everywhere (v4).
    The context's activity class: without `errors` (weights v4, v5), log2(1 + 2 m) of the mean
    absolute deviation m of the ring's values, and 4 classes of the earlier channel's residual;
    with them (v6 on: [n, PIXELS, 3], each decoded subpixel's |value - prediction|, capped at
    255), log2(1 + m + e), m of the ring's values (R) or of their differences from the earlier
    channel (G, B: what they are predicted from, so a patch whose channels move together is
    not taken for a busy one) and e the ring's mean error in this channel, and PREV_CLASSES
    classes of the earlier channel's residual. `median` (v7 on: a second prediction, with the
    errors): the median of the ring's values (R) or of their differences (G, B: plus the earlier
    channel's value at the pixel), the mean of the middle two of an even count; 128 where no
    ring has a decoded neighbour."""
    cdef Py_ssize_t n = units.shape[0], nu = x.shape[0], k, j, ring
    cdef int64_t u, p, at, u2, p2, cnt, s, sp, se, sv, v, d, t, prev_cls, lin
    cdef int64_t vals[RING_SIZE]
    cdef bint activity = errors is not None
    cdef int64_t prev_classes = PREV_CLASSES if activity else 4
    if not 0 <= c < 3 or not 0 <= phase < 7 or x.shape[1] != PIXELS or x.shape[2] != 3 \
            or grid.shape[0] != nu or grid.shape[1] != 5 or shapes.shape[0] != nu or shapes.shape[1] != 3 \
            or phase_of.shape[0] != PIXELS or pix.shape[0] != n or ctx.shape[0] != n or pred.shape[0] != n \
            or (activity and (errors.shape[0] != nu or errors.shape[1] != PIXELS or errors.shape[2] != 3)) \
            or (median is not None and (not activity or median.shape[0] != n)):
        raise ValueError("predict: mismatched shapes")
    if ntaps.shape[0] not in (0, PIXELS) or (ntaps.shape[0] and (
            taps.shape[0] != PIXELS or taps.shape[1] != MAX_TAPS or taps.shape[2] != 2
            or coefs.shape[0] != 3 or coefs.shape[1] != PIXELS or coefs.shape[2] != MAX_TAPS + 1)):
        raise ValueError("predict: linear taps of the wrong shape")
    for k in range(ntaps.shape[0]):
        if not 0 <= ntaps[k] <= MAX_TAPS:
            raise ValueError("predict: too many linear taps")
        for j in range(ntaps[k]):
            if not (-TAP_REACH <= taps[k, j, 0] <= TAP_REACH and -TAP_REACH <= taps[k, j, 1] <= TAP_REACH):
                raise ValueError("predict: a linear tap out of reach")
        for j in range(MAX_TAPS + 1):  # every channel's: G's and B's contexts read the earlier channel's
            if not -COEF_LIMIT <= coefs[0, k, j] <= COEF_LIMIT or not -COEF_LIMIT <= coefs[1, k, j] <= COEF_LIMIT \
                    or not -COEF_LIMIT <= coefs[2, k, j] <= COEF_LIMIT:
                raise ValueError("predict: a linear coefficient out of range")
    for k in range(n):
        if not (0 <= units[k] < nu and 0 <= pix[k] < PIXELS):
            raise ValueError("predict: a subpixel outside the units")
    for k in range(position.shape[0]):
        if not 0 <= position[k] < nu:
            raise ValueError("predict: a position outside the units")
    for k in range(nu):
        if grid[k, 0] < 0 or grid[k, 1] < 1 or grid[k, 2] < 1 or grid[k, 0] + grid[k, 1] * grid[k, 2] > position.shape[0]:
            raise ValueError("predict: a plane outside the units")
    with nogil:
        for k in range(n):
            u = units[k]
            p = pix[k]
            pred[k] = 128
            ring = N_RINGS
            for j in range(N_RINGS):
                cnt = 0
                s = sp = se = 0
                for t in range(RING_LEN[j]):
                    at = decoded_at(grid, position, shapes, phase_of, u, p, phase, RING_DY[j][t], RING_DX[j][t])
                    if at < 0:
                        continue
                    u2 = at // PIXELS
                    p2 = at % PIXELS
                    s += x[u2, p2, c]
                    vals[cnt] = x[u2, p2, c]
                    if c > 0:
                        sp += x[u2, p2, c - 1]
                    if activity:
                        se += errors[u2, p2, c]
                        if c > 0:
                            vals[cnt] -= x[u2, p2, c - 1]
                    cnt += 1
                if cnt > 0:
                    ring = j
                    break
            d = 0
            prev_cls = 0
            if cnt > 0:
                sv = 0
                for t in range(cnt):
                    sv += vals[t]
                for t in range(cnt):
                    v = cnt * vals[t] - sv
                    d += v if v >= 0 else -v  # cnt * cnt x the mean absolute deviation
                if c > 0:
                    v = cnt * x[u, p, c - 1] - sp  # cnt x the earlier channel's residual from its own mean
                    pred[k] = clip(floor_div(2 * (s + v) + cnt, 2 * cnt), 0, MAXV)
                    prev_cls = min(bit_length(1 + (v if v >= 0 else -v) // cnt) - 1, prev_classes - 1)
                else:
                    pred[k] = clip(floor_div(2 * s + cnt, 2 * cnt), 0, MAXV)
                if activity:  # classes of log2(1 + deviation + mean error)
                    d = min(bit_length((cnt * cnt + cnt * se + d) // (cnt * cnt)) - 1, SPREAD_CLASSES - 1)
                else:  # classes of log2(1 + 2 deviation)
                    d = min(bit_length((cnt * cnt + 2 * d) // (cnt * cnt)) - 1, SPREAD_CLASSES - 1)
            ctx[k] = ((c * RING_CLASSES + ring) * SPREAD_CLASSES + d) * PREV_CLASSES + prev_cls
            if median is not None:
                median[k] = median_of(vals, cnt, x[u, p, c - 1] if c > 0 else 0) if cnt > 0 else 128
            if ntaps.shape[0] == 0 or ntaps[p] == 0:
                continue
            lin = linear_at(x, grid, position, shapes, phase_of, u, p, phase, c, taps, ntaps, coefs)
            if lin < 0:
                continue
            pred[k] = lin
            if c > 0:  # the earlier channel's residual from its own linear prediction
                v = x[u, p, c - 1] - linear_at(x, grid, position, shapes, phase_of, u, p, phase, c - 1, taps, ntaps, coefs)
                ctx[k] += min(bit_length(1 + (v if v >= 0 else -v)) - 1, prev_classes - 1) - prev_cls


cdef inline int64_t median_of(int64_t* vals, int64_t cnt, int64_t base) noexcept nogil:
    """The median of vals[:cnt] (sorted in place; cnt >= 1; of an even count the mean of the middle
    two, rounded up) plus base, clipped to 0..MAXV."""
    cdef int64_t j, t, v
    for j in range(1, cnt):
        v = vals[j]
        t = j - 1
        while t >= 0 and vals[t] > v:
            vals[t + 1] = vals[t]
            t -= 1
        vals[t + 1] = v
    v = vals[cnt // 2] if cnt % 2 else floor_div(vals[cnt // 2 - 1] + vals[cnt // 2] + 1, 2)
    return clip(v + base, 0, MAXV)


cdef inline int64_t linear_at(const uint8_t[:, :, ::1] x, const int64_t[:, ::1] grid, const int64_t[::1] position,
                              const int64_t[:, ::1] shapes, const int64_t[::1] phase_of, int64_t u, int64_t p,
                              int64_t phase, int64_t c, const int64_t[:, :, ::1] taps, const int64_t[::1] ntaps,
                              const int64_t[:, :, ::1] coefs) noexcept nogil:
    """The taps' linear prediction of channel c at subpixel p of unit u (predict explains it),
    clipped to 0..MAXV; -1 where the decoder lacks one of the taps."""
    cdef int64_t t, at, v, lin = coefs[c, p, MAX_TAPS]
    for t in range(ntaps[p]):
        at = decoded_at(grid, position, shapes, phase_of, u, p, phase, taps[p, t, 0], taps[p, t, 1])
        if at < 0:
            return -1
        v = x[at // PIXELS, at % PIXELS, c]
        if c > 0:
            v -= x[at // PIXELS, at % PIXELS, c - 1]
        lin += coefs[c, p, t] * v
    lin = floor_div(lin + (1 << (COEF_BITS - 1)), 1 << COEF_BITS)
    return clip(lin + (x[u, p, c - 1] if c > 0 else 0), 0, MAXV)


def _check_tables(const int32_t[:, ::1] counts, const int64_t[::1] totals=None):
    """The counts [CONTEXTS, SPAN] and, where a kernel updates them, their totals [CONTEXTS]."""
    if counts.shape[0] != CONTEXTS or counts.shape[1] != SPAN or (totals is not None and totals.shape[0] != CONTEXTS):
        raise ValueError("neighbour counts: tables of the wrong shape")


def _check_step(Py_ssize_t n, const int64_t[::1] ctx, const int64_t[::1] pred, const int64_t[::1] values):
    cdef Py_ssize_t k
    if ctx.shape[0] != n or pred.shape[0] != n or values.shape[0] != n:
        raise ValueError("neighbour counts: mismatched shapes")
    for k in range(n):
        if not (0 <= ctx[k] < CONTEXTS and 0 <= pred[k] <= MAXV and 0 <= values[k] <= MAXV):
            raise ValueError("neighbour counts: a context or value out of range")


cdef inline int64_t cumulate(const int32_t* row, int64_t scale, int64_t* cb) noexcept nogil:
    """cb[v + 1]: the counts' mass of the values 0..v (row[v]: the count of value v); -> the total."""
    cdef int64_t v, tc = 0
    cb[0] = 0
    for v in range(MAXV + 1):
        tc += scale * row[v] + 1
        cb[v + 1] = tc
    return tc


cdef inline int64_t bucket_mass(const int64_t* cb, int64_t pv, Py_ssize_t b) noexcept nogil:
    """The mass of bucket b of the residuals from pv: that of its two runs of values."""
    cdef int64_t lo, hi, mass = 0
    cdef Py_ssize_t side
    for side in range(2):
        lo = max(pv + RUN_LO[b][side], 0)
        hi = min(pv + RUN_HI[b][side], MAXV)
        if lo <= hi:
            mass += cb[hi + 1] - cb[lo]
    return mass


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)  # block bounds: non-negative
cdef void mixed_block(Py_ssize_t blk, Py_ssize_t nblk, const int32_t[:, ::1] counts, const int64_t[::1] ctx,
                      const int64_t[::1] pred, const int64_t[::1] vae_preds, const double[:, ::1] vae_rows,
                      int64_t share, int64_t scale, const int32_t[:, ::1] counts2, const int64_t[::1] pred2,
                      const int64_t[::1] splits, bint two, int64_t* cb, int64_t* cb2, double[:, ::1] out,
                      int64_t[:, ::1] totals, bint keep) noexcept nogil:
    """The rows of block blk of nblk (cb, cb2: its own scratch of MAXV + 2 each: the tables'
    cumulative mass over the values); with two tables and `keep`, each row's two totals into totals."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], k, b
    cdef int64_t tc, tc2 = 1, tv, pv
    for k in range(blk * n // nblk, (blk + 1) * n // nblk):
        pv = vae_preds[k]
        tc = cumulate(&counts[ctx[k], MAXV - pred[k]], scale, cb)
        if two:
            tc2 = cumulate(&counts2[ctx[k], MAXV - pred2[k]], scale, cb2)
            if keep:
                totals[0, k] = tc
                totals[1, k] = tc2
        tv = vae_total(vae_rows, k)
        for b in range(nb):
            if two:
                out[k, b] = <double>(vae_part(share, <int64_t>vae_rows[k, b], tv)
                                     + split_part(share, splits[k], bucket_mass(cb, pv, b), tc)
                                     + split_part(share, (1 << SPLIT_BITS) - splits[k], bucket_mass(cb2, pv, b), tc2) + 1)
            else:
                out[k, b] = <double>(vae_part(share, <int64_t>vae_rows[k, b], tv)
                                     + counts_part(share, bucket_mass(cb, pv, b), tc) + 1)


def _check_second(Py_ssize_t n, const int32_t[:, ::1] counts2, const int64_t[::1] pred2, const int64_t[::1] splits):
    """The second table (v7 on), its predictions and the first table's split per subpixel: all or none."""
    cdef Py_ssize_t k
    if counts2 is None and pred2 is None and splits is None:
        return False
    if counts2 is None or pred2 is None or splits is None or pred2.shape[0] != n or splits.shape[0] != n:
        raise ValueError("a second table needs its predictions and the splits, one per subpixel")
    _check_tables(counts2)
    for k in range(n):
        if not (0 <= pred2[k] <= MAXV and 0 <= splits[k] <= (1 << SPLIT_BITS)):
            raise ValueError("a second prediction or a split out of range")
    return True


def mixed_rows(const int32_t[:, ::1] counts, const int64_t[::1] ctx,
               const int64_t[::1] pred, const int64_t[::1] vae_preds, const double[:, ::1] vae_rows,
               int64_t share, int64_t scale, Py_ssize_t nblk, const int32_t[:, ::1] counts2=None,
               const int64_t[::1] pred2=None, const int64_t[::1] splits=None, int64_t[:, ::1] totals=None):
    """-> rows [n, buckets] float64: the vae's rows (residual buckets of value - vae_preds) mixed with
    the counts' pmf folded onto the same buckets, `share` sixteenths the vae's. The counts' pmf over
    the values 0..MAXV: scale * count(value - pred) + 1 in context ctx, normalized; with a second
    table (v7 on: counts2, its predictions pred2, same contexts), the mixture of the two pmfs,
    splits[k] of 2**SPLIT_BITS the first's, and each row's two totals into `totals` [2, n] where
    given (for mixer_gradients). Every part is an integer, so every machine builds the same row; every
    bucket gets at least 1. The rows are split into nblk thread blocks (any count gives the same
    rows)."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], k, blk
    _check_tables(counts)
    _check_step(n, ctx, pred, vae_preds)
    cdef bint two = _check_second(n, counts2, pred2, splits)
    cdef bint keep = totals is not None
    if vae_rows.shape[0] != n or not 0 <= share <= (1 << SHARE_BITS) or not 1 <= scale <= 64 \
            or not bucket_of(2 * MAXV).sym + 1 <= nb <= MAX_BUCKETS \
            or (totals is not None and (not two or totals.shape[0] != 2 or totals.shape[1] != n)):
        raise ValueError("mixed_rows: mismatched shapes or parameters")
    nblk = max(1, min(nblk, n))
    out_a = np.empty((n, nb), np.float64)
    cb_a = np.zeros((nblk, 2, MAXV + 2), np.int64)
    cdef double[:, ::1] out = out_a
    cdef int64_t[:, :, ::1] cb = cb_a
    if n == 0:
        return out_a
    with nogil:
        if nblk == 1:
            mixed_block(0, 1, counts, ctx, pred, vae_preds, vae_rows, share, scale, counts2, pred2, splits, two,
                        &cb[0, 0, 0], &cb[0, 1, 0], out, totals, keep)
        else:
            for blk in prange(nblk, schedule="static", chunksize=1):
                mixed_block(blk, nblk, counts, ctx, pred, vae_preds, vae_rows, share, scale, counts2, pred2, splits,
                            two, &cb[blk, 0, 0], &cb[blk, 1, 0], out, totals, keep)
    return out_a


@cython.boundscheck(False)
@cython.wraparound(False)
def low_rows(const int32_t[:, ::1] counts, const int64_t[::1] ctx,
             const int64_t[::1] pred, const int64_t[::1] vae_preds, const double[:, ::1] vae_rows,
             const int64_t[::1] sym, int64_t share, int64_t scale, const int32_t[:, ::1] counts2=None,
             const int64_t[::1] pred2=None, const int64_t[::1] splits=None):
    """-> rows [n, 2**nlow] float64: the pmf of the low bits of each subpixel's bucket sym[k] (every
    one of them has nlow low bits, the same for all): the same mixture as mixed_rows' within the
    bucket, so that bucket and low bits together code the mixture value by value. The vae's part
    is uniform over the bucket's values, the counts' part each value's own (0 outside 0..MAXV)."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], k, j, width
    cdef int64_t nlow, tc, tc2 = 1, pv, v, u0, uniform, b
    cdef const int32_t* row
    cdef const int32_t* row2 = NULL
    _check_tables(counts)
    _check_step(n, ctx, pred, vae_preds)
    cdef bint two = _check_second(n, counts2, pred2, splits)
    if vae_rows.shape[0] != n or sym.shape[0] != n or n == 0 or not 0 <= share <= (1 << SHARE_BITS) \
            or not 1 <= scale <= 64:
        raise ValueError("low_rows: mismatched shapes or parameters")
    nlow = low_bits_of_bucket(sym[0]) if 0 <= sym[0] < nb else -1
    for k in range(n):
        if not (0 <= sym[k] < nb and low_bits_of_bucket(sym[k]) == nlow and 1 <= nlow <= 8):
            raise ValueError("low_rows: buckets of different widths, or without low bits")
    width = 1 << nlow
    out_a = np.empty((n, width), np.float64)
    cdef double[:, ::1] out = out_a
    with nogil:
        for k in range(n):
            row = &counts[ctx[k], MAXV - pred[k]]  # row[v]: the count of value v
            tc = counts_total(row, scale)
            if two:
                row2 = &counts2[ctx[k], MAXV - pred2[k]]
                tc2 = counts_total(row2, scale)
            pv = vae_preds[k]
            b = sym[k]
            uniform = vae_part(share, <int64_t>vae_rows[k, b], vae_total(vae_rows, k) * width)
            u0 = value_of(b, 0)
            for j in range(width):
                v = pv + unzigzag(u0 + j)
                if not 0 <= v <= MAXV:
                    out[k, j] = <double>(uniform + 1)
                elif two:
                    out[k, j] = <double>(uniform + split_part(share, splits[k], scale * row[v] + 1, tc)
                                         + split_part(share, (1 << SPLIT_BITS) - splits[k], scale * row2[v] + 1, tc2) + 1)
                else:
                    out[k, j] = <double>(uniform + counts_part(share, scale * row[v] + 1, tc) + 1)
    return out_a


@cython.boundscheck(False)
@cython.wraparound(False)
def mixer_gradients(const int32_t[:, ::1] counts, const int64_t[::1] ctx, const int64_t[::1] pred,
                    const int32_t[:, ::1] counts2, const int64_t[::1] pred2, const int64_t[::1] splits,
                    const int64_t[::1] values, int64_t scale, const int64_t[::1] mixer, int64_t[::1] grads,
                    const int64_t[:, ::1] totals=None):
    """The two tables' mixer (v7 on) at one step, before the step is counted: adds to grads[mixer[k]]
    each subpixel's gradient of the log of the mixture's probability of its value with respect to
    the split's logit, 2 s (1 - s) (pa - pc) / p in 1/2**PROB_BITS (s = splits[k] / 2**SPLIT_BITS,
    pa and pc the tables' probabilities of the value, p their mixture). Integer sums: the same
    in any order. `totals` [2, n]: the rows' totals mixed_rows gave for these tables, predictions
    and contexts (None: counted here)."""
    cdef Py_ssize_t n = ctx.shape[0], k
    cdef int64_t s, pa, pc, p, one = 1 << SPLIT_BITS
    cdef const int32_t* row
    cdef const int32_t* row2
    _check_tables(counts)
    _check_step(n, ctx, pred, values)
    if not _check_second(n, counts2, pred2, splits) or mixer.shape[0] != n \
            or (totals is not None and (totals.shape[0] != 2 or totals.shape[1] != n)):
        raise ValueError("mixer_gradients: mismatched shapes")
    for k in range(n):
        if not 0 <= mixer[k] < grads.shape[0] or (totals is not None and (totals[0, k] < 1 or totals[1, k] < 1)):
            raise ValueError("mixer_gradients: a mixer context or a total out of range")
    with nogil:
        for k in range(n):
            row = &counts[ctx[k], MAXV - pred[k]]
            row2 = &counts2[ctx[k], MAXV - pred2[k]]
            if totals is None:
                pa = ((scale * row[values[k]] + 1) << PROB_BITS) // counts_total(row, scale)
                pc = ((scale * row2[values[k]] + 1) << PROB_BITS) // counts_total(row2, scale)
            else:
                pa = ((scale * row[values[k]] + 1) << PROB_BITS) // totals[0, k]
                pc = ((scale * row2[values[k]] + 1) << PROB_BITS) // totals[1, k]
            s = splits[k]
            p = max((s * pa + (one - s) * pc) >> SPLIT_BITS, 1)
            grads[mixer[k]] += floor_div(2 * s * (one - s) * (pa - pc), p)


@cython.boundscheck(False)
@cython.wraparound(False)
def value_probabilities(const int32_t[:, ::1] counts, const int64_t[::1] ctx, const int64_t[::1] pred,
                        const int64_t[::1] values, int64_t scale, double[::1] out):
    """out[k] = the counts' probability of values[k] (the pmf mixed_rows folds): for the float
    model's -ELBO in the report."""
    cdef Py_ssize_t n = ctx.shape[0], k
    cdef const int32_t* row
    _check_tables(counts)
    _check_step(n, ctx, pred, values)
    if out.shape[0] != n:
        raise ValueError("value_probabilities: mismatched shapes")
    with nogil:
        for k in range(n):
            row = &counts[ctx[k], MAXV - pred[k]]  # row[v]: the count of value v
            out[k] = <double>(scale * row[values[k]] + 1) / <double>counts_total(row, scale)


@cython.boundscheck(False)
@cython.wraparound(False)
def learn(int32_t[:, ::1] counts, int64_t[::1] totals, const int64_t[::1] ctx, const int64_t[::1] pred,
          const int64_t[::1] values, int64_t sign):
    """Count (sign 1) or uncount (sign -1) each value's residual from its prediction in its context."""
    cdef Py_ssize_t n = ctx.shape[0], k
    _check_tables(counts, totals)
    _check_step(n, ctx, pred, values)
    if sign != 1 and sign != -1:
        raise ValueError("learn: sign is 1 or -1")
    with nogil:
        for k in range(n):
            counts[ctx[k], values[k] - pred[k] + MAXV] += sign
            totals[ctx[k]] += sign
    if sign < 0:
        for k in range(n):
            if counts[ctx[k], values[k] - pred[k] + MAXV] < 0:
                raise ValueError("learn: uncounted what was never counted")


@cython.boundscheck(False)
@cython.wraparound(False)
def halve_full(int32_t[:, ::1] counts, int64_t[::1] totals, int64_t limit):
    """Halve (rounding up) every context whose total is above `limit`."""
    cdef Py_ssize_t j, i
    cdef int64_t t
    _check_tables(counts, totals)
    for j in range(CONTEXTS):
        if totals[j] > limit:
            t = 0
            for i in range(SPAN):
                counts[j, i] = (counts[j, i] + 1) >> 1
                t += counts[j, i]
            totals[j] = t
