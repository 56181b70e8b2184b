"""Where the vae's bits go: per coarse-to-fine phase and channel, patch edge against inside, and
the latents' net cost (stop 49; a measurement)

    PYTHONPATH=. python benchmarks/experiments/vae_phases.py PHOTO...

The shipped weights' float model (what the exact one stays within 1% of), one bin drawn per
latent from its posterior (seeded), through the methods the report's float -ELBO adds up
(vae._Network.float_posterior_draw, float_latent_log2, float_pixel_bits): the pixels' -log2
p(x|z, c) split by phase (vae_layout.PHASE: 0 is the stride-4 grid from z and the context alone, 6
the pixels whose four neighbours are decoded) and channel, and by whether the pixel lies on the
patch's top row or left column (its outside neighbours are in the context, not in the coupling);
the latents' net cost log2 q(z|x, c) - log2 p(z|c) and what bits-back returns, -log2 q(z|x, c).
Also, as a yardstick for how much a pixel's decoded neighbours can tell on these photos, the
empirical entropy of each channel's residual from the rounded mean of its four neighbours and from
MED (one static histogram per photo).
"""
import sys

import numpy as np
from PIL import Image

from neuralzip.models import get_codec
from neuralzip.models import vae as V
from neuralzip.models import vae_layout as L


def chain_units(net, s):
    """A photo's patches as its one-image chain orders them: (plan, units [n, PIXELS, 3] int64,
    their valid shapes), as VAECodec.bits_per_dim lays them out."""
    x, shapes = V.cut_units(s)
    plan = V.ChainOrder(V.plane_grids(s.shape), net.context)
    return plan, x[plan.order].astype(np.int64), shapes[plan.order]


def entropy(r):
    _, counts = np.unique(r, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def neighbour_entropies(a):
    """Per channel: the empirical entropy of x - round(mean of N, S, W, E) and of x - MED."""
    a = a.astype(np.int64)
    x, n, s, w, e, nw = a[1:-1, 1:-1], a[:-2, 1:-1], a[2:, 1:-1], a[1:-1, :-2], a[1:-1, 2:], a[:-2, :-2]
    four = (n + s + w + e + 2) // 4
    med = np.where(nw >= np.maximum(w, n), np.minimum(w, n), np.where(nw <= np.minimum(w, n), np.maximum(w, n), w + n - nw))
    return [(entropy(x[..., c] - four[..., c]), entropy(x[..., c] - med[..., c])) for c in range(3)]


def main():
    net = get_codec("vae", "image").net
    bits = np.zeros((L.N_PHASES, 3))
    count = np.zeros((L.N_PHASES, 3))
    edge = np.zeros((2, 2))  # [edge?] -> (bits, subpixels)
    latents, back, dims, yard = 0.0, 0.0, 0, []
    for path in sys.argv[1:]:
        s = np.asarray(Image.open(path).convert("RGB"))
        plan, x, shapes = chain_units(net, s)
        ctx = plan.context(x, 0, len(x))
        qmu, qls, z = net.float_posterior_draw(x, ctx)
        log2_q, log2_p = net.float_latent_log2(qmu, qls, z, ctx)
        latents += log2_q - log2_p
        back -= log2_q
        per_channel = net.float_pixel_bits(x, shapes, ctx, z)
        b = np.concatenate([bits for bits, _, _ in per_channel])
        c = np.concatenate([np.full(len(bits), ch) for ch, (bits, _, _) in enumerate(per_channel)])
        pix = np.concatenate([p for _, _, p in per_channel])
        np.add.at(bits, (L.PHASE[pix], c), b)
        np.add.at(count, (L.PHASE[pix], c), 1)
        on_edge = (pix < L.PATCH) | (pix % L.PATCH == 0)
        for k in (0, 1):
            edge[k] += (b[on_edge == k].sum(), (on_edge == k).sum())
        dims += s.size
        yard.append(neighbour_entropies(s))
        print(path.split("/")[-1], flush=True)
    print(f"pixels {bits.sum() / dims:.4f} bits/subpixel, latents (net) {latents / dims:.4f}, of which bits-back "
          f"returns {back / dims:.4f}")
    for p in range(L.N_PHASES):
        print(f"phase {p}: {count[p].sum() / count.sum():.4f} of the subpixels, bits/subpixel R G B "
              f"{np.round(bits[p] / np.maximum(count[p], 1), 3)}")
    print(f"top row / left column of the patch: {edge[1, 0] / edge[1, 1]:.3f} bits/subpixel "
          f"({edge[1, 1] / edge[:, 1].sum():.3f} of them); inside {edge[0, 0] / edge[0, 1]:.3f}")
    y = np.mean(np.array(yard), axis=0)
    print("empirical entropy per channel R G B, mean over photos: four-neighbour mean",
          np.round(y[:, 0], 3), "MED", np.round(y[:, 1], 3))


if __name__ == "__main__":
    main()
