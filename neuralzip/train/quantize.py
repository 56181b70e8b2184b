"""Float networks into exact integer layers (neuralzip.exact.mlp): what the trainers share.

`multiplier` turns a real per-channel scale into the integer multiplier and shift every exact
layer rescales with; `quantize_mlp` turns a float MLP into wide exact layers (the vae, made and
nade trainers; context-mlp's trainer has its own int8 layers); `int16_layer` is one layer of the
compiled networks (int16 weights, integer sums).
"""

import numpy as np

from neuralzip.exact.mlp import FLOAT64_EXACT, WIDE_ACT_MAX, WIDE_WEIGHT_MAX


def multiplier(scale: np.ndarray):
    """Integer (M, S) per channel with M / 2**S ~ scale, M in [2**14, 2**15)."""
    s = np.floor(14 - np.log2(scale)).astype(np.int64)
    m = np.round(scale * 2.0 ** s).astype(np.int64)
    if s.min() < 1 or s.max() > 60:
        raise ValueError("a layer's rescaling is out of the integer range")
    return m, s


def int16_layer(w: np.ndarray, b: np.ndarray, out_unit: float, weight_max: int, prefix: str, out: dict) -> None:
    """A layer w [out, in] (real weights per input integer), b [out] into `out` under `prefix`: int16
    weights within weight_max per output, an integer bias in the accumulator's units, and the
    rescale (multiplier, shift) of the accumulator to outputs in units of 1/out_unit (the compiled
    networks' layers: gated-pixelcnn, wavenet)."""
    w_scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / weight_max
    out[f"{prefix}.w"] = np.round(w / w_scale[:, None]).astype(np.int16)
    out[f"{prefix}.b"] = np.round(b / w_scale).astype(np.int64)
    out[f"{prefix}.m"], out[f"{prefix}.s"] = multiplier(w_scale * out_unit)


def quantize_mlp(seq, prefix: str, float_prefix: str, x_int: np.ndarray, in_scale: float, in_offset: float,
                 out_scale: np.ndarray, out_offset: np.ndarray, headroom: float | None = None) -> dict:
    """quantize_layers for a torch MLP (its Linear layers, ReLU between them)."""
    return quantize_layers(float_layers(seq), prefix, float_prefix, x_int, in_scale, in_offset, out_scale,
                           out_offset, headroom)


def float_layers(seq) -> list[tuple[np.ndarray, np.ndarray]]:
    """A torch MLP's Linear layers as (w [in, out], b) in float64, what quantize_layers reads."""
    from neuralzip.train.image import _torch

    torch = _torch()
    return [(m.weight.detach().numpy().astype(np.float64).T, m.bias.detach().numpy().astype(np.float64))
            for m in seq if isinstance(m, torch.nn.Linear)]


def quantize_layers(layers, prefix: str, float_prefix: str, x_int: np.ndarray, in_scale: float, in_offset: float,
                    out_scale: np.ndarray, out_offset: np.ndarray, headroom: float | None = None) -> dict:
    """A float MLP (layers: (w [in, out], b [out]), ReLU between them) reading x_int * in_scale +
    in_offset -> exact integer layers whose last layer gives round((real output + out_offset) *
    out_scale); plus the float copy (float_prefix). The layers are wide (int16 weights per output
    channel, 16-bit activations, float64 sums): int8 x uint8 cost 1.6% on the tuning files, this 0.5%.
    Each hidden layer's activations span 0..WIDE_ACT_MAX over a range calibrated on x_int: the
    99.99th percentile of the layer's activations (headroom None, how the v1 weights were made), or
    their maximum times `headroom`. A clipped activation can move an output far: a vae posterior
    mean by whole bins, which on some photos cost 5-8% (see weights/RECIPES.md)."""
    out = {f"{prefix}.in_max": np.array(int(x_int.max())), f"{prefix}.act_max": np.array(WIDE_ACT_MAX)}
    h_real = x_int.astype(np.float64) * in_scale + in_offset
    scale, offset, in_max = in_scale, in_offset, int(x_int.max())
    for i, (w, b) in enumerate(layers):
        w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
        out[f"{float_prefix}.w{i}"], out[f"{float_prefix}.b{i}"] = w.astype(np.float32), b.astype(np.float32)
        b_eff = b + offset * w.sum(axis=0)  # the input offset folded into the bias
        w_real = w * scale
        w_scale = np.maximum(np.abs(w_real).max(axis=0), 1e-12) / WIDE_WEIGHT_MAX
        assert w.shape[0] * WIDE_WEIGHT_MAX * in_max < FLOAT64_EXACT
        pre = h_real @ w + b
        last = i == len(layers) - 1
        if last:
            target, bias_units = out_scale, (b_eff + out_offset) / w_scale
        else:
            act = np.maximum(pre, 0)
            top = np.percentile(act, 99.99) if headroom is None else act.max() * headroom
            act_scale = max(top, 1e-6) / WIDE_ACT_MAX
            target, bias_units = np.full(w.shape[1], 1.0 / act_scale), b_eff / w_scale
        m, s = multiplier(w_scale * target)
        out[f"{prefix}.w{i}"] = np.round(w_real / w_scale).astype(np.int16)
        out[f"{prefix}.b{i}"] = np.round(bias_units).astype(np.int64)
        out[f"{prefix}.m{i}"], out[f"{prefix}.s{i}"] = m, s
        if not last:
            h_real = np.maximum(pre, 0)
            scale, offset, in_max = act_scale, 0.0, WIDE_ACT_MAX
    return out
