"""FLAC and AIFF through libsndfile: identical samples, rate, channels,
sample format and text tags (the file itself is re-encoded on restore)."""

import io

import numpy as np

from neuralzip.errors import InputError
from neuralzip.media import Media

BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
TAGS = ("title", "copyright", "software", "artist", "comment", "date", "album", "license",
        "tracknumber", "genre")


def read(data: bytes, fmt: str) -> Media:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.subtype not in BITS:
                raise InputError(f"{fmt.upper()} with {f.subtype} samples is not supported (integer PCM only)")
            raw = f.read(dtype="int32", always_2d=True)
            meta = {"format": fmt, "rate": f.samplerate, "subtype": f.subtype,
                    "tags": {k: v for k, v in f.copy_metadata().items() if k in TAGS}}
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"unreadable {fmt.upper()} audio: {exc}") from None
    bits = BITS[meta["subtype"]]
    samples = raw >> (32 - bits)  # libsndfile left-justifies into int32
    return Media("audio", np.ascontiguousarray(samples, dtype=np.int32), bits, meta)


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
