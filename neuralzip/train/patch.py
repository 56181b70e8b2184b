"""What training the patch-autoregressive image models (made, nade) shares.

1. Data: random CROP x CROP crops of the 8-bit RGB training images (every 10th file,
   sorted by name, is kept apart for tuning), cut into patches with their context exactly
   as the codec cuts them (neuralzip.models.patch_context), so edge patches are seen in
   the proportion a crop of that size has them.
2. Training (torch): the model's network maps a patch's inputs to a discretized logistic
   mixture per value around the patch's reference; the loss is its -log2 likelihood in bits
   per subpixel. Adam with a one-cycle schedule; a checkpoint every --checkpoint-every
   steps, --resume continues from it.
3. Quantization is the model's own (its module's `quantize`).
4. The tuning files are priced with the exact codec; the result is written as
   <model>-image-v<N>-<hash>.npz with its recipe inside.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.exact import logistic
from neuralzip.models import patch_context as P
from neuralzip.train.image import _torch, cached_pool, fit, image_split, load_rgb8, mixture_nll_bits


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


def nll_bits(net, batch, k_mix: int):
    """Mean -log2 p per subpixel of a batch of pool rows (float tensor); the network reads
    (input - 128) * FLOAT_INPUT_SCALE and gives [batch, DIMS * 3 * k_mix]."""
    x = (batch[:, :P.INPUTS] - 128) * P.FLOAT_INPUT_SCALE
    refs = batch[:, P.INPUTS:P.INPUTS + 3].repeat(1, P.PIXELS).reshape(-1)
    values = batch[:, P.INPUTS + 3:].reshape(-1)
    out = net(x).reshape(-1, 3 * k_mix)
    return mixture_nll_bits(out, refs, values, k_mix).mean()


def train(net, pool: np.ndarray, ckpt: Path, steps: int, k_mix: int, batch: int, lr: float, seed: int,
          checkpoint_every: int, resume: bool, log=print, **meta):
    data = _torch().as_tensor(pool)

    def batch_loss(gen):
        idx = _torch().randint(0, len(data), (batch,), generator=gen)
        return nll_bits(net, data[idx].float(), k_mix)

    return fit(net, batch_loss, ckpt, steps, lr, seed, checkpoint_every, resume, log, k_mix=k_mix, **meta)


def head_units(k_mix: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per output of a value's head, mean / log-scale / logit per component, into
    the codec's units: round((output + offset) * scale) is the mean in 1/16 level, the log-scale
    index, the logit in 1/16 nat."""
    kinds = np.repeat([0, 1, 2], k_mix)
    scale = np.array([16.0, logistic.LOG_SCALE_STEPS, 16.0])[kinds]
    offset = np.array([0.0, -logistic.LOG_SCALE_MIN, 0.0])[kinds]
    return scale, offset


def evaluate(codec, files: list[Path], log=print) -> dict:
    """Exact and float bits per subpixel of the tuning files."""
    from neuralzip.models.base import Signal

    exact = floats = dims = 0.0
    for f in files:
        im = load_rgb8(f)
        if im is None:
            continue
        enc = codec.encode(im, Signal("image", im.shape, 8))
        exact, floats, dims = exact + enc.nll_bits, floats + enc.nll_float_bits, dims + im.size
        log(f"{f.name}: exact {enc.nll_bits / im.size:.4f}, float {enc.nll_float_bits / im.size:.4f} bits/subpixel")
    return {"exact": exact / dims, "float": floats / dims}


def run(model, data_dir: Path, out_dir: Path, hyper: dict, steps: int, k_mix: int, crops: int, crop_size: int,
        batch: int, lr: float, seed: int, checkpoint_every: int, resume: bool, log=print) -> Path:
    """Train `model` (a module with NAME, VERSION, CODEC, build_net(k_mix, **hyper) and
    quantize(net, pool, k_mix, seed)) end to end; -> the weights file."""
    return run_with(model, "patches", patch_pool, train, {"patch": P.PATCH}, data_dir, out_dir, hyper, steps, k_mix,
                    crops, crop_size, batch, lr, seed, checkpoint_every, resume, log)


def run_with(model, pool_kind: str, make_pool, train_net, extra_recipe: dict, data_dir: Path, out_dir: Path,
             hyper: dict, steps: int, k_mix: int, crops: int, crop_size: int, batch: int, lr: float, seed: int,
             checkpoint_every: int, resume: bool, log=print) -> Path:
    """What the patch and per-pixel trainers' runs share: the training pool (make_pool(files, crops,
    crop_size, seed, log), cached as <model>-<pool_kind>-*.npy), train_net(net, pool, ckpt, ...), the
    model's quantization, the recipe (with extra_recipe), the weights file and the tuning files' prices."""
    start = time.time()
    train_files, tune_files = image_split(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = cached_pool(out_dir / f"{model.NAME}-{pool_kind}-{seed}-{crops}-{crop_size}.npy", resume,
                       lambda: make_pool(train_files, crops, crop_size, seed, log))
    _torch().manual_seed(seed)
    net = model.build_net(k_mix, **hyper)
    train_net(net, pool, out_dir / f"{model.NAME}-train.ckpt", steps, k_mix, batch, lr, seed, checkpoint_every, resume,
              log, **hyper)
    arrays = model.quantize(net, pool, k_mix, seed)
    arrays[f"{model.NAME}.k_mix"] = np.array(k_mix)
    arrays.update(logistic.tables())
    recipe = {"command": f"neuralzip train {model.NAME} " + " ".join(sys.argv[3:]), "data": str(data_dir),
              "train_files": [f.name for f in train_files], "tuning_files": [f.name for f in tune_files],
              "steps": steps, **hyper, "mixtures": k_mix, "crops": crops, "crop_size": crop_size, "batch": batch,
              "lr": lr, "seed": seed, **extra_recipe, "train_seconds": round(time.time() - start)}
    arrays["recipe"] = np.array(json.dumps(recipe))
    path = weightstore.save(arrays, out_dir, model.CODEC.weights_prefix, model.VERSION)
    scores = evaluate(model.CODEC(path), tune_files, log)
    log(f"tuning files: exact {scores['exact']:.4f}, float {scores['float']:.4f} bits/subpixel")
    return path
