"""The .nz container: format version 3 (archive.py, written by default), version 2 (read: version 3
differs only in bytes it saves, archive.py says which) and version 1 (read, and written by dumps_v1
for tests).

Version 1:
    magic (8 bytes) | format version (u16) | header length (u32) |
    header (JSON, deflated: metadata only, never samples) |
    CRC-32 of the header (u32) | chunk payloads, each followed by its CRC-32

The header lists the members. Each member records its stored name, kind,
model, weights hash, shape, bit depth, restore metadata, codec parameters,
the SHA-256 of its canonical content, and the length of each independently
decodable chunk. The constriction version that coded the payload is recorded
once for the file.

Both versions load into the same `Member` objects; `loads` takes either.
"""

import base64
import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass, field

from neuralzip import __version__, limits
from neuralzip.errors import ContainerError
from neuralzip.fileio import safe_member_name

MAGIC = b"\x89NZIP\r\n\x1a"
READS = "(this neuralzip reads 1, 2 and 3)"


@dataclass
class Member:
    name: str
    kind: str
    model: str
    weights: str | None
    shape: tuple
    bits: int
    meta: dict
    params: dict
    sha256: str
    chunks: list = field(default_factory=list)  # bytes of each chunk
    stats: dict = field(default_factory=dict)  # likelihood figures at compress time
    mtime: int | None = None  # modification time, whole seconds since 1970 (versions 2 and 3)
    mode: int | None = None  # permission bits (versions 2 and 3)
    group: int = 1  # versions 2 and 3: members in the group this one starts (0: it continues a group)

    def header(self) -> dict:
        """The member's description, the same whichever version stored it (the checksum as its
        first 16 hex digits: versions 2 and 3 keep those)."""
        return {"name": self.name, "kind": self.kind, "model": self.model, "weights": self.weights,
                "shape": list(self.shape), "bits": self.bits, "meta": self.meta, "params": self.params,
                "checksum": self.sha256[:16], "chunks": chunk_lengths(self.chunks), "stats": self.stats}

    def v1_header(self) -> dict:
        return {"name": self.name, "kind": self.kind, "model": self.model, "weights": self.weights,
                "shape": list(self.shape), "bits": self.bits, "meta": self.meta, "params": self.params,
                "sha256": self.sha256, "chunks": chunk_lengths(self.chunks), "stats": self.stats}

    @property
    def payload_bytes(self) -> int:
        return sum(n + 4 for n in chunk_lengths(self.chunks))


def chunk_lengths(chunks) -> list[int]:
    """The length of each chunk: `chunks` is a list of bytes, or an object that holds its chunks
    elsewhere (a long recording's, in a spool file or still in the .nz) and lists their `lengths`."""
    lengths = getattr(chunks, "lengths", None)
    return list(lengths) if lengths is not None else [len(c) for c in chunks]


class ContentHasher:
    """The content checksum (canonical_digest) fed block by block: the description first, then the
    samples in C order, as many rows (frames of audio) at a time as the caller has."""

    def __init__(self, kind: str, shape, dtype, bits: int, meta: dict):
        import numpy as np

        self.dtype = np.dtype(dtype)
        self.h = hashlib.sha256()
        desc = {"kind": kind, "shape": [int(v) for v in shape], "dtype": self.dtype.str, "bits": bits, "meta": meta}
        self.h.update(json.dumps(desc, sort_keys=True, separators=(",", ":")).encode())

    def update(self, samples) -> None:
        import numpy as np

        little = samples.astype(self.dtype.newbyteorder("<"), copy=False)
        self.h.update(np.ascontiguousarray(little).reshape(-1).view(np.uint8))

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def canonical_digest(kind: str, samples, bits: int, meta: dict) -> str:
    """SHA-256 of the content itself (not of any file encoding of it): docs/FORMAT.md."""
    h = ContentHasher(kind, samples.shape, samples.dtype, bits, meta)
    h.update(samples)
    return h.hexdigest()


