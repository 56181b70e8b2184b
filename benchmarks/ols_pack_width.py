"""What a pack's width (lanes decoded in lockstep) costs ols-cascade's encoder and decoder, in one
process, per sample: short speech clips of audio/valid (as benchmarks/datasets.py cuts them) coded
as one pack of N lanes.

    python benchmarks/ols_pack_width.py [--lanes 8 16 32 64 128] [--repeat 3]
    -> benchmarks/results/ols_pack_width.json

For each width: the encoder (its model pass, then the count tables and the coder), its model pass
alone, and the decoder (the lockstep model with each symbol range-decoded in the kernel). Best of
--repeat runs, nanoseconds per sample. (Results before the kernel decoded its own symbols also had
"decode_without_coder": the lockstep model with the coder replaced by a stand-in.)
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from datasets import cut_clips

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from neuralzip.coding.stream import TeeCoder  # noqa: E402
from neuralzip.kernels import dispatch  # noqa: E402
from neuralzip.models.ols_audio import OlsCascadeCodec, coder_tables, config, nbk_of  # noqa: E402


def pack_costs(kern, clips: list[np.ndarray], rate: int, repeat: int) -> dict:
    order = OlsCascadeCodec._lane_order([len(c) for c in clips])  # as a pack orders its lanes
    lengths = np.array([len(clips[i]) for i in order], np.int64)
    cfg, tables = config(1, rate), coder_tables(nbk_of(16))

    def loaded():
        st = kern.LaneState(cfg, lengths=lengths, nch=1, bits=16, **tables)
        for k, i in enumerate(order):
            st.s[k, 0, kern.HIST:kern.HIST + lengths[k]] = clips[i]
        return st

    best: dict[str, float] = {}

    def keep(name, seconds):
        best[name] = min(best.get(name, np.inf), seconds)

    for _ in range(repeat):
        st = loaded()
        t = time.perf_counter()
        data, _ = OlsCascadeCodec._code_state(st, lengths, 1, TeeCoder, None)
        keep("encode", time.perf_counter() - t)
        st = loaded()
        sym = np.zeros((len(clips), 1, st.lane), np.uint8)
        t = time.perf_counter()
        kern.model_lanes(st, sym, np.zeros((len(clips), 1, kern.NCTX, st.lane), np.uint8))
        keep("encoder_model_pass", time.perf_counter() - t)
        st, words = OlsCascadeCodec._chunk_state(cfg, data, lengths, int(lengths[0]), 1, 16, tables)
        t = time.perf_counter()
        kern.decode_lanes(st, words)
        keep("decode", time.perf_counter() - t)
        assert all(np.array_equal(st.s[k, 0, kern.HIST:kern.HIST + lengths[k]], clips[i]) for k, i in enumerate(order))
    samples = int(lengths.sum())
    return {k: round(v * 1e9 / samples, 1) for k, v in best.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ols_pack_width.json")
    args = ap.parse_args()
    import soundfile as sf

    kern = dispatch.ols_audio()
    with tempfile.TemporaryDirectory() as tmp:
        paths = cut_clips(args.data / "audio" / "valid" / "asterisk_allison_8k", max(args.lanes), Path(tmp), args.seed)
        clips = [sf.read(p, dtype="int16")[0].astype(np.int32) for p in paths]
        rate = sf.info(paths[0]).samplerate
    rows = {}
    for n in args.lanes:
        rows[n] = pack_costs(kern, clips[:n], rate, args.repeat)
        print(n, "lanes, ns per sample:", rows[n], flush=True)
    result = {"command": "python benchmarks/ols_pack_width.py " + " ".join(sys.argv[1:]),
              "kernels": kern.__name__, "unit": "nanoseconds per sample, best of repeat, one process",
              "lanes": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
