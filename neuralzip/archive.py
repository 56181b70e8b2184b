"""Container format versions 3 (written) and 2 (read): a streamed archive with a member table at the end.

    header | record ... | end marker | member table (deflated) | trailer
    header | record | end marker | brief trailer          (version 3, a file of one member)

Each member is written as soon as it is coded, as one record (a small binary local
header, its payload and a CRC-32), so a pipe can be decoded front to back; the table
at the end (like zip's central directory) lists every member with its record's
offset, so listing reads only the table and one member is found by seeking. Members
coded together (one bits-back chain) form a group: a group's records are contiguous,
the first one says how many members the group holds, and a group is decoded as a
whole. docs/FORMAT.md gives every field; this module writes and reads them, checking
every value (a .nz file is untrusted input).

Version 3 is version 2 made lean for small files (about 130 bytes of container a single-member
file where version 2 took about 320): the writer's versions without their names, a self-contained description
deflated with a built-in preset dictionary (DESCRIPTION_DICT), and a file of one member ends with a
brief trailer (its likelihood figures) in place of the member table, which would repeat its record.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass

from neuralzip import limits
from neuralzip.container import chunk_lengths
from neuralzip.errors import ContainerError

MAGIC = b"\x89NZIP\r\n\x1a"
VERSION = 3  # written; READ_VERSIONS are read by this module (1: container.py)
READ_VERSIONS = (2, 3)
TRAILER = struct.Struct("<QIIII4s")  # table offset, table bytes, table raw bytes, members, table CRC-32, tag
TRAILER_TAG = b"NZT2"
# version 3, one member: its likelihood figures as a table row stores them (STAT_KEYS, float delta),
# their CRC-32 and a tag
BRIEF_FIGURES = struct.Struct("<2fi")
BRIEF = struct.Struct("<12sI4s")
BRIEF_TAG = b"NZB3"
REC_END, REC_DEFINE, REC_MEMBER = 0, 1, 2
DEF_MODEL = 1
KINDS = ("image", "audio", "file")
NDIM = {"image": 3, "audio": 2, "file": 1}
CHECKSUM_BYTES = 8  # the first 8 bytes of the canonical SHA-256 (see docs/FORMAT.md for why)
MAX_NAME = 4096
MAX_DESC = 16 << 20  # a member's deflated description (meta + params)
MAX_DESC_RAW = 64 << 20  # ... inflated: PNG text chunks and ICC profiles live there
MAX_CHUNKS = 1 << 24
MAX_CHUNK = 1 << 40
MAX_DEFINITION = 1 << 16  # a model definition's bytes
MAX_DEFINITIONS = 1 << 16
MAX_GROUP = 1 << 24
DICT_SLOTS = 4  # self-contained descriptions on offer as dictionaries (the last ones written)
MAX_MEMBERS = (1 << 32) - 1
FLAG_ARCHIVE = 1
HAS_MTIME, HAS_MODE = 1, 2


# ------------------------------------------------------------------ varints

def put_varint(out: bytearray, v: int) -> None:
    if v < 0:
        raise ValueError("varint of a negative number")
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def zigzag(v: int) -> int:
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def unzigzag(v: int) -> int:
    return (v >> 1) if not v & 1 else -((v + 1) >> 1)


class Source:
    """Bytes read in order from a file object; every byte read is kept for the record's CRC."""

    def __init__(self, f):
        self.f = f
        self.crc = 0
        self.count = 0  # bytes read so far

    def exact(self, n: int, what: str) -> bytes:
        parts, left = [], n
        while left:
            b = self.f.read(min(left, 1 << 20))  # a lying length meets the end of the input, not a huge buffer
            if not b:
                raise ContainerError(f"truncated container ({what})")
            parts.append(b)
            left -= len(b)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.crc = zlib.crc32(data, self.crc)
        self.count += n
        return data

    def byte(self, what: str) -> int:
        return self.exact(1, what)[0]

    def varint(self, what: str, hi: int) -> int:
        v = shift = 0
        while True:
            b = self.byte(what)
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 63:
                raise ContainerError(f"corrupt container: {what} is not a valid number")
        if v > hi:
            raise ContainerError(f"corrupt container: {what} {v} is more than {hi}")
        return v


# ------------------------------------------------------------------ the file header

def header_bytes(archive: bool, info: str) -> bytes:
    text = info.encode("ascii", "replace")[:255]
    head = MAGIC + struct.pack("<HBB", VERSION, FLAG_ARCHIVE if archive else 0, len(text)) + text
    return head + struct.pack("<I", zlib.crc32(head))


def read_header(src: Source, version: int) -> tuple[bool, str]:
    """After the magic and the version: -> (archive flag, writer info)."""
    src.crc = zlib.crc32(MAGIC + struct.pack("<H", version))
    flags = src.byte("header")
    if flags & ~FLAG_ARCHIVE:
        raise ContainerError(f"corrupt container header: flags {flags} has unknown bits")
    n = src.byte("header")
    info = src.exact(n, "header")
    crc = src.crc
    if struct.unpack("<I", src.exact(4, "header"))[0] != crc:
        raise ContainerError("corrupt container header (CRC mismatch)")
    try:
        text = info.decode("ascii")
    except UnicodeDecodeError:
        raise ContainerError("corrupt container header: the writer's name is not ASCII") from None
    return bool(flags & FLAG_ARCHIVE), text


