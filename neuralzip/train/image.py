"""Train the context-mlp image model (`neuralzip train context-mlp DIR -o weights`) or the same
network over local-ls's blend (`neuralzip train local-ls-mlp DIR -o weights`).

1. Features: the classic model (local-ls at level 1 for local-ls-mlp) runs over random crops of
   the training images
   (every 10th file is kept apart for tuning) and records, for every pixel and
   channel, the integer inputs the network will see and the true value.
2. Training (torch, CPU or GPU): two small MLPs (first channel / later channels)
   with a K-component discretized logistic mixture head, maximum likelihood in
   bits, Adam with a cosine schedule, checkpoints every --checkpoint-every
   steps; --resume continues from the last checkpoint in the output folder.
3. Quantization: int8 weights per output channel, uint8 activations calibrated
   on training features, integer rescaling; lookup tables of the logistic CDF.
4. The weight of the network against the adaptive counts is tuned on the tuning
   files with the exact codec; the result is written as
   context-mlp-image-v<N>-<hash>.npz (local-ls-mlp-image-v<N>-...) with its recipe inside.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.coding.stream import CostCoder
from neuralzip.exact import logistic
from neuralzip.exact.mlp import ACT_MAX, FLOAT32_EXACT
from neuralzip.media.detect import read_media
from neuralzip.models import context_mlp
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import ClassicImageCodec
from neuralzip.models.local_ls_mlp import LocalLsMlpCodec
from neuralzip.train.classic_prior import training_files
from neuralzip.train.quantize import multiplier

# per model: the codec whose network is trained, its weights file's prefix and version
MODELS = {"context-mlp": (context_mlp.ContextMLPCodec, context_mlp.WEIGHTS_PREFIX, 4),
          "local-ls-mlp": (LocalLsMlpCodec, LocalLsMlpCodec.weights_prefix, 4)}
# the network's starting weight against the counts: files learn it while coding ("mix": 2), so the
# start moves the tuning files' bits by under 0.01% (weights/RECIPES.md); three starts suffice
MIX_CHOICES = (8, 12, 16)


def split_files(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(training, tuning): every 10th file (sorted by name) is kept apart for tuning."""
    return [f for i, f in enumerate(files) if i % 10], [f for i, f in enumerate(files) if i % 10 == 0]


def image_split(data_dir: Path) -> tuple[list[Path], list[Path]]:
    """The images under data_dir as (training, tuning) files; exits when there are none."""
    files = training_files(data_dir, "image")
    if not files:
        raise SystemExit(f"no images found in {data_dir}")
    return split_files(files) if len(files) >= 10 else (files, files[:1])


def cached_pool(cache: Path, resume: bool, make) -> np.ndarray:
    """A trainer's array of training examples: read from `cache` when resuming, else made by
    make() and saved there (so --resume trains on the same examples)."""
    if resume and cache.exists():
        return np.load(cache)
    pool = make()
    np.save(cache, pool)
    return pool


def load_rgb8(path: Path) -> np.ndarray | None:
    media = read_media(path.read_bytes(), str(path))
    return media.samples if media.bits == 8 else None


# --augment: besides each crop as it is, the network also learns
#  - "jpeg": the crop saved as a JPEG (quality JPEG_QUALITY, chroma subsampled 2x2) and decoded, which
#    the codec codes in the YCbCr it was decoded from (models/jpeg_colour.py), and
#  - "half": a region twice the crop's side shrunk to it by 2x2 means: a photo with the detail of a
#    smaller scale and none of the block or chroma structure a JPEG leaves.
# Photos reach the codec in both forms whatever camera took them, so a network that has seen one
# form of its training source only does not carry over to another source (benchmarks/local_ls.py
# --split; weights/RECIPES.md).
AUGMENTS = ("jpeg", "half")
JPEG_QUALITY = (70, 96)  # drawn per crop, the upper end excluded


def _crop_forms(img: np.ndarray, size: int, rng, augment: bool) -> list[np.ndarray]:
    """One random crop of img (at most size x size), and with augment its AUGMENTS forms."""
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    forms = [np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])]
    if not augment:
        return forms
    forms.append(_jpeg_decoded(forms[0], int(rng.integers(*JPEG_QUALITY))))
    hh, hw = min(2 * size, h) // 2, min(2 * size, w) // 2
    y0, x0 = rng.integers(0, h - 2 * hh + 1), rng.integers(0, w - 2 * hw + 1)
    region = img[y0:y0 + 2 * hh, x0:x0 + 2 * hw].astype(np.int64)
    half = (region.reshape(hh, 2, hw, 2, -1).sum(axis=(1, 3)) + 2) // 4
    forms.append(np.ascontiguousarray(half.astype(np.uint8)))
    return forms


