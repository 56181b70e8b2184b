"""Archives in bounded memory: compress many files into a version-3 .nz group by group, list one,
and extract all or some of its members, over several processes (--jobs).

Members are cut into groups by the input alone: a member whose codec chains members (the vae's
bits-back chain; ols-cascade's packs of short recordings, for input files of at most its
`chain_member_bytes`) joins the group before it while that group has the same medium and stays within
GROUP_MEMBERS members and GROUP_BYTES input bytes; every other member is a group of its own, and so
is a recording whose header declares more than ALONE_BYTES of samples (as int32), whatever its codec:
it is coded and decoded chunk by chunk (neuralzip/chunked.py), never together with others. A group
is coded and decoded as a whole, anywhere, so the bytes written never depend on --jobs.
"""

from __future__ import annotations

import fnmatch
import os
from contextlib import nullcontext
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from neuralzip import container, limits
from neuralzip.errors import ContainerError, InputError
from neuralzip.fileio import check_writable, safe_member_name, write_atomic

GROUP_MEMBERS = 64
GROUP_BYTES = 32 << 20
ALONE_BYTES = 64 << 20  # a recording declaring more samples than this (as int32) is a group of its own
TASK_BYTES = 4 << 20  # decoding: small groups are handed to a process together, up to this many bytes


@dataclass
class Source:
    """One input: its stored name and its path (or its bytes). `other`: stored with LZMA when it is
    not an image or audio (a folder's files), rather than refused. `spooled`: the path is a temporary
    copy of stdin, whose time and permission bits are not the input's (none are stored)."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    other: bool = False
    spooled: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None

    def stamp(self, member) -> None:
        """Give the member this input's modification time and permission bits (a file's; stdin has none)."""
        if self.path is not None and not self.spooled:
            st = self.path.stat()
            member.mtime, member.mode = int(st.st_mtime), st.st_mode & 0o7777

    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def head(self) -> bytes:
        if self.data is not None:
            return self.data[:16]
        try:
            with open(self.path, "rb") as f:
                return f.read(16)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None


def medium(head: bytes, store_others: bool) -> str | None:
    """A file's kind from its first bytes: image, audio, file (anything else, when stored), or None."""
    from neuralzip.media.detect import sniff

    found = sniff(head)
    return found[0] if found else ("file" if store_others else None)


def chains(model: str, kind: str, weights: str | None, level: int) -> int:
    """The largest input file (bytes) that the codec codes together with others (it overrides
    encode_set: a bits-back chain, a pack), or 0 where it codes every member on its own."""
    if kind == "file":
        return 0
    from neuralzip import api
    from neuralzip.models.base import Codec

    try:
        codec = api.get_codec(model, kind, None, level)
    except InputError:
        return 0  # coding it will say why
    if type(codec).encode_set is Codec.encode_set:
        return 0
    return codec.chain_member_bytes or GROUP_BYTES


def plan_groups(kinds: list[str], sizes: list[int], model: str, weights: str | None, level: int,
                alone: list[bool] | None = None) -> list[list[int]]:
    """Indices of the sources cut into groups (see the module's note); `alone[i]`: source i is a long
    recording (declared_long), a group of its own."""
    groups: list[list[int]] = []
    limit = {k: chains(model, k, weights, level) for k in set(kinds)}
    alone = alone or [False] * len(kinds)
    joins = [not alone[i] and 0 < n <= limit[k] for i, (k, n) in enumerate(zip(kinds, sizes))]
    room = 0
    for i, (k, n) in enumerate(zip(kinds, sizes)):
        last = groups[-1] if groups else None
        if (joins[i] and last and kinds[last[0]] == k and joins[last[0]]
                and len(last) < GROUP_MEMBERS and room + n <= GROUP_BYTES):
            last.append(i)
            room += n
        else:
            groups.append([i])
            room = n
    return groups


# ------------------------------------------------------------------ compress

@dataclass
class EncodeTask:
    sources: list  # [(Source, kind)]
    model: str
    weights: str | None
    level: int
    compare: bool
    verify: bool


