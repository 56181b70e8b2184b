"""Classical image baseline: blended causal predictors + adaptive context statistics.

Per pixel and channel (everything integer, identical on both sides):
  * BASE simple predictors over the causal neighbours (MED/LOCO-I, gradient,
    W+NE-N, N+NE-NNE, N, W, NE, NW, averages, linear extrapolations); for
    later channels also the same predictors corrected by the previous
    channel's error at this pixel;
  * blended with integer weights 1/(16 + e^2), e = each predictor's recent
    error around the pixel (N, NE, NW, W, NN, WW, and for later channels the
    previous channel's error at this pixel): the idea of JPEG XL's
    self-correcting predictor;
  * a bias correction per local texture (signs of three gradients x coarse
    activity, LOCO-I's C[Q]);
  * the residual coded as a bucket symbol under adaptive counts chosen by a
    quantised activity (neighbouring final errors, the previous channel's
    error here, and the best predictor's recent error), plus uniform low bits.
Each of these was kept for what it measured on a tuning split of
images/train (see the closing note of the baseline issue).

Decoding steps many pixels at once (contract 4): the image is cut into tiles
and every tile walks the wavefront x + 2*y = t, so all pixels with the same t
in every tile of a chunk are coded in one pass and one coder call. Statistics
are shared by the tiles of a chunk and updated after each pass.
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

BASE = 12  # predictors per channel
NCLS = 29  # activity classes
INC = 32  # count increment per observation
LIMIT = 1 << 17  # halve a count row above this total
BIAS_WINDOW = 256  # halve a bias accumulator after this many observations
BIAS_DEAD = 6  # gradients within this (8-bit scale) count as flat
# activity thresholds (on an 8-bit scale) that separate the classes
THRESHOLDS = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33, 40, 49, 60, 73, 89, 108, 132, 161, 196,
                       240, 300, 380, 480, 600], dtype=np.int64)

WEIGHTS_PREFIX = "classic-image"
TILE_W = 1024
TILE_H = 128
CHUNK_PIXELS = 1 << 21  # bounds the memory of the per-pixel error maps


@nb.njit(cache=True, inline="always")
def _clamp(v, hi):
    return 0 if v < 0 else (hi if v > hi else v)


@nb.njit(cache=True)
def _base_predictions(img, y, x, c, hasN, hasW, hasNE, hasNN, hasWW, mid, out):
    """The BASE predictors of channel c at (y, x), with edge fallbacks."""
    if hasN and hasW:
        n, w, nw = img[y - 1, x, c], img[y, x - 1, c], img[y - 1, x - 1, c]
    elif hasN:
        n = img[y - 1, x, c]
        w, nw = n, n
    elif hasW:
        w = img[y, x - 1, c]
        n, nw = w, w
    else:
        n, w, nw = mid, mid, mid
    ne = img[y - 1, x + 1, c] if hasNE else n
    mx, mn = max(n, w), min(n, w)
    if nw >= mx:
        med = mn
    elif nw <= mn:
        med = mx
    else:
        med = n + w - nw
    out[0] = med
    out[1] = w + ne - n
    out[2] = n
    out[3] = w
    out[4] = (w + ne + 1) >> 1
    out[5] = n + w - nw
    out[6] = ne
    out[7] = nw
    out[8] = (n + w + 1) >> 1
    nn = img[y - 2, x, c] if hasNN else n
    nne = img[y - 2, x + 1, c] if (hasNN and hasNE) else ne
    ww = img[y, x - 2, c] if hasWW else w
    out[9] = n + ne - nne
    out[10] = 2 * w - ww
    out[11] = 2 * n - nn


# Pixels of a pass only read the state, each is computed by one thread start to
# end, so how they are split among threads never changes a result.
@nb.njit(cache=True, parallel=True)
def _predict_pass(img, c, ys, xs, tile_h, tile_w, maxv, shift, nsub,
                  perr, ferr, counts, bias_sum, bias_cnt, thresholds,
                  preds, classes, bctx, subs, acts, rows, nblk):
    """Pass A: prediction, context and pmf row of channel c for every listed pixel (nblk threads)."""
    n = ys.shape[0]
    for blk in nb.prange(nblk):
        _predict_rows(blk * n // nblk, (blk + 1) * n // nblk, img, c, ys, xs, tile_h, tile_w, maxv, shift, nsub,
                      perr, ferr, counts, bias_sum, bias_cnt, thresholds, preds, classes, bctx, subs, acts, rows)


@nb.njit(cache=True)
def _predict_rows(start, stop, img, c, ys, xs, tile_h, tile_w, maxv, shift, nsub,
                  perr, ferr, counts, bias_sum, bias_cnt, thresholds, preds, classes, bctx, subs, acts, rows):
    W = img.shape[1]
    mid = (maxv + 1) >> 1
    base = np.empty(BASE, np.int64)
    refb = np.empty(BASE, np.int64)
    if c == 0:
        nsub = BASE  # the first channel has no cross-channel predictors
    dead = BIAS_DEAD << shift if shift >= 0 else BIAS_DEAD >> -shift  # on the image's own scale
    for i in range(start, stop):
        y, x = ys[i], xs[i]
        ty0 = (y // tile_h) * tile_h
        tx0 = (x // tile_w) * tile_w
        tx1 = min(tx0 + tile_w, W)
        hasN = y > ty0
        hasW = x > tx0
        hasNE = hasN and x + 1 < tx1
        hasNN = y - 1 > ty0
        hasWW = x - 1 > tx0
        fallback = mid if c == 0 else img[y, x, c - 1]
        _base_predictions(img, y, x, c, hasN, hasW, hasNE, hasNN, hasWW, fallback, base)
        for k in range(BASE):
            subs[i, k] = base[k]
        if c > 0:
            _base_predictions(img, y, x, c - 1, hasN, hasW, hasNE, hasNN, hasWW, mid, refb)
            xr = img[y, x, c - 1]
            for k in range(BASE):
                d = xr - refb[k]
                subs[i, BASE + k] = base[k] + d
        # blend: weight ~ 1 / (1 + recent error^2) of each sub-predictor
        num = 0
        den = 0
        emin = 1 << 40
        for k in range(nsub):
            e = 0
            if hasN:
                e += perr[y - 1, x, c, k]
                if hasNE:
                    e += perr[y - 1, x + 1, c, k]
                if hasW:
                    e += perr[y - 1, x - 1, c, k] >> 1
            if hasW:
                e += perr[y, x - 1, c, k]
            if hasNN:
                e += perr[y - 2, x, c, k] >> 1
            if hasWW:
                e += perr[y, x - 2, c, k] >> 1
            if c > 0 and k < BASE:
                e += perr[y, x, c - 1, k]
            emin = min(emin, e)
            wgt = (1 << 24) // (16 + e * e)
            num += wgt * subs[i, k]
            den += wgt
        p = _clamp((num + (den >> 1)) // den, maxv)
        # activity of the neighbourhood -> context class
        a = 0
        if hasN:
            a += ferr[y - 1, x, c]
            if hasNE:
                a += ferr[y - 1, x + 1, c]
            if hasW:
                a += ferr[y - 1, x - 1, c] >> 1
        if hasW:
            a += ferr[y, x - 1, c]
        if hasNN:
            a += ferr[y - 2, x, c] >> 1
        if hasWW:
            a += ferr[y, x - 2, c] >> 1
        if c > 0:
            a += ferr[y, x, c - 1]
        a = (a + emin) >> 1
        if not hasN and not hasW:
            a = thresholds[thresholds.shape[0] // 2]
        acts[i] = a
        cls = 0
        while cls < thresholds.shape[0] and a >= thresholds[cls]:
            cls += 1
        # bias correction per local texture: signs of three gradients x coarse activity
        t = 0
        for d in (base[6] - base[2], base[2] - base[7], base[7] - base[3]):
            t = 3 * t + (0 if d < -dead else (2 if d > dead else 1))
        k = t * 8 + min(cls >> 2, 7)
        bctx[i] = k
        n = bias_cnt[c, k]
        if n > 0:
            p = _clamp(p + (2 * bias_sum[c, k] + n) // (2 * n), maxv)
        preds[i] = p
        classes[i] = cls
        for b in range(rows.shape[1]):
            rows[i, b] = counts[c, cls, b]


@nb.njit(cache=True)
def _residual_symbols(img, c, ys, xs, preds, sym, nlow, low):
    """Encoder side: the bucket symbol and low bits of each actual residual."""
    for i in range(ys.shape[0]):
        r = img[ys[i], xs[i], c] - preds[i]
        sym[i], nlow[i], low[i] = buckets.bucket_of(buckets.zigzag(r))


@nb.njit(cache=True)
def _update_pass(img, c, ys, xs, maxv, shift, nsub, sym, low, write,
                 preds, classes, bctx, subs, perr, ferr, counts, totals, bias_sum, bias_cnt, resid):
    """Pass B: write decoded values (decoder) and adapt every statistic; resid[i, c] = final residual."""
    if c == 0:
        nsub = BASE
    for i in range(ys.shape[0]):
        y, x = ys[i], xs[i]
        p = preds[i]
        if write:
            v = p + buckets.unzigzag(buckets.value_of(sym[i], low[i]))
            img[y, x, c] = v
        v = img[y, x, c]
        for k in range(nsub):
            e = abs(v - subs[i, k])
            e = e >> shift if shift >= 0 else e << -shift
            perr[y, x, c, k] = min(e, 32767)  # stored as int16
        e = v - p
        resid[i, c] = e
        ferr[y, x, c] = min(abs(e) >> shift if shift >= 0 else abs(e) << -shift, 1 << 30)
        cls = classes[i]
        k = bctx[i]
        bias_sum[c, k] += e
        bias_cnt[c, k] += 1
        if bias_cnt[c, k] >= BIAS_WINDOW:
            bias_sum[c, k] = bias_sum[c, k] // 2
            bias_cnt[c, k] = bias_cnt[c, k] // 2
        b = sym[i]
        counts[c, cls, b] += INC
        totals[c, cls] += INC
        if totals[c, cls] > LIMIT:
            t = 0
            for j in range(counts.shape[2]):
                counts[c, cls, j] = (counts[c, cls, j] + 1) >> 1
                t += counts[c, cls, j]
            totals[c, cls] = t


def thread_blocks(n: int) -> int:
    """Thread blocks for a pass over n independent rows (small passes stay on one thread)."""
    return max(1, min(nb.get_num_threads(), n // 64))


def _wavefront_order(height: int, width: int, tile_h: int, tile_w: int):
    """Pixel coordinates sorted by wavefront step, and where each step starts."""
    ys, xs = np.divmod(np.arange(height * width, dtype=np.int64), width)
    step = (xs % tile_w) + 2 * (ys % tile_h)
    order = np.argsort(step, kind="stable")
    ys, xs, step = ys[order], xs[order], step[order]
    bounds = np.searchsorted(step, np.arange(step[-1] + 2)) if len(step) else np.zeros(1, np.int64)
    return ys, xs, bounds


class _ChunkState:
    def __init__(self, img: np.ndarray, bits: int, prior: np.ndarray | None):
        h, w, c = img.shape
        self.img = img
        self.maxv = (1 << bits) - 1
        self.shift = bits - 8
        self.nsub = BASE if c == 1 else 2 * BASE
        self.perr = np.zeros((h, w, c, self.nsub), np.int16)  # errors on an 8-bit scale
        self.ferr = np.zeros((h, w, c), np.int32)
        self.counts = _initial_counts(bits, c, prior)
        self.totals = self.counts.sum(axis=2)
        self.bias_sum = np.zeros((c, 27 * 8), np.int64)
        self.bias_cnt = np.zeros((c, 27 * 8), np.int64)


def alphabet(bits: int) -> int:
    return buckets.alphabet_size(2 * ((1 << bits) - 1))


def _initial_counts(bits: int, channels: int, prior: np.ndarray | None) -> np.ndarray:
    """Counts each chunk starts from: the learned prior (8-bit images; row 0 for
    the first channel, row 1 for the others) or flat."""
    if bits == 8 and prior is not None:
        return np.stack([prior[min(c, 1)] for c in range(channels)]).astype(np.int64)
    return np.ones((channels, NCLS, alphabet(bits)), np.int64)


def _code_chunk(img: np.ndarray, bits: int, coder, decoder, tile_h: int, tile_w: int,
                prior: np.ndarray | None, observe=None, model_rows=None):
    """Run the step loop over one chunk; encode (coder) or decode in place (decoder).

    `observe(channel, ys, xs, classes, symbols, rows, low-bit counts)` sees every pass
    (learning the prior, explaining where the bits go). `model_rows(step)` lets a
    learned model replace the count rows the symbols are coded with (see StepView);
    it must only read what the decoder also has before the pass."""
    h, w, nch = img.shape
    st = _ChunkState(img, bits, prior)
    ys, xs, bounds = _wavefront_order(h, w, tile_h, tile_w)
    n_max = int(np.max(np.diff(bounds))) if len(bounds) > 1 else 0
    nbk = st.counts.shape[2]
    view = StepView(n_max, nch, st.nsub, nbk, st.maxv, st.counts, st.totals)
    sym = np.empty(n_max, np.int32)
    nlow = np.empty(n_max, np.int64)
    low = np.empty(n_max, np.int64)
    limit = decode_batch_limit() if decoder is not None else 0
    for s in range(len(bounds) - 1):
        if s % 64 == 0:
            progress.step(s / len(bounds))
        a, b = bounds[s], bounds[s + 1]
        if a == b:
            continue
        n = b - a
        sy, sx = ys[a:b], xs[a:b]
        view.n = n
        parts = sub_batches(n, limit)
        for c in range(nch):
            view.c = c
            # all predictions of the step first (they read the state as it was before the step) ...
            for p, q in parts:
                _predict_pass(img, c, sy[p:q], sx[p:q], tile_h, tile_w, st.maxv, st.shift, st.nsub, st.perr,
                              st.ferr, st.counts, st.bias_sum, st.bias_cnt, THRESHOLDS,
                              view.preds[p:q], view.classes[p:q], view.bctx[p:q], view.subs[p:q],
                              view.acts[p:q], view.rows[p:q], thread_blocks(q - p))
            rows = view.rows[:n] if model_rows is None else model_rows(view)
            if decoder is None:
                _residual_symbols(img, c, sy, sx, view.preds, sym, nlow, low)
                coder.symbols(sym[:n], rows)
                coder.low_bits(low[:n], nlow[:n])
            else:
                for p, q in parts:
                    sym[p:q] = decoder.symbols(rows[p:q])
                low_bit_counts(sym[:n], nlow)
                for p, q in parts:
                    low[p:q] = decoder.low_bits(nlow[p:q])
            if observe is not None:
                observe(c, sy, sx, view.classes[:n], sym[:n], rows, nlow[:n])
            # ... then the updates, in pixel order
            _update_pass(img, c, sy, sx, st.maxv, st.shift, st.nsub, sym, low, decoder is not None,
                         view.preds, view.classes, view.bctx, view.subs, st.perr, st.ferr, st.counts, st.totals,
                         st.bias_sum, st.bias_cnt, view.resid)


class StepView:
    """What the predict pass knows about the n pixels of one step and channel c:
    final predictions, activity, context class, sub-predictions, the count rows,
    and the residuals of the channels already coded at these pixels (resid[:, :c]);
    counts/totals are the adaptive statistics themselves ([channel, class, bucket])."""

    def __init__(self, n_max: int, nch: int, nsub: int, nbk: int, maxv: int, counts, totals):
        self.n, self.c, self.maxv = 0, 0, maxv
        self.counts, self.totals = counts, totals
        self.preds = np.empty(n_max, np.int64)
        self.classes = np.empty(n_max, np.int64)
        self.bctx = np.empty(n_max, np.int64)
        self.acts = np.empty(n_max, np.int64)
        self.subs = np.empty((n_max, nsub), np.int64)
        self.rows = np.empty((n_max, nbk), np.float64)
        self.resid = np.zeros((n_max, nch), np.int64)


class ClassicImageCodec(RunCodec):
    name = "classic"
    kind = "image"
    summary = "blended causal predictors + adaptive context statistics, learned initial statistics"

    def __init__(self, weights: str | Path | None = None, tile_h: int = TILE_H, tile_w: int = TILE_W):
        self.weights = Prior(WEIGHTS_PREFIX, (2, NCLS, alphabet(8)), weights)
        self.tile_h, self.tile_w = tile_h, tile_w

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "ClassicImageCodec":
        return ClassicImageCodec(path, self.tile_h, self.tile_w)

    @property
    def prior(self) -> np.ndarray:
        return self.weights.counts

    def _spans(self, shape, params):
        h, w = shape[0], shape[1]
        th = params["tile_h"]
        rows = max(th, (params["chunk_pixels"] // max(w, 1)) // th * th)
        return [(a, min(a + rows, h)) for a in range(0, h, rows)]

    def _params(self):
        return {"tile_h": self.tile_h, "tile_w": self.tile_w, "chunk_pixels": CHUNK_PIXELS}

    def _model_rows(self, bits: int):
        """A learned model's replacement for the count rows (see _code_chunk); the classic model has none."""
        return None

    def _run(self, coder_factory, samples, signal, observe=None, model_rows=None):
        params = self._params()
        if model_rows is None:
            model_rows = self._model_rows(signal.bits)
        chunks, bits = [], 0.0
        spans = self._spans(signal.shape, params)
        for a, b in spans:
            coder = coder_factory()
            img = np.ascontiguousarray(samples[a:b], dtype=np.int64)
            seen = None if observe is None else (lambda c, sy, *rest, a=a: observe(c, sy + a, *rest))
            with progress.within(a, b, signal.shape[0]):
                _code_chunk(img, signal.bits, coder, None, params["tile_h"], params["tile_w"], self.prior, seen,
                            model_rows)
            chunks.append(coder.finish())
            bits += coder.bits
        return params, chunks, bits

    def bits_per_dim(self, samples, signal):
        out = np.zeros(signal.shape, np.float64)

        def observe(c, sy, sx, classes, sym, rows, nlow):
            out[sy, sx, c] = symbol_bits(sym, rows) + nlow

        self._run(CostCoder, samples, signal, observe)
        return out

    def decode(self, params, chunks, signal):
        spans = self._spans(signal.shape, params)
        if len(spans) != len(chunks):
            raise ValueError("chunk count does not match the image size")
        out = np.empty(signal.shape, np.uint16 if signal.bits > 8 else np.uint8)
        for (a, b), data in zip(spans, chunks):
            img = np.zeros((b - a,) + tuple(signal.shape[1:]), np.int64)
            with progress.within(a, b, signal.shape[0]):
                _code_chunk(img, signal.bits, None, RangeDecoderStream(data), params["tile_h"], params["tile_w"],
                            self.prior, model_rows=self._model_rows(signal.bits))
            out[a:b] = img
        return out
