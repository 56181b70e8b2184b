"""The codec of the patch-autoregressive image models (made, nade): what they share.

A model is a network over one patch given its context (neuralzip.models.patch_context) that
gives, for each of the patch's values in order, a discretized logistic mixture around the
patch's reference. This module turns those heads into integer pmfs over residual buckets
(neuralzip.exact.logistic), codes the patches wavefront by wavefront with a range coder, and
is the Codec the CLI sees. A network (a PatchNetwork) supplies:
- `all_heads(inputs)`: the encoder's heads of every value, [n, DIMS, 3 * k_mix] int64, from the
  patches' full inputs (it knows every value);
- `stepper(ctx)`: the decoder's state for n patches with only their context known, with
  `heads(d)` -> [n, 3 * k_mix] for value d, and `feed(d, column)` once value d is decoded;
- `float_heads(inputs)`: the float (training) network's heads, [n, DIMS, 3, k_mix] as
  (mean relative to the reference, log-scale, logit): the report's nll_float_bits only.
The exact heads must be integers that both sides compute alike; the tests check that each
model's stepper gives its all_heads.

Images that are not 8-bit are coded by the classic model.
"""

import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, RangeDecoderStream, RangeEncoderStream, symbol_bits
from neuralzip.errors import ContainerError
from neuralzip.models import patch_context as P
from neuralzip.models.base import Encoded
from neuralzip.models.learned_image import LearnedImageCodec
from neuralzip.models.mixture_network import MAXV, MixtureNetwork, mixture_probs


class PatchNetwork(MixtureNetwork):
    """A patch model's network; subclasses load it and give all_heads, stepper and float_heads."""

    def float_bits(self, inputs: np.ndarray, refs: np.ndarray, values: np.ndarray, coded: np.ndarray) -> float:
        """-log2 p of the coded values under the float (training) network (report only)."""
        out = self.float_heads(inputs)
        mu = out[:, :, 0] + np.tile(refs, P.PIXELS)[:, :, None]
        p = mixture_probs(mu, out[:, :, 1], out[:, :, 2], values)
        return float(-np.sum(np.log2(np.maximum(p[coded], 1e-300))))


class _Tally:
    """The exact and float model's bits, and (for bits_per_dim) the exact bits of every patch value."""

    def __init__(self, n_patches: int = 0):
        self.exact = 0.0
        self.float = 0.0
        self.per_value = np.zeros((n_patches, P.DIMS))


def encode_wave(net: PatchNetwork, grid: P.Grid, x: np.ndarray, patches: np.ndarray, enc, tally: _Tally) -> None:
    """Code one wavefront's patches of the known image x, value by value in the decoder's order."""
    if not len(patches):  # a wavefront of a one-column image has patches every other step only
        return
    inputs, refs, values = P.inputs(grid, x, patches)
    heads = net.all_heads(inputs)
    coded = grid.coded[patches]
    tally.float += net.float_bits(inputs, refs, values, coded)
    for d in range(P.DIMS):
        sel = np.flatnonzero(coded[:, d])
        rows, preds = net.rows(heads[sel, d], 16 * refs[sel, d % P.CHANNELS])
        sym, nlow, low = buckets.buckets_of(buckets.zigzag_array(values[sel, d] - preds))
        enc.symbols(sym, rows)
        enc.low_bits(low, nlow)
        bits = symbol_bits(sym, rows) + nlow
        tally.exact += float(np.sum(bits))
        if len(tally.per_value):
            tally.per_value[patches[sel], d] = bits


def decode_wave(net: PatchNetwork, grid: P.Grid, x: np.ndarray, patches: np.ndarray, dec) -> None:
    """Decode one wavefront's patches into x, value by value."""
    n = len(patches)
    if not n:
        return
    ctx, refs = grid.context(x, patches)
    state = net.stepper(ctx)
    values = np.zeros((n, P.DIMS), np.int64)
    sources = grid.sources[patches]
    coded = grid.coded[patches]
    for d in range(P.DIMS):
        heads = state.heads(d)
        sel = np.flatnonzero(coded[:, d])
        c = d % P.CHANNELS
        rows, preds = net.rows(heads[sel], 16 * refs[sel, c])
        sym = dec.symbols(rows)
        vals = preds + buckets.unzigzag_array(buckets.values_of(sym, dec))
        if len(vals) and (vals.min() < 0 or vals.max() > MAXV):
            raise ContainerError("corrupt payload: a decoded value is out of range")
        col = values[np.arange(n), sources[:, d]]  # copies (padding, repeated channels)
        col[sel] = vals
        values[:, d] = col
        state.feed(d, P.relative_column(col, refs[:, c]))
    grid.store(x, patches, values)


class PatchCodec(LearnedImageCodec):
    """A patch-autoregressive image model as a codec: `network` is its PatchNetwork class."""

    network = PatchNetwork

    def _code(self, samples, enc, tally: _Tally) -> None:
        grid = P.Grid(samples.shape)
        x, _ = P.planes(samples)
        for t in range(grid.n_waves):
            encode_wave(self.net, grid, x, grid.wave_patches(t), enc, tally)
            progress.step((t + 1) / grid.n_waves)

    def encode(self, samples, signal):
        if signal.bits != 8:
            return self.encode_fallback(samples, signal)
        enc, tally = RangeEncoderStream(), _Tally()
        self._code(samples, enc, tally)
        return Encoded({}, [enc.finish()], tally.exact, tally.float)

    def decode_memory(self, params, signal):
        """The padded planes, one wavefront's inputs and activations, the networks."""
        rest = self.fallback_params(params)
        if rest is not None:
            return self._fallback.decode_memory(rest, signal)
        h, w, c = signal.shape
        planes = (-(-h // P.PATCH) * P.PATCH) * (-(-w // P.PATCH) * P.PATCH) * 3 * -(-c // 3)
        wave = -(-w // P.PATCH) * -(-c // 3)
        return 2 * planes + wave * 64 * 1024 + (64 << 20)

    def decode(self, params, chunks, signal):
        rest = self.fallback_params(params)
        if rest is not None:
            return self._fallback.decode(rest, chunks, signal)
        grid = P.Grid(signal.shape)
        x = grid.empty_planes()
        dec = RangeDecoderStream(chunks[0])
        for t in range(grid.n_waves):
            decode_wave(self.net, grid, x, grid.wave_patches(t), dec)
            progress.step((t + 1) / grid.n_waves)
        return P.join_planes(x, signal.shape)

    def bits_per_dim(self, samples, signal):
        if signal.bits != 8:
            return self._fallback.bits_per_dim(samples, signal)
        grid = P.Grid(samples.shape)
        tally = _Tally(len(grid))
        self._code(samples, CostCoder(), tally)
        planes = grid.empty_planes(np.float64)
        grid.store(planes, np.arange(len(grid)), tally.per_value)
        return P.join_planes(planes, samples.shape)
