"""Datasets at scale: the targets of the version-2 archive, measured with whole processes.

    python benchmarks/datasets.py [--clips 3000] [--members 100000] [--jobs 2] [--repeat 3] [--train]
    -> benchmarks/results/datasets.json

1. Speech clips: --clips clips of 0.3-0.6 s (uniform), cut at seeded random places from the
   8 kHz speech recordings of audio/valid (asterisk_allison_8k; with --train also from
   audio/train, reported apart), written as 16-bit WAV files. One archive with the default
   audio model (`neuralzip compress DIR -o A.nz --jobs J`) against the sum of the per-file
   `flac -8 --no-padding` sizes (target: at most 0.90x), compress and decompress wall and CPU
   seconds (--repeat runs of each, interleaved, the median reported; target: decompress no slower
   than compress), byte-identical restore, the same
   bytes from --jobs 1 and --jobs J, and the per-member overhead (target: at most 48 bytes
   besides the name, the payload and the description that holds each WAV's verbatim header).
2. Peak memory (--memory clips): compress and decompress in one process for a tenth of the clips
   and for all of them; the peak should not grow with the number of members.
3. A --members archive of tiny images (16x16 RGB crops of images/valid, 1,000 distinct ones
   coded once with the default image model, stored under --members names: the coding is not
   what is measured here): `neuralzip ls` (target under 1 s) and
   `neuralzip decompress A --member NAME -o DIR` (target under 0.5 s), whole processes, best of 3.

Times are wall seconds of whole processes (start-up included) with the CPU seconds (user +
system of the process and its children) beside them; the machine may be shared.
"""

import argparse
import io
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
ROOT = HERE.parent
NZ = [sys.executable, "-m", "neuralzip"]


