"""MADE (masked autoencoder for distribution estimation) as an exact image codec.

Every 4x4 patch of an image (3 channels; neuralzip.models.patch_context cuts the patches and
reads their context) is one MADE sample: an MLP whose weight matrices are masked so that the
output for the patch's value d reads only the context (the two decoded rows above and the two
decoded columns to the left of the patch) and the patch's values 0..d-1. Each hidden unit has a
degree: it sees the patch values up to it; a value's output reads the last hidden layer's units of
lower degree. The output per value is a discretized logistic mixture around the patch's
reference, coded by the patch codec (neuralzip.models.patch_codec).

The encoder knows every value and runs the whole network once per wavefront of patches. The
decoder cannot: value d is needed before the units that read it. But a unit of degree m reads
only values 0..m, so the decoder computes each unit once, when its values are known: before
value d it computes the units of degree d - 1 of every layer, then value d's output from the
units of lower degree. Zero weights contribute exactly nothing and every sum is an exact integer
(wide layers, float64: neuralzip.exact.mlp), so both sides get the same integers. The weights
file's masks are checked when it is loaded: a nonzero weight where MADE has none is refused.
"""

import numpy as np

from neuralzip.exact.mlp import FloatMLP, QuantizedMLP
from neuralzip.kernels.exact import LayerRescale
from neuralzip.models import patch_context as P
from neuralzip.models.patch_codec import PatchCodec, PatchNetwork


class MadeNetwork(PatchNetwork):
    """The exact layers (`made.*`), cut by degree for the decoder, and the float layers (`fmade.*`)."""

    model = "made"

    def load(self, z: dict) -> None:
        self.exact = QuantizedMLP(z, "made")
        self.float = FloatMLP(z, "fmade", P.FLOAT_INPUT_SCALE)
        layers = self.exact.layers
        hidden = layers[0][0].shape[1]
        if (self.exact.inputs, self.exact.outputs) != (P.INPUTS, P.DIMS * 3 * self.k_mix) or hidden < P.DIMS \
                or any(w.shape != (hidden, hidden) for w, *_ in layers[1:-1]):
            raise ValueError("the network has the wrong shape for this version of neuralzip")
        masks = P.masks(hidden, len(layers) - 1)
        masks[-1] = np.repeat(masks[-1], 3 * self.k_mix, axis=1)
        if any(np.any(w[m == 0] != 0) for (w, *_), m in zip(layers, masks)):
            raise ValueError("the network's weights are not masked (a value would read later values)")
        self.hidden = hidden
        self._cut_by_degree()

    def _cut_by_degree(self) -> None:
        """Per value d, for each hidden layer, the units of degree d - 1 (first, end), the weights
        from what they read and their rescale; and value d's columns of the output layer."""
        deg = P.degrees(self.hidden)
        ends = np.searchsorted(deg, np.arange(-1, P.DIMS), side="right")  # units of degree <= d - 1: [0, ends[d])
        starts = np.searchsorted(deg, np.arange(-1, P.DIMS), side="left")
        *hidden_layers, last = self.exact.layers
        act_max = self.exact.act_max
        self.hidden_steps = []
        for d in range(P.DIMS):
            a, e = int(starts[d]), int(ends[d])
            self.hidden_steps.append([
                (a, e, np.ascontiguousarray(w[:P.CONTEXT + d if li == 0 else e, a:e]),
                 LayerRescale(b[a:e], m[a:e], s[a:e], wide=True, last=False, act_max=act_max))
                for li, (w, b, m, s) in enumerate(hidden_layers)])
        w, b, m, s = last
        k3 = 3 * self.k_mix
        self.out_steps = [(int(ends[d]), np.ascontiguousarray(w[:ends[d], d * k3:(d + 1) * k3]),
                           LayerRescale(b[d * k3:(d + 1) * k3], m[d * k3:(d + 1) * k3], s[d * k3:(d + 1) * k3],
                                        wide=True, last=True, act_max=act_max))
                          for d in range(P.DIMS)]

    def all_heads(self, inputs: np.ndarray) -> np.ndarray:
        return self.exact.forward(inputs.astype(np.float64)).reshape(len(inputs), P.DIMS, -1)

    def float_heads(self, inputs: np.ndarray) -> np.ndarray:
        return self.float.forward(inputs.astype(np.float32) - 128).reshape(len(inputs), P.DIMS, 3, self.k_mix)

    def stepper(self, ctx: np.ndarray) -> "_MadeSteps":
        return _MadeSteps(self, ctx)


class _MadeSteps:
    """The decoder's MADE: each hidden unit computed once, when the values it reads are known."""

    def __init__(self, net: MadeNetwork, ctx: np.ndarray):
        n = len(ctx)
        self.net = net
        self.inputs = np.zeros((n, P.INPUTS), np.float64)
        self.inputs[:, :P.CONTEXT] = ctx
        self.acts = [np.zeros((n, net.hidden), np.float64) for _ in net.hidden_steps[0]]

    def heads(self, d: int) -> np.ndarray:
        n = len(self.inputs)
        below = self.inputs
        for acts, (a, e, w, rescale) in zip(self.acts, self.net.hidden_steps[d]):
            if e > a:
                out = np.empty((n, e - a), np.float64)
                rescale(below[:, :w.shape[0]] @ w, out)
                acts[:, a:e] = out
            below = acts
        e, w, rescale = self.net.out_steps[d]
        heads = np.empty((n, w.shape[1]), np.int64)
        rescale(below[:, :e] @ w, heads)
        return heads

    def feed(self, d: int, column: np.ndarray) -> None:
        self.inputs[:, P.CONTEXT + d] = column


class MadeCodec(PatchCodec):
    name = "made"
    summary = "MADE over 4x4 patches given their decoded surroundings (masked MLP, logistic mixture); 8-bit"
    weights_prefix = "made-image"
    network = MadeNetwork
