"""NADE (neural autoregressive distribution estimator) as an exact image codec.

Every 4x4 patch of an image (3 channels; neuralzip.models.patch_context cuts the patches and
reads their context) is one NADE sample. One hidden layer of H sigmoid units is shared by all
the patch's values: before value d its pre-activations are
    a_d = c + Wc . context + sum over i < d of W_i * x_i,
so each decoded value adds one row of W (NADE's weight sharing: O(H) work per value, not a
new network), and value d's head (a discretized logistic mixture around the patch's
reference, coded by neuralzip.models.patch_codec) is V_d . sigmoid(a_d) + b_d, with an output
layer of its own per value.

Exact arithmetic: the inputs are read as value - 128 (signed), the weights as int16 per hidden
unit, so every a_d is an int64 sum; its rescale to 1/64 of a unit is an integer multiply and
shift, and the sigmoid is the logistic CDF table every exact model reads
(neuralzip.exact.logistic: 1/64 steps, 24 bits), shifted to 16 bits. Each value's output
layer is a wide integer layer (neuralzip.exact.mlp). Encoder and decoder run the same steps.
"""

import numpy as np

from neuralzip.exact import logistic
from neuralzip.exact.mlp import QuantizedMLP
from neuralzip.models import patch_context as P
from neuralzip.models.patch_codec import PatchCodec, PatchNetwork

SIGMOID_SHIFT = logistic.CDF_BITS - 16  # hidden activations 0..2**16


class NadeNetwork(PatchNetwork):
    """The shared layer (SharedLayer), the output layers `nade.out<d>`, and the float copies
    (`fnade.*`) for the report."""

    model = "nade"

    def load(self, z: dict) -> None:
        self.layer = SharedLayer(z)
        self.hidden = self.layer.hidden
        self.out = [QuantizedMLP(z, f"nade.out{d}") for d in range(P.DIMS)]
        if any((o.inputs, o.outputs, len(o.layers)) != (self.hidden, 3 * self.k_mix, 1) for o in self.out):
            raise ValueError("an output layer has the wrong shape")
        self.float_w = z["fnade.w"].astype(np.float64)  # [INPUTS, H], reading (input - 128) / 64
        self.float_c = z["fnade.c"].astype(np.float64)
        self.float_v = z["fnade.v"].astype(np.float64)  # [DIMS, H, 3 * k_mix]
        self.float_vb = z["fnade.vb"].astype(np.float64)  # [DIMS, 3 * k_mix]

    def stepper(self, ctx: np.ndarray) -> "_NadeSteps":
        return _NadeSteps(self, ctx)

    def all_heads(self, inputs: np.ndarray) -> np.ndarray:
        steps = self.stepper(inputs[:, :P.CONTEXT])
        heads = np.empty((len(inputs), P.DIMS, 3 * self.k_mix), np.int64)
        for d in range(P.DIMS):
            heads[:, d] = steps.heads(d)
            steps.feed(d, inputs[:, P.CONTEXT + d])
        return heads

    def float_heads(self, inputs: np.ndarray) -> np.ndarray:
        x = (inputs.astype(np.float64) - 128) * P.FLOAT_INPUT_SCALE
        a0 = x[:, :P.CONTEXT] @ self.float_w[:P.CONTEXT] + self.float_c
        contrib = x[:, P.CONTEXT:, None] * self.float_w[None, P.CONTEXT:]
        a = a0[:, None] + np.cumsum(contrib, axis=1) - contrib  # before value d: values < d
        h = 0.5 * (1.0 + np.tanh(0.5 * a))
        out = np.matmul(h.transpose(1, 0, 2), self.float_v).transpose(1, 0, 2) + self.float_vb
        return out.reshape(len(inputs), P.DIMS, 3, self.k_mix)


class SharedLayer:
    """The exact hidden layer shared by a patch's values: `nade.w` [CONTEXT + DIMS, H] int16 (context
    rows first), `nade.b/m/s` [H] (bias in the sums' units, rescale to 1/64 of a unit), and the
    logistic CDF table as its sigmoid. Its sums for n patches are int64 [n, H]."""

    def __init__(self, z: dict):
        w = z["nade.w"]
        if w.dtype != np.int16 or w.ndim != 2 or w.shape[0] != P.INPUTS:
            raise ValueError("nade.w is not int16 [inputs, hidden]")
        self.hidden = w.shape[1]
        self.w_ctx = w[:P.CONTEXT].astype(np.int64)
        self.w_val = w[P.CONTEXT:].astype(np.int64)
        self.b, self.m, self.s = (z[f"nade.{k}"].astype(np.int64) for k in "bms")
        if any(v.shape != (self.hidden,) for v in (self.b, self.m, self.s)) or self.s.min() < 1 or self.s.max() > 40 \
                or self.m.min() < 0 or self.m.max() >= 1 << 16 or np.abs(self.b).max() >= 1 << 40:
            raise ValueError("nade.b/m/s do not fit the hidden layer")
        self.cdf = z["lut.cdf"].astype(np.int64)
        if self.cdf.shape != (2 * logistic.Z_MAX + 1,):
            raise ValueError("lut.cdf has the wrong size")

    def start(self, ctx: np.ndarray) -> np.ndarray:
        """The sums before a patch's first value: bias and context."""
        return self.b[None, :] + (ctx.astype(np.int64) - 128) @ self.w_ctx

    def add(self, sums: np.ndarray, d: int, column: np.ndarray) -> None:
        """Value d decoded (as the network reads it): its row joins the sums."""
        sums += (column.astype(np.int64) - 128)[:, None] * self.w_val[d][None, :]

    def activations(self, sums: np.ndarray) -> np.ndarray:
        """sigmoid of the sums, 0..2**16: rescaled to 1/64 of a unit, read from the CDF table."""
        z = (sums * self.m + (np.int64(1) << (self.s - 1))) >> self.s
        return self.cdf[np.clip(z, -logistic.Z_MAX, logistic.Z_MAX) + logistic.Z_MAX] >> SIGMOID_SHIFT


class _NadeSteps:
    """The shared layer's sums for n patches, one value at a time (encoder and decoder)."""

    def __init__(self, net: NadeNetwork, ctx: np.ndarray):
        self.net = net
        self.sums = net.layer.start(ctx)

    def heads(self, d: int) -> np.ndarray:
        return self.net.out[d].forward(self.net.layer.activations(self.sums).astype(np.float64))

    def feed(self, d: int, column: np.ndarray) -> None:
        self.net.layer.add(self.sums, d, column)


class NadeCodec(PatchCodec):
    name = "nade"
    summary = "NADE over 4x4 patches given their decoded surroundings (shared sigmoid layer, logistic mixture); 8-bit"
    weights_prefix = "nade-image"
    network = NadeNetwork
