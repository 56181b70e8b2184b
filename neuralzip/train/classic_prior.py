"""Learn the classic image model's initial statistics from a folder of images.

The adaptive counts of every context start from this prior instead of flat,
so small images and the first rows of large ones are coded well from the
start. No torch needed: it is a histogram of the model's own symbols.

    python -m neuralzip.train.classic_prior ../shared/data/images/train -o weights/
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.coding.stream import CostCoder
from neuralzip.media.detect import read_media
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import NCLS, WEIGHTS_PREFIX, ClassicImageCodec, alphabet

VERSION = 1
PRIOR_TOTAL = 4096  # each row of the prior weighs as much as 128 observations (tuned: benchmarks/tune_classic_prior.py)


def flat_prior_file(path: Path) -> Path:
    np.savez(path, counts=np.ones((2, NCLS, alphabet(8)), np.int32))
    return path


def learn(files: list[Path], total: int = PRIOR_TOTAL, progress=print) -> np.ndarray:
    """-> integer prior counts (2, NCLS, buckets), every entry >= 1."""
    hist = np.zeros((2, NCLS, alphabet(8)), np.float64)

    def observe(c, ys, xs, classes, syms, rows, nlow):
        np.add.at(hist[min(c, 1)], (classes, syms), 1)

    with tempfile.TemporaryDirectory() as tmp:
        codec = ClassicImageCodec(flat_prior_file(Path(tmp) / "flat.npz"))
        for i, f in enumerate(files):
            media = read_media(f.read_bytes(), str(f))
            if media.bits != 8:
                continue
            codec._run(CostCoder, media.samples, Signal("image", media.samples.shape, 8), observe)
            progress(f"[{i + 1}/{len(files)}] {f.name}")
    p = (hist + 0.5) / (hist + 0.5).sum(axis=2, keepdims=True)
    return np.maximum(1, np.round(p * total)).astype(np.int32)


def save(counts: np.ndarray, out_dir: Path, recipe: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "classic-prior.tmp.npz"
    np.savez(tmp, counts=counts, recipe=np.array(json.dumps(recipe)))
    final = out_dir / f"{WEIGHTS_PREFIX}-v{VERSION}-{weightstore.file_hash(tmp)}.npz"
    tmp.rename(final)
    return final


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("data", type=Path, help="folder of training images (every 8-bit image in it)")
    ap.add_argument("-o", "--out", type=Path, default=Path("weights"))
    ap.add_argument("--total", type=int, default=PRIOR_TOTAL, help="weight of each prior row in counts")
    ap.add_argument("--skip-every", type=int, default=0,
                    help="keep every Nth file (sorted) out of training as a tuning set")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in (".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff"))
    if args.skip_every:
        files = [f for i, f in enumerate(files) if i % args.skip_every != args.skip_every - 1]
    start = time.time()
    counts = learn(files, args.total, progress=lambda m: print(m, file=sys.stderr))
    recipe = {"command": "python -m neuralzip.train.classic_prior " + " ".join(argv or sys.argv[1:]),
              "files": [f.name for f in files], "total": args.total, "seconds": round(time.time() - start, 1)}
    print(save(counts, args.out, recipe))


if __name__ == "__main__":
    main()