def writer_info() -> str:
    from neuralzip import __version__
    from neuralzip.coding.stream import CONSTRICTION_VERSION

    return f"{__version__};{CONSTRICTION_VERSION}"


def parse_info(text: str) -> dict:
    """Version 3's "0.1.0;0.5.0" or version 2's "neuralzip 0.1.0; constriction 0.5.0"."""
    parts = [part.strip() for part in text.split(";")]
    if not any(" " in part for part in parts):
        return dict(zip(("neuralzip", "constriction"), parts))
    out = {}
    for part in parts:
        key, _, value = part.strip().partition(" ")
        if key in ("neuralzip", "constriction"):
            out[key] = value
    return out


# ------------------------------------------------------------------ writing

class Writer:
    """Writes members group by group as they are coded; close() writes the table and the trailer.
    Holds per member only its table row (a few dozen bytes), never a payload."""

    def __init__(self, f, archive: bool):
        self.f = f
        self.pos = 0
        self.models: dict[bytes, int] = {}
        self.recent: list[tuple[int, bytes]] = []  # (member number, description) of the dictionaries on offer
        self.rows = _Rows()
        self._write(header_bytes(archive, writer_info()))

    def _write(self, data: bytes) -> None:
        self.f.write(data)
        self.pos += len(data)

    def _define(self, what: int, body: bytes) -> None:
        rec = bytearray([REC_DEFINE, what])
        put_varint(rec, len(body))
        rec += body
        rec += struct.pack("<I", zlib.crc32(rec))
        self._write(bytes(rec))

    def _model(self, model: str, weights: str | None) -> int:
        body = model_body(model, weights)
        if body not in self.models:
            if len(self.models) >= MAX_DEFINITIONS:
                raise ContainerError("too many distinct models in one archive")
            self.models[body] = len(self.models)
            self._define(DEF_MODEL, body)
        return self.models[body]

    def _description(self, meta: dict, params: dict) -> tuple[int, bytes]:
        """-> (dictionary reference, the deflated description). What repeats from member to member
        (format, mode, codec settings) should cost a few bytes: a description is deflated with the
        description of a recent self-contained member as preset dictionary (reference: that member's
        number + 1: long-lived dictionaries are early members, so the number stays short) when that makes it at most a quarter of its size (or 24 bytes);
        otherwise (or where that is no smaller) it is deflated alone (reference 0: with the built-in
        DESCRIPTION_DICT) and becomes one of the DICT_SLOTS dictionaries on offer."""
        text = description_text(meta, params)
        if len(text) > MAX_DESC_RAW:
            raise ContainerError("a member's metadata is too large to store")
        alone = deflate(text, DESCRIPTION_DICT)
        best = None
        for k, zdict in self.recent:
            c = deflate(text, zdict)
            if best is None or len(c) < len(best[1]):
                best = (k + 1, c)
        if best is not None and len(best[1]) < len(alone) and len(best[1]) <= max(24, len(text) // 4):
            return best
        if len(text) <= 32 << 10:  # deflate looks back 32 KiB: a larger text is no dictionary
            self.recent = self.recent[-(DICT_SLOTS - 1):] + [(self.rows.n, text)]
        return 0, alone

    def add_group(self, members: list) -> list[int]:
        """Write one group (members coded together, in order); -> each member's record size."""
        sizes = []
        for i, m in enumerate(members):
            model = self._model(m.model, m.weights)
            dict_ref, desc = self._description(m.meta, m.params)
            rec = member_record(m, model, len(members) if i == 0 else 0, dict_ref, desc)
            offset = self.pos
            crc = zlib.crc32(rec)
            self._write(rec)
            for c in payload_pieces(m.chunks):
                crc = zlib.crc32(c, crc)
                self._write(c)
            self._write(struct.pack("<I", crc))
            self.rows.add(m, model, len(members) if i == 0 else 0, offset, self.pos - offset)
            sizes.append(self.pos - offset)
        return sizes

    def close(self) -> int:
        """The end marker, the table and the trailer (one member: the brief trailer); -> the file's total size."""
        self._write(bytes([REC_END]))
        if self.rows.n == 1:
            figures = self.rows.brief_figures()
            self._write(BRIEF.pack(figures, zlib.crc32(figures), BRIEF_TAG))
            return self.pos
        raw = self.rows.table(list(self.models))
        packed = zlib.compress(raw, 9)
        offset = self.pos
        self._write(packed)
        self._write(TRAILER.pack(offset, len(packed), len(raw), self.rows.n, zlib.crc32(packed), TRAILER_TAG))
        return self.pos


def payload_pieces(chunks):
    """A member's payload in order: its chunks, or, for chunks kept in a spool file (a long
    recording's), the pieces that file gives back."""
    pieces = getattr(chunks, "pieces", None)
    return pieces() if pieces is not None else chunks


def model_body(model: str, weights: str | None) -> bytes:
    return model.encode() + b"\x00" + (weights or "").encode()


# Version 3 deflates a self-contained description with this preset dictionary: the fields and values
# that recur across files, so that a single file's description takes about 20 bytes rather than 90
# to 150. Part of the format: never changed within version 3 (tests pin its SHA-256). Deflate
# reaches back at most 32 KiB and codes near matches shortest, so the most common come last.
DESCRIPTION_DICT = b"".join([
    b'[{"format":"tiff","mode":"RGB","compression":"raw","dpi":[72.0,72.0]},',
    b'[{"format":"bmp","mode":"BGR","bitcount":24,"bottom_up":true,"prefix":"Qk0","suffix":""},',
    b'{"units":12,"chain":1,"chain_units":[12],"seeded":[[0]]}]',
    b'{"lane":16384,"lanes":128,"learned_share":1.0}]{"block":2048}]',
    b'[{"format":"pnm","mode":"L","maxval":255,"prefix":"UDUK","suffix":""},',
    b'{"level":1,"radius":5,"chunk_pixels":2097152,"blend":4,"mix":2,"head":3}]',
    b'[{"format":"pnm","mode":"RGB","maxval":255,"prefix":"UDYK","suffix":""},',
    b'[{"format":"aiff","rate":48000,"subtype":"PCM_16","tags":{}},',
    b'[{"format":"png","mode":"RGBA","ihdr":"AAAA","interlaced":false,"chunks":{"pre_plte":[],',
    b'"pre_idat":[["PLTE",""]],"post_idat":[]}},{}]',
    b'[{"format":"wav","rate":48000,"width":3,"prefix":"UklGRiIMBQBXQVZFZm10IBAAAAABAAIAgLsAAABlBAADABgAZGF0YQ',
    b'","suffix":""},{"level":2,"lane":48000,"lanes":1,"coder":5}]',
    b'[{"format":"wav","rate":44100,"width":2,"prefix":"UklGRiIMBQBXQVZFZm10IBAAAAABAAIARKwAABCxAgAEABAAZGF0YQ',
    b'","suffix":""},{"level":1,"lane":44100,"lanes":1,"coder":5}]',
    b'{"tile_h":128,"tile_w":128,"chunk_pixels":2097152,"blend":4}]',
    b'[{"format":"png","mode":"RGB","ihdr":"AAAAgAAAAIAIAgAAAA==","interlaced":false,',
    b'"chunks":{"pre_plte":[],"pre_idat":[],"post_idat":[]}},',
    b'[{"format":"flac","rate":44100,"subtype":"PCM_24","tags":{}},{"level":1,"lane":44100,"lanes":1,"coder":5}]',
])


def description_text(meta: dict, params: dict) -> bytes:
    return json.dumps([meta, params], separators=(",", ":")).encode()  # key order kept: writers follow it


def deflate(text: bytes, zdict: bytes | None) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, **({"zdict": zdict} if zdict else {}))
    return c.compress(text) + c.flush()


