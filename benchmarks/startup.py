"""Start-up cost of whole neuralzip processes, as ratios to Python's own in the same run.

    python benchmarks/startup.py [--repeat 5] [--out benchmarks/results/startup.json]

The baseline is `python -c "import numpy, PIL"` (the interpreter plus the two
libraries any image tool in Python loads). Measured, median of `repeat` runs:
`neuralzip --version`; compress and decompress of a 1x1 PNG and of a 0.5 s 8 kHz
WAV; and the README quick start's compress command on both bundled examples
(nothing is compiled at run time, so a first run costs what any run does).
Targets: --version at most 2x the baseline, the tiny files at most 3x, the quick
start under 3 s.
"""

import argparse
import io
import json
import shutil
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from baselines import median_wall

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"version": 2.0, "png_compress": 3.0, "png_decompress": 3.0, "wav_compress": 3.0, "wav_decompress": 3.0}


def tiny_inputs(tmp: Path) -> tuple[Path, Path]:
    png = tmp / "one.png"
    Image.fromarray(np.array([[[10, 200, 30]]], np.uint8)).save(png)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        t = np.arange(4000)
        w.writeframes((3000 * np.sin(t * 0.05)).astype("<i2").tobytes())
    wav = tmp / "half_second.wav"
    wav.write_bytes(buf.getvalue())
    return png, wav


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/startup.json"))
    args = ap.parse_args()
    nz = shutil.which("neuralzip") or str(Path(sys.executable).parent / "neuralzip")
    r = args.repeat
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        png, wav = tiny_inputs(tmp)
        res = {"baseline_import_numpy_pil": median_wall([sys.executable, "-c", "import numpy, PIL"], r)}
        res["version"] = median_wall([nz, "--version"], r)
        for name, src in (("png", png), ("wav", wav)):
            out = tmp / f"{name}.nz"
            res[f"{name}_compress"] = median_wall([nz, "compress", str(src), "-o", str(out), "--force", "-q"], r)
            res[f"{name}_decompress"] = median_wall([nz, "decompress", str(out), "-o", str(tmp / f"back_{src.name}"),
                                              "--force", "-q"], r)
        res["quickstart_compress"] = median_wall([nz, "compress", str(ROOT / "examples/swallowtail.png"),
                                           str(ROOT / "examples/alto_sax_d4.wav"), "--compare", "--verify",
                                           "--force", "-q", "-o", str(tmp / "examples.nz")], r)
    base = res["baseline_import_numpy_pil"]
    report = {"seconds": {k: round(v, 4) for k, v in res.items()},
              "ratio_to_baseline": {k: round(res[k] / base, 2) for k in TARGETS},
              "targets": TARGETS,
              "met": {k: res[k] / base <= t for k, t in TARGETS.items()} | {"quickstart_compress": res["quickstart_compress"] <= 3.0},
              "repeat": r, "python": sys.version.split()[0]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
