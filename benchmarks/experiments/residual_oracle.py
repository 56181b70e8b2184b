"""Is ols-cascade's residual coder what keeps it behind sac? Its coded bits against two simple
residual models on the same final residuals: a discretized Laplace whose scale is a causal
running mean of |residual| (what a per-sample coder can know), and one whose scale is the mean
of |residual| over a centred window of 65 samples (what a coder that sees later samples' coarse
magnitudes, like sac's bit-plane coder, can approach).

    PYTHONPATH=. python benchmarks/experiments/residual_oracle.py [GLOB] [--level 2]

Default GLOB: the drum kit of audio/train (16-bit, first 200,000 frames of each file). Printed
per file: coded / causal-Laplace and coded / centred-Laplace bits (above 1: the simple model
would code smaller). Runs during issue 14 (level 2, drum kit and sonic-pi files of audio/train):
before value maps the centred model came within 0.3-0.5% of the coded size on cymbals and
crashes, where sac coded 5-7% smaller, so the gap there was not the residual coder (sac's
sparse-PCM map was most of it on those files); with maps, Crash-Softest codes at 0.944 of the
causal and 0.947 of the centred model's bits.
"""

import argparse
import glob
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
                        prior=ols_audio.prior(ols_audio.nbk_of(bits)))
    st.load(x)
    sym = np.zeros((len(lengths), nch, st.lane), np.uint8)
    cls = np.zeros((len(lengths), nch, kern.NTAB, st.lane), np.uint8)
    res = np.zeros((len(lengths), nch, st.lane), np.int64)
    kern.model_lanes(st, sym, cls, res)
    return [res[k, c, :lengths[k]] for k in range(len(lengths)) for c in range(nch)]


def laplace_bits(r: np.ndarray, scale: np.ndarray) -> float:
    lam = np.exp(-1.0 / np.maximum(scale, 0.3))
    p = (1 - lam) / (1 + lam) * lam ** np.abs(r)
    return float(-np.log2(np.maximum(p, 1e-300)).sum())


def causal_mean(a: np.ndarray, shift: int = 4) -> np.ndarray:
    out, m, rate = np.empty(len(a)), 16.0, 2.0 ** -shift
    for i, v in enumerate(a):
        out[i] = m
        m += rate * (v - m)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pattern", nargs="?", default=str(DATA / "audio" / "train" / "hydrogen_gmrockkit" / "*.flac"))
    ap.add_argument("--level", type=int, default=2)
    a = ap.parse_args()
    for f in sorted(glob.glob(a.pattern)):
        if sf.info(f).subtype != "PCM_16":
            continue
        x, rate = sf.read(f, dtype="int16", always_2d=True, frames=200000)
        x = x.astype(np.int64)
        coded = ols_audio.OlsCascadeCodec(a.level).likelihood(x, Signal("audio", x.shape, 16, rate))[1]
        rs = residuals(x, rate, 16, a.level)
        causal = sum(laplace_bits(r, causal_mean(np.abs(r).astype(float))) for r in rs)
        centred = sum(laplace_bits(r, np.convolve(np.abs(r).astype(float), np.ones(65) / 65, "same")) for r in rs)
        print(f"{Path(f).name:32s} coded/causal {coded / causal:.3f}  coded/centred {coded / centred:.3f}", flush=True)


if __name__ == "__main__":
    main()
