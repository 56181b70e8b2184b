"""The .nz container (DESIGN.md contract 3).

    magic (8 bytes) | format version (u16) | header length (u32) |
    header (JSON, deflated: metadata only, never samples) |
    CRC-32 of the header (u32) | chunk payloads, each followed by its CRC-32

The header lists the members. Each member records its stored name, kind,
model, weights hash, shape, bit depth, restore metadata, codec parameters,
the SHA-256 of its canonical content, and the length of each independently
decodable chunk. The constriction version that coded the payload is recorded
once for the file.
"""

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from neuralzip import FORMAT_VERSION, __version__
from neuralzip.coding.stream import CONSTRICTION_VERSION
from neuralzip.errors import ContainerError

MAGIC = b"\x89NZIP\r\n\x1a"


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

    def header(self) -> dict:
        return {"name": self.name, "kind": self.kind, "model": self.model, "weights": self.weights,
                "shape": list(self.shape), "bits": self.bits, "meta": self.meta, "params": self.params,
                "sha256": self.sha256, "chunks": [len(c) for c in self.chunks], "stats": self.stats}

    @property
    def payload_bytes(self) -> int:
        return sum(len(c) + 4 for c in self.chunks)


def canonical_digest(kind: str, samples: np.ndarray, bits: int, meta: dict) -> str:
    """SHA-256 of the content itself (not of any file encoding of it)."""
    h = hashlib.sha256()
    desc = {"kind": kind, "shape": list(samples.shape), "dtype": samples.dtype.str, "bits": bits, "meta": meta}
    h.update(json.dumps(desc, sort_keys=True, separators=(",", ":")).encode())
    h.update(np.ascontiguousarray(samples).astype(samples.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def dumps(members: list[Member], archive: bool = False) -> bytes:
    """`archive`: the members came from several files or a directory, so
    decompress extracts them under a directory rather than as one file."""
    header = json.dumps({"neuralzip": __version__, "constriction": CONSTRICTION_VERSION, "archive": archive,
                         "members": [m.header() for m in members]}, separators=(",", ":")).encode()
    header = zlib.compress(header, 9)
    parts = [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(header)), header, struct.pack("<I", zlib.crc32(header))]
    for m in members:
        for c in m.chunks:
            parts += [c, struct.pack("<I", zlib.crc32(c))]
    return b"".join(parts)


def loads(data: bytes) -> tuple[dict, list[Member]]:
    """Parse and check the structure; -> (file header, members with their chunks)."""
    if not data.startswith(MAGIC):
        raise ContainerError("not a neuralzip file (bad magic bytes)")
    if len(data) < len(MAGIC) + 6:
        raise ContainerError("truncated container")
    version, hlen = struct.unpack_from("<HI", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise ContainerError(f"unknown container format version {version} (this neuralzip reads {FORMAT_VERSION})")
    pos = len(MAGIC) + 6
    header = data[pos:pos + hlen]
    if len(header) != hlen or len(data) < pos + hlen + 4:
        raise ContainerError("truncated container (header)")
    pos += hlen
    if struct.unpack_from("<I", data, pos)[0] != zlib.crc32(header):
        raise ContainerError("corrupt container header (CRC mismatch)")
    pos += 4
    try:
        top = json.loads(zlib.decompress(header))
        members = [_member(h) for h in top["members"]]
        lengths = [h["chunks"] for h in top["members"]]
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise ContainerError(f"corrupt container header: {exc}") from None
    for m, lens in zip(members, lengths):
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


def _member(h: dict) -> Member:
    return Member(name=str(h["name"]), kind=str(h["kind"]), model=str(h["model"]), weights=h["weights"],
                  shape=tuple(int(v) for v in h["shape"]), bits=int(h["bits"]), meta=dict(h["meta"]),
                  params=dict(h["params"]), sha256=str(h["sha256"]), stats=dict(h.get("stats", {})))
