"""Figures for jpeg-coefficients: photos that are decoded JPEGs, coded as their DCT coefficients.

    python benchmarks/jpeg_coefficients.py [--data ../shared/data] [--jobs 2]
    python benchmarks/jpeg_coefficients.py --tune-prior [--data ../shared/data]
    python benchmarks/jpeg_coefficients.py --resaved Q [--chroma 444|422|420]
    python benchmarks/jpeg_coefficients.py --speed-420
    python benchmarks/jpeg_coefficients.py --compare-priors OLD.npz NEW.npz

* census: every photo of images/valid and images/train: recognised as a decoded JPEG or not (and
  the time that takes), the block grid found, the luma table's first steps (libjpeg's quality 96
  starts 1 1 1 1 2 3 4 5), the share of sampled blocks back exactly after the search, the share
  of blocks that need corrections;
* sizes, every photo of images/valid that is recognised (5 of the 6 urban photos): jpeg-coefficients'
  whole .nz file (decoded back and compared) with the shipped prior and with no learned prior
  (the kernel's fixed start: nothing learned from any photo, the stand-in for photos unlike the
  training ones), against `cjxl -d 0 -e 9` and the models --model auto took before (classic,
  local-ls-mlp level 2): bytes from benchmarks/results/local_ls.json, same files, same cjxl;
* --tune-prior: the prior's weight chosen on images/train: learned as weights v2 are (each photo as
  stored and resaved, neuralzip/train/jpeg_prior.py) on 4 of every 5 photos, the 5th held out,
  bytes of the held-out photos as stored and resaved at qualities 75, 90 and 50 (none of the
  training copies'), for several weights and for no prior (stop 45's run, v1's recipe on the urban
  photos alone, is in git history);
* --resaved Q: decoded JPEGs unlike the training ones: every Wikipedia photo of images/valid saved
  as a JPEG at quality Q with full-resolution chroma (--chroma 420: half-resolution chroma, the
  default of phones and of most encoders; --chroma 422: half across only, as many cameras write)
  and decoded again (Pillow, libjpeg-turbo), coded by
  jpeg-coefficients (shipped prior and none), classic and local-ls-mlp level 2, against
  `cjxl -d 0 -e 9` on the same decoded pixels, in one run.
* --speed-420: a 768x512 centre crop of the first Wikipedia photo of images/valid saved as a
  quality-90 4:2:0 JPEG and decoded again: compress and decompress with jpeg-coefficients and
  classic, whole processes on all cores, median of 3, against `cjxl -d 0 -e 7` in the same run
  (the full-resolution chroma case is `local_ls.py --speed-only`).
* --compare-priors A.npz B.npz: the exact model's bytes (every block coded, nothing written) of
  the valid photos that are decoded JPEGs as they are stored, and of every Wikipedia photo of
  images/valid resaved by Pillow at qualities and samplings that weights v2's training copies
  (neuralzip/train/jpeg_prior.py: qualities 60, 80, 95) do not use, under each prior.
Writes benchmarks/results/jpeg_coefficients.json (--tune-prior: jpeg_coefficients_prior.json;
--resaved Q: jpeg_coefficients_resaved_qQ.json, with --chroma 420 or 422 ..._qQ_420.json or
..._qQ_422.json; --speed-420:
jpeg_coefficients_speed_420.json; --compare-priors: jpeg_coefficients_priors.json).
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from neuralzip import api, container, weightstore  # noqa: E402
from neuralzip.coding.stream import CostCoder  # noqa: E402
from neuralzip.kernels import jpeg_blocks as _k  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models.jpeg_coefficients import code_image, found, recognises, recover, upright  # noqa: E402
from neuralzip.train.classic_prior import training_files  # noqa: E402
from neuralzip.train.jpeg_prior import PRIOR_TOTAL, prior, resaved as resaved_copy, save, tally  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from baselines import jxl_bytes, median_wall, need, roundtrip_walls  # noqa: E402


def census_row(path: Path) -> dict:
    media = read_media(path.read_bytes())
    start = time.perf_counter()
    f = found(media.samples, media.bits)
    row = {"file": f"{path.parent.name}/{path.name}", "recognised": recognises(media.samples, media.bits),
           "recognise_s": round(time.perf_counter() - start, 2)}
    if f is not None:
        row.update({"pad": [f.canvas.top, f.canvas.left], "sampling": f.canvas.sampling,
                    "luma_steps": f.steps[0, :8].tolist(),
                    "sampled_blocks_exact_after_search": round(f.share, 3)})
    if row["recognised"]:
        row["blocks_corrected"] = round(float(recover(media.samples, f)[1].mean()), 4)
    print(json.dumps(row), flush=True)
    return row


def _untrained_weights(folder: Path) -> Path:
    return save(_k.default_counts().astype(np.int32), folder, {"what": "the kernel's fixed start, nothing learned"})


def size_row(args) -> dict:
    path, untrained = args
    media = read_media(path.read_bytes())
    row = {"file": path.name, "dims": media.dims}
    for key, weights in (("jpeg-coefficients", None), ("jpeg-coefficients untrained", untrained)):
        start = time.perf_counter()
        member = api.encode_media(media, path.name, "jpeg-coefficients", None if weights is None else str(weights))
        row[f"{key} encode_s"] = round(time.perf_counter() - start, 2)
        assert "fallback" not in member.params, path.name
        blob = container.dumps([member])
        back = api.decode_member(container.loads(blob)[1][0], None if weights is None else str(weights))
        if not np.array_equal(back.samples, media.samples):
            sys.exit(f"{path.name}: {key} did not decode to the original pixels")
        row[key] = len(blob)
        row[f"{key} nll_bits"] = member.stats["nll_bits"]
    print(json.dumps(row), flush=True)
    return row


def sizes(data: Path, jobs: int, recognised: list[str]) -> dict:
    earlier = {r["file"]: r for r in json.loads((RESULTS / "local_ls.json").read_text())["rows"]}
    photos = [p for p in sorted((data / "images" / "valid").glob("*.png")) if f"valid/{p.name}" in recognised]
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(jobs) as pool:
        untrained = _untrained_weights(Path(tmp))
        rows = list(pool.map(size_row, [(p, untrained) for p in photos]))
    for r in rows:
        r.update({k: earlier[r["file"]][k] for k in ("jxl-e9", "classic@1", "local-ls-mlp@2")})
    total = {k: sum(r[k] for r in rows) for k in ("jxl-e9", "classic@1", "local-ls-mlp@2", "jpeg-coefficients",
                                                   "jpeg-coefficients untrained")}
    summary = {f"{k} vs jxl-e9": round(v / total["jxl-e9"], 4) for k, v in total.items() if k != "jxl-e9"}
    summary["jpeg-coefficients vs local-ls-mlp@2"] = round(total["jpeg-coefficients"] / total["local-ls-mlp@2"], 4)
    summary["likelihood vs coded size"] = round(sum(r["jpeg-coefficients nll_bits"] for r in rows)
                                                / (8 * total["jpeg-coefficients"]), 4)
    return {"photos": "the photos of images/valid that the model recognises", "totals_bytes": total,
            "summary": summary, "rows": rows}


def resaved_row(args) -> dict:
    path, quality, chroma, untrained = args
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality, subsampling=SUBSAMPLING[chroma])
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / path.name
        Image.open(io.BytesIO(buf.getvalue())).convert("RGB").save(png)  # the decoded JPEG, as a PNG
        media = read_media(png.read_bytes())
        row = {"file": path.name, "dims": media.dims, "jxl-e9": jxl_bytes(png, 9)}
    for key, model, weights, level in (("jpeg-coefficients", "jpeg-coefficients", None, 1),
                                       ("jpeg-coefficients untrained", "jpeg-coefficients", untrained, 1),
                                       ("classic@1", "classic", None, 1), ("local-ls-mlp@2", "local-ls-mlp", None, 2)):
        start = time.perf_counter()
        member = api.encode_media(media, path.name, model, None if weights is None else str(weights), level)
        row[f"{key} encode_s"] = round(time.perf_counter() - start, 2)
        blob = container.dumps([member])
        back = api.decode_member(container.loads(blob)[1][0], None if weights is None else str(weights))
        if not np.array_equal(back.samples, media.samples):
            sys.exit(f"{path.name}: {key} did not decode to the original pixels")
        row[key] = len(blob)
        if model == "jpeg-coefficients":
            row[f"{key} coded as coefficients"] = "fallback" not in member.params
    print(json.dumps(row), flush=True)
    return row


SUBSAMPLING = {"444": 0, "422": 1, "420": 2}  # Pillow's subsampling values


def resaved(data: Path, quality: int, chroma: str, jobs: int) -> dict:
    photos = [p for p in sorted((data / "images" / "valid").glob("*.png")) if p.name.startswith("wiki")]
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(jobs) as pool:
        untrained = _untrained_weights(Path(tmp))
        rows = list(pool.map(resaved_row, [(p, quality, chroma, untrained) for p in photos]))
    keys = ("jpeg-coefficients", "jpeg-coefficients untrained", "classic@1", "local-ls-mlp@2")
    e9 = sum(r["jxl-e9"] for r in rows)
    sampling = {"444": "4:4:4", "422": "4:2:2", "420": "4:2:0"}[chroma]
    return {"photos": f"images/valid's Wikipedia photos, saved as quality-{quality} {sampling} JPEGs and decoded",
            "vs jxl-e9": {k: round(sum(r[k] for r in rows) / e9, 4) for k in keys}, "rows": rows}


def speed_420(data: Path) -> dict:
    src = sorted((data / "images" / "valid").glob("wiki*.png"))[0]
    out = {"input": f"768x512 centre crop of {src.name}, saved as a quality-90 4:2:0 JPEG and decoded"}
    with Image.open(src) as im, tempfile.TemporaryDirectory() as tmp:
        w, h = im.size
        buf = io.BytesIO()
        im.convert("RGB").crop(((w - 768) // 2, (h - 512) // 2, (w - 768) // 2 + 768, (h - 512) // 2 + 512)).save(
            buf, "JPEG", quality=90, subsampling=SUBSAMPLING["420"])
        png = Path(tmp) / "crop.png"
        Image.open(io.BytesIO(buf.getvalue())).convert("RGB").save(png)
        out["cjxl_e7_encode_s"] = round(median_wall([need("cjxl"), "-d", "0", "-e", "7", str(png),
                                                     str(Path(tmp) / "c.jxl")]), 3)
        for model in ("jpeg-coefficients", "classic"):
            c, d, nz = roundtrip_walls(png, model, 1, Path(tmp))
            member = container.loads(nz.read_bytes())[1][0]
            out[model] = {"compress_s": round(c, 3), "decompress_s": round(d, 3), "bytes": nz.stat().st_size,
                          "compress_vs_cjxl_e7": round(c / out["cjxl_e7_encode_s"], 3),
                          "decompress_vs_cjxl_e7": round(d / out["cjxl_e7_encode_s"], 3)}
            if model == "jpeg-coefficients":
                out[model]["coded as coefficients"] = "fallback" not in member.params
            print(model, out[model], flush=True)
    return out


def tune_prior(data: Path, jobs: int) -> dict:
    """The prior's weight chosen on images/train as weights v2 are learned (train/jpeg_prior.py:
    each photo as stored if a decoded JPEG, and its resaved copies): learned on 4 of every 5
    photos, the 5th held out and coded as stored and resaved at qualities the copies do not have."""
    files = training_files(data / "images" / "train", "image")
    held = files[4::5]
    hist = tally([p for p in files if p not in held], resave=True, jobs=jobs, progress=lambda m: print(m, flush=True))
    totals = {"no prior": None, **{str(t): prior(hist, t) for t in TUNED_TOTALS}}
    work = [(p, q, s, list(totals.values())) for q, s in TUNING_TRIALS for p in held]
    out = {"held_out": [p.name for p in held], "bytes": {}}
    with ProcessPoolExecutor(jobs) as pool:
        for what, sizes_ in pool.map(bytes_under_priors, work):
            if sizes_ is not None:
                row = out["bytes"].setdefault(what, dict.fromkeys(totals, 0))
                for k, b in zip(totals, sizes_):
                    row[k] += round(b)
    for what, row in out["bytes"].items():
        print(what, {k: round(v / row[str(PRIOR_TOTAL)], 4) for k, v in row.items()}, flush=True)
    return out


TUNED_TOTALS = (1024, 2048, 4096, 8192, 16384)
TUNING_TRIALS = ((0, ""), (75, "4:2:0"), (90, "4:2:2"), (50, "4:2:0"))  # (0, ""): as stored


# the resaved copies --compare-priors measures: qualities none of the training copies have
PRIOR_TRIALS = ((50, "4:2:0"), (75, "4:2:0"), (90, "4:2:0"), (90, "4:2:2"), (90, "4:4:4"))


def bytes_under_priors(job) -> tuple[str, list[float] | None]:
    """(what, the exact model's bytes under each prior, None where the copy is not recognised) of
    one photo (quality 0) or its resaved copy. A prior is counts, a weights file (read in the
    worker) or None (the kernel's fixed start)."""
    path, quality, sampling, priors = job
    samples = read_media(path.read_bytes()).samples
    if quality:
        samples = resaved_copy(samples, quality, sampling)
    what = f"q{quality} {sampling}" if quality else "as stored"
    if samples is None or not recognises(samples, 8):
        return what, None
    f = found(samples, 8)
    out = []
    for p in priors:
        counts = weightstore.load(p)["counts"] if isinstance(p, Path) else p
        model = _k.BlockModel if counts is None else (lambda c=counts.astype(np.int64): _k.BlockModel(c))
        out.append(sum(c.bits for _, c in code_image(upright(samples, f), f, model, CostCoder)) / 8)
    return what, out


def compare_priors(data: Path, priors: list[Path], jobs: int) -> dict:
    valid = data / "images" / "valid"
    work = [(p, 0, "", priors) for p in sorted(valid.glob("*.png"))]
    work += [(p, q, s, priors) for q, s in PRIOR_TRIALS for p in sorted(valid.glob("wiki*.png"))]
    totals, missed = {}, {}
    with ProcessPoolExecutor(jobs) as pool:
        for what, sizes_ in pool.map(bytes_under_priors, work):
            if sizes_ is None:
                missed[what] = missed.get(what, 0) + 1
                continue
            totals[what] = [a + b for a, b in zip(totals.get(what, [0.0] * len(priors)), sizes_)]
    rows = {what: {"bytes": [round(b) for b in t], "vs first": [round(b / t[0], 4) for b in t]}
            for what, t in totals.items()}
    for what, row in rows.items():
        print(what, row, flush=True)
    return {"priors": [p.name for p in priors], "rows": rows, "not recognised": missed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tune-prior", action="store_true")
    ap.add_argument("--resaved", type=int, metavar="QUALITY")
    ap.add_argument("--chroma", choices=sorted(SUBSAMPLING), default="444", help="of the --resaved JPEGs")
    ap.add_argument("--speed-420", action="store_true")
    ap.add_argument("--compare-priors", nargs="+", type=Path, metavar="WEIGHTS")
    args = ap.parse_args()
    if args.compare_priors:
        out = compare_priors(args.data, args.compare_priors, args.jobs)
        out["command"] = "python benchmarks/jpeg_coefficients.py --compare-priors " + " ".join(
            str(p) for p in args.compare_priors)
        (RESULTS / "jpeg_coefficients_priors.json").write_text(json.dumps(out, indent=1) + "\n")
        return
    if args.speed_420:
        out = speed_420(args.data)
        out["command"] = "python benchmarks/jpeg_coefficients.py --speed-420"
        (RESULTS / "jpeg_coefficients_speed_420.json").write_text(json.dumps(out, indent=1) + "\n")
        return
    if args.resaved:
        out = resaved(args.data, args.resaved, args.chroma, args.jobs)
        suffix = "" if args.chroma == "444" else f" --chroma {args.chroma}"
        out["command"] = f"python benchmarks/jpeg_coefficients.py --resaved {args.resaved}{suffix}"
        print(json.dumps(out["vs jxl-e9"], indent=1))
        name = f"jpeg_coefficients_resaved_q{args.resaved}{'' if args.chroma == '444' else '_' + args.chroma}.json"
        (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n")
        return
    if args.tune_prior:
        out = tune_prior(args.data, args.jobs)
        out["command"] = "python benchmarks/jpeg_coefficients.py --tune-prior"
        (RESULTS / "jpeg_coefficients_prior.json").write_text(json.dumps(out, indent=1) + "\n")
        return
    photos = sorted((args.data / "images" / "valid").glob("*.png")) + sorted((args.data / "images" / "train").glob("*.png"))
    with ProcessPoolExecutor(args.jobs) as pool:
        census = list(pool.map(census_row, photos))
    recognised = [r["file"] for r in census if r["recognised"]]
    out = {"command": "python benchmarks/jpeg_coefficients.py", "census": census,
           "sizes": sizes(args.data, args.jobs, recognised)}
    print(json.dumps(out["sizes"]["summary"], indent=1))
    (RESULTS / "jpeg_coefficients.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
