"""Does the order of the colour channels matter? A model's exact bits with a photo's channels in
each of the six orders (classic codes the later channels with the earlier ones' residuals, its
least-squares mixer reads them, so the first channel is coded alone and the last with the most help).

    python benchmarks/experiments/channel_order.py PHOTO... [--model classic@1]
        [--out benchmarks/results/channel_order.json]

A decoded JPEG (every pixel a libjpeg colour) is coded in YCbCr only in the order RGB: its permuted
channels are no such colours, so such photos say nothing about the order (urban_img_003 is one).
"""

import argparse
import itertools
import json
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from neuralzip.models import get_codec
from neuralzip.models.base import Signal
from neuralzip.train.image import load_rgb8

ORDERS = ["".join("RGB"[c] for c in perm) for perm in itertools.permutations(range(3))]


def one(job) -> dict:
    path, model, level = job
    img = load_rgb8(Path(path))
    row = {"file": Path(path).name, "subpixels": int(img.size)}
    for order in ORDERS:
        x = np.ascontiguousarray(img[..., ["RGB".index(ch) for ch in order]])
        row[order] = round(get_codec(model, "image", level=level).likelihood(x, Signal("image", x.shape, 8))[1], 1)
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--model", default="classic@1", help="MODEL@LEVEL")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    model, _, level = args.model.partition("@")
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(one, [(p, model, int(level or 1)) for p in args.photos]))
    for r in rows:  # each order against RGB's bits, and the best order per photo
        r["vs RGB"] = {o: round(r[o] / r["RGB"], 5) for o in ORDERS}
        r["best"] = min(ORDERS, key=lambda o: r[o])
    rgb = sum(r["RGB"] for r in rows)
    totals = {o: round(sum(r[o] for r in rows) / rgb, 5) for o in ORDERS}
    totals["best per photo"] = round(sum(r[r["best"]] for r in rows) / rgb, 5)
    print(json.dumps(totals))
    if args.out:
        args.out.write_text(json.dumps({"command": shlex.join(["python", "benchmarks/experiments/channel_order.py"]
                                                              + sys.argv[1:]),
                                        "vs RGB in total": totals, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
