"""local-ls-mlp's weights v4 ("new") against v3, exact-model bits under today's coding (level 1):
on the tuning files of images/train (what chose v4) and, reported apart, on images/valid.

    python benchmarks/experiments/local_ls_mlp_v4_vs_v3.py > benchmarks/results/local_ls_mlp_v4_vs_v3.txt

(run from the repository root; one line per photo, then the ratios new / v3 per group)
"""

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # two photos at a time, one kernel thread each

from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.train.image import image_split  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
DATA = Path("../shared/data/images")
VERSIONS = {"v3": WEIGHTS / "local-ls-mlp-image-v3-6f87725b5827bbff.npz",
            "new": WEIGHTS / "local-ls-mlp-image-v4-149c504c2fe973dc.npz"}


def one(path: str) -> dict:
    media = read_media(Path(path).read_bytes())
    signal = Signal("image", media.samples.shape, media.bits)
    row = {"file": Path(path).name}
    for version, weights in VERSIONS.items():
        row[version] = get_codec("local-ls-mlp", "image").with_weights(str(weights)).likelihood(media.samples, signal)[1]
    print(json.dumps(row), flush=True)
    return row


def main():
    _, tuning = image_split(DATA / "train")
    valid = sorted((DATA / "valid").glob("*.png"))
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(one, [str(p) for p in list(tuning) + valid]))
    groups = {"tune": [p.name for p in tuning],
              "valid urban": [p.name for p in valid if p.name.startswith("urban")],
              "valid wiki": [p.name for p in valid if p.name.startswith("wiki")]}
    for name, files in groups.items():
        mine = [r for r in rows if r["file"] in files]
        print(name, "new/v3", sum(r["new"] for r in mine) / sum(r["v3"] for r in mine))


if __name__ == "__main__":
    main()
