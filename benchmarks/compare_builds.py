"""Two neuralzip installs, same inputs, same run: speed of every model, and a check that both
write the same bytes.

    python benchmarks/compare_builds.py OLD_NEURALZIP NEW_NEURALZIP [--repeat 3] [--data ../shared/data]
        [--out benchmarks/results/compare_builds.json]

Each argument is a `neuralzip` executable (e.g. .venv/bin/neuralzip of two checkouts). Inputs:
a 768x512 centre crop of a valid photo (every image model) and a 2-minute 44.1 kHz stereo
16-bit recording made by concatenating valid recordings (every audio model). Whole processes,
start-up included; the two installs alternate run by run so a drift in the machine's speed
affects both alike; the median of `repeat` runs is kept. Each install's first run of each
model is not timed (a just-in-time compiler, if the install has one, fills its cache there).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGE_MODELS = ("classic", "context-mlp", "vae")
AUDIO_MODELS = ("classic", "lpc-nlms-mlp")


def photo_crop(data: Path, dest: Path) -> Path:
    src = sorted((data / "images" / "valid").glob("*.png"))[0]
    im = Image.open(src).convert("RGB")
    w, h = im.size
    x, y = max(0, (w - 768) // 2), max(0, (h - 512) // 2)
    im.crop((x, y, x + 768, y + 512)).save(dest / "photo.png")
    return dest / "photo.png"


def two_minutes(data: Path, dest: Path) -> Path:
    """2 minutes of 44.1 kHz stereo 16-bit from the valid recordings at that rate (repeated as needed)."""
    parts, total = [], 0
    files = sorted(p for p in (data / "audio" / "valid").rglob("*.flac"))
    while total < 120 * 44100:
        for f in files:
            info = sf.info(str(f))
            if info.samplerate != 44100 or info.subtype != "PCM_16":
                continue
            x = sf.read(str(f), dtype="int16", always_2d=True)[0]
            x = np.repeat(x[:, :1], 2, axis=1) if x.shape[1] == 1 else x[:, :2]
            parts.append(x)
            total += len(x)
            if total >= 120 * 44100:
                break
        if not parts:
            sys.exit("no 44.1 kHz 16-bit recording in audio/valid")
    sf.write(str(dest / "two_minutes.wav"), np.concatenate(parts)[:120 * 44100], 44100, subtype="PCM_16")
    return dest / "two_minutes.wav"


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def compare(builds: dict[str, str], src: Path, model: str, repeat: int, tmp: Path) -> dict:
    out = {}
    nz = {name: tmp / f"{name}-{model}-{src.stem}.nz" for name in builds}
    back = {name: tmp / f"{name}-{model}-{src.name}" for name in builds}

    def compress(name):
        return run([builds[name], "compress", str(src), "-o", str(nz[name]), "--model", model, "--force", "-q"])

    def decompress(name):
        return run([builds[name], "decompress", str(nz[name]), "-o", str(back[name]), "--force", "-q"])

    for name in builds:  # warm-up, untimed
        compress(name)
        decompress(name)
    times = {(name, op): [] for name in builds for op in ("compress", "decompress")}
    for _ in range(repeat):
        for name in builds:
            times[(name, "compress")].append(compress(name))
            times[(name, "decompress")].append(decompress(name))
    for (name, op), ts in times.items():
        out.setdefault(name, {})[op] = round(statistics.median(ts), 3)
    blobs = {name: nz[name].read_bytes() for name in builds}
    out["same_bytes"] = len(set(blobs.values())) == 1
    out["bytes"] = len(next(iter(blobs.values())))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/compare_builds.json"))
    args = ap.parse_args()
    builds = {"old": args.old, "new": args.new}
    data = Path(args.data)
    results = {"builds": builds, "repeat": args.repeat, "cases": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        photo, song = photo_crop(data, tmp), two_minutes(data, tmp)
        for src, models in ((photo, IMAGE_MODELS), (song, AUDIO_MODELS)):
            for model in models:
                key = f"{src.stem}/{model}"
                results["cases"][key] = r = compare(builds, src, model, args.repeat, tmp)
                print(key, json.dumps(r), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