def encode_group(task: EncodeTask):
    """Read and code one group (in a worker process or here). -> (members, peers per member, seconds)."""
    from neuralzip import api

    start = time.perf_counter()
    items, originals = [], []
    for src, kind in task.sources:
        data = src.read()
        originals.append(data)
        where = str(src.path or src.name)
        try:
            media = api.file_media(data) if kind == "file" else api.read_media(data, where)
        except InputError as exc:  # name the file: in a folder of thousands, the message alone is no help
            raise exc if where in str(exc) else InputError(f"{where}: {exc}") from None
        items.append((media, src.name))
    members = api.encode_members(items, task.model, task.weights, task.level)
    for m, (src, _) in zip(members, task.sources):
        src.stamp(m)
    seconds = time.perf_counter() - start
    peers = [{}] * len(members)
    if task.compare:
        from neuralzip import peers as peermod

        peers = [peermod.compare(media, data) if media.kind != "file" else {}
                 for (media, _), data in zip(items, originals)]
    if task.verify:
        _verify_group(members, task.weights)
    return members, peers, seconds


def _verify_group(members: list, weights: str | None) -> None:
    """Decode the group from its written form and compare with what was coded (--verify)."""
    from neuralzip import api

    _, again = container.loads(container.dumps(members, archive=True), None)
    api.decode_members(again, weights, max_memory=None)  # each checked against its stored checksum
    for original, stored in zip(members, again):
        if not container.digest_matches(stored, original.sha256):
            raise ContainerError(f"--verify failed for {original.name!r}")


def encode_long(task: EncodeTask, codec, spool_dir=None):
    """encode_group for a long recording coded chunk by chunk (neuralzip/chunked.py), here: its
    member's chunks wait in a spool (closed by whoever writes the record). --compare is not measured."""
    from neuralzip import chunked

    start = time.perf_counter()
    [(src, _)] = task.sources
    try:
        m = chunked.encode_file(src.path, src.name, codec, spool_dir)
    except InputError as exc:  # name the file, as encode_group does
        raise exc if str(src.path) in str(exc) else InputError(f"{src.path}: {exc}") from None
    try:
        src.stamp(m)
        seconds = time.perf_counter() - start
        if task.verify:
            chunked.verify(m, task.weights)
    except BaseException:
        m.chunks.close()
        raise
    return [m], [{}], seconds


def encode_task(task: EncodeTask):
    """encode_group where the whole group is coded in one place (a cluster's worker): a long
    recording or a large image read from a file is coded chunk by chunk (encode_long), in the
    model's memory, and its chunks then brought into memory to be sent back (a third of the
    samples' size or less, where coding it whole held them three times over)."""
    codec = _long_codec(task)
    if codec is None:
        return encode_group(task)
    [m], peers, seconds = encode_long(task, codec)
    spool = m.chunks
    try:
        m.chunks = [spool.read(j) for j in range(len(spool))]
    finally:
        spool.close()
    return [m], peers, seconds


