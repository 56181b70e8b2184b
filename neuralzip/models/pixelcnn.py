"""Learned image model (PixelCNN family): a causal context network with a
discretized logistic mixture head, on top of the classic model's state.

For every pixel and channel, in the classic model's wavefront order, a small
network reads only already-decoded information: the classic sub-predictions
around the pixel (its neighbours and their linear extrapolations, and for later
channels the same corrected by the earlier channel's error), the local
activity, the blended prediction and the residuals of the channels already
coded at this pixel (so each channel gets its own mixture, conditioned on the
earlier channels' values). It outputs a mixture of K logistics over the
residual; the mixture is turned into an integer pmf over residual buckets from
shipped lookup tables, mixed with the classic adaptive counts (the per-image
adaptation), and coded. Everything on that path is exact integer arithmetic
(neuralzip.exact). Images that are not 8-bit are coded by the counts alone,
exactly as the classic model codes them.

One network call per wavefront step and channel covers every pixel of that step
in every tile of the chunk (contract 4).
"""

import math
from pathlib import Path

import numba as nb
import numpy as np

from neuralzip import weightstore
from neuralzip.coding.stream import CostCoder, TeeCoder
from neuralzip.errors import InputError
from neuralzip.exact import logistic
from neuralzip.exact.mlp import FloatMLP, QuantizedMLP
from neuralzip.models import classic_image
from neuralzip.models.base import Encoded
from neuralzip.models.prior import Prior
from neuralzip.models.classic_image import BASE, ClassicImageCodec, thread_blocks

WEIGHTS_PREFIX = "pixelcnn-image"
FEATURE_CLIP = 255
MIX_BITS = 4  # weight of the network against the adaptive counts, in 1/16
N_FEATURES = (BASE + 2, 2 * BASE + 4)  # first channel, later channels
FLOAT_INPUT_SCALE = 1 / 32  # the float network reads features / 32
LOG_SCALE_MAX = logistic.LOG_SCALE_MIN + (logistic.N_SCALES - 1) / logistic.LOG_SCALE_STEPS


@nb.njit(cache=True, inline="always")
def _clip(v, lim):
    return -lim if v < -lim else (lim if v > lim else v)


@nb.njit(cache=True)
def features(n, c, preds, acts, subs, resid, x):
    """The network's integer inputs (see N_FEATURES) for the n pixels of a step, channel c,
    as integer-valued float32 rows."""
    nsub = BASE if c == 0 else 2 * BASE
    for i in range(n):
        p = preds[i]
        for k in range(nsub):
            x[i, k] = _clip(subs[i, k] - p, FEATURE_CLIP)
        x[i, nsub] = min(acts[i], FEATURE_CLIP)
        x[i, nsub + 1] = p - 128
        if c > 0:
            x[i, nsub + 2] = _clip(resid[i, c - 1], FEATURE_CLIP)
            x[i, nsub + 3] = _clip(resid[i, c - 2], FEATURE_CLIP) if c > 1 else 0


