"""The least-squares ridge of ols-cascade (nu_rel in neuralzip/models/ols_audio.py LEVELS): its cost on
the tuning excerpts of audio/train and on a dual-mono recording (a mono valid clip on both channels),
where too strong a ridge keeps the second channel from copying the first.

    python benchmarks/ols_ridge.py [--ridges 1e-6,1e-9]   # -> results/ols_ridge.json

Likelihood only (the exact integer model's bits), in-process; the tuning excerpts are the ones the
model's constants were chosen on (3 files a source, 150,000 frames each)."""

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from neuralzip.models import ols_audio
from neuralzip.models.base import Signal

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def excerpts(data: Path):
    """(source, int64 samples, rate, bits) of the first 3 files of each audio/train source."""
    for src in sorted(p for p in (data / "audio" / "train").iterdir() if p.is_dir()):
        for f in sorted(list(src.glob("*.flac")) + list(src.glob("*.wav")))[:3]:
            bits = 24 if sf.info(f).subtype == "PCM_24" else 16
            x, rate = sf.read(f, dtype="int32", frames=150000, always_2d=True)
            yield src.name, (x >> (32 - bits)).astype(np.int64), rate, bits


def bits(x, rate, bits_, level, ridge) -> np.ndarray:
    saved = ols_audio.LEVELS[level]
    ols_audio.LEVELS[level] = dict(saved, nu_rel=ridge)
    try:
        return ols_audio.OlsCascadeCodec().at_level(level).bits_per_dim(x, Signal("audio", x.shape, bits_, rate))
    finally:
        ols_audio.LEVELS[level] = saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ridges", default="1e-6,1e-9")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ols_ridge.json")
    a = ap.parse_args()
    ridges = [float(r) for r in a.ridges.split(",")]
    train = list(excerpts(a.data))
    mono = sorted((a.data / "audio" / "valid" / "jrhodes3c_mono").glob("*.flac"))[0]
    m, rate = sf.read(mono, dtype="int16")
    dual = np.stack([m, m], 1).astype(np.int64)
    out = {"command": "python benchmarks/ols_ridge.py --ridges " + a.ridges, "dual_mono_file": mono.name,
           "train_excerpts": len(train), "level_1": {}}
    for r in ridges:
        per = {}
        for src, x, rt, b in train:
            per[src] = per.get(src, 0.0) + float(bits(x, rt, b, 1, r).sum()) / 8
        d = {lv: bits(dual, rate, 16, lv, r).mean(axis=0).round(4).tolist() for lv in (1, 2)}
        out["level_1"][str(r)] = {"train_bytes": round(sum(per.values())), "train_bytes_per_source": {
            k: round(v) for k, v in per.items()}, "dual_mono_bits_per_channel": d}
        print(r, out["level_1"][str(r)], flush=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
