"""Figures for the local-ls and local-ls-mlp image models (issue: an image model that learns each photo).

    sudo benchmarks/setup.sh            # the peers (cjxl)
    python benchmarks/local_ls.py [--data ../shared/data] [--jobs 2] [--size-only | --speed-only]

* size: every photo of images/valid through neuralzip classic, context-mlp, and local-ls and
  local-ls-mlp at levels 1 and 2, and `--model auto` at levels 1 and 2 (jpeg-coefficients for the
  photos that are decoded JPEGs; the model it took is in the row), whole .nz files, decoded back and
  compared, and JPEG XL `-d 0 -e 7` and `-e 9`, in one run;
  totals and per source (urban_*, wiki_*) in bits per subpixel, and each model against -e 9;
* what the trained parts are worth: local-ls level 1's exact-model bits with the shipped initial
  counts (learned on images/train, both sources) against flat initial counts (nothing learned
  from any photo), per source (local-ls-mlp's network: see --split);
* --split URBAN.npz WIKI.npz [--split-model context-mlp] [--split-head N] [--split-level 2]:
  local-ls-mlp (or context-mlp; level 1, or local-ls-mlp's level 2) with networks trained on one source of images/train only (urban_* or
  wiki_*: `neuralzip train MODEL` on a folder of links; local-ls-mlp's are kept in
  benchmarks/split_networks/) on both sources of images/valid, exact-model bits against the -e 9
  bytes of results/local_ls.json (run without --split first) -> results/local_ls_split.json
  (context-mlp: results/context_mlp_split.json); --split-head codes with that params "head"
  instead of what new files record (1: the trained output layer) -> *_split_head<N>.json;
  --split-level 2 -> *_split_level2.json;
* --size-only --again MODEL@LEVEL...: only those models coded again (after a change to them), every
  other figure kept from the results file;
* speed (--size-only and --speed-only run one part, keeping the other's figures in the results
  file): compress and decompress of a 768x512 centre crop of the first valid photo, whole
  processes with start-up, median of 3, against `cjxl -d 0 -e 7` and `-e 9` encoding it in the
  same run (the crop is a decoded JPEG cut inside its blocks: jpeg-coefficients finds the grid);
  and `--model auto` at levels 1 and 2 on a crop of the first Wikipedia photo, which never was a
  JPEG (the photos #13's speed target is about), against cjxl on that crop ("never a JPEG"), and
  on a crop of wiki_015 of images/train, whose colours repeat so that the colour table codes it
  ("colours that repeat").
Fails if cjxl is missing: a figure is never estimated. Writes benchmarks/results/local_ls.json.
"""

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# the size runs code photos in parallel processes: one kernel thread each (several threads per
# process on a shared core wait at every step's barrier); the speed run's whole processes get every core
THREADS_ENV = os.environ.get("OMP_NUM_THREADS")
os.environ["OMP_NUM_THREADS"] = "1"

from baselines import jxl_bytes, median_wall, need, roundtrip_walls  # noqa: E402
from head_rate import with_head  # noqa: E402

from neuralzip import api, container  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.models.classic_image import ClassicImageCodec  # noqa: E402

# "auto": what --model auto takes for each photo at that level (jpeg-coefficients for a decoded JPEG)
MODELS = [("classic", 1), ("context-mlp", 1), ("local-ls", 1), ("local-ls", 2), ("local-ls-mlp", 1),
          ("local-ls-mlp", 2), ("auto", 1), ("auto", 2)]
SPEED_MODELS = [("classic", 1), ("context-mlp", 1), ("local-ls", 1), ("local-ls-mlp", 1), ("local-ls-mlp", 2),
                ("jpeg-coefficients", 1)]


def _flat_prior_bits(media) -> float:
    """local-ls level 1's exact-model bits starting from flat counts (no learned statistics)."""
    with tempfile.TemporaryDirectory() as tmp:
        flat = ClassicImageCodec().weights.flat_file(Path(tmp) / "flat.npz")
        codec = get_codec("local-ls", "image").with_weights(flat)
        return codec.likelihood(media.samples, Signal("image", media.samples.shape, media.bits))[1]


