"""Shard sets: one dataset written as several version-3 archives of about --shard-size bytes each,
plus a manifest, in one directory; read (ls, decompress, neuralzip.open) like one archive.

    OUTDIR/manifest.json      {"format": "neuralzip-shards", "version": 1, "members": N,
                               "shards": [{"file": "shard-00000.nz", "members": n, "bytes": b}, ...]}
    OUTDIR/shard-00000.nz ...

A shard is closed after the group that brings it to --shard-size or more (groups are never split),
so which members go to which shard depends on the input and the coded sizes alone, never on --jobs.
The directory is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from neuralzip.errors import ContainerError, InputError

MANIFEST = "manifest.json"
FORMAT = "neuralzip-shards"
SHARD_NAME = re.compile(r"shard-\d{5,9}\.nz")
MAX_SHARDS = 1 << 20
MAX_MANIFEST = 64 << 20


def is_shard_set(path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def read_manifest(directory) -> list[Path]:
    """The shard files of a shard set, in order, after checking the manifest (untrusted, like a .nz)."""
    d = Path(directory)
    m = d / MANIFEST
    try:
        if m.stat().st_size > MAX_MANIFEST:
            raise ContainerError(f"{m}: the manifest is larger than {MAX_MANIFEST >> 20} MiB")
        doc = json.loads(m.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{d} is a directory, not a .nz file or a shard set (no {MANIFEST})") from None
    except OSError as exc:
        raise InputError(f"{m}: cannot read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise ContainerError(f"{m}: corrupt manifest (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != 1:
        raise ContainerError(f"{m}: not a neuralzip shard-set manifest (version 1)")
    shards = doc.get("shards")
    if not isinstance(shards, list) or not 0 < len(shards) <= MAX_SHARDS:
        raise ContainerError(f"{m}: corrupt manifest (shards)")
    out, seen = [], set()
    for s in shards:
        name = s.get("file") if isinstance(s, dict) else None
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name) or name in seen:
            raise ContainerError(f"{m}: corrupt manifest (shard file {str(name)[:40]!r})")
        seen.add(name)
        if not (d / name).is_file():
            raise ContainerError(f"{d / name}: a shard of the set is missing")
        out.append(d / name)
    return out


def compress_sharded(sources, outdir, shard_size: int, model: str = "auto", weights: str | None = None,
                     level: int = 1, jobs: int = 0, compare: bool = False, verify: bool = False,
                     force: bool = False, keep_reports: bool = True, runner=None) -> tuple[list, int]:
    """Code `sources` into a shard set in directory `outdir` (`runner`: see streaming.encoded_groups).
    -> (member reports, total bytes)."""
    from neuralzip import api, streaming
    from neuralzip.archive import Writer

    if shard_size < 1:
        raise InputError("--shard-size must be positive")
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} already exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out} already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    tmp.mkdir()
    reports, shards = [], []
    writer = stream = None
    try:
        for members, peers, seconds in streaming.encoded_groups(sources, model, weights, level, jobs, compare,
                                                                verify, runner, spool_dir=tmp):
            if writer is None:
                name = f"shard-{len(shards):05d}.nz"
                stream = open(tmp / name, "wb")
                writer = Writer(stream, True)
                shards.append({"file": name, "members": 0, "bytes": 0})
            try:
                sizes = writer.add_group(members)
            finally:
                for m in members:
                    if hasattr(m.chunks, "close"):  # a long member's spool (streaming.encode_long)
                        m.chunks.close()
            shards[-1]["members"] += len(members)
            if keep_reports:
                for m, share in zip(members, streaming._shares(members, sizes)):
                    reports.append(api.member_report(m, m.name, share, seconds * streaming._dims(m) /
                                                     max(1, sum(streaming._dims(x) for x in members))))
            if writer.pos >= shard_size:
                shards[-1]["bytes"] = writer.close()
                stream.close()
                writer = None
        if writer is not None:
            shards[-1]["bytes"] = writer.close()
            stream.close()
            writer = None
        if not shards:
            raise InputError("nothing to compress")
        manifest = {"format": FORMAT, "version": 1, "members": sum(s["members"] for s in shards), "shards": shards}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        for p in tmp.iterdir():
            os.chmod(p, 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out.exists():
            old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        if stream is not None:
            stream.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return reports, sum(s["bytes"] for s in shards)
