"""FLAC and AIFF through libsndfile: identical samples, rate, channels,
sample format and text tags (the file itself is re-encoded on restore)."""

import io
import re
import sys

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media

BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
TAGS = ("title", "copyright", "software", "artist", "comment", "date", "album", "license",
        "tracknumber", "genre")


def read(data: bytes, fmt: str) -> Media:
    import soundfile as sf

    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None  # see _File: nothing of a damaged file reaches stderr
    try:
        with sf.SoundFile(_File(data)) as f:
            if f.subtype not in BITS:
                raise InputError(f"{fmt.upper()} with {f.subtype} samples is not supported (integer PCM only)")
            if not 1 <= f.channels <= limits.AUDIO_CHANNELS[1] or f.frames < 0:
                raise InputError(f"{fmt.upper()} with {f.channels} channels is not supported")
            limits.check_declared(f"{fmt.upper()} audio ({f.frames} frames)", f.frames * f.channels, 4)
            raw = _read_blocks(f)
            meta = {"format": fmt, "rate": f.samplerate, "subtype": f.subtype,
                    "tags": {k: v for k, v in f.copy_metadata().items() if k in TAGS}}
    except InputError:
        raise
    except Exception as exc:
        why = re.sub(r"Error opening <[^>]*>: ", "", str(exc).strip("'\"").splitlines()[0] if str(exc) else repr(exc))
        raise InputError(f"unreadable {fmt.upper()} audio: {why}") from None
    finally:
        sys.unraisablehook = hook
    bits = BITS[meta["subtype"]]
    samples = raw >> (32 - bits)  # libsndfile left-justifies into int32
    return Media("audio", np.ascontiguousarray(samples, dtype=np.int32), bits, meta)


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