def declared_long(src: Source, kind: str) -> bool:
    """Whether a source is a recording whose header declares more than ALONE_BYTES of samples."""
    if kind != "audio" or src.path is None:
        return False  # bytes in memory: read whole anyway
    from neuralzip.media.audiostream import probe

    found = probe(src.path, ALONE_BYTES // 4)
    return found is not None and 4 * found[0] * found[1] > ALONE_BYTES


def _long_codec(task: EncodeTask):
    """The codec that codes this group chunk by chunk (a long recording or a large image read from a
    file), or None."""
    if len(task.sources) != 1:
        return None
    src, kind = task.sources[0]
    if kind not in ("audio", "image") or src.path is None:
        return None
    from neuralzip import chunked

    return chunked.plan(src.path, task.model, task.weights, task.level)


def encoded_groups(sources: list[Source], model: str, weights: str | None, level: int, jobs: int,
                   compare: bool = False, verify: bool = False, runner=None, spool_dir=None):
    """The sources' groups coded over `jobs` processes (or by `runner(tasks)`, which yields
    encode_group(task) for each task in order: a cluster), in order: (members, peers, seconds) each.
    Without a runner, a long recording is coded here chunk by chunk (encode_long; its chunks spooled
    in `spool_dir`, default the system's temporary folder), between runs of the others over the processes."""
    from neuralzip import api, parallel

    kinds = []
    for s in sources:
        k = medium(s.head(), s.other)
        if k is None:
            api.read_media(s.head(), str(s.path or s.name))  # raises the reader's one-line error
        kinds.append(k)
    sizes = [s.size() for s in sources]
    groups = plan_groups(kinds, sizes, model, weights, level, [declared_long(s, k) for s, k in zip(sources, kinds)])
    tasks = [EncodeTask([(sources[i], kinds[i]) for i in g], model, weights, level, compare, verify) for g in groups]
    if runner is not None:
        yield from runner(tasks)
        return
    jobs = parallel.resolve_jobs(jobs)
    start = 0
    for i, task in enumerate(tasks):
        codec = _long_codec(task)
        if codec is None:
            continue
        yield from parallel.ordered_map(encode_group, tasks[start:i], jobs)
        yield encode_long(task, codec, spool_dir)
        start = i + 1
    yield from parallel.ordered_map(encode_group, tasks[start:], jobs)


def compress_sources(sources: list[Source], out, archive: bool, model: str = "auto", weights: str | None = None,
                     level: int = 1, jobs: int = 0, compare: bool = False, verify: bool = False,
                     on_group=None, keep_reports: bool = True) -> tuple[list, int]:
    """Code `sources` into one version-3 file. `out`: a path (written to a temporary file beside it and
    renamed at the end: never a partial file) or a binary stream (stdout). `on_group(members, sizes,
    peers, seconds)` is called as each group is written. -> (member reports, or [] without
    keep_reports: memory then stays bounded whatever the count; the file's size)."""
    from neuralzip import api
    from neuralzip.archive import Writer

    if isinstance(out, (str, Path)):
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
        stream = open(tmp, "wb")
    else:
        tmp, stream = None, out
    reports = []
    try:
        w = Writer(stream, archive)
        for members, peers, seconds in encoded_groups(sources, model, weights, level, jobs, compare, verify,
                                                      spool_dir=None if tmp is None else out.parent):
            try:
                sizes_ = w.add_group(members)
            finally:
                for m in members:
                    if hasattr(m.chunks, "close"):  # a long recording's spool
                        m.chunks.close()
            if on_group:
                on_group(members, sizes_, peers, seconds)
            if not keep_reports:
                continue
            shares = _shares(members, sizes_)
            dims = [max(1, _dims(m)) for m in members]
            for m, share, peer, d in zip(members, shares, peers, dims):
                rep = api.member_report(m, m.name, share, seconds * d / sum(dims))
                rep.peers = peer
                reports.append(rep)
        total = w.close()
        if tmp is not None:
            stream.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, out)
        else:
            stream.flush()
    except BaseException:
        if tmp is not None:
            stream.close()
            tmp.unlink(missing_ok=True)
        raise
    return reports, total


def _dims(m) -> int:
    n = 1
    for v in m.shape:
        n *= int(v)
    return n


def _shares(members: list, sizes: list[int]) -> list[int]:
    """Bytes per member for the report: a chained group's bytes (its stream rides with the first member)
    spread over its members by their exact-model bits."""
    if len(members) == 1:
        return sizes
    bits = [max(m.stats.get("nll_bits", 0.0) + m.stats.get("initial_bits", 0.0), 1e-9) for m in members]
    total = sum(sizes)
    return [round(total * b / sum(bits)) for b in bits]


# ------------------------------------------------------------------ list

@dataclass
class Entry:
    name: str
    kind: str
    shape: tuple
    bits: int
    model: str
    bytes: int  # on disk: the member's record (a chain's stream counted with its group, spread by size)
    dims: int
    mtime: int | None = None

    @property
    def bpd(self) -> float:
        return 8 * self.bytes / self.dims if self.dims else 0.0