def run(cmd, **kw):
    """-> (wall seconds, CPU seconds of the child, CompletedProcess)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, **kw)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {r.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r


def cut_clips(source: Path, n: int, out: Path, seed: int) -> list[Path]:
    import soundfile as sf


    recs = []
    for f in sorted(source.rglob("*.flac")):
        data, rate = sf.read(f, dtype="int16", always_2d=True)
        if data.shape[0] >= int(0.6 * rate) + 1:
            recs.append((f, data[:, 0], rate))
    if not recs:
        raise SystemExit(f"no recordings of at least 0.6 s under {source}")
    lengths = np.array([len(r[1]) for r in recs], np.float64)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        k = rng.choice(len(recs), p=lengths / lengths.sum())
        _, x, rate = recs[k]
        frames = int(rng.integers(int(0.3 * rate), int(0.6 * rate) + 1))
        start = int(rng.integers(0, len(x) - frames + 1))
        p = out / f"clip{i:05d}.wav"
        sf.write(p, x[start:start + frames], rate, subtype="PCM_16")
        paths.append(p)
    return paths


def flac_total(paths: list[Path], work: Path) -> tuple[int, float]:
    flac = shutil.which("flac")
    if flac is None:
        raise SystemExit("flac is not installed: the target compares against it (apt-get install flac)")
    work.mkdir(parents=True, exist_ok=True)
    total, seconds = 0, 0.0
    for a in range(0, len(paths), 500):
        batch = paths[a:a + 500]
        wall, _, _ = run([flac, "-8", "--no-padding", "-s", "-f", f"--output-prefix={work}/"] + [str(p) for p in batch])
        seconds += wall
    for p in paths:
        total += (work / (p.stem + ".flac")).stat().st_size
    return total, seconds


def _median(runs: list) -> tuple[float, float]:
    """The (wall, cpu) run of median wall time."""
    return sorted(runs)[len(runs) // 2]


def clips_case(source: Path, n: int, jobs: int, seed: int, work: Path, repeat: int = 1) -> dict:
    from neuralzip import archive, streaming
    from neuralzip.kernels import dispatch

    clips = work / "clips"
    paths = cut_clips(source, n, clips, seed)
    wav_bytes = sum(p.stat().st_size for p in paths)
    flac_bytes, flac_seconds = flac_total(paths, work / "flac")
    nz = work / "clips.nz"
    outs = [work / f"restored{k}" for k in range(repeat)]
    comp, decomp = [], []
    for k, out in enumerate(outs):  # interleaved, so that a busy spell of a shared machine hits both
        if k:
            nz.unlink()
        comp.append(run(NZ + ["compress", str(clips), "-o", str(nz), "--jobs", str(jobs), "-q"])[:2])
        # Each run restores into a fresh folder, and none is removed before the last run: ext4
        # without a journal (as on this project's build machines) scans the inodes freed in the last
        # minute or more whenever it creates a file, so 3,000 files deleted just before made each of
        # the next run's 3,000 creations cost about a millisecond of kernel time (docs/DATASETS.md).
        decomp.append(run(NZ + ["decompress", str(nz), "-o", str(out), "--jobs", str(jobs), "-q"])[:2])
    (c_wall, c_cpu), (d_wall, d_cpu) = _median(comp), _median(decomp)
    identical = all((out / p.name).read_bytes() == p.read_bytes() for out in outs for p in paths)
    nz1 = work / "clips-j1.nz"  # one process, one thread: also shows the bytes do not depend on threads
    one_wall, one_cpu, _ = run(NZ + ["compress", str(clips), "-o", str(nz1), "--jobs", "1", "-q"],
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    same = nz1.read_bytes() == nz.read_bytes()
    one_out = work / "restored-j1"
    one_d_wall, one_d_cpu, _ = run(NZ + ["decompress", str(nz1), "-o", str(one_out), "--jobs", "1", "-q"],
                                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    identical = identical and all((one_out / p.name).read_bytes() == p.read_bytes() for p in paths)
    f, table = streaming.open_table(nz)
    with f:
        parts = archive.overhead_breakdown(f, table)
    models = sorted({m for m, _ in table.models})
    # the restored folders stay until the whole benchmark's folder goes: removed here, their 15,000
    # files would slow the next case's file creation (see above)
    return {
        "source": str(source.relative_to(source.parents[2])), "clips": n, "seed": seed, "jobs": jobs,
        "model": models, "wav_bytes": wav_bytes, "flac_bytes": flac_bytes, "nz_bytes": nz.stat().st_size,
        "ratio_to_flac": round(nz.stat().st_size / flac_bytes, 4), "target_ratio": 0.90,
        "compress_wall_s": round(c_wall, 2), "compress_cpu_s": round(c_cpu, 2),
        "decompress_wall_s": round(d_wall, 2), "decompress_cpu_s": round(d_cpu, 2),
        "repeat": repeat, "restore": "each run into a fresh folder; none removed before the benchmark ends",
        "ols_kernels": dispatch.ols_audio().__name__,  # the kernels' build the audio model ran with here
        "compress_walls_s": [round(w, 2) for w, _ in comp],
        "decompress_walls_s": [round(w, 2) for w, _ in decomp],
        "compress_jobs1_omp1_wall_s": round(one_wall, 2), "compress_jobs1_omp1_cpu_s": round(one_cpu, 2),
        "decompress_jobs1_omp1_wall_s": round(one_d_wall, 2), "decompress_jobs1_omp1_cpu_s": round(one_d_cpu, 2),
        "flac_wall_s": round(flac_seconds, 2),
        "restored_identical": identical, "jobs1_same_bytes": same,
        "per_member_bytes": {k: round(v, 2) for k, v in parts.items() if k not in ("members", "bytes")},
        "per_member_overhead": round(parts["other"], 2), "target_overhead": 48,
    }


def memory_case(source: Path, n: int, work: Path, seed: int) -> dict:
    """Peak resident memory of compress and decompress (one process, --jobs 1, the fast histogram
    model: the archive is what is measured) for n/10 and n clips: it should not grow with the count."""
    out = {}
    clips = cut_clips(source, n, work / "clips", seed)
    for count in (n // 10, n):
        d = work / f"c{count}"
        d.mkdir()
        for p in clips[:count]:
            os.link(p, d / p.name)
        row = {}
        for what, cmd in (("compress", ["compress", str(d), "-o", str(work / f"{count}.nz")]),
                          ("decompress", ["decompress", str(work / f"{count}.nz"), "-o", str(work / f"o{count}")])):
            r = subprocess.run(["/usr/bin/time", "-f", "%M"] + NZ + cmd + ["--jobs", "1", "-q"]
                               + (["--model", "histogram"] if what == "compress" else []), capture_output=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr.decode()[-2000:])
            row[f"{what}_peak_rss_mib"] = round(int(r.stderr.split()[-1]) / 1024, 1)
        row["archive_bytes"] = (work / f"{count}.nz").stat().st_size
        out[str(count)] = row
    return out


def tiny_images_case(members: int, work: Path, seed: int, data: Path) -> dict:
    from PIL import Image

    from neuralzip import api, archive

    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    photos = sorted((data / "images" / "valid").glob("*.png"))[:20]
    crops = []
    for i in range(1000):
        img = np.asarray(Image.open(photos[i % len(photos)]).convert("RGB"))
        y, x = rng.integers(0, img.shape[0] - 16), rng.integers(0, img.shape[1] - 16)
        buf = io.BytesIO()
        Image.fromarray(img[y:y + 16, x:x + 16]).save(buf, "PNG")
        crops.append(buf.getvalue())
    start = time.perf_counter()
    coded = api.encode_members([(api.read_media(c), f"c{i}.png") for i, c in enumerate(crops)])
    code_seconds = time.perf_counter() - start
    nz = work / "tiny.nz"
    start = time.perf_counter()
    with open(nz, "wb") as f:
        w = archive.Writer(f, True)
        for i in range(members):
            m = coded[i % len(coded)]
            copy = type(m)(**{**m.__dict__, "name": f"img/{i // 1000:03d}/{i:06d}.png"})
            w.add_group([copy])
        w.close()
    write_seconds = time.perf_counter() - start
    ls_runs = [run(NZ + ["ls", str(nz)]) for _ in range(3)]
    lines = len(ls_runs[0][2].stdout.splitlines())
    name = f"img/{(members // 2) // 1000:03d}/{members // 2:06d}.png"
    one = []
    for k in range(3):
        out = work / f"one{k}"
        one.append(run(NZ + ["decompress", str(nz), "--member", name, "-o", str(out), "--jobs", "1", "-q"])[:2])
    restored = (work / "one0" / name).read_bytes()
    want = api.read_media(crops[(members // 2) % len(crops)]).samples
    return {"members": members, "nz_bytes": nz.stat().st_size, "distinct_images": len(crops),
            "code_1000_s": round(code_seconds, 2), "write_s": round(write_seconds, 2),
            "ls_wall_s": round(min(r[0] for r in ls_runs), 3), "ls_cpu_s": round(min(r[1] for r in ls_runs), 3),
            "ls_lines": lines, "target_ls_s": 1.0,
            "extract_one_wall_s": round(min(w for w, _ in one), 3),
            "extract_one_cpu_s": round(min(c for _, c in one), 3), "target_extract_s": 0.5,
            "load_average": os.getloadavg()[0],
            "extracted_identical_pixels": bool(np.array_equal(api.read_media(restored).samples, want))}


def main():
    compile_bytecode()  # time the package as installed (baselines.compile_bytecode)
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=3000)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3,
                    help="compress and decompress the clips this many times, interleaved (the median is reported)")
    ap.add_argument("--train", action="store_true", help="also cut clips from audio/train (reported apart)")
    ap.add_argument("--memory", type=int, default=3000, help="clips for the peak-memory case (0: skip)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "datasets.json")
    args = ap.parse_args()
    # a case not run this time (--clips 0, --members 0) keeps its figures from the last run
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update({"command": "python benchmarks/datasets.py " + " ".join(sys.argv[1:]), "cpus": os.cpu_count(),
                   "cpu_note": "cpu seconds count the neuralzip process and the children it waited for: with "
                               "--jobs above 1 the worker processes (forked by multiprocessing's forkserver) "
                               "are not counted, so only the jobs-1 figure is a full CPU time"})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.clips:
            result["speech_valid"] = clips_case(args.data / "audio" / "valid" / "asterisk_allison_8k", args.clips,
                                                args.jobs, args.seed, work / "valid", args.repeat)
            print(json.dumps(result["speech_valid"], indent=1), flush=True)
            save(args.out, result)
            if args.train:
                result["speech_train"] = clips_case(args.data / "audio" / "train" / "asterisk_allison_8k",
                                                    args.clips, args.jobs, args.seed, work / "train", args.repeat)
                print(json.dumps(result["speech_train"], indent=1), flush=True)
                save(args.out, result)
        if args.memory:
            result["memory"] = memory_case(args.data / "audio" / "valid" / "asterisk_allison_8k", args.memory,
                                           work / "memory", args.seed)
            print(json.dumps(result["memory"], indent=1), flush=True)
            save(args.out, result)
        if args.members:
            result["tiny_images"] = tiny_images_case(args.members, work / "tiny", args.seed, args.data)
            print(json.dumps(result["tiny_images"], indent=1), flush=True)
    save(args.out, result)
    print(f"wrote {args.out}")


def save(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
