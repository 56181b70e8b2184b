"""FLAC and AIFF through libsndfile: identical samples, rate, channels,
sample format and text tags (the file itself is re-encoded on restore)."""

import io
import re
import sys
from contextlib import contextmanager

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media

BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
TAGS = ("title", "copyright", "software", "artist", "comment", "date", "album", "license",
        "tracknumber", "genre")


def read(data: bytes, fmt: str) -> Media:
    with _reading(fmt):
        with _open(_File(data), fmt) as f:
            raw = _read_blocks(f)
            meta = _meta(f, fmt)
    bits = BITS[meta["subtype"]]
    return Media("audio", _samples(raw, bits), bits, meta)


@contextmanager
def _reading(fmt: str):
    """What libsndfile says of a damaged file, as one line of InputError."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None  # see _File: nothing of a damaged file reaches stderr
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        why = re.sub(r"Error opening <[^>]*>: ", "", str(exc).strip("'\"").splitlines()[0] if str(exc) else repr(exc))
        raise InputError(f"unreadable {fmt.upper()} audio: {why}") from None
    finally:
        sys.unraisablehook = hook


def _open(source, fmt: str):
    """An open SoundFile (bytes through _File, or a path), its sample format and size checked."""
    import soundfile as sf

    f = sf.SoundFile(source)
    try:
        if f.subtype not in BITS:
            raise InputError(f"{fmt.upper()} with {f.subtype} samples is not supported (integer PCM only)")
        if not 1 <= f.channels <= limits.AUDIO_CHANNELS[1] or f.frames < 0:
            raise InputError(f"{fmt.upper()} with {f.channels} channels is not supported")
        limits.check_declared(f"{fmt.upper()} audio ({f.frames} frames)", f.frames * f.channels, 4)
    except BaseException:
        f.close()
        raise
    return f


def _meta(f, fmt: str) -> dict:
    return {"format": fmt, "rate": f.samplerate, "subtype": f.subtype,
            "tags": {k: v for k, v in f.copy_metadata().items() if k in TAGS}}


def _samples(raw: np.ndarray, bits: int) -> np.ndarray:
    return np.ascontiguousarray(raw >> (32 - bits), dtype=np.int32)  # libsndfile left-justifies into int32


class BlockReader:
    """A FLAC or AIFF file on disk read a block at a time (a long recording): `frames` (counted by
    decoding the file once: a FLAC header may not know it, and the samples are what a whole read
    gives), `channels`, `bits`, `meta` (as `read` makes them), then `read(n)`: the next n frames."""

    def __init__(self, path, fmt: str):
        self.fmt = fmt
        with _reading(fmt):
            with _open(str(path), fmt) as f:
                self.frames = 0
                while True:
                    n = len(f.read(READ_BLOCK, dtype="int32", always_2d=True))
                    if not n:
                        break
                    self.frames += n
                self.channels, self.meta = f.channels, _meta(f, fmt)
            self.bits = BITS[self.meta["subtype"]]
            self.f = _open(str(path), fmt)

    def read(self, n: int) -> np.ndarray:
        with _reading(self.fmt):
            raw = self.f.read(n, dtype="int32", always_2d=True)
        if len(raw) != n:
            raise InputError(f"unreadable {self.fmt.upper()} audio: it changed while it was read")
        return _samples(raw, self.bits)

    def close(self) -> None:
        self.f.close()


class BlockWriter:
    """A FLAC or AIFF file written a block of samples at a time into the open binary file `out`."""

    def __init__(self, out, meta: dict, channels: int, bits: int):
        import soundfile as sf

        kind = {"flac": "FLAC", "aiff": "AIFF"}[meta["format"]]
        self.bits = bits
        self.f = sf.SoundFile(out, "w", samplerate=meta["rate"], channels=channels, format=kind,
                              subtype=meta["subtype"])
        for key, value in meta.get("tags", {}).items():
            setattr(self.f, key, value)

    def write(self, samples: np.ndarray) -> None:
        self.f.write((samples.astype(np.int64) << (32 - self.bits)).astype(np.int32))

    def close(self) -> None:
        self.f.close()


class _File(io.BytesIO):
    """The bytes libsndfile reads through soundfile's callbacks. A damaged header can make it seek
    before the start; BytesIO raises there, inside a C callback, which Python can only print.
    Such a seek goes to the end instead: reads find nothing and libsndfile reports the error."""

    def seek(self, offset, whence=0):
        try:
            return super().seek(offset, whence)
        except (ValueError, OverflowError):
            return super().seek(0, 2)


READ_BLOCK = 1 << 18  # frames: memory follows the samples actually decoded, not what a header declares


def _read_blocks(f) -> np.ndarray:
    parts = []
    while True:
        block = f.read(READ_BLOCK, dtype="int32", always_2d=True)
        if not len(block):
            break
        parts.append(block)
    return np.concatenate(parts) if parts else np.zeros((0, f.channels), np.int32)


def write(media: Media) -> bytes:
    import soundfile as sf

    m = media.meta
    buf = io.BytesIO()
    kind = {"flac": "FLAC", "aiff": "AIFF"}[m["format"]]
    with sf.SoundFile(buf, "w", samplerate=m["rate"], channels=media.samples.shape[1],
                      format=kind, subtype=m["subtype"]) as f:
        for key, value in m.get("tags", {}).items():
            setattr(f, key, value)
        f.write((media.samples.astype(np.int64) << (32 - media.bits)).astype(np.int32))
    return buf.getvalue()
