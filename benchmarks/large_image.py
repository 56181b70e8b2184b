"""Memory and time for a 24-megapixel photo (a 6000x4000 mosaic of valid photos).

    python benchmarks/large_image.py [--model classic] [--level 1]

Builds the mosaic (tiles of 1024x768 from images/valid), then runs
`neuralzip compress` and `neuralzip decompress` under /usr/bin/time -v and
records wall time and peak resident memory of each whole process, checks
the restored pixels, and appends a line to benchmarks/results/large_image.jsonl.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from baselines import measured  # the script's folder is on sys.path when run as a script
from neuralzip.media.detect import read_media

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "valid"


def mosaic(path: Path) -> None:
    files = sorted(DATA.glob("*.png"))
    canvas = np.zeros((4000, 6000, 3), np.uint8)
    i = 0
    for y in range(0, 4000, 768):
        for x in range(0, 6000, 1024):
            tile = np.asarray(Image.open(files[i % len(files)]).convert("RGB"))[:768, :1024]
            i += 1
            h, w = min(tile.shape[0], 4000 - y), min(tile.shape[1], 6000 - x)
            canvas[y:y + h, x:x + w] = tile[:h, :w]
    Image.fromarray(canvas).save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="classic")
    ap.add_argument("--level", type=int, default=1)
    args = ap.parse_args()
    nz_cmd = [str(Path(sys.executable).with_name("neuralzip"))]
    with tempfile.TemporaryDirectory() as tmp:
        src, nz, back = Path(tmp) / "mosaic.png", Path(tmp) / "mosaic.nz", Path(tmp) / "back.png"
        mosaic(src)
        result = {"input": "6000x4000 mosaic of images/valid", "model": args.model, "level": args.level,
                  "compress": measured(nz_cmd + ["compress", "-q", "--model", args.model, "--level", str(args.level),
                                                 "-o", str(nz), str(src)]),
                  "decompress": measured(nz_cmd + ["decompress", "-q", "-o", str(back), str(nz)])}
        result["bpsp"] = round(8 * nz.stat().st_size / (6000 * 4000 * 3), 4)
        result["identical"] = bool(np.array_equal(read_media(src.read_bytes()).samples,
                                                  read_media(back.read_bytes()).samples))
    print(json.dumps(result))
    with open(Path(__file__).parent / "results" / "large_image.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
