"""How much of classic's bits on a small photo is the cost of learning from scratch (stop 61).

Each photo's 512x512 centre crop is priced alone, and after a 512x512 crop of a warm-up photo in
the same chunk (1024 x 512: one chunk and one tile, so every statistic, count row, bias, mixer fit
and colour-table count the warm-up left is what the photo starts from). Likelihood only, classic's
exact bits per subpixel; nothing is written to a file.

    python benchmarks/experiments/warm_start.py WARMUP PHOTO... > benchmarks/results/warm_start.txt
"""

import sys

import numpy as np
from PIL import Image

from neuralzip.models import get_codec
from neuralzip.models.base import Signal

SIDE = 512


def centre_crop(path) -> np.ndarray:
    a = np.asarray(Image.open(path).convert("RGB"))
    h, w = a.shape[:2]
    return np.ascontiguousarray(a[h // 2 - SIDE // 2:h // 2 + SIDE // 2, w // 2 - SIDE // 2:w // 2 + SIDE // 2])


def main():
    codec = get_codec("classic", "image")
    warm = centre_crop(sys.argv[1])
    print("photo, bits/subpixel alone, after the warm-up, ratio")
    alone_total = after_total = 0.0
    for path in sys.argv[2:]:
        photo = centre_crop(path)
        alone = codec.bits_per_dim(photo, Signal("image", photo.shape, 8)).sum()
        both = np.concatenate([warm, photo])
        after = codec.bits_per_dim(both, Signal("image", both.shape, 8))[SIDE:].sum()
        alone_total, after_total = alone_total + alone, after_total + after
        print(path.split("/")[-1], round(alone / photo.size, 4), round(after / photo.size, 4), round(after / alone, 4),
              flush=True)
    print("total", round(after_total / alone_total, 4))


if __name__ == "__main__":
    main()
