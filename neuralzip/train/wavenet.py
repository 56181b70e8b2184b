"""Train the wavenet audio model: `neuralzip train wavenet DIR -o weights`.

1. Data: every lane of every channel of the training recordings (every 10th file, sorted by name,
   is kept apart for tuning) through the model's input side as the coder computes it: the LPC
   fitted to each block of the lane (models.wavenet.LanePlans.fitted, the encoder's own analysis,
   with the rate's usual block: the encoder may choose a longer or shorter one per recording),
   then kernels/wavenet.track (the predictor's residuals r, the running mean |r| and the network's
   scaled, clipped inputs).
2. Training (torch): windows of --window samples; the network (neuralzip.models.wavenet: dilated
   causal convolutions, gated units, residual and skip 1x1 layers, a two-layer head) reads the
   inputs up to t - 1 and gives a discretized logistic mixture of r[t] in units of the running
   scale; the loss is -log2 p in bits per sample. Adam with a one-cycle schedule, checkpoints,
   --resume (train.image.fit).
3. Quantization: int16 weights per output channel within the bound that keeps every compiled
   sum in an int32, activations in 1/4096, integer rescales (train.quantize.int16_layer).
4. The tuning recordings are priced with the exact codec; the result is written as
   wavenet-audio-v<N>-<hash>.npz with its recipe inside.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.kernels import wavenet as kern
from neuralzip.media.detect import read_media
from neuralzip.models import wavenet as model
from neuralzip.models.base import Signal
from neuralzip.train.classic_prior import training_files
from neuralzip.train.image import _torch, fit, split_files
from neuralzip.train.quantize import int16_layer

NAME = "wavenet"
VERSION = 2  # v1: the fixed second-order predictor's residual; v2: the per-block LPC's


def sequences(files: list[Path], log=print) -> list[dict]:
    """Per lane of every recording the model can code (lanes restart the coder's state, so they
    are the trainer's sequences too): the network's inputs u and the targets (residual r, running
    scale a), as float32 arrays."""
    out = []
    for f in files:
        media = read_media(f.read_bytes(), str(f))
        if media.bits > model.MAX_BITS:
            continue
        values = np.asarray(media.samples, np.int64) + (1 << (media.bits - 1))
        block = model.block_size(int(media.meta.get("rate", 0)))
        for lengths in model.lane_layout(*values.shape, model.LANE_FRAMES, values.size + 1):  # one "chunk": all lanes
            lane_values = model.lane_values(values, 0, lengths)
            plans = model.LanePlans.fitted(lane_values, lengths, block, media.bits)
            for k, n in enumerate(lengths):
                r, a, u = kern.track(np.ascontiguousarray(lane_values[k, :n]), media.bits, *plans.lane(k))
                out.append({"u": u.astype(np.float32) / model.ONE, "r": r.astype(np.float32),
                            "a": a.astype(np.float32) / 16, "source": f.parent.name})
    log(f"{len(out)} lanes, {sum(len(s['r']) for s in out)} samples from {len(files)} recordings")
    return out


def build_net(k_mix: int, channels: int, layers: int, skip: int, hidden: int):
    torch = _torch()
    nn = torch.nn
    F = nn.functional

    class WaveNet(nn.Module):
        """u [batch, T] (the scaled residuals r / a) -> head outputs [batch, 3 k_mix, T], output t
        reading u[t - 1] and earlier (u[-1] = 0)."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Conv1d(1, channels, 1)
            self.gates = nn.ModuleList(nn.Conv1d(channels, 2 * channels, 2, dilation=2 ** i) for i in range(layers))
            self.outs = nn.ModuleList(nn.Conv1d(channels, channels + skip, 1) for _ in range(layers))
            self.hidden = nn.Conv1d(skip, hidden, 1)
            self.head = nn.Conv1d(hidden, 3 * k_mix, 1)

        def forward(self, u):
            x = F.pad(u, (1, 0))[:, None, :-1]  # the input of step t is u[t - 1]
            h = self.embed(x).clamp(-model.LIMIT, model.LIMIT)
            skip_sum = 0
            for i, (gate, out) in enumerate(zip(self.gates, self.outs)):
                z = gate(F.pad(h, (2 ** i, 0)))
                a, b = z.chunk(2, dim=1)
                o = out(torch.tanh(a) * torch.sigmoid(b))
                h = (h + o[:, :channels]).clamp(-model.LIMIT, model.LIMIT)
                skip_sum = skip_sum + o[:, channels:]
            s = skip_sum.clamp(0, model.LIMIT)
            return self.head(self.hidden(s).clamp(0, model.LIMIT))

    return WaveNet()


def nll_bits(out, r, a, k_mix: int):
    """Mean -log2 p of residuals r [batch, T] under the heads out [batch, 3 k_mix, T] scaled by the
    running scale a [batch, T] (in levels), as the exact codec reads them."""
    torch = _torch()
    mu = out[:, :k_mix].clamp(-model.LIMIT, model.LIMIT) * a[:, None]
    log_s = (out[:, k_mix:2 * k_mix] + torch.log(a[:, None])).clamp(model.LOG_SCALE_MIN, model.LOG_SCALE_MAX)
    inv = torch.exp(-log_s)
    x = r[:, None]
    hi = torch.sigmoid((x + 0.5 - mu) * inv)
    lo = torch.sigmoid((x - 0.5 - mu) * inv)
    mass = (hi - lo).clamp_min(1e-12)
    logp = torch.logsumexp(torch.log_softmax(out[:, 2 * k_mix:], dim=1) + torch.log(mass), dim=1)
    return -logp.mean() / np.log(2)


def train(net, seqs: list[dict], ckpt: Path, steps: int, k_mix: int, batch: int, window: int, lr: float, seed: int,
          checkpoint_every: int, resume: bool, balance_sources: bool = False, log=print, **meta):
    """Windows are drawn in proportion to the channels' lengths, or (balance_sources) so that every
    source folder gets the same share whatever its size."""
    torch = _torch()
    seqs = [s for s in seqs if len(s["r"]) > window]
    if not seqs:
        raise SystemExit(f"no training channel is longer than --window {window}")
    weights = np.array([len(s["r"]) - window for s in seqs], np.float64)
    if balance_sources:
        sources = [s["source"] for s in seqs]
        per_source = {src: sum(w for w, o in zip(weights, sources) if o == src) for src in set(sources)}
        weights = np.array([w / per_source[src] for w, src in zip(weights, sources)])
    cum = torch.as_tensor(np.cumsum(weights / weights.sum()))
    data = [{k: torch.as_tensor(s[k]) for k in ("u", "r", "a")} for s in seqs]

    def batch_loss(gen):
        picks = torch.searchsorted(cum, torch.rand(batch, generator=gen, dtype=torch.float64)).clamp(max=len(data) - 1)
        rows = {"u": [], "r": [], "a": []}
        for i in picks.tolist():
            start = int(torch.randint(0, len(data[i]["r"]) - window, (), generator=gen))
            for k in rows:
                rows[k].append(data[i][k][start:start + window])
        u, r, a = (torch.stack(rows[k]) for k in ("u", "r", "a"))
        return nll_bits(net(u), r, a, k_mix)

    return fit(net, batch_loss, ckpt, steps, lr, seed, checkpoint_every, resume, log, 50, "bits/sample", k_mix=k_mix, **meta)


def quantize(net, k_mix: int) -> dict:
    """The exact network's arrays (prefix "wn") and the float copy ("fwn"). Every layer reads
    integers in 1/ONE; the gates' pre-activations come out in 1/PRE_ONE, the residual and skip
    updates and the hidden layer in 1/ONE, the head's means in 1/ONE of the running scale and its
    log-scales and logits in 1/16."""
    arr = {f"fwn.{name}": t.detach().numpy().astype(np.float32) for name, t in net.state_dict().items()}

    def weights(conv):  # [out, in] with the tap major, the channel minor; per input integer
        w = conv.weight.detach().double().numpy()
        return w.transpose(0, 2, 1).reshape(len(w), -1) / model.ONE

    def bias(conv):
        return conv.bias.detach().double().numpy()

    def bound(conv, in_max):  # the largest weight that keeps the layer's int32 sums exact
        fan = conv.weight.shape[1] * conv.weight.shape[2]
        return min(32767, (2 ** 31 - 1) // (fan * in_max))

    def layer(conv, out_unit, in_max, prefix):
        int16_layer(weights(conv), bias(conv), out_unit, bound(conv, in_max), prefix, arr)

    layer(net.embed, model.ONE, model.LIMIT_INT, "wn.embed")
    for i, (gate, out) in enumerate(zip(net.gates, net.outs)):
        layer(gate, model.ONE, model.LIMIT_INT, f"wn.gate{i}")
        layer(out, model.ONE, model.ONE, f"wn.out{i}")
    layer(net.hidden, model.ONE, model.LIMIT_INT, "wn.hidden")
    units = np.repeat([float(model.ONE), 16.0, 16.0], k_mix)
    layer(net.head, units, model.LIMIT_INT, "wn.head")
    arr["wn.layers"] = np.array(len(net.gates))
    arr["wn.k_mix"] = np.array(k_mix)
    arr["wn.predictor"] = np.array("lpc")
    arr.update(model.tables())
    return arr


def evaluate(path: Path, files: list[Path], log=print) -> dict:
    """Exact and float bits per sample of the tuning recordings under the codec with these weights."""
    codec = model.WaveNetCodec(path)
    exact = flt = n = 0.0
    for f in files:
        media = read_media(f.read_bytes(), str(f))
        if media.bits > model.MAX_BITS:
            continue
        signal = Signal("audio", media.samples.shape, media.bits, int(media.meta.get("rate", 0)))
        fb, eb = codec.likelihood(np.asarray(media.samples), signal)
        exact, flt, n = exact + eb, flt + fb, n + media.samples.size
    return {"exact": exact / max(n, 1), "float": flt / max(n, 1)}


def run(data_dir: Path, out_dir: Path, steps: int, k_mix: int, channels: int, layers: int, skip: int, hidden: int,
        batch: int, window: int, lr: float, seed: int, checkpoint_every: int, resume: bool, balance_sources: bool = False,
        log=print) -> Path:
    start = time.time()
    files = training_files(data_dir, "audio")
    if not files:
        raise SystemExit(f"no recordings found in {data_dir}")
    train_files, tune_files = split_files(files) if len(files) >= 10 else (files, files[:1])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch = _torch()
    torch.manual_seed(seed)
    hyper = {"channels": channels, "layers": layers, "skip": skip, "hidden": hidden}
    net = build_net(k_mix, **hyper)
    train(net, sequences(train_files, log), out_dir / f"{NAME}-train.ckpt", steps, k_mix, batch, window, lr, seed,
          checkpoint_every, resume, balance_sources, log, **hyper)
    arrays = quantize(net, k_mix)
    recipe = {"command": f"neuralzip train {NAME} " + " ".join(sys.argv[3:]), "data": str(data_dir),
              "train_files": [f.name for f in train_files], "tuning_files": [f.name for f in tune_files],
              "steps": steps, **hyper, "mixtures": k_mix, "batch": batch, "window": window, "lr": lr, "seed": seed,
              "balance_sources": balance_sources,
              "train_seconds": round(time.time() - start)}
    arrays["recipe"] = np.array(json.dumps(recipe))
    path = weightstore.save(arrays, out_dir, model.WEIGHTS_PREFIX, VERSION)
    scores = evaluate(path, tune_files, log)
    log(f"tuning files: exact {scores['exact']:.4f}, float {scores['float']:.4f} bits/sample")
    return path
