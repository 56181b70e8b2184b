"""sac (public repository slmdev/sac, MIT licence) as a peer for the audio benchmarks (issue 14).

    apt-get install -y flac wavpack libfmt-dev
    benchmarks/build_sac.sh /path/to/sac-source          # -> benchmarks/bin/sac (or set SAC=...)
    python benchmarks/sac_peer.py [--data ../shared/data] [--skip-speed]

sac is optional: `find_sac()` returns None where it is not built, and nothing in neuralzip/ or
tests/ uses this module. Every sac run is `sac --normal --mt-mode=0` (one thread; on a stereo
file the bytes are the same as sac's default two-thread mode) and `sac --decode`, whole
processes, and the decoded samples are compared with the input's. A file sac does not give
back exactly (refused, crashed, timed out, samples differ) is recorded with the reason and
left out of the totals, which cover only the files every coder gave back.

main: every recording of audio/valid (source = its folder, as in benchmarks/ols_audio.py)
through sac, `flac -8 --no-padding --no-seektable` and `wavpack -hh -x3` (neuralzip.peers'
commands), bytes and encode/decode wall and CPU seconds per file; totals for the 16-bit and
the 24-bit files and per source, with sac/FLAC and sac/WavPack ratios and sac's x real time;
24-bit files also through `sac --normal --sparse-pcm=0` (row key sac_sparse_off; see SPARSE_OFF);
and sac on the 2-minute 44.1 kHz stereo 16-bit file of benchmarks/audio_model.py's speed row.
CPU seconds (user + sys of the child) are reported beside wall seconds: the machine is shared.
Writes benchmarks/results/sac_audio_valid.json.
"""

import argparse
import hashlib
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
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from audio_model import two_minutes  # noqa: E402  (the speed row's 2-minute file, made the same way)

SAC_ARGS = ["--normal", "--mt-mode=0"]
# sac 0.7.25's sparse-PCM model breaks 24-bit input: `--normal` writes a file far too small (a 1 s
# 24-bit sax clip: 3.5 kB, FLAC 103 kB) that its decoder never finishes. With it off
# (`--sparse-pcm=0`) 24-bit files come back exact: that is the 24-bit row, named for what it is.
SPARSE_OFF = ["--sparse-pcm=0"]
# sac --normal on the 16-bit files of audio/valid as issue 14 states it (sac / FLAC -8 bytes).
ISSUE_14_SAC_VS_FLAC = {"total_16bit": 0.910, "asterisk_allison_8k": 0.888, "hydrogen_gmrockkit": 0.905,
                        "jrhodes3c_mono": 0.832, "sonic_pi_samples": 0.924}


