"""What learning more of the network while coding costs in time: local-ls-mlp (level 2 by
default) coding and decoding the 768x512 centre crop of the first valid photo with each params
"head", in this one process, the heads interleaved, median of --repeat runs each.

    python benchmarks/head_speed.py [--level 2] [--heads 3 4] [--repeat 3]   # -> results/head_speed.json

In-process (no start-up) and after one warm-up run each, so it times the model, not the
imports; the whole-process figures against JPEG XL are local_ls.py --speed-only's. Every decode is
compared with the crop. Run it on an otherwise idle machine: it reads wall time.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "images" / "valid"


def recording(level: int, head: int):
    """local-ls-mlp at this level, writing files with this params "head"."""
    codec = get_codec("local-ls-mlp", "image", level=level)

    class Head(type(codec)):
        def _recorded(self, signal):
            return dict(super()._recorded(signal), head=head)

    return Head(codec.weights.path, level)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--level", type=int, default=2)
    ap.add_argument("--heads", type=int, nargs="+", default=[3, 4])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = sorted(DATA.glob("*.png"))[0]
    img = read_media(src.read_bytes(), str(src)).samples
    h, w = img.shape[:2]
    img = np.ascontiguousarray(img[(h - 512) // 2:(h - 512) // 2 + 512, (w - 768) // 2:(w - 768) // 2 + 768])
    sig = Signal("image", img.shape, 8)
    codecs = {head: recording(args.level, head) for head in args.heads}
    times = {head: {"encode": [], "decode": []} for head in args.heads}
    sizes = {}
    for rep in range(args.repeat + 1):  # the first round warms up and is not counted
        for head, codec in codecs.items():
            start = time.perf_counter()
            enc = codec.encode(img, sig)
            mid = time.perf_counter()
            out = codec.decode(enc.params, enc.chunks, sig)
            end = time.perf_counter()
            if not np.array_equal(out, img):
                raise SystemExit(f"head {head}: the decoded crop differs")
            sizes[head] = sum(len(c) for c in enc.chunks)
            if rep:
                times[head]["encode"].append(mid - start)
                times[head]["decode"].append(end - mid)
    rows = {str(head): {"bits_per_subpixel": round(sizes[head] * 8 / img.size, 5),
                        **{f"{k}_s": round(statistics.median(v), 2) for k, v in times[head].items()},
                        **{f"{k}_runs_s": [round(x, 2) for x in v] for k, v in times[head].items()}}
            for head in args.heads}
    first = str(args.heads[0])
    for row in rows.values():
        row["vs_first"] = {k: round(row[f"{k}_s"] / rows[first][f"{k}_s"], 3) for k in ("encode", "decode")}
    out = {"command": "python benchmarks/head_speed.py " + " ".join(sys.argv[1:]), "photo": src.name,
           "crop": [512, 768], "model": "local-ls-mlp", "level": args.level, "heads": rows}
    (HERE / "results" / "head_speed.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
