"""What each part of ols-cascade's current version (4) gives: the exact model's bits on the 16-bit
recordings of audio/valid (and on the tuning excerpts of audio/train), with one part at a time
put back as it was before it (version 2's whole-sample stages and sign-sign mixer, no RLS stage,
the bias correction, fewer stages, no value maps, unweighted least squares, fewer partner samples,
version 3's level 2 without the second least-squares fit).

    python benchmarks/ols_ablation.py [--levels 1,2] [--root audio/valid]   # -> results/ols_ablation.json

--root names another folder under the data (e.g. audio/train/hydrogen_gmrockkit, the drum kit
whose samples use only some values) and writes results/ols_ablation-<folder>.json.

Likelihood only (ols-cascade's exact integer model, in-process, chunk side bits included); the
containers' own bytes are in results/ols_audio.json. The constants were chosen on audio/train
only (benchmarks/ols_ridge.py's excerpts and files like the hardest ones); valid is measured here.
"""

import argparse
import contextlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from neuralzip.models import ols_audio, value_map
from neuralzip.models.base import Signal

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

LOW2 = ols_audio.LEVELS[2]["low_rate"]  # level 2's entries below LOW_RATE (an override replaces them all)


def low2(**changes) -> dict:
    return dict(LOW2, **changes)


WITHOUT = {  # level -> {part: the LEVELS entries that put it back as it was (version 2), or take it out}
    1: {"the cascade in 1/64 sample units": {"fine_stages": 0},
        "the RLS stage below 32 kHz": {"low_rate": {"lam": 0.998}},
        "the 32-tap stage": {"taps": (448, 16), "mu_shift": (3, 5)},
        "the bias correction off (on, as in version 2)": {"bias_rate": 8},
        "version 3's cascade and mixer (version 2's whole-sample stages and sign-sign mixer, no RLS)":
            {"fine_stages": 0, "mixer": 0, "low_rate": {"lam": 0.998}, "bias_rate": 8},
        "8 partner samples (was 4)": {"n_cross": 4}},
    2: {"the cascade in 1/64 sample units": {"fine_stages": 0},
        "the second least-squares fit (version 4)": {"lam2": 0.0, "low_rate": low2(lam2=0.0)},
        "the RLS stage": {"rls_n": 0, "low_rate": low2(rls_n=0)},
        "the 32-tap stage": {"taps": (1280, 256, 16), "mu_shift": (3, 4, 6)},
        "the bias correction off (on, as in version 2)": {"bias_rate": 8},
        "versions 3 and 4's cascade, mixer and second fit (version 2's whole-sample stages and sign-sign mixer, no RLS stage, no second fit)":
            {"fine_stages": 0, "mixer": 0, "rls_n": 0, "taps": (1280, 256, 16), "mu_shift": (3, 4, 6), "bias_rate": 8,
             "lam2": 0.0, "low_rate": {"lam": 0.998, "taps": (512, 32, 16), "mu_shift": (3, 5, 6)}},
        "weighted least squares": {"irls": 0}},
}


def recordings(root: Path, bits: int = 16):
    for f in sorted(root.rglob("*.flac")):
        if sf.info(f).subtype == f"PCM_{bits}":
            x, rate = sf.read(f, dtype="int32", always_2d=True)
            yield f.parent.name, (x >> (32 - bits)).astype(np.int64), rate


@contextlib.contextmanager
def patched(level: int, overrides: dict, maps: bool = True):
    saved, worth = ols_audio.LEVELS[level], value_map.worth_mapping
    ols_audio.LEVELS[level] = dict(saved, **overrides)
    if not maps:
        value_map.worth_mapping = lambda *a: False
    try:
        yield
    finally:
        ols_audio.LEVELS[level], value_map.worth_mapping = saved, worth


def total_bytes(data: list, level: int) -> float:
    return sum(ols_audio.OlsCascadeCodec(level).likelihood(x, Signal("audio", x.shape, 16, rate))[1]
               for _, x, rate in data) / 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--root", default="audio/valid")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    data = list(recordings(a.data / a.root))
    out_path = a.out or HERE / "results" / ("ols_ablation.json" if a.root == "audio/valid" else
                                            f"ols_ablation-{Path(a.root).name}.json")
    out = {"command": f"python benchmarks/ols_ablation.py --levels {a.levels} --root {a.root}",
           "recordings": len(data),
           "what": f"exact model bytes of the 16-bit recordings of {a.root}; each row puts one part back"}
    for level in [int(v) for v in a.levels.split(",")]:
        rows = {}
        base = total_bytes(data, level)
        rows["current"] = round(base)
        cases = dict(WITHOUT[level])
        for name, overrides in list(cases.items()) + [("value maps", None)]:
            with patched(level, overrides or {}, maps=overrides is not None):
                b = total_bytes(data, level)
            rows[f"without {name}"] = {"bytes": round(b), "vs_current": round(b / base, 4)}
            print(level, name, rows[f"without {name}"], flush=True)
        out[f"level_{level}"] = rows
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", out_path)


if __name__ == "__main__":
    main()
