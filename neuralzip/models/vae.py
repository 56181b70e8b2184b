"""Latent-variable image model: a VAE over 8x8 patches, coded with bits-back ANS.

Every PATCH x PATCH patch (3 channels; images are padded by repeating their
last row and column, grey/LA/RGBA planes are grouped in threes) has LATENTS
discrete latents. The exact integer model:
- q(z|x, c): the encoder network's logistic posterior per latent, its mass per
  bin read from the CDF table (vae_layout.tables);
- p(z|c): weights v3, a prior network's logistic per latent, read through the
  same tables; v1 and v2, learned counts per latent dimension over the bins;
- p(x|z, c): the decoder network's discretized logistic per subpixel (mean,
  scale), turned into an integer pmf over residual buckets plus low bits
  (neuralzip.exact.logistic). The pixels of a patch come in 7 coarse-to-fine
  phases (vae_layout.PHASE): the stride-4 grid from z (and c) alone, then each
  phase with its mean corrected by the residuals of its decoded neighbours in
  the patch, and G and B by the residuals of the earlier channels, with
  coefficients the decoder outputs (a PixelVAE-style local likelihood that
  stays parallel: 21 coder calls per group of patches).
c is the patch's context (weights v3): the two decoded rows above it and the
two columns to its left (vae_layout.CONTEXT_OFFSETS). Patches are then decoded
in waves, the anti-diagonals of the patch grid, so their contexts come first
(ChainOrder); weights v1 and v2 read no context and decode patches in any order.

One bits-back chain runs over every patch of an image, or of every image of
an archive ("units"), on one ANS stack (coding.stream.AnsStack). Per group of
units (ChainOrder.spans) the encoder pops z with q, pushes x with p(x|z) and
pushes z with p(z); the decoder runs the groups backwards: pop z with p(z),
pop x, push z with q, which gives the borrowed bits back. The encoder's very
first group has nothing to borrow from, and a group borrows only when the
stack surely holds enough (POP_BITS_MAX per latent): otherwise ("seeded",
listed in the params) its z is the posterior's most probable bin, not popped,
so it pays -log2 q(z|x) more than the ELBO: the chain's `initial_bits`,
reported apart. A chain is cut after CHAIN_UNITS units (a new chunk with its
own initial bits), so the coder's memory stays bounded.
Images that are not 8-bit are coded by the classic model.
"""

from pathlib import Path

import numpy as np

from neuralzip import progress, weightstore
from neuralzip.coding import buckets
from neuralzip.coding.stream import AnsStack, symbol_bits
from neuralzip.errors import ContainerError, InputError
from neuralzip.exact import logistic
from neuralzip.exact.log2 import log2_fixed
from neuralzip.exact.mlp import FloatMLP, QuantizedMLP
from neuralzip.kernels import vae as _k
from neuralzip.models import vae_layout as L
from neuralzip.models.base import Encoded, ParamError, decode_batch_limit, param_int, param_ints, sub_batches
from neuralzip.models.classic_image import thread_blocks
from neuralzip.models.learned_image import LearnedImageCodec
from neuralzip.models.neighbour_counts import CONTEXTS, SHARES, CountsParams, NeighbourCounts, per_table

WEIGHTS_PREFIX = "vae-image"
CHAIN_UNITS = 1 << 16  # patches per chain (one chunk): 4 megapixels of RGB
FLOAT_BATCH = 4096  # patches per evaluation of the float model (report only)
MAXV = 255
N_BUCKETS = buckets.alphabet_size(2 * MAXV)  # zigzagged residuals -255..255


# ------------------------------------------------------------ exact kernels
# The integer rows are compiled (neuralzip/kernels/vae.pyx) and use the tables of _Network.tables.

if any(_k.LAYOUT[k] != v for k, v in (("PATCH", L.PATCH), ("PIXELS", L.PIXELS), ("N_NEIGHBOURS", L.N_NEIGHBOURS),
                                       ("OUT_KINDS", L.OUT_KINDS), ("ACT_KIND", L.ACT_KIND),
                                       ("OUTPUTS", L.OUTPUTS), ("MAXV", MAXV))):
    raise ImportError("neuralzip.kernels.vae was built for another patch layout: rebuild the package")


def residual_symbols(values: np.ndarray, preds: np.ndarray):
    """-> (bucket symbols, low-bit counts, low bits) of the residuals values - preds, zigzagged."""
    return buckets.buckets_of(buckets.zigzag_array(values.astype(np.int64) - preds))


class _StackLowBits:
    """An ANS stack seen as what buckets.values_of reads low bits from."""

    def __init__(self, stack: AnsStack):
        self.low_bits = stack.pop_low_bits


def residual_values(sym: np.ndarray, stack: AnsStack, preds: np.ndarray) -> np.ndarray:
    """The values coded as residual buckets `sym` (their low bits popped from the stack) from preds."""
    return preds + buckets.unzigzag_array(buckets.values_of(sym, _StackLowBits(stack)))


# ------------------------------------------------------------ patches

