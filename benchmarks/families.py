"""The classic likelihood-model families side by side (issue: the classic families as exact codecs).

    sudo benchmarks/setup.sh            # the peers: cjxl, cwebp, optipng
    python benchmarks/families.py [--data ../shared/data] [--crops 2] [--jobs 1]

Cuts --crops 128x128 crops from every photo of images/valid (a fixed grid over each photo) and
runs every family model shipped so far, the default image model (auto) and the peers (PNG with
Pillow optimize, optipng, WebP lossless, JPEG XL -e 7 and -e 9) on each crop through the
`neuralzip bench` machinery: whole processes, start-up included, every neuralzip file decoded and
checked against the crop. Per codec: bits per subpixel in total and per source (urban_*, wiki_*),
the ratio to PNG, and for the neuralzip models the float and exact likelihood, how far the coded
size is from the exact likelihood (total and worst crop), the slowest crop each way and the
median ratio of their time to `cjxl -d 0 -e 9`'s on the same crop.
Fails if a peer is missing or a file does not decode to the original.
Writes benchmarks/results/families.json (`--models vae,made --out FILE`: those families only).

    python benchmarks/families.py --audio [--jobs 1]

runs the audio families (wavenet), the default audio model (auto), `classic` (the same per-block
LPC as wavenet's, its residual under adaptive counts) and the peers (FLAC -8, WavPack -hh -x3) the same way on the recordings of AUDIO_SOURCES in audio/valid (speech and the Rhodes
piano: the issue's targets), whole files: bits per sample per source, the ratio to FLAC, the
float and exact likelihood and the coded payload against it, and the slowest file's time as a
multiple of real time each way -> benchmarks/results/families_audio.json.

    python benchmarks/families.py --split MODEL URBAN.npz WIKI.npz

judges a family on photos unlike its training data: the same crops, priced (exact model, in
process) by MODEL with weights trained on the urban_* training photos alone and on the wiki_*
ones alone, per source of images/valid -> benchmarks/results/families_split_MODEL.json.
"""

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import checked_bench  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402

CROP = 128
FAMILIES = {"image": ["gated-pixelcnn", "pixelrnn", "made", "nade", "vae"], "audio": ["wavenet"]}
# measured in the same run: the default models, and for audio `classic` too, whose per-block LPC is
# the one wavenet reads the residual of, coded under adaptive counts: what the network adds to it
REFERENCE = {"image": ["classic"], "audio": ["ols-cascade", "classic"]}
AUDIO_SOURCES = ["asterisk_allison_8k", "jrhodes3c_mono"]


def cut_crops(valid: Path, per_photo: int, out: Path) -> int:
    """per_photo CROP x CROP crops of every photo (RGB), on a fixed grid, as PNG files in out."""
    n = 0
    for f in sorted(valid.glob("*.png")):
        with Image.open(f) as im:
            im = im.convert("RGB")
            w, h = im.size
            for k in range(per_photo):
                x0 = (k + 1) * w // (per_photo + 1) - CROP // 2
                y0 = (k + 1) * h // (per_photo + 1) - CROP // 2
                im.crop((x0, y0, x0 + CROP, y0 + CROP)).save(out / f"{f.stem}_{k:02d}.png")
                n += 1
    return n


