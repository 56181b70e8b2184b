"""Would the vae gain from a likelihood that learns the photo while it is decoded, under bits-back?
(stop 49; a measurement in floating point, nothing here is coded)

    PYTHONPATH=. python benchmarks/experiments/vae_adaptive_mixture.py PHOTO...

Under bits-back the encoder picks each wave's z after the later waves are coded, so whatever adapts
may read decoded pixels only, never z or the decoder's outputs. This builds such a part and mixes
it with the shipped vae's float likelihood (weights v3, one posterior draw per latent, as
vae_phases.py):

* the decode order: waves of patches (r + c), in each the 7 phases, in each the 3 channels, all
  patches of the wave at once (the step); a pixel may read what earlier waves and the earlier
  steps of its own patch decoded;
* a z-free prediction per subpixel: the mean of its nearest decoded neighbours of the same
  channel (the 4 at distance 1, else the 8 at distance 2, else the 4 at distance 4; else 128),
  and for G and B plus the earlier channel's residual from its own mean over the same neighbours;
* adaptive counts of the residual (value - prediction) per context (channel, which ring the
  neighbours came from, the neighbours' spread in 8 classes, and for G and B the earlier
  channel's residual in 4), learned after each step (+1, halved above 2^16, a 0.3 floor);
* the mixture w * p_vae + (1 - w) * p_counts at the coded value, for fixed w (no state that
  reads z), and each photo's best of those w (what an encoder could choose and send in a byte).

Prints bits per subpixel of the pixels (the latents' 0.09 are the same in every variant).
"""
import sys

import numpy as np
from PIL import Image
from vae_phases import chain_units

from neuralzip.models import get_codec
from neuralzip.models import vae as V
from neuralzip.models import vae_layout as L

WEIGHTS = (0.0, 0.25, 0.5, 0.625, 0.75, 0.875, 1.0)
RINGS = [[(0, -1), (0, 1), (-1, 0), (1, 0)],  # in opposite pairs (vae_counts_study's pairs read them so)
         [(0, -2), (0, 2), (-2, 0), (2, 0), (-2, -2), (2, 2), (-2, 2), (2, -2)],
         [(0, -4), (0, 4), (-4, 0), (4, 0)]]
R = 255  # residuals -R..R
FLOOR = 0.3
LIMIT = 1 << 16


def vae_bits_image(net, s):
    """-log2 p_vae of every subpixel, as an (H, W, 3) array (the photo's plane of 3 channels)."""
    plan, xo, so = chain_units(net, s)
    ctx = plan.context(xo, 0, len(xo))
    _, _, z = net.float_posterior_draw(xo, ctx)
    per_unit = np.zeros((len(xo), L.PIXELS, 3))
    for c, (bits, units, pix) in enumerate(net.float_pixel_bits(xo, so, ctx, z)):
        per_unit[plan.order[units], pix, c] = bits
    return V.join_units(per_unit, s.shape)


