"""WAV (PCM 8/16/24/32-bit, plain or WAVE_FORMAT_EXTENSIBLE), byte-identical.

Everything before the sample data (RIFF header, fmt, LIST and any other
chunk) and everything after it (pad byte, trailing chunks, a partial last
frame) is stored verbatim; the samples are coded. `layout` finds the sample
data in a file held in memory or read by offset (audiostream: long recordings).
"""

import struct
from dataclasses import dataclass

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

PCM, EXTENSIBLE, FLOAT = 1, 0xFFFE, 3


@dataclass
class Layout:
    start: int  # where the sample data starts (the prefix is everything before)
    frames: int  # whole frames in the data chunk (the suffix starts after them)
    channels: int
    width: int  # bytes per sample
    rate: int

    @property
    def end(self) -> int:
        return self.start + self.frames * self.channels * self.width


def layout(read_at, size: int) -> Layout:
    """The sample data of a WAV file of `size` bytes, read through read_at(offset, n) -> bytes."""
    if size < 12 or read_at(0, 4) != b"RIFF" or read_at(8, 4) != b"WAVE":
        raise InputError("not a RIFF/WAVE file (RF64 and RIFX are not supported)")
    pos, fmt, data_span = 12, None, None
    while pos + 8 <= size:
        head = read_at(pos, 8)
        cid, csize = head[:4], struct.unpack_from("<I", head, 4)[0]
        if cid == b"fmt ":
            fmt = read_at(pos + 8, min(csize, 64))  # the fields read are in the first 26 bytes
        elif cid == b"data":
            data_span = (pos + 8, min(pos + 8 + csize, size))
            break
        pos += 8 + csize + (csize & 1)
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
    return Layout(start, (end - start) // align, channels, width, rate)


def read(data: bytes) -> Media:
    lay = layout(lambda pos, n: data[pos:pos + n], len(data))
    samples = samples_of(memoryview(data)[lay.start:lay.end], lay.width, lay.channels)
    return Media("audio", samples, 8 * lay.width, meta_of(lay, data[:lay.start], data[lay.end:]))


def meta_of(lay: Layout, prefix: bytes, suffix: bytes) -> dict:
    return {"format": "wav", "rate": lay.rate, "width": lay.width, "prefix": pack(prefix), "suffix": pack(suffix)}


def samples_of(body, width: int, channels: int) -> np.ndarray:
    """Whole frames of sample data -> (frames, channels) int32."""
    if width in (2, 4):  # whole little-endian integers: one copy
        return np.frombuffer(body, f"<i{width}").astype(np.int32).reshape(-1, channels)
    body = np.frombuffer(body, np.uint8).reshape(-1, width)
    if width == 1:
        samples = body[:, 0].astype(np.int32) - 128
    else:
        padded = np.zeros((len(body), 4), np.uint8)
        padded[:, 4 - width:] = body  # left-justify, then arithmetic shift sign-extends
        samples = padded.view("<i4")[:, 0] >> (8 * (4 - width))
    return samples.reshape(-1, channels).astype(np.int32)


def body_of(samples: np.ndarray, width: int) -> bytes:
    """Samples -> the sample data's bytes."""
    s = samples.reshape(-1)
    if width == 1:
        return (s.astype(np.int16) + 128).astype(np.uint8).tobytes()
    # little-endian 32-bit words, each cut to its low `width` bytes: one copy of the body
    return np.ascontiguousarray(s.astype("<i4", copy=False)).view(np.uint8).reshape(-1, 4)[:, :width].tobytes()


def write(media: Media) -> bytes:
    m = media.meta
    return b"".join([unpack(m["prefix"]), body_of(media.samples, m["width"]), unpack(m["suffix"])])
