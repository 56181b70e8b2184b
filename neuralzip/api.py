"""compress/decompress for files, bytes and numpy arrays.

Everything the CLI does goes through here; nothing here imports torch. numpy, the media
layer and the models are imported on first use, so a .nz that declares more than
--max-memory is refused from its header before any of them loads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from neuralzip import container, limits
from neuralzip.container import Member
from neuralzip.errors import ContainerError, InputError
from neuralzip.fileio import check_writable


def read_media(data: bytes, name: str = "input"):
    from neuralzip.media.detect import read_media as read

    return read(data, name)


def write_media(media) -> bytes:
    from neuralzip.media.detect import write_media as write

    return write(media)


def get_codec(name: str, kind: str, weights: str | None = None, level: int = 1):
    if kind == "file":  # not an image or audio: the standard library's LZMA, whatever the model asked
        from neuralzip.filecodec import CODEC

        return CODEC
    from neuralzip.models import get_codec as get

    return get(name, kind, weights, level)


def auto_model(kind: str, samples, bits: int) -> str | None:
    if kind == "file":
        return None
    from neuralzip.models import auto_model as pick

    return pick(kind, samples, bits)


def file_media(data: bytes):
    """A file that is not an image or audio, as a Media of kind "file" (its bytes)."""
    import numpy as np

    from neuralzip.media import Media

    return Media("file", np.frombuffer(data, np.uint8), 8, {"format": "file"})


@dataclass
class Report:
    """The per-file figures the CLI prints (and --json writes)."""

    file: str
    kind: str
    dims: int
    shape: str
    model: str
    level: int  # the compression level the member was coded at (--level)
    weights: str | None
    nll_float_bits: float
    nll_bits: float
    bytes: int
    seconds: float
    initial_bits: float | None = None  # bits-back models only
    peers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"file": self.file, "kind": self.kind, "dims": self.dims, "shape": self.shape,
             "model": self.model, "level": self.level, "weights": self.weights,
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
    from neuralzip.models.base import Signal

    return Signal(kind, tuple(shape), bits, int(meta.get("rate", 0)))


def encode_media(media: Media, name: str, model: str = "auto", weights: str | None = None, level: int = 1) -> Member:
    """Code one medium into a container member (with its likelihood figures)."""
    return encode_members([(media, name)], model, weights, level)[0]


def encode_members(items: list[tuple[Media, str]], model: str = "auto", weights: str | None = None,
                   level: int = 1) -> list[Member]:
    """Code the media of one output file. Each codec gets all its members at once (encode_set), so
    a codec that chains them (vae: one bits-back chain over an archive) can."""
    by_model: dict[tuple[str, str], list[int]] = {}
    for i, (media, _) in enumerate(items):
        chosen = (auto_model(media.kind, media.samples, media.bits) if model == "auto" else None) or model
        by_model.setdefault((media.kind, chosen), []).append(i)
    members = [None] * len(items)
    for (kind, chosen), idx in by_model.items():
        # once per medium and model: with --weights each call loads the file
        codec = get_codec(chosen, kind, *((weights, level) if chosen == model else (None, 1)))
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
    return Member(name=name, kind=media.kind, model=codec.name, weights=codec.weights_hash,  # noqa
                  shape=media.samples.shape, bits=media.bits, meta=media.meta, params=enc.params,
                  sha256=container.canonical_digest(media.kind, media.samples, media.bits, media.meta),
                  chunks=enc.chunks, stats=stats)


DEFAULT_MAX_MEMORY = limits.DEFAULT_MAX_MEMORY


def decode_member(member: Member, weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY) -> Media:
    """Rebuild one member (a member of a shared chain can only be decoded with its archive)."""
    return decode_members([member], weights, max_memory)[0]


def decoded_bytes(member: Member) -> int:
    """The member's declared samples, held at their integer size (8, 16 or 32 bits)."""
    samples = 1
    for v in member.shape:
        samples *= v
    return samples * limits.sample_bytes(member.kind, member.bits)


