"""The colour table (models/colour_table.py) photo by photo: a model's exact bits with and without
it, in the same code, and the encoder's choice for each chunk.

    python benchmarks/colour_table.py PHOTO_OR_DIR... [--model classic@1] [--jobs 2] [--out FILE.json]

"with" is the member as the encoder writes it (the table where its measure switches it on);
"without" the same member with params "colour_table" left out (stop 57's coding). Per chunk, the
measure's figures: the share of pixels whose second and third channel were already their key's
most frequent value (raster order), and whether the table was chosen. Totals per folder.
"""

import argparse
import copy
import json
import os
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one photo per process

import numpy as np  # noqa: E402

from neuralzip.bench import model_level  # noqa: E402
from neuralzip.kernels import colour_table as _k  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec, jpeg_colour  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402


def without_table(codec):
    plain = copy.copy(codec)
    plain._params = lambda signal: {k: v for k, v in codec._params(signal).items() if k != "colour_table"}
    return plain


def one(job) -> dict:
    path, name = job
    model, level = model_level(name)
    media = read_media(Path(path).read_bytes())
    x, signal = media.samples, Signal("image", media.samples.shape, media.bits)
    codec = get_codec(model, "image", level=level)
    row = {"folder": Path(path).parent.name, "file": Path(path).name, "subpixels": int(x.size)}
    params = codec._params(signal)
    chunks = []
    if "colour_table" in params:
        for a, b in codec._spans(x.shape, params):
            colour, img = codec.as_coded(np.ascontiguousarray(x[a:b], np.int64), params)
            second, third = _k.repeats(img)
            n = img.shape[0] * img.shape[1]
            chunks.append({"rows": [int(a), int(b)], "ycbcr": colour == jpeg_colour.YCBCR,
                           "second repeats": round(second / n, 3), "third repeats": round(third / n, 3)})
    row["chunks"] = chunks
    row["with"] = round(codec.likelihood(x, signal)[1], 1)
    row["without"] = round(without_table(codec).likelihood(x, signal)[1], 1)
    row["with / without"] = round(row["with"] / row["without"], 5)
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+", help="photos, or folders of PNGs")
    ap.add_argument("--model", default="classic@1")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        photos = [q for p in map(Path, args.photos) for q in (sorted(p.glob("*.png")) if p.is_dir() else [p])]
        rows = list(pool.map(one, [(str(p), args.model) for p in photos]))
    totals = {}
    for folder in dict.fromkeys(r["folder"] for r in rows):
        mine = [r for r in rows if r["folder"] == folder]
        changed = [r["file"] for r in mine if r["with"] != r["without"]]
        totals[folder] = {"photos": len(mine), "with / without": round(sum(r["with"] for r in mine)
                                                                      / sum(r["without"] for r in mine), 5),
                          "photos the table changed": changed}
        print(folder, json.dumps(totals[folder]))
    if args.out:
        args.out.write_text(json.dumps({"command": shlex.join(["python", "benchmarks/colour_table.py"] + sys.argv[1:]),
                                        "model": args.model, "totals": totals, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
