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
    SPLIT_BITS = 12          # v7 on: each table's part of the counts' mixture, in 1/2**SPLIT_BITS
    MAX_TABLES = 3           # the taps' (or rings' mean), v7 on the rings' median, v9 on the snap
    PROB_BITS = 24           # the mixer's gradient reads each table's probability in 1/2**PROB_BITS

LAYOUT = {"PATCH": PATCH, "MAXV": MAXV, "CONTEXTS": CONTEXTS, "PREV_CLASSES": PREV_CLASSES, "SHARE_BITS": SHARE_BITS, "MAX_TAPS": MAX_TAPS,
          "TAP_REACH": TAP_REACH, "COEF_BITS": COEF_BITS, "COEF_LIMIT": COEF_LIMIT, "SPLIT_BITS": SPLIT_BITS,
          "PROB_BITS": PROB_BITS, "MAX_TABLES": MAX_TABLES}

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


cdef inline int64_t table_part(int64_t share, int64_t part, int64_t mass, int64_t tc) noexcept nogil:
    """A table's part of the counts' share: `part` of 2**SPLIT_BITS (one table: all of it, which is
    exactly ((SHARES - share) mass << MIX_BITS) // tc, the rows of weights v4 to v6)."""
    return ((((1 << SHARE_BITS) - share) * part * mass) << (MIX_BITS - SPLIT_BITS)) // tc


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
            const uint8_t[:, :, ::1] errors=None, int64_t[::1] median=None, int64_t[::1] snap=None):
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
    ring has a decoded neighbour. `snap` (v9 on: a third prediction, with the median): the ring's
    value (R) or difference (G, B: plus the earlier channel's value) nearest the first prediction,
    the smaller of two as near; 128 where no ring has a decoded neighbour. A photo's flat
    areas and edges often repeat a neighbour exactly (a decoded JPEG's blocks, posterized skies),
    which a linear prediction only comes near."""
    cdef Py_ssize_t n = units.shape[0], nu = x.shape[0], k, j, ring
    cdef int64_t u, p, at, u2, p2, cnt, s, sp, se, sv, v, d, t, prev_cls, lin, base
    cdef int64_t vals[RING_SIZE]
    cdef bint activity = errors is not None
    cdef int64_t prev_classes = PREV_CLASSES if activity else 4
    if not 0 <= c < 3 or not 0 <= phase < 7 or x.shape[1] != PIXELS or x.shape[2] != 3 \
            or grid.shape[0] != nu or grid.shape[1] != 5 or shapes.shape[0] != nu or shapes.shape[1] != 3 \
            or phase_of.shape[0] != PIXELS or pix.shape[0] != n or ctx.shape[0] != n or pred.shape[0] != n \
            or (activity and (errors.shape[0] != nu or errors.shape[1] != PIXELS or errors.shape[2] != 3)) \
            or (median is not None and (not activity or median.shape[0] != n)) \
            or (snap is not None and (median is None or snap.shape[0] != n)):
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
            base = x[u, p, c - 1] if c > 0 else 0
            if median is not None:
                median[k] = median_of(vals, cnt, base) if cnt > 0 else 128  # sorts vals
            lin = -1
            if ntaps.shape[0] and ntaps[p]:
                lin = linear_at(x, grid, position, shapes, phase_of, u, p, phase, c, taps, ntaps, coefs)
            if lin >= 0:
                pred[k] = lin
                if c > 0:  # the earlier channel's residual from its own linear prediction
                    v = x[u, p, c - 1] - linear_at(x, grid, position, shapes, phase_of, u, p, phase, c - 1, taps, ntaps,
                                                   coefs)
                    ctx[k] += min(bit_length(1 + (v if v >= 0 else -v)) - 1, prev_classes - 1) - prev_cls
            if snap is not None:
                snap[k] = nearest_of(vals, cnt, pred[k] - base, base) if cnt > 0 else 128


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


cdef inline int64_t nearest_of(const int64_t* vals, int64_t cnt, int64_t target, int64_t base) noexcept nogil:
    """The value of vals[:cnt] (sorted; cnt >= 1) nearest target, the first of two as near, plus
    base, clipped to 0..MAXV."""
    cdef int64_t j, best = vals[0]
    for j in range(1, cnt):
        if (vals[j] - target if vals[j] >= target else target - vals[j]) < \
                (best - target if best >= target else target - best):
            best = vals[j]
    return clip(best + base, 0, MAXV)


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


cdef inline void parts_of(const int64_t[:, ::1] splits, Py_ssize_t k, Py_ssize_t ntables, int64_t* parts) noexcept nogil:
    """Each table's part of the counts' mixture at subpixel k, in 1/2**SPLIT_BITS, summing to
    2**SPLIT_BITS, from the mixer's splits (two nested ones): the first table's part is the first
    split, the second's the second split of what is left, the third's the rest."""
    cdef int64_t one = 1 << SPLIT_BITS
    if ntables == 1:
        parts[0] = one
        return
    parts[0] = splits[0, k]
    if ntables == 2:
        parts[1] = one - parts[0]
        return
    parts[1] = ((one - parts[0]) * splits[1, k]) >> SPLIT_BITS
    parts[2] = one - parts[0] - parts[1]


def mixture_parts(const int64_t[:, ::1] splits, Py_ssize_t ntables):
    """-> [ntables, n] int64: each table's part of the counts' mixture (parts_of) from the mixer's
    splits [ntables - 1, n] in 1/2**SPLIT_BITS (one table: [0, n])."""
    cdef Py_ssize_t n = splits.shape[1], k, t
    cdef int64_t parts[MAX_TABLES]
    _check_splits(splits, ntables, -1)
    out_a = np.empty((ntables, n), np.int64)
    cdef int64_t[:, ::1] out = out_a
    for k in range(n):
        parts_of(splits, k, ntables, parts)
        for t in range(ntables):
            out[t, k] = parts[t]
    return out_a


def _check_splits(const int64_t[:, ::1] splits, Py_ssize_t ntables, Py_ssize_t n):
    """The mixer's splits [ntables - 1, n] (n -1: any), each in 0..2**SPLIT_BITS."""
    cdef Py_ssize_t k, t
    if not 1 <= ntables <= MAX_TABLES or splits.shape[0] != ntables - 1 or (ntables > 1 and n >= 0 and splits.shape[1] != n):
        raise ValueError("neighbour counts: a split per table but the last, one per subpixel")
    for t in range(splits.shape[0]):
        for k in range(splits.shape[1]):
            if not 0 <= splits[t, k] <= (1 << SPLIT_BITS):
                raise ValueError("neighbour counts: a split out of range")


def _check_mixture(Py_ssize_t n, const int32_t[:, :, ::1] tables, const int64_t[::1] ctx, const int64_t[:, ::1] preds,
                   const int64_t[::1] vae_preds, const int64_t[:, ::1] splits):
    """A step's tables [T, CONTEXTS, SPAN] with their predictions [T, n] and the mixer's splits [T - 1, n]."""
    cdef Py_ssize_t t
    if not 1 <= tables.shape[0] <= MAX_TABLES or preds.shape[0] != tables.shape[0] or tables.shape[1] != CONTEXTS \
            or tables.shape[2] != SPAN:
        raise ValueError("neighbour counts: one to three tables of the wrong shape, or not a prediction from each")
    for t in range(tables.shape[0]):
        _check_step(n, ctx, preds[t], vae_preds)
    _check_splits(splits, tables.shape[0], n)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)  # block bounds: non-negative
cdef void mixed_block(Py_ssize_t blk, Py_ssize_t nblk, const int32_t[:, :, ::1] tables, const int64_t[::1] ctx,
                      const int64_t[:, ::1] preds, const int64_t[::1] vae_preds, const double[:, ::1] vae_rows,
                      int64_t share, int64_t scale, const int64_t[:, ::1] splits, int64_t* cb, double[:, ::1] out,
                      int64_t[:, ::1] totals, bint keep) noexcept nogil:
    """The rows of block blk of nblk (cb: its own scratch of MAX_TABLES x (MAXV + 2): the tables'
    cumulative mass over the values); with `keep`, each row's tables' totals into totals."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], ntables = tables.shape[0], k, b, t
    cdef int64_t tv, pv, mass
    cdef int64_t tc[MAX_TABLES]
    cdef int64_t parts[MAX_TABLES]
    for k in range(blk * n // nblk, (blk + 1) * n // nblk):
        pv = vae_preds[k]
        parts_of(splits, k, ntables, parts)
        for t in range(ntables):
            tc[t] = cumulate(&tables[t, ctx[k], MAXV - preds[t, k]], scale, cb + t * (MAXV + 2))
            if keep:
                totals[t, k] = tc[t]
        tv = vae_total(vae_rows, k)
        for b in range(nb):
            mass = vae_part(share, <int64_t>vae_rows[k, b], tv) + 1
            for t in range(ntables):
                mass += table_part(share, parts[t], bucket_mass(cb + t * (MAXV + 2), pv, b), tc[t])
            out[k, b] = <double>mass


def mixed_rows(const int32_t[:, :, ::1] tables, const int64_t[::1] ctx, const int64_t[:, ::1] preds,
               const int64_t[::1] vae_preds, const double[:, ::1] vae_rows, int64_t share, int64_t scale,
               Py_ssize_t nblk, const int64_t[:, ::1] splits, int64_t[:, ::1] totals=None):
    """-> rows [n, buckets] float64: the vae's rows (residual buckets of value - vae_preds) mixed with
    the counts' pmf folded onto the same buckets, `share` sixteenths the vae's. A table's pmf over
    the values 0..MAXV: scale * count(value - its prediction) + 1 in context ctx, normalized;
    tables [T, CONTEXTS, SPAN] (T = 1 before v7, 2 in v7 and v8, 3 from v9), their predictions
    preds [T, n], mixed in the parts parts_of gives from the mixer's splits [T - 1, n]; each row's
    tables' totals into `totals` [T, n] where given (for mixer_gradients). Every part is an
    integer, so every machine builds the same row; every bucket gets at least 1. The rows are
    split into nblk thread blocks (any count gives the same rows)."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], blk
    _check_mixture(n, tables, ctx, preds, vae_preds, splits)
    cdef bint keep = totals is not None
    if vae_rows.shape[0] != n or not 0 <= share <= (1 << SHARE_BITS) or not 1 <= scale <= 64 \
            or not bucket_of(2 * MAXV).sym + 1 <= nb <= MAX_BUCKETS \
            or (keep and (totals.shape[0] != tables.shape[0] or totals.shape[1] != n)):
        raise ValueError("mixed_rows: mismatched shapes or parameters")
    nblk = max(1, min(nblk, n))
    out_a = np.empty((n, nb), np.float64)
    cb_a = np.zeros((nblk, MAX_TABLES * (MAXV + 2)), np.int64)
    cdef double[:, ::1] out = out_a
    cdef int64_t[:, ::1] cb = cb_a
    if n == 0:
        return out_a
    with nogil:
        if nblk == 1:
            mixed_block(0, 1, tables, ctx, preds, vae_preds, vae_rows, share, scale, splits, &cb[0, 0], out, totals,
                        keep)
        else:
            for blk in prange(nblk, schedule="static", chunksize=1):
                mixed_block(blk, nblk, tables, ctx, preds, vae_preds, vae_rows, share, scale, splits, &cb[blk, 0],
                            out, totals, keep)
    return out_a


@cython.boundscheck(False)
@cython.wraparound(False)
def low_rows(const int32_t[:, :, ::1] tables, const int64_t[::1] ctx, const int64_t[:, ::1] preds,
             const int64_t[::1] vae_preds, const double[:, ::1] vae_rows, const int64_t[::1] sym, int64_t share,
             int64_t scale, const int64_t[:, ::1] splits):
    """-> rows [n, 2**nlow] float64: the pmf of the low bits of each subpixel's bucket sym[k] (every
    one of them has nlow low bits, the same for all): the same mixture as mixed_rows' within the
    bucket, so that bucket and low bits together code the mixture value by value. The vae's part
    is uniform over the bucket's values, each table's part each value's own (0 outside 0..MAXV)."""
    cdef Py_ssize_t n = ctx.shape[0], nb = vae_rows.shape[1], ntables = tables.shape[0], k, j, t, width
    cdef int64_t nlow, pv, v, u0, uniform, b, mass
    cdef int64_t tc[MAX_TABLES]
    cdef int64_t parts[MAX_TABLES]
    cdef const int32_t* rows[MAX_TABLES]
    _check_mixture(n, tables, ctx, preds, vae_preds, splits)
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
            parts_of(splits, k, ntables, parts)
            for t in range(ntables):
                rows[t] = &tables[t, ctx[k], MAXV - preds[t, k]]  # rows[t][v]: the count of value v
                tc[t] = counts_total(rows[t], scale)
            pv = vae_preds[k]
            b = sym[k]
            uniform = vae_part(share, <int64_t>vae_rows[k, b], vae_total(vae_rows, k) * width)
            u0 = value_of(b, 0)
            for j in range(width):
                v = pv + unzigzag(u0 + j)
                mass = uniform + 1
                if 0 <= v <= MAXV:
                    for t in range(ntables):
                        mass += table_part(share, parts[t], scale * rows[t][v] + 1, tc[t])
                out[k, j] = <double>mass
    return out_a


@cython.boundscheck(False)
@cython.wraparound(False)
def mixer_gradients(const int32_t[:, :, ::1] tables, const int64_t[::1] ctx, const int64_t[:, ::1] preds,
                    const int64_t[:, ::1] splits, const int64_t[::1] values, int64_t scale, const int64_t[::1] mixer,
                    int64_t[:, ::1] grads, const int64_t[:, ::1] totals=None):
    """The tables' mixer (v7 on: two or three tables) at one step, before the step is counted: adds
    to grads[i, mixer[k]] each subpixel's gradient of the log of the mixture's probability of its
    value with respect to split i's logit, in 1/2**PROB_BITS, with sa, sb the splits (in units),
    p0, p1, p2 the tables' probabilities of the value and p their mixture (parts_of):
    the first, 2 sa (1 - sa) (p0 - r) / p, r the rest's probability (two tables: p1; three:
    sb p1 + (1 - sb) p2); the second (three tables), 2 (1 - sa) sb (1 - sb) (p1 - p2) / p. Integer
    sums: the same in any order. `totals` [T, n]: the rows' totals mixed_rows gave for these
    tables, predictions and contexts (None: counted here)."""
    cdef Py_ssize_t n = ctx.shape[0], ntables = tables.shape[0], k, t
    cdef int64_t p, r, w, sa, sb, one = 1 << SPLIT_BITS
    cdef int64_t prob[MAX_TABLES]
    cdef int64_t parts[MAX_TABLES]
    cdef const int32_t* row
    _check_mixture(n, tables, ctx, preds, values, splits)
    if ntables < 2 or mixer.shape[0] != n or grads.shape[0] != ntables - 1 \
            or (totals is not None and (totals.shape[0] != ntables or totals.shape[1] != n)):
        raise ValueError("mixer_gradients: mismatched shapes")
    for k in range(n):
        if not 0 <= mixer[k] < grads.shape[1]:
            raise ValueError("mixer_gradients: a mixer context out of range")
        for t in range(ntables):
            if totals is not None and totals[t, k] < 1:
                raise ValueError("mixer_gradients: a total out of range")
    with nogil:
        for k in range(n):
            parts_of(splits, k, ntables, parts)
            p = 0
            for t in range(ntables):
                row = &tables[t, ctx[k], MAXV - preds[t, k]]
                prob[t] = ((scale * row[values[k]] + 1) << PROB_BITS) // (
                    counts_total(row, scale) if totals is None else totals[t, k])
                p += parts[t] * prob[t]
            p = max(p >> SPLIT_BITS, 1)
            sa = splits[0, k]
            if ntables == 2:
                r = prob[1]
            else:
                sb = splits[1, k]
                r = (sb * prob[1] + (one - sb) * prob[2]) >> SPLIT_BITS
                w = ((one - sa) * sb * (one - sb)) >> SPLIT_BITS
                grads[1, mixer[k]] += floor_div(2 * w * (prob[1] - prob[2]), p)
            grads[0, mixer[k]] += floor_div(2 * sa * (one - sa) * (prob[0] - r), p)


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
