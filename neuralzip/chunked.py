"""Long recordings and large images coded and restored chunk by chunk, in memory set by the model,
not the length.

A member goes this way when it holds more than STREAM_BYTES of samples (as the int32 the audio
models see) and can be read and written a block at a time (audio: WAV, FLAC, AIFF; images:
non-interlaced PNG, binary PNM, uncompressed BMP), and its codec cuts the frames or rows into
independent chunks it can take one at a time (`Codec.chunk_params`; ols-cascade, auto's audio
model, and the image models built on classic do); every other member goes the whole-member way
(api.encode_members / decode_members), and so does an image of at most WHOLE_JPEG_PIXELS that
--model auto finds to be a decoded JPEG (coded by jpeg-coefficients, which needs it whole).

Compress: the file is read a block of frames or rows at a time (media/audiostream: WAV by its
data offset, FLAC and AIFF through libsndfile; media/imagestream: PNG inflated and unfiltered as
rows are asked for, PNM and BMP by their data offset), the content checksum is fed the same
samples as they pass, the codec codes its chunks (ols-cascade: two at a time, in threads) and
they go to a spool, an unnamed temporary file beside the output, so that the record can be
written with its chunk lengths first. The record is byte for byte the one the whole-member path
writes (tests/test_streaming_long.py, tests/test_streaming_images.py).

Decompress: the record's chunks are read from the .nz one at a time (archive.RecordPayload, from
a file or a pipe), decoded, and the samples written straight into the temporary output file (WAV,
PNM and BMP: prefix, samples, suffix; PNG: rows filtered and deflated as media/png.write does it;
FLAC and AIFF through libsndfile), the checksum fed as they pass; the record's CRC and the
checksum are checked at the end, and the caller renames or removes the file.
"""

from __future__ import annotations

import math
import os
import tempfile

from neuralzip import container
from neuralzip.errors import ContainerError, InputError, NeuralzipError


def _stream_bytes() -> int:
    text = os.environ.get("NEURALZIP_STREAM_BYTES", "")
    return int(text) if text.isdigit() else 64 << 20


# a recording or image with more samples than this (as int32) is coded chunk by chunk; the
# environment variable NEURALZIP_STREAM_BYTES moves it for tests and benchmarks (the bytes written
# are the same)
STREAM_BYTES = _stream_bytes()
# a larger image that is a decoded JPEG is still coded whole by --model auto's jpeg-coefficients up
# to this many pixels (a 24-megapixel one takes 0.69 GB to compress; docs/RESULTS.md, stop 46)
WHOLE_JPEG_PIXELS = 24_000_000
SPOOL_PIECE = 1 << 20
# the formats written a block at a time (media/audiostream, media/imagestream)
WRITABLE = {"audio": ("wav", "flac", "aiff"), "image": ("png", "pnm", "bmp")}
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_FIXED_THRESHOLD = []


def keep_large_blocks_apart() -> None:
    """glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after which
    the buffers of the next chunks come from the heap, where what is freed stays resident: a long
    recording's peak would creep up chunk after chunk. A fixed threshold of 1 MiB keeps every large
    buffer in a mapping of its own, given back when it is freed. Once per process; elsewhere a no-op."""
    if _FIXED_THRESHOLD:
        return
    _FIXED_THRESHOLD.append(True)
    import ctypes
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)
        except (OSError, AttributeError):
            pass


def long_enough(kind: str, shape) -> bool:
    """Whether a member of this kind and shape is taken chunk by chunk (if its codec can)."""
    if (kind, len(shape)) not in (("audio", 2), ("image", 3)):
        return False
    return 4 * math.prod(int(v) for v in shape) > STREAM_BYTES


def writable(kind: str, meta: dict) -> bool:
    """Whether a member's file is written a block at a time."""
    return meta.get("format") in WRITABLE.get(kind, ())


def _streams(kind: str):
    if kind == "audio":
        from neuralzip.media import audiostream

        return audiostream
    from neuralzip.media import imagestream

    return imagestream


def chunk_codec(codec) -> bool:
    from neuralzip.models.base import Codec

    return type(codec).decode_chunks is not Codec.decode_chunks and type(codec).encode_chunks is not Codec.encode_chunks


# ------------------------------------------------------------------ compress

