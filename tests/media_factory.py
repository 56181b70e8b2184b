"""Small synthetic images and recordings, in every supported mode and format."""

import io
import struct

import numpy as np
import soundfile as sf
from PIL import Image

RNG_SEED = 1234


def smooth_image(h: int, w: int, c: int, maxv: int = 255, seed: int = RNG_SEED) -> np.ndarray:
    """Gradients plus noise: predictable enough to compress, noisy enough to exercise every bucket."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 3 + yy * 2)[:, :, None] + 40 * np.arange(c)[None, None, :]
    img = base + rng.normal(0, maxv / 40, (h, w, c))
    return np.clip(img * (maxv / 255 if maxv > 255 else 1), 0, maxv).astype(np.uint16 if maxv > 255 else np.uint8)


def png_bytes(arr: np.ndarray, mode: str, **save) -> bytes:
    buf = io.BytesIO()
    if mode == "P":
        im = Image.fromarray(arr[:, :, 0], "L")
        im.putpalette(bytes(np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)))
    elif mode == "1":
        im = Image.fromarray(arr[:, :, 0] > 127)
    elif mode == "I;16":
        im = Image.fromarray(arr[:, :, 0].astype(np.uint16))
    else:
        im = Image.fromarray(arr if arr.shape[2] > 1 else arr[:, :, 0], mode)
    im.save(buf, "PNG", **save)
    return buf.getvalue()


def png16_bytes(arr: np.ndarray) -> bytes:
    """16-bit grey/LA/RGB/RGBA PNG via pypng (Pillow cannot write 16-bit colour)."""
    import png

    h, w, c = arr.shape
    buf = io.BytesIO()
    png.Writer(w, h, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16).write_array(buf, arr.reshape(-1))
    return buf.getvalue()


def image_file(fmt: str, mode: str, h: int, w: int) -> bytes:
    """An image file of the given format and mode."""
    channels = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1, "RGB16": 3, "RGBA16": 4, "LA16": 2}[mode]
    wide = mode in ("I;16", "RGB16", "RGBA16", "LA16")
    arr = smooth_image(h, w, channels, 65535 if wide else 255)
    if fmt == "png":
        if mode in ("RGB16", "RGBA16", "LA16"):
            return png16_bytes(arr)
        return png_bytes(arr, mode)
    im = _pil(arr, mode)
    buf = io.BytesIO()
    im.save(buf, {"tiff": "TIFF", "bmp": "BMP", "ppm": "PPM"}[fmt])
    return buf.getvalue()


def jpeg_decoded(h: int, w: int, channels: int = 3, quality: int = 85, seed: int = RNG_SEED,
                 subsampling: int = -1) -> np.ndarray:
    """A smooth RGB image (RGBA: with a smooth alpha; 1 channel: grey) as Pillow's JPEG decoder
    (libjpeg) returns it after a JPEG encode: every pixel is a colour libjpeg's YCbCr conversion
    reaches, as in a photo saved from a decoded JPEG. `subsampling` as Pillow takes it: -1 its
    default (4:2:0 chroma), 0 full-resolution chroma (4:4:4)."""
    arr = smooth_image(h, w, max(channels, 3), seed=seed)
    buf = io.BytesIO()
    mode = "L" if channels == 1 else "RGB"
    Image.fromarray(arr[:, :, 0] if channels == 1 else arr[:, :, :3], mode).save(
        buf, "JPEG", quality=quality, subsampling=subsampling)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(mode))
    if channels == 1:
        return decoded[:, :, None]
    return np.concatenate([decoded, arr[:, :, 3:channels]], axis=2)


def repeating_colours(h: int, w: int, seed: int = 3) -> np.ndarray:
    """Smooth, noisy R and G on a coarse set of values, and B a fixed function of the pixel's R and G
    (a table drawn once): a photo whose colours come from a set, as a scan's from its photo-CD's
    (the colour table, models/colour_table.py, codes its B almost for free)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 120 + 60 * np.sin(xx / 13) * np.cos(yy / 9) + rng.normal(0, 3, (h, w))
    g = 100 + 50 * np.cos(xx / 7 - yy / 11) + rng.normal(0, 3, (h, w))
    rg = 4 * np.clip(np.rint(np.stack([r, g], axis=2) / 4), 0, 63).astype(np.int64)  # few keys, each met often
    b = rng.integers(0, 256, (256, 256))[rg[..., 0], rg[..., 1]]
    return np.dstack([rg, b]).astype(np.uint8)


def _pil(arr, mode):
    if mode == "1":
        return Image.fromarray(arr[:, :, 0] > 127)
    if mode == "P":
        im = Image.fromarray(arr[:, :, 0], "L")
        im.putpalette(bytes(range(256)) * 3)
        return im
    if mode == "I;16":
        return Image.fromarray(arr[:, :, 0].astype(np.uint16))
    return Image.fromarray(arr if arr.shape[2] > 1 else arr[:, :, 0], mode)


def tone(frames: int, channels: int, bits: int, seed: int = RNG_SEED, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    peak = (1 << (bits - 1)) - 1
    x = np.sin(2 * np.pi * t * (0.01 + 0.003 * np.arange(channels)[None, :])) * level
    x = x + rng.normal(0, 0.01, (frames, channels))
    return np.clip(np.round(x * peak), -peak - 1, peak).astype(np.int32)


def sparse_tone(frames: int, channels: int, bits: int, gain: float = 1.7) -> np.ndarray:
    """A tone quantised, then amplified by `gain` and rounded again: it uses only some of the
    values its bit depth allows (as a gain applied after recording leaves it), so ols-cascade
    codes it with a value map."""
    peak = (1 << (bits - 1)) - 1
    return np.clip(np.round(tone(frames, channels, bits, level=0.02) * gain), -peak - 1, peak).astype(np.int32)


def wav_file(samples: np.ndarray, bits: int, rate: int = 44100, extra_chunk: bytes | None = None,
             odd_tail: bytes = b"") -> bytes:
    """A WAV written by hand (so extra chunks and odd layouts are possible)."""
    frames, channels = samples.shape
    width = bits // 8
    s = samples.astype(np.int64).reshape(-1)
    if width == 1:
        body = (s + 128).astype(np.uint8).tobytes()
    else:
        body = s.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    body += odd_tail
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:
        chunks += b"LIST" + struct.pack("<I", len(extra_chunk)) + extra_chunk + (b"\x00" if len(extra_chunk) & 1 else b"")
    chunks += b"data" + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def sf_file(samples: np.ndarray, bits: int, fmt: str, rate: int = 44100) -> bytes:
    subtype = {8: "PCM_S8", 16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}[bits]
    buf = io.BytesIO()
    sf.write(buf, (samples.astype(np.int64) << (32 - bits)).astype(np.int32), rate, format=fmt, subtype=subtype)
    return buf.getvalue()
