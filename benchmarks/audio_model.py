"""Figures for the learned audio model, lpc-nlms-mlp (issue: smaller than FLAC and WavPack).

    sudo benchmarks/setup.sh            # the peers: flac, wavpack (and /usr/bin/time)
    python benchmarks/audio_model.py [--data ../shared/data] [--jobs 2]

* size: every recording of audio/valid through neuralzip lpc-nlms-mlp and classic
  (whole .nz files, with the float and exact likelihoods) and through
  `flac -8 --no-padding --no-seektable` and `wavpack -hh -x3`, in the same run
  (`neuralzip bench` machinery); totals and per source in bits per sample;
* the learned stage: exact bits with it switched off (every block on the
  cascade alone) and the share of blocks that use it;
* speed: compress and decompress of a 2-minute 44.1 kHz stereo 16-bit
  recording made by concatenating valid clips, whole processes with start-up
  (median of 3), as multiples of real time, with `flac -8` in the same run;
* memory: peak RSS of the same, and of a recording 4x as long (bounded memory).
Fails if a peer is missing: a figure is never estimated. Writes
benchmarks/results/audio_model.json.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import checked_bench, measured, median_wall, need  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402
from neuralzip.models.lpc_nlms_mlp import LpcNlmsMlpCodec  # noqa: E402

MODELS = ["lpc-nlms-mlp", "classic"]
PEERS = ["flac", "wavpack"]


def two_minutes(data: Path, path: Path, repeat: int = 1) -> float:
    """Valid clips at 44.1 kHz, in name order (mono ones on both channels, 24-bit ones cut to
    16 bits), concatenated to 2 minutes (x repeat) of 16-bit stereo. -> duration in seconds."""
    parts = []
    for src in ("sonic_pi_samples", "jrhodes3c_mono", "hydrogen_gmrockkit", "weresax_alto_sax"):
        for f in sorted((data / "audio" / "valid" / src).glob("*.flac")):
            x, rate = sf.read(f, dtype="int32")
            assert rate == 44100
            parts.append(np.stack([x, x], 1) if x.ndim == 1 else x)
    x = (np.concatenate(parts)[:44100 * 120] >> 16).astype(np.int16)
    x = np.concatenate([x] * repeat)
    sf.write(path, x, 44100, subtype="PCM_16")
    return len(x) / 44100


def calibration() -> float:
    """Seconds of a fixed pure-Python loop: this machine's speed varies by tens of percent between
    runs, so timings are reported with it and with flac and classic from the same run."""
    t = time.perf_counter()
    sum(range(10 ** 8))
    return round(time.perf_counter() - t, 3)


def speed(data: Path, neuralzip: list[str]) -> dict:
    need("flac")
    need("/usr/bin/time")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "two_minutes.wav"
        seconds = two_minutes(data, wav)
        nz, back = Path(tmp) / "t.nz", Path(tmp) / "back.wav"

        def wall(cmd):
            return round(median_wall(cmd), 3)

        subprocess.run(neuralzip + ["models"], check=True, capture_output=True)
        out = {"input": "2-minute 44.1 kHz stereo 16-bit concatenation of valid clips", "seconds": seconds,
               "machine_calibration_s": calibration(),
               "flac_8_encode_s": wall(["flac", "-8", "--no-padding", "--no-seektable", "-s", "-f", str(wav), "-o",
                                        str(Path(tmp) / "t.flac")])}
        out["flac_bytes"] = (Path(tmp) / "t.flac").stat().st_size
        for model in MODELS:
            comp = neuralzip + ["compress", "-q", "--force", "--model", model, str(wav), "-o", str(nz)]
            dec = neuralzip + ["decompress", "-q", "--force", str(nz), "-o", str(back)]
            r = {"compress_s": wall(comp), "decompress_s": wall(dec), "bytes": nz.stat().st_size}
            r["compress_x_realtime"] = round(seconds / r["compress_s"], 2)
            r["decompress_x_realtime"] = round(seconds / r["decompress_s"], 2)
            r["compress_peak_rss_mb"] = measured(comp)["peak_rss_mb"]
            r["decompress_peak_rss_mb"] = measured(dec)["peak_rss_mb"]
            assert back.read_bytes() == wav.read_bytes(), f"{model}: the 2-minute file did not come back identical"
            out[model] = r
        long_wav = Path(tmp) / "eight_minutes.wav"
        two_minutes(data, long_wav, repeat=4)
        comp = neuralzip + ["compress", "-q", "--force", "--model", "lpc-nlms-mlp", str(long_wav), "-o", str(nz)]
        dec = neuralzip + ["decompress", "-q", "--force", str(nz), "-o", str(back)]
        out["lpc_nlms_mlp_8_minutes"] = {"compress_peak_rss_mb": measured(comp)["peak_rss_mb"],
                                         "decompress_peak_rss_mb": measured(dec)["peak_rss_mb"]}
        assert back.read_bytes() == long_wav.read_bytes()
    out["machine_calibration_end_s"] = calibration()
    return out


def learned_stage(inputs) -> dict:
    """Exact bits of the model with and without the learned stage, and its share of blocks."""
    full, off = LpcNlmsMlpCodec(), LpcNlmsMlpCodec(learned=False)
    bits_on = bits_off = shared = samples = 0.0
    per_source = {}
    for path, _ in inputs:
        media = read_media(path.read_bytes(), str(path))
        signal = Signal("audio", media.samples.shape, media.bits, int(media.meta["rate"]))
        enc = full.encode(media.samples, signal)
        off_bits = off.likelihood(media.samples, signal)[1]
        src = per_source.setdefault(path.parent.name, [0.0, 0.0, 0.0, 0])
        src[0] += enc.nll_bits
        src[1] += off_bits
        src[2] += enc.params["learned_share"] * media.samples.size
        src[3] += media.samples.size
        bits_on, bits_off = bits_on + enc.nll_bits, bits_off + off_bits
        shared += enc.params["learned_share"] * media.samples.size
        samples += media.samples.size
    return {"nll_bps_with": round(bits_on / samples, 5), "nll_bps_without": round(bits_off / samples, 5),
            "share_of_blocks_sample_weighted": round(shared / samples, 4),
            "per_source": {s: {"nll_bps_with": round(v[0] / v[3], 5), "nll_bps_without": round(v[1] / v[3], 5),
                               "share": round(v[2] / v[3], 4)} for s, v in sorted(per_source.items())}}


def _totals(rows, codecs):
    out = {}
    dims = sum(r["dims"] for r in rows if r["codec"] == "flac")
    for codec in codecs:
        mine = [r for r in rows if r["codec"] == codec]
        out[codec] = {"bps": round(8 * sum(r["bytes"] for r in mine) / dims, 5)}
        if mine[0]["neuralzip"]:
            out[codec]["nll_float_bps"] = round(sum(r["nll_float_bits"] for r in mine) / dims, 5)
            out[codec]["nll_bps"] = round(sum(r["nll_bits"] for r in mine) / dims, 5)
    for codec in codecs:
        for peer in PEERS:
            out[codec][f"vs_{peer}"] = round(out[codec]["bps"] / out[peer]["bps"], 4)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "audio_model.json")
    args = ap.parse_args()
    for tool in ("flac", "wavpack"):
        need(tool)
    neuralzip = [str(Path(sys.executable).with_name("neuralzip"))]
    timing = speed(args.data, neuralzip)
    print(json.dumps(timing, indent=1), flush=True)
    inputs, rows = checked_bench(args.data / "audio" / "valid", MODELS, args.jobs, "samples")
    for r in rows:
        r["source"] = Path(r["file"]).parent.name
    codecs = [f"neuralzip:{m}" for m in MODELS] + PEERS
    totals = _totals(rows, codecs)
    per_source = {s: _totals([r for r in rows if r["source"] == s], codecs)
                  for s in sorted({r["source"] for r in rows})}
    ablation = learned_stage(inputs)
    result = {"command": "python benchmarks/audio_model.py", "files": len(inputs),
              "samples": sum(r["dims"] for r in rows if r["codec"] == "flac"), "totals": totals,
              "per_source": per_source, "learned_stage": ablation, "speed_2min": timing, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"totals": totals, "per_source": per_source, "learned_stage": ablation}, indent=1))


if __name__ == "__main__":
    main()
