"""classic's count rows by offset ("blend": 6, stop 56) against one row per class ("blend": 5), in
the same code: the exact model's bits of each photo both ways.

    python benchmarks/experiments/offset_rows.py PHOTO... [--stand-ins] [--crops 32 64 128 256]
        [--out benchmarks/results/offset_rows.json]

--stand-ins: also each photo made into a film-scan stand-in (its colour kept at one value per 2x2
cell in YCbCr and interpolated back, 3/4 to the near cell and 1/4 to the far one, as a scan kept as
subsampled YCC or a 4:2:0 decode is), the kind of photo the split was studied on besides photos as
they are. --crops: also the photo cut into SxS crops, each coded on its own (at most --most per
photo and size, from the top left), totalled per size: what the size rule
(classic_image.OFFSET_ROWS_MIN_PIXELS) was set from; the rule is lifted for these runs so every
size shows what the split itself does.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from neuralzip.coding.stream import CostCoder
from neuralzip.models import classic_image
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import BLEND_OFFSET_ROWS, BLEND_OLS_PARITY, ClassicImageCodec
from neuralzip.train.image import load_rgb8

YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def writing(blend: int, model=ClassicImageCodec, level: int = 1):
    """classic (or a model built on it) as it coded when new files recorded this "blend"."""
    class Earlier(model):
        blends_recorded = model.blends_recorded[:model.blends_recorded.index(blend) + 1]
    return Earlier().at_level(level)


def bits(codec, img) -> float:
    img = np.ascontiguousarray(img)
    return codec._run(CostCoder, img, Signal("image", img.shape, 8))[2]


def both(img) -> dict:
    return compared(bits(writing(BLEND_OLS_PARITY), img), bits(writing(BLEND_OFFSET_ROWS), img))


def compared(before: float, after: float, names=("one row per class", "offset rows")) -> dict:
    """Two codings' bits and the change from the first to the second."""
    return {names[0]: round(before, 1), names[1]: round(after, 1), "change %": round(100 * (after / before - 1), 3)}


def stand_in(img: np.ndarray) -> np.ndarray:
    """The photo with its chroma subsampled 2x2 in YCbCr and interpolated back (even size)."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    ycc = img[:h, :w].astype(np.float64) @ YCC.T
    for k in (1, 2):
        low = ycc[:, :, k].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        ycc[:, :, k] = _up2(_up2(low, 0), 1)
    return np.clip(np.rint(ycc @ np.linalg.inv(YCC).T), 0, 255).astype(np.uint8)


def _up2(a: np.ndarray, axis: int) -> np.ndarray:
    """Twice as many samples along axis: each 3/4 its own cell and 1/4 the next one toward it."""
    a = np.moveaxis(a, axis, 0)
    before, after = np.concatenate([a[:1], a[:-1]]), np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:])
    out[0::2], out[1::2] = 0.75 * a + 0.25 * before, 0.75 * a + 0.25 * after
    return np.moveaxis(out, 0, axis)


def crops(img: np.ndarray, size: int, most: int):
    for y in range(0, img.shape[0] - size + 1, size):
        for x in range(0, img.shape[1] - size + 1, size):
            if most == 0:
                return
            most -= 1
            yield img[y:y + size, x:x + size]


def total(rows: list[dict], names=("one row per class", "offset rows")) -> dict:
    return compared(sum(r[names[0]] for r in rows), sum(r[names[1]] for r in rows), names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--stand-ins", action="store_true")
    ap.add_argument("--crops", nargs="*", type=int, default=[])
    ap.add_argument("--most", type=int, default=16, help="crops per photo and size")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results" / "offset_rows.json")
    args = ap.parse_args()
    result = {"command": "python benchmarks/experiments/offset_rows.py " + " ".join(sys.argv[1:]),
              "photos": {}, "stand-ins": {}, "crops": {}}
    for path in args.photos:
        img = load_rgb8(path)
        result["photos"][path.name] = both(img)
        if args.stand_ins:
            result["stand-ins"][path.name] = both(stand_in(img))
        print(path.name, result["photos"][path.name], result["stand-ins"].get(path.name, ""), flush=True)
    if args.crops:
        classic_image.OFFSET_ROWS_MIN_PIXELS = 0  # what the split does at every size
        for size in args.crops:
            rows = [both(c) for path in args.photos for c in crops(load_rgb8(path), size, args.most)]
            result["crops"][f"{size}x{size}"] = dict(total(rows), crops=len(rows))
            print(size, result["crops"][f"{size}x{size}"], flush=True)
    result["photos total"] = total(list(result["photos"].values()))
    if result["stand-ins"]:
        result["stand-ins total"] = total(list(result["stand-ins"].values()))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("photos", result["photos total"], "stand-ins", result.get("stand-ins total", ""))


if __name__ == "__main__":
    main()
