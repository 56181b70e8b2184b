"""`neuralzip bench`: every requested model and every classical peer on a set of files.

Each codec runs as whole processes (start-up included): neuralzip's own
`compress`/`decompress`, the peers' command-line tools. Every neuralzip result
is decoded and compared with the input; a peer that is not installed is
recorded as skipped, never estimated. A file is one unit of work, so
``--jobs N`` spreads files over N processes. A model is named as for
`compress --model`, or MODEL@LEVEL for one of its other levels (its rows are
then "neuralzip:MODEL@LEVEL").
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.detect import read_media, sniff
from neuralzip.models import all_codecs, handles, model_names
from neuralzip.peers import peers_for, png16, write_pcm_wav


def find_inputs(paths: list[str]) -> list[tuple[Path, str]]:
    """(path, kind) of every supported image or recording under the given files/directories."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        candidates = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in candidates:
            with open(q, "rb") as f:
                kind = sniff(f.read(16))
            if kind:
                found.append((q, kind[0]))
    if not found:
        raise InputError("no supported image or audio files to benchmark")
    return found


def _neuralzip() -> list[str]:
    script = Path(sys.executable).with_name("neuralzip")
    return [str(script)] if script.exists() else [sys.executable, "-m", "neuralzip"]


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return seconds


def _peer_input(media: Media, original: Path, tmp: Path) -> Path:
    """The input in a format every peer reads: PNG for images, WAV for audio."""
    fmt = media.meta.get("format")
    if (media.kind, fmt) in (("image", "png"), ("audio", "wav")):
        return original
    if media.kind == "audio":
        return write_pcm_wav(media, tmp / "peer_input.wav")
    out = tmp / "peer_input.png"
    if media.bits == 16 and media.samples.shape[2] > 1:
        out.write_bytes(png16(media.samples))
    else:
        from PIL import Image

        with Image.open(original) as im:
            im.save(out)
    return out


def model_level(spec: str) -> tuple[str, int]:
    """'MODEL' or 'MODEL@LEVEL' -> (model, level), checked: a known model, and a level it has (auto
    has every level some model has: it takes each medium's strongest up to it)."""
    name, at, level = spec.partition("@")
    if name not in model_names():
        raise InputError(f"unknown model {name!r} (see `neuralzip models`)")
    if not at:
        return name, 1
    levels = {lv for c in all_codecs() if name in ("auto", c.name) for lv in c.levels}
    if not level.isdigit() or int(level) not in levels:
        raise InputError(f"model {name!r} has no level {level!r} (levels: {', '.join(map(str, sorted(levels)))})")
    return name, int(level)


def codec_count(kind: str, models: list[str]) -> int:
    return len([m for m in models if handles(model_level(m)[0], kind)]) + len(peers_for(kind))


def bench_file(path: Path, models: list[str], on_row=None) -> list[dict]:
    """All codecs on one file -> one row per codec; `on_row(row)` as each codec finishes."""
    media = read_media(path.read_bytes(), str(path))
    base = {"file": str(path), "kind": media.kind, "dims": media.dims, "shape": list(media.samples.shape),
            "bits": media.bits}
    rows = []
    with tempfile.TemporaryDirectory(prefix="nzbench-") as tmpdir:
        tmp = Path(tmpdir)
        add = rows.append if on_row is None else (lambda row: (rows.append(row), on_row(row)))
        for spec in models:
            if handles(model_level(spec)[0], media.kind):  # image models skip recordings and the other way round
                add({**base, **_bench_model(path, media, spec, tmp)})
        src = _peer_input(media, path, tmp)
        for peer in peers_for(media.kind):
            row = {**base, "codec": peer.name, "neuralzip": False}
            why = peer.missing() or (f"{peer.name} cannot hold {media.bits}-bit samples"
                                     if media.bits > peer.max_bits else None)
            if why:
                add({**row, "skipped": why})
                continue
            out, back = tmp / f"{peer.name}{peer.ext}", tmp / f"{peer.name}.back{src.suffix}"
            try:
                enc = _timed(peer.encode_cmd(src, out))
                dec = _timed(peer.decode_cmd(out, back))
            except RuntimeError as exc:
                add({**row, "skipped": str(exc)})
                continue
            size = out.stat().st_size
            add({**row, "bytes": size, "bpd": 8 * size / media.dims, "compress_s": enc, "decompress_s": dec})
    return rows


def _bench_model(path: Path, media: Media, spec: str, tmp: Path) -> dict:
    """One neuralzip model (spec: MODEL or MODEL@LEVEL) on one file: compress, decompress, compare."""
    model, level = model_level(spec)
    nz = tmp / f"{spec}.nz"
    back = tmp / f"{spec}.back{path.suffix}"
    row = {"codec": f"neuralzip:{spec}", "neuralzip": True}
    cmd = _neuralzip() + ["compress", "--model", model, "--level", str(level), "--json", "--force", "-o", str(nz),
                          str(path)]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    enc = time.perf_counter() - start
    if r.returncode != 0:
        return {**row, "skipped": r.stderr.strip()[-300:]}
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    row.update({"model": rep["model"], "level": rep["level"], "weights": rep["weights"],
                "bytes": rep["bytes"], "bpd": rep["bpd"], "initial_bits": rep.get("initial_bits", 0.0),
                "nll_float_bits": rep["nll_float_bits"], "nll_bits": rep["nll_bits"],
                "overhead_pct": rep["overhead_pct"], "compress_s": enc})
    try:
        row["decompress_s"] = _timed(_neuralzip() + ["decompress", "-q", "--force", "-o", str(back), str(nz)])
    except RuntimeError as exc:  # a failed decode is a result to report, not a crash
        return {**row, "decompress_s": 0.0, "verified": False, "error": str(exc)}
    restored = read_media(back.read_bytes())
    row["verified"] = bool(restored.bits == media.bits and np.array_equal(restored.samples, media.samples))
    return row


def run(inputs: list[tuple[Path, str]], models: list[str], jobs: int = 1, on_row=None) -> list[dict]:
    """Benchmark every file of find_inputs(); `on_row(row)` is called for each (file, codec)
    as it is done (with several jobs, when its whole file is done)."""
    files = [path for path, _ in inputs]
    rows = []
    if jobs <= 1:
        for f in files:
            rows += bench_file(f, models, on_row)
    else:
        # neuralzip's kernels split each wavefront step over threads; several jobs each using
        # every core would oversubscribe it, and fine-grained parallel steps then wait on
        # descheduled threads (2-3x slower). Share the cores between the jobs instead.
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for fut in as_completed([pool.submit(bench_file, f, models) for f in files]):
                file_rows = fut.result()
                rows += file_rows
                for row in file_rows:
                    if on_row:
                        on_row(row)
    order = {str(f): i for i, f in enumerate(files)}  # report in input order, whatever finished first
    return sorted(rows, key=lambda r: order[r["file"]])
