"""A quantized multilayer perceptron evaluated exactly.

Weights are int8 values held in float32, activations uint8 after a ReLU, and
each layer's fan-in * 127 * max|input| stays below 2**24, so every float32
partial sum is an exact integer whatever order, blocking or FMA a BLAS uses
(checked when the weights are loaded). Each layer then rescales its integer
accumulator per output channel with an integer multiplier and shift:
h = clip((acc + B) * M >> S, 0, 255), and no clip on the last layer.
"""

import numpy as np

from neuralzip.kernels.exact import LayerRescale  # out = round((acc + B) * M / 2**S), clipped unless last

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
WIDE_WEIGHT_MAX, WIDE_ACT_MAX = 32767, 65535  # int16 weights, 16-bit activations, in float64
ACT_MAX = 255


class QuantizedMLP:
    """Layers (W int8 [in, out], B, M, S int64 [out]) read from a weights dict under `prefix`.
    A network may instead be "wide": int16 weights and 16-bit activations (`act_max`),
    run in float64, where fan-in * 32767 * 65535 stays far below 2**53: exact as well,
    with a quarter of the quantization error at twice the arithmetic."""

    def __init__(self, weights: dict, prefix: str):
        self.layers = []
        i = 0
        in_max = int(weights[f"{prefix}.in_max"])
        # activations: uint8 (0..255), or 0..65535 for a network of int16 layers in float64
        self.act_max = int(weights.get(f"{prefix}.act_max", ACT_MAX))
        while f"{prefix}.w{i}" in weights:
            stored = weights[f"{prefix}.w{i}"]
            wide = stored.dtype == np.int16
            w = stored.astype(np.float64 if wide else np.float32)
            b, m, s = (weights[f"{prefix}.{k}{i}"].astype(np.int64) for k in "bms")
            w_max, exact_limit = (WIDE_WEIGHT_MAX, FLOAT64_EXACT) if wide else (127, FLOAT32_EXACT)
            if np.abs(w).max() > w_max or w.shape[0] * w_max * in_max >= exact_limit or s.min() < 1 or s.max() > 60:
                raise ValueError(f"{prefix} layer {i}: not an exact integer layer")
            self.layers.append((np.ascontiguousarray(w), b, m, s))
            in_max = self.act_max
            i += 1
        if not self.layers:
            raise ValueError(f"no layers under {prefix}")
        self.inputs = self.layers[0][0].shape[0]
        self.outputs = self.layers[-1][0].shape[1]
        # the compiled rescale of each layer, its parameters checked once here
        self.rescales = [LayerRescale(b, m, s, wide=w.dtype == np.float64, last=i == len(self.layers) - 1,
                                      act_max=self.act_max) for i, (w, b, m, s) in enumerate(self.layers)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: [n, inputs] integer-valued float32 -> [n, outputs] int64."""
        return self.forward_hidden(x)[0]

    def forward_hidden(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (forward(x), the last layer's input: the last hidden activations, integer-valued
        float32 [n, width]; the inputs x themselves for a network of one layer)."""
        h = x
        for (w, _, _, _), rescale in zip(self.layers, self.rescales):
            last_in = h
            out = np.empty((h.shape[0], w.shape[1]), np.int64 if rescale.last else w.dtype)
            rescale(h.astype(w.dtype, copy=False) @ w, out)
            h = out
        return h, np.ascontiguousarray(last_in, dtype=np.float32)


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
