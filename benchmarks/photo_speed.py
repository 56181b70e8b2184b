"""Speed of `neuralzip compress` and `decompress` on every photo of a folder against `cjxl -d 0 -e 7`
(issue #13's speed target: each at most 1.5x the time cjxl -e 7 takes to encode the photo).

    python benchmarks/photo_speed.py DIR [--models auto@1 ...] [--repeat 3] [--crop] [--against SRC]
        --out results/NAME.json

Whole processes with start-up, every core, on an otherwise idle machine: for each photo the median
of --repeat walls of cjxl encoding it and of neuralzip compressing it and decompressing the .nz
(the restored pixels checked), and their ratios; then per model the median and the largest ratio
over the photos, and how many photos meet 1.5x. --crop codes a 768x512 centre crop of larger
photos (the size the target names); photos smaller than that are coded whole. Which model `auto`
took and whether the encoder's measure finds the photo's colours repeating (so that the colour
table, models/colour_table.py, codes it) are in each row: the table is what sets some photos apart. Fails if cjxl is missing: a figure is never estimated.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import compile_bytecode, median_wall, need, roundtrip_walls  # noqa: E402

from neuralzip import container  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import colour_table  # noqa: E402

TARGET = 1.5  # at most this times cjxl -e 7's encode, compress and decompress alike


def _coded_photo(src: Path, tmp: Path, crop: bool) -> Path:
    """The photo as a PNG to time (a 768x512 centre crop where asked and larger)."""
    if not crop:
        return src
    with Image.open(src) as im:
        w, h = im.size
        if w < 768 or h < 512:
            return src
        png = tmp / f"{src.stem}_crop.png"
        im.crop(((w - 768) // 2, (h - 512) // 2, (w - 768) // 2 + 768, (h - 512) // 2 + 512)).save(png)
        return png


def _colours_repeat(png: Path) -> bool:
    """The encoder's measure of whether the photo's colours repeat enough for the colour table (a
    768x512 photo is one chunk; a chunk in YCbCr, a decoded JPEG, never takes the table)."""
    img = read_media(png.read_bytes()).samples
    return img.ndim == 3 and colour_table.applies(8 if img.dtype.itemsize == 1 else 16, img.shape[2]) \
        and colour_table.repeats(img)


def _walls(png: Path, model: str, level: int, tmp: Path, repeat: int, tree: Path | None):
    """roundtrip_walls with the neuralzip of source tree `tree` (None: this one)."""
    if tree is None:
        return roundtrip_walls(png, model, level, tmp, repeat)
    compile_bytecode(tree.resolve())  # timed as installed, as this tree is (baselines.compile_bytecode)
    kept = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree.resolve()) + ("" if kept is None else os.pathsep + kept)
    try:
        return roundtrip_walls(png, model, level, tmp, repeat)
    finally:
        if kept is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = kept


def _revision(tree: Path) -> str:
    """The commit a source tree is at (where it is a git checkout)."""
    r = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return r.stdout.strip() or str(tree)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--models", nargs="+", default=["auto@1"], help="MODEL@LEVEL")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--crop", action="store_true")
    ap.add_argument("--against", type=Path, help="an earlier neuralzip source tree, timed alike")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    photos = sorted(args.folder.glob("*.png"))
    if not photos:
        sys.exit(f"no .png in {args.folder}")
    models = [(m.split("@")[0], int(m.split("@")[1])) for m in args.models]
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for src in photos:
            png = _coded_photo(src, tmp, args.crop)
            e7 = median_wall([need("cjxl"), "-d", "0", "-e", "7", str(png), str(tmp / "c.jxl")], args.repeat)
            with Image.open(png) as im:
                row = {"photo": src.name, "size": list(im.size), "cjxl_e7_encode_s": round(e7, 3),
                       "colours repeat": _colours_repeat(png)}
            for model, level in models:
                for tree in ([None] if args.against is None else [None, args.against]):
                    c, d, nz = _walls(png, model, level, tmp, args.repeat, tree)
                    row[f"{model}@{level}" + ("" if tree is None else " against")] = {
                        "compress_s": round(c, 3), "decompress_s": round(d, 3),
                        "compress_vs_cjxl_e7": round(c / e7, 3), "decompress_vs_cjxl_e7": round(d / e7, 3),
                        "model taken": container.loads(nz.read_bytes())[1][0].model}
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {}
    for key in [k for k in rows[0] if "@" in k]:
        ratios = {k: [r[key][f"{k}_vs_cjxl_e7"] for r in rows] for k in ("compress", "decompress")}
        summary[key] = {f"{k}_vs_cjxl_e7": {"median": round(statistics.median(v), 3), "largest": max(v),
                                            f"photos at most {TARGET}x": sum(x <= TARGET for x in v)}
                        for k, v in ratios.items()}
    if args.against is not None:  # per photo, this tree's time over the earlier one's
        for model, level in models:
            key = f"{model}@{level}"
            summary[f"{key} time / against's"] = {
                k: round(statistics.median([r[key][f"{k}_s"] / r[key + " against"][f"{k}_s"] for r in rows]), 3)
                for k in ("compress", "decompress")}
    out = {"command": "python benchmarks/photo_speed.py " + " ".join(sys.argv[1:]),
           "folder": args.folder.name, "photos": len(rows), "summary": summary, "rows": rows}
    if args.against is not None:
        out["against"] = _revision(args.against)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
