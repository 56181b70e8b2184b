"""Learn the classic models' initial statistics from a folder of images or recordings.

The adaptive counts of every context start from this prior instead of flat,
so short files and the start of every chunk are coded well from the first
symbol. No torch needed: it is a histogram of the model's own symbols per
context, over the training files.

    python -m neuralzip.train.classic_prior image ../shared/data/images/train -o weights
    python -m neuralzip.train.classic_prior audio ../shared/data/audio/train -o weights
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
from neuralzip.media.detect import read_media, sniff
from neuralzip.models.base import Signal
from neuralzip.models.classic_audio import ClassicAudioCodec
from neuralzip.models.classic_image import ClassicImageCodec

VERSION = 1
# Each prior row weighs this many counts (observations count 32): tuned on a
# held-out part of the training data, benchmarks/tune_classic_prior.py.
PRIOR_TOTAL = {"image": 16384, "audio": 16384}
CODECS = {"image": ClassicImageCodec, "audio": ClassicAudioCodec}


def training_files(folder: Path, kind: str) -> list[Path]:
    out = []
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        with open(p, "rb") as f:
            found = sniff(f.read(16))
        if found and found[0] == kind:
            out.append(p)
    return out


def learn(kind: str, files: list[Path], total: int, progress=print) -> np.ndarray:
    """-> integer prior counts in the codec's weights shape, every entry >= 1."""
    with tempfile.TemporaryDirectory() as tmp:
        codec = CODECS[kind]()
        codec = codec.with_weights(codec.weights.flat_file(Path(tmp) / "flat.npz"))
        hist = np.zeros(codec.weights.shape, np.float64)

        def observe_image(c, ys, xs, classes, syms, rows, nlow):
            np.add.at(hist[min(c, 1)], (classes, syms), 1)

        def observe_audio(frames, classes, syms, rows, nlow):
            np.add.at(hist, (classes, syms), 1)

        for i, f in enumerate(files):
            media = read_media(f.read_bytes(), str(f))
            if kind == "image" and media.bits != 8:
                continue  # the image prior is for 8-bit images
            signal = Signal(kind, media.samples.shape, media.bits, int(media.meta.get("rate", 0)))
            codec._run(CostCoder, media.samples, signal, observe_image if kind == "image" else observe_audio)
            progress(f"[{i + 1}/{len(files)}] {f.name}")
    return prior_counts(hist, total)


def prior_counts(hist: np.ndarray, total: int) -> np.ndarray:
    """Symbols seen per context -> integer counts, every row summing to about `total`, every entry >= 1."""
    p = (hist + 0.5) / (hist + 0.5).sum(axis=-1, keepdims=True)
    return np.maximum(1, np.round(p * total)).astype(np.int32)


def save(kind: str, counts: np.ndarray, out_dir: Path, recipe: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"classic-{kind}-prior.tmp.npz"
    np.savez(tmp, counts=counts, recipe=np.array(json.dumps(recipe)))
    final = out_dir / f"{CODECS[kind]().weights.prefix}-v{VERSION}-{weightstore.file_hash(tmp)}.npz"
    tmp.rename(final)
    return final


def main(argv=None):
    ap = argparse.ArgumentParser(description="learn the classic model's initial statistics")
    ap.add_argument("kind", choices=sorted(CODECS))
    ap.add_argument("data", type=Path, help="folder of training files (searched recursively)")
    ap.add_argument("-o", "--out", type=Path, default=Path("weights"))
    ap.add_argument("--total", type=int, help="weight of each prior row in counts (default: the tuned value)")
    args = ap.parse_args(argv)
    files = training_files(args.data, args.kind)
    total = args.total or PRIOR_TOTAL[args.kind]
    start = time.time()
    counts = learn(args.kind, files, total, progress=lambda m: print(m, file=sys.stderr))
    recipe = {"command": "python -m neuralzip.train.classic_prior " + " ".join(argv or sys.argv[1:]),
              "files": [str(f.relative_to(args.data)) for f in files], "total": total,
              "seconds": round(time.time() - start, 1)}
    print(save(args.kind, counts, args.out, recipe))


if __name__ == "__main__":
    main()
