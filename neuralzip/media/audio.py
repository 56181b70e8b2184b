"""Audio formats: sniffed by their magic bytes."""

import warnings

from neuralzip.errors import InputError
from neuralzip.media import Media, sndfile, wav


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return None


def read(data: bytes, fmt: str) -> Media:
    with warnings.catch_warnings():  # a damaged file is one line of error, not library warnings
        warnings.simplefilter("ignore")
        return _read(data, fmt)


def _read(data: bytes, fmt: str) -> Media:
    if fmt == "wav":
        try:
            return wav.read(data)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"unreadable WAV audio: {exc}") from None
    return sndfile.read(data, fmt)


def write(media: Media) -> bytes:
    if media.meta["format"] == "wav":
        return wav.write(media)
    return sndfile.write(media)