def _jpeg_decoded(crop: np.ndarray, quality: int) -> np.ndarray:
    """The crop saved as a JPEG (chroma subsampled 2x2) at this quality and decoded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, "JPEG", quality=quality, subsampling=2)
    return np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))


def extract(files: list[Path], crops: int, size: int, seed: int, log=print, model: str = "context-mlp",
            augment: bool = False) -> list[dict]:
    """-> per channel group: {"x": int16 features, "p": predictions, "v": true values}."""
    rng = np.random.default_rng(seed)
    # the model's own loop (layout and blend), its network's rows replaced by the classic prior's counts
    codec = MODELS[model][0](ClassicImageCodec().weights.path)
    parts = [{"x": [], "p": [], "v": []} for _ in range(2)]
    for fi, f in enumerate(files):
        img = load_rgb8(f)
        if img is None:
            continue
        for crop in (form for _ in range(crops) for form in _crop_forms(img, size, rng, augment)):
            signal = Signal("image", crop.shape, 8)
            # the values the network learns to predict are the coded ones: a decoded JPEG's crop (one
            # chunk) is coded in YCbCr
            _, coded = codec.as_coded(crop.astype(np.int64), codec.chunk_params(signal))
            pending = []

            def model_rows(view):
                g = min(view.c, 1)
                feats = np.empty((view.n, context_mlp.N_FEATURES[g]), np.float32)
                context_mlp.features(view, feats)
                pending.append((g, feats.astype(np.int16), view.preds[:view.n].astype(np.int16)))
                return view.rows[:view.n]

            def observe(c, sy, sx, classes, sym, rows, nlow):
                g, feats, preds = pending.pop()
                parts[g]["x"].append(feats)
                parts[g]["p"].append(preds)
                parts[g]["v"].append(coded[sy, sx, c].astype(np.int16))

            codec._run(CostCoder, crop, signal, observe, model_rows)
        log(f"features [{fi + 1}/{len(files)}] {f.name}")
    return [{k: np.concatenate(v) for k, v in part.items()} for part in parts]


# ---------------------------------------------------------------- training (torch)

def _torch():
    try:
        import torch
    except ImportError:
        raise SystemExit("training needs torch: pip install 'neuralzip[train]'") from None
    return torch


def one_cycle(opt, lr: float, steps: int, warmup: float):
    """The one-cycle learning-rate schedule every trainer uses: `warmup` of the steps rising to lr, at
    least 3 (the schedule divides by the warm-up's length minus one), then annealing to zero."""
    return _torch().optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(warmup, 3 / steps))


def fit(net, batch_loss, ckpt: Path, steps: int, lr: float, seed: int, checkpoint_every: int, resume: bool,
        log=print, log_every: int = 100, unit: str = "bits/subpixel", **meta):
    """The loop the patch and per-pixel trainers share: Adam with the one-cycle schedule on
    batch_loss(gen) (the loss of a batch it draws with the generator gen), a progress line every
    log_every steps, a checkpoint (with meta) every checkpoint_every steps; resume continues from it,
    the generator seeded by the step so the batches go on, not repeat."""
    torch = _torch()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps, 0.05)
    step = load_checkpoint(ckpt, net, opt, sched, log) if resume and ckpt.exists() else 0
    gen = torch.Generator().manual_seed(seed + step)
    ema, start = None, time.time()
    while step < steps:
        loss = batch_loss(gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        ema = float(loss.detach()) if ema is None else 0.98 * ema + 0.02 * float(loss.detach())
        if step % log_every == 0 or step == steps:
            log(f"step {step}/{steps}  {ema:.4f} {unit}  {time.time() - start:.0f} s")
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(ckpt, net, opt, sched, step, **meta)
    return net


def load_checkpoint(ckpt: Path, nets, opt, sched, log=print, map_location=None) -> int:
    """Restore nets, optimizer and schedule from a training checkpoint; -> the step it was saved at."""
    state = _torch().load(ckpt, map_location=map_location)
    total = state["sched"].get("total_steps")
    if total != sched.total_steps:  # the one-cycle schedule cannot be stretched after the fact
        raise SystemExit(f"{ckpt}: this checkpoint's schedule is {total} steps: resume with --steps {total}, "
                         "or train afresh without --resume")
    try:
        nets.load_state_dict(state["nets"])
    except RuntimeError:
        raise SystemExit(f"{ckpt}: the checkpoint's network has other sizes than the options ask for: resume "
                         "with the options it was trained with, or train afresh without --resume") from None
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    log(f"resumed at step {state['step']}")
    return state["step"]


def save_checkpoint(ckpt: Path, nets, opt, sched, step: int, **meta) -> None:
    """Write a training checkpoint atomically (a crash mid-write keeps the previous one)."""
    tmp = ckpt.with_suffix(".tmp")
    _torch().save({"nets": nets.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "step": step, **meta}, tmp)
    tmp.replace(ckpt)


def build_nets(hidden: int, k_mix: int):
    torch = _torch()
    nn = torch.nn

    def mlp(n_in):
        return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                             nn.Linear(hidden, 3 * k_mix))

    return nn.ModuleList([mlp(n) for n in context_mlp.N_FEATURES])


