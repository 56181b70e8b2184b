"""Memory and time for a large photo (a mosaic of valid photos; 6000x4000, 24 megapixels, unless --size).

    python benchmarks/large_image.py [--model classic] [--level 1] [--size 6000x4000] [--whole]

Builds the mosaic (tiles of 1024x768 from images/valid), then runs
`neuralzip compress` and `neuralzip decompress` under /usr/bin/time -v and
records wall time and peak resident memory of each whole process, checks
the restored pixels, and appends a line to benchmarks/results/large_image.jsonl.

An image of more than 16 M samples is coded chunk by chunk (neuralzip/chunked.py: its PNG read
and written a block of rows at a time) when its model can; --whole switches that path off
(NEURALZIP_STREAM_BYTES), as every image was coded before, for comparison. The line records which
path ran ("path").
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from baselines import measured  # the script's folder is on sys.path when run as a script
from neuralzip.media.detect import read_media

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "valid"


def mosaic(path: Path, width: int = 6000, height: int = 4000) -> None:
    files = sorted(DATA.glob("*.png"))
    canvas = np.zeros((height, width, 3), np.uint8)
    i = 0
    for y in range(0, height, 768):
        for x in range(0, width, 1024):
            tile = np.asarray(Image.open(files[i % len(files)]).convert("RGB"))[:768, :1024]
            i += 1
            h, w = min(tile.shape[0], height - y), min(tile.shape[1], width - x)
            canvas[y:y + h, x:x + w] = tile[:h, :w]
    Image.fromarray(canvas).save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="classic")
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--size", default="6000x4000", help="the mosaic's WIDTHxHEIGHT")
    ap.add_argument("--whole", action="store_true", help="the whole-member path (no chunk-by-chunk coding)")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    nz_cmd = [str(Path(sys.executable).with_name("neuralzip"))]
    if args.whole:
        os.environ["NEURALZIP_STREAM_BYTES"] = str(1 << 62)  # the child processes inherit it
    from neuralzip import api, chunked  # after the environment is set: the threshold the children use

    with tempfile.TemporaryDirectory() as tmp:
        src, nz, back = Path(tmp) / "mosaic.png", Path(tmp) / "mosaic.nz", Path(tmp) / "back.png"
        mosaic(src, width, height)
        result = {"input": f"{width}x{height} mosaic of images/valid", "model": args.model, "level": args.level,
                  "path": "chunked" if (chunked.long_enough("image", (height, width, 3)) and chunked.chunk_codec(
                      api.get_codec(args.model, "image", None, args.level))) else "whole",
                  "compress": measured(nz_cmd + ["compress", "-q", "--model", args.model, "--level", str(args.level),
                                                 "-o", str(nz), str(src)]),
                  "decompress": measured(nz_cmd + ["decompress", "-q", "-o", str(back), str(nz)])}
        result["bpsp"] = round(8 * nz.stat().st_size / (width * height * 3), 4)
        result["identical"] = bool(np.array_equal(read_media(src.read_bytes()).samples,
                                                  read_media(back.read_bytes()).samples))
    print(json.dumps(result))
    with open(Path(__file__).parent / "results" / "large_image.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
