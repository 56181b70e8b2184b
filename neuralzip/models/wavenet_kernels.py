"""Per-sample kernels of the wavenet audio model (compiled, integer on the coding path).

One *lane* is a stretch of the recording (LANE_FRAMES frames, all channels)
whose adaptive state starts fresh, so lanes are independent: the encoder runs
each lane start to end (in parallel), the decoder steps every lane of a chunk
in lockstep, one coder call per time step for all of them (contract 4).

Per lane, channel c and frame t, the prediction cascade is
  1. forward-adaptive LPC (coefficients and stereo mode chosen per block by
     the encoder and stored), run on a history that continues across blocks;
  2. a cascade of NLMS filters on the LPC residual (32 taps slow, then 16
     taps slower still; backward adaptive: integer weights, normalisation by
     an exact integer division);
  3. the learned stage: a small quantized MLP that reads the recent final
     residuals, the scale estimate and the cascade's output, and predicts a
     mean correction and a scale class for the residual.
The residual is coded as a bucket symbol under adaptive counts chosen by the
scale class (table BASE without stage 3, NET with it; each block says which),
plus uniform low bits. Both tables are updated at every sample whatever the
block chose, so the encoder can price both options per block.

State arrays are indexed [lane, channel, ...]; histories are stored whole for
the lane with an offset (HIST) so t-1-j never goes below 0.
"""

import numba as nb
import numpy as np

from neuralzip.coding import buckets
from neuralzip.models.classic_audio import scale_class, stereo_channel, stereo_restore

# No reference counting in the hot loops (arrays are only borrowed here; every buffer is passed
# in): numba's per-call incref/decref of ~20 state arrays cost more than the arithmetic.
_jit = nb.njit(cache=True, _nrt=False)
_inline = nb.njit(cache=True, _nrt=False, inline="always")

MAX_ORDER = 32
# the NLMS cascade: stage s predicts the residual left by the stages before it from its own
# last NLMS_TAPS[s] inputs, with step size 2^-NLMS_MU[s] (long and slow, then short and fast)
NLMS_TAPS = (32, 16)
NLMS_MU = (4, 6)
N_STAGES = 2
MAX_TAPS = 32
NLMS_SHIFT = 16  # weights carry 16 fractional bits
HIST = 40  # history offset in cod/u arrays (> MAX_ORDER, MAX_TAPS)
RES_HIST = 8  # final residuals the network reads
N_FEATURES = 12
NCLS = 80
INC = 32
LIMIT = 1 << 16
BASE, NET, FLOAT = 0, 1, 2  # count tables: without the learned stage, with it, with its float twin
CORR_UNIT = 5  # the mean correction is in units of scale / 2^CORR_UNIT
U_CLIP = 1 << 20  # NLMS inputs (int32 histories, int64 sums far from overflow)
E2_CLIP = 1 << 30  # stored final residuals (int32 history; the network reads them clipped further)


@_inline
def _clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@_inline
def _coded_value(frame, mode, c, nch):
    """Channel c of one frame after the block's stereo transform."""
    return stereo_channel(frame[0], frame[1], mode, c) if nch == 2 else frame[c]


@_jit
def enter_block(k, t, blk, orig, cod, modes, wshift):
    """Rebuild the coded-signal history before frame t in the new block's mode and shift."""
    nch = cod.shape[1]
    for j in range(1, HIST + 1):
        if t - j < 0:
            break
        for c in range(nch):
            cod[k, c, HIST + t - j] = _coded_value(orig[k, :, t - j], modes[k, blk], c, nch) >> wshift[k, blk, c]


@_jit
def _features(k, c, t, s, cls, pn, e2, emas, f):
    """Recent residuals and the NLMS output in units of scale/8 (one division: an integer reciprocal)."""
    inv = (1 << 40) // s
    for i in range(RES_HIST):
        f[i] = _clip((_clip(e2[k, c, RES_HIST + t - 1 - i], -(1 << 22), 1 << 22) * inv) >> 37, -127, 127)
    f[8] = cls
    f[9] = _clip((_clip(pn, -(1 << 22), 1 << 22) * inv) >> 37, -127, 127)
    f[10] = scale_class(emas[k, c], NCLS) - cls
    f[11] = c