def open_table(path, max_memory=limits.DEFAULT_MAX_MEMORY):
    """-> (open file, its version-2 or -3 table); a version-1 file -> (None, None)."""
    from neuralzip import archive as records

    try:
        f = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        head = f.read(len(records.MAGIC) + 2)
        if not head.startswith(records.MAGIC):
            raise ContainerError("not a neuralzip file (bad magic bytes)")
        if len(head) < len(records.MAGIC) + 2:
            raise ContainerError("truncated container")
        version = int.from_bytes(head[-2:], "little")
        if version == 1:
            f.close()
            return None, None
        size = os.fstat(f.fileno()).st_size
        return f, records.read_table(f, size, max_memory)
    except BaseException:
        f.close()
        raise


def list_entries(path, max_memory=limits.DEFAULT_MAX_MEMORY) -> list[Entry]:
    """Every member from the table alone (versions 2 and 3; every shard's, for a shard set), or from the
    header (version 1)."""
    return [Entry(*row) for row in list_rows(path, max_memory)]


def list_rows(path, max_memory=limits.DEFAULT_MAX_MEMORY) -> list[tuple]:
    """Entry's fields as tuples (name, kind, shape, bits, model, bytes, dims): `ls` of 100,000 members
    without building an object per member."""
    parts, _ = open_parts(path, max_memory)
    if parts is None:
        from neuralzip import api

        _, members = container.loads(api.read_file(path), max_memory)
        return [(m.name, m.kind, tuple(m.shape), m.bits, m.model, share, _dims(m))
                for m, share in zip(members, api.payload_shares(members))]
    if len(parts) == 1:
        return _table_rows(parts[0].table)
    return [row for part in parts for row in _table_rows(part.table)]


def _table_rows(table) -> list[tuple]:
    import numpy as np

    from neuralzip import archive as records

    n = len(table)
    ndim = np.array([records.NDIM[k] for k in records.KINDS])[table.kind]
    shape = table.shape.astype(np.float64)
    dims = np.where(ndim == 3, shape[:, 0] * shape[:, 1] * shape[:, 2],
                    np.where(ndim == 2, shape[:, 0] * shape[:, 1], shape[:, 0]))
    size = table.size.astype(np.float64)
    # a chained group: its bytes spread over its members by size
    gsize = np.bincount(table.group_start, weights=size, minlength=n)
    gdims = np.bincount(table.group_start, weights=dims, minlength=n)
    share = np.where(table.group[table.group_start] > 1,
                     gsize[table.group_start] * dims / np.maximum(gdims[table.group_start], 1), size)
    share = np.rint(share).astype(np.int64).tolist()
    dims = dims.astype(np.int64).tolist()
    kind_names = [records.KINDS[k] for k in range(len(records.KINDS))]
    model_names = [m for m, _ in table.models]
    kinds, bits, model = table.kind.tolist(), table.bits.tolist(), table.model.tolist()
    h, w, c = (table.shape[:, j].astype(np.int64).tolist() for j in range(3))
    shapes = [(a, b, d) if k == 0 else ((a, b) if k == 1 else (a,)) for k, a, b, d in zip(kinds, h, w, c)]
    return [(name, kind_names[k], sh, bt, model_names[mo], sz, dm)
            for name, k, sh, bt, mo, sz, dm in zip(table.names, kinds, shapes, bits, model, share, dims)]


# ------------------------------------------------------------------ extract

def select(names: list[str], patterns) -> list[int]:
    """Indices of the members whose name equals or matches (glob) any pattern; all for none. A pattern
    that matches nothing is an error (exit 2), as in tar."""
    if not patterns:
        return list(range(len(names)))
    chosen = set()
    index = {n: i for i, n in enumerate(names)}
    for p in patterns:
        if p in index:
            chosen.add(index[p])
            continue
        hits = [i for i, n in enumerate(names) if fnmatch.fnmatchcase(n, p)]
        if not hits:
            raise InputError(f"no member of the archive matches {p!r}")
        chosen.update(hits)
    return sorted(chosen)


