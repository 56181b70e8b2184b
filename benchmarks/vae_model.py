"""Figures for the VAE model coded with bits-back ANS (issue: latent-variable model).

    sudo benchmarks/setup.sh            # the peers: cjxl, cwebp, optipng
    python benchmarks/vae_model.py [--data ../shared/data] [--jobs 2] [--crops 14]
    python benchmarks/vae_model.py --source-split WEIGHTS   # shipped vs WEIGHTS, per source

* whole photos: every photo of images/valid through `neuralzip compress --model vae`
  (one chain per photo) and the peers (PNG with Pillow optimize, optipng, WebP,
  JPEG XL), in the same run (`neuralzip bench` machinery): bits per subpixel,
  the float and exact negative ELBO and the chain's initial bits per photo, and
  each photo's coded size against its exact -ELBO with the initial bits included,
  and `--model classic` in the same run;
* crop archive: --crops 32x32 crops from each valid photo (a fixed grid), as one
  archive `neuralzip compress DIR -o set.nz --model vae` (one chain over all
  crops), decompressed and checked member by member; the chain's payload
  against the summed exact -ELBO, with the initial bits apart; the same crops as
  an archive with the default model (--model auto, checked too) and as one
  WebP file each (summed);
* speed: compress and decompress of a 768x512 centre crop of two valid photos,
  whole processes with start-up (median of 5), vae against the default image
  model (auto), in the same run: urban_img_007, a decoded JPEG, which auto
  codes with jpeg-coefficients, and wiki_004, which never was a JPEG and auto
  codes with classic (SPEED_PHOTOS; "coded_with" says what auto took).
Fails if a peer is missing or a file does not decode to the original. Ends with
the issue's targets, each with its figure and whether this run meets it.
Writes benchmarks/results/vae_model.json.
"""

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import checked_bench, timing  # noqa: E402
from neuralzip import container  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.peers import PEERS  # noqa: E402

CROP = 32
# the speed target's photos: what the default model (auto) is depends on the photo. On a decoded
# JPEG it is jpeg-coefficients (urban_img_007: quality 96), on a photo that never was a JPEG classic
SPEED_PHOTOS = {"decoded JPEG": "urban_img_007.png", "never a JPEG": "wiki_004.png"}


def photo_figures(rows: list[dict]) -> dict:
    mine = [r for r in rows if r["codec"] == "neuralzip:vae"]
    png = {r["file"]: r for r in rows if r["codec"] == "png"}
    per_photo = [{"file": Path(r["file"]).name, "bpsp": round(r["bpd"], 5),
                  "png_bpsp": round(png[r["file"]]["bpd"], 5),
                  "nll_float_bpsp": round(r["nll_float_bits"] / r["dims"], 5),
                  "nll_bpsp": round(r["nll_bits"] / r["dims"], 5), "initial_bits": r["initial_bits"],
                  "over_elbo_pct_incl_initial": round(100 * (8 * r["bytes"] / r["nll_bits"] - 1), 3)}
                 for r in mine]
    for p in per_photo:
        p["exact_over_float_pct"] = round(100 * (p["nll_bpsp"] / p["nll_float_bpsp"] - 1), 3)
    return {"per_photo": per_photo,
            "worst_over_elbo_pct_incl_initial": max(p["over_elbo_pct_incl_initial"] for p in per_photo),
            "worst_exact_over_float_pct": max(p["exact_over_float_pct"] for p in per_photo),
            "photos_below_png": sum(p["bpsp"] < p["png_bpsp"] for p in per_photo)}


