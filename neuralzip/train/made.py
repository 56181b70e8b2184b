"""Train the MADE image model: `neuralzip train made DIR -o weights`.

1. Data: random CROP x CROP crops of the 8-bit RGB training images (every 10th file,
   sorted by name, is kept apart for tuning), cut into patches with their context exactly
   as the codec cuts them (neuralzip.models.patch_context), so edge patches are seen in
   the proportion a crop of that size has them.
2. Training (torch): MADE, an MLP whose weights are masked so that the output for value d
   of a patch reads only the context and the values before d; per value a discretized
   logistic mixture around the patch's reference. The loss is its -log2 likelihood in bits
   per subpixel. Adam with a one-cycle schedule; a checkpoint every --checkpoint-every
   steps, --resume continues from it.
3. Quantization: the masked weights (zeros stay zeros) as wide integer layers
   (train.vae.quantize_mlp); the float layers are kept for the report's nll_float_bits.
4. The tuning files are priced with the exact codec; the result is written as
   made-image-v<N>-<hash>.npz with its recipe inside.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.exact import logistic
from neuralzip.models import patch_context as P
from neuralzip.models.made import MadeCodec
from neuralzip.train.image import _torch, image_split, load_checkpoint, load_rgb8, mixture_nll_bits, one_cycle, \
    save_checkpoint

VERSION = 1


def patch_pool(files: list[Path], crops: int, size: int, seed: int, log=print) -> np.ndarray:
    """`crops` random crops per image -> uint8 rows [n, INPUTS + 3 + DIMS]: the network inputs,
    the refs and the values of every patch of every crop."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in files:
        im = load_rgb8(f)
        if im is None or im.shape[2] != 3:
            continue
        for _ in range(crops):
            h, w = min(size, im.shape[0]), min(size, im.shape[1])
            y, x = rng.integers(0, im.shape[0] - h + 1), rng.integers(0, im.shape[1] - w + 1)
            crop = im[y:y + h, x:x + w]
            grid = P.Grid(crop.shape)
            planes, _ = P.planes(crop)
            inp, refs, values = P.inputs(grid, planes, np.arange(len(grid)))
            rows.append(np.concatenate([inp, refs, values], axis=1).astype(np.uint8))
    pool = np.concatenate(rows)
    log(f"{len(pool)} patches from {len(files)} images ({crops} crops of {size}x{size} each)")
    return pool


def build_net(hidden: int, layers: int, k_mix: int):
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


def nll_bits(net, batch, k_mix: int):
    """Mean -log2 p per subpixel of a batch of pool rows (float tensor)."""
    x = (batch[:, :P.INPUTS] - 128) * P.FLOAT_INPUT_SCALE
    refs = batch[:, P.INPUTS:P.INPUTS + 3].repeat(1, P.PIXELS).reshape(-1)
    values = batch[:, P.INPUTS + 3:].reshape(-1)
    out = net(x).reshape(-1, 3 * k_mix)
    return mixture_nll_bits(out, refs, values, k_mix).mean()


def train(pool: np.ndarray, out_dir: Path, steps: int, hidden: int, layers: int, k_mix: int, batch: int, lr: float,
          seed: int, checkpoint_every: int, resume: bool, log=print):
    torch = _torch()
    torch.manual_seed(seed)
    net = build_net(hidden, layers, k_mix)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps, 0.05)
    ckpt = out_dir / "made-train.ckpt"
    step = load_checkpoint(ckpt, net, opt, sched, log) if resume and ckpt.exists() else 0
    data = torch.as_tensor(pool)
    gen = torch.Generator().manual_seed(seed + step)
    ema = None
    start = time.time()
    while step < steps:
        idx = torch.randint(0, len(data), (batch,), generator=gen)
        loss = nll_bits(net, data[idx].float(), k_mix)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        ema = float(loss.detach()) if ema is None else 0.99 * ema + 0.01 * float(loss.detach())
        if step % 100 == 0 or step == steps:
            log(f"step {step}/{steps}  {ema:.4f} bits/subpixel  {time.time() - start:.0f} s")
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(ckpt, net, opt, sched, step, hidden=hidden, layers=layers, k_mix=k_mix)
    return net


def quantize(net, pool: np.ndarray, k_mix: int, seed: int) -> dict:
    """The trained MADE as exact wide integer layers ("made") and float layers ("fmade"), the
    masks baked into the weights; the last layer gives each value's head in the codec's units:
    means in 1/16 level, log-scale indices, logits in 1/16 nat."""
    from neuralzip.train.vae import quantize_mlp

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
    kinds = np.tile(np.repeat([0, 1, 2], k_mix), P.DIMS)  # mean, log-scale, logit
    scale = np.array([16.0, logistic.LOG_SCALE_STEPS, 16.0])[kinds]
    offset = np.array([0.0, -logistic.LOG_SCALE_MIN, 0.0])[kinds]
    arrays = quantize_mlp(plain, "made", "fmade", sample, P.FLOAT_INPUT_SCALE, -128 * P.FLOAT_INPUT_SCALE,
                          scale, offset)
    arrays["made.k_mix"] = np.array(k_mix)
    arrays.update(logistic.tables())
    return arrays


def evaluate(path: Path, files: list[Path], log=print) -> dict:
    """Exact and float bits per subpixel of the tuning files."""
    from neuralzip.models.base import Signal

    codec = MadeCodec(path)
    exact = floats = dims = 0.0
    for f in files:
        im = load_rgb8(f)
        if im is None:
            continue
        enc = codec.encode(im, Signal("image", im.shape, 8))
        exact, floats, dims = exact + enc.nll_bits, floats + enc.nll_float_bits, dims + im.size
        log(f"{f.name}: exact {enc.nll_bits / im.size:.4f}, float {enc.nll_float_bits / im.size:.4f} bits/subpixel")
    return {"exact": exact / dims, "float": floats / dims}


def run(data_dir: Path, out_dir: Path, steps: int, hidden: int, layers: int, k_mix: int, crops: int, crop_size: int,
        batch: int, lr: float, seed: int, checkpoint_every: int, resume: bool, log=print) -> Path:
    start = time.time()
    train_files, tune_files = image_split(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / f"made-patches-{seed}-{crops}-{crop_size}.npy"
    if resume and cache.exists():
        pool = np.load(cache)
    else:
        pool = patch_pool(train_files, crops, crop_size, seed, log)
        np.save(cache, pool)
    net = train(pool, out_dir, steps, hidden, layers, k_mix, batch, lr, seed, checkpoint_every, resume, log)
    arrays = quantize(net, pool, k_mix, seed)
    recipe = {"command": "neuralzip train made " + " ".join(sys.argv[3:]), "data": str(data_dir),
              "train_files": [f.name for f in train_files], "tuning_files": [f.name for f in tune_files],
              "steps": steps, "hidden": hidden, "layers": layers, "mixtures": k_mix, "crops": crops,
              "crop_size": crop_size, "batch": batch, "lr": lr, "seed": seed, "patch": P.PATCH,
              "train_seconds": round(time.time() - start)}
    arrays["recipe"] = np.array(json.dumps(recipe))
    path = weightstore.save(arrays, out_dir, MadeCodec.weights_prefix, VERSION)
    scores = evaluate(path, tune_files, log)
    log(f"tuning files: exact {scores['exact']:.4f}, float {scores['float']:.4f} bits/subpixel")
    return path
