"""Would the vae gain what classic gains by coding decoded JPEGs in their YCbCr? The shipped vae's
exact -ELBO (its encoder's shares, bits-back chain of one photo) of a photo coded as RGB and coded
in the (Y, Cb, Cr) it was decoded from (models/jpeg_colour.py), with the networks as trained (on
RGB values: the vae's trainer does not code decoded JPEGs in YCbCr).

    python benchmarks/experiments/vae_ycbcr.py PHOTO... [--out benchmarks/results/vae_ycbcr.json]

Photos that are no decoded JPEG (a pixel without a preimage) are listed with "ycbcr": null.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from neuralzip.models import get_codec, jpeg_colour
from neuralzip.models.base import Signal
from neuralzip.train.image import load_rgb8


def exact_bits(x: np.ndarray) -> float:
    x = np.ascontiguousarray(x.astype(np.uint8))
    return get_codec("vae", "image").encode(x, Signal("image", x.shape, 8)).nll_bits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for path in args.photos:
        img = load_rgb8(Path(path))
        ycc = jpeg_colour.encode_chunk(img.astype(np.int64))
        row = {"file": Path(path).name, "rgb bpsp": round(exact_bits(img) / img.size, 4),
               "ycbcr bpsp": None if ycc is None else round(exact_bits(ycc) / img.size, 4)}
        if ycc is not None:
            row["ycbcr / rgb"] = round(row["ycbcr bpsp"] / row["rgb bpsp"], 4)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        args.out.write_text(json.dumps({"command": shlex.join(["python", "benchmarks/experiments/vae_ycbcr.py"]
                                                              + sys.argv[1:]), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