@_jit
def _net_exact(f, w1t, b1, m1, s1, w2, b2, m2, s2, hid, out):
    """int8 weights, uint8 hidden activations, integer rescaling. Every value is an integer far
    below 2^53 held in float64, so each sum is exact in any order (contract 1) and vectorizes.
    w1t is (features, hidden); the rescale is acc * m1[h] / 2^s1 (one shift for the layer)."""
    nh = w1t.shape[1]
    for h in range(nh):
        hid[h] = b1[h]
    for i in range(f.shape[0]):
        fi = f[i]
        for h in range(nh):
            hid[h] += w1t[i, h] * fi
    scale = 1.0 / (1 << s1)
    acc0 = b2[0]
    acc1 = b2[1]
    for h in range(nh):
        a = min(max(np.floor(hid[h] * m1[h] * scale + 0.5), 0.0), 255.0)
        acc0 += w2[0, h] * a
        acc1 += w2[1, h] * a
    out[0] = np.int64(np.floor(acc0 * m2[0] / (1 << s2) + 0.5))
    out[1] = np.int64(np.floor(acc1 * m2[1] / (1 << s2) + 0.5))


@_jit
def _net_float(f, fw1, fb1, fw2, fb2, out):
    """The float (training) twin, for the report only."""
    nh = fw1.shape[0]
    o0 = fb2[0]
    o1 = fb2[1]
    for h in range(nh):
        acc = fb1[h]
        for i in range(f.shape[0]):
            acc += fw1[h, i] * np.float64(f[i])
        if acc > 0:
            o0 += fw2[0, h] * acc
            o1 += fw2[1, h] * acc
    out[0] = np.int64(np.round(o0))
    out[1] = np.int64(np.round(o1))


@_inline
def predict(k, c, t, blk, cod, u, e2, wn, ema, emas, orders, qshifts, coefs, vmax, net, fnet, use_float,
            f, hid, o, scratch):
    """-> prediction; scratch[k, c] gets (lpc pred, cascade pred, class, net class, net corr,
    float class, float corr, stage predictions...)."""
    order = orders[k, blk, c]
    plpc = 0
    if order > 0:
        acc = 0
        for j in range(order):
            acc += coefs[k, blk, c, j] * cod[k, c, HIST + t - 1 - j]
        plpc = acc >> qshifts[k, blk, c]
    sc = scratch[k, c]
    pn = 0
    for st in range(N_STAGES):
        acc = 0
        for j in range(NLMS_TAPS[st]):
            acc += np.int64(wn[k, c, st, j]) * np.int64(u[k, c, st, HIST + t - 1 - j])  # 32x32 -> 64 bits
        sc[7 + st] = acc >> NLMS_SHIFT
        pn += sc[7 + st]
    # the prediction, with or without the correction, stays within the coded signal's range, so
    # every residual fits the alphabet whatever the adaptive filters do
    pred = _clip(plpc + pn, -vmax, vmax)
    s = (ema[k, c] >> 4) + 1
    cls = scale_class(ema[k, c], NCLS)
    sc[0], sc[1], sc[2] = plpc, pn, cls
    if net[0].shape[1] > 0:
        _features(k, c, t, s, cls, pn, e2, emas, f)
        w1t, b1, m1, s1, w2, b2, m2, s2 = net
        _net_exact(f, w1t, b1, m1, s1[0], w2, b2, m2, s2[0], hid, o)
        sc[3] = _clip(cls + o[1], 0, NCLS - 1)
        sc[4] = _clip(pred + ((_clip(o[0], -255, 255) * s) >> CORR_UNIT), -vmax, vmax) - pred
        if use_float:
            fw1, fb1, fw2, fb2 = fnet
            _net_float(f, fw1, fb1, fw2, fb2, o)
            sc[5] = _clip(cls + o[1], 0, NCLS - 1)
            sc[6] = _clip(pred + ((_clip(o[0], -255, 255) * s) >> CORR_UNIT), -vmax, vmax) - pred
    else:
        sc[3], sc[4], sc[5], sc[6] = cls, 0, cls, 0
    return pred


@_inline
def _count(cnt, tot, k, table, cls, sym):
    cnt[k, table, cls, sym] += INC
    tot[k, table, cls] += INC
    if tot[k, table, cls] > LIMIT:
        s = 0
        for j in range(cnt.shape[3]):
            v = (cnt[k, table, cls, j] + 1) >> 1
            cnt[k, table, cls, j] = v
            s += v
        tot[k, table, cls] = s