def one_photo(path: Path, kept: dict | None = None) -> dict:
    """The photo's row; `kept` (a row of an earlier run): only the models it lacks are coded."""
    media = read_media(path.read_bytes())
    if kept:
        row = dict(kept)
    else:
        row = {"file": path.name, "source": path.name.split("_")[0], "dims": media.dims,
               "jxl-e7": jxl_bytes(path, 7), "jxl-e9": jxl_bytes(path, 9)}
    for model, level in MODELS:
        if f"{model}@{level}" in row:
            continue
        member = api.encode_media(media, path.name, model, level=level)
        blob = container.dumps([member])
        back = api.decode_member(container.loads(blob)[1][0])
        if not np.array_equal(back.samples, media.samples):
            sys.exit(f"{path.name}: {model} level {level} did not decode to the original pixels")
        row[f"{model}@{level}"] = len(blob)
        if model == "auto":
            row[f"auto@{level} model"] = member.model
        if (model, level) == ("local-ls", 1):  # the exact model's bits, as the encoder counted them
            row["local-ls@1 nll_bits"] = round(member.stats["nll_bits"], 1)
    if "local-ls@1 flat-prior nll_bits" not in row:
        row["local-ls@1 flat-prior nll_bits"] = round(_flat_prior_bits(media), 1)
    print(json.dumps(row), flush=True)
    return row


def totals(rows: list[dict]) -> dict:
    dims = sum(r["dims"] for r in rows)
    keys = ["jxl-e7", "jxl-e9"] + [f"{m}@{lv}" for m, lv in MODELS]
    out = {k: round(8 * sum(r[k] for r in rows) / dims, 5) for k in keys}
    out.update({f"{k} vs jxl-e9": round(sum(r[k] for r in rows) / sum(r["jxl-e9"] for r in rows), 4)
                for k in keys if k != "jxl-e9"})
    flat = sum(r["local-ls@1 flat-prior nll_bits"] for r in rows)
    out["local-ls@1 flat prior vs shipped prior"] = round(flat / sum(r["local-ls@1 nll_bits"] for r in rows), 4)
    return out