@dataclass
class Part:
    """One archive of what is read: a .nz, or one shard of a shard set; `base`: the number of its first
    member among all the parts' members."""

    path: str
    table: object
    base: int


def open_parts(path, max_memory=limits.DEFAULT_MAX_MEMORY):
    """-> (the parts: one for a .nz, one per shard for a shard set; whether it is an archive), or
    (None, None) for a version-1 file (read whole by its own path)."""
    from neuralzip import shards

    p = Path(path)
    if p.is_dir():
        parts, base = [], 0
        for shard in shards.read_manifest(p):
            f, table = open_table(shard, max_memory)
            if table is None:
                raise ContainerError(f"{shard}: a shard must be a version-2 or -3 archive")
            f.close()
            parts.append(Part(str(shard), table, base))
            base += len(table)
        names = [n for part in parts for n in part.table.names]
        if len(set(names)) != len(names):
            raise ContainerError(f"{p}: a member name is stored in two shards")
        return parts, True
    f, table = open_table(p, max_memory)
    if table is None:
        return None, None
    f.close()
    return [Part(str(p), table, 0)], table.archive


def part_names(parts) -> list[str]:
    return [n for part in parts for n in part.table.names] if len(parts) > 1 else parts[0].table.names


_WORKER: dict = {}


def _worker_open(parts, weights, max_memory) -> None:
    _WORKER.clear()
    _WORKER.update(parts=parts, weights=weights, max_memory=max_memory, files={})


def _worker_close() -> None:
    for f in _WORKER.get("files", {}).values():
        f.close()
    _WORKER["files"] = {}


class Check:
    """A member's target when it is only checked (`neuralzip test`): decoded, its checksum verified
    and (unless it is decoded chunk by chunk) its file rebuilt in memory, then dropped."""


def decode_groups(task):
    """Decode the groups of `task` ([(part, first, end, [(index, target)])], member numbers within
    the part) and write each wanted member's restored file to its target: a temporary path, a stream,
    a Check (nowhere), or None (return its bytes). -> [(index, bytes or None)]."""
    from neuralzip import api

    out = []
    for k, first, end, wanted in task:
        part = _WORKER["parts"][k]
        f = _WORKER["files"].get(k)
        if f is None:
            f = _WORKER["files"][k] = open(part.path, "rb")
        if end - first == 1 and _decode_long(f, part.table, first, wanted[0][1]):
            out.append((first, None))
            continue
        members = list(container.read_members(f, part.table, first, end))
        media = api.decode_members(members, _WORKER["weights"], _WORKER["max_memory"])
        for i, tmp in wanted:
            m = members[i - first]
            data = api.restore(m, media[i - first])
            if isinstance(tmp, Check):
                out.append((i, None))
                continue
            if tmp is None:
                out.append((i, data))
                continue
            if not isinstance(tmp, (str, Path)):  # a stream (stdout)
                tmp.write(data)
                out.append((i, None))
                continue
            with open(tmp, "wb") as g:
                g.write(data)
            apply_stat(tmp, m)
            out.append((i, None))
    return out


def _decode_long(f, table, i: int, target) -> bool:
    """Member i (a group of one) decoded chunk by chunk into `target` (a temporary path, or a stream),
    if it is a long recording whose codec can (neuralzip/chunked.py); False: it is not."""
    from neuralzip import api, chunked
    from neuralzip import archive as records

    from_table = (records.KINDS[table.kind[i]], table.shape_of(i))
    if target is None or not chunked.long_enough(*from_table):
        return False
    m = next(container.read_members(f, table, i, i + 1, payload=records.LATER))
    codec = api._member_codec(m, _WORKER["weights"])
    if not chunked.decodes(m, codec):
        return False
    api.check_members([m], _WORKER["weights"], _WORKER["max_memory"], chunked=True)
    if isinstance(target, Check):
        chunked.decode_to(m, codec, None)
    elif isinstance(target, (str, Path)):
        chunked.decode_file(m, codec, target)
        apply_stat(target, m)
    else:
        chunked.decode_stream(m, codec, target)
    return True