def inflate(data: bytes, zdict: bytes | None, who: str) -> bytes:
    d = zlib.decompressobj(-15, **({"zdict": zdict} if zdict else {}))
    try:
        out = d.decompress(data, MAX_DESC_RAW)
        if d.unconsumed_tail or not d.eof or d.unused_data:
            raise zlib.error("it does not inflate to one bounded stream")
    except zlib.error as exc:
        raise ContainerError(f"corrupt container: {who}description: {exc}") from None
    return out


def member_record(m, model: int, group: int, dict_ref: int, desc: bytes) -> bytes:
    name = m.name.encode()
    kind = KINDS.index(m.kind)
    rec = bytearray([REC_MEMBER])
    put_varint(rec, len(name))
    rec += name
    rec.append(kind << 6 | (m.bits - 1))
    put_varint(rec, model)
    for v in m.shape:
        put_varint(rec, int(v))
    put_varint(rec, group)
    put_varint(rec, dict_ref)
    put_varint(rec, len(desc))
    rec += desc
    flags = (HAS_MTIME if m.mtime is not None else 0) | (HAS_MODE if m.mode is not None else 0)
    rec.append(flags)
    if m.mtime is not None:
        put_varint(rec, zigzag(int(m.mtime)))
    if m.mode is not None:
        put_varint(rec, int(m.mode) & 0o7777)
    lengths = chunk_lengths(m.chunks)
    put_varint(rec, len(lengths))
    for n in lengths:
        put_varint(rec, n)
    rec += bytes.fromhex(m.sha256[:2 * CHECKSUM_BYTES])
    return bytes(rec)


# ------------------------------------------------------------------ the member table

# the likelihood figures kept for reports: two float32 columns, and the float model's figure as its
# difference from nll_bits in thousandths of a bit (int32, FLOAT_ABSENT: none), which deflates to
# about two bytes where a float32 of its own would take four
STAT_KEYS = ("nll_bits", "initial_bits")
FLOAT_ABSENT = -(1 << 31)
# fixed-width columns, each stored byte-plane by byte-plane (it deflates far better)
COLUMNS = (("kind_bits", "u1", 1), ("model", "<u2", 1), ("group", "<u4", 1), ("shape", "<u8", 3),
           ("gap", "<u8", 1), ("size", "<u8", 1), ("name_len", "<u2", 1), ("stats", "<f4", 2),
           ("float_delta", "<i4", 1))


