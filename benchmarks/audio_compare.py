"""Exact-model bits per sample on audio/valid, per source: classic, the lpc-nlms-mlp cascade alone
(learned stage off) and the full lpc-nlms-mlp model. In-process, no coding: quick enough to compare
variants of the model (edit a constant in neuralzip/models/lpc_nlms_mlp.py, rerun).

    python benchmarks/audio_compare.py [--data ../shared/data] [--weights FILE]
    -> benchmarks/results/audio_compare.txt
"""

import argparse
from pathlib import Path

import numpy as np

from neuralzip.media.detect import read_media
from neuralzip.models.base import Signal
from neuralzip.models.classic_audio import ClassicAudioCodec
from neuralzip.models.lpc_nlms_mlp import LpcNlmsMlpCodec

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--weights", help="an lpc-nlms-mlp weights file (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "audio_compare.txt")
    args = ap.parse_args()
    codecs = {"classic": ClassicAudioCodec(), "cascade": LpcNlmsMlpCodec(args.weights, learned=False),
              "full": LpcNlmsMlpCodec(args.weights)}
    totals = {}
    for f in sorted(p for p in (args.data / "audio" / "valid").rglob("*") if p.suffix in (".wav", ".flac")):
        media = read_media(f.read_bytes(), str(f))
        signal = Signal("audio", media.samples.shape, media.bits, int(media.meta.get("rate", 0)))
        row = totals.setdefault(f.parent.name, np.zeros(1 + len(codecs)))
        row[0] += media.samples.size
        for i, codec in enumerate(codecs.values()):
            row[1 + i] += codec.likelihood(media.samples, signal)[1]
    totals["TOTAL"] = sum(totals.values())
    lines = [f"{'source':24s} " + " ".join(f"{n:>9s}" for n in codecs) + "  full/classic"]
    for src, v in totals.items():
        lines.append(f"{src:24s} " + " ".join(f"{b / v[0]:9.4f}" for b in v[1:]) + f"  {v[3] / v[1]:.4f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.write_text("command: python benchmarks/audio_compare.py (exact-model bits per sample)\n" + text)


if __name__ == "__main__":
    main()
