"""PNG: raw samples at the header's bit depth, every ancillary chunk kept verbatim.

Pixels come from Pillow for 1- and 8-bit images and from pypng for 2-, 4- and
16-bit ones (Pillow silently reduces 16-bit RGB(A) to 8 bits). On restore the
original IHDR (made non-interlaced), PLTE, tRNS and every ancillary chunk are
written back in their original places; only IDAT is re-encoded, so the pixels
and all metadata (ICC profile, DPI, text, gamma, ...) come back identical.
"""

import io
import struct
import zlib

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# deflate codes at most 258 bytes per 2 bits (1032:1); the rest is block and zlib overhead
MAX_INFLATE_RATIO = 1040
MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise InputError("truncated PNG chunk")
        yield ctype.decode("latin-1"), body
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise InputError("PNG without IEND chunk (truncated file)")


def _chunk(ctype: str, body: bytes) -> bytes:
    head = ctype.encode("latin-1")
    return struct.pack(">I", len(body)) + head + body + struct.pack(">I", zlib.crc32(head + body))


def read(data: bytes) -> Media:
    groups = {"pre_plte": [], "pre_idat": [], "post_idat": []}
    ihdr = None
    place = "pre_plte"
    idat_bytes = 0
    for ctype, body in _chunks(data):
        if ctype == "IHDR":
            ihdr = body
        elif ctype == "PLTE":
            place = "pre_idat"
            groups[place].append([ctype, pack(body)])
        elif ctype == "IDAT":
            place = "post_idat"
            idat_bytes += len(body)
        elif ctype == "IEND":
            break
        elif ctype in ("acTL", "fcTL", "fdAT"):
            raise InputError("animated PNG (APNG) is not supported")
        else:
            groups[place].append([ctype, pack(body)])
    if ihdr is None or len(ihdr) != 13:
        raise InputError("PNG without a valid IHDR chunk")
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if ctype not in CHANNELS:
        raise InputError(f"PNG colour type {ctype} is not valid")
    _check_size(width, height, depth, ctype, interlace, idat_bytes)
    if depth in (1, 8):
        pixels = _read_pillow(data, ctype, depth)
    else:
        pixels = _read_pypng(data, ctype, depth)
    pixels = pixels.reshape(height, width, CHANNELS[ctype])
    mode = "1" if (ctype == 0 and depth == 1) else MODES[ctype]
    meta = {"format": "png", "mode": mode, "ihdr": pack(ihdr[:12] + b"\x00"),
            "interlaced": bool(interlace), "chunks": groups}
    dtype = np.uint16 if depth == 16 else np.uint8
    return Media("image", np.ascontiguousarray(pixels, dtype=dtype), depth, meta)


def _check_size(width: int, height: int, depth: int, ctype: int, interlace: int, idat_bytes: int) -> None:
    """Refuse, before any pixel is inflated, a header the rest of the file cannot back (a pixel bomb)."""
    if depth not in DEPTHS[ctype] or interlace > 1:
        raise InputError(f"PNG with bit depth {depth}, colour type {ctype}, interlace {interlace} is not valid")
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31):
        raise InputError(f"PNG with an invalid size ({width}x{height})")
    limits.check_declared(f"PNG image ({width}x{height})", width * height * CHANNELS[ctype], 2 if depth == 16 else 1)
    raw = height * (1 + (width * CHANNELS[ctype] * depth + 7) // 8)  # filtered rows, the least interlacing gives
    if raw > MAX_INFLATE_RATIO * idat_bytes + 4096:
        raise InputError(f"PNG image data ({idat_bytes} bytes) is too short for its declared {width}x{height} "
                         "pixels (damaged file)")


def _read_pillow(data: bytes, ctype: int, depth: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if ctype == 3 and im.mode != "P":
            raise InputError(f"palette PNG that Pillow opens as {im.mode} is not supported")
        arr = np.asarray(im)
    return arr.astype(np.uint8) if arr.dtype == bool else arr


def _read_pypng(data: bytes, ctype: int, depth: int) -> np.ndarray:
    import png

    try:
        width, height, rows, info = png.Reader(bytes=data).read_flat()
    except png.Error as exc:
        raise InputError(f"unreadable PNG: {exc}") from None
    return np.asarray(rows, dtype=np.uint16 if depth == 16 else np.uint8)


def write(media: Media) -> bytes:
    meta = media.meta
    ihdr = unpack(meta["ihdr"])
    width, height, depth, ctype = struct.unpack(">IIBB", ihdr[:10])
    groups = meta["chunks"]
    out = [SIGNATURE, _chunk("IHDR", ihdr)]
    out += [_chunk(t, unpack(b)) for t, b in groups["pre_plte"]]
    out += [_chunk(t, unpack(b)) for t, b in groups["pre_idat"]]
    out.append(_chunk("IDAT", _idat(media.samples, depth)))
    out += [_chunk(t, unpack(b)) for t, b in groups["post_idat"]]
    out.append(_chunk("IEND", b""))
    return b"".join(out)


ROWS_PER_BATCH = 256  # filter selection works on this many rows at a time: bounded memory


def _idat(pixels: np.ndarray, depth: int) -> bytes:
    """Serialised, filtered and deflated rows, a batch of rows at a time."""
    raw, bpp = _raw_rows(pixels, depth)
    packer = zlib.compressobj(6)
    parts = []
    for a in range(0, raw.shape[0], ROWS_PER_BATCH):
        above = raw[a - 1] if a else None
        parts.append(packer.compress(_filtered(raw[a:a + ROWS_PER_BATCH], above, bpp)))
    parts.append(packer.flush())
    return b"".join(parts)


def _raw_rows(pixels: np.ndarray, depth: int):
    """Rows as the PNG stores them before filtering -> (uint8 (rows, bytes), bytes per pixel)."""
    h, w, c = pixels.shape
    if depth == 16:
        return pixels.astype(">u2").view(np.uint8).reshape(h, w * c * 2), 2 * c
    if depth == 8:
        return pixels.reshape(h, w * c).astype(np.uint8), c
    per_byte = 8 // depth
    vals = pixels.reshape(h, w * c).astype(np.uint8)
    pad = (-vals.shape[1]) % per_byte
    vals = np.pad(vals, ((0, 0), (0, pad))).reshape(h, -1, per_byte)
    shifts = (depth * np.arange(per_byte - 1, -1, -1)).astype(np.uint8)
    return np.bitwise_or.reduce(vals << shifts, axis=2).astype(np.uint8), 1


def _filtered(raw: np.ndarray, above, bpp: int) -> bytes:
    """Each row with the filter that minimises the sum of |signed bytes| (libpng's heuristic)."""
    h = raw.shape[0]
    if h == 0 or raw.shape[1] == 0:
        return b"".join(b"\x00" + r.tobytes() for r in raw)
    x = raw.astype(np.int16)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    if above is not None:
        up[0] = above
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = np.stack([x, x - left, x - up, x - (left + up) // 2, x - paeth]) & 0xFF
    signed = np.where(candidates > 127, 256 - candidates, candidates).sum(axis=2)
    choice = np.argmin(signed, axis=0)
    rows = candidates[choice, np.arange(h)].astype(np.uint8)
    return np.concatenate([choice[:, None].astype(np.uint8), rows], axis=1).tobytes()
