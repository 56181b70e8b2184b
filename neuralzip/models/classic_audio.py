"""Classical audio baseline: per-block LPC, per-block stereo choice, adaptive statistics.

Encoder-only analysis (float is fine here, its results are stored): for each
block the stereo mode (L/R, L/S, S/R, M/S) and, per coded channel, the
always-zero low bits, the LPC order and the quantised coefficients, all chosen
from Levinson-Durbin's error estimates. These go into a small side-info area.

Everything that feeds the coder is integer: the prediction
sum(q_i * x[t-i]) >> shift, and the residual coded as a bucket symbol under
adaptive counts chosen by the running mean of recent |residual|, plus uniform
low bits. Blocks are independent (short warm-up inside each), so every block
of a chunk is stepped in lockstep: one coder call codes sample t of every
block and channel (contract 4), with the counts shared and updated per step.
"""

from pathlib import Path

import numba as nb
import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, RangeDecoderStream, symbol_bits
from neuralzip.models.base import RunCodec, decode_batch_limit, sub_batches
from neuralzip.models.prior import Prior
from neuralzip.coding.buckets import low_bit_counts

MAX_ORDER = 32
PRECISION = 15  # bits per quantised coefficient, sign included
NCLS = 80
INC = 32
LIMIT = 1 << 16
CHUNK_FRAMES = 1 << 20
MODES = ("LR", "LS", "SR", "MS")
WEIGHTS_PREFIX = "classic-audio"
ALPHABET = buckets.alphabet_size((1 << 35) - 1)  # residual buckets of 32-bit audio (side channel, overshoot)


def block_size(rate: int) -> int:
    return 4096 if rate >= 32000 else (2048 if rate >= 16000 else 1024)


@nb.njit(cache=True)
def _levinson(x, max_order):
    """-> (lpc coefficients per order (row k holds order k+1), prediction error per order)."""
    n = x.shape[0]
    w = np.empty(n)
    for i in range(n):  # Welch window
        t = (2.0 * i - (n - 1)) / (n + 1)
        w[i] = 1.0 - t * t
    xw = x * w
    r = np.zeros(max_order + 1)
    for lag in range(max_order + 1):
        s = 0.0
        for i in range(lag, n):
            s += xw[i] * xw[i - lag]
        r[lag] = s
    coefs = np.zeros((max_order, max_order))
    errs = np.zeros(max_order + 1)
    errs[0] = r[0]
    a = np.zeros(max_order)
    err = r[0]
    for k in range(max_order):
        if err <= 0.0:
            for j in range(k, max_order):
                errs[j + 1] = 0.0
                coefs[j, :k] = a[:k]
            break
        acc = r[k + 1]
        for j in range(k):
            acc -= a[j] * r[k - j]
        ref = acc / err
        prev = a.copy()
        a[k] = ref
        for j in range(k):
            a[j] = prev[j] - ref * prev[k - 1 - j]
        err *= 1.0 - ref * ref
        errs[k + 1] = err
        coefs[k, :k + 1] = a[:k + 1]
    return coefs, errs


@nb.njit(cache=True)
def _quantize(a, precision):
    cmax = 0.0
    for v in a:
        cmax = max(cmax, abs(v))
    limit = (1 << (precision - 1)) - 1
    shift = 0
    if cmax > 0:
        shift = precision - 2 - int(np.floor(np.log2(cmax)))
    shift = min(max(shift, 0), 31)
    q = np.empty(a.shape[0], np.int64)
    carry = 0.0
    for i in range(a.shape[0]):  # error feedback keeps the rounded filter close
        v = a[i] * (1 << shift) + carry
        qi = int(np.round(v))
        qi = max(-limit, min(limit, qi))
        carry = v - qi
        q[i] = qi
    return q, shift


@nb.njit(cache=True, inline="always")
def _predict(x, t, q, order, shift):
    """Integer prediction of x[t] from x[:t]; a short fixed warm-up before `order` samples."""
    if order == 0 or t == 0:
        return 0
    if t < order:
        return x[t - 1] if t == 1 else 2 * x[t - 1] - x[t - 2]
    acc = 0
    for j in range(order):
        acc += q[j] * x[t - 1 - j]
    return acc >> shift


@nb.njit(cache=True, nogil=True)
def _analyse(x, out_q):
    """Best LPC order for one coded channel of one block by Levinson-Durbin's error estimates
    (residual bits + PRECISION bits per coefficient). -> (order, shift, estimated bits); the
    quantised coefficients go to out_q."""
    n = x.shape[0]
    nonzero = False
    for v in x:
        if v != 0:
            nonzero = True
            break
    if n < 2 or not nonzero:
        return 0, 0, 0.0
    max_order = min(MAX_ORDER, n - 1)
    coefs, errs = _levinson(x.astype(np.float64), max_order)
    best_k, best = 0, 0.5 * n * np.log2(max(errs[0] / n, 1e-3))
    for k in range(1, max_order + 1):
        est = 0.5 * n * np.log2(max(errs[k] / n, 1e-3)) + k * PRECISION
        if est < best:
            best_k, best = k, est
    if best_k == 0:
        return 0, 0, best
    q, shift = _quantize(coefs[best_k - 1, :best_k], PRECISION)
    out_q[:best_k] = q
    return best_k, shift, best


