"""A quantized multilayer perceptron evaluated exactly.

Weights are int8 values held in float32, activations uint8 after a ReLU, and
each layer's fan-in * 127 * max|input| stays below 2**24, so every float32
partial sum is an exact integer whatever order, blocking or FMA a BLAS uses
(checked when the weights are loaded). Each layer then rescales its integer
accumulator per output channel with an integer multiplier and shift:
h = clip((acc + B) * M >> S, 0, 255), and no clip on the last layer.
"""

import numba as nb
import numpy as np

FLOAT32_EXACT = 1 << 24
ACT_MAX = 255


@nb.njit(cache=True)
def _rescale(acc, b, m, s, last, out):
    """out = round((acc + b) * m / 2**s), clipped to 0..255 unless last (integers, per column)."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            v = ((np.int64(acc[i, j]) + b[j]) * m[j] + (np.int64(1) << (s[j] - 1))) >> s[j]
            if not last:
                v = 0 if v < 0 else (ACT_MAX if v > ACT_MAX else v)
            out[i, j] = v


class QuantizedMLP:
    """Layers (W int8 [in, out], B, M, S int64 [out]) read from a weights dict under `prefix`."""

    def __init__(self, weights: dict, prefix: str):
        self.layers = []
        i = 0
        in_max = int(weights[f"{prefix}.in_max"])
        while f"{prefix}.w{i}" in weights:
            w = weights[f"{prefix}.w{i}"].astype(np.float32)
            b, m, s = (weights[f"{prefix}.{k}{i}"].astype(np.int64) for k in "bms")
            if np.abs(w).max() > 127 or w.shape[0] * 127 * in_max >= FLOAT32_EXACT or s.min() < 1 or s.max() > 60:
                raise ValueError(f"{prefix} layer {i}: not an exact int8 layer")
            self.layers.append((np.ascontiguousarray(w), b, m, s))
            in_max = ACT_MAX
            i += 1
        if not self.layers:
            raise ValueError(f"no layers under {prefix}")
        self.inputs = self.layers[0][0].shape[0]
        self.outputs = self.layers[-1][0].shape[1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: [n, inputs] integer-valued float32 -> [n, outputs] int64."""
        h = x
        for i, (w, b, m, s) in enumerate(self.layers):
            last = i == len(self.layers) - 1
            out = np.empty((h.shape[0], w.shape[1]), np.int64 if last else np.float32)
            _rescale(h @ w, b, m, s, last, out)
            h = out
        return h


class FloatMLP:
    """The float (training) network, in float32 as trained: ReLU layers float{g}.w/b{i}, reading
    features * input_scale. Only for the report's nll_float_bits, never for coding."""

    def __init__(self, weights: dict, prefix: str, input_scale: float):
        self.layers = []
        i = 0
        while f"{prefix}.w{i}" in weights:
            self.layers.append((weights[f"{prefix}.w{i}"].astype(np.float32), weights[f"{prefix}.b{i}"].astype(np.float32)))
            i += 1
        if not self.layers:
            raise ValueError(f"no layers under {prefix}")
        self.input_scale = input_scale

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = x * np.float32(self.input_scale)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w
            h += b
            if i < len(self.layers) - 1:
                np.maximum(h, 0.0, out=h)
        return h.astype(np.float64)