def find_sac() -> str | None:
    """The sac binary: $SAC if set, else benchmarks/bin/sac; None where it is not there."""
    path = os.environ.get("SAC") or str(HERE / "bin" / "sac")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def timed_run(cmd: list[str], timeout: float) -> dict:
    """Run one whole process: {"wall_s", "cpu_s", "rc", "error"} (error None when it exited 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout)
        rc, error = done.returncode, None
        if rc != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:]
            error = f"exit status {rc}" + (f": {tail[0][:200]}" if tail else "")
    except subprocess.TimeoutExpired:
        rc, error = None, f"did not finish within {timeout:.0f} s (killed)"
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "rc": rc, "error": error}


def same_samples(a: Path, b: Path) -> str | None:
    """None when the two WAVs hold the same samples at the same rate, else what differs."""
    try:
        x, rx = sf.read(a, dtype="int32", always_2d=True)
        y, ry = sf.read(b, dtype="int32", always_2d=True)
    except RuntimeError as e:  # libsndfile errors
        return f"decoded file unreadable: {e}"
    if rx != ry or x.shape != y.shape:
        return f"decoded {y.shape} at {ry} Hz, input {x.shape} at {rx} Hz"
    if not np.array_equal(x, y):
        return f"decoded samples differ from the input's ({int((x != y).sum())} of {x.size})"
    return None


def roundtrip(encode: list[str], decode: list[str], wav: Path, coded: Path, back: Path, timeout: float) -> dict:
    """Encode, decode, compare: {"ok", "bytes", "encode": {...}, "decode": {...}[, "error"]}."""
    out = {"ok": False}
    out["encode"] = timed_run(encode, timeout)
    if out["encode"]["error"] or not coded.is_file():
        out["error"] = "encode: " + (out["encode"]["error"] or "wrote no file")
        return out
    out["bytes"] = coded.stat().st_size
    out["decode"] = timed_run(decode, timeout)
    if out["decode"]["error"] or not back.is_file():
        out["error"] = "decode: " + (out["decode"]["error"] or "wrote no file")
        return out
    differs = same_samples(wav, back)
    if differs:
        out["error"] = differs
        return out
    out["ok"] = True
    return out


def sac_roundtrip(wav_path, sac: str | None = None, timeout: float | None = None, extra_args=()) -> dict:
    """`sac --normal` encode and decode of one WAV in a temporary directory, the decoded samples
    checked against the input's. -> {"ok", "bytes", "seconds", "encode": {"wall_s", "cpu_s", ...},
    "decode": {...}, "encode_x_realtime", "decode_x_realtime" (+ "_cpu")}; on failure ok is False
    and "error" says why. timeout: seconds per process (default 60 + 20x the audio's duration);
    extra_args: further encoder options after --normal --mt-mode=0."""
    sac = sac or find_sac()
    if sac is None:
        raise FileNotFoundError("sac is not built (benchmarks/build_sac.sh SOURCE_DIR, or set SAC)")
    wav = Path(wav_path).resolve()
    info = sf.info(wav)
    seconds = info.frames / info.samplerate
    timeout = timeout or 60 + 20 * seconds
    with tempfile.TemporaryDirectory() as tmp:
        coded, back = Path(tmp) / "t.sac", Path(tmp) / "back.wav"
        out = roundtrip([sac, *SAC_ARGS, *extra_args, str(wav), str(coded)], [sac, "--decode", str(coded), str(back)],
                        wav, coded, back, timeout)
    out["seconds"] = round(seconds, 4)
    if out["ok"]:
        add_speed(out, seconds)
    return out


def peer_roundtrip(peer, wav: Path, timeout: float) -> dict:
    """One neuralzip.peers Peer (flac, wavpack) through the same encode/decode/compare."""
    with tempfile.TemporaryDirectory() as tmp:
        coded, back = Path(tmp) / ("t" + peer.ext), Path(tmp) / "back.wav"
        return roundtrip(peer.encode_cmd(wav, coded), peer.decode_cmd(coded, back), wav, coded, back, timeout)


def add_speed(row: dict, seconds: float) -> None:
    for step in ("encode", "decode"):
        row[f"{step}_x_realtime"] = round(seconds / max(row[step]["wall_s"], 1e-9), 2)
        row[f"{step}_x_realtime_cpu"] = round(seconds / max(row[step]["cpu_s"], 1e-9), 2)


# --- the measurement ---------------------------------------------------------------------------

def totals(rows: list[dict], sac: str = "sac") -> dict:
    """Bytes, bits per sample and times of `sac` (the row key of a sac variant), flac and wavpack
    over the rows all three gave back exactly."""
    coders = [sac, "flac", "wavpack"]
    ok = [r for r in rows if all(c in r and r[c]["ok"] for c in coders)]
    out = {"files": len(rows), "files_all_exact": len(ok),
           f"files_{sac}_failed": [r["file"] for r in rows if not r.get(sac, {}).get("ok")]}
    if not ok:
        return out
    samples = sum(r["samples"] for r in ok)
    seconds = sum(r["seconds"] for r in ok)
    out.update(samples=samples, seconds=round(seconds, 3))
    for c in coders:
        b = sum(r[c]["bytes"] for r in ok)
        t = {s: {k: round(sum(r[c][s][k] for r in ok), 3) for k in ("wall_s", "cpu_s")} for s in ("encode", "decode")}
        out[c] = {"bytes": b, "bps": round(8 * b / samples, 5), **t}
        add_speed(out[c], seconds)
    for c in (sac, "wavpack"):
        out[f"{c}_vs_flac"] = round(out[c]["bytes"] / out["flac"]["bytes"], 4)
    out[f"{sac}_vs_wavpack"] = round(out[sac]["bytes"] / out["wavpack"]["bytes"], 4)
    return out


def measure_files(data: Path, sac: str, give_up_after: int, log) -> list[dict]:
    from neuralzip.media.detect import read_media
    from neuralzip.peers import PEERS, write_pcm_wav

    peers = {p.name: p for p in PEERS if p.name in ("flac", "wavpack")}
    files = sorted((data / "audio" / "valid").glob("*/*"))
    failures: dict[int, int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            media = read_media(path.read_bytes(), str(path))
            wav = write_pcm_wav(media, Path(tmp) / "in.wav")
            rate = int(media.meta["rate"])
            row = {"file": str(path.relative_to(data)), "source": path.parent.name, "bits": media.bits,
                   "channels": int(media.samples.shape[1]), "rate": rate, "frames": int(media.samples.shape[0]),
                   "samples": int(media.samples.size), "seconds": round(media.samples.shape[0] / rate, 4),
                   "wav_bytes": wav.stat().st_size}
            timeout = 60 + 20 * row["seconds"]
            if failures.get(media.bits, 0) >= give_up_after:
                row["sac"] = {"ok": False, "error": f"not run: sac failed on the first {give_up_after} "
                                                   f"{media.bits}-bit files (see them)"}
            else:
                row["sac"] = sac_roundtrip(wav, sac, timeout)
                if not row["sac"]["ok"]:
                    failures[media.bits] = failures.get(media.bits, 0) + 1
            if media.bits > 16:
                row["sac_sparse_off"] = sac_roundtrip(wav, sac, timeout, SPARSE_OFF)
            for name, peer in peers.items():
                row[name] = peer_roundtrip(peer, wav, timeout)
            rows.append(row)
            s = row["sac"]
            log(f"[{i + 1}/{len(files)}] {row['file']} ({row['bits']}-bit, {row['channels']} ch, {rate} Hz): "
                + (f"sac {s['bytes']} B ({s['encode']['cpu_s']}/{s['decode']['cpu_s']} cpu s)" if s["ok"]
                   else f"sac FAILED: {s['error']}")
                + (f", sac --sparse-pcm=0 {row['sac_sparse_off'].get('bytes')} B"
                   f" ({'exact' if row['sac_sparse_off']['ok'] else row['sac_sparse_off']['error']})"
                   if "sac_sparse_off" in row else "")
                + f", flac {row['flac'].get('bytes')}, wavpack {row['wavpack'].get('bytes')}")
    return rows


def speed(data: Path, sac: str, log) -> dict:
    from neuralzip.peers import PEERS

    out = {"input": "2-minute 44.1 kHz stereo 16-bit concatenation of valid clips (benchmarks/audio_model.py's)",
           "how": f"whole processes, one run each, sac {' '.join(SAC_ARGS)} (one thread)",
           "load_average_before": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "two_minutes.wav"
        seconds = two_minutes(data, wav)
        out["seconds"] = seconds
        out["wav_md5"] = hashlib.md5(wav.read_bytes()).hexdigest()
        timeout = 60 + 20 * seconds
        out["sac"] = sac_roundtrip(wav, sac, timeout)
        log(f"2-minute sac: {out['sac']}")
        for peer in PEERS:
            if peer.name in ("flac", "wavpack"):
                r = peer_roundtrip(peer, wav, timeout)
                if r["ok"]:
                    add_speed(r, seconds)
                out[peer.name] = r
        if out["sac"]["ok"] and out["flac"]["ok"]:
            out["sac_vs_flac"] = round(out["sac"]["bytes"] / out["flac"]["bytes"], 4)
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    ap.add_argument("--give-up-after", type=int, default=2,
                    help="stop running sac on a bit depth after this many failures on it (default 2)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true", help="re-measure the 2-minute row into the existing file")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "sac_audio_valid.json")
    args = ap.parse_args()
    sac = find_sac()
    if sac is None:
        sys.exit("sac is not built: benchmarks/build_sac.sh SAC_SOURCE_DIR (or set SAC=/path/to/sac)")
    for tool in ("flac", "wavpack", "wvunpack"):
        if shutil.which(tool) is None:
            sys.exit(f"needs `{tool}` (apt-get install -y flac wavpack); not estimating it")
    if not (args.data / "audio" / "valid").is_dir():
        sys.exit(f"no audio/valid under {args.data}")

    def log(msg):
        print(msg, flush=True)

    command = "python benchmarks/sac_peer.py " + " ".join(sys.argv[1:])
    if args.speed_only:
        result = json.loads(args.out.read_text())
        result["speed_2min"] = speed(args.data, sac, log)
        result["speed_command"] = command
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return
    result = {"command": command, "sac": sac, "sac_args": SAC_ARGS, "sac_sparse_off_args": SAC_ARGS + SPARSE_OFF,
              "peers": {"flac": "flac -8 --no-padding --no-seektable", "wavpack": "wavpack -hh -x3"},
              "totals_cover": "files every coder gave back exactly; sac failures listed per group",
              "issue_14_sac_vs_flac": ISSUE_14_SAC_VS_FLAC}
    rows = measure_files(args.data, sac, args.give_up_after, log)
    result["totals_16bit"] = totals([r for r in rows if r["bits"] == 16])
    result["totals_24bit"] = totals([r for r in rows if r["bits"] == 24])
    result["totals_24bit_sparse_off"] = totals([r for r in rows if r["bits"] == 24], "sac_sparse_off")
    sources = sorted({r["source"] for r in rows})
    result["per_source"] = {s: totals([r for r in rows if r["source"] == s]) for s in sources}
    result["per_source_sparse_off"] = {s: totals([r for r in rows if r["source"] == s], "sac_sparse_off")
                                       for s in sources if any(r["bits"] > 16 for r in rows if r["source"] == s)}
    summary = {k: result[k] for k in ("totals_16bit", "totals_24bit", "totals_24bit_sparse_off")}
    summary["sac_vs_flac_per_source"] = {s: t.get("sac_vs_flac") for s, t in result["per_source"].items()}
    summary["sac_sparse_off_vs_flac_per_source"] = {s: t.get("sac_sparse_off_vs_flac")
                                                    for s, t in result["per_source_sparse_off"].items()}
    log(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(result, rows=rows), indent=1) + "\n")
    if not args.skip_speed:
        result["speed_2min"] = speed(args.data, sac, log)
    result["rows"] = rows
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
