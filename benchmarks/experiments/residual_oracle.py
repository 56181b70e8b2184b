"""Is ols-cascade's residual coder, or its learning speed, what keeps it behind sac? Its coded
bits against simple residual models on the same final residuals, each with a scale that is a
causal running mean of |residual| (what a per-sample coder can know): a discretized Laplace (also
with the mean over a centred window of 65 samples: what a coder that sees later samples' coarse
magnitudes, like sac's bit-plane coder, can approach), and with --shapes a discretized Gaussian
and logistic (each at 0.9, 1.0 and 1.1 times the scale that matches the running mean; the best
of the three is reported). With --second-pass, each recording is also coded twice in a row and
the second pass's bits are compared with the first's: what a model that had already learned the
recording would save (an upper bound on what faster learning could give).

    PYTHONPATH=. python benchmarks/experiments/residual_oracle.py [GLOB] [--level 2] [--every K]
        [--shapes] [--second-pass] [--partner] [--out FILE.json]

Default GLOB: the drum kit of audio/train (first 200,000 frames of each file, any bit depth).
Printed per file: coded / model bits (above 1: the simple model would code smaller). Runs during
issue 14 (level 2, drum kit and sonic-pi files of audio/train): before value maps the centred
model came within 0.3-0.5% of the coded size on cymbals and crashes, where sac coded 5-7%
smaller, so the gap there was not the residual coder (sac's sparse-PCM map was most of it on
those files); with maps, Crash-Softest codes at 0.944 of the causal and 0.947 of the centred
model's bits. On the 24-bit tagelharpa (every 10th file of audio/train, level 2:
`results/residual_oracle_tagelharpa.json`) neither the residual coder nor the learning speed is
where the missing 0.8% against WavPack is: the coded bits are 1.0012 times a causal Laplace's,
1.0006 a Gaussian's, 1.0037 the centred Laplace's, and a second pass over an already learned
recording codes 0.39% smaller. The logistic did code 0.53% smaller than the count tables (1.0053
in the summary; the best of three scales a file), which led to version 5's logistic row
(logistic_share.py). Nor does the other channel's residual size help (--partner, the same
files: `results/residual_oracle_tagelharpa_partner.json`): mixing a fast mean of the partner's
|residual|, its same-frame sample included where it is coded first, into the causal Laplace's
scale makes it 0.16%, 0.71% and 1.7% larger at weights 0.25, 0.5 and 0.75, so the count tables'
contexts have nothing to gain from it there.
"""

import argparse
import glob
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from neuralzip.models import ols_audio
from neuralzip.models.base import Signal

kern = ols_audio.kern  # the kernels' build the model uses

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def residuals(x: np.ndarray, rate: int, bits: int, level: int) -> list[np.ndarray]:
    """The final residuals of every lane and channel (one chunk, as the encoder's first pass)."""
    frames, nch = x.shape
    lane = ols_audio.lane_frames(frames, rate, level)
    lengths = np.array([min(lane, frames - a) for a in range(0, frames, lane)], np.int64)
    st = kern.LaneState(ols_audio.config(level, rate), lengths=lengths, nch=nch, bits=bits,
                        **ols_audio.coder_tables(ols_audio.nbk_of(bits)))
    st.load(x)
    sym = np.zeros((len(lengths), nch, st.lane), np.uint8)
    cls = np.zeros((len(lengths), nch, kern.NCTX, st.lane), np.uint8)
    res = np.zeros((len(lengths), nch, st.lane), np.int64)
    kern.model_lanes(st, sym, cls, res)
    return [res[k, c, :lengths[k]] for k in range(len(lengths)) for c in range(nch)]


def laplace_bits(r: np.ndarray, scale: np.ndarray) -> float:
    lam = np.exp(-1.0 / np.maximum(scale, 0.3))
    p = (1 - lam) / (1 + lam) * lam ** np.abs(r)
    return float(-np.log2(np.maximum(p, 1e-300)).sum())


_ERF = np.frompyfunc(math.erf, 1, 1)


def gauss_bits(r: np.ndarray, scale: np.ndarray) -> float:
    """A discretized Gaussian of standard deviation `scale`."""
    s = np.maximum(scale, 0.3) * math.sqrt(2.0)
    p = 0.5 * (_ERF((r + 0.5) / s) - _ERF((r - 0.5) / s)).astype(np.float64)
    return float(-np.log2(np.maximum(p, 1e-300)).sum())


def logistic_bits(r: np.ndarray, scale: np.ndarray) -> float:
    s = np.maximum(scale, 0.3)
    p = 1 / (1 + np.exp(-(r + 0.5) / s)) - 1 / (1 + np.exp(-(r - 0.5) / s))
    return float(-np.log2(np.maximum(p, 1e-300)).sum())


# shape -> (its bits, the scale whose mean |residual| is 1)
SHAPES = {"gaussian": (gauss_bits, math.sqrt(math.pi / 2)), "logistic": (logistic_bits, 1 / (2 * math.log(2)))}


