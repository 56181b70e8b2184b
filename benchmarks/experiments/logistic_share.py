"""What ols-cascade's logistic row (version 5) gives, on audio/train: the exact model's bits of every
K-th recording of each source (its first 200,000 frames) with the encoder's choice of share per lane
(ols_audio.SHARES), and with one fixed share for every lane, against version 4's coder (share 0:
the count tables alone). Nothing here is tuned on audio/valid.

    PYTHONPATH=. python benchmarks/experiments/logistic_share.py [--level 2] [--every 20]
        [--fixed 4,8,12] [--out benchmarks/results/logistic_share_train.json]

Printed and written per source: bits / version 4's bits for each variant (below 1: smaller).
"""

import argparse
import glob
import json
import sys
from pathlib import Path

from residual_oracle import DATA, read

from neuralzip.models import ols_audio
from neuralzip.models.base import Signal


def exact_bits(x, rate, bits, level, shares) -> float:
    ols_audio.SHARES = shares
    return ols_audio.OlsCascadeCodec(level).likelihood(x, Signal("audio", x.shape, bits, rate))[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--level", type=int, default=2)
    ap.add_argument("--every", type=int, default=20, help="every K-th file of each source, sorted")
    ap.add_argument("--fixed", default="4,8,12", help="fixed shares (sixteenths) to measure beside the choice")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    chosen = ols_audio.SHARES
    variants = {"chosen": chosen, **{f"fixed_{s}": (int(s),) for s in a.fixed.split(",") if s}}
    out = {"command": "python benchmarks/experiments/logistic_share.py " + " ".join(sys.argv[1:]),
           "level": a.level, "shares": list(chosen), "sources": {}}
    for src in sorted(p for p in (a.data / "audio" / "train").iterdir() if p.is_dir()):
        files = sorted(f for f in glob.glob(str(src / "*")) if f.endswith((".flac", ".wav")))[::a.every]
        tot = dict.fromkeys(["coder4", *variants], 0.0)
        for f in files:
            x, rate, bits = read(f)
            tot["coder4"] += exact_bits(x, rate, bits, a.level, (0,))
            for name, shares in variants.items():
                tot[name] += exact_bits(x, rate, bits, a.level, shares)
        row = {"files": len(files), **{k: round(v / tot["coder4"], 5) for k, v in tot.items() if k != "coder4"}}
        out["sources"][src.name] = row
        print(src.name, row, flush=True)
    ols_audio.SHARES = chosen
    if a.out:
        a.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
