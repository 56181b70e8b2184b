"""Learn jpeg-coefficients' initial statistics from a folder of images.

Every chunk's adaptive counts start from this prior, so the first blocks are coded as well as the
later ones. A histogram of the model's own symbols per context, over the training images that are
decoded JPEGs (the others are skipped); no torch needed.

Since weights v2 the histogram also counts each training image saved as a JPEG and decoded again
(`--no-resave` leaves that out, as v1 was learned): the folder's own decoded JPEGs are one
camera's high-quality full-resolution-chroma files, while most JPEGs people have (phones, the
web) are coded at lower qualities with subsampled chroma. Each image is resaved once at every
quality of RESAVE_QUALITIES, its chroma sampling turning through RESAVE_SAMPLINGS from image to
image and quality to quality (Pillow's encoder and decoder, libjpeg-turbo, as a user's tools
would).

    python -m neuralzip.train.jpeg_prior ../shared/data/images/train -o weights
"""

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip import weightstore
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.media.detect import read_media
from neuralzip.models.jpeg_coefficients import JpegCoefficientsCodec, code_image, found, recognises, upright
from neuralzip.train.classic_prior import prior_counts as prior, training_files

VERSION = 2
# Each prior row weighs this many counts (an observation counts 32): tuned on a held-out part of
# the training images, benchmarks/jpeg_coefficients.py --tune-prior.
PRIOR_TOTAL = 4096
# The resaved copies: qualities (none of them 75 or 90, the qualities benchmarks/jpeg_coefficients.py
# --resaved measures at) and the chroma samplings they turn through (Pillow's subsampling codes).
RESAVE_QUALITIES = (60, 80, 95)
RESAVE_SAMPLINGS = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def resaved(samples: np.ndarray, quality: int, sampling: str) -> np.ndarray | None:
    """The 8-bit grey or RGB image saved as a JPEG by Pillow and decoded again (None: another mode)."""
    if samples.dtype != np.uint8 or samples.ndim != 3 or samples.shape[2] not in (1, 3):
        return None
    buf = io.BytesIO()
    img = Image.fromarray(samples[:, :, 0] if samples.shape[2] == 1 else samples)
    img.save(buf, "JPEG", quality=quality, subsampling=RESAVE_SAMPLINGS[sampling])
    back = np.asarray(Image.open(buf))
    return back.reshape(back.shape[:2] + (-1,))


def resave_plan(index: int) -> list[tuple[int, str]]:
    """(quality, sampling) of training image `index`'s resaved copies: one per quality, the sampling
    turning with the image and the quality, so every pair occurs about equally often."""
    names = list(RESAVE_SAMPLINGS)
    return [(q, names[(index + k) % len(names)]) for k, q in enumerate(RESAVE_QUALITIES)]


def tally_image(samples: np.ndarray) -> np.ndarray | None:
    """Symbols seen per context (CONTEXTS, ROW_WIDTH) in one image; None if it is no decoded JPEG
    the model codes as coefficients."""
    if samples.dtype != np.uint8 or not recognises(samples, 8):
        return None
    grid = found(samples, 8)
    hist = np.zeros((_k.CONTEXTS, _k.ROW_WIDTH), np.int64)
    for model, _ in code_image(upright(samples, grid), grid, lambda: _k.BlockModel(tally=True)):
        hist += model.tally
    return hist


def _tally_file(job: tuple[Path, int, bool]) -> tuple[str, np.ndarray | None, list[str]]:
    """One training file's histogram: the image as it is (if a decoded JPEG), plus its resaved
    copies -> (file name, histogram or None, what was counted)."""
    path, index, resave = job
    samples = read_media(path.read_bytes(), str(path)).samples
    total, counted = None, []
    copies = [("as stored", samples)]
    if resave:
        copies += [(f"q{q} {s}", resaved(samples, q, s)) for q, s in resave_plan(index)]
    for what, img in copies:
        hist = None if img is None else tally_image(img)
        if hist is not None:
            total = hist if total is None else total + hist
            counted.append(what)
    return path.name, total, counted


def tally(files: list[Path], resave: bool = False, jobs: int = 1, progress=print) -> np.ndarray:
    """Symbols seen per context (CONTEXTS, ROW_WIDTH) over the files that are decoded JPEGs the model
    recognises, and (resave) over every file's resaved copies."""
    hist = np.zeros((_k.CONTEXTS, _k.ROW_WIDTH), np.int64)
    work = [(f, i, resave) for i, f in enumerate(files)]
    # spawned workers: a forked one could inherit the kernels' OpenMP threads mid-state and hang
    with (ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) if jobs > 1
          else contextlib.nullcontext()) as pool:
        for i, (name, h, counted) in enumerate((pool.map if pool else map)(_tally_file, work)):
            if h is not None:
                hist += h
            progress(f"[{i + 1}/{len(files)}] {name}: " + (", ".join(counted) or "no decoded JPEG, skipped"))
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
    ap.add_argument("--no-resave", dest="resave", action="store_false",
                    help="count only the folder's own decoded JPEGs (how weights v1 were learned)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = ap.parse_args(argv)
    files = training_files(args.data, "image")
    start = time.time()
    counts = prior(tally(files, args.resave, args.jobs, progress=lambda m: print(m, file=sys.stderr)), args.total)
    recipe = {"command": "python -m neuralzip.train.jpeg_prior " + " ".join(argv or sys.argv[1:]),
              "files": [str(f.relative_to(args.data)) for f in files], "total": args.total,
              "resaved": {"qualities": list(RESAVE_QUALITIES), "samplings": list(RESAVE_SAMPLINGS)}
              if args.resave else None,
              "seconds": round(time.time() - start, 1)}
    print(save(counts, args.out, recipe))


if __name__ == "__main__":
    main()
