"""Train the NADE image model: `neuralzip train nade DIR -o weights` (neuralzip.train.patch
has the data, the loop and the recipe).

The network: one hidden layer of sigmoid units shared by all values of a patch, value d's
pre-activations summing the context's and the values before d's rows of one weight matrix
(an exclusive cumulative sum), and an output layer per value. Quantization: int16 weights per
hidden unit reading value - 128, an integer rescale to the sigmoid table's 1/64 steps, and
each value's output layer as a wide integer layer over the 16-bit activations
(train.quantize.quantize_mlp); the float weights are kept for the report's nll_float_bits.
"""

import numpy as np

from neuralzip.exact import logistic
from neuralzip.exact.mlp import WIDE_WEIGHT_MAX
from neuralzip.models import nade as model
from neuralzip.models import patch_context as P
from neuralzip.train.image import _torch
from neuralzip.train.patch import head_units
from neuralzip.train.quantize import multiplier, quantize_mlp

NAME = "nade"
VERSION = 1
CODEC = model.NadeCodec


def build_net(k_mix: int, hidden: int):
    torch = _torch()
    nn = torch.nn

    class Nade(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(P.INPUTS, hidden) / np.sqrt(P.INPUTS))
            self.c = nn.Parameter(torch.zeros(hidden))
            self.v = nn.Parameter(torch.randn(P.DIMS, hidden, 3 * k_mix) / np.sqrt(hidden))
            self.vb = nn.Parameter(torch.zeros(P.DIMS, 3 * k_mix))

        def forward(self, x):  # x: (input - 128) / 64, [batch, INPUTS]
            a0 = x[:, :P.CONTEXT] @ self.w[:P.CONTEXT] + self.c
            contrib = x[:, P.CONTEXT:, None] * self.w[None, P.CONTEXT:]
            a = a0[:, None] + torch.cumsum(contrib, dim=1) - contrib  # value d sees values < d
            out = torch.einsum("bdh,dhk->bdk", torch.sigmoid(a), self.v) + self.vb
            return out.reshape(len(x), -1)

    return Nade()


def quantize(net, pool: np.ndarray, k_mix: int, seed: int) -> dict:
    torch = _torch()
    w = net.w.detach().numpy().astype(np.float64) * P.FLOAT_INPUT_SCALE  # per unit of (input - 128)
    c = net.c.detach().numpy().astype(np.float64)
    unit = np.maximum(np.abs(w).max(axis=0), 1e-12) / WIDE_WEIGHT_MAX
    m, s = multiplier(unit * 64)  # sums -> 1/64 of a unit, the sigmoid table's steps
    arrays = {"nade.w": np.round(w / unit).astype(np.int16), "nade.b": np.round(c / unit).astype(np.int64),
              "nade.m": m, "nade.s": s, "fnade.w": net.w.detach().numpy().astype(np.float32),
              "fnade.c": c.astype(np.float32), "fnade.v": net.v.detach().numpy().astype(np.float32),
              "fnade.vb": net.vb.detach().numpy().astype(np.float32)}
    # calibrate each value's output layer on the exact hidden activations of training patches
    rng = np.random.default_rng(seed)
    sample = pool[rng.integers(0, len(pool), 20_000), :P.INPUTS].astype(np.int64)
    layer = model.SharedLayer({**arrays, **logistic.tables()})
    sums = layer.start(sample[:, :P.CONTEXT])
    scale, offset = head_units(k_mix)
    for d in range(P.DIMS):
        h = layer.activations(sums)
        lin = torch.nn.Linear(w.shape[1], 3 * k_mix).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(net.v[d].detach().numpy().T.astype(np.float64)))
            lin.bias.copy_(torch.as_tensor(net.vb[d].detach().numpy().astype(np.float64)))
        part = quantize_mlp([lin], f"nade.out{d}", f"fnade.out{d}", h, 1.0 / (1 << 16), 0.0, scale, offset)
        arrays.update({k: v for k, v in part.items() if not k.startswith("fnade.")})
        layer.add(sums, d, sample[:, P.CONTEXT + d])
    return arrays