class _Rows:
    """The table's rows as compact bytes (a million members take tens of MB, not objects)."""

    def __init__(self):
        self.n = 0
        self.end = 0  # where the last record ended
        self.fixed = bytearray()
        self.names = bytearray()

    def add(self, m, model: int, group: int, offset: int, size: int) -> None:
        name = m.name.encode()
        shape = list(m.shape) + [0] * (3 - len(m.shape))
        stats = [m.stats.get(k, float("nan")) for k in STAT_KEYS]
        delta = FLOAT_ABSENT
        if "nll_float_bits" in m.stats and "nll_bits" in m.stats:
            d = round(1000 * (m.stats["nll_float_bits"] - m.stats["nll_bits"]))
            delta = d if FLOAT_ABSENT < d < 1 << 31 else FLOAT_ABSENT
        gap = offset - self.end  # bytes between the records (model definitions): mostly 0
        self.end = offset + size
        self.fixed += struct.pack("<BHI3QQQH2fi", KINDS.index(m.kind) << 6 | (m.bits - 1), model, group, *shape,
                                  gap, size, len(name), *stats, delta)
        self.names += name
        self.n += 1

    def brief_figures(self) -> bytes:
        """The last row's likelihood figures, as the brief trailer stores them: a row ends with them."""
        return bytes(self.fixed[-BRIEF_FIGURES.size:])

    def table(self, models: list[bytes]) -> bytes:
        import numpy as np

        rows = np.frombuffer(bytes(self.fixed), dtype=_row_dtype(), count=self.n)
        cols = {name: rows[name] for name, _, _ in COLUMNS}
        return table_bytes(models, cols, bytes(self.names))


def table_bytes(models: list[bytes], cols: dict, names: bytes) -> bytes:
    """The raw (not yet deflated) table: the model definitions, then each column of COLUMNS byte plane
    by byte plane, then the names (UTF-8, one after another)."""
    import numpy as np

    out = bytearray()
    put_varint(out, len(models))
    for body in models:
        put_varint(out, len(body))
        out += body
    n = len(cols["kind_bits"])
    for name, dtype, width in COLUMNS:
        col = np.ascontiguousarray(np.asarray(cols[name]).reshape(n, width).astype(dtype))
        out += col.view(np.uint8).reshape(n * width, -1).T.tobytes()
    return bytes(out + names)


def _row_dtype():
    import numpy as np

    return np.dtype([("kind_bits", "u1"), ("model", "<u2"), ("group", "<u4"), ("shape", "<u8", (3,)),
                     ("gap", "<u8"), ("size", "<u8"), ("name_len", "<u2"), ("stats", "<f4", (2,)),
                     ("float_delta", "<i4")], align=False)


@dataclass
class Table:
    """The member table, column by column (numpy arrays), every value checked."""

    archive: bool
    info: str
    models: list[tuple[str, str | None]]
    kind: object  # uint8: index into KINDS
    bits: object
    model: object
    group: object
    shape: object  # (n, 3) uint64, unused dimensions 0
    offset: object
    size: object
    stats: object  # (n, 2) float32, NaN: absent
    float_delta: object  # int32: nll_float_bits - nll_bits in thousandths of a bit (FLOAT_ABSENT: none)
    names: list[str]
    group_start: object  # index of each member's group's first member
    data_end: int  # where the records end (the end marker)
    version: int  # the file's format version (2 or 3)

    def definitions(self, lookup=None) -> "Definitions":
        return Definitions(self.models, lookup, self.version)

    def __len__(self) -> int:
        return len(self.names)

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def group_span(self, i: int) -> tuple[int, int]:
        start = int(self.group_start[i])
        return start, start + int(self.group[start])

    def shape_of(self, i: int) -> tuple:
        return tuple(int(v) for v in self.shape[i][:NDIM[KINDS[self.kind[i]]]])

    def stats_of(self, i: int) -> dict:
        import math

        out = {k: float(v) for k, v in zip(STAT_KEYS, self.stats[i].tolist()) if not math.isnan(v)}
        d = int(self.float_delta[i])
        if d != FLOAT_ABSENT and "nll_bits" in out:
            out["nll_float_bits"] = round(out["nll_bits"] + d / 1000, 3)
        return out


def read_trailer(f, size: int) -> tuple[int, int, int, int, int]:
    if size < len(MAGIC) + 4 + TRAILER.size + 1:
        raise ContainerError("truncated container")
    f.seek(size - TRAILER.size)
    offset, tsize, raw, n, crc, tag = TRAILER.unpack(f.read(TRAILER.size))
    if tag != TRAILER_TAG:
        raise ContainerError("truncated container, or trailing bytes after its end (no trailer at the end)")
    if offset + tsize != size - TRAILER.size or offset < len(MAGIC) + 5:
        raise ContainerError("corrupt container trailer: the member table is not where it says")
    return offset, tsize, raw, n, crc