class Spool:
    """Coded chunks kept in an unnamed temporary file (gone when closed, or when the process ends):
    `lengths`, `pieces()` (what archive.Writer copies into the record), and `read(j)`, in order,
    for --verify."""

    def __init__(self, directory=None):
        self.f = tempfile.TemporaryFile(dir=directory)
        self.lengths: list[int] = []
        self._next = self._pos = 0

    def add(self, data: bytes) -> None:
        self.f.seek(0, 2)
        self.f.write(data)
        self.lengths.append(len(data))

    def __len__(self) -> int:
        return len(self.lengths)

    def pieces(self):
        self.f.flush()
        self.f.seek(0)
        while True:
            piece = self.f.read(SPOOL_PIECE)
            if not piece:
                return
            yield piece

    def read(self, j: int) -> bytes:
        if j == 0:
            self._next = self._pos = 0
        if j != self._next:
            raise ValueError("a spool's chunks are read in order")
        self.f.flush()
        self.f.seek(self._pos)
        data = self.f.read(self.lengths[j])
        self._next, self._pos = j + 1, self._pos + len(data)
        return data

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.f.close()


def plan(path, model: str, weights: str | None, level: int):
    """The codec that takes the file at `path` chunk by chunk, or None: the whole-member way (short,
    in a format read whole, unreadable: that way says why, or a model that codes members whole)."""
    from neuralzip import api
    from neuralzip.media import detect

    try:
        with open(path, "rb") as f:
            found = detect.sniff(f.read(16))
    except OSError:
        return None
    if found is None:
        return None
    kind = found[0]
    shape = _streams(kind).probe(path, STREAM_BYTES // 4)
    if shape is None or not long_enough(kind, shape):
        return None
    if model == "auto" and kind == "image" and _decoded_jpeg(path, shape):
        return None  # coded whole: --model auto takes jpeg-coefficients for it (api.encode_members)
    try:
        codec = api.get_codec(model, kind, weights, level)
    except InputError:
        return None  # coding it the usual way will say why
    return codec if chunk_codec(codec) else None


def _decoded_jpeg(path, shape) -> bool:
    """Whether --model auto takes jpeg-coefficients for this large image: a decoded JPEG of at most
    WHOLE_JPEG_PIXELS pixels (read whole to see; the model codes it whole, in under 1 GB)."""
    if len(shape) != 3 or shape[2] not in (1, 3) or shape[0] * shape[1] > WHOLE_JPEG_PIXELS:
        return False
    from neuralzip import api
    from neuralzip.models import DECODED_JPEG

    try:
        with open(path, "rb") as f:
            media = api.read_media(f.read(), str(path))
    except (OSError, NeuralzipError):
        return False  # coding it the usual way will say why
    return api.auto_model("image", media.samples, media.bits) == DECODED_JPEG


def _open_reader(path, kind: str, fmt: str):
    """A block reader of the file at `path` -> (reader: `bits`, `meta`, read(n), close(); its shape)."""
    r = _streams(kind).open_reader(path, fmt)
    return r, ((r.frames, r.channels) if kind == "audio" else tuple(r.shape))


def sample_dtype(kind: str, bits: int):
    """The dtype whose samples the content checksum covers (as the whole-file readers give them)."""
    import numpy as np

    if kind == "audio":
        return np.dtype(np.int32)
    return np.dtype(np.uint16 if bits > 8 else np.uint8)


def encode_file(path, name: str, codec, spool_dir=None) -> container.Member:
    """The member of the audio or image file at `path`, its chunks in a Spool (the caller closes it
    once the record is written: member.chunks.close())."""
    from neuralzip.media import detect
    from neuralzip.models.base import Signal, drain_chunks

    keep_large_blocks_apart()
    with open(path, "rb") as f:
        found = detect.sniff(f.read(16))
    if found is None or found[0] != codec.kind:
        raise InputError(f"{path}: not an {codec.kind} file")
    kind = found[0]
    source, shape = _open_reader(path, kind, found[1])
    spool = Spool(spool_dir)
    try:
        bits, meta = source.bits, source.meta
        signal = Signal(kind, shape, bits, int(meta.get("rate", 0)))
        params = codec.chunk_params(signal)
        hasher = container.ContentHasher(kind, shape, sample_dtype(kind, bits), bits, meta)
        taken = [0]

        def read(n: int):
            if taken[0] + n > shape[0]:
                raise ValueError("the codec asked for samples past the end")
            block = source.read(n)
            hasher.update(block)
            taken[0] += n
            return block

        # the bits summed in chunk order from 0, as encode sums them: the same float
        _, total, float_total = drain_chunks(codec.encode_chunks(params, read, signal), spool.add)
        if float_total is None:
            float_total = total
        if taken[0] != shape[0]:
            raise ValueError(f"the codec read {taken[0]} of {shape[0]} {'frames' if kind == 'audio' else 'rows'}")
    except BaseException:
        spool.close()
        raise
    finally:
        source.close()
    # a thousandth of a bit, as api._member
    stats = {"nll_bits": round(total, 3), "nll_float_bits": round(float_total, 3)}
    return container.Member(name=name, kind=kind, model=codec.name, weights=codec.weights_hash,
                            shape=shape, bits=bits, meta=meta, params=params, sha256=hasher.hexdigest(),
                            chunks=spool, stats=stats)


def verify(member: container.Member, weights: str | None = None) -> None:
    """--verify for a spooled member: decode its chunks from the spool and compare the checksum."""
    from neuralzip import api

    [codec] = api.check_members([member], weights, None, chunked=True)
    decode_to(member, codec, None)


# ------------------------------------------------------------------ decompress

def decodes(member: container.Member, codec) -> bool:
    """Whether a member read with its chunks left in the input is decoded chunk by chunk here."""
    return (long_enough(member.kind, member.shape) and writable(member.kind, member.meta) and chunk_codec(codec)
            and codec.decodes_in_chunks(member.params))


def decode_to(member: container.Member, codec, out) -> None:
    """Decode `member` (its chunks: an archive.RecordPayload or a Spool) into the open binary file
    `out` (its restored file; None: nothing written, the checksum checked), in bounded memory.
    Any failure raises ContainerError; the caller removes what was written."""
    keep_large_blocks_apart()
    shape = tuple(int(v) for v in member.shape)
    signal = member_signal(member)
    hasher = container.ContentHasher(member.kind, shape, sample_dtype(member.kind, member.bits), member.bits,
                                     member.meta)
    try:
        writer = None if out is None else _streams(member.kind).open_writer(out, member.meta, shape, member.bits)
    except Exception as exc:
        raise ContainerError(f"member {member.name!r} cannot be restored ({type(exc).__name__}): "
                             "corrupt restore metadata") from None
    done = [0]

    def write(block) -> None:
        if done[0] + len(block) > shape[0] or tuple(block.shape[1:]) != shape[1:]:
            raise ValueError("decoded past the member's end")
        hasher.update(block)
        if writer is not None:
            writer.write(block)
        done[0] += len(block)

    try:
        codec.decode_chunks(member.params, member.chunks.read, signal, write)
        member.chunks.finish()
        if done[0] != shape[0]:
            raise ValueError(f"decoded {done[0]} of {shape[0]} frames or rows")
    except ContainerError:
        raise
    except MemoryError:
        raise ContainerError(f"member {member.name!r}: out of memory while decoding (lower --max-memory to refuse "
                             "such members before decoding)") from None
    except (KeyboardInterrupt, SystemExit, OSError):  # OSError: writing the output failed, not the payload
        raise
    except BaseException as exc:  # as api.decode_members: a damaged stream fails in many ways
        raise ContainerError(f"member {member.name!r} could not be decoded ({type(exc).__name__}): "
                             "corrupt payload") from None
    if not container.digest_matches(member, hasher.hexdigest()):
        raise ContainerError(f"checksum mismatch for member {member.name!r}: the decoded content is not the original")
    if writer is not None:
        try:
            writer.close()
        except Exception as exc:
            raise ContainerError(f"member {member.name!r} cannot be restored ({type(exc).__name__}): "
                                 "corrupt restore metadata") from None


def member_signal(member: container.Member):
    """What the member's codec is told of it (as api does)."""
    from neuralzip.models.base import Signal

    return Signal(member.kind, tuple(member.shape), member.bits, int(member.meta.get("rate", 0)))


def decode_file(member: container.Member, codec, path) -> None:
    """decode_to into a new file at `path` (a temporary name: the caller renames it); removed on a failure."""
    try:
        with open(path, "w+b") as out:  # libsndfile reads back what it wrote (FLAC's header)
            decode_to(member, codec, out)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise


def decode_stream(member: container.Member, codec, stream) -> None:
    """decode_to, then the restored file copied to `stream` (stdout): nothing is written there unless
    the member decoded and matched its checksum."""
    import shutil

    with tempfile.TemporaryFile() as tmp:
        decode_to(member, codec, tmp)
        tmp.seek(0)
        shutil.copyfileobj(tmp, stream, SPOOL_PIECE)
