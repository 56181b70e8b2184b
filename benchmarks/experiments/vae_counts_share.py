"""How much the vae's neighbour counts should weigh: the exact coded size of the tuning files (the
every-10th files of images/train that training keeps apart) at several shares of the mixture.
(stop 50; coded with the integer model, one chain per file, nothing written)

    PYTHONPATH=. python benchmarks/experiments/vae_counts_share.py [SHARE ...]   # default 4 6 8 10

A share is the vae's part of the mixture in sixteenths, here one for every channel and phase (weights
v4 ship 8; v5 fit one per channel and phase, so with v5 this measures a single share against that table). Prints each file's bits
per subpixel (payload bytes) at each share, and the totals.
"""
import sys
from pathlib import Path

import numpy as np

from neuralzip.models import get_codec, vae
from neuralzip.train.image import image_split, load_rgb8

TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "images" / "train"


def main():
    shares = [int(s) for s in sys.argv[1:]] or [4, 6, 8, 10]
    net = get_codec("vae", "image").net
    totals = dict.fromkeys(shares, 0)
    dims = 0
    for f in image_split(TRAIN)[1]:
        img = load_rgb8(f)
        x, shapes = vae.cut_units(img)
        plan = vae.ChainOrder(vae.plane_grids(img.shape), True)
        x, shapes = np.ascontiguousarray(x[plan.order]), shapes[plan.order]
        row = {}
        for s in shares:
            data, _, _ = vae.encode_chain(net, x, shapes, plan, 0, len(x), np.full((3, 7), s))
            row[s] = round(8 * len(data) / img.size, 4)
            totals[s] += 8 * len(data)
        dims += img.size
        print(f.name, row, flush=True)
    print("total bits per subpixel by share:", {s: round(t / dims, 4) for s, t in totals.items()})


if __name__ == "__main__":
    main()
