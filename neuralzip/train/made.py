"""Train the MADE image model: `neuralzip train made DIR -o weights` (neuralzip.train.patch
has the data, the loop and the recipe).

The network: masked linear layers (ReLU between them) whose masks (patch_context.masks) let
value d's head read only the context and the values before d. Quantization: the masked weights
(zeros stay zeros) as wide integer layers (train.quantize.quantize_mlp); the float layers are kept
for the report's nll_float_bits.
"""

import numpy as np

from neuralzip.models import patch_context as P
from neuralzip.models.made import MadeCodec
from neuralzip.train.image import _torch
from neuralzip.train.patch import head_units
from neuralzip.train.quantize import quantize_mlp

NAME = "made"
VERSION = 1
CODEC = MadeCodec


def build_net(k_mix: int, hidden: int, layers: int):
    """MADE: masked linear layers (ReLU between them) from INPUTS to DIMS * 3 * k_mix outputs."""
    torch = _torch()
    nn = torch.nn

    class MaskedLinear(nn.Linear):
        def __init__(self, n_in, n_out, mask):
            super().__init__(n_in, n_out)
            self.register_buffer("mask", torch.as_tensor(mask.T.copy()))

        def forward(self, x):
            return nn.functional.linear(x, self.weight * self.mask, self.bias)

    masks = P.masks(hidden, layers)
    masks[-1] = np.repeat(masks[-1], 3 * k_mix, axis=1)  # every value's head: 3 * k_mix outputs
    sizes = [P.INPUTS] + [hidden] * layers + [P.DIMS * 3 * k_mix]
    mods = []
    for i, m in enumerate(masks):
        mods.append(MaskedLinear(sizes[i], sizes[i + 1], m))
        if i < len(masks) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def quantize(net, pool: np.ndarray, k_mix: int, seed: int) -> dict:
    """The trained MADE as exact wide integer layers ("made") and float layers ("fmade"), the
    masks baked into the weights; the last layer gives each value's head in the codec's units."""
    torch = _torch()
    plain = []
    for m in net:
        if hasattr(m, "mask"):
            lin = torch.nn.Linear(m.in_features, m.out_features)
            with torch.no_grad():
                lin.weight.copy_(m.weight * m.mask)
                lin.bias.copy_(m.bias)
            plain.append(lin)
    rng = np.random.default_rng(seed)
    sample = pool[rng.integers(0, len(pool), 100_000), :P.INPUTS].astype(np.int64)
    scale, offset = head_units(k_mix)
    return quantize_mlp(plain, "made", "fmade", sample, P.FLOAT_INPUT_SCALE, -128 * P.FLOAT_INPUT_SCALE,
                        np.tile(scale, P.DIMS), np.tile(offset, P.DIMS))