@_inline
def update(k, c, t, value, pred, cod, u, e2, wn, norm, ema, emas, cnt, tot, scratch, ntables):
    """Adapt every stage to the coded value of (lane k, channel c, frame t)."""
    sc = scratch[k, c]
    plpc, cls = sc[0], sc[2]
    cod[k, c, HIST + t] = value
    target = value - plpc
    for st in range(N_STAGES):
        taps = NLMS_TAPS[st]
        un = _clip(target, -U_CLIP, U_CLIP)
        err = un - sc[7 + st]
        # NLMS: w += mu * err * x / (|x|^2 + eps), in integers (the division is exact and deterministic)
        # the window slides: u[t-1] enters, u[t-1-taps] leaves (int64: u is stored as int32)
        new, old = np.int64(u[k, c, st, HIST + t - 1]), np.int64(u[k, c, st, HIST + t - 1 - taps])
        norm[k, c, st] += new * new - old * old
        g = np.int64(np.int32(_clip((err << (NLMS_SHIFT + 8 - NLMS_MU[st])) // (norm[k, c, st] + 64 + taps),
                                    -(1 << 30), 1 << 30)))
        for j in range(taps):
            step = (g * np.int64(u[k, c, st, HIST + t - 1 - j])) >> 8
            wn[k, c, st, j] = _clip(np.int64(wn[k, c, st, j]) + step, -U_CLIP, U_CLIP)
        u[k, c, st, HIST + t] = un
        target -= sc[7 + st]
    r = value - pred
    e2[k, c, RES_HIST + t] = _clip(r, -E2_CLIP, E2_CLIP)
    ema[k, c] += ((abs(r) << 4) - ema[k, c]) >> 4
    emas[k, c] += ((abs(r) << 4) - emas[k, c]) >> 7
    _count(cnt, tot, k, BASE, cls, buckets.bucket_of(buckets.zigzag(r))[0])
    _count(cnt, tot, k, NET, sc[3], buckets.bucket_of(buckets.zigzag(r - sc[4]))[0])
    if ntables > 2:
        _count(cnt, tot, k, FLOAT, sc[5], buckets.bucket_of(buckets.zigzag(r - sc[6]))[0])


@_inline
def _bits(cnt, tot, k, table, cls, u, log2):
    """Exact bits of u under count row (table, cls); log2[n] = log2(n) for every possible count."""
    b, nlow, _ = buckets.bucket_of(u)
    return nlow + log2[tot[k, table, cls]] - log2[cnt[k, table, cls, b]]


@_inline
def restore_frame(k, t, blk, cod, modes, wshift, orig):
    """Original channel values of frame t from the coded ones (inverse stereo transform)."""
    nch = cod.shape[1]
    if nch == 2:
        a = cod[k, 0, HIST + t] << wshift[k, blk, 0]
        b = cod[k, 1, HIST + t] << wshift[k, blk, 1]
        orig[k, 0, t], orig[k, 1, t] = stereo_restore(modes[k, blk], a, b)
    else:
        for c in range(nch):
            orig[k, c, t] = cod[k, c, HIST + t] << wshift[k, blk, c]


@nb.njit(cache=True, _nrt=False, parallel=True)
def model_lanes(lengths, blen, orig, cod, u, e2, wn, norm, ema, emas, cnt, tot, modes, wshift, orders, qshifts,
                coefs, vmax, net, fnet, use_float, scratch, buf_f, buf_hid, buf_o, buf_pred, costs, res, corr,
                cls_base, cls_net, log2, dump, dump_every):
    """Encoder pass 1: run every lane start to end. Adds up per block the exact bits of each option
    (costs[k, blk, BASE/NET/FLOAT]) and records per sample what pass 2 needs to replay the count
    tables: the residual without correction, the network's correction and both classes. Optionally
    dumps network inputs for training (rows: features, residual, scale). buf_*: per-lane scratch."""
    nlanes, nch = cod.shape[0], cod.shape[1]
    ntables = cnt.shape[1]
    for k in nb.prange(nlanes):
        f, hid, o, preds = buf_f[k], buf_hid[k], buf_o[k], buf_pred[k]
        for t in range(lengths[k]):
            blk = t // blen
            if t % blen == 0:
                enter_block(k, t, blk, orig, cod, modes, wshift)
            for c in range(nch):  # every channel's prediction before any update, as the decoder does
                preds[c] = predict(k, c, t, blk, cod, u, e2, wn, ema, emas, orders, qshifts, coefs, vmax, net,
                                   fnet, use_float, f, hid, o, scratch)
            for c in range(nch):
                value = _coded_value(orig[k, :, t], modes[k, blk], c, nch) >> wshift[k, blk, c]
                r = value - preds[c]
                sc = scratch[k, c]
                costs[k, blk, BASE] += _bits(cnt, tot, k, BASE, sc[2], buckets.zigzag(r), log2)
                costs[k, blk, NET] += _bits(cnt, tot, k, NET, sc[3], buckets.zigzag(r - sc[4]), log2)
                if ntables > 2:
                    costs[k, blk, FLOAT] += _bits(cnt, tot, k, FLOAT, sc[5], buckets.zigzag(r - sc[6]), log2)
                if dump.shape[0] > 0 and (t * nch + c) % dump_every == 0:
                    row = ((k * lengths[0] + t) * nch + c) // dump_every
                    if row < dump.shape[0]:
                        _features(k, c, t, (ema[k, c] >> 4) + 1, sc[2], sc[1], e2, emas, f)
                        dump[row, :N_FEATURES] = f
                        dump[row, N_FEATURES] = r
                        dump[row, N_FEATURES + 1] = (ema[k, c] >> 4) + 1
                res[k, c, t] = r
                corr[k, c, t] = sc[4]
                cls_base[k, c, t] = sc[2]
                cls_net[k, c, t] = sc[3]
                update(k, c, t, value, preds[c], cod, u, e2, wn, norm, ema, emas, cnt, tot, scratch,
                       ntables)


