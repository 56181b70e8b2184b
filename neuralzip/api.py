"""compress/decompress for files, bytes and numpy arrays.

Everything the CLI does goes through here; nothing here imports torch.
"""

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralzip import container, weightstore
from neuralzip.container import Member
from neuralzip.errors import ContainerError, InputError
from neuralzip.fileio import check_writable, safe_member_name, write_atomic
from neuralzip.media import Media
from neuralzip.media.detect import read_media, write_media  # noqa: F401 (re-exported)
from neuralzip.models import get_codec
from neuralzip.models.base import Signal


@dataclass
class Report:
    """The per-file figures the CLI prints (DESIGN.md's --json fields)."""

    file: str
    kind: str
    dims: int
    shape: str
    model: str
    weights: str | None
    nll_float_bits: float
    nll_bits: float
    bytes: int
    seconds: float
    initial_bits: float | None = None  # bits-back models only
    peers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"file": self.file, "kind": self.kind, "dims": self.dims, "shape": self.shape,
             "model": self.model, "weights": self.weights,
             "nll_float_bits": round(self.nll_float_bits, 3), "nll_bits": round(self.nll_bits, 3),
             "nll_bpd": round(self.nll_bits / self.dims, 6) if self.dims else 0.0,
             "bytes": self.bytes, "bpd": round(8 * self.bytes / self.dims, 6) if self.dims else 0.0,
             "overhead_pct": round(100 * (8 * self.bytes / self.nll_bits - 1), 4) if self.nll_bits else 0.0,
             "seconds": round(self.seconds, 4)}
        if self.initial_bits is not None:
            d["initial_bits"] = round(self.initial_bits, 3)
        if self.peers:
            d["peers"] = self.peers
        return d


def _signal(kind: str, shape, bits: int, meta: dict) -> Signal:
    return Signal(kind, tuple(shape), bits, int(meta.get("rate", 0)))


def encode_media(media: Media, name: str, model: str = "auto", weights: str | None = None) -> Member:
    """Code one medium into a container member (with its likelihood figures)."""
    return encode_members([(media, name)], model, weights)[0]


def encode_members(items: list[tuple[Media, str]], model: str = "auto", weights: str | None = None) -> list[Member]:
    """Code the media of one output file. Each codec gets all its members at once (encode_set), so
    a codec that chains them (vae: one bits-back chain over an archive) can."""
    by_kind: dict[str, list[int]] = {}
    for i, (media, _) in enumerate(items):
        by_kind.setdefault(media.kind, []).append(i)
    members = [None] * len(items)
    for kind, idx in by_kind.items():
        codec = get_codec(model, kind, weights)  # once per medium: with --weights each call loads the file
        encs = codec.encode_set([(items[i][0].samples, _media_signal(items[i][0])) for i in idx])
        for i, enc in zip(idx, encs):
            members[i] = _member(items[i][0], items[i][1], codec, enc)
    return members


def _media_signal(media: Media) -> Signal:
    return _signal(media.kind, media.samples.shape, media.bits, media.meta)


def _member(media: Media, name: str, codec, enc) -> Member:
    # a thousandth of a bit is plenty, and full-precision floats cost header bytes per member
    stats = {"nll_bits": round(enc.nll_bits, 3), "nll_float_bits": round(enc.nll_float_bits, 3)}
    if enc.initial_bits is not None:
        stats["initial_bits"] = round(enc.initial_bits, 3)
    return Member(name=name, kind=media.kind, model=codec.name, weights=codec.weights_hash,
                  shape=media.samples.shape, bits=media.bits, meta=media.meta, params=enc.params,
                  sha256=container.canonical_digest(media.kind, media.samples, media.bits, media.meta),
                  chunks=enc.chunks, stats=stats)


def decode_member(member: Member, weights: str | None = None) -> Media:
    """Rebuild one member (a member of a shared chain can only be decoded with its archive)."""
    return decode_members([member], weights)[0]


def _member_codec(member: Member, weights: str | None):
    try:
        codec = get_codec(member.model, member.kind)
    except InputError:
        raise ContainerError(f"member {member.name!r} uses model {member.model!r}, unknown to this neuralzip") from None
    if member.weights != codec.weights_hash:
        if member.weights is None or codec.weights_hash is None:
            raise ContainerError(f"member {member.name!r}: weights {member.weights} do not fit model {member.model!r}")
        codec = codec.with_weights(str(weightstore.locate(member.weights, weights)))
    return codec


def decode_members(members: list[Member], weights: str | None = None) -> list[Media]:
    """Rebuild members' canonical content, each codec's members together (decode_set), and check
    every one against its stored checksum. `weights`: the user's weights file, for members coded with one."""
    groups: dict[tuple, tuple] = {}
    for i, m in enumerate(members):
        groups.setdefault((m.model, m.kind, m.weights), (_member_codec(m, weights), []))[1].append(i)
    out = [None] * len(members)
    for codec, idx in groups.values():
        try:
            decoded = codec.decode_set([(members[i].params, members[i].chunks, _member_signal(members[i])) for i in idx])
        except ContainerError:
            raise
        except Exception as exc:  # a damaged stream can fail in many ways; all mean "corrupt"
            names = ", ".join(repr(members[i].name) for i in idx[:3]) + (", ..." if len(idx) > 3 else "")
            raise ContainerError(f"member {names} could not be decoded ({type(exc).__name__}): corrupt payload") from None
        for i, samples in zip(idx, decoded):
            m = members[i]
            if container.canonical_digest(m.kind, samples, m.bits, m.meta) != m.sha256:
                raise ContainerError(f"checksum mismatch for member {m.name!r}: the decoded content is not the original")
            out[i] = Media(m.kind, samples, m.bits, m.meta)
    return out


