"""The neighbour counts' floor and halving limit, priced on the tuning files (how weights v8's
counts.scale 32 was chosen; weights/RECIPES.md): the float mixture of the vae and the counts at the
best share per channel and phase (vae.share_costs), bits per subpixel of pixels, with the shipped
weights' counts.scale or counts.limit replaced. Run it on tuning files of images/train, never on
images/valid or outside photos.

    OPENBLAS_NUM_THREADS=1 python benchmarks/experiments/vae_counts_floor.py [--weights FILE] PHOTO...
"""

import argparse
from pathlib import Path

from neuralzip import weightstore
from neuralzip.models import vae
from neuralzip.train.image import load_rgb8

TRIALS = [("scale", [1, 2, 3, 5, 8, 12, 16, 24, 40, 64]), ("limit", [1 << 12, 1 << 14, 1 << 16, 1 << 18])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="a vae weights file (default: the shipped one)")
    ap.add_argument("photos", type=Path, nargs="+")
    args = ap.parse_args()
    net = vae.VAECodec(args.weights or weightstore.shipped("vae-image")).net
    shipped = net.counts
    imgs = [load_rgb8(f) for f in args.photos]
    dims = sum(img.size for img in imgs)
    print("photos:", " ".join(f.name for f in args.photos))
    for key, values in TRIALS:
        for value in values:
            net.counts = shipped._replaced(**{key: value})
            bits = [vae.share_costs(net, img).min(axis=-1).sum() for img in imgs]
            print(f"{key} {value}: {sum(bits) / dims:.4f} in all;",
                  " ".join(f"{b / img.size:.4f}" for b, img in zip(bits, imgs)), flush=True)
        net.counts = shipped


if __name__ == "__main__":
    main()
