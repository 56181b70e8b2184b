"""Long recordings coded and restored chunk by chunk, in memory set by the model, not the length.

A member goes this way when it is audio holding more than STREAM_BYTES of samples (as the int32
the models see) and its codec cuts the frames into independent chunks it can take one at a time
(`Codec.chunk_params`; ols-cascade, auto's audio model, does); every other member, and a recording
coded by another model, goes the whole-member way (api.encode_members / decode_members).

Compress: the file is read a block of frames at a time (media/audiostream: WAV by its data offset,
FLAC and AIFF through libsndfile), the content checksum is fed the same bytes as they pass, the
codec codes its chunks (ols-cascade: two at a time, in threads) and they go to a spool, an unnamed
temporary file beside the output, so that the record can be written with its chunk lengths first.
The record is byte for byte the one the whole-member path writes (tests/test_streaming_long.py).

Decompress: the record's chunks are read from the .nz one at a time (archive.RecordPayload, from
a file or a pipe), decoded, and the samples written straight into the temporary output file (WAV:
prefix, samples, suffix; FLAC and AIFF through libsndfile), the checksum fed as they pass; the
record's CRC and the checksum are checked at the end, and the caller renames or removes the file.
"""

from __future__ import annotations

import os
import tempfile

from neuralzip import container
from neuralzip.errors import ContainerError, InputError


def _stream_bytes() -> int:
    text = os.environ.get("NEURALZIP_STREAM_BYTES", "")
    return int(text) if text.isdigit() else 64 << 20


# a recording with more samples than this (as int32) is coded chunk by chunk; the environment
# variable NEURALZIP_STREAM_BYTES moves it for tests and benchmarks (the bytes written are the same)
STREAM_BYTES = _stream_bytes()
SPOOL_PIECE = 1 << 20
WRITABLE = ("wav", "flac", "aiff")  # the formats written a block at a time (media/audiostream)
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
    if kind != "audio" or len(shape) != 2:
        return False
    return 4 * int(shape[0]) * int(shape[1]) > STREAM_BYTES


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
    """The codec that takes the file at `path` chunk by chunk, or None: the whole-member way (not
    audio, short, unreadable: that way says why, or a model that codes recordings whole)."""
    from neuralzip import api
    from neuralzip.media.audiostream import probe

    found = probe(path, STREAM_BYTES // 4)
    if found is None or not long_enough("audio", found):
        return None
    try:
        codec = api.get_codec(model, "audio", weights, level)
    except InputError:
        return None  # coding it the usual way will say why
    return codec if chunk_codec(codec) else None


def encode_file(path, name: str, codec, spool_dir=None) -> container.Member:
    """The member of the audio file at `path`, its chunks in a Spool (the caller closes it once
    the record is written: member.chunks.close())."""
    import numpy as np

    from neuralzip.media import detect
    from neuralzip.media.audiostream import open_reader
    from neuralzip.models.base import Signal

    keep_large_blocks_apart()
    with open(path, "rb") as f:
        found = detect.sniff(f.read(16))
    if found is None or found[0] != "audio":
        raise InputError(f"{path}: not an audio file")
    reader = open_reader(path, found[1])
    spool = Spool(spool_dir)
    try:
        frames, nch, bits, meta = reader.frames, reader.channels, reader.bits, reader.meta
        signal = Signal("audio", (frames, nch), bits, int(meta.get("rate", 0)))
        params = codec.chunk_params(signal)
        hasher = container.ContentHasher("audio", (frames, nch), np.int32, bits, meta)
        taken = [0]

        def read(n: int):
            if taken[0] + n > frames:
                raise ValueError("the codec asked for frames past the end")
            block = reader.read(n)
            hasher.update(block)
            taken[0] += n
            return block

        total = 0
        for data, b in codec.encode_chunks(params, read, signal):
            spool.add(data)
            total += b  # in chunk order from 0, as encode sums them: the same float
        if taken[0] != frames:
            raise ValueError(f"the codec read {taken[0]} of {frames} frames")
    except BaseException:
        spool.close()
        raise
    finally:
        reader.close()
    # a chunk codec's float and exact likelihoods are one (RunCodec); a thousandth of a bit, as api._member
    stats = {"nll_bits": round(total, 3), "nll_float_bits": round(total, 3)}
    return container.Member(name=name, kind="audio", model=codec.name, weights=codec.weights_hash,
                            shape=(frames, nch), bits=bits, meta=meta, params=params, sha256=hasher.hexdigest(),
                            chunks=spool, stats=stats)


def verify(member: container.Member, weights: str | None = None) -> None:
    """--verify for a spooled member: decode its chunks from the spool and compare the checksum."""
    from neuralzip import api

    [codec] = api.check_members([member], weights, None, chunked=True)
    decode_to(member, codec, None)


# ------------------------------------------------------------------ decompress

def decodes(member: container.Member, codec) -> bool:
    """Whether a member read with its chunks left in the input is decoded chunk by chunk here."""
    return (long_enough(member.kind, member.shape) and member.meta.get("format") in WRITABLE
            and chunk_codec(codec))


def decode_to(member: container.Member, codec, out) -> None:
    """Decode `member` (its chunks: an archive.RecordPayload or a Spool) into the open binary file
    `out` (its restored file; None: nothing written, the checksum checked), in bounded memory.
    Any failure raises ContainerError; the caller removes what was written."""
    import numpy as np

    from neuralzip.media.audiostream import open_writer

    keep_large_blocks_apart()
    frames, nch = int(member.shape[0]), int(member.shape[1])
    signal = member_signal(member)
    hasher = container.ContentHasher("audio", (frames, nch), np.int32, member.bits, member.meta)
    try:
        writer = None if out is None else open_writer(out, member.meta, nch, member.bits)
    except Exception as exc:
        raise ContainerError(f"member {member.name!r} cannot be restored ({type(exc).__name__}): "
                             "corrupt restore metadata") from None
    done = [0]

    def write(block) -> None:
        if done[0] + len(block) > frames or block.shape[1:] != (nch,):
            raise ValueError("decoded past the recording's end")
        hasher.update(block)
        if writer is not None:
            writer.write(block)
        done[0] += len(block)

    try:
        codec.decode_chunks(member.params, member.chunks.read, signal, write)
        member.chunks.finish()
        if done[0] != frames:
            raise ValueError(f"decoded {done[0]} of {frames} frames")
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