def _shown(path: Path) -> str:
    """A weights path as the command line gave it, relative to the repository where it lies there."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return path.name


def split_row(args) -> dict:
    path, weights, model, head, level = args
    media = read_media(path.read_bytes())
    sig = Signal("image", media.samples.shape, media.bits)
    row = {"file": path.name, "source": path.name.split("_")[0], "dims": media.dims}
    for source, w in weights.items():
        codec = with_head(get_codec(model, "image", level=level).with_weights(w), head)
        row[f"trained on {source}"] = round(codec.likelihood(media.samples, sig)[1], 1)
    print(json.dumps(row), flush=True)
    return row


def split(data: Path, weights: dict, jobs: int, sizes: Path, model: str, head: int | None, level: int) -> dict:
    """Each source's network on each source's valid photos, against -e 9 (bits / (8 x bytes))."""
    e9 = {r["file"]: r["jxl-e9"] for r in json.loads(sizes.read_text())["rows"]}
    photos = sorted((data / "images" / "valid").glob("*.png"))
    with ProcessPoolExecutor(jobs) as pool:
        rows = list(pool.map(split_row, [(p, weights, model, head, level) for p in photos]))
    table = {}
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        ref = 8 * sum(e9[r["file"]] for r in mine)
        table[f"valid {source}"] = {k: round(sum(r[k] for r in mine) / ref, 4) for k in rows[0] if k.startswith("trained")}
    return {"vs jxl-e9 (exact-model bits / -e 9 bits)": table, "rows": rows}


# what `--model auto` takes for a photo that never was a JPEG (#13's speed target is set on such
# photos): timed on a crop of the first Wikipedia photo of images/valid
AUTO_SPEED_MODELS = [("auto", 1), ("auto", 2)]


def _crop_walls(src: Path, models) -> dict:
    """Compress and decompress walls of a 768x512 centre crop of `src` with each (model, level),
    against `cjxl -d 0 -e 7` and `-e 9` encoding the crop, in one run."""
    out = {"input": f"768x512 centre crop of {src.name}"}
    with Image.open(src) as im, tempfile.TemporaryDirectory() as tmp:
        w, h = im.size
        png = Path(tmp) / "crop.png"
        im.crop(((w - 768) // 2, (h - 512) // 2, (w - 768) // 2 + 768, (h - 512) // 2 + 512)).save(png)
        for e in (7, 9):
            out[f"cjxl_e{e}_encode_s"] = round(median_wall([need("cjxl"), "-d", "0", "-e", str(e), str(png),
                                                            str(Path(tmp) / "c.jxl")]), 3)
        for model, level in models:
            key = f"{model}@{level}"
            c, d, nz = roundtrip_walls(png, model, level, Path(tmp))
            out[key] = {"compress_s": round(c, 3), "decompress_s": round(d, 3),
                        "compress_vs_cjxl_e7": round(c / out["cjxl_e7_encode_s"], 3),
                        "decompress_vs_cjxl_e7": round(d / out["cjxl_e7_encode_s"], 3),
                        "compress_vs_cjxl_e9": round(c / out["cjxl_e9_encode_s"], 3)}
            if model == "auto":
                out[key]["model taken"] = container.loads(nz.read_bytes())[1][0].model
            print(key, out[key], flush=True)
    return out


def speed(data: Path) -> dict:
    if THREADS_ENV is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = THREADS_ENV
    valid = data / "images" / "valid"
    out = _crop_walls(sorted(valid.glob("*.png"))[0], SPEED_MODELS)
    out["never a JPEG"] = _crop_walls(sorted(valid.glob("wiki_*.png"))[0], AUTO_SPEED_MODELS)
    # a photo whose colours repeat, so that the colour table codes it (models/colour_table.py; none
    # of images/valid's crops takes it): wiki_015 of images/train
    out["colours that repeat"] = _crop_walls(data / "images" / "train" / "wiki_015.png", AUTO_SPEED_MODELS)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    part = ap.add_mutually_exclusive_group()  # one part alone keeps the other's figures in --out
    part.add_argument("--size-only", action="store_true")
    part.add_argument("--speed-only", action="store_true")
    ap.add_argument("--again", nargs="+", metavar="MODEL@LEVEL", default=[],
                    help="with --size-only: code only these again, keeping the other figures of --out")
    ap.add_argument("--split", nargs=2, type=Path, metavar=("URBAN_WEIGHTS", "WIKI_WEIGHTS"))
    ap.add_argument("--split-model", choices=["local-ls-mlp", "context-mlp"], default="local-ls-mlp")
    ap.add_argument("--split-head", type=int, choices=[1, 2, 3],
                    help='with --split: code with this params "head" (1: the trained output layer) instead of '
                         "what new files record; writes *_split_head<N>.json")
    ap.add_argument("--split-level", type=int, choices=[1, 2], default=1,
                    help="with --split: the level the model codes at (2: local-ls-mlp's strong level, what "
                         "--model auto --level 2 takes); 2 writes *_split_level2.json")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "local_ls.json")
    args = ap.parse_args()
    if args.split:
        model = args.split_model
        head = args.split_head
        level = args.split_level
        if level == 2 and model != "local-ls-mlp":
            sys.exit("--split-level 2: context-mlp has one level")
        out = split(args.data, {"urban": str(args.split[0]), "wiki": str(args.split[1])}, args.jobs, args.out, model,
                    head, level)
        out["command"] = (f"python benchmarks/local_ls.py --split {_shown(args.split[0])} {_shown(args.split[1])}"
                          + ("" if model == "local-ls-mlp" else f" --split-model {model}")
                          + ("" if head is None else f" --split-head {head}")
                          + ("" if level == 1 else f" --split-level {level}"))
        out["model"], out["level"] = model, level
        # what the model's 8-bit members record (the output layer learned or not, the blend, ...)
        out["params recorded"] = with_head(get_codec(model, "image", level=level), head)._recorded(
            Signal("image", (8, 8, 3), 8))
        print(json.dumps(out["vs jxl-e9 (exact-model bits / -e 9 bits)"], indent=1))
        name = ("local_ls" if model == "local-ls-mlp" else model.replace("-", "_")) + "_split"
        name += ("" if head is None else f"_head{head}") + ("" if level == 1 else f"_level{level}") + ".json"
        (args.out.parent / name).write_text(json.dumps(out, indent=1) + "\n")
        return
    command = "python benchmarks/local_ls.py"
    if args.size_only or args.speed_only:  # "command" lists the runs in order, each replacing what it measured
        kept = json.loads(args.out.read_text()) if args.out.exists() else {}
        flag = (" --size-only" if args.size_only else " --speed-only") + "".join(f" --again {m}" for m in args.again)
        result = {**kept, "command": "; ".join([c for c in [kept.get("command")] if c] + [command + flag])}
    else:
        result = {"command": command}
    if not args.speed_only:
        photos = sorted((args.data / "images" / "valid").glob("*.png"))
        # --again: each photo's earlier row without the models to code again and their figures
        # ("local-ls@1 nll_bits", "local-ls@1 flat-prior nll_bits")
        earlier = {r["file"]: {k: v for k, v in r.items() if k.split(" ")[0] not in args.again}
                   for r in result.get("rows", []) if args.again}
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(one_photo, photos, [earlier.get(p.name) for p in photos]))
        result["totals"] = totals(rows)
        result["per_source"] = {s: totals([r for r in rows if r["source"] == s])
                                for s in sorted({r["source"] for r in rows})}
        result["rows"] = rows
        print(json.dumps({k: result[k] for k in ("totals", "per_source")}, indent=1), flush=True)
    if not args.size_only:
        result["speed_768x512"] = speed(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
