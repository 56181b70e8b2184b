"""The tuning measure used to design the classic image model.

    python benchmarks/classic_image_crops.py [--jxl] [--blends]

10 held-out crops (512x384, centre) of every 5th image of images/train, coded
with the classic image model from a flat prior (so design choices are compared
without the learned prior), in bits per subpixel of the exact model; with
--jxl also `cjxl -d 0 -e 7` on the same crops; with --blends each blend a classic
file can record (whole units; 1/16 units; with the NLMS mixer; with the least-squares
mixer), from the flat and from the shipped prior. Appends a line to
benchmarks/results/classic_image_crops.jsonl. The design steps measured with it
are listed in benchmarks/results/classic_image_ablation.md.
"""

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip.models.base import Signal
from neuralzip.models.classic_image import BLEND_FINE, BLEND_INTEGER, BLEND_NLMS, BLEND_OLS, ClassicImageCodec

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "train"


def crops(data: Path) -> list[np.ndarray]:
    out = []
    for f in sorted(data.glob("*.png"))[4::5]:
        a = np.asarray(Image.open(f).convert("RGB"))
        h, w = a.shape[:2]
        out.append(np.ascontiguousarray(a[(h - 384) // 2:(h - 384) // 2 + 384, (w - 512) // 2:(w - 512) // 2 + 512]))
    return out


def blend_codec(blend: int) -> type:
    """classic writing `blend` into its files (whole units is what a file without the key means)."""
    recorded = () if blend == BLEND_INTEGER else (blend,)
    return type(f"ClassicBlend{blend}", (ClassicImageCodec,), {"blends_recorded": recorded})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--jxl", action="store_true", help="also measure cjxl -d 0 -e 7 on the crops")
    ap.add_argument("--blends", action="store_true", help="also measure every blend, flat and shipped prior")
    args = ap.parse_args()
    images = crops(args.data)
    dims = sum(a.size for a in images)
    result = {"crops": len(images)}
    with tempfile.TemporaryDirectory() as tmp:
        codec = ClassicImageCodec()
        codec = codec.with_weights(codec.weights.flat_file(Path(tmp) / "flat.npz"))
        start = time.time()
        bits = sum(codec.likelihood(a, Signal("image", a.shape, 8))[1] for a in images)
        result["classic_flat_prior_bpsp"] = round(bits / dims, 5)
        result["seconds"] = round(time.time() - start, 1)
        if args.blends:
            flat = Path(tmp) / "flat.npz"
            for name, blend in (("integer", BLEND_INTEGER), ("fine", BLEND_FINE), ("nlms_mixer", BLEND_NLMS),
                                ("least_squares_mixer", BLEND_OLS)):
                for prior, weights in (("flat", flat), ("shipped", None)):
                    codec = blend_codec(blend)(weights)
                    bits = sum(codec.likelihood(a, Signal("image", a.shape, 8))[1] for a in images)
                    result[f"blend_{name}_{prior}_prior_bpsp"] = round(bits / dims, 5)
                    print(name, prior, result[f"blend_{name}_{prior}_prior_bpsp"], flush=True)
        if args.jxl:
            if shutil.which("cjxl") is None:
                raise SystemExit("--jxl needs cjxl (apt-get install libjxl-tools)")
            size = 0
            for i, a in enumerate(images):
                png, jxl = Path(tmp) / f"{i}.png", Path(tmp) / f"{i}.jxl"
                Image.fromarray(a).save(png)
                subprocess.run(["cjxl", "--quiet", "-d", "0", "-e", "7", str(png), str(jxl)], check=True,
                               capture_output=True)
                size += jxl.stat().st_size
            result["jxl_e7_bpsp"] = round(8 * size / dims, 5)
    print(json.dumps(result))
    with open(Path(__file__).parent / "results" / "classic_image_crops.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