@nb.njit(cache=True, inline="always")
def _wasted_bits(x):
    acc = 0
    for v in x:
        acc |= v
    if acc == 0:
        return 0
    w = 0
    while (acc >> w) & 1 == 0:
        w += 1
    return w


@nb.njit(cache=True, inline="always")
def stereo_channel(left, right, mode, c):
    """Coded channel c of a stereo pair in mode LR, LS, SR, MS (0..3); scalars or arrays."""
    if mode == 0:
        return left if c == 0 else right
    if mode == 1:
        return left if c == 0 else left - right
    if mode == 2:
        return left - right if c == 0 else right
    return (left + right) >> 1 if c == 0 else left - right


@nb.njit(cache=True, inline="always")
def stereo_restore(mode, a, b):
    """Inverse of stereo_channel: (left, right) from the coded pair (a, b); scalars or arrays."""
    if mode == 0:
        return a, b
    if mode == 1:
        return a, a - b
    if mode == 2:
        return a + b, b
    total = 2 * a + (b & 1)  # MS: a = mid, b = side
    return (total + b) >> 1, (total - b) >> 1


@nb.njit(cache=True, parallel=True)
def plan_blocks(samples, starts, lengths, modes, shifts, orders, qshifts, coefs, coded):
    """The encoder's per-block analysis, run over many blocks at once: for every block b the stereo
    mode (L/R, L/S, S/R, M/S by Levinson-Durbin's error estimates), and per coded channel c the
    always-zero low bits, LPC order, shift and quantised coefficients -> modes[b],
    shifts/orders/qshifts/coefs[b, c]; coded[b, c, :n] (if coded has blocks) gets the coded signal."""
    nch = samples.shape[1]
    for b in nb.prange(starts.shape[0]):
        block = samples[starts[b]:starts[b] + lengths[b]]
        if lengths[b] == 0:
            continue
        mode = 0
        if nch == 2:
            left = block[:, 0].astype(np.int64)
            right = block[:, 1].astype(np.int64)
            sigs = (left, right, stereo_channel(left, right, 2, 0), stereo_channel(left, right, 3, 0))  # L R S M
            est = np.zeros(4)
            scratch = np.zeros(MAX_ORDER, np.int64)
            for i in range(4):
                x = sigs[i] >> _wasted_bits(sigs[i])
                est[i] = _analyse(x, scratch)[2]
            # modes LR, LS, SR, MS as pairs of (L, R, S, M) = (0, 1, 2, 3)
            cost = (est[0] + est[1], est[0] + est[2], est[2] + est[1], est[3] + est[2])
            best = 0
            for m in range(1, 4):
                if cost[m] < cost[best]:
                    best = m
            mode = best
        modes[b] = mode
        for c in range(nch):
            x = block[:, c].astype(np.int64)
            if nch == 2:
                x = stereo_channel(block[:, 0].astype(np.int64), block[:, 1].astype(np.int64), mode, c)
            w = _wasted_bits(x)
            shifts[b, c] = w
            orders[b, c], qshifts[b, c], _ = _analyse(x >> w, coefs[b, c])
            if coded.shape[0] > 0:
                coded[b, c, :lengths[b]] = x >> w


def pack_plan_arrays(modes, shifts, orders, qshifts, coefs) -> bytes:
    """The side information that stores plan_blocks' results (read back by _unpack_plans)."""
    out = []
    for b in range(len(modes)):
        out.append(bytes([modes[b]]))
        for c in range(shifts.shape[1]):
            out.append(bytes([shifts[b, c], orders[b, c], qshifts[b, c]]))
            out.append(np.asarray(coefs[b, c, :orders[b, c]], "<i2").tobytes())
    return b"".join(out)


class _BlockPlan:
    """Per block: stereo mode, and per coded channel the wasted bits, order, shift, coefs."""

    def __init__(self, mode, shifts, orders, qshifts, coefs):
        self.mode, self.shifts, self.orders, self.qshifts, self.coefs = mode, shifts, orders, qshifts, coefs


def _plans_from_arrays(modes, shifts, orders, qshifts, coefs) -> list:
    return [_BlockPlan(int(modes[b]), list(shifts[b]), list(orders[b]), list(qshifts[b]),
                       [coefs[b, c, :orders[b, c]] for c in range(shifts.shape[1])]) for b in range(len(modes))]


