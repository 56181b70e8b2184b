"""Which photos are decoded JPEGs, and what coding them in their YCbCr is worth (models/jpeg_colour.py).

    python benchmarks/jpeg_colour.py [--data ../shared/data] [--jobs 2]

* census, every photo of images/train and images/valid: whether every pixel is a colour libjpeg's
  YCbCr -> RGB conversion reaches (a decoded JPEG), the share of pixels with a clamped channel
  (0 or 255) that the fast search leaves to the exhaustive one, their distinct colours, the
  farthest ring (|Cb - Cb0| + |Cr - Cr0| from JPEG's forward conversion) a preimage was found at,
  and the encoder's conversion time;
* ablation, every photo of images/valid: `classic` (level 1) whole .nz files as it codes them,
  and with every chunk coded as stored (the encoder told no colour is reached: the coding of
  stop 43 plus one byte a chunk), both decoded back and compared.
Writes benchmarks/results/jpeg_colour.json.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# photos in parallel processes: one kernel thread each (threads of processes sharing a core wait at
# every step's barrier)
os.environ["OMP_NUM_THREADS"] = "1"

from neuralzip import api, container  # noqa: E402
from neuralzip.kernels import jpeg_colour as kernel  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import jpeg_colour  # noqa: E402


def _forward_estimate(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JPEG's RGB -> (Cb, Cr) in 16-bit fixed point, as the kernel's search starts from it."""
    r, g, b = (rgb[:, k] for k in range(3))
    half = 1 << 15
    cb = np.clip(128 + ((-11059 * r - 21709 * g + 32768 * b + half) >> 16), 0, 255)
    cr = np.clip(128 + ((32768 * r - 27439 * g - 5329 * b + half) >> 16), 0, 255)
    return cb, cr


def census(path: Path) -> dict:
    img = read_media(path.read_bytes()).samples.astype(np.int64)
    row = {"file": path.name, "set": path.parent.name, "pixels": img.shape[0] * img.shape[1]}
    out, status = img.copy(), np.empty(img.shape[:2], np.uint8)
    row["decoded_jpeg"] = img.shape[2] >= 3 and kernel.preimages_fast(img, out, status) == 0
    t = time.perf_counter()
    ycc = jpeg_colour.encode_chunk(img) if row["decoded_jpeg"] else None
    row["encode_s"] = round(time.perf_counter() - t, 3)
    if row["decoded_jpeg"]:
        clamped = status == kernel.STATUS_CLAMPED
        colours = np.unique(img[clamped][:, :3], axis=0)
        row.update(clamped_share=round(float(clamped.mean()), 4), clamped_colours=len(colours),
                   converted=ycc is not None)
        if ycc is not None and clamped.any():
            cb0, cr0 = _forward_estimate(img[clamped][:, :3])
            row["farthest_ring"] = int(np.max(np.abs(ycc[clamped][:, 1] - cb0) + np.abs(ycc[clamped][:, 2] - cr0)))
    print(json.dumps(row), flush=True)
    return row


def ablation(path: Path) -> dict:
    media = read_media(path.read_bytes())
    row = {"file": path.name, "dims": media.dims}
    for key, stored in (("classic", False), ("classic as stored", True)):
        real = jpeg_colour.encode_chunk
        if stored:
            jpeg_colour.encode_chunk = lambda img: None
        try:
            blob = container.dumps([api.encode_media(media, path.name, "classic")])
        finally:
            jpeg_colour.encode_chunk = real
        back = api.decode_member(container.loads(blob)[1][0])
        if not np.array_equal(back.samples, media.samples):
            sys.exit(f"{path.name}: classic ({key}) did not decode to the original pixels")
        row[key] = len(blob)
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "jpeg_colour.json")
    args = ap.parse_args()
    photos = sorted((args.data / "images" / "train").glob("*.png")) + sorted((args.data / "images" / "valid").glob("*.png"))
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(census, photos))
        valid = [p for p in photos if p.parent.name == "valid"]
        sizes = list(pool.map(ablation, valid))
    summary = {}
    for group in ("train", "valid"):
        mine = [r for r in rows if r["set"] == group]
        jpeg = [r for r in mine if r["decoded_jpeg"]]
        summary[group] = {"photos": len(mine), "decoded_jpegs": len(jpeg),
                          "decoded_jpegs_by_source": sorted({r["file"].split("_")[0] for r in jpeg}),
                          "converted": sum(r.get("converted", False) for r in jpeg),
                          "most_clamped_colours": max((r["clamped_colours"] for r in jpeg), default=0),
                          "farthest_ring": max((r.get("farthest_ring", 0) for r in jpeg), default=0)}
    by_source = {}
    for source in sorted({r["file"].split("_")[0] for r in sizes}):
        mine = [r for r in sizes if r["file"].startswith(source)]
        by_source[source] = round(sum(r["classic"] for r in mine) / sum(r["classic as stored"] for r in mine), 4)
    summary["valid classic / classic as stored"] = {
        "total": round(sum(r["classic"] for r in sizes) / sum(r["classic as stored"] for r in sizes), 4), **by_source}
    result = {"command": "python benchmarks/jpeg_colour.py", "limits": {
        "MAX_SEARCHED_COLOURS": jpeg_colour.MAX_SEARCHED_COLOURS, "SEARCH_RING": jpeg_colour.SEARCH_RING},
        "summary": summary, "census": rows, "classic": sizes}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