def _member_signal(member: Member) -> Signal:
    return _signal(member.kind, member.shape, member.bits, member.meta)


def compress_bytes(data: bytes, name: str = "input", model: str = "auto", weights: str | None = None) -> bytes:
    return container.dumps([encode_media(read_media(data, name), name, model, weights)])


def decompress_bytes(blob: bytes, weights: str | None = None) -> list[tuple[str, bytes]]:
    """-> [(stored name, restored file bytes)] for every member."""
    _, members = container.loads(blob)
    return [(m.name, write_media(media)) for m, media in zip(members, decode_members(members, weights))]


def compress_array(samples: np.ndarray, kind: str, bits: int | None = None, rate: int = 0,
                   model: str = "auto") -> bytes:
    """Code a raw array: images (H, W[, C]) unsigned, audio (frames[, C]) signed."""
    samples = np.asarray(samples)
    if kind not in ("image", "audio"):
        raise InputError("kind must be 'image' or 'audio'")
    if not np.issubdtype(samples.dtype, np.integer):
        raise InputError("only integer arrays can be coded losslessly")
    if kind == "image":
        samples = samples.reshape(samples.shape[:2] + (-1,)) if samples.ndim in (2, 3) else None
        if samples is None or samples.min(initial=0) < 0:
            raise InputError("an image array is (H, W) or (H, W, C) with non-negative values")
        bits = bits or max(1, int(samples.max(initial=0)).bit_length())
        if bits > 16:
            raise InputError("images of up to 16 bits per sample are supported")
        samples = samples.astype(np.uint16 if bits > 8 else np.uint8)
    else:
        samples = samples.reshape(samples.shape[0], -1) if samples.ndim in (1, 2) else None
        if samples is None:
            raise InputError("an audio array is (frames,) or (frames, channels)")
        peak = max(int(samples.max(initial=0)), -int(samples.min(initial=0)) - 1)
        bits = bits or max(8, peak.bit_length() + 1)
        if bits > 32:
            raise InputError("audio of up to 32 bits per sample is supported")
        samples = samples.astype(np.int32)
    media = Media(kind, np.ascontiguousarray(samples), bits, {"format": "array", "rate": rate})
    return container.dumps([encode_media(media, "array", model)])


def decompress_array(blob: bytes) -> np.ndarray:
    _, members = container.loads(blob)
    return decode_member(members[0]).samples


def read_file(path) -> bytes:
    """A file's bytes, or the one-line error (exit 2) when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def compress_file(path, out=None, model: str = "auto", weights: str | None = None, force: bool = False) -> Path:
    """Compress one file to `out` (default: beside it, FILE.nz), atomically; -> the output path."""
    src = Path(path)
    target = Path(out) if out is not None else src.with_name(src.name + ".nz")
    check_writable(target, force)
    write_atomic(target, compress_bytes(read_file(src), src.name, model, weights))
    return target


def decompress_file(path, out=None, weights: str | None = None, force: bool = False, around=None) -> list:
    """Restore every member of a .nz beside it (or under/at `out`), all or nothing; -> written paths.
    `around(label)`, if given, is a context manager wrapped around the decoding (progress)."""
    nz = Path(path)
    top, members = container.loads(read_file(nz))
    if top.get("archive") or len(members) != 1:
        root = Path(out) if out is not None else nz.parent
        targets = [root / safe_member_name(m.name) for m in members]
    else:
        targets = [Path(out) if out is not None else nz.parent / safe_member_name(members[0].name).name]
    for t in targets:
        check_writable(t, force)
    # everything decoded before anything is written: all or nothing
    label = members[0].name if len(members) == 1 else f"{len(members)} members"
    with (around(label) if around else nullcontext()):
        restored = [write_media(media) for media in decode_members(members, weights)]
    written = []
    try:
        for t, data in zip(targets, restored):
            write_atomic(t, data)
            written.append(t)
    except BaseException:
        for t in written:
            t.unlink(missing_ok=True)
        raise
    return targets


def payload_shares(members: list[Member]) -> list[int]:
    """Payload bytes per member for the report. Members of one chain (params "chain": their count,
    the stream stored with the first) share its bytes in proportion to their exact-model bits
    (the first one's with the chain's initial bits)."""
    shares = [m.payload_bytes for m in members]
    i = 0
    while i < len(members):
        n = int(members[i].params.get("chain", 1)) if "chain_units" in members[i].params else 1
        if n > 1:
            chain = [j for j in range(i, len(members)) if members[j].model == members[i].model
                     and "chain" in members[j].params][:n]
            bits = [max(members[j].stats.get("nll_bits", 0.0) + members[j].stats.get("initial_bits", 0.0), 1e-9)
                    for j in chain]
            total = members[i].payload_bytes
            for j, b in zip(chain, bits):
                shares[j] = round(total * b / sum(bits))
        i += 1
    return shares


def member_report(member: Member, file: str, nbytes: int, seconds: float) -> Report:
    st = member.stats
    return Report(file=file, kind=member.kind, dims=int(np.prod(member.shape)), shape=_shape_text(member),
                  model=member.model, weights=member.weights, nll_float_bits=st.get("nll_float_bits", 0.0),
                  nll_bits=st.get("nll_bits", 0.0), bytes=nbytes, seconds=seconds,
                  initial_bits=st.get("initial_bits"))


def _shape_text(member: Member) -> str:
    s = member.shape
    if member.kind == "image":
        return f"{s[1]}x{s[0]}x{s[2]} {member.meta.get('mode', '')} {member.bits}-bit".replace("  ", " ")
    return f"{s[0]}x{s[1]}ch {member.meta.get('rate', '?')}Hz {member.bits}-bit"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