def crop_archive(valid: Path, per_photo: int, neuralzip: list[str]) -> dict:
    """One archive of 32x32 crops (a grid over each photo), coded as one chain, restored and checked."""
    photos = sorted(valid.glob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "crops"
        src.mkdir()
        originals, png_bytes = {}, 0
        for f in photos:
            with Image.open(f) as im:
                im = im.convert("RGB")
                w, h = im.size
                side = int(np.ceil(np.sqrt(per_photo)))
                for k in range(per_photo):
                    gy, gx = divmod(k, side)
                    x0 = (gx + 1) * w // (side + 1) - CROP // 2
                    y0 = (gy + 1) * h // (side + 1) - CROP // 2
                    crop = im.crop((x0, y0, x0 + CROP, y0 + CROP))
                    name = f"{f.stem}_{k:02d}.png"
                    crop.save(src / name)
                    buf = io.BytesIO()
                    crop.save(buf, "PNG", optimize=True)
                    png_bytes += len(buf.getvalue())
                    originals[name] = np.asarray(crop)
        webp = next(q for q in PEERS if q.name == "webp")
        webp_bytes = 0
        for name in originals:
            out = Path(tmp) / "crop.webp"
            subprocess.run(webp.encode_cmd(src / name, out), check=True)
            webp_bytes += out.stat().st_size
        archives = {m: _archive(src, Path(tmp), m, originals, neuralzip) for m in ("vae", "auto")}
    members, _ = archives["vae"]
    dims = sum(p.size for p in originals.values())
    payload_bits = 8 * sum(m.payload_bytes for m in members)
    nll = sum(m.stats["nll_bits"] for m in members)
    nll_float = sum(m.stats["nll_float_bits"] for m in members)
    initial = sum(m.stats.get("initial_bits", 0.0) for m in members)
    vae_file, auto_file = archives["vae"][1], archives["auto"][1]
    return {"crops": len(originals), "crop": f"{CROP}x{CROP}", "subpixels": dims,
            "chunks": sum(len(m.chunks) for m in members),
            "nll_float_bpsp": round(nll_float / dims, 5), "nll_bpsp": round(nll / dims, 5),
            "initial_bits": round(initial, 1),
            "chain_payload_bpsp": round(payload_bits / dims, 5),
            "chain_over_elbo_pct_excl_initial": round(100 * ((payload_bits - initial) / nll - 1), 3),
            "chain_over_elbo_pct_incl_initial": round(100 * (payload_bits / nll - 1), 3),
            "archive_file_bpsp": round(8 * vae_file / dims, 5),
            "default_model_archive_bpsp": round(8 * auto_file / dims, 5),
            "vae_vs_default_model_archive": round(vae_file / auto_file, 4),
            "webp_per_crop_total_bpsp": round(8 * webp_bytes / dims, 5),
            "vae_vs_webp_per_crop_total": round(vae_file / webp_bytes, 4),
            "png_optimize_bpsp": round(8 * png_bytes / dims, 5)}


def _archive(src: Path, tmp: Path, model: str, originals: dict, neuralzip: list[str]) -> tuple[list, int]:
    """One archive of the folder's crops with `model`, restored and checked; -> (members, file bytes)."""
    nz = tmp / f"set-{model}.nz"
    subprocess.run(neuralzip + ["compress", "-q", str(src), "-o", str(nz), "--model", model], check=True)
    out = tmp / f"back-{model}"
    subprocess.run(neuralzip + ["decompress", "-q", str(nz), "-o", str(out)], check=True)
    for name, pixels in originals.items():
        back = read_media((out / name).read_bytes()).samples
        if not np.array_equal(back, pixels):
            sys.exit(f"crop archive ({model}): {name} did not decode to the original pixels")
    _, members = container.loads(nz.read_bytes())
    return members, nz.stat().st_size


def source_split(valid: Path, other: Path, out: Path) -> dict:
    """Every valid photo coded (in process, payload bytes) with the shipped weights and with `other`
    (weights trained on some sources only), per source (the file name before its number)."""
    from neuralzip.models.base import Signal
    from neuralzip.models.vae import VAECodec

    codecs = {"shipped": get_codec("vae", "image"), "other": VAECodec(other)}
    per_source: dict = {}
    for f in sorted(valid.glob("*.png")):
        samples = read_media(f.read_bytes()).samples
        source = f.stem.rsplit("_", 1)[0]
        row = per_source.setdefault(source, {"photos": 0, "subpixels": 0, "shipped": 0, "other": 0})
        row["photos"] += 1
        row["subpixels"] += samples.size
        for name, codec in codecs.items():
            enc = codec.encode(samples, Signal("image", samples.shape, 8))
            row[name] += 8 * sum(len(c) for c in enc.chunks)
        print(f.name, source, flush=True)
    for row in per_source.values():
        row["shipped_bpsp"] = round(row.pop("shipped") / row["subpixels"], 5)
        row["other_bpsp"] = round(row.pop("other") / row["subpixels"], 5)
        row["other_vs_shipped"] = round(row["other_bpsp"] / row["shipped_bpsp"], 4)
    recipe = json.loads(str(np.load(other)["recipe"]))
    result = {"command": f"python benchmarks/vae_model.py --source-split {other.name}",
              "shipped": codecs["shipped"].weights_hash, "other": other.name, "other_trained_with": recipe.get("command"),
              "other_trained_for_mixture_with": recipe.get("mixture_command"),
              "other_train_files": recipe.get("train_files"), "per_source": per_source}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(per_source, indent=1))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--crops", type=int, default=14, help="32x32 crops per valid photo (15 photos)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "vae_model.json")
    ap.add_argument("--source-split", type=Path, metavar="WEIGHTS",
                    help="only: code images/valid with the shipped weights and with WEIGHTS (trained on some "
                         "sources only), per source -> results/vae_source_split.json")
    args = ap.parse_args()
    if args.source_split:
        source_split(args.data / "images" / "valid", args.source_split, HERE / "results" / "vae_source_split.json")
        return
    neuralzip = [str(Path(sys.executable).with_name("neuralzip"))]
    codec = get_codec("vae", "image")
    print(f"vae weights {codec.weights_hash}: {codec.path.name}", flush=True)
    speed = {}
    for kind, photo in SPEED_PHOTOS.items():
        runs = {m: timing(args.data, neuralzip, m, photo, repeat=5) for m in ("vae", "auto")}
        runs["decompress_speedup_vs_auto"] = round(runs["auto"]["decompress_s"] / runs["vae"]["decompress_s"], 3)
        runs["compress_speedup_vs_auto"] = round(runs["auto"]["compress_s"] / runs["vae"]["compress_s"], 3)
        speed[kind] = runs
        print(kind, json.dumps(runs, indent=1), flush=True)
    crops = crop_archive(args.data / "images" / "valid", args.crops, neuralzip)
    print(json.dumps(crops, indent=1), flush=True)
    inputs, rows = checked_bench(args.data / "images" / "valid", ["vae", "classic"], args.jobs, "pixels")
    dims = sum(r["dims"] for r in rows if r["codec"] == "png")
    totals = {}
    for name in dict.fromkeys(r["codec"] for r in rows):
        mine = [r for r in rows if r["codec"] == name]
        totals[name] = {"bpsp": round(8 * sum(r["bytes"] for r in mine) / dims, 5)}
        if mine[0]["neuralzip"]:
            totals[name]["nll_float_bpsp"] = round(sum(r["nll_float_bits"] for r in mine) / dims, 5)
            totals[name]["nll_bpsp"] = round(sum(r["nll_bits"] for r in mine) / dims, 5)
            totals[name]["initial_bits"] = round(sum(r["initial_bits"] for r in mine), 1)
    recipe = json.loads(str(np.load(codec.path)["recipe"]))
    photos = photo_figures(rows)
    result = {"command": "python benchmarks/vae_model.py", "weights": codec.weights_hash,
              "trained_with": recipe.get("command"), "files": len(inputs), "subpixels": dims, "totals": totals,
              "photos": photos, "crop_archive": crops, "speed_768x512": speed,
              "targets": targets(totals, photos, crops, speed), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("totals", "crop_archive", "speed_768x512")}, indent=1))
    print(json.dumps({k: v for k, v in result["photos"].items() if k != "per_photo"}))
    print(json.dumps(targets(totals, result["photos"], crops, speed), indent=1))


def targets(totals: dict, photos: dict, crops: dict, speed: dict) -> dict:
    """The issue's targets, each with the figure it is judged on (from this run)."""
    vae = totals["neuralzip:vae"]["bpsp"]
    return {"below_webp": [round(vae / totals["webp"]["bpsp"], 4), vae < totals["webp"]["bpsp"]],
            "within_8pct_of_classic": [round(vae / totals["neuralzip:classic"]["bpsp"], 4),
                                       vae <= 1.08 * totals["neuralzip:classic"]["bpsp"]],
            "crops_10pct_below_default": [crops["vae_vs_default_model_archive"],
                                          crops["vae_vs_default_model_archive"] <= 0.90],
            "crops_below_webp_per_crop": [crops["vae_vs_webp_per_crop_total"], crops["vae_vs_webp_per_crop_total"] < 1],
            "exact_within_1pct_of_float_every_photo": [photos["worst_exact_over_float_pct"],
                                                       photos["worst_exact_over_float_pct"] <= 1.0],
            **{f"decode_no_slower_than_default ({kind})": [runs["decompress_speedup_vs_auto"],
                                                          runs["decompress_speedup_vs_auto"] >= 1.0]
               for kind, runs in speed.items()}}


if __name__ == "__main__":
    main()