def _groups(samples: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """An image's channels in threes: [(H, W, 3) plane with missing channels repeated, real count]."""
    c = samples.shape[2]
    out = []
    for g in range(0, c, 3):
        idx = [min(g + k, c - 1) for k in range(3)]
        out.append((samples[:, :, idx], min(3, c - g)))
    return out


def cut_units(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (patches uint8 [n, PIXELS, 3] padded as the encoder sees them, [n, 3] valid rows/cols/channels)."""
    h, w = samples.shape[:2]
    ph, pw = -(-h // L.PATCH), -(-w // L.PATCH)
    patches = []
    for plane, _ in _groups(samples):
        padded = np.pad(plane, ((0, ph * L.PATCH - h), (0, pw * L.PATCH - w), (0, 0)), mode="edge")
        patches.append(padded.reshape(ph, L.PATCH, pw, L.PATCH, 3).transpose(0, 2, 1, 3, 4).reshape(-1, L.PIXELS, 3))
    return np.concatenate(patches).astype(np.uint8), unit_shapes(samples.shape)


def unit_shapes(shape) -> np.ndarray:
    """The valid rows, columns and channels of each unit of an image of this shape (H, W, C)."""
    h, w, c = (int(v) for v in shape)
    ph, pw = -(-h // L.PATCH), -(-w // L.PATCH)
    vh = np.minimum(h - np.arange(ph) * L.PATCH, L.PATCH)
    vw = np.minimum(w - np.arange(pw) * L.PATCH, L.PATCH)
    parts = [np.stack([np.repeat(vh, pw), np.tile(vw, ph), np.full(ph * pw, min(3, c - g))], axis=1)
             for g in range(0, c, 3)]
    return np.concatenate(parts).astype(np.int64)


def plane_grids(shape) -> list[tuple[int, int]]:
    """The patch rows and columns of each plane (channel group) of an image of this shape (H, W, C)."""
    h, w, c = (int(v) for v in shape)
    return [(-(-h // L.PATCH), -(-w // L.PATCH))] * -(-c // 3)


def join_units(patches: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of cut_units for an image of `shape` (H, W, C) (any dtype: also per-unit figures)."""
    h, w, c = shape
    ph, pw = -(-h // L.PATCH), -(-w // L.PATCH)
    per = ph * pw
    out = np.empty((h, w, c), patches.dtype)
    for gi, g in enumerate(range(0, c, 3)):
        p = patches[gi * per:(gi + 1) * per].reshape(ph, pw, L.PATCH, L.PATCH, 3).transpose(0, 2, 1, 3, 4)
        plane = p.reshape(ph * L.PATCH, pw * L.PATCH, 3)[:h, :w]
        nc = min(3, c - g)
        out[:, :, g:g + nc] = plane[:, :, :nc]
    return out


def coded_positions(shapes: np.ndarray, c: int, phase: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(unit, pixel) of every coded subpixel of channel c (of one phase, or all), unit then raster order."""
    yy, xx = np.divmod(np.arange(L.PIXELS), L.PATCH)
    ok = (yy[None, :] < shapes[:, :1]) & (xx[None, :] < shapes[:, 1:2]) & (shapes[:, 2:3] > c)
    if phase is not None:
        ok &= (L.PHASE == phase)[None, :]
    units, pix = np.nonzero(ok)
    return units.astype(np.int64), pix.astype(np.int64)


def coding_steps(shapes: np.ndarray):
    """The decoder's order within a group: per phase, per channel, (phase, c, units, pixels) coded at once."""
    for phase in range(L.N_PHASES):
        for c in range(3):
            yield (phase, c) + coded_positions(shapes, c, phase)


def fill_padding(x: np.ndarray, shapes: np.ndarray) -> None:
    """Rebuild the padding of decoded patches in place (edge repetition, missing channels repeated)."""
    xs = x.reshape(-1, L.PATCH, L.PATCH, 3)
    for k in range(len(xs)):
        vh, vw, nc = shapes[k]
        if vw < L.PATCH:
            xs[k, :vh, vw:] = xs[k, :vh, vw - 1:vw]
        if vh < L.PATCH:
            xs[k, vh:] = xs[k, vh - 1:vh]
        if nc < 3:
            xs[k, :, :, nc:] = xs[k, :, :, nc - 1:nc]


# ------------------------------------------------------------ the network

class _Network:
    """The shipped (or user's) weights: exact and float encoder/decoder, prior counts, tables."""

    def __init__(self, path: Path):
        z = weightstore.load(path)
        try:
            self.enc = QuantizedMLP(z, "enc")
            self.dec = QuantizedMLP(z, "dec")
            self.float_enc = FloatMLP(z, "fenc", L.ENC_INPUT_SCALE)
            self.float_dec = FloatMLP(z, "fdec", 1.0 / L.ZIN_SCALE)
            # the prior: learned counts per latent (weights v1, v2), or p(z | context), a network whose
            # logistic per latent is read through the posterior's tables (v3)
            if "pri.w0" in z:
                self.prior_net, self.float_prior = QuantizedMLP(z, "pri"), FloatMLP(z, "fpri", L.ENC_INPUT_SCALE)
                self.prior = self.prior_float = None
            else:
                self.prior_net = self.float_prior = None
                self.prior = z["prior.counts"].astype(np.float64)
                self.prior_float = z["prior.log2"].astype(np.float64)
            self.cdf, self.inv, self.exp = (z[k].astype(np.int64) for k in ("lut.cdf", "lut.inv", "lut.exp"))
            self.zbounds, self.zin, self.qinv, self.act = (z[k].astype(np.int64) for k in (
                "lut.zbounds", "lut.zin", "lut.qinv", "lut.act"))
            # weights v3 on: the networks also read each patch's context (vae_layout.CONTEXT_OFFSETS)
            self.context = "layout.context_offsets" in z
            if self.context and not np.array_equal(z["layout.context_offsets"], L.CONTEXT_OFFSETS):
                raise ValueError("its patch context is not this version's")
            # weights v4 on: the likelihood mixes in the neighbour counts (models/neighbour_counts.py)
            self.counts = CountsParams.from_weights(z)
            if self.counts is not None and not self.context:
                raise ValueError("neighbour counts need the patch context's decode order")
            self.bounds, self.spans = logistic.bucket_intervals(N_BUCKETS)
            self.tables = _k.VaeTables(cdf=self.cdf, inv=self.inv, expt=self.exp, zbounds=self.zbounds,
                                       qinv=self.qinv, act=self.act, nbr=L.NEIGHBOURS, bounds=self.bounds,
                                       spans=self.spans)
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a weights file for the vae model ({exc})") from None
        extra = L.CONTEXT_INPUTS if self.context else 0
        if self.prior_net is None:
            prior_ok = self.prior.shape == (L.LATENTS, L.N_BINS)
        else:
            prior_ok = self.context and (self.prior_net.inputs, self.prior_net.outputs) == (extra, 2 * L.LATENTS)
        if (self.enc.inputs, self.enc.outputs, self.dec.inputs, self.dec.outputs) != (
                L.DIMS + extra, 2 * L.LATENTS, L.LATENTS + extra, L.OUTPUTS) or not prior_ok:
            raise InputError(f"{path}: the vae networks have the wrong shape for this version of neuralzip")

    def posterior(self, patches: np.ndarray, ctx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """-> (means in 1/Z_UNITS, scale indices), int64 [n, LATENTS] each; ctx: the context inputs (v3)."""
        out = _forward(self.enc, _inputs(patches.reshape(len(patches), -1), ctx))
        return out[:, :L.LATENTS], out[:, L.LATENTS:]

    def q_rows(self, patches: np.ndarray, ctx: np.ndarray | None) -> np.ndarray:
        mu, si = self.posterior(patches, ctx)
        return self._logistic_rows(mu, si)

    def _logistic_rows(self, mu: np.ndarray, si: np.ndarray) -> np.ndarray:
        """Integer pmf rows over the bins of logistics (means in 1/Z_UNITS, scale indices), one per latent."""
        return _k.posterior_rows(self.tables, np.ascontiguousarray(mu.ravel(), np.int64),
                                 np.ascontiguousarray(si.ravel(), np.int64), L.N_BINS)

    def decode_net(self, z: np.ndarray, ctx: np.ndarray | None) -> np.ndarray:
        return _forward(self.dec, _inputs(self.zin[z], ctx))

    def prior_rows(self, m: int, ctx: np.ndarray | None) -> np.ndarray:
        """The prior's rows for m units (their context inputs ctx, read by a v3 prior)."""
        if self.prior_net is None:
            return np.tile(self.prior, (m, 1))
        out = _forward(self.prior_net, _inputs(ctx, None))
        return self._logistic_rows(out[:, :L.LATENTS], out[:, L.LATENTS:])

    def channel_rows(self, c, units, pix, out_net, x, shapes):
        """-> (integer pmf rows over residual buckets, predicted values) of channel c at the subpixels
        (units[k], pix[k]); x [n, PIXELS, 3] holds the earlier phases and channels, out_net the decoder's output."""
        return _k.pixel_rows(self.tables, c, units, pix, out_net=np.ascontiguousarray(out_net, np.int64),
                             x=np.ascontiguousarray(x, np.int64), shapes=np.ascontiguousarray(shapes, np.int64),
                             nblk=thread_blocks(len(units), L.STEP_BLOCK))

    def float_bits(self, patches: np.ndarray, shapes: np.ndarray, ctx: np.ndarray | None, seed: int = 0,
                   counts_p: np.ndarray | None = None, shares: np.ndarray | None = None) -> float:
        """-ELBO of the float (training) model, one bin drawn per latent from its own posterior (a
        seeded generator, so the report is reproducible): the float decoder's discretized logistic
        (true sigmoid), the float prior and the float posterior's mass of each bin. Evaluating the
        float model at the exact model's bins would be wrong: where the float posterior is narrow
        it may give such a bin almost no mass. With counts_p (weights v4: the neighbour counts'
        probability of each subpixel [n, PIXELS, 3]), mixed in at `shares` [3, N_PHASES] sixteenths
        the vae's (its channel's at its phase)."""
        qmu, qls, z = self.float_posterior_draw(patches, ctx, seed)
        log2_q, log2_p = self.float_latent_log2(qmu, qls, z, ctx)
        total = log2_q - log2_p
        for c, (bits, units, pix) in enumerate(self.float_pixel_bits(patches, shapes, ctx, z)):
            if counts_p is not None:
                bits = _mixture_bits(bits, counts_p[units, pix, c], shares[c, L.PHASE[pix]] / SHARES)
            total += float(np.sum(bits))
        return total

    def float_posterior_draw(self, patches: np.ndarray, ctx: np.ndarray | None, seed: int = 0):
        """The float posterior's (means, log-scales) and one bin per latent drawn from it, seeded."""
        qmu, qls = _float_logistic(self.float_enc.forward(_inputs(patches.reshape(len(patches), -1), ctx)))
        u = np.random.default_rng(seed).uniform(1e-9, 1 - 1e-9, qmu.shape)
        return qmu, qls, np.searchsorted(L.bin_edges(), qmu + np.exp(qls) * (np.log(u) - np.log1p(-u)))

    def float_latent_log2(self, qmu, qls, z, ctx) -> tuple[float, float]:
        """(log2 q(z|x, c), log2 p(z|c)) of the drawn bins under the float posterior and prior."""
        log2_q = float(np.sum(_float_bin_log2(qmu, qls, z)))
        if self.float_prior is None:
            return log2_q, float(np.sum(self.prior_float[np.arange(L.LATENTS)[None, :], z]))
        return log2_q, float(np.sum(_float_bin_log2(*_float_logistic(self.float_prior.forward(_inputs(ctx, None))), z)))

    def float_pixel_bits(self, patches: np.ndarray, shapes: np.ndarray, ctx: np.ndarray | None, z: np.ndarray):
        """-log2 p(x|z, c) of the float decoder per coded subpixel, per channel: [(bits, units, pixels)]
        for channels 0, 1, 2 (coded_positions' order)."""
        x = patches.astype(np.float64)
        o = self.float_dec.forward(_inputs(self.zin[z], ctx) - 128).reshape(-1, L.OUT_KINDS, L.PIXELS)
        mu, ls = L.MEAN_OFFSET + L.MEAN_GAIN * o[:, 0:3], o[:, 3:6]
        coup = np.clip(o[:, 6:], -L.COUPLING_MAX, L.COUPLING_MAX)
        res = x.transpose(0, 2, 1) - mu  # [n, 3, PIXELS]
        ny, nx = np.divmod(np.maximum(L.NEIGHBOURS, 0), L.PATCH)
        has = (L.NEIGHBOURS >= 0)[None] & (ny[None] < shapes[:, 0, None, None]) & (nx[None] < shapes[:, 1, None, None])
        nres = res[:, :, np.maximum(L.NEIGHBOURS, 0)]
        spatial = np.einsum("ncpk,npk->ncp", nres, coup[:, 3:7].transpose(0, 2, 1) * has)
        act = np.einsum("ncpk,npk->ncp", np.abs(nres), has.astype(np.float64))
        act[:, 1] += np.abs(res[:, 0])
        act[:, 2] += np.abs(res[:, 0]) + np.abs(res[:, 1])
        ls = ls + coup[:, 7][:, None, :] * np.log2(1 + np.minimum(act, (L.ACT_TABLE - 1) / 16))
        means = mu + spatial
        means[:, 1] += coup[:, 0] * res[:, 0]
        means[:, 2] += coup[:, 1] * res[:, 0] + coup[:, 2] * res[:, 1]
        means = means.transpose(0, 2, 1)  # [n, PIXELS, 3]
        ls = ls.transpose(0, 2, 1)
        ls = np.clip(ls, logistic.LOG_SCALE_MIN, logistic.LOG_SCALE_MIN + (logistic.N_SCALES - 1) / logistic.LOG_SCALE_STEPS)
        out = []
        for c in range(3):
            units, pix = coded_positions(shapes, c)
            v, m, inv = x[units, pix, c], means[units, pix, c], np.exp(-ls[units, pix, c])
            hi = np.where(v >= MAXV, 1.0, _sigmoid((v + 0.5 - m) * inv))
            lo = np.where(v <= 0, 0.0, _sigmoid((v - 0.5 - m) * inv))
            out.append((-np.log2(np.maximum(hi - lo, 1e-300)), units, pix))
        return out


def _float_logistic(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float network's (means, log-scales) of the logistic per latent, the scales clipped as the tables'."""
    return out[:, :L.LATENTS], np.clip(out[:, L.LATENTS:], L.Q_LOG_SCALE_MIN,
                                       L.Q_LOG_SCALE_MIN + (L.Q_N_SCALES - 1) / L.Q_SCALE_STEPS)


def _float_bin_log2(mu: np.ndarray, log_s: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log2 of the logistics' (float) mass in bins z."""
    edges = np.concatenate([[-np.inf], L.bin_edges(), [np.inf]])
    inv = np.exp(-log_s)
    return np.log2(np.maximum(_sigmoid((edges[z + 1] - mu) * inv) - _sigmoid((edges[z] - mu) * inv), 1e-300))


def _inputs(values: np.ndarray, ctx: np.ndarray | None) -> np.ndarray:
    """A network's integer inputs as float32: its own values, then the context inputs (weights v3)."""
    return (values if ctx is None else np.concatenate([values.astype(np.int64), ctx], axis=1)).astype(np.float32)


def _forward(mlp: QuantizedMLP, x: np.ndarray) -> np.ndarray:
    """The exact network in batches of at most NEURALZIP_DECODE_BATCH rows (same result for any)."""
    parts = [mlp.forward(x[a:b]) for a, b in sub_batches(len(x), decode_batch_limit())]
    return np.concatenate(parts) if parts else mlp.forward(x)


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


# ------------------------------------------------------------ the chain

class ChainOrder:
    """Where the units of a chain sit on it, and what each reads as its context.

    Units are numbered as cut_units numbers them (image, channel group, patch row, patch column);
    `order` lists them in the encoder's order, so positions index the chain. Without context (weights
    before v3) that is cut_units' order. With context, it is the waves in reverse: the decoder meets
    wave 0 (every plane's top-left patch) first, then wave 1, ..., each plane's patch (r, c) in wave
    r + c, after the patches its context comes from; a group of the chain never spans two waves."""

    def __init__(self, grids: list[tuple[int, int]], context: bool):
        """grids: each plane's patch rows and columns, in cut_units' order."""
        n = sum(ph * pw for ph, pw in grids)
        self.order, self.waves, self._src = np.arange(n), None, None
        self.grid = self.position = None
        if not context:
            return
        sizes = [ph * pw for ph, pw in grids]
        rows = np.concatenate([np.repeat(np.arange(ph), pw) for ph, pw in grids])
        cols = np.concatenate([np.tile(np.arange(pw), ph) for ph, pw in grids])
        plane = np.repeat(np.arange(len(grids)), sizes)
        start = np.repeat(np.cumsum([0] + sizes[:-1]), sizes)
        width = np.repeat([pw for _, pw in grids], sizes)
        wave = rows + cols
        self.order = np.lexsort((rows, plane, wave))[::-1].copy()
        self.waves = wave[self.order]
        position = np.empty(n, np.int64)
        position[self.order] = np.arange(n)
        dy, dx = L.CONTEXT_OFFSETS[:, 0], L.CONTEXT_OFFSETS[:, 1]
        r = rows[self.order, None] + dy[None] // L.PATCH  # the patch each context pixel lies in
        c = cols[self.order, None] + dx[None] // L.PATCH
        self.has_above, self.has_left = rows[self.order] > 0, cols[self.order] > 0
        unit = start[self.order, None] + np.maximum(r, 0) * width[self.order, None] + np.maximum(c, 0)
        pixel = (dy % L.PATCH) * L.PATCH + dx % L.PATCH
        self._src = position[unit] * L.PIXELS + pixel[None]  # flat pixel of the chain's array (a missing one: any)
        # where the neighbour counts find a pixel's neighbours: each position's plane (its first unit in
        # cut order, patch rows, patch columns) and patch row and column; cut order -> position
        height = np.repeat([ph for ph, _ in grids], sizes)
        self.grid = np.stack([start, height, width, rows, cols], axis=1)[self.order].astype(np.int64)
        self.position = position

    def spans(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The groups of the chain chunk [start, stop), in the encoder's order."""
        waves = None if self.waves is None else self.waves[start:stop]
        return [(start + a, start + e) for a, e in L.group_spans(stop - start, waves)]

    def context(self, x: np.ndarray, a: int, e: int) -> np.ndarray | None:
        """The context inputs of positions a..e, read from the chain's units x [n, PIXELS, 3] (None
        without context)."""
        if self._src is None:
            return None
        values = x.reshape(-1, 3)[self._src[a:e]]
        return L.context_inputs(values, self.has_above[a:e], self.has_left[a:e])


class _Tally:
    """The exact model's bits per unit (the ELBO terms) as the chain codes them."""

    def __init__(self, n: int):
        self.units = np.zeros(n)  # -log2 p(x|z) - log2 p(z) + log2 q(z|x) per unit
        self.initial = 0.0
        self.pixels = 0.0  # the pixels' part of units: -log2 p(x|z), all units together
        self.counts_p = None  # with neighbour counts: their probability of each coded subpixel [n, PIXELS, 3]

    def add(self, start: int, values: np.ndarray, units: np.ndarray) -> None:
        """values[k] belongs to unit start + units[k]."""
        np.add.at(self.units, start + units, values)


def _neighbour_counts(net: _Network, x: np.ndarray, shapes: np.ndarray, plan: ChainOrder,
                      shares: np.ndarray | None) -> NeighbourCounts | None:
    """A chain chunk's fresh neighbour counts (weights v4 on) mixed in at `shares` (the chain's,
    per channel and phase; None: the weights'), reading the chain's units x."""
    if net.counts is None:
        return None
    params = net.counts if shares is None else net.counts.with_shares(shares)
    return NeighbourCounts(params, x, plan.grid, plan.position, shapes, L.PHASE)


def chain_shares(params: dict) -> np.ndarray:
    """The neighbour counts' shares a chain records on its first member: counts_shares, 3 lists (R,
    G, B) of one share per phase (written since weights v5), or counts_share, one for all (v4)."""
    if "counts_shares" not in params:
        return np.full((3, L.N_PHASES), param_int(params, "counts_share", 0, SHARES), np.int64)
    rows = params["counts_shares"]
    if "counts_share" in params or not isinstance(rows, list) or len(rows) != 3:
        raise ParamError("params.counts_shares is not 3 lists of shares (R, G, B)")
    table = [param_ints({"counts_shares": r}, "counts_shares", 0, SHARES, L.N_PHASES) for r in rows]
    if any(len(r) != L.N_PHASES for r in table):
        raise ParamError(f"params.counts_shares has not {L.N_PHASES} shares per channel")
    return np.array(table, np.int64)


def _learn_chunk(counts: NeighbourCounts, x: np.ndarray, shapes: np.ndarray, spans,
                 residuals: np.ndarray | None = None) -> np.ndarray:
    """The encoder's first pass: learn every step of the chunk in the decoder's order (step keys
    (group, step)); -> the counts' probability of each coded subpixel, [units, PIXELS, 3] float32.
    Training: each step's residuals are also counted per table and context into `residuals`
    [tables, CONTEXTS, SPAN]."""
    start = spans[0][0]
    probs = np.ones((spans[-1][1] - start, L.PIXELS, 3), np.float32)
    for gi in reversed(range(len(spans))):
        a, e = spans[gi]
        for k, (phase, c, units, pix) in enumerate(coding_steps(shapes[a:e])):
            ctx, pred = counts.predict(c, phase, a + units, pix)
            values = x[a + units, pix, c]
            probs[a - start + units, pix, c] = counts.probabilities(ctx, pred, values)
            counts.learn(ctx, pred, values, (gi, k))
            counts.record(c, a + units, pix, pred)
            if residuals is not None:
                for t, p in enumerate(per_table(pred)):
                    np.add.at(residuals[t], (ctx, values - p + MAXV), 1)
    return probs


def _chain_counts(net: _Network, img: np.ndarray, residuals: np.ndarray | None = None):
    """An 8-bit RGB image as its own chain, with its counts learned as the decoder learns them:
    (units x, shapes, ChainOrder, the counts' probability of each subpixel [units, PIXELS, 3]),
    all in the chain's order; `residuals`: as _learn_chunk's."""
    x, shapes = cut_units(img)
    plan = ChainOrder(plane_grids(img.shape), True)
    x, shapes = np.ascontiguousarray(x[plan.order]), shapes[plan.order]
    probs = np.empty((len(x), L.PIXELS, 3), np.float32)
    for a in range(0, len(x), CHAIN_UNITS):
        e = min(a + CHAIN_UNITS, len(x))
        probs[a:e] = _learn_chunk(_neighbour_counts(net, x, shapes, plan, None), x, shapes, plan.spans(a, e),
                                  residuals)
    return x, shapes, plan, probs


def counts_residuals(net: _Network, img: np.ndarray) -> np.ndarray:
    """Training (weights with neighbour counts): how often each residual (value - prediction) comes
    in each of the counts' tables and contexts over an 8-bit RGB image coded as its own chain,
    [tables, CONTEXTS, SPAN] int64, the residuals -MAXV..MAXV in order (what a prior of the counts
    is made from). The contexts and predictions read decoded values only, whatever the counts
    start from."""
    residuals = np.zeros((net.counts.tables, CONTEXTS, 2 * MAXV + 1), np.int64)
    _chain_counts(net, img, residuals)
    return residuals


def counts_probabilities(net: _Network, img: np.ndarray) -> np.ndarray:
    """Training (weights with neighbour counts): the counts' probability of each subpixel of an 8-bit
    RGB image coded as its own chain, [H, W, 3] float32. They read decoded values only, so they are
    the same whatever the vae gives."""
    *_, plan, probs = _chain_counts(net, img)
    return join_units(probs[plan.position], img.shape)


def _mixture_bits(vae_bits: np.ndarray, counts_p: np.ndarray, w) -> np.ndarray:
    """-log2 of the float mixture: the vae's probability (from its bits) at weight w, the counts' at 1 - w."""
    return -np.log2(w * np.exp2(-vae_bits) + (1 - w) * counts_p.astype(np.float64))


def share_costs(net: _Network, img: np.ndarray) -> np.ndarray:
    """Training (weights with neighbour counts): the float model's bits of an 8-bit RGB image, its own
    chain, with the counts mixed in at each share 0..SHARES, per channel and phase: [3, N_PHASES,
    SHARES + 1]. The counts learn as the decoder's do; one posterior draw per latent, as the report's."""
    x, shapes, plan, counts_p = _chain_counts(net, img)
    w = np.arange(SHARES + 1) / SHARES
    costs = np.zeros((3, L.N_PHASES, SHARES + 1))
    for b in range(0, len(x), FLOAT_BATCH):
        f = min(b + FLOAT_BATCH, len(x))
        ctx = plan.context(x, b, f)
        _, _, z = net.float_posterior_draw(x[b:f], ctx, seed=b)
        for c, (bits, units, pix) in enumerate(net.float_pixel_bits(x[b:f], shapes[b:f], ctx, z)):
            mixed = _mixture_bits(bits[:, None], counts_p[b + units, pix, c][:, None], w)
            for phase in range(L.N_PHASES):
                costs[c, phase] += mixed[L.PHASE[pix] == phase].sum(axis=0)
    return costs


PROB_BITS = 24  # the share choice reads each part's probability of a value in 1/2**PROB_BITS


def chosen_shares(net: _Network, x: np.ndarray, shapes: np.ndarray, plan: ChainOrder,
                  keep: dict | None = None) -> np.ndarray:
    """The encoder's shares of the vae in the neighbour counts' mixture for one chain, per channel
    and phase [3, N_PHASES]: those that code the chain's values smallest, each channel and phase on
    its own. A photo unlike the training ones (an engraving whose G and B follow R in a way the vae
    never saw) may want the counts alone where the weights' shares, fitted on the training photos,
    give the vae half. The chain's first member records them (params counts_shares), so the decoder
    needs nothing new.

    Each subpixel's cost at share s/SHARES is -log2(s pv + (SHARES - s) pc) (as the codec's rows
    mix the parts, up to rounding): pv the exact vae's probability of the value with z its
    posterior's most probable bin (the one the chain's start takes; bits-back pops almost always
    that one, the posteriors being nearly one-hot), pc the counts' as the decoder learns them.
    Integers and a fixed-point log2 only, so the choice, and the file, is the same on every
    machine. `keep`: a dict that receives the chain's first chunk's learned counts and their
    probabilities, {0: (counts, probabilities)}, for encode_chain to start from (the chunks are
    priced last to first, so only that one is held)."""
    costs = np.zeros((3, L.N_PHASES, SHARES + 1), np.int64)
    weights = np.arange(SHARES + 1, dtype=np.int64)
    starts = range(0, len(x), CHAIN_UNITS)
    for done, a in enumerate(reversed(starts)):
        e = min(a + CHAIN_UNITS, len(x))
        counts = _neighbour_counts(net, x, shapes, plan, None)
        counts_p = _learn_chunk(counts, x, shapes, plan.spans(a, e))
        if keep is not None and a == 0:
            keep[0] = counts, counts_p
        for ga, ge in plan.spans(a, e):
            ctx = plan.context(x, ga, ge)
            z = np.argmax(net.q_rows(x[ga:ge], ctx), axis=1).reshape(ge - ga, L.LATENTS)
            out_net = net.decode_net(z, ctx)
            xs = x[ga:ge].astype(np.int64)
            for phase, c, units, pix in coding_steps(shapes[ga:ge]):
                rows, preds = net.channel_rows(c, units, pix, out_net, xs, shapes[ga:ge])
                sym, nlow, _ = residual_symbols(xs[units, pix, c], preds)
                # rows hold integers far below 2**46: their sums are exact, and one division each is
                # correctly rounded on every machine
                pv = np.floor(rows[np.arange(len(sym)), sym] / rows.sum(axis=1) * (1 << PROB_BITS)).astype(np.int64)
                pv >>= nlow
                pc = np.floor(counts_p[ga - a + units, pix, c].astype(np.float64) * (1 << PROB_BITS)).astype(np.int64)
                mixed = pv[:, None] * weights + pc[:, None] * (SHARES - weights)
                costs[c, phase] -= log2_fixed(np.maximum(mixed, 1)).sum(axis=0)
        progress.step((done + 1) / len(starts))
    return np.argmin(costs, axis=2)


def _push_group(stack, net, x, shapes, z, ctx, tally, at, counts, group):
    """Push one group's pixels (given z) and latents, the last step first: the decoder pops them in
    the other order. at: the group's first unit on the tally; group: (its index among the chunk's
    spans, its first position on the chain), for the neighbour counts, which unlearn each step
    before it is pushed."""
    m = len(x)
    out_net = net.decode_net(z, ctx)
    for k, (phase, c, units, pix) in reversed(list(enumerate(coding_steps(shapes)))):
        rows, preds = net.channel_rows(c, units, pix, out_net, x, shapes)
        values = x[units, pix, c]
        sym, nlow, low = residual_symbols(values, preds)
        if counts is None:
            stack.push_low_bits(low, nlow)
            low_bits = nlow
        else:
            cctx, cpred = counts.predict(c, phase, group[1] + units, pix)
            counts.unlearn(cctx, cpred, values, (group[0], k))
            low_bits = np.zeros(len(sym))
            for idx, low_rows in reversed(counts.low_groups(c, phase, cctx, cpred, preds, rows, sym)):
                stack.push(low[idx], low_rows)
                low_bits[idx] = symbol_bits(low[idx], low_rows)
            rows = counts.rows(c, phase, cctx, cpred, preds, rows)
        bits = symbol_bits(sym, rows) + low_bits
        tally.add(at, bits, units)
        tally.pixels += float(bits.sum())
        stack.push(sym, rows)
    prior = net.prior_rows(m, ctx)
    stack.push(z.ravel(), prior)
    tally.add(at, symbol_bits(z.ravel(), prior), np.repeat(np.arange(m), L.LATENTS))


def encode_chain(net: _Network, x: np.ndarray, shapes: np.ndarray, plan: ChainOrder, start: int,
                 stop: int, shares: np.ndarray | None = None, learned=None) -> tuple[bytes, _Tally, list[int]]:
    """Code the chain chunk [start, stop) of the units x [n, PIXELS, 3] uint8 (in the chain's order,
    all of them: contexts may lie outside the chunk), the neighbour counts (weights v4) at the chain's
    `shares`; -> (stack bytes, the exact model's bits per unit of the chunk, the seeded groups: those
    that did not borrow, the first always). `learned`: the chunk's counts already learned by
    _learn_chunk, with their probabilities (chosen_shares' `keep`), instead of learning it here."""
    tally = _Tally(stop - start)
    spans = plan.spans(start, stop)
    if learned is not None:
        counts, tally.counts_p = learned
        counts.params = counts.params.with_shares(shares)
    else:
        counts = _neighbour_counts(net, x, shapes, plan, shares)
        if counts is not None:
            tally.counts_p = _learn_chunk(counts, x, shapes, spans)
    stack = AnsStack()
    seeded = []
    for g, (a, e) in enumerate(spans):
        ctx = plan.context(x, a, e)
        q = net.q_rows(x[a:e], ctx)
        if stack.valid_bits < L.POP_BITS_MAX * q.shape[0] + 64:
            # too little to borrow from (the start, or cheap patches so far): q's most probable
            # bin, not popped, so paid in full: the chain's initial bits
            z = np.argmax(q, axis=1)
            tally.initial += float(np.sum(symbol_bits(z, q)))
            seeded.append(g)
        else:
            z = stack.pop(q).astype(np.int64)
            tally.add(a - start, -symbol_bits(z, q), np.repeat(np.arange(e - a), L.LATENTS))
        _push_group(stack, net, x[a:e].astype(np.int64), shapes[a:e], z.reshape(e - a, L.LATENTS), ctx,
                    tally, a - start, counts, (g, a))
        progress.step((e - start) / (stop - start))
    return stack.finish(), tally, seeded


def decode_chain(net: _Network, data: bytes, x: np.ndarray, shapes: np.ndarray, plan: ChainOrder, start: int,
                 stop: int, seeded: list[int], shares: np.ndarray | None = None) -> None:
    """Decode the chain chunk [start, stop) from its stack bytes into x [n, PIXELS, 3] uint8 (the
    chain's units; the chunks holding its contexts already decoded), given the units' valid shapes,
    the chunk's seeded groups and the chain's shares of the neighbour counts (weights v4 on)."""
    stack = AnsStack(data)
    spans = plan.spans(start, stop)
    if any(not 0 <= g < len(spans) for g in seeded):
        raise ContainerError("corrupt header: the chain lists seeded groups it does not have")
    seeded = set(seeded)
    counts = _neighbour_counts(net, x, shapes, plan, shares)
    for gi, (a, e) in reversed(list(enumerate(spans))):
        m = e - a
        ctx = plan.context(x, a, e)
        z = stack.pop(net.prior_rows(m, ctx)).astype(np.int64).reshape(m, L.LATENTS)
        out_net = net.decode_net(z, ctx)
        xs = np.zeros((m, L.PIXELS, 3), np.int64)
        for phase, c, units, pix in coding_steps(shapes[a:e]):
            rows, preds = net.channel_rows(c, units, pix, out_net, xs, shapes[a:e])
            if counts is None:
                vals = residual_values(stack.pop(rows), stack, preds)
            else:
                cctx, cpred = counts.predict(c, phase, a + units, pix)
                sym = stack.pop(counts.rows(c, phase, cctx, cpred, preds, rows))
                low = np.zeros(len(sym), np.int64)
                for idx, low_rows in counts.low_groups(c, phase, cctx, cpred, preds, rows, sym):
                    low[idx] = stack.pop(low_rows)
                vals = preds + buckets.unzigzag_array(buckets.values_with_low(sym, low))
            if len(vals) and (vals.min() < 0 or vals.max() > MAXV):
                raise ContainerError("corrupt payload: a decoded value is out of range")
            xs[units, pix, c] = vals
            if counts is not None:
                x[a + units, pix, c] = vals  # the counts read the chain's units as they are decoded
                counts.learn(cctx, cpred, vals)
                counts.record(c, a + units, pix, cpred)
        fill_padding(xs, shapes[a:e])
        x[a:e] = xs
        if gi not in seeded:
            stack.push(z.ravel(), net.q_rows(x[a:e], ctx))
        progress.step((len(spans) - gi) / len(spans))
    if not stack.is_empty():
        raise ContainerError("corrupt payload: the bits-back chain did not end where it began")


# ------------------------------------------------------------ the codec

class VAECodec(LearnedImageCodec):
    name = "vae"
    summary = (f"VAE over {L.PATCH}x{L.PATCH} patches ({L.LATENTS} latents, coarse-to-fine likelihood; prior, encoder "
               "and decoder read the decoded rows above and columns left), bits-back ANS: one chain per image or "
               "archive; 8-bit")
    weights_prefix = WEIGHTS_PREFIX
    network = _Network

    # One image is a set of one: the chain runs over all units of all 8-bit images given.
    def encode(self, samples, signal):
        return self.encode_set([(samples, signal)])[0]

    def check_params(self, params, signal, nchunks):
        """A classic fallback (not 8-bit), or a member of a chain: its unit count from its shape, and
        on the chain's first member the chunks' unit counts, seeded groups and (weights v4 on) the
        neighbour counts' shares."""
        if self.check_fallback(params, signal, nchunks):
            return None
        h, w, c = signal.shape
        units = -(-h // L.PATCH) * -(-w // L.PATCH) * -(-c // 3)
        if param_int(params, "units", 1, 1 << 62) != units:
            raise ParamError(f"params.units {params['units']} is not the {units} patches of the image")
        param_int(params, "chain", 1, 1 << 24)
        if "chain_units" not in params:
            if nchunks:
                raise ParamError("chunks stored with a member that does not start its chain")
            return None
        sizes = param_ints(params, "chain_units", 1, CHAIN_UNITS, 1 << 24)
        seeded = params.get("seeded")
        if len(sizes) != nchunks or not isinstance(seeded, list) or len(seeded) != nchunks:
            raise ParamError(f"params.chain_units/seeded do not list the {nchunks} chunk(s) of the chain")
        for groups, n in zip(seeded, sizes):  # a chunk has at most n groups (decode_chain checks its own)
            if not isinstance(groups, list) or not all(
                    isinstance(g, int) and not isinstance(g, bool) and 0 <= g < n for g in groups):
                raise ParamError(f"params.seeded lists groups that a chunk of {n} units does not have")
        # the neighbour counts' shares: every chain coded with weights that have them (v4 on) names them
        if self.net.counts is not None:
            chain_shares(params)
        elif "counts_share" in params or "counts_shares" in params:
            raise ParamError("params name shares of neighbour counts these weights do not have")
        return None

    def decode_memory(self, params, signal):
        """The image's patches, their valid shapes and context sources, a chain chunk's work, one group's
        network activations, the networks."""
        rest = self.fallback_params(params)
        if rest is not None:
            return self._fallback.decode_memory(rest, signal)
        return params["units"] * 1024 + min(params["units"], CHAIN_UNITS) * 4096 + (256 << 20)

    def decode(self, params, chunks, signal):
        return self.decode_set([(params, chunks, signal)])[0]

    def encode_set(self, items):
        chained = [i for i, (s, sig) in enumerate(items) if sig.bits == 8]
        results = [None] * len(items)
        for i, (s, sig) in enumerate(items):
            if sig.bits != 8:
                results[i] = self.encode_fallback(s, sig)
        if not chained:
            return results
        cuts = [cut_units(items[i][0]) for i in chained]
        plan = ChainOrder([g for i in chained for g in plane_grids(items[i][0].shape)], self.net.context)
        x = np.concatenate([c[0] for c in cuts])[plan.order]
        shapes = np.concatenate([c[1] for c in cuts])[plan.order]
        owner = np.repeat(np.arange(len(chained)), [len(c[0]) for c in cuts])[plan.order]
        exact = np.zeros(len(chained))
        initial = np.zeros(len(chained))
        floats = np.zeros(len(chained))
        # the neighbour counts' shares (weights v4 on), chosen for this chain and recorded with it (the
        # choice rests on the exact model, never on the float one, whose last digits differ between
        # machines: the same file would code differently)
        shares, learned = None, {}
        if self.net.counts is not None:
            with progress.within(0, 1, 3):
                shares = chosen_shares(self.net, x, shapes, plan, keep=learned)
        chunks, seeded = [], []
        lead = 0 if shares is None else len(x)  # progress: the shares' choice took the first third
        for a in range(0, len(x), CHAIN_UNITS):
            e = min(a + CHAIN_UNITS, len(x))
            with progress.within(lead + 2 * a, lead + 2 * e, lead + 2 * len(x)):
                data, tally, groups = encode_chain(self.net, x, shapes, plan, a, e, shares, learned.pop(a, None))
            chunks.append(data)
            seeded.append(groups)
            np.add.at(exact, owner[a:e], tally.units)
            initial[owner[a]] += tally.initial
            for b in range(a, e, FLOAT_BATCH):  # the float model's -ELBO, in batches (bounded memory)
                f = min(b + FLOAT_BATCH, e)
                ctx = plan.context(x, b, f)
                for k in np.unique(owner[b:f]):
                    sel = owner[b:f] == k
                    floats[k] += self.net.float_bits(
                        x[b:f][sel], shapes[b:f][sel], None if ctx is None else ctx[sel], seed=b,
                        counts_p=None if tally.counts_p is None else tally.counts_p[b - a:f - a][sel], shares=shares)
        for k, i in enumerate(chained):
            params = {"units": int(np.sum(owner == k)), "chain": len(chained)}
            if k == 0:
                params["chain_units"] = [min(CHAIN_UNITS, len(x) - a) for a in range(0, len(x), CHAIN_UNITS)]
                params["seeded"] = seeded
                if shares is not None:
                    params["counts_shares"] = shares.tolist()
            results[i] = Encoded(params, chunks if k == 0 else [], float(exact[k]), float(floats[k]), float(initial[k]))
        return results

    def decode_set(self, items):
        results = [None] * len(items)
        chained = []
        for i, (params, chunks, sig) in enumerate(items):
            rest = self.fallback_params(params)
            if rest is not None:
                results[i] = self._fallback.decode(rest, chunks, sig)
            else:
                chained.append(i)
        if not chained:
            return results
        head = items[chained[0]][0]
        if head.get("chain") != len(chained) or "chain_units" not in head:
            raise ContainerError("a bits-back chain is incomplete: decode the whole archive it belongs to")
        cuts = [unit_shapes(items[i][2].shape) for i in chained]
        if [items[i][0].get("units") for i in chained] != [len(c) for c in cuts]:
            raise ContainerError("corrupt header: the chain's unit counts do not match the images")
        plan = ChainOrder([g for i in chained for g in plane_grids(items[i][2].shape)], self.net.context)
        shapes = np.concatenate(cuts)[plan.order]
        chunks = items[chained[0]][1]
        sizes = [int(v) for v in head["chain_units"]]
        seeded = head.get("seeded", [])
        if sum(sizes) != len(shapes) or not len(sizes) == len(chunks) == len(seeded):
            raise ContainerError("corrupt header: the chain's chunks do not cover its images")
        x = np.zeros((len(shapes), L.PIXELS, 3), np.uint8)
        # the last chunk first: with context, the waves a chunk's contexts come from lie after it
        done = 0
        for data, a, n, groups in reversed(list(zip(chunks, np.cumsum([0] + sizes[:-1]), sizes, seeded))):
            with progress.within(done, done + n, len(shapes)):
                decode_chain(self.net, data, x, shapes, plan, int(a), int(a + n), [int(g) for g in groups],
                             None if self.net.counts is None else chain_shares(head))
            done += n
        x[plan.order] = x.copy()
        start = 0
        for k, i in enumerate(chained):
            n = len(cuts[k])
            results[i] = join_units(x[start:start + n], items[i][2].shape)
            start += n
        return results

    def bits_per_dim(self, samples, signal):
        """Each unit's ELBO spread evenly over its coded subpixels (the chain's initial bits on its first unit)."""
        if signal.bits != 8:
            return self._fallback.bits_per_dim(samples, signal)
        x, shapes = cut_units(samples)
        plan = ChainOrder(plane_grids(samples.shape), self.net.context)
        _, tally, _ = encode_chain(self.net, x[plan.order], shapes[plan.order], plan, 0, len(x))
        per_unit = np.empty(len(x))
        per_unit[plan.order] = tally.units
        per_unit[plan.order[0]] += tally.initial
        per_subpixel = per_unit / (shapes[:, 0] * shapes[:, 1] * shapes[:, 2])
        return join_units(np.repeat(per_subpixel, L.DIMS).reshape(-1, L.PIXELS, 3), samples.shape)
