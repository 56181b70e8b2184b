"""Learn jpeg-coefficients' initial statistics from a folder of images.

Every chunk's adaptive counts start from this prior, so the first blocks are coded as well as the
later ones. A histogram of the model's own symbols per context, over the training images that are
decoded JPEGs (the others are skipped); no torch needed.

    python -m neuralzip.train.jpeg_prior ../shared/data/images/train -o weights
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.media.detect import read_media
from neuralzip.models.jpeg_coefficients import JpegCoefficientsCodec, code_image, found, recognises
from neuralzip.train.classic_prior import prior_counts as prior, training_files

VERSION = 1
# Each prior row weighs this many counts (an observation counts 32): tuned on a held-out part of
# the training images, benchmarks/jpeg_coefficients.py --tune-prior.
PRIOR_TOTAL = 4096


def tally(files: list[Path], progress=print) -> np.ndarray:
    """Symbols seen per context (CONTEXTS, ROW_WIDTH) over the files that are decoded JPEGs the model
    recognises."""
    hist = np.zeros((_k.CONTEXTS, _k.ROW_WIDTH), np.int64)
    for i, f in enumerate(files):
        media = read_media(f.read_bytes(), str(f))
        if not recognises(media.samples, media.bits):
            progress(f"[{i + 1}/{len(files)}] {f.name}: no decoded JPEG coded here, skipped")
            continue
        grid = found(media.samples, media.bits)
        for model, _ in code_image(media.samples, grid, lambda: _k.BlockModel(tally=True)):
            hist += model.tally
        progress(f"[{i + 1}/{len(files)}] {f.name}")
    return hist


def save(counts: np.ndarray, out_dir: Path, recipe: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "jpeg-coefficients-prior.tmp.npz"
    np.savez_compressed(tmp, counts=counts, recipe=np.array(json.dumps(recipe)))  # mostly ones
    final = out_dir / f"{JpegCoefficientsCodec.weights_prefix}-v{VERSION}-{weightstore.file_hash(tmp)}.npz"
    tmp.rename(final)
    return final


def main(argv=None):
    ap = argparse.ArgumentParser(description="learn jpeg-coefficients' initial statistics")
    ap.add_argument("data", type=Path, help="folder of training images (searched recursively)")
    ap.add_argument("-o", "--out", type=Path, default=Path("weights"))
    ap.add_argument("--total", type=int, default=PRIOR_TOTAL, help="weight of each prior row in counts")
    args = ap.parse_args(argv)
    files = training_files(args.data, "image")
    start = time.time()
    counts = prior(tally(files, progress=lambda m: print(m, file=sys.stderr)), args.total)
    recipe = {"command": "python -m neuralzip.train.jpeg_prior " + " ".join(argv or sys.argv[1:]),
              "files": [str(f.relative_to(args.data)) for f in files], "total": args.total,
              "seconds": round(time.time() - start, 1)}
    print(save(counts, args.out, recipe))


if __name__ == "__main__":
    main()
