"""Figures for the ols-cascade audio model (issue 14), against the current models and the peers.

    apt-get install -y flac wavpack        # the peers (benchmarks/setup.sh installs them too)
    python benchmarks/ols_audio.py [--data ../shared/data] [--skip-speed] [--levels 1,2]

* size: every recording of audio/valid (per source = its folder) through ols-cascade at each
  level, `lpc-nlms-mlp` (0.1.0's `wavenet`) and `classic` (whole .nz containers from api.compress_bytes, every one decoded
  back and compared), `flac -8 --no-padding --no-seektable` and `wavpack -hh -x3` (whole files);
  bits per sample in total and per source, and each neuralzip row's ratio to FLAC and WavPack;
* speed: compress and decompress of the 2-minute 44.1 kHz stereo 16-bit concatenation of valid
  clips (benchmarks/audio_model.py's), whole processes through the CLI (median of 3;
  `--model ols-cascade --level L`). CPU seconds (user + sys of the process) are reported beside wall
  seconds: this machine is shared, and wall time there depends on the neighbours;
* lane length: exact bits of level 1 on the 2-minute file with lanes of 1, 2, 4 s and the default;
* vs_sac: each row's bytes over sac --normal's on the same files (sac's bytes from
  results/sac_audio_valid.json, benchmarks/sac_peer.py's run). Both carry a per-file overhead:
  the .nz container's own bytes (header, member description and trailer: about 130 bytes a file
  in format 3, 320 in format 2; "container_share" in the totals) and sac's header (a 100-sample silent file is 351 bytes).
Fails if a peer is missing: a figure is never estimated. Writes benchmarks/results/ols_audio.json.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from baselines import compile_bytecode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def need(tool: str) -> None:
    if not shutil.which(tool):
        sys.exit(f"benchmark needs `{tool}` (apt-get install -y flac wavpack); not estimating it")


def peer_bytes(media, tmp: Path) -> dict:
    from neuralzip.peers import write_pcm_wav

    wav = write_pcm_wav(media, tmp / "in.wav")
    out = {}
    subprocess.run(["flac", "-8", "--no-padding", "--no-seektable", "-s", "-f", "-o", str(tmp / "o.flac"), str(wav)],
                   check=True, capture_output=True)
    out["flac"] = (tmp / "o.flac").stat().st_size
    subprocess.run(["wavpack", "-q", "-y", "-hh", "-x3", str(wav), "-o", str(tmp / "o.wv")], check=True,
                   capture_output=True)
    out["wavpack"] = (tmp / "o.wv").stat().st_size
    return out


def sizes(data: Path, levels: list[int], log, earlier: dict | None = None) -> tuple[list, list]:
    """`earlier` ({file: row} of an earlier run): the peers' and the other models' figures are taken
    from it and only ols-cascade runs (--ols-only, when only ols-cascade changed)."""
    from neuralzip import api, container
    from neuralzip.media.detect import read_media

    rows = []
    ours = [f"ols-cascade-{lv}" for lv in levels]
    codecs = ours + ["lpc-nlms-mlp", "classic"]
    files = sorted((data / "audio" / "valid").glob("*/*"))
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            raw = path.read_bytes()
            media = read_media(raw, str(path))
            row = {"file": str(path.relative_to(data)), "source": path.parent.name, "samples": int(media.samples.size),
                   "bits": media.bits, "channels": int(media.samples.shape[1]), "rate": int(media.meta["rate"])}
            if earlier is not None:
                old = earlier[row["file"]]
                row.update({k: v for k, v in old.items() if k not in row and not k.startswith("ols-cascade-")})
            else:
                row.update(peer_bytes(media, Path(tmp)))
            for name in codecs if earlier is None else ours:
                model, _, level = name.partition("ols-cascade-")
                model, level = ("ols-cascade", int(level)) if level else (name, 1)
                t = time.perf_counter()
                blob = api.compress_bytes(raw, path.name, model, level=level)
                row[name] = len(blob)
                row[name + "_container"] = len(blob) - sum(len(c) for c in container.loads(blob)[1][0].chunks)
                row[name + "_encode_s"] = round(time.perf_counter() - t, 3)
                [(_, back)] = api.decompress_bytes(blob)
                assert np.array_equal(read_media(back, "x").samples, media.samples), f"{name} {path}: not exact"
            rows.append(row)
            log(f"[{i + 1}/{len(files)}] {row['file']}: " + " ".join(f"{c}={8 * row[c] / row['samples']:.3f}"
                                                                     for c in codecs + ["flac", "wavpack"]))
    return rows, codecs


def totals(rows, codecs) -> dict:
    n = sum(r["samples"] for r in rows)
    out = {}
    for c in codecs + ["flac", "wavpack"]:
        b = sum(r[c] for r in rows)
        out[c] = {"bps": round(8 * b / n, 5)}
    for c in codecs:
        out[c]["vs_flac"] = round(out[c]["bps"] / out["flac"]["bps"], 4)
        out[c]["vs_wavpack"] = round(out[c]["bps"] / out["wavpack"]["bps"], 4)
        if all(c + "_container" in r for r in rows):  # the .nz file's own bytes: header, description, table
            out[c]["container_share"] = round(sum(r[c + "_container"] for r in rows) / sum(r[c] for r in rows), 4)
    return out


def against_sac(rows, codecs, path: Path) -> dict | None:
    """Each neuralzip row's bytes over sac --normal's on the same files, sac's bytes read from
    benchmarks/sac_peer.py's results (sac is slow: it is run there, not here). Where sac's default
    run did not decode exactly (its sparse-PCM mode on 24-bit files) its run without that mode counts."""
    if not path.exists():
        return None
    sac = {}
    for r in json.loads(path.read_text())["rows"]:
        for key in ("sac", "sac_sparse_off"):
            if r.get(key, {}).get("ok"):
                sac[r["file"]] = r[key]["bytes"]
                break
    groups = {"16bit": [r for r in rows if r["bits"] == 16], "24bit": [r for r in rows if r["bits"] == 24]}
    groups.update({s: [r for r in rows if r["source"] == s] for s in sorted({r["source"] for r in rows})})
    out = {"sac_results": str(path.relative_to(HERE.parent))}
    for g, part in groups.items():
        part = [r for r in part if r["file"] in sac]
        if part:
            total = sum(sac[r["file"]] for r in part)
            out[g] = dict({c: round(sum(r[c] for r in part) / total, 4) for c in codecs}, files=len(part))
    return out


def cpu_of(cmd: list[str], env=None) -> tuple[float, float]:
    """(wall, cpu) seconds of one whole process (cpu: user + sys of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(cmd: list[str], repeat: int = 3, env=None) -> dict:
    runs = [cpu_of(cmd, env) for _ in range(repeat)]
    return {"wall_s": round(float(np.median([r[0] for r in runs])), 3),
            "cpu_s": round(float(np.median([r[1] for r in runs])), 3)}


def speed(data: Path, levels: list[int], log, peers: bool = True) -> dict:
    from audio_model import two_minutes

    out = {"input": "2-minute 44.1 kHz stereo 16-bit concatenation of valid clips (benchmarks/audio_model.py)",
           "how": "whole processes through the CLI, median of 3",
           "load_average_before": os.getloadavg()[0], "cores": os.cpu_count()}
    from neuralzip.kernels import dispatch
    out["ols_kernels"] = dispatch.ols_audio().__name__  # the build a plain run uses on this machine
    py = sys.executable
    nz = [str(Path(py).with_name("neuralzip"))]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "two.wav"
        seconds = two_minutes(data, wav)
        out["seconds"] = seconds
        f = timed(["flac", "-8", "--no-padding", "--no-seektable", "-s", "-f", str(wav), "-o", str(Path(tmp) / "t.flac")])
        out["flac_8"] = dict(f, bytes=(Path(tmp) / "t.flac").stat().st_size)
        # ols-cascade runs its AVX kernels where the CPU has them; level 1 also with the generic
        # build (NEURALZIP_GENERIC_KERNELS=1: what a CPU without AVX runs), which writes the same bytes
        generic = dict(os.environ, NEURALZIP_GENERIC_KERNELS="1")
        runs = [(f"ols-cascade-{lv}", ["--model", "ols-cascade", "--level", str(lv)], None) for lv in levels]
        if 1 in levels:
            runs.insert(1, ("ols-cascade-1-generic-kernels", ["--model", "ols-cascade", "--level", "1"], generic))
        if peers:
            runs += [("lpc-nlms-mlp", ["--model", "lpc-nlms-mlp"], None), ("classic", ["--model", "classic"], None)]
        for name, options, env in runs:
            nzf, back = Path(tmp) / "t.nz", Path(tmp) / "back.wav"
            comp = timed(nz + ["compress", "-q", "--force"] + options + [str(wav), "-o", str(nzf)], env=env)
            dec = timed(nz + ["decompress", "-q", "--force", str(nzf), "-o", str(back)], env=env)
            assert back.read_bytes() == wav.read_bytes(), f"{name}: the 2-minute file did not come back identical"
            r = {"bytes": nzf.stat().st_size, "bps": round(8 * nzf.stat().st_size / (seconds * 44100 * 2), 5),
                 "compress": comp, "decompress": dec,
                 "compress_x_realtime": round(seconds / comp["wall_s"], 2),
                 "decompress_x_realtime": round(seconds / dec["wall_s"], 2),
                 "compress_x_realtime_cpu": round(seconds / comp["cpu_s"], 2),
                 "decompress_x_realtime_cpu": round(seconds / dec["cpu_s"], 2)}
            out[name] = r
            log(f"speed {name}: {r}")
    out["load_average_after"] = os.getloadavg()[0]
    return out


def lane_cost(data: Path, log) -> dict:
    """Exact bits of level 1 on the 2-minute file with lanes of several lengths."""
    from audio_model import two_minutes
    from neuralzip.media.detect import read_media
    from neuralzip.models import ols_audio
    from neuralzip.models.base import Signal

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "two.wav"
        two_minutes(data, wav)
        media = read_media(wav.read_bytes(), str(wav))
    signal = Signal("audio", media.samples.shape, media.bits, 44100)
    out = {}
    default = ols_audio.lane_frames
    try:
        for label, secs in (("1s", 1), ("2s", 2), ("4s", 4), ("default", None), ("whole", 120)):
            if secs is not None:
                ols_audio.lane_frames = lambda frames, rate, level, s=secs: min(frames, s * rate)
            else:
                ols_audio.lane_frames = default
            lane = ols_audio.lane_frames(media.samples.shape[0], 44100, 1)
            bits = ols_audio.OlsCascadeCodec(1).likelihood(media.samples, signal)[1]
            out[label] = {"lane_frames": lane, "nll_bps": round(bits / media.samples.size, 5)}
            log(f"lanes {label}: {out[label]}")
    finally:
        ols_audio.lane_frames = default
    return out


def main():
    compile_bytecode()  # time the package as installed (baselines.compile_bytecode)
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-lanes", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="re-measure speed into the existing results file")
    ap.add_argument("--ols-only", action="store_true",
                    help="sizes and speed of ols-cascade only; every other figure from the existing results file")
    ap.add_argument("--only-ols-speed", action="store_true",
                    help="with --speed-only: re-measure ols-cascade only, keeping the other models' speed rows")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ols_audio.json")
    args = ap.parse_args()
    need("flac")
    need("wavpack")
    levels = [int(v) for v in args.levels.split(",")]

    def log(msg):
        print(msg, flush=True)

    if args.speed_only:
        result = json.loads(args.out.read_text())
        kept = {k: v for k, v in result.get("speed_2min", {}).items() if k in ("lpc-nlms-mlp", "classic")}
        result["speed_2min"] = speed(args.data, levels, log, peers=not args.only_ols_speed)
        if args.only_ols_speed:
            result["speed_2min"].update(kept, peers_measured_earlier=sorted(kept))
        result["speed_command"] = "python benchmarks/ols_audio.py " + " ".join(sys.argv[1:])
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return
    result = {"command": "python benchmarks/ols_audio.py " + " ".join(sys.argv[1:])}
    before = json.loads(args.out.read_text()) if args.ols_only else None
    rows, codecs = sizes(args.data, levels, log, None if before is None else {r["file"]: r for r in before["rows"]})
    result["files"] = len(rows)
    result["samples"] = sum(r["samples"] for r in rows)
    result["totals"] = totals(rows, codecs)
    result["totals_16bit"] = totals([r for r in rows if r["bits"] == 16], codecs)
    result["totals_24bit"] = totals([r for r in rows if r["bits"] == 24], codecs)
    result["per_source"] = {s: totals([r for r in rows if r["source"] == s], codecs)
                            for s in sorted({r["source"] for r in rows})}
    result["vs_sac"] = against_sac(rows, codecs, HERE / "results" / "sac_audio_valid.json")
    log(json.dumps({k: result[k] for k in ("totals", "totals_16bit", "totals_24bit", "per_source", "vs_sac")}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(result, rows=rows), indent=1) + "\n")
    if not args.skip_lanes:
        result["lane_length"] = lane_cost(args.data, log)
        args.out.write_text(json.dumps(dict(result, rows=rows), indent=1) + "\n")
    if not args.skip_speed:
        result["speed_2min"] = speed(args.data, levels, log, peers=not args.ols_only)
        if args.ols_only:
            kept = {k: v for k, v in before.get("speed_2min", {}).items() if k in ("lpc-nlms-mlp", "classic")}
            result["speed_2min"].update(kept, peers_measured_earlier=sorted(kept))
    result["rows"] = rows
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