def summary(rows: list[dict]) -> dict:
    dims = sum(r["dims"] for r in rows if r["codec"] == "png")
    png = {r["file"]: r for r in rows if r["codec"] == "png"}
    jxl9 = {r["file"]: r for r in rows if r["codec"] == "jxl-e9"}
    out = {}
    for name in dict.fromkeys(r["codec"] for r in rows):
        mine = [r for r in rows if r["codec"] == name]
        total = sum(r["bytes"] for r in mine)
        s = {"bpsp": round(8 * total / dims, 5), "vs_png": round(total / sum(r["bytes"] for r in png.values()), 5)}
        for source in sorted({Path(r["file"]).name.split("_")[0] for r in mine}):
            part = [r for r in mine if Path(r["file"]).name.startswith(source + "_")]
            s[f"bpsp_{source}"] = round(8 * sum(r["bytes"] for r in part) / sum(r["dims"] for r in part), 5)
        s["slowest_compress_s"] = round(max(r["compress_s"] for r in mine), 3)
        s["slowest_decompress_s"] = round(max(r["decompress_s"] for r in mine), 3)
        for way in ("compress", "decompress"):
            s[f"median_{way}_vs_jxl_e9"] = round(statistics.median(
                r[f"{way}_s"] / jxl9[r["file"]][f"{way}_s"] for r in mine), 3)
        if mine[0]["neuralzip"]:
            nll = sum(r["nll_bits"] for r in mine)
            nll_float = sum(r["nll_float_bits"] for r in mine)
            s["nll_float_bpsp"] = round(nll_float / dims, 5)
            s["nll_bpsp"] = round(nll / dims, 5)
            s["float_to_exact_gap_pct"] = round(100 * (nll / nll_float - 1), 3)
            payload = sum(r["payload_bytes"] for r in mine)
            s["payload_over_exact_nll_pct"] = round(100 * (8 * payload / nll - 1), 3)
            s["worst_crop_payload_over_exact_nll_pct"] = round(max(100 * (8 * r["payload_bytes"] / r["nll_bits"] - 1)
                                                                    for r in mine), 3)
            # the whole file (the container's header and the PNG's own metadata included)
            s["file_over_exact_nll_pct"] = round(100 * (8 * total / nll - 1), 3)
            s["worst_crop_file_over_exact_nll_pct"] = round(max(100 * (8 * r["bytes"] / r["nll_bits"] - 1)
                                                                 for r in mine), 3)
            s["crops_below_png"] = sum(r["bytes"] < png[r["file"]]["bytes"] for r in mine)
        out[name] = s
    return out


def split_row(args) -> dict:
    path, model, weights = args
    samples = read_media(path.read_bytes()).samples
    row = {"file": path.name, "source": path.name.split("_")[0], "dims": int(samples.size)}
    for source, w in weights.items():
        row[f"trained on {source}"] = get_codec(model, "image", weights=w).likelihood(
            samples, Signal("image", samples.shape, 8))[1]
    print(json.dumps(row), flush=True)
    return row


def split(data: Path, per_photo: int, model: str, weights: dict, jobs: int) -> dict:
    """Each source's weights on each source's crops: exact-model bits per subpixel."""
    with tempfile.TemporaryDirectory() as tmp:
        cut_crops(data / "images" / "valid", per_photo, Path(tmp))
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(split_row, [(p, model, weights) for p in sorted(Path(tmp).glob("*.png"))]))
    table = {}
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        dims = sum(r["dims"] for r in mine)
        cell = {f"trained on {k}": round(sum(r[f"trained on {k}"] for r in mine) / dims, 5) for k in weights}
        [other] = [v for k, v in cell.items() if k != f"trained on {source}"]
        cell["trained on the other source vs its own, pct"] = round(100 * (other / cell[f"trained on {source}"] - 1), 3)
        table[f"valid {source}"] = cell
    return {"bits per subpixel (exact model)": table, "rows": rows}


def add_payloads(rows: list[dict]) -> None:
    """The coded payload (the model's chunks, no container) of each neuralzip row, coded again in
    process: the size the exact likelihood is a bound for."""
    for r in rows:
        if r["neuralzip"]:
            samples = read_media(Path(r["file"]).read_bytes()).samples
            enc = get_codec(r["model"], "image").encode(samples, Signal("image", samples.shape, 8))
            if abs(enc.nll_bits - r["nll_bits"]) > 1e-6 * r["nll_bits"]:
                sys.exit(f"{r['file']}: {r['model']} coded in process does not match its file")
            r["payload_bytes"] = sum(len(c) for c in enc.chunks)


def audio_summary(rows: list[dict], seconds: dict) -> dict:
    """Per codec and source: bits per sample, the ratio to FLAC, the slowest file's time over its
    duration each way (below 1: faster than real time), and for neuralzip the likelihoods."""
    out = {}
    for name in dict.fromkeys(r["codec"] for r in rows):
        s = {}
        for source in AUDIO_SOURCES:
            mine = [r for r in rows if r["codec"] == name and r["source"] == source]
            flac = [r for r in rows if r["codec"] == "flac" and r["source"] == source]
            dims = sum(r["dims"] for r in mine)
            cell = {"bits_per_sample": round(8 * sum(r["bytes"] for r in mine) / dims, 5),
                    "vs_flac": round(sum(r["bytes"] for r in mine) / sum(r["bytes"] for r in flac), 5)}
            for way in ("compress", "decompress"):
                cell[f"slowest_{way}_x_realtime"] = round(max(r[f"{way}_s"] / seconds[r["file"]] for r in mine), 3)
                cell[f"total_{way}_x_realtime"] = round(sum(r[f"{way}_s"] for r in mine)
                                                        / sum(seconds[r["file"]] for r in mine), 3)
            if mine[0]["neuralzip"]:
                nll = sum(r["nll_bits"] for r in mine)
                nll_float = sum(r["nll_float_bits"] for r in mine)
                cell.update({"nll_float_bits_per_sample": round(nll_float / dims, 5),
                             "nll_bits_per_sample": round(nll / dims, 5),
                             "float_to_exact_gap_pct": round(100 * (nll / nll_float - 1), 3),
                             "payload_over_exact_nll_pct": round(100 * (8 * sum(r["payload_bytes"] for r in mine)
                                                                       / nll - 1), 3),
                             "files_below_flac": sum(r["bytes"] < f["bytes"] for r, f in zip(mine, flac))})
            s[source] = cell
        out[name] = s
    return out