def _unpack_plans(data: bytes, nblocks: int, nch: int):
    plans, pos = [], 0
    for _ in range(nblocks):
        mode = data[pos]
        pos += 1
        shifts, orders, qshifts, coefs = [], [], [], []
        for _c in range(nch):
            w, order, qs = data[pos], data[pos + 1], data[pos + 2]
            pos += 3
            if order > MAX_ORDER or mode >= len(MODES) or qs > 31:
                raise ValueError("corrupt side information")
            q = np.frombuffer(data, "<i2", order, pos).astype(np.int64)
            pos += 2 * order
            shifts.append(w), orders.append(order), qshifts.append(qs), coefs.append(q)
        plans.append(_BlockPlan(mode, shifts, orders, qshifts, coefs))
    if pos != len(data):
        raise ValueError("corrupt side information")
    return plans


@nb.njit(cache=True, inline="always")
def scale_class(q, ncls):
    """Class of a 16x running mean of |residual|: two classes per octave, at most ncls - 1."""
    bl = 0
    v = q
    while v > 0:
        v >>= 1
        bl += 1
    cls = 0 if bl == 0 else 2 * bl - 1 + ((q >> (bl - 2)) & 1 if bl >= 2 else 0)
    return min(cls, ncls - 1)


@nb.njit(cache=True)
def _context_pass(t, sig, lengths, coefs, orders, qshifts, ema, counts, preds, classes, rows):
    """Pass A for step t: prediction, context class and pmf row of every (block, channel)."""
    m = 0
    for k in range(sig.shape[0]):
        if t >= lengths[k]:
            continue
        for c in range(sig.shape[1]):
            preds[m] = _predict(sig[k, c], t, coefs[k, c], orders[k, c], qshifts[k, c])
            cls = scale_class(ema[k, c], NCLS)
            classes[m] = cls
            for b in range(rows.shape[1]):
                rows[m, b] = counts[cls, b]
            m += 1
    return m


@nb.njit(cache=True)
def _symbols_pass(t, sig, lengths, preds, sym, nlow, low):
    m = 0
    for k in range(sig.shape[0]):
        if t >= lengths[k]:
            continue
        for c in range(sig.shape[1]):
            sym[m], nlow[m], low[m] = buckets.bucket_of(buckets.zigzag(sig[k, c, t] - preds[m]))
            m += 1


@nb.njit(cache=True)
def _update_pass(t, sig, lengths, write, preds, classes, sym, low, ema, counts, totals):
    m = 0
    for k in range(sig.shape[0]):
        if t >= lengths[k]:
            continue
        for c in range(sig.shape[1]):
            if write:
                sig[k, c, t] = preds[m] + buckets.unzigzag(buckets.value_of(sym[m], low[m]))
            r = abs(sig[k, c, t] - preds[m])
            ema[k, c] += ((r << 4) - ema[k, c]) >> 4
            cls, b = classes[m], sym[m]
            counts[cls, b] += INC
            totals[cls] += INC
            if totals[cls] > LIMIT:
                s = 0
                for j in range(counts.shape[1]):
                    counts[cls, j] = (counts[cls, j] + 1) >> 1
                    s += counts[cls, j]
                totals[cls] = s
            m += 1


def _code_residuals(sig, lengths, plans, bits, prior, coder, decoder, observe=None):
    """Lockstep over all blocks of a chunk: encode sig, or decode into it.
    `observe(t, classes, symbols, count rows, low-bit counts)` sees every step
    (learning the prior, explaining where the bits go)."""
    nblk, nch, blen = sig.shape
    coefs = np.zeros((nblk, nch, MAX_ORDER), np.int64)
    orders = np.zeros((nblk, nch), np.int64)
    qshifts = np.zeros((nblk, nch), np.int64)
    for k, p in enumerate(plans):
        for c in range(nch):
            orders[k, c], qshifts[k, c] = p.orders[c], p.qshifts[c]
            coefs[k, c, :p.orders[c]] = p.coefs[c]
    nbk = buckets.alphabet_size((1 << (bits + 3)) - 1)
    counts = prior[:, :nbk].copy()  # buckets are absolute magnitudes: one prior fits every bit depth
    totals = counts.sum(axis=1)
    ema = np.full((nblk, nch), 16 << 4, np.int64)
    width = nblk * nch
    preds = np.empty(width, np.int64)
    classes = np.empty(width, np.int64)
    rows = np.empty((width, nbk), np.float64)
    sym = np.empty(width, np.int32)
    nlow = np.empty(width, np.int64)
    low = np.empty(width, np.int64)
    limit = decode_batch_limit() if decoder is not None else 0
    for t in range(blen):
        if t % 256 == 0:
            progress.step(t / blen)
        m = _context_pass(t, sig, lengths, coefs, orders, qshifts, ema, counts, preds, classes, rows)
        if decoder is None:
            _symbols_pass(t, sig, lengths, preds, sym, nlow, low)
            coder.symbols(sym[:m], rows[:m])
            coder.low_bits(low[:m], nlow[:m])
            if observe is not None:
                observe(t, classes[:m], sym[:m], rows[:m], nlow[:m])
        else:
            parts = sub_batches(m, limit)
            for p, q in parts:
                sym[p:q] = decoder.symbols(rows[p:q])
            low_bit_counts(sym[:m], nlow)
            for p, q in parts:
                low[p:q] = decoder.low_bits(nlow[p:q])
        _update_pass(t, sig, lengths, decoder is not None, preds, classes, sym, low, ema, counts, totals)


