"""What training the per-pixel image models (gated-pixelcnn, pixelrnn) shares.

1. Data: random CROP x CROP crops of the 8-bit RGB training images (every 10th file, sorted by
   name, is kept apart for tuning); a batch is mirrored left-right half the time.
2. Training (torch): the model's network maps (value - 128) / 128 [batch, 3, H, W] to the
   per-pixel head's outputs (neuralzip.models.pixel_codec); the loss is -log2 p in bits per
   subpixel. Adam with a one-cycle schedule; a checkpoint every --checkpoint-every steps,
   --resume goes on from it (with the same crops).
3. Quantization is the model's own (its module's `quantize`); the head is shared (`quantize_head`).
4. The tuning files are priced with the exact codec; the result is written as
   <model>-image-v<N>-<hash>.npz with its recipe inside.
"""

from pathlib import Path

import numpy as np

from neuralzip.models import pixel_codec as P
from neuralzip.train.image import _torch, fit, load_rgb8, mixture_nll_bits
from neuralzip.train.patch import run_with
from neuralzip.train.quantize import quantize_mlp


def nll_bits(net, crops, k_mix: int):
    """Mean -log2 p per subpixel of a batch of uint8 crops [batch, H, W, 3] (tensor)."""
    torch = _torch()
    x = crops.permute(0, 3, 1, 2).float()
    out = net((x - 128) / 128).permute(0, 2, 3, 1).reshape(-1, P.outputs(k_mix))
    v = x.permute(0, 2, 3, 1).reshape(-1, 3)
    heads = P.float_heads(torch, out, v, k_mix)  # [n, 3, 3 * k_mix]: mean rel. 128, log-scale, logit
    bits = [mixture_nll_bits(heads[:, c], torch.full_like(v[:, c], 128.0), v[:, c], k_mix) for c in range(3)]
    return torch.stack(bits).mean()


def crop_pool(files: list[Path], crops: int, size: int, seed: int, log=print) -> np.ndarray:
    """`crops` random crops per RGB image -> uint8 [n, size, size, 3]."""
    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        im = load_rgb8(f)
        if im is None or im.ndim != 3 or im.shape[2] != 3 or min(im.shape[:2]) < size:
            continue
        for _ in range(crops):
            y, x = rng.integers(0, im.shape[0] - size + 1), rng.integers(0, im.shape[1] - size + 1)
            out.append(im[y:y + size, x:x + size])
    pool = np.stack(out)
    log(f"{len(pool)} crops of {size}x{size} from {len(files)} images")
    return pool


def train(net, pool, ckpt: Path, steps: int, k_mix: int, batch: int, lr: float, seed: int, checkpoint_every: int,
          resume: bool, log=print, **meta):
    torch = _torch()
    data = torch.as_tensor(pool)

    def batch_loss(gen):
        crops = data[torch.randint(0, len(data), (batch,), generator=gen)]
        if torch.rand((), generator=gen) < 0.5:  # mirrored photos are photos too
            crops = crops.flip(2)
        return nll_bits(net, crops, k_mix)

    return fit(net, batch_loss, ckpt, steps, lr, seed, checkpoint_every, resume, log, 50, k_mix=k_mix, **meta)


def quantize_head(head, feats: np.ndarray, k_mix: int, prefix: str) -> dict:
    """The head (ReLU, 1x1 conv, ReLU, 1x1 conv) as wide exact layers under `prefix`.head reading
    relu(features) in 1/ACT_ONE, calibrated on feats (float [n, C]); the float head stays in the
    model's float state dict."""
    torch = _torch()
    linears = []
    for conv in (head[1], head[3]):
        lin = torch.nn.Linear(conv.in_channels, conv.out_channels)
        with torch.no_grad():
            lin.weight.copy_(conv.weight[:, :, 0, 0])
            lin.bias.copy_(conv.bias)
        linears.append(lin)
    h_int = np.round(np.maximum(feats, 0) * P.ACT_ONE).astype(np.int64)
    scale, offset = P.head_units(k_mix)
    arrays = quantize_mlp(linears, f"{prefix}.head", "unused", h_int, 1.0 / P.ACT_ONE, 0.0, scale, offset)
    return {k: a for k, a in arrays.items() if k.startswith(f"{prefix}.")}


def build_head(channels: int, head: int, k_mix: int):
    """The per-pixel head every model ends with: ReLU, 1x1 conv, ReLU, 1x1 conv to the outputs."""
    nn = _torch().nn
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, head, 1), nn.ReLU(), nn.Conv2d(head, P.outputs(k_mix), 1))


def run(model, data_dir: Path, out_dir: Path, hyper: dict, steps: int, k_mix: int, crops: int, crop_size: int, batch: int,
        lr: float, seed: int, checkpoint_every: int, resume: bool, log=print) -> Path:
    """Train `model` (a module with NAME, VERSION, CODEC, build_net(k_mix, **hyper) and
    quantize(net, pool, k_mix, seed)) end to end; -> the weights file."""
    return run_with(model, "crops", crop_pool, train, {}, data_dir, out_dir, hyper, steps, k_mix, crops, crop_size,
                    batch, lr, seed, checkpoint_every, resume, log)
