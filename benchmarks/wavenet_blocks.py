"""The wavenet encoder's choice of LPC block length, judged on files its weights never saw.

    python benchmarks/wavenet_blocks.py [--data ../shared/data]

1. The tuning tenth of audio/train (every 10th file of each source, kept out of the weights'
   training): every file coded (in process, the shipped weights) with each block length the
   encoder weighs (models.wavenet.BLOCK_CHOICES times the rate's usual block). Per source and in
   total, against the usual block alone: the encoder's choice (choose_block's estimate) and the
   best candidate per file (an oracle that codes every candidate).
2. The speech and Rhodes recordings of audio/valid (the families benchmark's): the blocks chosen
   and what the stored plans cost, in bits per sample and as a share of the payload.
-> benchmarks/results/wavenet_blocks.json
"""

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from families import AUDIO_SOURCES  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import get_codec, wavenet  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.train.classic_prior import training_files  # noqa: E402
from neuralzip.train.image import split_files  # noqa: E402


def load(path: Path):
    media = read_media(path.read_bytes(), str(path))
    signal = Signal("audio", media.samples.shape, media.bits, int(media.meta.get("rate", 0)))
    return media.samples, signal, np.asarray(media.samples, np.int64) + (1 << (media.bits - 1))


def coded_bytes(codec, samples, signal, block: int) -> int:
    """The payload with every recording forced to LPC blocks of `block` samples."""
    choose = wavenet.choose_block
    wavenet.choose_block = lambda values, bits, rate: block
    try:
        return sum(len(c) for c in codec.encode(samples, signal).chunks)
    finally:
        wavenet.choose_block = choose


def tuning(codec, data: Path) -> dict:
    files = split_files(training_files(data / "audio" / "train", "audio"))[1]
    sums = collections.defaultdict(collections.Counter)
    for f in files:
        samples, signal, values = load(f)
        if signal.bits > wavenet.MAX_BITS:
            continue
        usual = wavenet.block_size(signal.rate)
        sizes = {int(usual * m): coded_bytes(codec, samples, signal, int(usual * m)) for m in wavenet.BLOCK_CHOICES}
        chosen = wavenet.choose_block(values, signal.bits, signal.rate)
        for key, size in (("usual", sizes[usual]), ("chosen", sizes[chosen]), ("oracle", min(sizes.values()))):
            sums[f.parent.name][key] += size
            sums["all"][key] += size
        print(f.parent.name, f.name, sizes, "chosen", chosen, flush=True)
    return {src: {"files_bytes_usual_block": c["usual"],
                  "chosen_vs_usual_pct": round(100 * (c["chosen"] / c["usual"] - 1), 3),
                  "oracle_vs_usual_pct": round(100 * (c["oracle"] / c["usual"] - 1), 3)} for src, c in sums.items()}


def valid(codec, data: Path) -> dict:
    out = {}
    for source in AUDIO_SOURCES:
        blocks, plan_bytes, payload, samples_n = collections.Counter(), 0, 0, 0
        for f in sorted((data / "audio" / "valid" / source).glob("*.flac")):
            samples, signal, _ = load(f)
            enc = codec.encode(samples, signal)
            blocks[enc.params["block"]] += 1
            plan_bytes += sum(4 + int.from_bytes(c[:4], "little") for c in enc.chunks)
            payload += sum(len(c) for c in enc.chunks)
            samples_n += samples.size
        out[source] = {"files_per_block": {str(k): v for k, v in sorted(blocks.items())},
                       "plan_bits_per_sample": round(8 * plan_bytes / samples_n, 4),
                       "plan_share_of_payload": round(plan_bytes / payload, 4)}
        print(source, json.dumps(out[source]), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    args = ap.parse_args()
    codec = get_codec("wavenet", "audio")
    result = {"command": "python benchmarks/wavenet_blocks.py", "weights": codec.weights_hash,
              "block_choices": list(wavenet.BLOCK_CHOICES),
              "tuning_files_of_audio_train": tuning(codec, args.data), "valid": valid(codec, args.data)}
    out = HERE / "results" / "wavenet_blocks.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["tuning_files_of_audio_train"]["all"]))


if __name__ == "__main__":
    main()
