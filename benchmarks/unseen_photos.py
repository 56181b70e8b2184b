"""Figures on a folder of photos from outside the repository (issues #13 and #17: judged on photos
unlike the training ones).

    sudo benchmarks/setup.sh            # the peers: cjxl, cwebp
    python benchmarks/unseen_photos.py DIR [--jobs 2] [--models auto@1 auto@2 vae@1]

Every PNG in DIR (not kept in the repository, so that nothing can be tuned to it: measure with
it, never choose a parameter by it) through each neuralzip MODEL@LEVEL, in process (the file's
bytes with its container header; every file decoded back and compared), and through JPEG XL
`-d 0 -e 7` and `-e 9` and WebP lossless (`-z 9 -exact`), in the same run. Totals in bits per
subpixel and against `-e 9`; "auto@L model" says what --model auto took for each photo.
Writes benchmarks/results/unseen_<DIR's name>.json (or --out).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one photo per process, one core each

from neuralzip import api, container  # noqa: E402
from neuralzip.bench import model_level  # noqa: E402
from neuralzip.errors import InputError  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.peers import PEERS  # noqa: E402

PEER_NAMES = ["jxl-e7", "jxl-e9", "webp"]


def peer_bytes(png: Path, name: str) -> int:
    """Bytes of the peer codec `name` (neuralzip.peers, as `neuralzip bench` runs it) on the PNG."""
    peer = next(p for p in PEERS if p.name == name)
    if peer.missing():
        sys.exit(f"{name}: {peer.missing()} (benchmarks/setup.sh installs it); not estimating it")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"x{peer.ext}"
        subprocess.run(peer.encode_cmd(png, out), check=True, capture_output=True)
        return out.stat().st_size


def one_photo(job) -> dict:
    path, models = job
    media = read_media(path.read_bytes())
    row = {"file": path.name, "dims": media.dims, **{name: peer_bytes(path, name) for name in PEER_NAMES}}
    for name in models:
        model, level = model_level(name)
        member = api.encode_media(media, path.name, model, level=level)
        blob = container.dumps([member])
        back = api.decode_member(container.loads(blob)[1][0])
        if not np.array_equal(back.samples, media.samples):
            sys.exit(f"{path.name}: {name} did not decode to the original pixels")
        row[name] = len(blob)
        if model == "auto":
            row[f"{name} model"] = member.model
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["auto@1", "auto@2", "vae@1"], metavar="MODEL[@LEVEL]")
    ap.add_argument("--out", type=Path, help="the results file (default: benchmarks/results/unseen_<DIR>.json)")
    args = ap.parse_args()
    for name in args.models:  # an unknown model or level stops here, before any photo is coded
        try:
            model_level(name)
        except InputError as exc:
            sys.exit(str(exc))
    photos = sorted(args.folder.glob("*.png"))
    if not photos:
        sys.exit(f"no PNG files in {args.folder}")
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one_photo, [(p, args.models) for p in photos]))
    dims = sum(r["dims"] for r in rows)
    keys = PEER_NAMES + args.models
    totals = {k: round(8 * sum(r[k] for r in rows) / dims, 5) for k in keys}
    e9 = sum(r["jxl-e9"] for r in rows)
    versus = {k: round(sum(r[k] for r in rows) / e9, 4) for k in keys if k != "jxl-e9"}
    result = {"command": f"python benchmarks/unseen_photos.py {args.folder.name} --models {' '.join(args.models)}"
                         + (f" --out {args.out}" if args.out else ""),
              "photos": len(rows), "subpixels": dims, "bpsp": totals, "vs jxl-e9": versus, "rows": rows}
    out = args.out or HERE / "results" / f"unseen_{args.folder.name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"bpsp": totals, "vs jxl-e9": versus}, indent=1))


if __name__ == "__main__":
    main()
