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
                 out_scale: np.ndarray, out_offset: np.ndarray) -> dict:
    """A float MLP reading x_int * in_scale + in_offset -> exact integer layers whose last layer gives
    round((real output + out_offset) * out_scale); plus the float copy (float_prefix). The layers
    are wide (int16 weights per output channel, 16-bit activations calibrated at the 99.99th
    percentile, float64 sums): int8 x uint8 cost 1.6% on the tuning files, this 0.5%."""
    from neuralzip.train.image import _torch

    torch = _torch()
    linears = [m for m in seq if isinstance(m, torch.nn.Linear)]
    out = {f"{prefix}.in_max": np.array(int(x_int.max())), f"{prefix}.act_max": np.array(WIDE_ACT_MAX)}
    h_real = x_int.astype(np.float64) * in_scale + in_offset
    scale, offset, in_max = in_scale, in_offset, int(x_int.max())
    for i, lin in enumerate(linears):
        w = lin.weight.detach().numpy().astype(np.float64).T
        b = lin.bias.detach().numpy().astype(np.float64)
        out[f"{float_prefix}.w{i}"], out[f"{float_prefix}.b{i}"] = w.astype(np.float32), b.astype(np.float32)
        b_eff = b + offset * w.sum(axis=0)  # the input offset folded into the bias
        w_real = w * scale
        w_scale = np.maximum(np.abs(w_real).max(axis=0), 1e-12) / WIDE_WEIGHT_MAX
        assert w.shape[0] * WIDE_WEIGHT_MAX * in_max < FLOAT64_EXACT
        pre = h_real @ w + b
        last = i == len(linears) - 1
        if last:
            target, bias_units = out_scale, (b_eff + out_offset) / w_scale
        else:
            act_scale = max(np.percentile(np.maximum(pre, 0), 99.99), 1e-6) / WIDE_ACT_MAX
            target, bias_units = np.full(w.shape[1], 1.0 / act_scale), b_eff / w_scale
        m, s = multiplier(w_scale * target)
        out[f"{prefix}.w{i}"] = np.round(w_real / w_scale).astype(np.int16)
        out[f"{prefix}.b{i}"] = np.round(bias_units).astype(np.int64)
        out[f"{prefix}.m{i}"], out[f"{prefix}.s{i}"] = m, s
        if not last:
            h_real = np.maximum(pre, 0)
            scale, offset, in_max = act_scale, 0.0, WIDE_ACT_MAX
    return out
