"""Train the VAE image model: `neuralzip train vae DIR -o weights`.

1. Data: random PATCH x PATCH patches of the 8-bit RGB training images with
   their context (the rows above and columns to the left, vae_layout; every
   10th file, sorted by name, is kept apart for tuning). A share of the
   patches lose their row above or their columns to the left, as at an image's
   top and left edges.
2. Training (torch): an MLP encoder q(z|x, context) (logistic posterior per
   latent), an MLP decoder p(x|z, context) (per pixel a discretized logistic
   per channel, G and B coupled to the earlier channels' residuals as in
   PixelCNN++). The loss is the
   negative ELBO of the *discretized* model the codec codes, in bits per
   subpixel: -log2 p(x | bin median) + LATENTS * BIN_BITS + log2 Q(bin | x),
   with the bin drawn from Q and the decoder input passed straight through.
   Adam with a one-cycle schedule; a checkpoint every --checkpoint-every steps,
   --resume continues from it.
3. Quantization: int16 weights per output channel, 16-bit activations (spanning
   HEADROOM times the largest activation seen on training patches, so nothing
   seen is clipped), float64 sums, integer rescaling into the codec's output units;
   the float layers are kept for the report's nll_float_bits.
4. The tuning files are priced with the exact codec; the result is written as
   vae-image-v<N>-<hash>.npz with its recipe inside.

Weights with context get the neighbour counts (models/neighbour_counts.py: an
adaptive part of the likelihood): their scale and limit, their linear taps
(train/neighbour_taps.py), the prior their tables start from (v7 on: the
residuals counted per table and context, counts_prior) and the vae's share of
the mixture per channel and phase, all fitted on the training files (the
shares: the float model's bits at each share, the fewest per channel and phase).
`--add-counts WEIGHTS` adds them to a file with context (v3 on; how v5 was made from v3, and the
first step of v6).

`--for-mixture WEIGHTS` trains a file's networks further on the loss the codec pays: each
subpixel's bits under the mixture of the vae and the counts (train_for_mixture), then quantizes
them and fits the counts anew. The second step of v6, from the first step's file.

`--requantize WEIGHTS` redoes step 3 for an existing weights file (no training):
how v2 was made from v1 (its encoder, whose activations were calibrated at the
99.99th percentile and clipped above it), and v3 from its training run's file
(its decoder, calibrated so; see weights/RECIPES.md).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.exact import logistic
from neuralzip.errors import InputError
from neuralzip.models import vae_layout as L
from neuralzip.models.neighbour_counts import DEFAULT as DEFAULT_COUNTS, SHARES, CountsParams
from neuralzip.exact.mlp import FloatMLP
from neuralzip.train import neighbour_taps
from neuralzip.train.quantize import float_layers, quantize_layers
from neuralzip.train.image import (_torch, cached_pool, fit, image_split, load_checkpoint, load_rgb8, one_cycle,
                                   save_checkpoint)

VERSION = 9  # v9: v8 with a third table of counts (the ring's value nearest the taps' prediction, the snap), the three mixed by two nested splits learned online; v8: v7 with the counts' floor at 1/32 of a count (counts.scale 32) instead of 1/3; v7: a second table of counts (the rings' median) mixed in by a mixer learned online, and the tables start from a prior counted on the training photos; v6: the counts' context reads the neighbours' errors (and G's and B's differences), the networks trained further on the mixture (train_for_mixture); v5: v4 with the counts' share fitted per channel and phase; v4: v3 with the neighbour counts mixed into the likelihood; v3: the networks read the patch's context; v2: v1's encoder requantized with headroom; v1: the
# first networks, activations calibrated at the 99.99th percentile (clipped above)
HEADROOM = 1.5  # hidden activations span 1.5 x the largest one seen on the calibration patches
CALIBRATION = 100_000  # training patches the activation ranges are calibrated on
WEIGHTS_PREFIX = "vae-image"
WARMUP, WARMUP_START = 3000, 0.05
MARGIN = L.CONTEXT_ROWS  # pool windows: the patch and its context (as many rows above as columns left)
UNCONDITIONED_VERSION = 2  # what --requantize writes for weights without context (how v2 was made)
DROP_CONTEXT = 0.15  # share of training patches without a row above (and, apart, without columns left)
# the counts' prior (v7 on): each context's residuals on the training photos scaled to this total (or
# their own count, if fewer); v7 and v8 had 512, which priced best on the tuning files among 32, 128,
# 512, 2048, 8192 (float mixture -0.26%, 2048 -0.24%, 8192 +0.02%; the study in weights/RECIPES.md,
# v7) with a floor of 1/3; with v8's floor of 1/32 a lighter prior prices better (64: -0.08%), and
# v9 takes 64 (exact, three tables: tuning files 3.3041 against 3.3074 with 512)
PRIOR_WEIGHT = 64


def patch_pool(files: list[Path], count: int, seed: int, log=print, margin: int = MARGIN) -> np.ndarray:
    """`count` random windows (uint8 [n, PATCH + margin, PATCH + margin, 3]) spread over the images by
    area: a patch at [margin:, margin:] with its context rows above and columns to the left (margin
    0: bare patches, as the weights before v3 were calibrated on)."""
    rng = np.random.default_rng(seed)
    images = [im for im in (load_rgb8(f) for f in files) if im is not None and im.shape[2] == 3]
    areas = np.array([im.shape[0] * im.shape[1] for im in images], np.float64)
    per = np.floor(count * areas / areas.sum()).astype(int)
    window = L.PATCH + margin
    d = np.arange(window)
    parts = []
    for im, n in zip(images, per):
        ys = rng.integers(0, im.shape[0] - window + 1, n)
        xs = rng.integers(0, im.shape[1] - window + 1, n)
        parts.append(im[ys[:, None, None] + d[None, :, None], xs[:, None, None] + d[None, None, :]])
    log(f"{sum(per)} patches from {len(images)} images")
    return np.concatenate(parts)


def split_windows(windows: np.ndarray, rng: np.random.Generator | None = None):
    """-> (patches uint8 [n, PIXELS, 3], context inputs int64 [n, CONTEXT_INPUTS]) of pool windows.
    With rng, the row above (with the corner) is dropped from a DROP_CONTEXT share of them, and
    the columns to the left from another, as at the top and left of an image (or a small crop)."""
    n = len(windows)
    patches = windows[:, MARGIN:, MARGIN:].reshape(n, L.PIXELS, 3)
    values = windows[:, MARGIN + L.CONTEXT_OFFSETS[:, 0], MARGIN + L.CONTEXT_OFFSETS[:, 1]]
    has_above = np.ones(n, bool) if rng is None else rng.random(n) >= DROP_CONTEXT
    has_left = np.ones(n, bool) if rng is None else rng.random(n) >= DROP_CONTEXT
    return patches, L.context_inputs(values, has_above, has_left)


def encoder_inputs(patches: np.ndarray, context: np.ndarray) -> np.ndarray:
    """The encoder's integer inputs: the patch's pixel values, then its context."""
    return np.concatenate([patches.reshape(len(patches), -1).astype(np.int64), context], axis=1)


def build_nets(hidden: int):
    nn = _torch().nn

    def mlp(n_in, n_out):
        return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                             nn.Linear(hidden, n_out))

    enc, dec = mlp(L.DIMS + L.CONTEXT_INPUTS, 2 * L.LATENTS), mlp(L.LATENTS + L.CONTEXT_INPUTS, L.OUTPUTS)
    torch = _torch()
    with torch.no_grad():
        dec[-1].weight.mul_(0.1)
        b = dec[-1].bias.view(L.OUT_KINDS, L.PIXELS)
        b[0:3].fill_(0.0)
        b[3:6].fill_(2.0)
        b[6:].fill_(0.0)
        enc[-1].bias.view(2, L.LATENTS)[1].fill_(-1.0)
    # the prior p(z | context): a logistic per latent, its mass per bin as the posterior's; it starts
    # as the uniform prior over the bins (mean 0, scale 1: the bins have equal mass)
    prior = mlp(L.CONTEXT_INPUTS, 2 * L.LATENTS)
    with torch.no_grad():
        prior[-1].weight.mul_(0.1)
        prior[-1].bias.fill_(0.0)
    return nn.ModuleDict({"enc": enc, "dec": dec, "prior": prior})


class Discretizer:
    """Torch views of the latent bins (float, as the exact tables are built)."""

    def __init__(self, torch):
        tables = L.tables()
        self.edges = torch.as_tensor(L.bin_edges(), dtype=torch.float32)
        self.zin_real = torch.as_tensor((tables["lut.zin"] - 128) / L.ZIN_SCALE, dtype=torch.float32)
        big = torch.tensor([1e4])
        self.lo = torch.cat([-big, self.edges])
        self.hi = torch.cat([self.edges, big])


def posterior(out, torch):
    mu, log_s = out[:, :L.LATENTS], out[:, L.LATENTS:]
    log_s = log_s.clamp(L.Q_LOG_SCALE_MIN, L.Q_LOG_SCALE_MIN + (L.Q_N_SCALES - 1) / L.Q_SCALE_STEPS)
    return mu, log_s


def bin_log2_mass(mu, log_s, bins, disc, torch):
    """log2 Q(bin | x) of the logistic posterior's mass in each bin. The outer bins reach to
    infinity: their open ends are 1 and 0 exactly (a finite stand-in let the encoder push a mean
    past it, where the outer bin's computed mass fell towards 0: negative latent cost in training,
    none in the codec)."""
    inv = torch.exp(-log_s)
    hi = torch.where(bins == L.N_BINS - 1, 1.0, torch.sigmoid((disc.hi[bins] - mu) * inv))
    lo = torch.where(bins == 0, 0.0, torch.sigmoid((disc.lo[bins] - mu) * inv))
    return torch.log2((hi - lo).clamp_min(1e-12))


def pixel_means(dec_out, x, torch):
    """-> (means, log-scales) [n, 3, PIXELS]: coupled means as the codec computes them (the
    neighbours' and earlier channels' residuals are known when a subpixel is decoded)."""
    o = dec_out.view(-1, L.OUT_KINDS, L.PIXELS)
    mu, log_s = L.MEAN_OFFSET + L.MEAN_GAIN * o[:, 0:3], o[:, 3:6]
    coup = o[:, 6:].clamp(-L.COUPLING_MAX, L.COUPLING_MAX)
    res = x - mu  # [n, 3, PIXELS]
    has = torch.as_tensor(L.NEIGHBOURS >= 0, dtype=torch.float32)  # [PIXELS, 4]
    idx = torch.as_tensor(np.maximum(L.NEIGHBOURS, 0))
    nres = res[:, :, idx]  # [n, 3, PIXELS, 4]
    spatial = (nres * (coup[:, 3:7].transpose(1, 2) * has).unsqueeze(1)).sum(dim=3)
    # activity: how far the decoded neighbours (and earlier channels) were from their means
    ares = res.detach().abs()
    act = (ares[:, :, idx] * has).sum(dim=3)
    act = act + torch.stack([torch.zeros_like(act[:, 0]), ares[:, 0], ares[:, 0] + ares[:, 1]], dim=1)
    log_s = log_s + coup[:, 7].unsqueeze(1) * torch.log2(1 + act.clamp(max=(L.ACT_TABLE - 1) / 16))
    r_res, g_res = res[:, 0], res[:, 1]
    means = mu + spatial + torch.stack([torch.zeros_like(r_res), coup[:, 0] * r_res,
                                        coup[:, 1] * r_res + coup[:, 2] * g_res], dim=1)
    log_s = log_s.clamp(logistic.LOG_SCALE_MIN, logistic.LOG_SCALE_MIN + (logistic.N_SCALES - 1) / logistic.LOG_SCALE_STEPS)
    return means, log_s


def pixel_nll_bits(means, log_s, x, torch):
    """-log2 of the discretized logistic at x (0..255, edges folded), per subpixel."""
    inv = torch.exp(-log_s)
    hi = torch.sigmoid((x + 0.5 - means) * inv)
    lo = torch.sigmoid((x - 0.5 - means) * inv)
    hi = torch.where(x >= 255, torch.ones_like(hi), hi)
    lo = torch.where(x <= 0, torch.zeros_like(lo), lo)
    return -torch.log2((hi - lo).clamp_min(1e-12))


def neg_elbo_bits(nets, patches, context, disc, torch, gen=None, counts_p=None, shares=None):
    """Per patch: (-log2 p(x|z, context), -log2 P(z|context), log2 Q(z|x, context)) of one bin draw; patches
    [n, PIXELS, 3] and context [n, CONTEXT_INPUTS] as integer tensors. With counts_p (the neighbour
    counts' probability of each subpixel, [n, 3, PIXELS]) the first term is the mixture's, the vae
    weighted by shares [3, PIXELS] (its channel's at its phase), the counts by the rest, as the codec
    mixes them."""
    x = patches.transpose(1, 2).float()  # [n, 3, PIXELS]
    ctx = context.float()
    enc_in = torch.cat([patches.float().reshape(len(patches), -1), ctx], dim=1) * L.ENC_INPUT_SCALE
    mu, log_s = posterior(nets["enc"](enc_in), torch)
    u = torch.rand(mu.shape, generator=gen).clamp(1e-6, 1 - 1e-6)
    z = mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
    bins = torch.bucketize(z.detach(), disc.edges)
    z_in = z + (disc.zin_real[bins] - z).detach()  # straight through: the decoder sees the bin median
    means, pix_ls = pixel_means(nets["dec"](torch.cat([z_in, (ctx - 128) / L.ZIN_SCALE], dim=1)), x, torch)
    nll = pixel_nll_bits(means, pix_ls, x, torch)
    if counts_p is not None:
        nll = -torch.log2(shares * torch.exp2(-nll) + (1 - shares) * counts_p)
    nll = nll.sum(dim=(1, 2))
    pmu, p_log_s = posterior(nets["prior"](ctx * L.ENC_INPUT_SCALE), torch)
    prior_bits = -bin_log2_mass(pmu, p_log_s, bins, disc, torch).sum(dim=1)
    return nll, prior_bits, bin_log2_mass(mu, log_s, bins, disc, torch).sum(dim=1)


def train(pool: np.ndarray, out_dir: Path, steps: int, hidden: int, batch: int, lr: float, seed: int,
          checkpoint_every: int, resume: bool, log=print):
    torch = _torch()
    torch.manual_seed(seed)
    nets = build_nets(hidden)
    opt = torch.optim.Adam(nets.parameters(), lr=lr)
    sched = one_cycle(opt, lr, steps, 0.05)
    ckpt = out_dir / "vae-train.ckpt"
    step = load_checkpoint(ckpt, nets, opt, sched, log) if resume and ckpt.exists() else 0
    disc = Discretizer(torch)
    gen = torch.Generator().manual_seed(seed + step)
    rng = np.random.default_rng(seed + step)
    ema = ema_q = None
    start = time.time()
    while step < steps:
        patches, context = split_windows(pool[rng.integers(0, len(pool), batch)], rng)
        nll, prior_bits, log2q = neg_elbo_bits(nets, torch.as_tensor(patches), torch.as_tensor(context), disc,
                                               torch, gen)
        loss = (nll + prior_bits + log2q).mean() / L.DIMS
        # KL warm-up: the latents' cost ramps in over the first WARMUP steps, so the encoder learns
        # to carry information before the prior's pull closes the latents (a standard VAE remedy)
        beta = min(1.0, WARMUP_START + step / WARMUP)
        objective = (nll + beta * (prior_bits + log2q)).mean() / L.DIMS
        opt.zero_grad()
        objective.backward()
        opt.step()
        sched.step()
        step += 1
        ema = float(loss.detach()) if ema is None else 0.99 * ema + 0.01 * float(loss.detach())
        refund = float((prior_bits + log2q).mean()) / L.DIMS
        ema_q = refund if ema_q is None else 0.99 * ema_q + 0.01 * refund
        if step % 100 == 0 or step == steps:
            log(f"step {step}/{steps}  {ema:.4f} bits/subpixel (latents net {ema_q:.4f})  {time.time() - start:.0f} s")
        if step % checkpoint_every == 0 or step == steps:
            save_checkpoint(ckpt, nets, opt, sched, step, hidden=hidden)
    return nets


# ---------------------------------------------------------------- training for the mixture

def aligned_pool(files: list[Path], counts_net, log=print):
    """Every patch of the training images that lies on the codec's grid with its full context (so
    each subpixel keeps the phase it is coded in), with the neighbour counts' probability of its
    subpixels when the image is coded as its own chain: (windows uint8 [n, PATCH + MARGIN, PATCH +
    MARGIN, 3], counts float32 [n, 3, PIXELS])."""
    from neuralzip.models.vae import counts_probabilities

    windows, probs = [], []
    d = np.arange(L.PATCH + MARGIN) - MARGIN
    for i, f in enumerate(files):
        im = load_rgb8(f)
        if im is None or im.shape[2] != 3:
            continue
        p = counts_probabilities(counts_net, im)
        ys, xs = np.meshgrid(np.arange(1, im.shape[0] // L.PATCH), np.arange(1, im.shape[1] // L.PATCH), indexing="ij")
        ys, xs = ys.ravel() * L.PATCH, xs.ravel() * L.PATCH
        windows.append(im[ys[:, None, None] + d[None, :, None], xs[:, None, None] + d[None, None, :]])
        dp = np.arange(L.PATCH)
        probs.append(p[ys[:, None, None] + dp[None, :, None], xs[:, None, None] + dp[None, None, :]]
                     .reshape(len(ys), L.PIXELS, 3).transpose(0, 2, 1).copy())
        log(f"the counts' probabilities: {i + 1}/{len(files)} training files, {sum(len(w) for w in windows)} patches")
    return np.concatenate(windows), np.concatenate(probs)


def nets_from_weights(arrays: dict, hidden: int):
    """Torch networks holding a weights file's float layers (fenc, fdec, fpri), to train on from."""
    torch = _torch()
    nets = build_nets(hidden)
    with torch.no_grad():
        for key, prefix in (("enc", "fenc"), ("dec", "fdec"), ("prior", "fpri")):
            linears = [m for m in nets[key] if isinstance(m, torch.nn.Linear)]
            layers = FloatMLP(arrays, prefix, 1.0).layers
            if [tuple(m.weight.shape) for m in linears] != [w.T.shape for w, _ in layers]:
                raise InputError(f"the weights' {key} network is not {hidden} wide")
            for m, (w, b) in zip(linears, layers):
                m.weight.copy_(torch.as_tensor(w.T))
                m.bias.copy_(torch.as_tensor(b))
    return nets


def train_for_mixture(weights: Path, data_dir: Path, out_dir: Path, steps: int, hidden: int, batch: int, lr: float,
                      seed: int, checkpoint_every: int, resume: bool, log=print) -> Path:
    """Train a weights file's networks (with context and counts, v4 on) further on the loss the codec
    pays: each subpixel's bits under the mixture of the vae and the neighbour counts, the vae at its
    channel's and phase's share (learned with the networks, from the file's). The vae may then leave
    to the counts what they predict well. The counts are fixed: their probabilities are computed once
    per training image (they read decoded values only). Then quantized and given counts fitted anew,
    as training does. -> the new weights file."""
    from neuralzip.models.vae import VAECodec

    arrays = weightstore.load(weights)
    codec = VAECodec(weights)
    if codec.net.counts is None:
        raise InputError(f"{weights}: training for the mixture needs weights with neighbour counts (v4 on)")
    torch = _torch()
    train_files, tune_files = image_split(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / f"vae-mixture-pool-{weightstore.file_hash(weights)}.npz"
    if resume and cache.exists():
        with np.load(cache) as z:
            windows, counts_p = z["windows"], z["counts"]
    else:
        windows, counts_p = aligned_pool(train_files, codec.net, log)
        np.savez(cache, windows=windows, counts=counts_p)
    torch.manual_seed(seed)
    nets = nets_from_weights(arrays, hidden)
    start_shares = np.clip(np.asarray(arrays["counts.shares"], np.float64).reshape(3, -1) / SHARES, 0.5 / SHARES,
                           1 - 0.5 / SHARES)
    share_logits = torch.nn.Parameter(torch.as_tensor(np.log(start_shares / (1 - start_shares)), dtype=torch.float32))
    holder = torch.nn.ModuleDict({"nets": nets})  # what is trained: the networks and the shares
    holder.register_parameter("share_logits", share_logits)
    disc = Discretizer(torch)
    phase = torch.as_tensor(L.PHASE)

    def batch_loss(gen):
        rng = np.random.default_rng(int(torch.randint(1 << 62, (1,), generator=gen)))
        pick = rng.integers(0, len(windows), batch)
        patches, context = split_windows(windows[pick], rng)
        shares = torch.sigmoid(share_logits)[:, phase]
        nll, prior_bits, log2q = neg_elbo_bits(nets, torch.as_tensor(patches), torch.as_tensor(context), disc, torch,
                                               gen, torch.as_tensor(counts_p[pick]), shares)
        return (nll + prior_bits + log2q).mean() / L.DIMS

    fit(holder, batch_loss, out_dir / "vae-mixture.ckpt", steps, lr, seed, checkpoint_every, resume, log,
        unit="bits/subpixel (mixture)", hidden=hidden)
    learned = np.round(torch.sigmoid(share_logits).detach().double().numpy() * SHARES, 2)
    log(f"the shares learned with the networks (sixteenths; the file's are fitted anew): {learned.tolist()}")
    out = dict(arrays)
    out.update(quantize(nets, patch_pool(train_files, CALIBRATION, seed, log), seed))
    recipe = json.loads(str(arrays["recipe"])) if "recipe" in arrays else {}
    recipe.update(trained_for_mixture_from=weightstore.file_hash(weights), mixture_command="neuralzip train vae "
                  + " ".join(sys.argv[3:]), mixture_steps=steps, mixture_batch=batch, mixture_lr=lr,
                  mixture_seed=seed, mixture_patches=len(windows), mixture_shares_learned=learned.tolist())
    return _save_and_price(out, recipe, out_dir, train_files, tune_files, log)


# ---------------------------------------------------------------- quantization

def quantize(nets, pool: np.ndarray, seed: int) -> dict:
    """The trained networks as exact layers, with the tables (quantize_networks)."""
    return quantize_networks({k: float_layers(nets[k]) for k in ("enc", "dec", "prior")}, pool, seed)


def quantize_networks(layers: dict, pool: np.ndarray, seed: int) -> dict:
    """Float layers {"enc", "dec", "prior": [(w [in, out], b)]} -> the weights file's arrays: each
    network exact (quantize_layers), its activations spanning HEADROOM times the largest seen on
    CALIBRATION pool windows (some losing a side of their context, as in training), and the tables.
    The decoder is calibrated on each patch's most probable bins under the float posterior (the bin
    holding its mean). Calibrated at the 99.99th percentile instead, the decoder clipped on a smooth
    photo and cost 3.3% there (urban_img_007; weights/RECIPES.md)."""
    rng = np.random.default_rng(seed)
    patches, context = split_windows(pool[rng.integers(0, len(pool), CALIBRATION)], rng)
    sample = encoder_inputs(patches, context)
    arrays = quantize_layers(layers["enc"], "enc", "fenc", sample, L.ENC_INPUT_SCALE, 0.0, *_encoder_units(), HEADROOM)
    mu = FloatMLP(arrays, "fenc", L.ENC_INPUT_SCALE).forward(sample.astype(np.float32))[:, :L.LATENTS]
    zin = np.concatenate([L.tables()["lut.zin"][np.searchsorted(L.bin_edges(), mu)], context], axis=1)
    kinds = np.repeat([0, 0, 0, 1, 1, 1] + [2] * (L.OUT_KINDS - 6), L.PIXELS)  # mean, log-scale, coupling
    dec_scale = np.array([L.MEAN_UNITS * L.MEAN_GAIN, logistic.LOG_SCALE_STEPS, L.COUPLING_UNITS])[kinds]
    dec_offset = np.array([L.MEAN_OFFSET / L.MEAN_GAIN, -logistic.LOG_SCALE_MIN, 0.0])[kinds]
    arrays.update(quantize_layers(layers["dec"], "dec", "fdec", zin, 1.0 / L.ZIN_SCALE, -128.0 / L.ZIN_SCALE,
                                  dec_scale, dec_offset, HEADROOM))
    arrays.update(quantize_layers(layers["prior"], "pri", "fpri", context, L.ENC_INPUT_SCALE, 0.0,
                                  *_encoder_units(), HEADROOM))
    arrays.update(logistic.tables())
    arrays.update(L.tables())
    arrays["layout.context_offsets"] = L.CONTEXT_OFFSETS
    return arrays


def _encoder_units():
    """The encoder's output units: posterior means in 1/Z_UNITS, log-scales as indices from Q_LOG_SCALE_MIN."""
    scale = np.concatenate([np.full(L.LATENTS, float(L.Z_UNITS)), np.full(L.LATENTS, float(L.Q_SCALE_STEPS))])
    offset = np.concatenate([np.zeros(L.LATENTS), np.full(L.LATENTS, -L.Q_LOG_SCALE_MIN)])
    return scale, offset


def requantize(weights: Path, data_dir: Path, out_dir: Path, seed: int = 0, log=print) -> Path:
    """The weights file again with its networks quantized from their own float layers, calibrated
    on CALIBRATION training windows with HEADROOM: all three for weights with context
    (quantize_networks; how the shipped v3 was made from its training run's file), the encoder alone
    for weights without (how v2 was made from v1; decoder, prior and tables as they were). No torch
    needed. -> the new weights file (version VERSION, or UNCONDITIONED_VERSION without context)."""
    train_files, tune_files = image_split(data_dir)
    arrays = weightstore.load(weights)
    context = "layout.context_offsets" in arrays

    def stored_layers(prefix):  # the float layers kept in the file, as FloatMLP reads them
        return [(w.astype(np.float64), b.astype(np.float64)) for w, b in FloatMLP(arrays, prefix, 1.0).layers]

    if context:  # v3 on: every network again, as training quantizes them
        pool = patch_pool(train_files, CALIBRATION, seed, log)
        arrays.update(quantize_networks({k: stored_layers(f) for k, f in (("enc", "fenc"), ("dec", "fdec"),
                                                                         ("prior", "fpri"))}, pool, seed))
    else:  # how v2 was made from v1: the encoder alone, on bare patches
        pool = patch_pool(train_files, CALIBRATION, seed, log, 0)
        arrays.update(quantize_layers(stored_layers("fenc"), "enc", "fenc", pool.reshape(len(pool), -1),
                                      L.ENC_INPUT_SCALE, 0.0, *_encoder_units(), HEADROOM))
    recipe = json.loads(str(arrays["recipe"])) if "recipe" in arrays else {}
    recipe.update(requantized_from=weightstore.file_hash(weights), requantize_command="neuralzip train vae "
                  + " ".join(sys.argv[3:]), encoder_headroom=HEADROOM, calibration_patches=CALIBRATION,
                  calibration_seed=seed)
    return _save_and_price(arrays, recipe, out_dir, train_files, tune_files, log,
                           VERSION if context else UNCONDITIONED_VERSION)


def add_counts(weights: Path, data_dir: Path, out_dir: Path, log=print) -> Path:
    """The weights file (with context) again with the neighbour counts, their shares fitted on DATA's
    training files: how v5 was made from v3 (the networks unchanged; v4 was the same with one share
    for all, 8). -> the new weights file."""
    arrays = weightstore.load(weights)
    if "layout.context_offsets" not in arrays:
        raise InputError(f"{weights}: neighbour counts need weights whose networks read the patch context (v3 on)")
    recipe = json.loads(str(arrays["recipe"])) if "recipe" in arrays else {}
    recipe.update(counts_added_to=weightstore.file_hash(weights))
    return _save_and_price(arrays, recipe, out_dir, *image_split(data_dir), log)


def _save_and_price(arrays: dict, recipe: dict, out_dir: Path, train_files: list[Path], tune_files: list[Path],
                    log, version: int = VERSION) -> Path:
    """Write the weights file with its recipe inside (from v4 on with the neighbour counts where the
    networks read the context), and log the tuning files' -ELBO under it."""
    if version >= 4 and "layout.context_offsets" in arrays:
        _add_fitted_counts(arrays, recipe, train_files, log)
    arrays["recipe"] = np.array(json.dumps(recipe))
    path = weightstore.save(arrays, out_dir, WEIGHTS_PREFIX, version)
    scores = evaluate(path, tune_files, log)
    log(f"tuning files: exact -ELBO {scores['exact']:.4f}, float {scores['float']:.4f} bits/subpixel, "
        f"initial bits {scores['initial_bits']:.0f}")
    return path


def _add_fitted_counts(arrays: dict, recipe: dict, train_files: list[Path], log) -> None:
    """The neighbour counts' parameters into arrays (any earlier ones replaced): DEFAULT_COUNTS' scale
    and limit, linear taps fitted on the training files (train/neighbour_taps.py), the prior the
    counts start from (counts_prior, of the residuals over the training files), then the vae's
    share of the mixture per channel and phase, the one with the fewest float-model bits over the
    training files (each its own chain; vae.share_costs)."""
    from neuralzip.models.vae import counts_residuals, share_costs

    for key in [k for k in arrays if k.startswith("counts.")]:
        del arrays[key]
    counts = CountsParams(DEFAULT_COUNTS.shares, DEFAULT_COUNTS.scale, DEFAULT_COUNTS.limit,
                          neighbour_taps.fit_taps(train_files, log), DEFAULT_COUNTS.activity, DEFAULT_COUNTS.median,
                          snap=DEFAULT_COUNTS.snap)
    arrays.update(counts.arrays())
    residuals = _summed_over(arrays, train_files, counts_residuals, "counting the neighbour counts' prior", log)
    arrays.update(counts.with_prior(counts_prior(residuals, counts.limit)).arrays())
    costs = _summed_over(arrays, train_files, share_costs, "fitting the neighbour counts' shares", log)
    shares = np.argmin(costs, axis=-1).astype(np.int64)
    arrays["counts.shares"] = shares
    recipe["neighbour_counts"] = {"shares": shares.tolist(), "fitted_on": len(train_files),
                                  "taps": neighbour_taps.TAPS, "robust_iterations": neighbour_taps.ROBUST_ITERATIONS,
                                  "robust_scale": neighbour_taps.ROBUST_SCALE,
                                  "scale": DEFAULT_COUNTS.scale, "limit": DEFAULT_COUNTS.limit,
                                  "activity": DEFAULT_COUNTS.activity, "median": DEFAULT_COUNTS.median,
                                  "snap": DEFAULT_COUNTS.snap,
                                  "prior_weight": PRIOR_WEIGHT}


def _summed_over(arrays: dict, files: list[Path], measure, what: str, log):
    """measure(net, image) summed over the 8-bit RGB images `files`, net the vae of `arrays`."""
    from neuralzip.models.vae import VAECodec

    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        net = VAECodec(weightstore.save(dict(arrays, recipe=np.array("{}")), Path(tmp), WEIGHTS_PREFIX, VERSION)).net
        for i, f in enumerate(files):
            img = load_rgb8(f)
            if img is not None:
                total = total + measure(net, img)
            log(f"{what}: {i + 1}/{len(files)} training files")
    return total


def counts_prior(residuals: np.ndarray, limit: int) -> np.ndarray:
    """The counts' prior from residual counts per table and context [tables, CONTEXTS, SPAN]: each
    context's row scaled to a total of PRIOR_WEIGHT (rows counted fewer times kept as they are),
    rounded to nearest, uint16 (no entry passes PRIOR_WEIGHT); below the halving `limit` per row."""
    residuals = np.asarray(residuals, np.float64)
    totals = residuals.sum(axis=-1, keepdims=True)
    scale = np.minimum(1.0, PRIOR_WEIGHT / np.maximum(totals, 1.0))
    prior = np.floor(residuals * scale + 0.5)
    if prior.sum(axis=-1).max() > limit:
        raise ValueError("the counts' prior would pass the halving limit")
    return prior.astype(np.uint16)


def evaluate(path: Path, files: list[Path], log=print) -> dict:
    """Exact and float -ELBO of the tuning files (each file its own chain), bits per subpixel."""
    from neuralzip.models.base import Signal
    from neuralzip.models.vae import VAECodec

    codec = VAECodec(path)
    exact = floats = initial = dims = 0.0
    for f in files:
        im = load_rgb8(f)
        if im is None:
            continue
        enc = codec.encode(im, Signal("image", im.shape, 8))
        exact, floats, initial = exact + enc.nll_bits, floats + enc.nll_float_bits, initial + enc.initial_bits
        dims += im.size
        log(f"{f.name}: exact {enc.nll_bits / im.size:.4f}, float {enc.nll_float_bits / im.size:.4f} bits/subpixel")
    return {"exact": exact / dims, "float": floats / dims, "initial_bits": initial}


def run(data_dir: Path, out_dir: Path, steps: int, hidden: int, patches: int, batch: int, lr: float, seed: int,
        checkpoint_every: int, resume: bool, log=print) -> Path:
    start = time.time()
    train_files, tune_files = image_split(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = cached_pool(out_dir / f"vae-patches-{seed}-{patches}.npy", resume,
                       lambda: patch_pool(train_files, patches, seed, log))
    nets = train(pool, out_dir, steps, hidden, batch, lr, seed, checkpoint_every, resume, log)
    arrays = quantize(nets, pool, seed)
    recipe = {"command": "neuralzip train vae " + " ".join(sys.argv[3:]), "data": str(data_dir),
              "train_files": [f.name for f in train_files], "tuning_files": [f.name for f in tune_files],
              "steps": steps, "hidden": hidden, "patches": patches, "batch": batch, "lr": lr, "seed": seed,
              "latents": L.LATENTS, "bin_bits": L.BIN_BITS, "patch": L.PATCH, "train_seconds": round(time.time() - start)}
    return _save_and_price(arrays, recipe, out_dir, train_files, tune_files, log)