def digest_matches(member: Member, digest: str) -> bool:
    """Whether the decoded content's SHA-256 (hex) is the one stored (in full, or its first 8 bytes)."""
    return len(member.sha256) >= 16 and digest[:len(member.sha256)] == member.sha256


def dumps(members: list[Member], archive: bool = False) -> bytes:
    """The members as a version-3 file in memory. `archive`: the members came from several files or
    a directory, so decompress extracts them under a directory rather than as one file. Members of a
    bits-back chain (params "chain" > 1) are written as one group with everything else given."""
    import io

    from neuralzip import archive as records

    buf = io.BytesIO()
    w = records.Writer(buf, archive)
    for group in default_groups(members):
        w.add_group(group)
    w.close()
    return buf.getvalue()


def default_groups(members: list[Member]) -> list[list[Member]]:
    if any(is_int(m.params.get("chain")) and m.params["chain"] > 1 for m in members):
        return [list(members)]
    return [[m] for m in members]


def dumps_v1(members: list[Member], archive: bool = False) -> bytes:
    """The members in format version 1 (for tests and the fuzzer's corpus)."""
    from neuralzip.coding.stream import CONSTRICTION_VERSION

    for m in members:
        if len(m.sha256) != 64:
            raise ContainerError(f"member {m.name!r} has no full SHA-256 (read from version 2 or 3): no version-1 file")
    header = json.dumps({"neuralzip": __version__, "constriction": CONSTRICTION_VERSION, "archive": archive,
                         "members": [m.v1_header() for m in members]}, separators=(",", ":")).encode()
    header = zlib.compress(header, 9)
    parts = [MAGIC, struct.pack("<HI", 1, len(header)), header, struct.pack("<I", zlib.crc32(header))]
    for m in members:
        for c in m.chunks:
            parts += [c, struct.pack("<I", zlib.crc32(c))]
    return b"".join(parts)


def loads(data: bytes, max_memory: int | None = limits.DEFAULT_MAX_MEMORY) -> tuple[dict, list[Member]]:
    """Parse and check the structure and every header value; -> (file header, members with their chunks).
    `max_memory` (bytes, None or 0: no limit) also bounds how far the deflated header may inflate."""
    if not data.startswith(MAGIC):
        raise ContainerError("not a neuralzip file (bad magic bytes)")
    if len(data) < len(MAGIC) + 6:
        raise ContainerError("truncated container")
    version = struct.unpack_from("<H", data, len(MAGIC))[0]
    from neuralzip import archive as records

    if version in records.READ_VERSIONS:
        return _loads_v2(data, max_memory)
    if version != 1:
        raise ContainerError(f"unknown container format version {version} {READS}")
    hlen = struct.unpack_from("<I", data, len(MAGIC) + 2)[0]
    pos = len(MAGIC) + 6
    header = data[pos:pos + hlen]
    if len(header) != hlen or len(data) < pos + hlen + 4:
        raise ContainerError("truncated container (header)")
    pos += hlen
    if struct.unpack_from("<I", data, pos)[0] != zlib.crc32(header):
        raise ContainerError("corrupt container header (CRC mismatch)")
    pos += 4
    try:
        top = json.loads(_inflate(header, max_memory))
    except (ValueError, TypeError, zlib.error, RecursionError) as exc:
        raise ContainerError(f"corrupt container header: {str(exc)[:200]}") from None
    members = _members(top)
    for m, lens in zip(members, [h["chunks"] for h in top["members"]]):
        for n in lens:
            chunk = data[pos:pos + n]
            if len(chunk) != n or len(data) < pos + n + 4:
                raise ContainerError("truncated container (payload)")
            if struct.unpack_from("<I", data, pos + n)[0] != zlib.crc32(chunk):
                raise ContainerError(f"corrupt payload in member {m.name!r} (CRC mismatch)")
            m.chunks.append(chunk)
            pos += n + 4
    if pos != len(data):
        raise ContainerError("trailing bytes after the last chunk")
    return top, members


