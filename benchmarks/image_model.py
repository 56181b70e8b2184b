"""Figures for the learned image model, context-mlp (issue: smaller than JPEG XL).

    sudo benchmarks/setup.sh            # the peers: cjxl, cwebp, optipng, flac, wavpack
    python benchmarks/image_model.py [--data ../shared/data] [--jobs 2]

* size: every photo of images/valid through neuralzip context-mlp and classic
  (whole .nz files, with the float and exact likelihoods) and through PNG
  (Pillow optimize), optipng, WebP lossless and JPEG XL -e 7 / -e 9, in the same
  run (`neuralzip bench` machinery); totals in bits per subpixel;
* speed: compress and decompress of a 768x512 centre crop of a valid photo,
  whole processes with start-up, against `cjxl -d 0 -e 7` in the same run
  (median of 3), for context-mlp and classic.
Fails if a peer is missing: a figure is never estimated. Writes
benchmarks/results/image_model.json. Memory (24 MP): benchmarks/large_image.py --model context-mlp.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import checked_bench, timing  # noqa: E402

MODELS = ["context-mlp", "classic"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "image_model.json")
    args = ap.parse_args()
    neuralzip = [str(Path(sys.executable).with_name("neuralzip"))]
    speed = {m: timing(args.data, neuralzip, m) for m in MODELS}
    print(json.dumps(speed, indent=1), flush=True)
    inputs, rows = checked_bench(args.data / "images" / "valid", MODELS, args.jobs, "pixels")
    dims = sum(r["dims"] for r in rows if r["codec"] == "png")
    totals = {}
    for codec in dict.fromkeys(r["codec"] for r in rows):
        mine = [r for r in rows if r["codec"] == codec]
        totals[codec] = {"bpsp": round(8 * sum(r["bytes"] for r in mine) / dims, 5),
                         "compress_s": round(sum(r["compress_s"] for r in mine), 1),
                         "decompress_s": round(sum(r["decompress_s"] for r in mine), 1)}
        if mine[0]["neuralzip"]:
            totals[codec]["nll_float_bpsp"] = round(sum(r["nll_float_bits"] for r in mine) / dims, 5)
            totals[codec]["nll_bpsp"] = round(sum(r["nll_bits"] for r in mine) / dims, 5)
    result = {"command": "python benchmarks/image_model.py", "files": len(inputs), "subpixels": dims,
              "totals": totals, "speed_768x512": speed, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"totals": totals, "speed_768x512": speed}, indent=1))


if __name__ == "__main__":
    main()