# Rows are independent and each is computed by one thread start to end, so how
# the rows are split among threads never changes a result.
@nb.njit(cache=True, parallel=True)
def step_rows(n, preds, maxv, classes, counts, totals, heads, k_mix, cdf, inv, expt, bounds, spans, mix_w, nblk,
              out):
    """Integer pmf rows of one step: each pixel's mixture (heads[i]) mixed with the count row of
    its context class (counts[classes[i]], total totals[classes[i]])."""
    for blk in nb.prange(nblk):
        row = np.zeros(out.shape[1], np.int64)
        cj = np.zeros(bounds.shape[0], np.int64)
        one = 1 << MIX_BITS
        for i in range(blk * n // nblk, (blk + 1) * n // nblk):
            total = logistic.mixture_row(preds[i], maxv, heads[i], k_mix, cdf, inv, expt, bounds, spans, cj, row)
            cls = classes[i]
            # the counts rescaled to the mixture's total (one division per row)
            ratio = (total << 16) // totals[cls]  # total < 2**42 (k_mix <= 8): no overflow
            for b in range(row.shape[0]):
                cn = (counts[cls, b] * ratio) >> 16
                out[i, b] = np.float64(((mix_w * row[b] + (one - mix_w) * cn) >> MIX_BITS) + 1)


@nb.njit(cache=True, parallel=True)
def float_bits(preds, maxv, csym, ctot, sym, heads, k_mix, bounds, spans, mix_w, out):
    """-log2 p of each coded bucket under the float model (float network outputs `heads`, true
    logistic CDF, the same mixing with the counts: csym = the bucket's count, ctot = the row's
    total): the report's nll_float_bits, never used for coding."""
    for i in nb.prange(preds.shape[0]):
        h = heads[i]
        p = preds[i]
        b = sym[i]
        lmax = h[2 * k_mix]
        for k in range(1, k_mix):
            lmax = max(lmax, h[2 * k_mix + k])
        wsum = 0.0
        mass = 0.0
        for k in range(k_mix):
            wk = math.exp(h[2 * k_mix + k] - lmax)
            wsum += wk
            mu = h[k]
            ls = min(max(h[k_mix + k], logistic.LOG_SCALE_MIN), LOG_SCALE_MAX)
            inv_s = math.exp(-ls)
            m = 0.0
            for part in range(2):
                a, e = bounds[spans[b, 2 * part]], bounds[spans[b, 2 * part + 1]]
                if e <= a:
                    continue
                hi = 1.0 if e >= maxv - p + 1 else 1.0 / (1.0 + math.exp(-((e - 0.5) - mu) * inv_s))
                lo = 0.0 if a <= -p else 1.0 / (1.0 + math.exp(-((a - 0.5) - mu) * inv_s))
                m += hi - lo
            mass += wk * m
        w = mix_w / (1 << MIX_BITS)
        q = w * mass / wsum + (1 - w) * csym[i] / ctot[i]
        out[i] = -math.log2(max(q, 1e-300))


class _FloatTally:
    """Adds up the float model's bits. Only the encoder needs them and it knows every value, so
    the float network runs on large batches of recorded steps, not once per step."""

    FLUSH_ROWS = 1 << 15

    def __init__(self, net: "_Network", bounds: np.ndarray, spans: np.ndarray, maxv: int):
        self.net, self.bounds, self.spans, self.maxv = net, bounds, spans, maxv
        self.pending = ([], [])
        self.bits = 0.0

    def add(self, group: int, x, preds, sym, counts_rows):
        n = len(sym)
        csym = counts_rows[np.arange(n), sym]
        self.pending[group].append((x.copy(), preds.copy(), sym.copy(), csym, counts_rows.sum(axis=1)))
        if sum(len(p[2]) for p in self.pending[group]) >= self.FLUSH_ROWS:
            self.flush(group)

    def flush(self, group: int):
        parts = self.pending[group]
        if not parts:
            return
        x, preds, sym, csym, ctot = (np.concatenate(col) for col in zip(*parts))
        parts.clear()
        heads = self.net.float_nets[group].forward(x)
        out = np.empty(len(sym))
        float_bits(preds, self.maxv, csym, ctot, sym, heads, self.net.k_mix, self.bounds, self.spans,
                   self.net.mix_w, out)
        self.bits += float(out.sum())

    def total(self) -> float:
        for group in range(len(self.pending)):
            self.flush(group)
        return self.bits


class _Network:
    """The shipped (or user's) weights: quantized and float nets per channel group, tables."""

    def __init__(self, path: Path):
        z = weightstore.load(path)
        try:
            self.k_mix = int(z["k_mix"])
            self.mix_w = int(z["mix_w"])
            self.nets = [QuantizedMLP(z, f"net{g}") for g in range(2)]
            self.float_nets = [FloatMLP(z, f"float{g}", FLOAT_INPUT_SCALE) for g in range(2)]
            self.cdf, self.inv, self.exp = (z[k].astype(np.int64) for k in ("lut.cdf", "lut.inv", "lut.exp"))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a weights file for the pixelcnn model ({exc})") from None
        for g, net in enumerate(self.nets):
            if net.inputs != N_FEATURES[g] or net.outputs != 3 * self.k_mix or not 1 <= self.k_mix <= 8:
                raise InputError(f"{path}: network {g} has the wrong shape for this version of neuralzip")


class PixelCNNCodec(ClassicImageCodec):
    name = "pixelcnn"
    kind = "image"
    summary = "causal context network, discretized logistic mixture, mixed with adaptive counts (8-bit)"

    def __init__(self, weights: str | Path | None = None, tile_h: int = classic_image.TILE_H,
                 tile_w: int = classic_image.TILE_W):
        # the file's "counts" (the classic prior), its path and hash are handled as for classic
        super().__init__(None, tile_h, tile_w)
        self.weights = Prior(WEIGHTS_PREFIX, self.weights.shape, weights)
        self._net = None

    @property
    def net(self) -> _Network:
        if self._net is None:
            self._net = _Network(self.weights.path)
        return self._net

    def with_weights(self, path) -> "PixelCNNCodec":
        return PixelCNNCodec(path, self.tile_h, self.tile_w)

    def _model_rows(self, bits):
        """The hook that replaces the classic count rows (8-bit images only)."""
        if bits != 8:
            return None
        net = self.net
        bounds, spans = logistic.bucket_intervals(self.prior.shape[2])
        buf = {}

        def model_rows(view):
            n, c = view.n, view.c
            if "rows" not in buf:
                buf["rows"] = np.empty_like(view.rows)
                buf["x"] = [np.zeros((view.rows.shape[0], f), np.float32) for f in N_FEATURES]
            x = buf["x"][min(c, 1)][:n]
            features(n, c, view.preds, view.acts, view.subs, view.resid, x)
            model_rows.x = x  # for the float-model observer of the same run
            heads = net.nets[min(c, 1)].forward(x)
            rows = buf["rows"]
            step_rows(n, view.preds, view.maxv, view.classes, view.counts[c], view.totals[c], heads, net.k_mix,
                      net.cdf, net.inv, net.exp, bounds, spans, net.mix_w, thread_blocks(n), rows)
            model_rows.view = view
            return rows[:n]

        return model_rows

    def _run_both(self, coder_factory, samples, signal):
        """-> (params, chunks, exact-model bits, float-model bits). Without the network (not 8-bit)
        the float model is the exact one."""
        model_rows = self._model_rows(signal.bits)
        if model_rows is None:
            params, chunks, bits = self._run(coder_factory, samples, signal)
            return params, chunks, bits, bits
        bounds, spans = logistic.bucket_intervals(self.prior.shape[2])
        tally = _FloatTally(self.net, bounds, spans, (1 << signal.bits) - 1)
        low_bits = [0.0]

        def observe(c, sy, sx, classes, sym, rows, nlow):
            view = model_rows.view
            tally.add(min(c, 1), model_rows.x, view.preds[:len(sym)], sym, view.rows[:len(sym)])
            low_bits[0] += float(np.sum(nlow))

        params, chunks, bits = self._run(coder_factory, samples, signal, observe, model_rows)
        return params, chunks, bits, tally.total() + low_bits[0]

    def encode(self, samples, signal):
        params, chunks, bits, float_bits_total = self._run_both(TeeCoder, samples, signal)
        return Encoded(params, chunks, bits, float_bits_total)

    def likelihood(self, samples, signal):
        _, _, bits, float_bits_total = self._run_both(CostCoder, samples, signal)
        return float_bits_total, bits