@nb.njit(cache=True, _nrt=False, parallel=True)
def replay_window(t0, t1, offs, lengths, cnt, tot, flags, blen, res, corr, cls_base, cls_net, sym, nlow, low, rows):
    """Encoder pass 2 for frames t0..t1: replay the count tables from pass 1's records and hand
    out the chosen option's symbols and count rows in the decoder's order (frame, lane, channel);
    offs[t - t0] is frame t's first position."""
    nlanes, nch = res.shape[0], res.shape[1]
    for k in nb.prange(nlanes):
        for t in range(t0, min(t1, lengths[k])):
            use_net = flags[k, t // blen]
            for c in range(nch):
                m = offs[t - t0] + k * nch + c
                r, cb, cn = res[k, c, t], cls_base[k, c, t], cls_net[k, c, t]
                sym[m], nlow[m], low[m] = buckets.bucket_of(buckets.zigzag(r - corr[k, c, t] if use_net else r))
                table, cls = (NET, cn) if use_net else (BASE, cb)
                for j in range(rows.shape[1]):
                    rows[m, j] = cnt[k, table, cls, j]
            for c in range(nch):
                r, cb, cn = res[k, c, t], cls_base[k, c, t], cls_net[k, c, t]
                _count(cnt, tot, k, BASE, cb, buckets.bucket_of(buckets.zigzag(r))[0])
                _count(cnt, tot, k, NET, cn, buckets.bucket_of(buckets.zigzag(r - corr[k, c, t]))[0])


@nb.njit(cache=True, _nrt=False, parallel=True)
def decode_step(t, steps, lengths, blen, orig, cod, u, e2, wn, norm, ema, emas, cnt, tot, modes, wshift, orders,
                qshifts, coefs, vmax, flags, net, fnet, scratch, buf_f, buf_hid, buf_o, preds, rows, sym, pieces, owner,
                shift, npieces, low):
    """Decoder: finish frame t-1 (its symbols and low-bit pieces are decoded: rebuild the values,
    adapt), then give the prediction and count row of every active (lane, channel) at frame t.
    Lanes are independent (the active ones are a prefix), so they are split over threads.
    -> number of positions at frame t."""
    nlanes, nch = cod.shape[0], cod.shape[1]
    if t > 0:
        for i in range(npieces):
            low[owner[i]] = 0
        for i in range(npieces):
            low[owner[i]] |= np.int64(pieces[i]) << shift[i]
    for k in nb.prange(nlanes):
        if t > 0 and t - 1 < lengths[k]:
            blk = (t - 1) // blen
            for c in range(nch):
                m = k * nch + c
                lo = low[m] if buckets.low_bits_of_bucket(sym[m]) > 0 else 0
                corr = scratch[k, c, 4] if flags[k, blk] else 0
                value = preds[m] + corr + buckets.unzigzag(buckets.value_of(sym[m], lo))
                update(k, c, t - 1, value, preds[m], cod, u, e2, wn, norm, ema, emas, cnt, tot, scratch, 2)
            restore_frame(k, t - 1, blk, cod, modes, wshift, orig)
        if t < lengths[k]:
            blk = t // blen
            if t % blen == 0:
                enter_block(k, t, blk, orig, cod, modes, wshift)
            for c in range(nch):
                m = k * nch + c
                preds[m] = predict(k, c, t, blk, cod, u, e2, wn, ema, emas, orders, qshifts, coefs, vmax, net, fnet,
                                   False, buf_f[k], buf_hid[k], buf_o[k], scratch)
                sc = scratch[k, c]
                table, cls = (NET, sc[3]) if flags[k, blk] else (BASE, sc[2])
                for j in range(rows.shape[1]):
                    rows[m, j] = cnt[k, table, cls, j]
    m = 0
    for k in range(nlanes):
        if t < lengths[k]:
            m += nch
    return m


@_jit
def low_bit_pieces(sym, m, piece_bits, sizes, owner, shift):
    """Alphabet sizes of the uniform low-bit pieces that follow the first m bucket symbols
    (pieces of at most piece_bits bits, least significant first). -> number of pieces."""
    n = 0
    for i in range(m):
        nl = buckets.low_bits_of_bucket(sym[i])
        s = 0
        while s < nl:
            width = min(piece_bits, nl - s)
            sizes[n] = 1 << width
            owner[n] = i
            shift[n] = s
            s += width
            n += 1
    return n