def apply_stat(path, m) -> None:
    """The stored permission bits (else the usual ones under the umask) and modification time."""
    if m.mode is not None:
        os.chmod(path, m.mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)
    if m.mtime is not None:
        try:
            os.utime(path, (m.mtime, m.mtime))
        except (OverflowError, OSError, ValueError):
            pass  # a time this system cannot hold: the file keeps the time of extraction


def plan_tasks(parts, indices: list[int], temps: dict, jobs: int = 1) -> list[list]:
    """The groups holding the wanted members (numbers among all parts' members), packed into tasks of
    about TASK_BYTES (smaller when that would leave fewer than 4 tasks per process: small archives
    are spread too)."""
    spans: dict[tuple, list] = {}
    k = 0
    for i in indices:  # ascending
        while i >= parts[k].base + len(parts[k].table):
            k += 1
        local = i - parts[k].base
        first, end = parts[k].table.group_span(local)
        spans.setdefault((k, first), [k, first, end, []])[3].append((local, temps.get(i)))

    def nbytes(span) -> int:
        t = parts[span[0]].table
        return int(t.offset[span[2] - 1] + t.size[span[2] - 1] - t.offset[span[1]])

    total = sum(nbytes(sp) for sp in spans.values())
    target = min(TASK_BYTES, max(1, total // (4 * jobs))) if jobs > 1 else TASK_BYTES
    tasks, cur, room = [], [], 0
    for key in sorted(spans):
        span = spans[key]
        n = nbytes(span)
        if cur and room + n > target:
            tasks.append(cur)
            cur, room = [], 0
        cur.append(tuple(span))
        room += n
    if cur:
        tasks.append(cur)
    return tasks


def extract(path, out=None, patterns=(), force: bool = False, jobs: int = 0, weights: str | None = None,
            max_memory=limits.DEFAULT_MAX_MEMORY, to_stream=None, around=None) -> list[Path]:
    """Restore the chosen members (all for no pattern) of a .nz or a shard set: under directory `out`
    (an archive), at `out` or beside the .nz (a single file), or, with `to_stream`, the one chosen
    member's bytes to that binary stream. All or nothing: each member goes to a temporary name beside
    its target, and every one is renamed only when all are decoded (removed, with the folders made
    for them, on a failure). -> the paths written."""
    from neuralzip import api, parallel

    nz = Path(path)
    parts, is_archive = open_parts(nz, api._max_memory(max_memory))
    if parts is None:
        return _extract_v1(nz, out, patterns, force, weights, max_memory, to_stream, around)
    names = part_names(parts)
    indices = select(names, patterns)
    if to_stream is not None:
        if len(indices) != 1:
            raise InputError(f"-o - writes one member to stdout; {len(indices)} are chosen (use --member)")
        _worker_open(parts, weights, max_memory)
        try:
            decode_groups(plan_tasks(parts, indices, {indices[0]: to_stream})[0])
        finally:
            _worker_close()
        to_stream.flush()
        return []
    if out is None and nz.is_dir():
        raise InputError(f"{nz} is a shard set: give -o DIR to extract it")
    targets = _targets(nz, out, is_archive or len(names) > 1, [names[i] for i in indices])
    for t in targets:
        check_writable(t, force)
    made = _make_parents(targets)
    temps = {i: t.with_name(f".{t.name}.{secrets.token_hex(4)}.part") for i, t in zip(indices, targets)}
    jobs = parallel.resolve_jobs(jobs)
    tasks = plan_tasks(parts, indices, temps, jobs)
    label = names[indices[0]] if len(indices) == 1 else f"{len(indices)} members"
    try:
        with (around(label) if around else nullcontext()):
            for _ in parallel.ordered_map(decode_groups, tasks, jobs, _worker_open, (parts, weights, max_memory)):
                pass
        for i, t in zip(indices, targets):
            os.replace(temps[i], t)
    except BaseException:
        _undo(temps.values(), made)
        raise
    finally:
        _worker_close()
    return targets


def check(path, jobs: int = 0, weights: str | None = None, max_memory=limits.DEFAULT_MAX_MEMORY) -> int:
    """Decode every member of a .nz or a shard set and verify its checksum, writing nothing, over
    `jobs` processes and group by group (long recordings and large images chunk by chunk), so in
    the memory extracting takes. -> the number of members; a failure raises ContainerError."""
    from neuralzip import api, parallel

    parts, _ = open_parts(Path(path), api._max_memory(max_memory))
    if parts is None:  # version 1: read whole
        return api.test_bytes(api.read_file(path), weights, max_memory)
    indices = list(range(sum(len(part.table) for part in parts)))
    jobs = parallel.resolve_jobs(jobs)
    tasks = plan_tasks(parts, indices, {i: Check() for i in indices}, jobs)
    try:
        for _ in parallel.ordered_map(decode_groups, tasks, jobs, _worker_open, (parts, weights, max_memory)):
            pass
    finally:
        _worker_close()
    return len(indices)


def _targets(nz: Path, out, is_archive: bool, names: list[str]) -> list[Path]:
    if is_archive:
        root = Path(out) if out is not None else nz.parent
        return [root / safe_member_name(n) for n in names]
    return [Path(out) if out is not None else nz.parent / safe_member_name(names[0]).name]


def _make_parents(targets: list[Path]) -> list[Path]:
    """Create the folders the targets need; -> those created, outermost first (removed on a failure)."""
    made = []
    for t in targets:
        missing = []
        p = t.parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
                made.append(d)
            except FileExistsError:
                pass
            except OSError as exc:
                raise InputError(f"{d}: cannot create the folder ({exc.strerror})") from None
    return made


def _extract_v1(nz: Path, out, patterns, force, weights, max_memory, to_stream, around) -> list[Path]:
    """Version 1: the whole file is read and decoded in memory (as the version-1 reader always did)."""
    from neuralzip import api

    top, members = container.loads(api.read_file(nz), api._max_memory(max_memory))
    indices = select([m.name for m in members], patterns)
    if to_stream is not None and len(indices) != 1:
        raise InputError(f"-o - writes one member to stdout; {len(indices)} are chosen (use --member)")
    targets = [] if to_stream is not None else \
        _targets(nz, out, top.get("archive") or len(members) > 1, [members[i].name for i in indices])
    for t in targets:
        check_writable(t, force)
    label = members[indices[0]].name if len(indices) == 1 else f"{len(indices)} members"
    with (around(label) if around else nullcontext()):
        decoded = api.decode_members(members, weights, max_memory)  # a version-1 chain spans the file
    restored = [api.restore(members[i], decoded[i]) for i in indices]
    if to_stream is not None:
        to_stream.write(restored[0])
        to_stream.flush()
        return []
    _write_all(targets, restored)
    return targets


def extract_stream(stream, out=None, force: bool = False, weights: str | None = None,
                   max_memory=limits.DEFAULT_MAX_MEMORY, to_stream=None, name_hint: str | None = None) -> list[Path]:
    """Decode a .nz read front to back from a pipe, group by group, in bounded memory: a single member
    to `to_stream` (or to `out`), several under directory `out` (temporary names, renamed at the end)."""
    from neuralzip import api, chunked
    from neuralzip import archive as records

    head = stream.read(len(records.MAGIC) + 2)
    if not head.startswith(records.MAGIC):
        raise ContainerError("not a neuralzip file (bad magic bytes)" if not records.MAGIC.startswith(head) or not head
                             else "truncated container")
    if len(head) < len(records.MAGIC) + 2:
        raise ContainerError("truncated container")
    version = int.from_bytes(head[-2:], "little")
    if version == 1:  # no streaming layout: the whole file, then the in-memory path
        rest = stream.read()
        _, members = container.loads(head + rest, api._max_memory(max_memory))
        decoded = api.decode_members(members, weights, max_memory)
        items = [(m, api.restore(m, media)) for m, media in zip(members, decoded)]
        return _write_items(items, out, force, to_stream)
    if version not in records.READ_VERSIONS:
        raise ContainerError(f"unknown container format version {version} {container.READS}")
    written: list[tuple[Path, Path]] = []
    made: list[Path] = []
    pending: list = []
    emitted = [0]
    is_archive = [True]

    def to_stdout() -> bool:
        if out is None and to_stream is not None:
            if emitted[0] or is_archive[0]:  # known from the header, before anything is written
                raise InputError("this .nz is an archive: give -o DIR to extract its members")
            emitted[0] += 1
            return True
        return False

    def temporary(m) -> Path:
        """A temporary name beside the member's target, listed to be renamed (or removed) at the end."""
        if out is not None and not is_archive[0]:
            if written:
                raise ContainerError("corrupt container: a single-file container holds several members")
            t = Path(out)
        else:
            t = (Path(out) if out is not None else Path(".")) / safe_member_name(m.name)
        check_writable(t, force)
        made.extend(_make_parents([t]))
        tmp = t.with_name(f".{t.name}.{secrets.token_hex(4)}.part")
        written.append((tmp, t))
        return tmp

    def flush():
        media = api.decode_members(pending, weights, max_memory)
        for m, md in zip(pending, media):
            data = api.restore(m, md)
            if to_stdout():
                to_stream.write(data)
                continue
            tmp = temporary(m)
            tmp.write_bytes(data)
            apply_stat(tmp, m)
        pending.clear()

    def long_member(m) -> bool:
        """A long recording whose chunks are still in the pipe: decoded chunk by chunk, or read into
        memory (False) when its codec decodes recordings whole."""
        codec = api._member_codec(m, weights)
        if not chunked.decodes(m, codec):
            m.chunks = m.chunks.read_all()
            return False
        api.check_members([m], weights, max_memory, chunked=True)
        if to_stdout():
            chunked.decode_stream(m, codec, to_stream)
            return True
        tmp = temporary(m)
        chunked.decode_file(m, codec, tmp)
        apply_stat(tmp, m)
        return True

    def later(rec) -> bool:
        return rec.group == 1 and chunked.long_enough(rec.kind, rec.shape) and chunked.writable(rec.kind, rec.meta)

    try:
        for archive, m in container.iter_pipe(stream, version, later):
            is_archive[0] = archive
            if archive and out is None and to_stream is not None:
                raise InputError("this .nz is an archive: give -o DIR to extract its members")
            if m.group and pending:
                flush()
            if isinstance(m.chunks, records.RecordPayload) and long_member(m):
                continue
            pending.append(m)
        if pending:
            flush()
        for tmp, t in written:
            os.replace(tmp, t)
    except BaseException:
        _undo([tmp for tmp, _ in written], made)
        raise
    if to_stream is not None:
        to_stream.flush()
    return [t for _, t in written]


def _write_items(items, out, force, to_stream) -> list[Path]:
    from neuralzip import api

    if out is None and to_stream is not None:
        if len(items) != 1:
            raise InputError("the archive holds several members: give -o DIR to extract them")
        to_stream.write(items[0][1])
        to_stream.flush()
        return []
    root = Path(out) if out is not None else Path(".")
    targets = [root / safe_member_name(m.name) for m, _ in items]
    for t in targets:
        check_writable(t, force)
    _write_all(targets, [data for _, data in items])
    return targets


def _undo(temps, made) -> None:
    """A failed extraction leaves nothing: its temporary files, then the folders it made (deepest
    first, only where they are empty)."""
    for tmp in temps:
        tmp.unlink(missing_ok=True)
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass


def _write_all(targets, datas) -> None:
    """Write every restored file atomically; if one fails, remove the ones already written."""
    written = []
    try:
        for t, data in zip(targets, datas):
            write_atomic(t, data)
            written.append(t)
    except BaseException:
        _undo(written, [])
        raise
