"""WAV (PCM 8/16/24/32-bit, plain or WAVE_FORMAT_EXTENSIBLE), byte-identical.

Everything before the sample data (RIFF header, fmt, LIST and any other
chunk) and everything after it (pad byte, trailing chunks, a partial last
frame) is stored verbatim; the samples are coded.
"""

import struct

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

PCM, EXTENSIBLE, FLOAT = 1, 0xFFFE, 3


def read(data: bytes) -> Media:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError("not a RIFF/WAVE file (RF64 and RIFX are not supported)")
    pos, fmt, data_span = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            fmt = data[pos + 8:pos + 8 + size]
        elif cid == b"data":
            data_span = (pos + 8, min(pos + 8 + size, len(data)))
            break
        pos += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16 or data_span is None:
        raise InputError("WAV file without fmt or data chunk")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag == FLOAT:
        raise InputError("floating-point WAV is not supported (integer PCM only)")
    if tag != PCM:
        raise InputError(f"WAV format tag {tag:#x} is not supported (integer PCM only)")
    width = (bits + 7) // 8
    if width not in (1, 2, 3, 4) or channels < 1 or align != width * channels:
        raise InputError(f"WAV with {bits}-bit samples in {align}-byte frames is not supported")
    if channels > limits.AUDIO_CHANNELS[1]:
        raise InputError(f"WAV with {channels} channels is not supported (at most {limits.AUDIO_CHANNELS[1]})")
    start, end = data_span
    frames = (end - start) // align
    body = np.frombuffer(data, np.uint8, frames * align, start).reshape(frames * channels, width)
    if width == 1:
        samples = body[:, 0].astype(np.int32) - 128
    else:
        padded = np.zeros((len(body), 4), np.uint8)
        padded[:, 4 - width:] = body  # left-justify, then arithmetic shift sign-extends
        samples = padded.view("<i4")[:, 0] >> (8 * (4 - width))
    meta = {"format": "wav", "rate": rate, "width": width,
            "prefix": pack(data[:start]), "suffix": pack(data[start + frames * align:])}
    return Media("audio", samples.reshape(frames, channels).astype(np.int32), 8 * width, meta)


def write(media: Media) -> bytes:
    m, s = media.meta, media.samples.reshape(-1)
    width = m["width"]
    if width == 1:
        body = (s.astype(np.int16) + 128).astype(np.uint8).tobytes()
    else:  # little-endian 32-bit words, each cut to its low `width` bytes: one copy of the body
        body = np.ascontiguousarray(s.astype("<i4", copy=False)).view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    return b"".join([unpack(m["prefix"]), body, unpack(m["suffix"])])