def mixture_nll_bits(out, p, v, k_mix: int, maxv: int = 255):
    """-log2 of the discretized logistic mixture (means p + mu, edges folded) at the values v."""
    torch = _torch()
    mu, log_s, logits = out[:, :k_mix], out[:, k_mix:2 * k_mix], out[:, 2 * k_mix:]
    log_s = log_s.clamp(logistic.LOG_SCALE_MIN, logistic.LOG_SCALE_MIN + logistic.N_SCALES / logistic.LOG_SCALE_STEPS)
    r = (v - p).unsqueeze(1)
    inv = torch.exp(-log_s)
    hi = torch.sigmoid((r + 0.5 - mu) * inv)
    lo = torch.sigmoid((r - 0.5 - mu) * inv)
    hi = torch.where(v.unsqueeze(1) >= maxv, torch.ones_like(hi), hi)
    lo = torch.where(v.unsqueeze(1) <= 0, torch.zeros_like(lo), lo)
    mass = (hi - lo).clamp_min(1e-12)
    logp = torch.logsumexp(torch.log_softmax(logits, dim=1) + torch.log(mass), dim=1)
    return -logp / np.log(2)


def train(data: list[dict], out_dir: Path, steps: int, hidden: int, k_mix: int, batch: int, lr: float,
          seed: int, checkpoint_every: int, resume: bool, log=print):
    torch = _torch()
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    nets = build_nets(hidden, k_mix).to(device)
    opt = torch.optim.Adam(nets.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps, 0.05)
    ckpt = out_dir / "context-mlp-train.ckpt"
    step = load_checkpoint(ckpt, nets, opt, sched, log, device) if resume and ckpt.exists() else 0
    tensors = [{k: torch.as_tensor(d[k].astype(np.float32)).to(device) for k in ("x", "p", "v")} for d in data]
    sizes = np.array([len(d["v"]) for d in data], np.float64)
    gen = torch.Generator(device="cpu").manual_seed(seed + step)
    ema = None
    start = time.time()
    while step < steps:
        loss_bits, count = 0.0, 0
        opt.zero_grad()
        for g, t in enumerate(tensors):
            nb_g = max(1, int(batch * sizes[g] / sizes.sum()))
            idx = torch.randint(0, len(t["v"]), (nb_g,), generator=gen).to(device)
            out = nets[g](t["x"][idx] * context_mlp.FLOAT_INPUT_SCALE)
            nll = mixture_nll_bits(out, t["p"][idx], t["v"][idx], k_mix)
            loss_bits = loss_bits + nll.sum()
            count += nb_g
        (loss_bits / count).backward()
        opt.step()
        sched.step()
        step += 1
        value = float(loss_bits) / count
        ema = value if ema is None else 0.99 * ema + 0.01 * value
        if step % 200 == 0 or step == steps:
            log(f"step {step}/{steps}  {ema:.4f} bits/subpixel  {time.time() - start:.0f} s")
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(ckpt, nets, opt, sched, step, hidden=hidden, k_mix=k_mix)
    return nets.cpu()


# ---------------------------------------------------------------- quantization

