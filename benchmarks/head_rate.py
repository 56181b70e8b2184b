"""How fast the networks' output layer should learn while coding (params "head": 2 or 3).

    python benchmarks/head_rate.py [--data ../shared/data] [--model local-ls-mlp] [--head 3] [--rates 1024 2048 4096]

Exact-model bits of the model (level 1) on the whole tuning files of images/train (every 10th
training photo by name, which the network never trained on: neuralzip/train/image.py,
split_files), with the output layer fixed (the control: "head": 1, as files without it) and learned at
each rate (context_mlp.HEAD_RATES[head], set in this process only): "head": 2 from the hidden
activations alone, 3 with the position inputs too. Never the valid photos: the rate is chosen
here and measured there (benchmarks/local_ls.py). Writes benchmarks/results/head_rate_<model>.json
("head": 2) or head_rate_<model>_head<head>.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import context_mlp, get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.train.image import image_split  # noqa: E402


def with_head(codec, head: int | None):
    """The same model and weights recording (and coding with) this params "head" (HEAD_FIXED: the
    trained output layer, as files without "head" code); None: the codec itself."""
    if head is None:
        return codec

    class Head(type(codec)):
        def _recorded(self, signal):
            return dict(super()._recorded(signal), head=head)

    return Head(codec.weights.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--model", default="local-ls-mlp", choices=["local-ls-mlp", "context-mlp"])
    ap.add_argument("--head", type=int, choices=[context_mlp.HEAD_ONLINE, context_mlp.HEAD_POSITIONS],
                    default=context_mlp.HEAD_POSITIONS)
    ap.add_argument("--rates", type=int, nargs="+", default=[1024, 2048, 4096])
    args = ap.parse_args()
    _, tuning = image_split(Path(args.data) / "images" / "train")
    rows, totals, subpixels = [], {"fixed": 0.0}, 0
    shipped_rate = context_mlp.HEAD_RATES[args.head]
    for path in tuning:
        img = read_media(path.read_bytes(), str(path)).samples
        sig = Signal("image", img.shape, 8)
        subpixels += img.size
        row = {"file": path.name, "subpixels": int(img.size)}
        start = time.time()
        row["fixed"] = with_head(get_codec(args.model, "image"), context_mlp.HEAD_FIXED).likelihood(img, sig)[1]
        totals["fixed"] += row["fixed"]
        for rate in args.rates:
            context_mlp.HEAD_RATES[args.head] = rate
            row[str(rate)] = with_head(get_codec(args.model, "image"), args.head).likelihood(img, sig)[1]
            totals[str(rate)] = totals.get(str(rate), 0.0) + row[str(rate)]
        context_mlp.HEAD_RATES[args.head] = shipped_rate
        rows.append(row)
        print(path.name, "  ".join(f"{k} {row[k] / img.size:.4f}" for k in totals), f"({time.time() - start:.0f} s)",
              flush=True)
    summary = {k: {"bits_per_subpixel": round(v / subpixels, 5),
                   "vs_fixed": round(v / totals["fixed"], 5)} for k, v in totals.items()}
    out = HERE / "results" / (f"head_rate_{args.model}.json" if args.head == context_mlp.HEAD_ONLINE
                              else f"head_rate_{args.model}_head{args.head}.json")
    out.write_text(json.dumps({"command": "python benchmarks/head_rate.py " + " ".join(sys.argv[1:]),
                               "model": args.model, "level": 1, "head": args.head, "shipped_rate": shipped_rate,
                               "files": rows, "total": summary}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