def _loads_v2(data: bytes, max_memory) -> tuple[dict, list[Member]]:
    """A whole version-2 or -3 file: its table, then every byte front to back (records, definitions
    between them, the table's CRC and count), each record checked against its row of the table."""
    import io

    from neuralzip import archive as records

    f = io.BytesIO(data)
    table = records.read_table(f, len(data), max_memory)
    f.seek(len(records.MAGIC) + 2)
    members = []
    for i, (archive, m) in enumerate(iter_pipe(f, table.version)):
        end = f.tell()
        if (i >= len(table) or archive != table.archive or m.name != table.names[i]
                or records.KINDS.index(m.kind) != table.kind[i] or tuple(m.shape) != table.shape_of(i) or m.bits != int(table.bits[i]) or m.group != int(table.group[i])
                or (m.model, m.weights) != table.models[int(table.model[i])]
                or end != int(table.offset[i]) + int(table.size[i])):
            raise ContainerError(f"corrupt container: member {m.name!r} does not match the member table")
        m.stats = table.stats_of(i)
        members.append(m)
    return top_of(table, members), members


def top_of(table, members: list[Member]) -> dict:
    """The file header in the shape version 1 has (for `info --json` and callers of loads)."""
    from neuralzip import archive as records

    return {**records.parse_info(table.info), "version": table.version, "archive": table.archive,
            "members": [dict(m.header(), mtime=m.mtime, mode=m.mode) for m in members]}


def read_members(f, table, first: int = 0, end: int | None = None, payload=True):
    """Members first..end-1 of a seekable version-2 or -3 file, each record found by the table's offset and
    checked as a v1 header entry is and against its row. Yields Member objects one by one.
    payload=archive.LATER: each member's chunks are left in the file (an archive.RecordPayload,
    to be read before the next member is asked for)."""
    from neuralzip import archive as records

    cache: dict[int, bytes] = {}  # descriptions used as dictionaries (a few: the writer offers DICT_SLOTS)

    def lookup(j: int) -> bytes:
        if j not in cache:
            if not 0 <= j < current[0]:
                raise ContainerError("corrupt container: a description refers to a member that does not precede it")
            back = f.tell()
            f.seek(int(table.offset[j]))
            rec = records.read_record(records.Source(f), table.definitions(), None, payload=False)
            f.seek(back)
            if rec is None or rec.dict_ref:
                raise ContainerError("corrupt container: a description refers to one that is not self-contained")
            if len(cache) >= 64:
                cache.clear()
            cache[j] = rec.text
        return cache[j]

    current = [0]
    defs = table.definitions(lookup)
    for i in range(first, len(table) if end is None else end):
        current[0] = i
        f.seek(int(table.offset[i]))
        size = int(table.size[i])
        rec = records.read_record(records.Source(f), defs, size, payload)
        if rec is None:
            raise ContainerError("corrupt container: a member table offset points at the end marker")
        m = record_member(rec, defs.models, i)
        later = isinstance(rec.chunks, records.RecordPayload)
        if later:
            rec.chunks.end = int(table.offset[i]) + size
        if (m.name != table.names[i] or records.KINDS.index(m.kind) != table.kind[i] or m.bits != int(table.bits[i])
                or tuple(m.shape) != table.shape_of(i) or rec.group != int(table.group[i])
                or rec.model != int(table.model[i]) or (not later and f.tell() != int(table.offset[i]) + size)):
            raise ContainerError(f"corrupt container: member {m.name!r} does not match the member table")
        if rec.dict_ref == 0:
            cache[i] = rec.text
        m.stats = table.stats_of(i)
        yield m


