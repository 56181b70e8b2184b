"""Where the lpc-nlms-mlp decoder's time goes: cProfile of decoding the 2-minute stereo file of
audio_model.py in-process (kernels compiled beforehand).

    python benchmarks/profile_lpc_nlms_mlp.py [--data ../shared/data] -> benchmarks/results/profile_lpc_nlms_mlp.txt
"""

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from audio_model import two_minutes  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.models.lpc_nlms_mlp import LpcNlmsMlpCodec  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "profile_lpc_nlms_mlp.txt")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "two_minutes.wav"
        two_minutes(args.data, wav)
        media = read_media(wav.read_bytes(), str(wav))
    signal = Signal("audio", media.samples.shape, media.bits, 44100)
    codec = LpcNlmsMlpCodec()
    enc = codec.encode(media.samples, signal)
    codec.decode(enc.params, enc.chunks, signal)  # compile and warm up
    prof = cProfile.Profile()
    prof.enable()
    codec.decode(enc.params, enc.chunks, signal)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
    text = ("command: python benchmarks/profile_lpc_nlms_mlp.py (decode of 2 minutes of 44.1 kHz stereo)\n"
            + buf.getvalue())
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
