"""Baseline figures for the closing note of "neuralzip end to end".

    python benchmarks/baselines.py [--data ../shared/data] [--out benchmarks/results]

* bits per dimension of every baseline model (classic, histogram) against
  PNG (Pillow, optimize=True) on images/valid and FLAC
  (`flac -8 --no-padding --no-seektable`) on audio/valid, per file and in total
  (audio also per source);
* compress/decompress wall time of a 768x512 centre crop of a valid photo,
  whole `neuralzip` processes with start-up, against `cjxl -d 0 -e 7` in the
  same run (median of 3).
Fails if flac or cjxl is missing (a figure is never estimated).
"""

import argparse
import functools
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip import api, bench
from neuralzip.media.detect import read_media
from neuralzip.peers import flac_bytes

MODELS = ("classic", "histogram")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"benchmark needs `{tool}` (apt-get install flac libjxl-tools); not estimating it")
    return path


def jxl_bytes(png: Path, effort: int) -> int:
    """Bytes of `cjxl -d 0 -e EFFORT` (lossless) on the PNG at `png`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.jxl"
        subprocess.run([need("cjxl"), "-d", "0", "-e", str(effort), str(png), str(out)], check=True,
                       capture_output=True)
        return out.stat().st_size


@functools.cache
def compile_bytecode(tree: Path | None = None) -> None:
    """Write neuralzip's bytecode (__pycache__) of source tree `tree` (None: this one), as pip does
    when it installs a package, before anything is timed. Where PYTHONDONTWRITEBYTECODE is set (this
    machine sets it) a checkout never gets any, and every timed process would compile the package's
    sources afresh: about 0.1 s that no installed copy pays. Run by every timing helper here (files
    already compiled are skipped)."""
    import compileall

    compileall.compile_dir(str((tree or Path(__file__).resolve().parents[1]) / "neuralzip"), quiet=1)


def median_wall(cmd: list[str], repeat: int = 3) -> float:
    """Median wall time of a whole process (start-up included), with neuralzip's bytecode written."""
    compile_bytecode()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def roundtrip_walls(png: Path, model: str, level: int, tmp: Path, repeat: int = 3) -> tuple[float, float, Path]:
    """Median wall times of `neuralzip compress --model MODEL --level LEVEL` of an image and of
    `neuralzip decompress` of its .nz, whole processes, the restored pixels checked -> (compress
    seconds, decompress seconds, the .nz)."""
    neuralzip = [str(Path(sys.executable).with_name("neuralzip"))]
    nz, back = tmp / f"{model}@{level}.nz", tmp / "restored.png"
    c = median_wall(neuralzip + ["compress", "-q", "--force", "--model", model, "--level", str(level), str(png),
                                 "-o", str(nz)], repeat)
    d = median_wall(neuralzip + ["decompress", "-q", "--force", str(nz), "-o", str(back)], repeat)
    if not np.array_equal(read_media(back.read_bytes()).samples, read_media(png.read_bytes()).samples):
        sys.exit(f"{model}@{level} did not decode {png.name} to its pixels")
    return c, d, nz


def measured(cmd: list[str]) -> dict:
    """Wall time and peak RSS of one process under /usr/bin/time -v (neuralzip's bytecode written)."""
    compile_bytecode()
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr).group(1)
    seconds = sum(float(v) * 60 ** i for i, v in enumerate(reversed(wall.split(":"))))
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(rss / 1024)}


def checked_bench(folder: Path, models: list[str], jobs: int, what: str) -> tuple[list, list[dict]]:
    """`neuralzip bench` machinery over every file in folder, printing each row; exits if a peer or
    model did not run or a neuralzip file did not decode to the original `what`. -> (inputs, rows)."""
    inputs = bench.find_inputs([str(folder)])
    rows = bench.run(inputs, models, jobs=jobs,
                     on_row=lambda r: print(Path(r["file"]).name, r["codec"], round(r.get("bpd", 0), 4), flush=True))
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        sys.exit(f"a peer or model did not run ({skipped[0]['codec']}: {skipped[0]['skipped']}); "
                 "install the peers with benchmarks/setup.sh")
    if not all(r["verified"] for r in rows if r["neuralzip"]):
        sys.exit(f"a neuralzip file did not decode to the original {what}")
    return inputs, rows