def iter_pipe(f, version: int, later=None):
    """Members read front to back from a stream (a pipe) just past the magic and `version` (2 or 3): the
    records in order, each checked, then the table and trailer (or the brief trailer) that follow them
    checked for agreement.
    Yields (archive flag, first Member), then Member objects one by one. `later(record)`: whether a
    record's chunks stay in the stream (an archive.RecordPayload that the caller reads to its end
    before asking for the next member)."""
    from neuralzip import archive as records

    src = records.Source(f)
    archive, _ = records.read_header(src, version)
    defs = records.PipeDefinitions(version)
    names, count, pending = set(), 0, 0
    payload = True if later is None else (lambda rec: records.LATER if later(rec) else True)
    while True:
        rec = records.read_record(src, defs, None, payload)
        if rec is None:
            break
        m = record_member(rec, defs.models, count)
        defs.seen(count, rec)
        if m.name in names:
            raise ContainerError(f"corrupt container header: member name {m.name!r} is stored twice in the archive")
        names.add(m.name)
        if (rec.group == 0) != (pending > 0):
            raise ContainerError(f"corrupt container: member {m.name!r} does not fit the groups before it")
        pending = (rec.group or pending) - 1
        count += 1
        yield archive, m
        if isinstance(rec.chunks, records.RecordPayload) and not rec.chunks.done:
            raise ValueError("a member's chunks must be read before the next member")
    if pending or not count:
        raise ContainerError("corrupt container: the last group is incomplete" if count else
                             "corrupt container: no members")
    # the table and the trailer: read in pieces (the trailer is the last bytes), the table's CRC kept
    crc, size, tail = 0, 0, b""
    while True:
        piece = f.read(1 << 20)
        if not piece:
            break
        tail += piece
        keep = len(tail) - records.TRAILER.size
        if keep > 0:
            crc, size, tail = zlib.crc32(tail[:keep], crc), size + keep, tail[keep:]
    if version >= 3 and count == 1 and tail.endswith(records.BRIEF_TAG) and size == 0 and len(tail) == records.BRIEF.size:
        records.read_brief(tail)
        return
    if len(tail) < records.TRAILER.size or tail[-4:] != records.TRAILER_TAG:
        raise ContainerError("truncated container (member table or trailer)")
    _, tsize, _, n, tcrc, _ = records.TRAILER.unpack(tail)
    if tsize != size or tcrc != crc:
        raise ContainerError("corrupt container: member table CRC mismatch, or bytes after the table")
    if n != count:
        raise ContainerError("corrupt container: the member table does not list the members read")


def record_member(rec, models: list, index: int) -> Member:
    """A version-2 or -3 record as a Member, every value checked as version 1 checks its header entry."""
    model, weights = models[rec.model]
    h = {"name": rec.name, "kind": rec.kind, "model": model, "weights": weights, "shape": list(rec.shape),
         "bits": rec.bits, "meta": rec.meta, "params": rec.params, "sha256": rec.checksum,
         "chunks": chunk_lengths(rec.chunks)}
    m = _member(h, index, version=2)
    m.chunks = rec.chunks
    m.mtime, m.mode, m.group = rec.mtime, rec.mode, rec.group
    return m


MIN_HEADER_LIMIT = 64 << 20


