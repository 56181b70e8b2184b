"""A long recording in bounded memory: the issue's target "a 60-minute 44.1 kHz stereo 16-bit
recording compresses and decompresses in under 500 MB", measured with whole processes.

    python benchmarks/long_recording.py [--minutes 60] [--whole-minutes 8] [--level 1] [--jobs 0] [--keep DIR]
    -> benchmarks/results/long_recording.json

The recording: every 44.1 kHz stereo file of audio/valid (sonic_pi_samples, hydrogen_gmrockkit,
horsepulse_tagelharpa; the 24-bit ones cut to their top 16 bits), in sorted order, one after
another, looped until --minutes minutes, written as a 16-bit stereo WAV. Then, each as a process
of its own with the default model (auto: ols-cascade, coded chunk by chunk, neuralzip/chunked.py):

    neuralzip compress long.wav -o long.nz -q
    neuralzip decompress long.nz -o out.wav -q             (and out.wav compared with long.wav)
    neuralzip decompress - -o pipe.wav -q < long.nz        (the same from a pipe)

For each: wall and CPU seconds (user + system, the process and its children), and the peak memory
three ways: `maxrss`, the largest resident set of any one process of the command (what
`/usr/bin/time -v` prints; ols-cascade's decoder forks a second process for half the chunks),
`tree_rss`, the largest sum of the resident sets of the process and its children sampled every
50 ms (pages they share counted twice), and `tree_pss`, the same with shared pages split between
the processes that map them (the memory the command really holds). The target (500 MB, 476.8
MiB) is read against maxrss and tree_pss. --whole-minutes M also runs compress and decompress of an M-minute recording with the
chunked path switched off (the whole-member path, which all members took before), for comparison.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from baselines import compile_bytecode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "audio" / "valid"
NZ = [sys.executable, "-m", "neuralzip"]
RATE = 44100
TARGET_BYTES = 500 * 10 ** 6  # "under 500 MB"


def sources() -> list[Path]:
    import soundfile as sf

    out = []
    for p in sorted(DATA.rglob("*")):
        if p.is_file() and p.suffix in (".flac", ".wav"):
            info = sf.info(str(p))
            if info.samplerate == RATE and info.channels == 2 and info.subtype in ("PCM_16", "PCM_24"):
                out.append(p)
    if not out:
        raise SystemExit(f"no 44.1 kHz stereo recordings under {DATA}")
    return out


def write_long(path: Path, minutes: float) -> dict:
    """The looped recording as a 16-bit stereo WAV, written a piece at a time."""
    import soundfile as sf

    pieces = []
    for p in sources():
        x, _ = sf.read(str(p), dtype="int32", always_2d=True)
        pieces.append((x >> 16).astype(np.int16))  # the top 16 bits (16-bit files: themselves)
    loop = sum(len(x) for x in pieces)
    frames = int(minutes * 60 * RATE)
    with sf.SoundFile(str(path), "w", RATE, 2, "PCM_16", format="WAV") as f:
        done = 0
        while done < frames:
            for x in pieces:
                n = min(len(x), frames - done)
                f.write(x[:n])
                done += n
                if done == frames:
                    break
    return {"files": len(pieces), "loop_seconds": round(loop / RATE, 2), "frames": frames,
            "wav_bytes": path.stat().st_size}


def _proc_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _field(path: str, names: tuple) -> dict:
    got = {}
    try:
        with open(path) as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in names:
                    got[key] = int(line.split()[1])
    except OSError:
        pass
    return got


def measure(cmd, stdin=None, env=None) -> dict:
    """Run `cmd`; -> wall and CPU seconds and the peak memory (MiB) three ways (see the module note)."""
    err = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err,
                            env=None if env is None else dict(os.environ, **env))
    peak = {"rss": 0, "pss": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rss = pss = 0
            for p in _proc_tree(proc.pid):
                rss += _field(f"/proc/{p}/status", ("VmRSS",)).get("VmRSS", 0)
                pss += _field(f"/proc/{p}/smaps_rollup", ("Pss",)).get("Pss", 0)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            stop.wait(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, status, usage = os.wait4(proc.pid, 0)  # this command's own figures (its children included)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    t.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        err.seek(0)
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {err.read().decode()[-2000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "maxrss_mib": round(usage.ru_maxrss / 1024, 1),
            "tree_rss_mib": round(peak["rss"] / 1024, 1), "tree_pss_mib": round(peak["pss"] / 1024, 1)}


def main() -> None:
    compile_bytecode()  # time the package as installed (baselines.compile_bytecode)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--level", type=int, default=1, help="compress --level (2: ols-cascade's stronger level)")
    ap.add_argument("--whole-minutes", type=float, default=0.0,
                    help="also code a recording this long the whole-member way (the path before), for comparison")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder, removed)")
    ap.add_argument("--out", default=str(HERE / "results" / "long_recording.json"))
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nz-long-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        wav, nz, out, piped = work / "long.wav", work / "long.nz", work / "out.wav", work / "pipe.wav"
        for p in (nz, out, piped):
            p.unlink(missing_ok=True)
        made = write_long(wav, args.minutes)
        jobs = ["--jobs", str(args.jobs)]
        comp = measure(NZ + ["compress", str(wav), "-o", str(nz), "-q", "--level", str(args.level)] + jobs)
        dec = measure(NZ + ["decompress", str(nz), "-o", str(out), "-q"] + jobs)
        same = _same(wav, out)
        with open(nz, "rb") as f:
            pipe = measure(NZ + ["decompress", "-", "-o", str(piped), "-q"], stdin=f)
        same_pipe = _same(wav, piped)
        from neuralzip import chunked

        seconds = made["frames"] / RATE
        result = {
            "recording": {**made, "minutes": args.minutes, "rate": RATE, "channels": 2, "bits": 16,
                          "made_from": "the 44.1 kHz stereo files of audio/valid in sorted order, looped "
                                       "(24-bit ones cut to their top 16 bits)"},
            "model": f"auto (ols-cascade), level {args.level}", "stream_bytes": chunked.STREAM_BYTES,
            "nz_bytes": nz.stat().st_size, "ratio_to_wav": round(nz.stat().st_size / made["wav_bytes"], 4),
            "compress": {**comp, "x_real_time": round(seconds / comp["wall_s"], 1)},
            "decompress": {**dec, "x_real_time": round(seconds / dec["wall_s"], 1)},
            "decompress_pipe": {**pipe, "x_real_time": round(seconds / pipe["wall_s"], 1)},
            "restored_identical": same, "restored_identical_pipe": same_pipe,
            "target_mib": round(TARGET_BYTES / 2 ** 20, 1),
            "under_target": max(r[k] for r in (comp, dec, pipe) for k in ("maxrss_mib", "tree_pss_mib"))
            < TARGET_BYTES / 2 ** 20,
            "cpus": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0],
        }
        if args.whole_minutes:
            result["whole_member_path"] = whole_case(work, args.whole_minutes, jobs)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def whole_case(work: Path, minutes: float, jobs: list) -> dict:
    """The same commands on a shorter recording with the chunked path switched off
    (NEURALZIP_STREAM_BYTES): memory in proportion to the length, as before."""
    wav, nz, out = work / "whole.wav", work / "whole.nz", work / "whole-out.wav"
    for p in (nz, out):
        p.unlink(missing_ok=True)
    made = write_long(wav, minutes)
    env = {"NEURALZIP_STREAM_BYTES": str(1 << 62)}
    comp = measure(NZ + ["compress", str(wav), "-o", str(nz), "-q"] + jobs, env=env)
    dec = measure(NZ + ["decompress", str(nz), "-o", str(out), "-q"] + jobs, env=env)
    return {"minutes": minutes, "frames": made["frames"], "compress": comp, "decompress": dec,
            "restored_identical": _same(wav, out)}


def _same(a: Path, b: Path) -> bool:
    with open(a, "rb") as f, open(b, "rb") as g:
        while True:
            x, y = f.read(1 << 20), g.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    main()
