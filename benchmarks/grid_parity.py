"""What the encoder's parity measure (neuralzip/models/grid_parity.py) says of whole photos.

    python benchmarks/grid_parity.py [--data ../shared/data] [FOLDER ...] [--out results/grid_parity.json]

Every photo of images/train and images/valid, and of each FOLDER given (held-out photos, measured
only), as classic codes it (its colour flag: libjpeg's YCbCr where the photo is a decoded JPEG,
else as stored), in one chunk: the measure's gain, whether the encoder would split the mixer's
weight sets by parity, and the seconds the measure took. grid_parity.MIN_GAIN was set from the
largest gain on images/train and images/valid (none of them switches); the figures per folder
show how far each set lies from it.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from neuralzip.models import grid_parity  # noqa: E402
from neuralzip.models.classic_image import COLOUR_FLAGGED, ClassicImageCodec  # noqa: E402


def folder_figures(folder: Path) -> dict:
    photos = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB")).astype(np.int64)
        _, coded = ClassicImageCodec.as_coded(img, {"colour": COLOUR_FLAGGED})
        start = time.perf_counter()
        gain = grid_parity.parity_gain(coded)
        photos.append({"file": path.name, "gain": round(gain, 4), "splits": gain >= grid_parity.MIN_GAIN,
                       "seconds": round(time.perf_counter() - start, 3), "megapixels": round(img.shape[0] * img.shape[1] / 1e6, 2)})
    gains = [p["gain"] for p in photos]
    return {"photos": len(photos), "split": sum(p["splits"] for p in photos), "max_gain": max(gains, default=0),
            "min_gain": min(gains, default=0), "per_photo": photos}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, default=HERE.parent / ".." / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "grid_parity.json")
    args = ap.parse_args()
    folders = {"images/train": args.data / "images" / "train", "images/valid": args.data / "images" / "valid"}
    folders.update({f.name: f for f in args.folders})
    result = {"command": "python benchmarks/grid_parity.py " + " ".join(f.name for f in args.folders),
              "min_gain": grid_parity.MIN_GAIN, "folders": {}}
    for name, folder in folders.items():
        result["folders"][name] = folder_figures(folder)
        f = result["folders"][name]
        print(f"{name}: {f['photos']} photos, {f['split']} split, gain {f['min_gain']:.4f} to {f['max_gain']:.4f}",
              flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
