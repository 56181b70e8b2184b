"""Train the lpc-nlms-mlp audio model's learned stage: `neuralzip train audio DIR -o weights`.

1. Features: the model's cascade (LPC + NLMS, no learned stage) runs over the
   training recordings (every 10th file is kept apart for tuning) and records,
   for a sample of positions, the integer inputs the network will see, the
   residual and the scale estimate. The cascade does not depend on the network,
   so one pass is enough.
2. Training (torch, CPU): a one-hidden-layer MLP outputs a mean correction (in
   units of scale/32) and a scale-class offset (half octaves); the loss is the
   residual's -log2 likelihood under a discretized logistic with that mean and
   scale, Adam with a cosine schedule.
3. Quantization: int8 weights per output unit, uint8 hidden activations
   calibrated on training features, integer rescaling (multiplier, one shift).
4. Initial counts of both count tables (without / with the learned stage) are
   learned on the training files with the quantized network; the held-out
   files are priced with the exact codec (classic, cascade only, full model),
   and everything is written as lpc-nlms-mlp-audio-v<N>-<hash>.npz with its recipe.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.media.detect import read_media
from neuralzip.models import classic_audio, lpc_nlms_mlp
from neuralzip.kernels import lpc_nlms_mlp as kern
from neuralzip.models.base import Signal
from neuralzip.models.classic_audio import ClassicAudioCodec
from neuralzip.coding.buckets import buckets_of, zigzag_array
from neuralzip.models.lpc_nlms_mlp import LpcNlmsMlpCodec
from neuralzip.train.classic_prior import PRIOR_TOTAL, training_files
from neuralzip.train.image import _torch, one_cycle, split_files

VERSION = 1
SHIFT = 16  # the rescaling shift of both layers


def _signal(media) -> Signal:
    return Signal("audio", media.samples.shape, media.bits, int(media.meta.get("rate", 0)))


def _chunks(codec: LpcNlmsMlpCodec, media):
    """(chunk frames, lane lengths, signal) for every chunk of one recording."""
    signal = _signal(media)
    for a, lengths in codec._layout(media.samples.shape[0], lpc_nlms_mlp.CHUNK_LANES):
        yield np.asarray(media.samples[a:a + int(lengths.sum())]), lengths, signal


def extract(files: list[Path], every: int, log=print) -> np.ndarray:
    """-> rows of (features..., residual, scale) from every `every`-th sample of each file."""
    codec = LpcNlmsMlpCodec(learned=False)
    rows = []
    for i, f in enumerate(files):
        media = read_media(f.read_bytes(), str(f))
        for part, lengths, signal in _chunks(codec, media):
            n = part.shape[0] * part.shape[1] // every + part.shape[1] + 1
            dump = np.zeros((n, kern.N_FEATURES + 2), np.int64)
            codec._code_chunk(part, lengths, signal, None, dump, every)
            rows.append(dump[np.any(dump != 0, axis=1)])
        if (i + 1) % 25 == 0 or i + 1 == len(files):
            log(f"features: {i + 1}/{len(files)} files, {sum(len(r) for r in rows)} rows")
    return np.concatenate(rows)


def _class_scale(torch, cls):
    """Mean |residual| of a scale class (the inverse of the kernels' scale_class: 2 classes per octave)."""
    return torch.pow(2.0, (cls + 1.0) / 2.0) / 16.0


def train(data: np.ndarray, hidden: int, steps: int, batch: int, lr: float, seed: int, log=print):
    torch = _torch()
    torch.manual_seed(seed)
    x = torch.tensor(data[:, :kern.N_FEATURES], dtype=torch.float32)
    r = torch.tensor(data[:, kern.N_FEATURES], dtype=torch.float32)
    s = torch.tensor(data[:, kern.N_FEATURES + 1], dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(kern.N_FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    with torch.no_grad():
        net[2].weight.mul_(0.1)
        net[2].bias.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps, 0.1)
    gen = torch.Generator().manual_seed(seed)

    def loss_bits(idx):
        out = net(x[idx])
        mean = out[:, 0] * s[idx] / (1 << kern.CORR_UNIT)
        scale = _class_scale(torch, x[idx, 8] + out[:, 1]) / 1.386 + 0.05  # logistic scale from mean |r|
        upper = torch.sigmoid((r[idx] + 0.5 - mean) / scale)
        lower = torch.sigmoid((r[idx] - 0.5 - mean) / scale)
        return -torch.log2(torch.clamp(upper - lower, min=1e-12)).mean()

    with torch.no_grad():
        base = float(loss_bits(torch.arange(min(len(x), 200000))))
    start = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        loss = loss_bits(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % max(1, steps // 10) == 0:
            log(f"step {step + 1}/{steps}: {float(loss):.4f} bits/sample (untrained {base:.4f}), "
                f"{time.time() - start:.0f} s")
    return net


def _multiplier(scale: np.ndarray) -> np.ndarray:
    return np.maximum(1, np.round(scale * (1 << SHIFT))).astype(np.int64)


def quantize(net, data: np.ndarray) -> dict:
    """int8 weights per unit, uint8 activations (calibrated on the features), integer rescaling."""
    w1 = net[0].weight.detach().double().numpy()
    b1 = net[0].bias.detach().double().numpy()
    w2 = net[2].weight.detach().double().numpy()
    b2 = net[2].bias.detach().double().numpy()
    x = data[:, :kern.N_FEATURES].astype(np.float64)
    act = np.maximum(x @ w1.T + b1, 0)
    sa = max(np.percentile(act.max(axis=1), 99.9), 1e-6) / 255.0  # activation scale
    sw1 = np.maximum(np.abs(w1).max(axis=1), 1e-9) / 127.0
    w1q = np.round(w1 / sw1[:, None]).astype(np.int8)
    b1q = np.round(b1 / sw1).astype(np.int64)
    sw2 = np.maximum(np.abs(w2).max(axis=1), 1e-9) / 127.0
    w2q = np.round(w2 / sw2[:, None]).astype(np.int8)
    b2q = np.round(b2 / (sw2 * sa)).astype(np.int64)
    return {"w1": w1q, "b1": b1q.astype(np.int32), "m1": _multiplier(sw1 / sa).astype(np.int32), "s1": np.array(SHIFT),
            "w2": w2q, "b2": b2q.astype(np.int32), "m2": _multiplier(sw2 * sa).astype(np.int32), "s2": np.array(SHIFT),
            "fw1": w1.astype(np.float32), "fb1": b1.astype(np.float32), "fw2": w2.astype(np.float32),
            "fb2": b2.astype(np.float32)}


def learn_counts(arrays: dict, files: list[Path], log=print) -> np.ndarray:
    """Initial counts of both tables: symbol histograms per class over the training files."""
    hist = np.zeros((2, kern.NCLS, classic_audio.ALPHABET))
    with tempfile.TemporaryDirectory() as tmp:
        codec = LpcNlmsMlpCodec(_write(dict(arrays, counts=np.ones((2, kern.NCLS, classic_audio.ALPHABET), np.int32)),
                                    Path(tmp) / "flat.npz"))

        def observe(lengths, res, corr, cls_base, cls_net):
            live = np.arange(res.shape[2])[None, None, :] < lengths[:, None, None]
            live = np.broadcast_to(live, res.shape)
            for table, values, classes in ((0, res, cls_base), (1, res - corr, cls_net)):
                sym = buckets_of(zigzag_array(values[live]))[0]
                np.add.at(hist[table], (classes[live].astype(np.int64), sym), 1)

        for i, f in enumerate(files):
            media = read_media(f.read_bytes(), str(f))
            for part, lengths, signal in _chunks(codec, media):
                codec._code_chunk(part, lengths, signal, None, observe=observe)
        log(f"counts: {len(files)} files")
    p = (hist + 0.5) / (hist + 0.5).sum(axis=-1, keepdims=True)
    return np.maximum(1, np.round(p * PRIOR_TOTAL["audio"])).astype(np.int32)


def _write(arrays: dict, path: Path) -> Path:
    np.savez(path, **arrays)
    return path


def evaluate(path: Path, files: list[Path]) -> dict:
    """Exact bits per sample on the tuning files: classic, the cascade alone, the full model."""
    totals = {"classic": 0.0, "cascade": 0.0, "lpc-nlms-mlp": 0.0, "float": 0.0, "samples": 0}
    for f in files:
        media = read_media(f.read_bytes(), str(f))
        signal = _signal(media)
        totals["classic"] += ClassicAudioCodec().likelihood(media.samples, signal)[1]
        totals["cascade"] += LpcNlmsMlpCodec(path, learned=False).likelihood(media.samples, signal)[1]
        fl, ex = LpcNlmsMlpCodec(path).likelihood(media.samples, signal)
        totals["lpc-nlms-mlp"] += ex
        totals["float"] += fl
        totals["samples"] += media.samples.size
    n = max(totals.pop("samples"), 1)
    return {k: round(v / n, 4) for k, v in totals.items()}


def run(data_dir: Path, out_dir: Path, hidden: int, steps: int, batch: int, lr: float, every: int, seed: int,
        log=print) -> Path:
    start = time.time()
    files = training_files(data_dir, "audio")
    if not files:
        raise SystemExit(f"no audio files in {data_dir}")
    fit, tune = split_files(files)
    log(f"{len(fit)} training files, {len(tune)} tuning files")
    data = extract(fit, every, log)
    net = train(data, hidden, steps, batch, lr, seed, log)
    arrays = quantize(net, data)
    arrays["counts"] = learn_counts(arrays, fit, log)
    recipe = {"command": f"neuralzip train audio {data_dir} -o {out_dir} --hidden {hidden} --steps {steps} "
                         f"--batch {batch} --lr {lr} --every {every} --seed {seed}",
              "training_files": len(fit), "tuning_files": len(tune), "rows": int(len(data)),
              "seconds": round(time.time() - start, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        trial = _write(arrays, Path(tmp) / "trial.npz")
        recipe["tuning_bits_per_sample"] = evaluate(trial, tune)
    log(f"tuning files, bits per sample: {recipe['tuning_bits_per_sample']}")
    return weightstore.save(dict(arrays, recipe=np.array(json.dumps(recipe))), out_dir, lpc_nlms_mlp.WEIGHTS_PREFIX,
                            VERSION)