def _in_frames(observe, starts: np.ndarray, lengths: np.ndarray):
    """Turn _code_residuals' per-step view into frame indices for `observe` (None stays None)."""
    if observe is None:
        return None

    def per_step(t, classes, sym, rows, nlow):
        active = starts[lengths > t]  # the blocks still running at step t, in coding order
        observe(active + t, classes, sym, rows, nlow)

    return per_step


class ClassicAudioCodec(RunCodec):
    name = "classic"
    kind = "audio"
    summary = "per-block LPC + stereo choice + adaptive residual statistics, learned initial statistics"

    def __init__(self, weights: str | Path | None = None):
        self.weights = Prior(WEIGHTS_PREFIX, (NCLS, ALPHABET), weights)

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "ClassicAudioCodec":
        return ClassicAudioCodec(path)

    @property
    def prior(self) -> np.ndarray:
        return self.weights.counts

    def _layout(self, frames: int, blen: int):
        """Chunks as (start, end, block starts, block lengths): each chunk cut into blocks of blen frames."""
        per = max(blen, CHUNK_FRAMES // blen * blen)
        spans = [(a, min(a + per, frames)) for a in range(0, frames, per)] or [(0, 0)]
        return [(a, b, np.arange(a, b, blen), np.array([min(blen, b - s) for s in range(a, b, blen)], np.int64))
                for a, b in spans]

    def _run(self, coder_factory, samples, signal, observe=None):
        blen = block_size(signal.rate)
        chunks, bits = [], 0.0
        nch = samples.shape[1]
        for a, b, starts, lengths in self._layout(samples.shape[0], blen):
            sig = np.zeros((len(starts), nch, blen), np.int64)
            arrays = (np.zeros(len(starts), np.int64), np.zeros((len(starts), nch), np.int64),
                      np.zeros((len(starts), nch), np.int64), np.zeros((len(starts), nch), np.int64),
                      np.zeros((len(starts), nch, MAX_ORDER), np.int64))
            plan_blocks(np.ascontiguousarray(samples, np.int64), starts, lengths, *arrays, sig)
            plans = _plans_from_arrays(*arrays)
            coder = coder_factory()
            with progress.within(a, b, samples.shape[0]):
                _code_residuals(sig, lengths, plans, signal.bits, self.prior, coder, None,
                                _in_frames(observe, starts, lengths))
            side = pack_plan_arrays(*arrays)
            chunks.append(len(side).to_bytes(4, "little") + side + coder.finish())
            bits += coder.bits + 8 * (4 + len(side))
        return {"block": blen}, chunks, bits

    def bits_per_dim(self, samples, signal):
        out = np.zeros(signal.shape, np.float64)

        def observe(frames, classes, sym, rows, nlow):
            out[frames] = (symbol_bits(sym, rows) + nlow).reshape(len(frames), -1)

        self._run(CostCoder, samples, signal, observe)
        return out

    def decode(self, params, chunks, signal):
        frames, nch = signal.shape
        blen = int(params["block"])
        layout = self._layout(frames, blen)
        if len(layout) != len(chunks):
            raise ValueError("chunk count does not match the recording length")
        out = np.zeros(signal.shape, np.int32)
        for (a, b, starts, lengths), data in zip(layout, chunks):
            side_len = int.from_bytes(data[:4], "little")
            plans = _unpack_plans(data[4:4 + side_len], len(starts), nch)
            sig = np.zeros((len(starts), nch, blen), np.int64)
            with progress.within(a, b, frames):
                _code_residuals(sig, lengths, plans, signal.bits, self.prior, None,
                                RangeDecoderStream(data[4 + side_len:]))
            for k, s in enumerate(starts):
                n = lengths[k]
                p = plans[k]
                chans = [sig[k, c, :n] << p.shifts[c] for c in range(nch)]
                if nch == 2:
                    chans = stereo_restore(p.mode, chans[0], chans[1])
                for c in range(nch):
                    out[s:s + n, c] = chans[c]
        return out
