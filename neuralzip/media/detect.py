"""One entry point: bytes -> Media, Media -> bytes, whatever the kind."""

import io

import numpy as np

from neuralzip.errors import InputError
from neuralzip.media import Media, audio, image

SUPPORTED = "PNG, PPM/PGM/PBM, BMP, TIFF images; WAV, FLAC, AIFF audio"


def sniff(head: bytes) -> tuple[str, str] | None:
    fmt = image.sniff(head)
    if fmt:
        return "image", fmt
    fmt = audio.sniff(head)
    if fmt:
        return "audio", fmt
    return None


def read_media(data: bytes, name: str = "input") -> Media:
    found = sniff(data[:16])
    if found is None:
        raise InputError(f"{name}: unsupported file type (supported: {SUPPORTED})")
    kind, fmt = found
    media = image.read(data, fmt) if kind == "image" else audio.read(data, fmt)
    if media.samples.size == 0 and kind == "image":
        raise InputError(f"{name}: empty image")
    return media


def write_media(media: Media) -> bytes:
    if media.meta.get("format") == "array":  # api.compress_array: the canonical array, as a .npy file
        buf = io.BytesIO()
        np.save(buf, media.samples, allow_pickle=False)
        return buf.getvalue()
    return image.write(media) if media.kind == "image" else audio.write(media)
