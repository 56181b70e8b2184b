"""Two weights files of one model against each other: exact-model bits under today's coding, per
photo and per set, on the tuning files of images/train (what chooses a network), images/valid by
source and any folder given with --set (photos held outside the repository, measured only).

    python benchmarks/experiments/network_versions.py MODEL OLD.npz NEW.npz [--level N]
        [--set NAME=DIR ...] [--no-tuning] [--no-valid] [--out FILE.json]

(run from the repository root; one line per photo as it is done, then NEW / OLD per set). The
figures it made:
- local-ls-mlp v4 against v3 (level 1; stop 43): `... local-ls-mlp weights/local-ls-mlp-image-v3-6f87725b5827bbff.npz
  weights/local-ls-mlp-image-v4-149c504c2fe973dc.npz > benchmarks/results/local_ls_mlp_v4_vs_v3.txt`
  (its output then printed plain lines and named the new file "new");
- local-ls-mlp retrained with `--augment` against v4 (level 2, Kodak and the classic test
  photos; stop 58): results/local_ls_mlp_augmented_vs_v4_level2.json, weights/RECIPES.md.
"""

import argparse
import json
import os
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # two photos at a time, one kernel thread each

from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.train.image import image_split  # noqa: E402

DATA = Path("../shared/data/images")


def one(job) -> dict:
    model, level, weights, name, path = job
    media = read_media(Path(path).read_bytes())
    signal = Signal("image", media.samples.shape, media.bits)
    row = {"set": name, "file": Path(path).name, "subpixels": int(media.samples.size)}
    for version, w in weights.items():
        codec = get_codec(model, "image", level=level).with_weights(w)
        row[version] = round(codec.likelihood(media.samples, signal)[1], 1)
    print(json.dumps(row), flush=True)
    return row


def photo_sets(args) -> dict:
    sets = {}
    if not args.no_tuning:
        sets["tuning files"] = image_split(DATA / "train")[1]
    if not args.no_valid:
        valid = sorted((DATA / "valid").glob("*.png"))
        for source in sorted({p.name.split("_")[0] for p in valid}):
            sets[f"valid {source}"] = [p for p in valid if p.name.split("_")[0] == source]
    for spec in args.set:
        name, _, folder = spec.partition("=")
        if not folder:
            sys.exit(f"--set {spec}: give NAME=DIR")
        sets[name] = sorted(Path(folder).glob("*.png"))
    return sets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR", help="one more folder of photos")
    ap.add_argument("--no-tuning", action="store_true")
    ap.add_argument("--no-valid", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    weights = {"old": str(args.old), "new": str(args.new)}
    jobs = [(args.model, args.level, weights, name, str(p)) for name, photos in photo_sets(args).items() for p in photos]
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(one, jobs))
    totals = {}
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        n = sum(r["subpixels"] for r in mine)
        totals[name] = {"photos": len(mine), "old bpsp": round(sum(r["old"] for r in mine) / n, 4),
                        "new bpsp": round(sum(r["new"] for r in mine) / n, 4),
                        "new / old": round(sum(r["new"] for r in mine) / sum(r["old"] for r in mine), 5)}
        print(name, json.dumps(totals[name]))
    if args.out:
        out = {"command": shlex.join(["python", "benchmarks/experiments/network_versions.py"] + sys.argv[1:]),
               "model": args.model, "level": args.level, "old": args.old.name, "new": args.new.name,
               "totals": totals, "rows": rows}
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
