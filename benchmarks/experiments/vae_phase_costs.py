"""Where the vae's bits go per channel and phase: the float model's bits per subpixel of the vae
alone, of the neighbour counts alone, and of their mixture at the best share of each step, summed
over the photos given (each its own chain; vae.share_costs, the same figures `train vae` fits the
shares on). The tool behind weights v6's choice of the counts' context (weights/RECIPES.md): run
it on tuning files of images/train, never on images/valid or outside photos.

    OPENBLAS_NUM_THREADS=1 python benchmarks/experiments/vae_phase_costs.py [--weights FILE] PHOTO...
"""

import argparse
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.models import vae, vae_layout as L
from neuralzip.train.image import load_rgb8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="a vae weights file (default: the shipped one)")
    ap.add_argument("photos", type=Path, nargs="+")
    args = ap.parse_args()
    net = vae.VAECodec(args.weights or weightstore.shipped("vae-image")).net
    costs, dims = 0.0, np.zeros((3, L.N_PHASES))
    phase_grid = L.PHASE.reshape(L.PATCH, L.PATCH)
    for f in args.photos:
        img = load_rgb8(f)
        costs = costs + vae.share_costs(net, img)
        h, w = img.shape[:2]
        phase = phase_grid[np.arange(h)[:, None] % L.PATCH, np.arange(w)[None, :] % L.PATCH]
        dims += np.bincount(phase.ravel(), minlength=L.N_PHASES)[None, :]
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    print("share of subpixels per phase", dims[0] / dims[0].sum())
    print("vae alone, bits per subpixel (rows R, G, B; columns phases 0..6)\n", costs[:, :, -1] / dims)
    print("counts alone\n", costs[:, :, 0] / dims)
    print("mixture at the best share\n", costs.min(-1) / dims)
    print("best share (sixteenths the vae's)\n", costs.argmin(-1))
    total = dims.sum()
    print(f"totals: vae {costs[:, :, -1].sum() / total:.4f}, counts {costs[:, :, 0].sum() / total:.4f}, "
          f"mixture {costs.min(-1).sum() / total:.4f} bits per subpixel")


if __name__ == "__main__":
    main()