def member_memory(member: Member, codec) -> int:
    """Bytes decoding this member takes, estimated from its header alone: the decoded samples,
    the restored file and a working copy of them (limits.COPIES in all), plus the codec's own
    working memory (codec.decode_memory)."""
    return limits.COPIES * decoded_bytes(member) + int(codec.decode_memory(member.params, _member_signal(member)))


def _max_memory(value) -> int:
    """--max-memory as given (bytes, a size string such as '4G', or None/0: no limit) -> bytes (0: none)."""
    if value is None:
        return 0
    n = limits.parse_size(value)
    if n < 0:
        raise InputError("--max-memory must not be negative")
    return n


def check_members(members: list[Member], weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY,
                  chunked: bool = False) -> list:
    """Everything a decoder is asked to do, checked before it starts: each member's model and
    weights, its codec parameters against its shape and chunk count (codec.check_params), and the
    memory it needs against `max_memory` (bytes or '4G'; None or 0: no limit). -> each member's codec.
    `chunked`: the members are decoded chunk by chunk into their files (neuralzip/chunked.py), so
    the memory they need is the codec's for its chunks (chunk_decode_memory), whatever their length;
    their decoded samples alone must still fit `max_memory`, so that a small hostile header cannot
    set the decoder working for hours on a declared size that nothing backs."""
    from neuralzip.models.base import ParamError

    limit = _max_memory(max_memory)
    if not chunked:
        check_sizes(members, limit)
    codecs = []
    for m in members:
        codec = _file_codec(m) if m.kind == "file" else _member_codec(m, weights)
        try:
            codec.check_params(m.params, _member_signal(m), len(m.chunks))
        except (ParamError, ValueError, KeyError, TypeError, OverflowError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else f"params are not what model {m.model!r} writes"
            raise ContainerError(f"corrupt container header: member {m.name!r}: {why}") from None
        if limit:
            need = (max(int(codec.chunk_decode_memory(m.params, _member_signal(m))), decoded_bytes(m)) if chunked
                    else member_memory(m, codec))
            if need > limit:
                raise ContainerError(f"member {m.name!r} ({_declared(m)}) would need about {limits.format_size(need)} "
                                     f"to decode, more than --max-memory {limits.format_size(limit)}; "
                                     "raise --max-memory to decode it")
        codecs.append(codec)
    return codecs


def check_sizes(members: list[Member], max_memory=DEFAULT_MAX_MEMORY) -> None:
    """The first, header-only part of check_members: a member whose decoded samples alone (with the
    restored file and a working copy) exceed `max_memory` is refused before numpy or a model loads."""
    limit = _max_memory(max_memory)
    for m in members:
        samples = 1
        for v in m.shape:
            samples *= v
        need = limits.COPIES * samples * limits.sample_bytes(m.kind, m.bits)
        if limit and need > limit:
            raise ContainerError(f"member {m.name!r} ({_declared(m)}) would need about {limits.format_size(need)} "
                                 f"to decode, more than --max-memory {limits.format_size(limit)}; "
                                 "raise --max-memory to decode it")


def _declared(m: Member) -> str:
    if m.kind == "image":
        return f"a {m.shape[1]}x{m.shape[0]} image with {m.shape[2]} channel(s)"
    if m.kind == "file":
        return f"a file of {m.shape[0]} bytes"
    return f"a recording of {m.shape[0]} frames x {m.shape[1]} channel(s)"


def _file_codec(member: Member):
    from neuralzip.filecodec import CODEC

    if member.model != CODEC.name or member.weights is not None:
        raise ContainerError(f"member {member.name!r} uses model {member.model!r}, unknown to this neuralzip "
                             "for a file that is not an image or audio")
    return CODEC


def _member_codec(member: Member, weights: str | None):
    from neuralzip.models import decoder_for

    try:
        return decoder_for(member.model, member.kind, member.weights, weights)
    except ContainerError as exc:
        raise ContainerError(f"member {member.name!r}: {exc}") from None


def decode_members(members: list[Member], weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY) -> list[Media]:
    """Rebuild members' canonical content, each codec's members together (decode_set), and check
    every one against its stored checksum. `weights`: the user's weights file, for members coded with one.
    Nothing is decoded unless every member passes check_members (`max_memory`: see there)."""
    check_sizes(members, max_memory)  # before numpy and the models load: a bomb is refused at once
    import numpy as np

    from neuralzip.media import Media

    codecs = check_members(members, weights, max_memory)
    groups: dict[tuple, tuple] = {}
    for i, (m, codec) in enumerate(zip(members, codecs)):
        groups.setdefault((m.model, m.kind, m.weights), (codec, []))[1].append(i)
    out = [None] * len(members)
    for codec, idx in groups.values():
        try:
            decoded = codec.decode_set([(members[i].params, members[i].chunks, _member_signal(members[i])) for i in idx])
        except ContainerError:
            raise
        except MemoryError:
            names = ", ".join(repr(members[i].name) for i in idx[:3]) + (", ..." if len(idx) > 3 else "")
            raise ContainerError(f"member {names}: out of memory while decoding (lower --max-memory to refuse "
                                 "such members before decoding)") from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a damaged stream can fail in many ways (the coder's Rust assertions
            # surface as PanicException, a BaseException); all mean "corrupt"
            names = ", ".join(repr(members[i].name) for i in idx[:3]) + (", ..." if len(idx) > 3 else "")
            raise ContainerError(f"member {names} could not be decoded ({type(exc).__name__}): corrupt payload") from None
        for i, samples in zip(idx, decoded):
            m = members[i]
            if not isinstance(samples, np.ndarray) or samples.shape != tuple(m.shape):
                raise ContainerError(f"member {m.name!r} decoded to the wrong shape: corrupt payload")
            if not container.digest_matches(m, container.canonical_digest(m.kind, samples, m.bits, m.meta)):
                raise ContainerError(f"checksum mismatch for member {m.name!r}: the decoded content is not the original")
            out[i] = Media(m.kind, samples, m.bits, m.meta)
    return out


def _member_signal(member: Member) -> Signal:
    return _signal(member.kind, member.shape, member.bits, member.meta)


def compress_bytes(data: bytes, name: str = "input", model: str = "auto", weights: str | None = None,
                   level: int = 1) -> bytes:
    return container.dumps([encode_media(read_media(data, name), name, model, weights, level)])


def decompress_bytes(blob: bytes, weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY) -> list[tuple[str, bytes]]:
    """-> [(stored name, restored file bytes)] for every member. A member whose decoding would need
    more than `max_memory` (bytes or '4G'; None or 0: no limit) is refused before anything is decoded."""
    _, members = container.loads(blob, _max_memory(max_memory))
    return [(m.name, restore(m, media)) for m, media in zip(members, decode_members(members, weights, max_memory))]


def restore(member: Member, media: Media) -> bytes:
    """The restored file's bytes (a raw array comes back as a .npy file). The metadata passed the
    checksum, but a crafted file can carry a checksum over anything: a writer failure is its fault."""
    if member.kind == "file":
        return media.samples.tobytes()
    try:
        return write_media(media)
    except MemoryError:
        raise ContainerError(f"member {member.name!r}: out of memory while writing the restored file") from None
    except Exception as exc:
        raise ContainerError(f"member {member.name!r} cannot be restored ({type(exc).__name__}): "
                             "corrupt restore metadata") from None


def test_bytes(blob: bytes, weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY) -> int:
    """Decode every member, check its checksum and rebuild its file in memory, writing nothing
    (`neuralzip test`). -> the number of members; any failure raises ContainerError."""
    _, members = container.loads(blob, _max_memory(max_memory))
    for m, media in zip(members, decode_members(members, weights, max_memory)):
        restore(m, media)
    return len(members)


def test_file(path, weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY, jobs: int = 1) -> int:
    """test_bytes for a .nz file or a shard set, read group by group (streaming.check) over `jobs`
    processes (0: every core)."""
    from neuralzip import streaming

    return streaming.check(path, jobs, weights, max_memory)


def compress_array(samples: np.ndarray, kind: str, bits: int | None = None, rate: int = 0,
                   model: str = "auto") -> bytes:
    """Code a raw array: images (H, W[, C]) unsigned, audio (frames[, C]) signed."""
    import numpy as np

    from neuralzip.media import Media

    samples = np.asarray(samples)
    rate = int(rate)
    if not 0 <= rate <= limits.MAX_RATE:
        raise InputError("rate must be a sample rate in Hz (0: unknown)")
    if bits is not None and (int(bits) != bits or bits < 1):
        raise InputError("bits must be a positive integer")
    if kind not in ("image", "audio"):
        raise InputError("kind must be 'image' or 'audio'")
    if not np.issubdtype(samples.dtype, np.integer):
        raise InputError("only integer arrays can be coded losslessly")
    if kind == "image":
        samples = samples[:, :, None] if samples.ndim == 2 else (samples if samples.ndim == 3 else None)
        if samples is None or samples.min(initial=0) < 0:
            raise InputError("an image array is (H, W) or (H, W, C) with non-negative values")
        bits = bits or max(1, int(samples.max(initial=0)).bit_length())
        if bits > 16:
            raise InputError("images of up to 16 bits per sample are supported")
        if not 1 <= samples.shape[2] <= limits.IMAGE_CHANNELS[1] or samples.size == 0:
            raise InputError(f"an image array has 1 to {limits.IMAGE_CHANNELS[1]} channels and at least one pixel")
        if int(samples.max(initial=0)) >> bits:
            raise InputError(f"an image array value does not fit in {bits} bits")
        samples = samples.astype(np.uint16 if bits > 8 else np.uint8)
    else:
        samples = samples[:, None] if samples.ndim == 1 else (samples if samples.ndim == 2 else None)
        if samples is None:
            raise InputError("an audio array is (frames,) or (frames, channels)")
        peak = max(int(samples.max(initial=0)), -int(samples.min(initial=0)) - 1)
        bits = bits or max(8, peak.bit_length() + 1)
        if bits > 32:
            raise InputError("audio of up to 32 bits per sample is supported")
        if not 1 <= samples.shape[1] <= limits.AUDIO_CHANNELS[1]:
            raise InputError(f"an audio array has 1 to {limits.AUDIO_CHANNELS[1]} channels")
        if peak >> (bits - 1):
            raise InputError(f"an audio array value does not fit in {bits} signed bits")
        samples = samples.astype(np.int32)
    media = Media(kind, np.ascontiguousarray(samples), bits, {"format": "array", "rate": rate})
    return container.dumps([encode_media(media, "array", model)])


def decompress_array(blob: bytes, max_memory=DEFAULT_MAX_MEMORY) -> np.ndarray:
    _, members = container.loads(blob, _max_memory(max_memory))
    if len(members) != 1:
        raise ContainerError(f"expected one member, found {len(members)}: use decompress_bytes")
    return decode_member(members[0], max_memory=max_memory).samples


def read_file(path) -> bytes:
    """A file's bytes, or the one-line error (exit 2) when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def compress_file(path, out=None, model: str = "auto", weights: str | None = None, force: bool = False,
                  level: int = 1) -> Path:
    """Compress one file to `out` (default: beside it, FILE.nz), atomically; -> the output path."""
    from neuralzip.streaming import Source, compress_sources

    src = Path(path)
    target = Path(out) if out is not None else src.with_name(src.name + ".nz")
    check_writable(target, force)
    read_file(src)  # a missing or unreadable file: the one-line error
    compress_sources([Source(src.name, src)], target, False, model, weights, level, jobs=1)
    return target


def compress_paths(paths, out, model: str = "auto", weights: str | None = None, force: bool = False,
                   level: int = 1, jobs: int = 0, verify: bool = False) -> list[Report]:
    """Files and folders (recursive: every file in them, images and audio coded by the models, the rest
    with LZMA) into one archive `out`, group by group in bounded memory, over `jobs` processes
    (0: every core; the bytes are the same for any number). -> a report per member."""
    from neuralzip.streaming import compress_sources

    target = Path(out)
    check_writable(target, force)
    reports, _ = compress_sources(archive_sources(paths), target, True, model, weights, level, jobs, verify=verify)
    return reports


def archive_sources(paths) -> list:
    """The sources of an archive: each file under its name, each folder's files under their paths
    relative to it (sorted); two sources under one name are refused."""
    from neuralzip.streaming import Source

    out, seen = [], set()
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir():
            entries = [(f.relative_to(p).as_posix(), f, True) for f in sorted(p.rglob("*")) if f.is_file()]
            if not entries:
                raise InputError(f"{p}: no files in this directory")
        else:
            entries = [(p.name, p, False)]
        for name, f, other in entries:
            if name in seen:
                raise InputError(f"two inputs would be stored under the same name {name!r}")
            seen.add(name)
            out.append(Source(name, f, other=other))
    return out


def decompress_file(path, out=None, weights: str | None = None, force: bool = False, around=None,
                    max_memory=DEFAULT_MAX_MEMORY, members=(), jobs: int = 0) -> list:
    """Restore every member of a .nz (or those whose names match `members`: names or globs) beside it
    (or under/at `out`), all or nothing, group by group in bounded memory; -> written paths.
    `around(label)`, if given, is a context manager wrapped around the decoding (progress).
    `max_memory`: see check_members. `jobs`: processes (0: every core)."""
    from neuralzip.streaming import extract

    return extract(path, out, members, force, jobs, weights, max_memory, around=around)


def extract_member(path, name: str, weights: str | None = None, max_memory=DEFAULT_MAX_MEMORY) -> bytes:
    """One member's restored file, decoding only its group."""
    import io

    from neuralzip.streaming import extract

    buf = io.BytesIO()
    extract(path, None, [name], weights=weights, max_memory=max_memory, to_stream=buf, jobs=1)
    return buf.getvalue()


def list_archive(path, max_memory=DEFAULT_MAX_MEMORY) -> list:
    """Every member of a .nz from its table alone: name, kind, shape, bits, model, bytes, dims, bpd."""
    from neuralzip.streaming import list_entries

    return list_entries(path, _max_memory(max_memory))


def payload_shares(members: list[Member]) -> list[int]:
    """Payload bytes per member for the report. Members of one chain (params "chain": their count,
    the stream stored with the first) share its bytes in proportion to their exact-model bits
    (the first one's with the chain's initial bits)."""
    shares = [m.payload_bytes for m in members]
    i = 0
    while i < len(members):
        n = _chain_length(members[i])
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


def _chain_length(m: Member) -> int:
    """How many members the chain that `m` starts holds (1: not a chain's start); any value in the
    header that is not a sensible count reads as 1 (the report is all it affects)."""
    n = m.params.get("chain", 1) if "chain_units" in m.params else 1
    return n if container.is_int(n) and 1 <= n <= 1 << 24 else 1


def chain_note(m: Member) -> str:
    """For `info`: the note on a member of a bits-back chain (its count from the header)."""
    n = m.params.get("chain", 1)
    return f" (share of a bits-back chain over {n} members)" if container.is_int(n) and n > 1 else ""


def member_level(member: Member) -> int:
    """The compression level a member was coded at (models with one level record none)."""
    level = member.params.get("level", 1)
    return level if isinstance(level, int) else 1


def member_report(member: Member, file: str, nbytes: int, seconds: float) -> Report:
    st = member.stats
    dims = 1
    for v in member.shape:
        dims *= v
    return Report(file=file, kind=member.kind, dims=dims, shape=_shape_text(member),
                  model=member.model, level=member_level(member), weights=member.weights,
                  nll_float_bits=st.get("nll_float_bits", 0.0),
                  nll_bits=st.get("nll_bits", 0.0), bytes=nbytes, seconds=seconds,
                  initial_bits=st.get("initial_bits"))


def _shape_text(member: Member) -> str:
    s = member.shape
    if member.kind == "file":
        return f"{s[0]} bytes"
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
