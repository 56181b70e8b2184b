"""classic's parity taps ("blend": 7, stop 57) against "blend": 6, in the same code: the exact
model's bits of each photo both ways.

    python benchmarks/experiments/parity_taps.py PHOTO... [--stand-ins] [--model local-ls-mlp@2]
        [--out benchmarks/results/parity_taps.json]

The taps only act in chunks whose parity byte splits the mixer's sets (models/grid_parity.py), so a
photo without colours on the 2x2 grid codes the same both ways. --stand-ins: also each photo made
into three film-scan stand-ins, its colour (Cb, Cr) kept at one value per 2x2 cell (the cell's
mean) and brought back to every pixel in three ways: "centred" (3/4 to the near cell and 1/4 to the
far one, as offset_rows.py makes them), "co-sited" (the cell's value at its top-left pixel, the
pixels between two cells their mean) and "replicated" (the cell's value at its four pixels).
--model: another model built on classic, at a level (classic@1 by default).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from neuralzip.models import get_codec
from neuralzip.models.classic_image import BLEND_OFFSET_ROWS, BLEND_PARITY_TAPS
from neuralzip.train.image import load_rgb8
from offset_rows import YCC, _up2, bits, compared, total, writing

UPSAMPLINGS = ("centred", "co-sited", "replicated")
NAMES = ("blend 6", "parity taps")


def stand_in(img: np.ndarray, upsampling: str) -> np.ndarray:
    """The photo (cut to even sides) with its chroma at one value per 2x2 cell, brought back so."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    ycc = img[:h, :w].astype(np.float64) @ YCC.T
    for k in (1, 2):
        low = ycc[:, :, k].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        if upsampling == "centred":
            ycc[:, :, k] = _up2(_up2(low, 0), 1)
        elif upsampling == "co-sited":
            ycc[:, :, k] = _cosited(_cosited(low, 0), 1)
        else:
            ycc[:, :, k] = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)
    return np.clip(np.rint(ycc @ np.linalg.inv(YCC).T), 0, 255).astype(np.uint8)


def _cosited(a: np.ndarray, axis: int) -> np.ndarray:
    """Twice as many samples along axis: each cell's value, then the mean of it and the next."""
    a = np.moveaxis(a, axis, 0)
    after = np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:])
    out[0::2], out[1::2] = a, 0.5 * (a + after)
    return np.moveaxis(out, 0, axis)


def both(img, model: str = "classic@1") -> dict:
    name, level = model.split("@")
    codec = type(get_codec(name, "image"))
    return compared(bits(writing(BLEND_OFFSET_ROWS, codec, int(level)), img),
                    bits(writing(BLEND_PARITY_TAPS, codec, int(level)), img), NAMES)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--stand-ins", action="store_true")
    ap.add_argument("--model", default="classic@1", help="MODEL@LEVEL, classic or a model built on it")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results" / "parity_taps.json")
    args = ap.parse_args()
    result = {"command": "python benchmarks/experiments/parity_taps.py " + " ".join(sys.argv[1:]), "model": args.model,
              "photos": {},
              **{f"stand-ins {u}": {} for u in UPSAMPLINGS if args.stand_ins}}
    for path in args.photos:
        img = load_rgb8(path)
        result["photos"][path.name] = both(img, args.model)
        print(path.name, result["photos"][path.name], flush=True)
        for u in UPSAMPLINGS if args.stand_ins else ():
            result[f"stand-ins {u}"][path.name] = both(stand_in(img, u), args.model)
            print(path.name, u, result[f"stand-ins {u}"][path.name], flush=True)
    for key in [k for k in result if k not in ("command", "model")]:
        result[f"{key} total"] = total(list(result[key].values()), NAMES)
        print(key, result[f"{key} total"])
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