def causal_mean(a: np.ndarray, shift: int = 4) -> np.ndarray:
    out, m, rate = np.empty(len(a)), 16.0, 2.0 ** -shift
    for i, v in enumerate(a):
        out[i] = m
        m += rate * (v - m)
    return out


PARTNER_WEIGHTS = (0.25, 0.5, 0.75)


def partner_bits(rs: list[np.ndarray], nch: int, weight: float) -> float:
    """A causal Laplace whose scale also hears the other channel: for each channel, its own causal
    mean of |residual| mixed (by `weight`) with a fast causal mean of the partner channel's
    |residual| that includes the partner's sample of the same frame where the partner is coded
    first (channel c reads channel c - 1; the first channel reads the last one's previous frames).
    A coder can know all of this when it codes the sample."""
    total = 0.0
    for k in range(0, len(rs), nch):
        lane = rs[k:k + nch]
        for c, r in enumerate(lane):
            own = causal_mean(np.abs(r).astype(float))
            if nch < 2 or weight == 0:
                total += laplace_bits(r, own)
                continue
            p = np.abs(lane[c - 1] if c else lane[-1]).astype(float)
            fast = causal_mean(p, shift=2)  # before sample t: partner samples < t
            if c:  # the partner's sample t is coded before this one
                fast = fast + 0.25 * (p - fast)
            total += laplace_bits(r, (1 - weight) * own + weight * fast)
    return total


def read(path: str) -> tuple[np.ndarray, int, int]:
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "PCM_U8": 8, "PCM_S8": 8}[sf.info(path).subtype]
    x, rate = sf.read(path, dtype="int32", always_2d=True, frames=200000)
    return (x.astype(np.int64) >> (32 - bits)), rate, bits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pattern", nargs="?", default=str(DATA / "audio" / "train" / "hydrogen_gmrockkit" / "*.flac"))
    ap.add_argument("--level", type=int, default=2)
    ap.add_argument("--every", type=int, default=1, help="every K-th file of the pattern's, sorted")
    ap.add_argument("--shapes", action="store_true", help="also a Gaussian and a logistic residual")
    ap.add_argument("--second-pass", action="store_true", help="also code each recording twice in a row")
    ap.add_argument("--partner", action="store_true",
                    help="also a causal Laplace whose scale hears the other channel (PARTNER_WEIGHTS)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    totals: dict = {}
    rows = []
    for f in sorted(glob.glob(a.pattern))[::a.every]:
        x, rate, bits = read(f)
        codec = ols_audio.OlsCascadeCodec(a.level)
        coded = codec.likelihood(x, Signal("audio", x.shape, bits, rate))[1]
        rs = residuals(x, rate, bits, a.level)
        means = [causal_mean(np.abs(r).astype(float)) for r in rs]
        row = {"file": Path(f).name, "coded_bits": coded,
               "laplace_causal": sum(laplace_bits(r, m) for r, m in zip(rs, means)),
               "laplace_centred": sum(laplace_bits(r, np.convolve(np.abs(r).astype(float), np.ones(65) / 65, "same"))
                                      for r in rs)}
        if a.shapes:
            for name, (bits_of, unit) in SHAPES.items():
                row[name + "_causal"] = min(sum(bits_of(r, m * unit * k) for r, m in zip(rs, means)) for k in (0.9, 1.0, 1.1))
        if a.partner and x.shape[1] > 1:
            for w in PARTNER_WEIGHTS:
                row[f"laplace_partner{round(100 * w)}_causal"] = partner_bits(rs, x.shape[1], w)
        if a.second_pass:
            twice = np.concatenate([x, x])
            per = codec.bits_per_dim(twice, Signal("audio", twice.shape, bits, rate))
            row["first_pass"], row["second_pass"] = float(per[:len(x)].sum()), float(per[len(x):].sum())
        rows.append(row)
        models = [k for k in row if k.endswith(("_causal", "_centred"))]  # the simple models' bits
        for k, v in row.items():
            if k != "file":
                totals[k] = totals.get(k, 0.0) + v
        print(f"{row['file']:32s}", "  ".join(f"coded/{k} {coded / v:.4f}" for k, v in row.items() if k in models),
              f"second/first pass {row['second_pass'] / row['first_pass']:.4f}" if a.second_pass else "", flush=True)
    if not rows:
        raise SystemExit(f"no recordings match {a.pattern}")
    summary = {f"coded_vs_{k}": round(totals["coded_bits"] / v, 5) for k, v in totals.items() if k in models}
    if a.second_pass:
        summary["second_vs_first_pass"] = round(totals["second_pass"] / totals["first_pass"], 5)
    print("total", summary)
    if a.out:
        a.out.write_text(json.dumps({"command": "python benchmarks/experiments/residual_oracle.py " + " ".join(
            sys.argv[1:]), "level": a.level, "summary": summary, "files": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