def _inflate(header: bytes, max_memory: int | None) -> bytes:
    """The header's JSON; a header that inflates past an eighth of the memory limit (at least
    64 MiB; parsing takes several times its size) is refused rather than inflated (a zip bomb)."""
    limit = max(MIN_HEADER_LIMIT, max_memory // 8) if max_memory else 0
    d = zlib.decompressobj()
    out = d.decompress(header, limit)
    if d.unconsumed_tail:
        raise ContainerError(f"corrupt container header: it inflates to more than {limit >> 20} MiB "
                             "(raise --max-memory to read it)")
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    if d.unused_data:
        raise zlib.error("bytes after the end of the deflated header")
    return out


def _fail(field: str, value, why: str, who: str = "") -> ContainerError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return ContainerError(f"corrupt container header: {who}{field} {shown} {why}")


def is_int(v) -> bool:
    """A JSON integer (not a bool, not a float)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _int(h: dict, key: str, lo: int, hi: int, who: str) -> int:
    v = h[key]
    if not is_int(v) or not lo <= v <= hi:
        raise _fail(key, v, f"is not an integer in {lo}..{hi}", who)
    return v


def _members(top) -> list[Member]:
    if not isinstance(top, dict):
        raise _fail("header", top, "is not a JSON object")
    hs = top.get("members")
    if not isinstance(hs, list) or not hs:
        raise _fail("members", hs, "is not a non-empty list")
    if not isinstance(top.get("archive", False), bool):
        raise _fail("archive", top.get("archive"), "is not true or false")
    members = [_member(h, i) for i, h in enumerate(hs)]
    seen = set()
    for m in members:
        if m.name in seen:
            raise _fail("name", m.name, "is stored twice in the archive", "member ")
        seen.add(m.name)
    return members


_HEX = set("0123456789abcdef")


def _member(h, index: int = 0, version: int = 1) -> Member:
    """One member's header entry, every value type- and range-checked (the header is untrusted).
    Checks that need the codec (its parameters, the chunk count, the memory it needs) are api's."""
    if not isinstance(h, dict):
        raise _fail(f"members[{index}]", h, "is not a JSON object")
    missing = [k for k in ("name", "kind", "model", "weights", "shape", "bits", "meta", "params", "sha256", "chunks")
               if k not in h]
    if missing:
        raise ContainerError(f"corrupt container header: members[{index}] has no {missing[0]!r}")
    name = h["name"]
    if not isinstance(name, str) or not 0 < len(name) <= 4096:
        raise _fail("name", name, "is not a member name", f"members[{index}] ")
    safe_member_name(name)  # absolute paths, '..', drive letters, NUL: refused
    who = f"member {name!r}: "
    kind = h["kind"]
    if kind not in (("image", "audio") if version == 1 else ("image", "audio", "file")):
        raise _fail("kind", kind, "is not 'image' or 'audio'", who)
    model = h["model"]
    if not isinstance(model, str) or not 0 < len(model) <= 64:
        raise _fail("model", model, "is not a model name", who)
    weights = h["weights"]
    if weights is not None and (not isinstance(weights, str) or len(weights) != 16 or not set(weights) <= _HEX):
        raise _fail("weights", weights, "is not a weights hash (16 hex digits)", who)
    shape = h["shape"]
    if not isinstance(shape, list) or len(shape) != {"image": 3, "audio": 2, "file": 1}[kind] \
            or not all(map(is_int, shape)):
        raise _fail("shape", shape, f"is not the shape of an {kind} " + {
            "image": "([height, width, channels])", "audio": "([frames, channels])", "file": "([bytes])"}[kind], who)
    if kind == "file":
        if not 0 <= shape[0] <= limits.MAX_FRAMES:
            raise _fail("shape", shape, "is out of range (0..2^48 bytes)", who)
    elif kind == "image":
        lo, hi = limits.IMAGE_CHANNELS
        if not (0 < shape[0] <= limits.MAX_SIDE and 0 < shape[1] <= limits.MAX_SIDE and lo <= shape[2] <= hi):
            raise _fail("shape", shape, f"is out of range (sides 1..{limits.MAX_SIDE}, channels {lo}..{hi})", who)
    else:
        lo, hi = limits.AUDIO_CHANNELS
        if not (0 <= shape[0] <= limits.MAX_FRAMES and lo <= shape[1] <= hi):
            raise _fail("shape", shape, f"is out of range (frames 0..2^48, channels {lo}..{hi})", who)
    bits = _int(h, "bits", *{"image": limits.IMAGE_BITS, "audio": limits.AUDIO_BITS, "file": (8, 8)}[kind], who)
    meta, params, stats = h["meta"], h["params"], h.get("stats", {})
    for key, v in (("meta", meta), ("params", params), ("stats", stats)):
        if not isinstance(v, dict):
            raise _fail(key, v, "is not a JSON object", who)
    _check_meta(meta, kind, tuple(shape), bits, who)
    for key, v in stats.items():  # likelihood figures for the report: numbers only
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or abs(v) > 1e100:
            raise _fail(f"stats.{key}", v, "is not a finite number", who)
    sha = h["sha256"]
    want = 64 if version == 1 else 16
    if not isinstance(sha, str) or len(sha) != want or not set(sha) <= _HEX:
        raise _fail("sha256", sha, f"is not a SHA-256 digest ({want} hex digits)", who)
    chunks = h["chunks"]
    if not isinstance(chunks, list) or not all(is_int(n) and 0 <= n < 1 << 40 for n in chunks):
        raise _fail("chunks", chunks, "is not a list of chunk lengths", who)
    return Member(name=name, kind=kind, model=model, weights=weights, shape=tuple(shape), bits=bits,
                  meta=meta, params=params, sha256=sha, stats=stats)


# the restore metadata's format, per kind (media/detect.py's writers), and the fields each writer reads
FORMATS = {"image": ("png", "pnm", "bmp", "tiff", "array"), "audio": ("wav", "flac", "aiff", "array"),
           "file": ("file",)}


def _check_meta(meta: dict, kind: str, shape: tuple, bits: int, who: str) -> None:
    fmt = meta.get("format")
    if fmt not in FORMATS[kind]:
        raise _fail("meta.format", fmt, f"is not an {kind} format this neuralzip writes", who)
    rate = meta.get("rate", 0)
    if not is_int(rate) or not 0 <= rate <= limits.MAX_RATE:
        raise _fail("meta.rate", rate, "is not a sample rate", who)
    # the values a writer sizes its output by (the rest only ever fails cleanly)
    for key, allowed in _META_CHOICES.get(fmt, {}).items():
        v = meta.get(key)
        if not isinstance(v, (int, str)) or isinstance(v, bool) or v not in allowed:
            raise _fail(f"meta.{key}", meta.get(key), f"is not one of the {fmt} values this neuralzip writes", who)
    if fmt == "png":
        ihdr = meta.get("ihdr")
        try:
            ihdr = base64.b64decode(ihdr.encode("ascii"), validate=True)
        except (AttributeError, ValueError, UnicodeError):
            ihdr = b""
        if len(ihdr) != 13 or ihdr[8] not in (1, 2, 4, 8, 16) or ihdr[9] not in (0, 2, 3, 4, 6):
            raise _fail("meta.ihdr", meta.get("ihdr"), "is not a PNG image header", who)
        width, height = struct.unpack(">II", ihdr[:8])
        if (height, width, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ihdr[9]], ihdr[8]) != shape + (bits,):
            raise _fail("shape", list(shape), f"and bits {bits} do not match the PNG header "
                        f"({width}x{height}, colour type {ihdr[9]}, depth {ihdr[8]})", who)
    # what each reader makes: the channel count and bit depth follow from the format's own fields
    want = None
    if fmt == "pnm":
        want = (3 if meta["mode"] == "RGB" else 1, meta["maxval"].bit_length())
    elif fmt == "bmp":
        want = (meta["bitcount"] // 8, 8) if meta["bitcount"] >= 8 else (1, meta["bitcount"])
    elif fmt == "tiff":
        want = {"1": (1, 1), "L": (1, 8), "LA": (2, 8), "P": (1, 8), "RGB": (3, 8), "RGBA": (4, 8),
                "I;16": (1, 16), "I;16B": (1, 16)}[meta["mode"]]
    elif fmt == "wav":
        want = (shape[1], 8 * meta["width"])
    elif fmt in ("flac", "aiff"):
        want = (shape[1], {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}[meta["subtype"]])
    if want is not None and want != (shape[-1], bits):
        raise _fail("shape", list(shape), f"and bits {bits} do not match the {fmt} metadata "
                    f"({want[0]} channel(s), {want[1]} bits)", who)


_META_CHOICES = {
    "bmp": {"bitcount": (1, 4, 8, 24, 32)},
    "pnm": {"mode": ("1", "L", "RGB"), "maxval": range(1, 65536)},
    "wav": {"width": (1, 2, 3, 4)},
    "flac": {"subtype": ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32")},
    "aiff": {"subtype": ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32")},
    "tiff": {"mode": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B")},
}