def audio(data: Path, jobs: int) -> dict:
    import shutil

    models = FAMILIES["audio"] + REFERENCE["audio"]
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in AUDIO_SOURCES:
            for f in sorted((data / "audio" / "valid" / source).glob("*.flac")):
                dst = Path(tmp) / f"{source}__{f.name}"
                shutil.copy(f, dst)
                media = read_media(f.read_bytes())
                seconds[str(dst)] = media.samples.shape[0] / media.meta["rate"]
        _, rows = checked_bench(Path(tmp), models, jobs, "samples")
        for r in rows:
            r["source"] = Path(r["file"]).name.split("__")[0]
            if r["neuralzip"]:
                media = read_media(Path(r["file"]).read_bytes())
                signal = Signal("audio", media.samples.shape, media.bits, int(media.meta["rate"]))
                r["payload_bytes"] = sum(len(c) for c in get_codec(r["model"], "audio").encode(media.samples, signal).chunks)
        totals = audio_summary(rows, seconds)
        for r in rows:
            r["seconds"] = round(seconds[r["file"]], 4)
            r["file"] = Path(r["file"]).name
    weights = {m: get_codec(m, "audio").weights_hash for m in models}
    return {"command": f"python benchmarks/families.py --audio --jobs {jobs}", "sources": AUDIO_SOURCES,
            "weights": weights, "totals": totals, "rows": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--crops", type=int, default=2, help="128x128 crops per valid photo (15 photos)")
    ap.add_argument("--jobs", type=int, default=1, help="crops benchmarked at once (1: timings undisturbed)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "families.json")
    ap.add_argument("--audio", action="store_true", help="the audio families (families_audio.json)")
    ap.add_argument("--models", help="comma-separated image families to run (default: every one); with it, "
                                     "give --out another file so that the full table's file is kept")
    ap.add_argument("--split", nargs=3, metavar=("MODEL", "URBAN", "WIKI"),
                    help="MODEL's weights trained on urban_* alone and on wiki_* alone")
    args = ap.parse_args()
    if args.audio:
        result = audio(args.data, max(1, args.jobs))
        out = args.out.with_name("families_audio.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["totals"], indent=1))
        return
    if args.split:
        model, urban, wiki = args.split
        weights = {"urban": urban, "wiki": wiki}
        result = {"command": f"python benchmarks/families.py --split {model} URBAN WIKI --crops {args.crops}",
                  "model": model, "weights": {k: Path(v).name for k, v in weights.items()},
                  **split(args.data, args.crops, model, weights, max(1, args.jobs))}
        out = args.out.with_name(f"families_split_{model}.json")
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["bits per subpixel (exact model)"], indent=1))
        return
    families = args.models.split(",") if args.models else FAMILIES["image"]
    unknown = sorted(set(families) - set(FAMILIES["image"]))
    if unknown:
        ap.error(f"not image families: {', '.join(unknown)} (they are {', '.join(FAMILIES['image'])})")
    models = families + REFERENCE["image"]
    weights = {m: get_codec(m, "image").weights_hash for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        crops = Path(tmp)
        n = cut_crops(args.data / "images" / "valid", args.crops, crops)
        _, rows = checked_bench(crops, models, args.jobs, "pixels")
        add_payloads(rows)
    totals = summary(rows)
    for r in rows:
        r["file"] = Path(r["file"]).name
    chosen = f" --models {args.models} --out {args.out}" if args.models else ""
    result = {"command": f"python benchmarks/families.py --crops {args.crops} --jobs {args.jobs}{chosen}",
              "crops": n, "crop": f"{CROP}x{CROP}", "weights": weights, "totals": totals, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(totals, indent=1))


if __name__ == "__main__":
    main()