def read_table(f, size: int, max_memory: int | None = limits.DEFAULT_MAX_MEMORY) -> Table:
    """The member table of a seekable v2 or v3 file (its size given), checked field by field (a v3
    file of one member: the table made from its record and brief trailer)."""
    f.seek(0)
    head = Source(f)
    if head.exact(len(MAGIC), "header") != MAGIC:
        raise ContainerError("not a neuralzip file (bad magic bytes)")
    version = struct.unpack("<H", head.exact(2, "header"))[0]
    if version not in READ_VERSIONS:
        raise ContainerError(f"unknown container format version {version}")
    archive, info = read_header(head, version)
    header_end = f.tell()
    if version >= 3 and size >= header_end + BRIEF.size + 1:
        f.seek(size - len(BRIEF_TAG))
        if f.read(len(BRIEF_TAG)) == BRIEF_TAG:
            return brief_table(f, size, archive, info, header_end, version)
    offset, tsize, raw_len, n, crc = read_trailer(f, size)
    if n == 0 or n > MAX_MEMBERS:
        raise ContainerError(f"corrupt container trailer: {n} members")
    limit = max(64 << 20, (max_memory or 0) // 8) if max_memory else 1 << 40
    if raw_len > limit or raw_len < n * _row_dtype().itemsize:
        raise ContainerError(f"corrupt container: the member table declares {raw_len} bytes "
                             + ("(more than the limit: raise --max-memory)" if raw_len > limit else f"for {n} members"))
    f.seek(offset)
    packed = f.read(tsize)
    if len(packed) != tsize:
        raise ContainerError("truncated container (member table)")
    if zlib.crc32(packed) != crc:
        raise ContainerError("corrupt container: member table CRC mismatch")
    d = zlib.decompressobj()
    try:
        raw = d.decompress(packed, raw_len + 1)
    except zlib.error as exc:
        raise ContainerError(f"corrupt container: member table: {exc}") from None
    if len(raw) != raw_len or not d.eof or d.unused_data:
        raise ContainerError("corrupt container: the member table does not inflate to its declared size")
    f.seek(offset - 1)
    if f.read(1) != bytes([REC_END]):
        raise ContainerError("corrupt container: no end marker before the member table")
    return parse_table(raw, n, archive, info, header_end, offset - 1, version)


def read_brief(data: bytes) -> tuple[float, float, int]:
    """A brief trailer's likelihood figures (STAT_KEYS, float delta), its CRC and tag checked."""
    figures, crc, tag = BRIEF.unpack(data)
    if tag != BRIEF_TAG or zlib.crc32(figures) != crc:
        raise ContainerError("corrupt container: the brief trailer's CRC does not match")
    return BRIEF_FIGURES.unpack(figures)


def brief_table(f, size: int, archive: bool, info: str, header_end: int, version: int) -> Table:
    """The one-row table of a v3 file of one member: its record's fields (read up to its chunks)
    and the brief trailer's figures, checked as a table's are."""
    import numpy as np

    data_end = size - BRIEF.size - 1
    f.seek(size - BRIEF.size)
    nll, initial, delta = read_brief(f.read(BRIEF.size))
    f.seek(header_end)
    src = Source(f)
    defs = Definitions(None, _no_earlier_description, version)
    rec = read_record(src, defs, data_end - header_end, LATER)
    if rec is None:
        raise ContainerError("corrupt container: a file with a brief trailer holds no member")
    offset = header_end + rec.start
    end = header_end + src.count + sum(rec.chunks.lengths) + 4
    f.seek(data_end)
    if end != data_end or f.read(1) != bytes([REC_END]):
        raise ContainerError("corrupt container: the member record does not end where the brief trailer begins")
    shape = list(rec.shape) + [0] * (3 - len(rec.shape))
    table = Table(archive, info, defs.models, np.array([KINDS.index(rec.kind)], np.uint8), np.array([rec.bits]),
                  np.array([rec.model], np.uint16), np.array([rec.group], np.uint32), np.array([shape], np.uint64),
                  np.array([offset], np.uint64), np.array([data_end - offset], np.uint64),
                  np.array([[nll, initial]], np.float32), np.array([delta], np.int32), [rec.name], None, data_end,
                  version)
    _check_columns(table, header_end, data_end)
    return table


def _no_earlier_description(j: int) -> bytes:
    raise ContainerError("corrupt container: the description of a file's only member refers to an earlier one")


def parse_table(raw: bytes, n: int, archive: bool, info: str, header_end: int, data_end: int,
                version: int) -> Table:
    import numpy as np

    src = Source(_Bytes(raw))
    count = src.varint("member table: model count", MAX_DEFINITIONS)
    models = [parse_model(src.exact(src.varint("member table: model length", MAX_DEFINITION), "member table"))
              for _ in range(count)]
    pos = src.f.pos
    cols = {}
    for name, dtype, width in COLUMNS:
        nbytes = np.dtype(dtype).itemsize * width * n
        if pos + nbytes > len(raw):
            raise ContainerError("corrupt container: the member table is shorter than its columns")
        planes = np.frombuffer(raw, np.uint8, nbytes, pos).reshape(-1, n * width)
        cols[name] = np.ascontiguousarray(planes.T).view(dtype).reshape(n, width) if width > 1 else \
            np.ascontiguousarray(planes.T).view(dtype).reshape(n)
        pos += nbytes
    name_bytes = raw[pos:]
    lens = cols["name_len"].astype(np.int64)
    if int(lens.sum()) != len(name_bytes) or lens.min() < 1 or lens.max() > MAX_NAME:
        raise ContainerError("corrupt container: the member table's names do not fit their lengths")
    try:
        text = name_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ContainerError("corrupt container: a member name is not UTF-8") from None
    names = _split_names(name_bytes, text, lens)
    kb = cols["kind_bits"]
    kind, bits = kb >> 6, (kb & 0x3F) + 1
    if kind.max() >= len(KINDS):
        raise ContainerError("corrupt container: a member's kind is unknown")
    model, group = cols["model"], cols["group"]
    if len(models) == 0 or int(model.max()) >= len(models):
        raise ContainerError("corrupt container: a member's model is not defined")
    gap, size = cols["gap"], cols["size"]
    if np.any(gap > data_end) or np.any(size > data_end):
        raise ContainerError("corrupt container: the member table's offsets do not fit the file")
    offset = np.cumsum(gap + np.append(np.uint64(0), size[:-1]), dtype=np.uint64)  # no wrap: each term < 2^63
    table = Table(archive, info, models, kind, bits, model, group, cols["shape"], offset,
                  cols["size"], cols["stats"], cols["float_delta"], names, None, data_end, version)
    _check_columns(table, header_end, data_end)
    return table


def _split_names(raw: bytes, text: str, lens) -> list[str]:
    import numpy as np

    ends = np.cumsum(lens).tolist()
    if len(text) == len(raw):  # ASCII: character and byte offsets agree
        starts = [0] + ends[:-1]
        return [text[a:b] for a, b in zip(starts, ends)]
    out, a = [], 0
    for b in ends:
        out.append(raw[a:b].decode("utf-8", "strict") if b > a else "")
        a = b
    return out


class _Bytes:
    """A file-like view of bytes (read and a position)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def parse_model(body: bytes) -> tuple[str, str | None]:
    name, sep, weights = body.partition(b"\x00")
    try:
        name_s, weights_s = name.decode("ascii"), weights.decode("ascii")
    except UnicodeDecodeError:
        raise ContainerError("corrupt container: a model definition is not ASCII") from None
    if not sep or not 0 < len(name_s) <= 64 or (weights_s and (len(weights_s) != 16 or
                                                               not set(weights_s) <= set("0123456789abcdef"))):
        raise ContainerError(f"corrupt container: model definition {body[:40]!r} is not a model name and weights hash")
    return name_s, weights_s or None


def _check_columns(t: Table, header_end: int, data_end: int) -> None:
    """Every column against the limits and the file's layout (vectorised: a million rows in well under a second)."""
    import numpy as np

    n = len(t.names)
    bad = _first_bad_name(t.names)
    if bad is not None:
        raise ContainerError(f"unsafe member name {bad!r} in the archive; refusing to extract")
    if len(set(t.names)) != n:
        raise ContainerError("corrupt container: a member name is stored twice in the archive")
    kind, shape, bits = t.kind, t.shape.astype(object) if False else t.shape, t.bits
    img, aud, fil = kind == 0, kind == 1, kind == 2
    lo_b = np.where(img, limits.IMAGE_BITS[0], np.where(aud, limits.AUDIO_BITS[0], 8))
    hi_b = np.where(img, limits.IMAGE_BITS[1], np.where(aud, limits.AUDIO_BITS[1], 8))
    if np.any((bits < lo_b) | (bits > hi_b)):
        i = int(np.argmax((bits < lo_b) | (bits > hi_b)))
        raise ContainerError(f"corrupt container: member {t.names[i]!r}: bits {int(bits[i])} out of range")
    h, w, c = shape[:, 0], shape[:, 1], shape[:, 2]
    ok_img = (h >= 1) & (h <= limits.MAX_SIDE) & (w >= 1) & (w <= limits.MAX_SIDE) & \
        (c >= limits.IMAGE_CHANNELS[0]) & (c <= limits.IMAGE_CHANNELS[1])
    ok_aud = (h <= limits.MAX_FRAMES) & (w >= limits.AUDIO_CHANNELS[0]) & (w <= limits.AUDIO_CHANNELS[1]) & (c == 0)
    ok_fil = (h <= limits.MAX_FRAMES) & (w == 0) & (c == 0)
    ok = np.where(img, ok_img, np.where(aud, ok_aud, ok_fil))
    if not ok.all():
        i = int(np.argmin(ok))
        raise ContainerError(f"corrupt container: member {t.names[i]!r}: shape {shape[i].tolist()} "
                             f"is out of range for an {KINDS[kind[i]]}")
    # groups: a count on each group's first member, 0 on the rest, and every group complete
    g = t.group.astype(np.int64)
    starts = np.flatnonzero(g)
    if len(starts) == 0 or starts[0] != 0 or np.any(g > MAX_GROUP) or \
            np.any(np.diff(np.append(starts, n)) != g[starts]):
        raise ContainerError("corrupt container: the member table's groups do not cover the members")
    t.group_start = np.repeat(starts, g[starts])
    off, size = t.offset, t.size
    if np.any(size < 8) or off[0] < header_end or np.any(off[1:] < off[:-1]) or \
            int(off[-1]) + int(size[-1]) > data_end:
        raise ContainerError("corrupt container: the member table's offsets do not fit the file")
    st = t.stats
    if not np.all(np.isnan(st) | (np.abs(st) < 1e30)):
        raise ContainerError("corrupt container: a member's likelihood figure is not a finite number")


def _first_bad_name(names: list[str]) -> str | None:
    """The first name that is not a safe relative path, or None. One search over all the names joined
    by NUL (which no name may hold) decides; the loop only finds which name it was."""
    joined = "\x00" + "\x00".join(names) + "\x00"
    suspect = ("\\" in joined or "\x00/" in joined or "\x00..\x00" in joined or "\x00../" in joined
               or "/../" in joined or "/..\x00" in joined or (":" in joined and _UNSAFE.search(joined)))
    if joined.count("\x00") != len(names) + 1 or suspect:
        for name in names:
            if _UNSAFE.search("\x00" + name + "\x00") or "\x00" in name:
                return name
    return None


# a backslash anywhere; a name starting with "/" or a drive letter ("C:"); a ".." component
_UNSAFE = re.compile(r"\\|\x00/|\x00.:|(?:\x00|/)\.\.(?:/|\x00)", re.DOTALL)


# ------------------------------------------------------------------ records

@dataclass
class Record:
    """One member record as read: its fields, its payload and where it was."""

    name: str
    kind: str
    bits: int
    model: int
    shape: tuple
    group: int
    dict_ref: int
    text: bytes  # the description, inflated: JSON [meta, params]
    meta: dict
    params: dict
    mtime: int | None
    mode: int | None
    chunks: list
    checksum: str
    start: int = 0  # where the record began, in bytes read from its Source


class Definitions:
    """What a reader needs besides a record itself: the models, the descriptions that serve as
    dictionaries (`lookup(j)`: the description of member j, one before this one), and the file's
    version (the dictionary of a self-contained description: DESCRIPTION_DICT from version 3)."""

    def __init__(self, models=None, lookup=None, version: int = VERSION):
        self.models: list[tuple[str, str | None]] = list(models or [])
        self.lookup = lookup
        self.builtin_dict = DESCRIPTION_DICT if version >= 3 else None


class PipeDefinitions(Definitions):
    """Front to back: the models as they are defined, and the last DICT_SLOTS self-contained
    descriptions (the only ones a writer refers to)."""

    def __init__(self, version: int = VERSION):
        super().__init__([], self._lookup, version)
        self.recent: list[tuple[int, bytes]] = []
        self.next_index = 0

    def _lookup(self, j: int) -> bytes:
        for k, text in self.recent:
            if k == j:
                return text
        raise ContainerError(f"corrupt container: a description refers to member {j}, which is no dictionary on offer")

    def seen(self, index: int, rec: "Record") -> None:
        self.next_index = index + 1
        if rec.dict_ref == 0 and len(rec.text) <= 32 << 10:
            self.recent = self.recent[-(DICT_SLOTS - 1):] + [(index, rec.text)]


LATER = "later"  # read_record's payload=LATER: the chunks stay in the input, read one by one (RecordPayload)


class RecordPayload:
    """A record's chunks left in its input (a long recording's: they are decoded one at a time):
    `read(j)` takes chunk j, in order, each once; `finish()`, after the last one, checks the
    record's CRC. Nothing else may read from the input until then."""

    def __init__(self, src: Source, lengths: list[int], name: str):
        self.src, self.lengths, self.name = src, lengths, name
        self.next = 0
        self.end = None  # where the record must end (a seekable file read through its table)
        self.done = False

    def __len__(self) -> int:
        return len(self.lengths)

    def read(self, j: int) -> bytes:
        if j != self.next:
            raise ValueError("a record's chunks are read in order, each once")
        data = self.src.exact(self.lengths[j], f"payload of member {self.name!r}")
        self.next += 1
        return data

    def finish(self) -> None:
        """The record's CRC, once every chunk has been read."""
        if self.next != len(self.lengths):
            raise ValueError("a record's CRC is checked after its last chunk")
        crc = self.src.crc
        if struct.unpack("<I", self.src.exact(4, f"payload of member {self.name!r}"))[0] != crc:
            raise ContainerError(f"corrupt payload in member {self.name!r} (CRC mismatch)")
        if self.end is not None and self.src.f.tell() != self.end:
            raise ContainerError(f"corrupt container: member {self.name!r} does not match the member table")
        self.done = True

    def read_all(self) -> list[bytes]:
        """Every chunk, in memory (a member that is decoded whole after all), the CRC checked."""
        chunks = [self.read(j) for j in range(self.next, len(self.lengths))]
        self.finish()
        return chunks


def read_record(src: Source, defs: Definitions, limit_payload: int | None = None, payload: bool | str = True):
    """The next record from `src` (model definitions are taken into `defs` on the way); -> the member,
    or None at the end marker. `limit_payload`: bytes the record may take at most (seekable files);
    payload=False: stop after the description (the payload and the CRC are not read); LATER: stop
    before the chunks, which the record's `chunks` (a RecordPayload) then reads; a function of the
    record (its fields up to the description) -> True or LATER: decided record by record."""
    while True:
        src.crc = 0
        start = src.count
        t = src.byte("member record")
        if t == REC_END:
            return None
        if t == REC_DEFINE:
            what = src.byte("definition")
            body = src.exact(src.varint("definition length", MAX_DEFINITION), "definition")
            crc = src.crc
            if struct.unpack("<I", src.exact(4, "definition"))[0] != crc:
                raise ContainerError("corrupt container: a definition record's CRC does not match")
            if what != DEF_MODEL:
                raise ContainerError(f"corrupt container: unknown definition type {what}")
            defs.models.append(parse_model(body))
            if len(defs.models) > MAX_DEFINITIONS:
                raise ContainerError("corrupt container: too many definitions")
            continue
        if t != REC_MEMBER:
            raise ContainerError(f"corrupt container: unknown record type {t}")
        rec = _member_body(src, defs, limit_payload, payload)
        rec.start = start
        return rec


def _member_body(src: Source, defs: Definitions, limit_payload: int | None, payload: bool | str) -> Record:
    raw = src.exact(src.varint("name length", MAX_NAME), "member record")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ContainerError("corrupt container: a member name is not UTF-8") from None
    if not name:
        raise ContainerError("corrupt container: a member has an empty name")
    who = f"member {name!r}: "
    kb = src.byte("member record")
    if kb >> 6 >= len(KINDS):
        raise ContainerError(f"corrupt container: {who}unknown kind {kb >> 6}")
    kind, bits = KINDS[kb >> 6], (kb & 0x3F) + 1
    if not defs.models:
        raise ContainerError(f"corrupt container: {who}its model is not defined")
    model = src.varint(f"{who}model", len(defs.models) - 1)
    shape = tuple(src.varint(f"{who}shape", 1 << 63) for _ in range(NDIM[kind]))
    group = src.varint(f"{who}group", MAX_GROUP)
    dict_ref = src.varint(f"{who}dictionary", MAX_MEMBERS)
    desc = src.exact(src.varint(f"{who}description length", MAX_DESC), "member record")
    text = inflate(desc, defs.lookup(dict_ref - 1) if dict_ref else defs.builtin_dict, who)
    try:
        meta, params = json.loads(text)
        if not isinstance(meta, dict) or not isinstance(params, dict):
            raise ValueError("not two objects")
    except (ValueError, TypeError, RecursionError):
        raise ContainerError(f"corrupt container: {who}its description is not [meta, params]") from None
    rec = Record(name, kind, bits, model, shape, group, dict_ref, text, meta, params, None, None, [], "")
    if callable(payload):
        payload = payload(rec)
    if not payload:
        return rec
    flags = src.byte("member record")
    if flags & ~(HAS_MTIME | HAS_MODE):
        raise ContainerError(f"corrupt container: {who}flags {flags} has unknown bits")
    rec.mtime = unzigzag(src.varint(f"{who}mtime", (1 << 64) - 1)) if flags & HAS_MTIME else None
    rec.mode = src.varint(f"{who}mode", 0o7777) if flags & HAS_MODE else None
    nchunks = src.varint(f"{who}chunk count", MAX_CHUNKS)
    lens = [src.varint(f"{who}chunk length", MAX_CHUNK) for _ in range(nchunks)]
    if limit_payload is not None and sum(lens) > limit_payload:
        raise ContainerError(f"corrupt container: {who}its payload is larger than its record")
    rec.checksum = src.exact(CHECKSUM_BYTES, "member record").hex()
    if payload == LATER:
        rec.chunks = RecordPayload(src, lens, name)
        return rec
    rec.chunks = [src.exact(n, f"payload of member {name!r}") for n in lens]
    crc = src.crc
    if struct.unpack("<I", src.exact(4, f"payload of member {name!r}"))[0] != crc:
        raise ContainerError(f"corrupt payload in member {name!r} (CRC mismatch)")
    return rec


def overhead_breakdown(f, table) -> dict:
    """Bytes per member of a v2 file by what they are: payload, names, descriptions (meta + params,
    where verbatim file headers live, deflated) and everything else (record fields, CRC, the table's
    share, the file's header and trailer). For benchmarks and tests."""
    f.seek(0, 2)
    total = f.tell()
    payload = names = descs = 0
    for i in range(len(table)):
        f.seek(int(table.offset[i]) + 1)
        src = Source(f)
        n = src.varint("name length", MAX_NAME)
        names += n
        src.exact(n, "name")
        kind = KINDS[src.byte("kind") >> 6]
        src.varint("model", MAX_DEFINITIONS)
        for _ in range(NDIM[kind]):
            src.varint("shape", 1 << 63)
        src.varint("group", MAX_GROUP)
        src.varint("dictionary", MAX_MEMBERS)
        d = src.varint("description length", MAX_DESC)
        descs += d
        src.exact(d, "description")
        flags = src.byte("flags")
        if flags & HAS_MTIME:
            src.varint("mtime", 1 << 64)
        if flags & HAS_MODE:
            src.varint("mode", 0o7777)
        payload += sum(src.varint("chunk", MAX_CHUNK) for _ in range(src.varint("chunks", MAX_CHUNKS)))
    n = len(table)
    other = total - payload - names - descs
    return {"members": n, "bytes": total, "payload": payload / n, "names": names / n, "descriptions": descs / n,
            "other": other / n}
