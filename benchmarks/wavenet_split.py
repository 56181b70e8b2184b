"""The wavenet family judged on sources unlike its training data.

    python benchmarks/wavenet_split.py HELDOUT.npz SEEN.npz [--data ../shared/data]

prices (exact and float model, in process) the speech and Rhodes recordings of audio/valid with two
wavenet weights files: HELDOUT trained without those two sources (e.g. `neuralzip train wavenet
DIR --steps 4000` on a folder of the other four sources of audio/train), SEEN trained the same
number of steps on all six -> benchmarks/results/wavenet_source_split.json.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from families import AUDIO_SOURCES  # noqa: E402
from neuralzip.train.wavenet import evaluate  # noqa: E402


def price(weights: Path, folder: Path) -> dict:
    bits = evaluate(weights, sorted(folder.glob("*.flac")))  # the trainer's own pricing of tuning files
    return {"exact_bits_per_sample": round(bits["exact"], 5), "float_bits_per_sample": round(bits["float"], 5)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("heldout", type=Path)
    ap.add_argument("seen", type=Path)
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    args = ap.parse_args()
    table = {}
    for source in AUDIO_SOURCES:
        folder = args.data / "audio" / "valid" / source
        cell = {"trained without this source": price(args.heldout, folder),
                "trained with it": price(args.seen, folder)}
        cell["without vs with, pct"] = round(100 * (cell["trained without this source"]["exact_bits_per_sample"]
                                                    / cell["trained with it"]["exact_bits_per_sample"] - 1), 3)
        table[source] = cell
        print(source, json.dumps(cell), flush=True)
    out = {"command": f"python benchmarks/wavenet_split.py {args.heldout.name} {args.seen.name}",
           "weights": {"heldout": args.heldout.name, "seen": args.seen.name}, "valid": table}
    (HERE / "results" / "wavenet_source_split.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