def coded_bytes(media, model: str) -> int:
    from neuralzip import container

    return len(container.dumps([api.encode_media(media, "x", model)]))


def images(data: Path) -> dict:
    rows = []
    for f in sorted((data / "images" / "valid").glob("*.png")):
        media = read_media(f.read_bytes())
        buf = io.BytesIO()
        Image.open(f).save(buf, "PNG", optimize=True)
        row = {"file": f.name, "dims": media.dims, "png": len(buf.getvalue())}
        for m in MODELS:
            row[m] = coded_bytes(media, m)
        rows.append(row)
        print(f.name, {k: round(8 * row[k] / row["dims"], 4) for k in ("png",) + MODELS}, flush=True)
    return {"rows": rows, "total_bpd": _totals(rows, ("png",) + MODELS)}


def audio(data: Path) -> dict:
    need("flac")
    rows = []
    for f in sorted((data / "audio" / "valid").rglob("*.flac")):
        media = read_media(f.read_bytes())
        row = {"file": f"{f.parent.name}/{f.name}", "source": f.parent.name, "dims": media.dims,
               "bits": media.bits, "flac": flac_bytes(media)}
        for m in MODELS:
            row[m] = coded_bytes(media, m)
        rows.append(row)
        print(row["file"], {k: round(row[k] / row["flac"], 4) for k in MODELS}, flush=True)
    sources = sorted({r["source"] for r in rows})
    per_source = {s: _totals([r for r in rows if r["source"] == s], ("flac",) + MODELS) for s in sources}
    return {"rows": rows, "total_bpd": _totals(rows, ("flac",) + MODELS), "per_source_bpd": per_source}


def _totals(rows, keys):
    dims = sum(r["dims"] for r in rows)
    return {k: round(8 * sum(r[k] for r in rows) / dims, 5) for k in keys}


def timing(data: Path, neuralzip: list[str], model: str = "auto", photo: str | None = None,
           repeat: int = 3) -> dict:
    """Whole-process times (median of `repeat`) of a 768x512 centre crop of `photo` (a file of
    images/valid; the first one if None) against `cjxl -d 0 -e 7`'s encode of it."""
    cjxl = need("cjxl")
    valid = data / "images" / "valid"
    src = valid / photo if photo else sorted(valid.glob("*.png"))[0]
    with Image.open(src) as im:
        w, h = im.size
        crop = im.crop(((w - 768) // 2, (h - 512) // 2, (w - 768) // 2 + 768, (h - 512) // 2 + 512))
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "crop.png"
        crop.save(png)

        subprocess.run(neuralzip + ["models"], check=True, capture_output=True)  # warm the compile cache
        out = {"input": f"768x512 centre crop of {src.name}", "model": model,
               "cjxl_e7_encode_s": median_wall([cjxl, "-d", "0", "-e", "7", str(png), str(Path(tmp) / "c.jxl")],
                                               repeat),
               "compress_s": median_wall(neuralzip + ["compress", "-q", "--force", "--model", model, str(png)], repeat),
               "decompress_s": median_wall(neuralzip + ["decompress", "-q", "--force", str(png) + ".nz", "-o",
                                                        str(Path(tmp) / "back.png")], repeat)}
        info = subprocess.run(neuralzip + ["info", "--json", str(png) + ".nz"], check=True, capture_output=True)
        out["coded_with"] = json.loads(info.stdout)["members"][0]["model"]  # what auto chose
        out["compress_vs_cjxl_e7"] = round(out["compress_s"] / out["cjxl_e7_encode_s"], 3)
        out["decompress_vs_cjxl_e7"] = round(out["decompress_s"] / out["cjxl_e7_encode_s"], 3)
        back = read_media((Path(tmp) / "back.png").read_bytes()).samples
        assert np.array_equal(back, read_media(png.read_bytes()).samples)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    neuralzip = [str(Path(sys.executable).with_name("neuralzip"))]
    result = {"command": "python benchmarks/baselines.py", "timing": timing(args.data, neuralzip),
              "images": images(args.data), "audio": audio(args.data)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "baselines.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"timing": result["timing"], "images": result["images"]["total_bpd"],
                      "audio": result["audio"]["total_bpd"], "audio_sources": result["audio"]["per_source_bpd"]},
                     indent=1))


if __name__ == "__main__":
    main()
