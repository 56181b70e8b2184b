"""PPM/PGM/PBM (binary) and uncompressed BMP, kept byte-identical.

The file is split into the bytes before the pixel data, the pixel data and
the bytes after it; the first and last are stored verbatim and the pixel data
is rebuilt from the decoded array. A reader checks that the rebuild gives the
original bytes back (non-zero row padding, say, would not) and refuses
otherwise, so a restore can never silently differ.
"""

import struct

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

_WS = b" \t\r\n"


def _pnm_header(data: bytes):
    """-> (magic, width, height, maxval, offset of the pixel data)."""
    magic = data[:2]
    pos, fields = 2, []
    need = 2 if magic == b"P4" else 3
    while len(fields) < need:
        while pos < len(data) and (data[pos] in _WS or data[pos] == ord("#")):
            if data[pos] == ord("#"):
                while pos < len(data) and data[pos] not in b"\r\n":
                    pos += 1
            else:
                pos += 1
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise InputError("malformed PNM header")
        fields.append(int(data[start:pos]))
    if pos >= len(data) or data[pos] not in _WS:
        raise InputError("malformed PNM header")
    width, height = fields[0], fields[1]
    maxval = fields[2] if need == 3 else 1
    return magic, width, height, maxval, pos + 1


def read_pnm(data: bytes) -> Media:
    magic, width, height, maxval, offset = _pnm_header(data)
    if not 0 < maxval < 65536:
        raise InputError(f"PNM maxval {maxval} is not supported")
    channels = 3 if magic == b"P6" else 1
    limits.check_declared(f"PNM image ({width}x{height})", width * height * channels, 2 if maxval > 255 else 1)
    if magic == b"P4":
        rowbytes = (width + 7) // 8
        size = rowbytes * height
        body = np.frombuffer(data, np.uint8, size, offset) if len(data) >= offset + size else None
        if body is None:
            raise InputError("truncated PBM pixel data")
        bits = np.unpackbits(body.reshape(height, rowbytes), axis=1)[:, :width]
        pixels, depth = bits.reshape(height, width, 1), 1
    else:
        wide = maxval > 255
        size = width * height * channels * (2 if wide else 1)
        if len(data) < offset + size:
            raise InputError("truncated PNM pixel data")
        dtype = np.dtype(">u2") if wide else np.uint8
        pixels = np.frombuffer(data, dtype, width * height * channels, offset)
        pixels = pixels.astype(np.uint16 if wide else np.uint8).reshape(height, width, channels)
        if pixels.size and int(pixels.max()) > maxval:
            raise InputError("PNM sample above its maxval")
        depth = int(maxval).bit_length()
    mode = {b"P4": "1", b"P5": "L", b"P6": "RGB"}[magic]
    meta = {"format": "pnm", "mode": mode, "maxval": maxval,
            "prefix": pack(data[:offset]), "suffix": pack(data[offset + size:])}
    media = Media("image", np.ascontiguousarray(pixels), depth, meta)
    _check_rebuild(media, data, "PNM")
    return media


def write_pnm(media: Media) -> bytes:
    m, px = media.meta, media.samples
    if m["mode"] == "1":
        body = np.packbits(px[:, :, 0].astype(np.uint8), axis=1).tobytes()
    elif m["maxval"] > 255:
        body = px.astype(">u2").tobytes()
    else:
        body = px.astype(np.uint8).tobytes()
    return unpack(m["prefix"]) + body + unpack(m["suffix"])


def read_bmp(data: bytes) -> Media:
    if len(data) < 34:
        raise InputError("truncated BMP header")
    offset = struct.unpack_from("<I", data, 10)[0]
    width, height = struct.unpack_from("<ii", data, 18)
    bitcount, compression = struct.unpack_from("<HI", data, 28)
    if compression not in (0, 3) or (compression == 3 and bitcount != 32):
        raise InputError(f"compressed BMP (compression {compression}) is not supported")
    if bitcount not in (1, 4, 8, 24, 32):
        raise InputError(f"{bitcount}-bit BMP is not supported")
    if width <= 0 or height == 0 or height == -(1 << 31):
        raise InputError("BMP with an empty or invalid size")
    rows = abs(height)
    limits.check_declared(f"BMP image ({width}x{rows})", width * rows * max(1, bitcount // 8), 1)
    rowbytes = ((bitcount * width + 31) // 32) * 4
    size = rowbytes * rows
    if len(data) < offset + size:
        raise InputError("truncated BMP pixel data")
    raw = np.frombuffer(data, np.uint8, size, offset).reshape(rows, rowbytes)
    if bitcount >= 8:
        channels = bitcount // 8
        pixels = raw[:, :width * channels].reshape(rows, width, channels)
        depth = 8
    else:
        bits = np.unpackbits(raw, axis=1).reshape(rows, -1, bitcount)
        weights = (1 << np.arange(bitcount - 1, -1, -1)).astype(np.uint8)
        pixels = (bits * weights).sum(axis=2).astype(np.uint8)[:, :width, None]
        channels, depth = 1, bitcount
    if height > 0:
        pixels = pixels[::-1]  # stored bottom-up
    mode = {1: "P", 4: "P", 8: "P", 24: "BGR", 32: "BGRA"}[bitcount]
    meta = {"format": "bmp", "mode": mode, "bitcount": bitcount, "bottom_up": height > 0,
            "prefix": pack(data[:offset]), "suffix": pack(data[offset + size:])}
    media = Media("image", np.ascontiguousarray(pixels), depth, meta)
    _check_rebuild(media, data, "BMP")
    return media


def write_bmp(media: Media) -> bytes:
    m, px = media.meta, media.samples
    if m["bottom_up"]:
        px = px[::-1]
    h, w, c = px.shape
    bitcount = m["bitcount"]
    rowbytes = ((bitcount * w + 31) // 32) * 4
    if bitcount >= 8:
        rows = px.reshape(h, w * c).astype(np.uint8)
    else:
        bits = (px[:, :, 0:1] >> np.arange(bitcount - 1, -1, -1).astype(np.uint8)) & 1
        rows = np.packbits(bits.reshape(h, w * bitcount).astype(np.uint8), axis=1)
    body = np.zeros((h, rowbytes), np.uint8)
    body[:, :rows.shape[1]] = rows
    return unpack(m["prefix"]) + body.tobytes() + unpack(m["suffix"])


def _check_rebuild(media: Media, original: bytes, name: str) -> None:
    writer = write_pnm if media.meta["format"] == "pnm" else write_bmp
    if writer(media) != original:
        raise InputError(f"{name} file with non-zero padding bits cannot be restored byte-identically; not supported")
