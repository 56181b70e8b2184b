"""Where the pixel's position tells something (why the learned output layer reads it, "head": 3).

    python benchmarks/position_phases.py [--data ../shared/data]

For every photo of images/valid: the mean absolute error of a simple predictor (the median edge
detector: W + N - NW clamped to W and N) by phase, relative to its mean over the photo,
  * of the JPEG chroma channels Cb and Cr (from RGB), at each of the four 2x2 phases (y mod 2,
    x mod 2): a photo whose chroma was once subsampled 2x2 and interpolated shows an uneven split;
  * of the green channel by column and by row of every 8-pixel period (x mod 8, y mod 8): a photo
    once coded in 8x8 blocks shows a rise where a block begins (predicted across the block edge).
Writes benchmarks/results/position_phases.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def med_error(ch: np.ndarray) -> np.ndarray:
    """|x - MED(W, N, NW)| for every pixel but the first row and column."""
    w, n, nw, x = ch[1:, :-1], ch[:-1, 1:], ch[:-1, :-1], ch[1:, 1:]
    return np.abs(x - np.clip(w + n - nw, np.minimum(w, n), np.maximum(w, n)))


def phases(path: Path) -> dict:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    chroma = {"Cb": -0.168736 * r - 0.331264 * g + 0.5 * b, "Cr": 0.5 * r - 0.418688 * g - 0.081312 * b}
    row = {"photo": path.name}
    for name, ch in chroma.items():
        e = med_error(ch)  # e[i, j] is the pixel at (i + 1, j + 1)
        by_phase = [e[(1 - py) % 2::2, (1 - px) % 2::2].mean() for py in range(2) for px in range(2)]
        row[f"{name} by 2x2 phase (00, 01, 10, 11) / mean"] = [round(v / e.mean(), 3) for v in by_phase]
    e = med_error(g)
    row["G by x mod 8 (0..7) / mean"] = [round(e[:, (k - 1) % 8::8].mean() / e.mean(), 3) for k in range(8)]
    row["G by y mod 8 (0..7) / mean"] = [round(e[(k - 1) % 8::8, :].mean() / e.mean(), 3) for k in range(8)]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    args = ap.parse_args()
    rows = [phases(p) for p in sorted((args.data / "images" / "valid").glob("*.png"))]
    for row in rows:
        print(json.dumps(row), flush=True)
    out = HERE / "results" / "position_phases.json"
    out.write_text(json.dumps({"command": "python benchmarks/position_phases.py", "rows": rows}, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
