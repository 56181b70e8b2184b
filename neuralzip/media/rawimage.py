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


class PnmLayout:
    """What a binary PNM header says: shape, depth, where the pixel data lies, the bytes a row takes."""

    def __init__(self, head: bytes):
        self.magic, self.width, height, self.maxval, self.offset = _pnm_header(head)
        if not 0 < self.maxval < 65536:
            raise InputError(f"PNM maxval {self.maxval} is not supported")
        channels = 3 if self.magic == b"P6" else 1
        self.shape = (height, self.width, channels)
        self.wide = self.maxval > 255
        limits.check_declared(f"PNM image ({self.width}x{height})", self.width * height * channels, 2 if self.wide else 1)
        if self.magic == b"P4":
            self.row_bytes, self.depth = (self.width + 7) // 8, 1
        else:
            self.row_bytes, self.depth = self.width * channels * (2 if self.wide else 1), int(self.maxval).bit_length()
        self.size = self.row_bytes * height
        self.dtype = np.dtype(np.uint16 if self.wide else np.uint8)
        self.mode = {b"P4": "1", b"P5": "L", b"P6": "RGB"}[self.magic]

    def rows(self, body: bytes) -> np.ndarray:
        """Whole rows of pixel data -> (rows, W, C) samples (refused if a sample is above maxval)."""
        n = len(body) // self.row_bytes
        if self.magic == b"P4":
            bits = np.unpackbits(np.frombuffer(body, np.uint8).reshape(n, self.row_bytes), axis=1)[:, :self.width]
            return bits.reshape(n, self.width, 1)
        pixels = np.frombuffer(body, np.dtype(">u2") if self.wide else np.uint8)
        pixels = pixels.astype(self.dtype).reshape((n,) + self.shape[1:])
        if pixels.size and int(pixels.max()) > self.maxval:
            raise InputError("PNM sample above its maxval")
        return pixels

    def meta(self, prefix: bytes, suffix: bytes) -> dict:
        return {"format": "pnm", "mode": self.mode, "maxval": self.maxval, "prefix": pack(prefix), "suffix": pack(suffix)}


def read_pnm(data: bytes) -> Media:
    lay = PnmLayout(data)
    if len(data) < lay.offset + lay.size:
        raise InputError("truncated PBM pixel data" if lay.magic == b"P4" else "truncated PNM pixel data")
    pixels = lay.rows(data[lay.offset:lay.offset + lay.size])
    meta = lay.meta(data[:lay.offset], data[lay.offset + lay.size:])
    media = Media("image", np.ascontiguousarray(pixels), lay.depth, meta)
    _check_rebuild(media, data, "PNM")
    return media


def pnm_body(pixels: np.ndarray, meta: dict) -> bytes:
    """Samples (rows, W, C) -> their pixel data."""
    if meta["mode"] == "1":
        return np.packbits(pixels[:, :, 0].astype(np.uint8), axis=1).tobytes()
    if meta["maxval"] > 255:
        return pixels.astype(">u2").tobytes()
    return pixels.astype(np.uint8).tobytes()


def write_pnm(media: Media) -> bytes:
    m = media.meta
    return unpack(m["prefix"]) + pnm_body(media.samples, m) + unpack(m["suffix"])


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


# ------------------------------------------------------------------ a block of rows at a time

HEAD_BYTES = 1 << 16  # a PNM header longer than this (comments) is read whole, not block by block


class PnmRowReader:
    """A binary PNM file read a block of rows at a time (neuralzip/chunked.py): `shape`, `bits`,
    `dtype`, `meta` as read_pnm gives them, then `read(n)`: the next n rows as (n, W, C). Each block
    is checked to rebuild its own bytes, as read_pnm checks the whole file."""

    def __init__(self, path):
        import os

        try:
            self.f = open(path, "rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        try:
            head = self.f.read(HEAD_BYTES)
            self.lay = lay = PnmLayout(head)
            size = os.fstat(self.f.fileno()).st_size
            if size < lay.offset + lay.size:
                raise InputError("truncated PBM pixel data" if lay.magic == b"P4" else "truncated PNM pixel data")
            self.f.seek(lay.offset + lay.size)
            self.meta = lay.meta(head[:lay.offset], self.f.read())
            self.f.seek(lay.offset)
        except BaseException:
            self.f.close()
            raise
        self.shape, self.bits, self.dtype = lay.shape, lay.depth, lay.dtype

    def read(self, n: int) -> np.ndarray:
        body = self.f.read(n * self.lay.row_bytes)
        if len(body) != n * self.lay.row_bytes:
            raise InputError("unreadable PNM image: the file changed while it was read")
        pixels = self.lay.rows(body)
        if pnm_body(pixels, self.meta) != body:
            raise InputError("PNM file with non-zero padding bits cannot be restored byte-identically; not supported")
        return pixels

    def close(self) -> None:
        self.f.close()


class PnmRowWriter:
    """A PNM file written into the open binary file `out`: its prefix, the rows block by block, its suffix."""

    def __init__(self, out, meta: dict, shape, bits: int):
        self.out, self.meta = out, meta
        out.write(unpack(meta["prefix"]))

    def write(self, pixels: np.ndarray) -> None:
        self.out.write(pnm_body(pixels, self.meta))

    def close(self) -> None:
        self.out.write(unpack(self.meta["suffix"]))