def quantize(nets, data: list[dict], k_mix: int) -> dict:
    """Float nets -> exact integer layers (net{g}.w/b/m/s{i}) and the float copies (float{g}.w/b{i})."""
    torch = _torch()
    head_scale = np.full(3 * k_mix, 16.0)  # head units: 1/16 step, 1/16 log-scale, 1/16 nat
    head_offset = np.zeros(3 * k_mix)
    head_offset[k_mix:2 * k_mix] = -logistic.LOG_SCALE_MIN  # the scale index counts from LOG_SCALE_MIN
    out = {}
    for g, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        x = data[g]["x"][:200_000].astype(np.float64)
        in_scale = context_mlp.FLOAT_INPUT_SCALE  # real input = integer feature * in_scale
        in_max = context_mlp.FEATURE_CLIP
        h_real = x * in_scale
        for i, lin in enumerate(linears):
            w = lin.weight.detach().numpy().astype(np.float64).T  # [in, out]
            b = lin.bias.detach().numpy().astype(np.float64)
            out[f"float{g}.w{i}"] = w.astype(np.float32)
            out[f"float{g}.b{i}"] = b.astype(np.float32)
            w_real = w * in_scale  # acting on the integer input
            w_scale = np.maximum(np.abs(w_real).max(axis=0), 1e-12) / 127  # per output channel
            wq = np.round(w_real / w_scale)
            fan_in = w.shape[0]
            assert fan_in * 127 * (in_max if i == 0 else ACT_MAX) < FLOAT32_EXACT
            last = i == len(linears) - 1
            pre = h_real @ w + b
            if last:
                target = head_scale  # output integer = real * 16 (+ offset)
                bias_units = (b + head_offset) / w_scale
            else:
                act_scale = max(np.percentile(np.maximum(pre, 0), 99.99), 1e-6) / ACT_MAX
                target = np.full(w.shape[1], 1.0 / act_scale)
                bias_units = b / w_scale
            m, s = multiplier(w_scale * target)
            out[f"net{g}.w{i}"] = wq.astype(np.int8)
            out[f"net{g}.b{i}"] = np.round(bias_units).astype(np.int64)
            out[f"net{g}.m{i}"], out[f"net{g}.s{i}"] = m, s
            if not last:
                h_real = np.maximum(pre, 0)
                in_scale, in_max = act_scale, ACT_MAX
        out[f"net{g}.in_max"] = np.array(context_mlp.FEATURE_CLIP)
    return out


def save(arrays: dict, out_dir: Path, model: str = "context-mlp") -> Path:
    _, prefix, version = MODELS[model]
    return weightstore.save(arrays, out_dir, prefix, version)


def tune_mix(arrays: dict, files: list[Path], log=print, model: str = "context-mlp") -> tuple[int, dict]:
    """The network's weight against the counts with the fewest exact bits on the tuning files."""
    images = [im for im in (load_rgb8(f) for f in files) if im is not None]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in MIX_CHOICES:
            path = Path(tmp) / f"mix{w}.npz"
            np.savez(path, **{**arrays, "mix_w": np.array(w)})
            codec = MODELS[model][0](path)
            bits = sum(codec._run(CostCoder, im, Signal("image", im.shape, 8))[2] for im in images)
            results[w] = bits / sum(im.size for im in images)
            log(f"mix {w}/16: {results[w]:.4f} bits/subpixel on the tuning files")
    best = min(results, key=results.get)
    return best, results


def run(data_dir: Path, out_dir: Path, steps: int, hidden: int, k_mix: int, crops: int, crop_size: int,
        batch: int, lr: float, seed: int, checkpoint_every: int, resume: bool, log=print,
        model: str = "context-mlp", augment: bool = False) -> Path:
    start = time.time()
    train_files, tune_files = image_split(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / f"{model}-features-{seed}-{crops}x{crop_size}{'-augmented' if augment else ''}.npz"
    if resume and cache.exists():
        with np.load(cache) as z:
            data = [{k: z[f"{g}.{k}"] for k in ("x", "p", "v")} for g in range(2)]
    else:
        data = extract(train_files, crops, crop_size, seed, log, model, augment)
        np.savez(cache, **{f"{g}.{k}": d[k] for g, d in enumerate(data) for k in d})
    log(f"features: {len(data[0]['v'])} first-channel and {len(data[1]['v'])} later-channel values")
    nets = train(data, out_dir, steps, hidden, k_mix, batch, lr, seed, checkpoint_every, resume, log)
    arrays = quantize(nets, data, k_mix)
    arrays.update(logistic.tables())
    arrays["k_mix"] = np.array(k_mix)
    arrays["counts"] = ClassicImageCodec().prior.astype(np.int32)
    mix_w, mix_bits = tune_mix(arrays, tune_files, log, model)
    arrays["mix_w"] = np.array(mix_w)
    recipe = {"command": f"neuralzip train {model} " + " ".join(sys.argv[3:]), "data": str(data_dir),
              "train_files": [f.name for f in train_files], "tuning_files": [f.name for f in tune_files],
              "steps": steps, "hidden": hidden, "k_mix": k_mix, "crops": crops, "crop_size": crop_size,
              "augment": list(AUGMENTS) if augment else [],
              "batch": batch, "lr": lr, "seed": seed, "mix_w": mix_w,
              "tuning_bits_per_subpixel": {str(k): round(v, 5) for k, v in mix_bits.items()},
              "seconds": round(time.time() - start)}
    arrays["recipe"] = np.array(json.dumps(recipe))
    return save(arrays, out_dir, model)