def ring_values(img, done, ys, xs, c, ring):
    """The neighbours (dy, dx) in `ring` of the subpixels (ys, xs) of channel c: (which the decoder
    has [n, m], in an earlier wave or in the pixel's own patch (not the wave's other patches, which a
    decoder may take in another group) and marked in `done` [H, W, 3]; their values [n, m] float;
    the earlier channel's values there [n, m], None for R)."""
    h, w = img.shape[:2]
    dy, dx = (np.array(a)[None, :] for a in zip(*ring))
    y, x = ys[:, None] + dy, xs[:, None] + dx
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    yc, xc = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
    same_patch = (yc // L.PATCH == ys[:, None] // L.PATCH) & (xc // L.PATCH == xs[:, None] // L.PATCH)
    earlier_wave = yc // L.PATCH + xc // L.PATCH < (ys // L.PATCH + xs // L.PATCH)[:, None]
    ok = inside & done[yc, xc, c] & (same_patch | earlier_wave)
    prev = img[yc, xc, c - 1].astype(np.float64) if c > 0 else None
    return ok, img[yc, xc, c].astype(np.float64), prev


def zfree_step(img, done, ys, xs, c):
    """The z-free prediction of channel c at (ys, xs) from what `done` [H, W, 3] marks decoded,
    in an earlier wave or in the pixel's own patch (not the wave's other patches, which a decoder
    may take in another group): (prediction, ring index, spread class, earlier channel's residual
    class)."""
    n = len(ys)
    pred = np.full(n, 128.0)
    ring_of = np.full(n, len(RINGS), np.int64)
    spread = np.zeros(n)
    prev_res = np.zeros(n)
    left = np.ones(n, bool)
    for k, ring in enumerate(RINGS):
        ok, v, pv = ring_values(img, done, ys, xs, c, ring)
        cnt = ok.sum(1)
        use = left & (cnt > 0)
        if use.any():
            mean = (v * ok).sum(1) / np.maximum(cnt, 1)
            dev = (np.abs(v - mean[:, None]) * ok).sum(1) / np.maximum(cnt, 1)
            pred[use], spread[use], ring_of[use] = mean[use], dev[use], k
            if c > 0:
                pmean = (pv * ok).sum(1) / np.maximum(cnt, 1)
                res = img[ys, xs, c - 1] - pmean
                pred[use] += res[use]
                prev_res[use] = res[use]
        left &= cnt == 0
    spread_class = np.minimum(np.floor(np.log2(1 + 2 * spread)).astype(np.int64), 7)
    prev_class = np.minimum(np.floor(np.log2(1 + np.abs(prev_res))).astype(np.int64), 3)
    return np.clip(np.rint(pred), 0, 255).astype(np.int64), ring_of, spread_class, prev_class


def counts_bits(s):
    """-log2 p_counts of every subpixel, decoded in the vae's order, as an (H, W, 3) array."""
    h, w = s.shape[:2]
    img = s.astype(np.int64)
    ph, pw = -(-h // L.PATCH), -(-w // L.PATCH)
    done = np.zeros((h, w, 3), bool)
    out = np.zeros((h, w, 3))
    tables = np.zeros((3, len(RINGS) + 1, 8, 4, 2 * R + 1))
    py, px = np.divmod(np.arange(L.PIXELS), L.PATCH)
    for wave in range(ph + pw - 1):
        rows = np.arange(max(0, wave - pw + 1), min(ph, wave + 1))
        cols = wave - rows
        for phase in range(L.N_PHASES):
            sel = L.PHASE == phase
            ys = (rows[:, None] * L.PATCH + py[sel][None, :]).ravel()
            xs = (cols[:, None] * L.PATCH + px[sel][None, :]).ravel()
            keep = (ys < h) & (xs < w)
            ys, xs = ys[keep], xs[keep]
            for c in range(3):
                pred, ring, spread, prev = zfree_step(img, done, ys, xs, c)
                t = tables[c, ring, spread, prev]  # [n, 2R + 1]
                r = img[ys, xs, c] - pred
                out[ys, xs, c] = -np.log2((t[np.arange(len(r)), r + R] + FLOOR) / (t.sum(1) + FLOOR * (2 * R + 1)))
                np.add.at(tables, (c, ring, spread, prev, r + R), 1.0)
                full = tables[c].sum(-1) > LIMIT
                tables[c][full] /= 2
                done[ys, xs, c] = True
    return out


def main():
    net = get_codec("vae", "image").net
    dims = 0
    totals = {w: 0.0 for w in WEIGHTS}
    best = 0.0
    for path in sys.argv[1:]:
        s = np.asarray(Image.open(path).convert("RGB"))
        p_vae = np.exp2(-vae_bits_image(net, s))
        p_cnt = np.exp2(-counts_bits(s))
        photo = {w: float(-np.log2(w * p_vae + (1 - w) * p_cnt).sum()) for w in WEIGHTS}
        for w in WEIGHTS:
            totals[w] += photo[w]
        best += min(photo.values())
        dims += s.size
        print(path.split("/")[-1], {w: round(b / s.size, 4) for w, b in photo.items()}, flush=True)
    print("total, bits per subpixel of the pixels, by the vae's weight w:",
          {w: round(b / dims, 4) for w, b in totals.items()}, "each photo's best w:", round(best / dims, 4))


if __name__ == "__main__":
    main()
