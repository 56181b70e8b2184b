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
from neuralzip.fileio import open_input
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
        self.truncated = "truncated PBM pixel data" if self.magic == b"P4" else "truncated PNM pixel data"

    name, bottom_up = "PNM", False

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
        raise InputError(lay.truncated)
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


BMP_HEAD = 34  # the bytes read_bmp needs to know the layout


class BmpLayout:
    """What an uncompressed BMP header says: shape, depth, where the pixel data lies, the bytes a
    row takes (padded to 4), and whether the rows are stored bottom-up."""

    def __init__(self, head: bytes):
        if len(head) < BMP_HEAD:
            raise InputError("truncated BMP header")
        self.offset = struct.unpack_from("<I", head, 10)[0]
        width, height = struct.unpack_from("<ii", head, 18)
        self.bitcount, compression = struct.unpack_from("<HI", head, 28)
        if compression not in (0, 3) or (compression == 3 and self.bitcount != 32):
            raise InputError(f"compressed BMP (compression {compression}) is not supported")
        if self.bitcount not in (1, 4, 8, 24, 32):
            raise InputError(f"{self.bitcount}-bit BMP is not supported")
        if width <= 0 or height == 0 or height == -(1 << 31):
            raise InputError("BMP with an empty or invalid size")
        rows = abs(height)
        limits.check_declared(f"BMP image ({width}x{rows})", width * rows * max(1, self.bitcount // 8), 1)
        self.width, self.bottom_up = width, height > 0
        self.row_bytes = ((self.bitcount * width + 31) // 32) * 4
        self.size = self.row_bytes * rows
        channels = self.bitcount // 8 if self.bitcount >= 8 else 1
        self.shape = (rows, width, channels)
        self.depth = 8 if self.bitcount >= 8 else self.bitcount
        self.dtype = np.dtype(np.uint8)
        self.mode = {1: "P", 4: "P", 8: "P", 24: "BGR", 32: "BGRA"}[self.bitcount]

    name, truncated = "BMP", "truncated BMP pixel data"

    def rows(self, body: bytes) -> np.ndarray:
        """Whole stored rows -> (rows, W, C) samples, in the order they are stored."""
        raw = np.frombuffer(body, np.uint8).reshape(-1, self.row_bytes)
        if self.bitcount >= 8:
            return raw[:, :self.width * self.shape[2]].reshape(-1, self.width, self.shape[2])
        bits = np.unpackbits(raw, axis=1).reshape(raw.shape[0], -1, self.bitcount)
        weights = (1 << np.arange(self.bitcount - 1, -1, -1)).astype(np.uint8)
        return (bits * weights).sum(axis=2).astype(np.uint8)[:, :self.width, None]

    def meta(self, prefix: bytes, suffix: bytes) -> dict:
        return {"format": "bmp", "mode": self.mode, "bitcount": self.bitcount, "bottom_up": self.bottom_up,
                "prefix": pack(prefix), "suffix": pack(suffix)}


def read_bmp(data: bytes) -> Media:
    lay = BmpLayout(data[:BMP_HEAD])
    if len(data) < lay.offset + lay.size:
        raise InputError(lay.truncated)
    pixels = lay.rows(data[lay.offset:lay.offset + lay.size])
    if lay.bottom_up:
        pixels = pixels[::-1]
    meta = lay.meta(data[:lay.offset], data[lay.offset + lay.size:])
    media = Media("image", np.ascontiguousarray(pixels), lay.depth, meta)
    _check_rebuild(media, data, "BMP")
    return media


def bmp_body(pixels: np.ndarray, meta: dict) -> bytes:
    """Samples (rows, W, C) -> their stored rows, in the same order, each padded to 4 bytes."""
    h, w, c = pixels.shape
    bitcount = meta["bitcount"]
    rowbytes = ((bitcount * w + 31) // 32) * 4
    if bitcount >= 8:
        rows = pixels.reshape(h, w * c).astype(np.uint8)
    else:
        bits = (pixels[:, :, 0:1] >> np.arange(bitcount - 1, -1, -1).astype(np.uint8)) & 1
        rows = np.packbits(bits.reshape(h, w * bitcount).astype(np.uint8), axis=1)
    body = np.zeros((h, rowbytes), np.uint8)
    body[:, :rows.shape[1]] = rows
    return body.tobytes()


def write_bmp(media: Media) -> bytes:
    m, px = media.meta, media.samples
    return unpack(m["prefix"]) + bmp_body(px[::-1] if m["bottom_up"] else px, m) + unpack(m["suffix"])


def _check_rebuild(media: Media, original: bytes, name: str) -> None:
    writer = write_pnm if media.meta["format"] == "pnm" else write_bmp
    if writer(media) != original:
        raise InputError(f"{name} file with non-zero padding bits cannot be restored byte-identically; not supported")


# ------------------------------------------------------------------ a block of rows at a time

HEAD_BYTES = 1 << 16  # a PNM header longer than this (comments) is read whole, not block by block
BODIES = {"pnm": pnm_body, "bmp": bmp_body}  # samples -> their stored rows, by meta["format"]


class RowReader:
    """A binary PNM or uncompressed BMP file (`layout_of`: PnmLayout or BmpLayout) read a block of
    rows at a time (neuralzip/chunked.py), top row first whichever way the rows are stored (BMP's
    bottom-up rows are read from the end of the pixel data back): `shape`, `bits`, `dtype`, `meta`
    as read_pnm / read_bmp give them, then `read(n)`: the next n rows as (n, W, C). Each block is
    checked to rebuild its own bytes, as the whole-file readers check the whole file."""

    def __init__(self, path, layout_of):
        import os

        self.f = open_input(path)
        try:
            self.lay = lay = layout_of(self.f.read(HEAD_BYTES))
            if os.fstat(self.f.fileno()).st_size < lay.offset + lay.size:
                raise InputError(lay.truncated)
            self.f.seek(0)
            prefix = self.f.read(lay.offset)
            self.f.seek(lay.offset + lay.size)
            self.meta = lay.meta(prefix, self.f.read())
        except BaseException:
            self.f.close()
            raise
        self.shape, self.bits, self.dtype = lay.shape, lay.depth, lay.dtype
        self.body = BODIES[self.meta["format"]]
        self.done = 0

    def read(self, n: int) -> np.ndarray:
        lay = self.lay
        first = lay.shape[0] - self.done - n if lay.bottom_up else self.done  # the block's first stored row
        self.f.seek(lay.offset + first * lay.row_bytes)
        body = self.f.read(n * lay.row_bytes)
        if len(body) != n * lay.row_bytes:
            raise InputError(f"unreadable {lay.name} image: the file changed while it was read")
        pixels = lay.rows(body)
        if self.body(pixels, self.meta) != body:
            raise InputError(f"{lay.name} file with non-zero padding bits cannot be restored byte-identically; "
                             "not supported")
        self.done += n
        return pixels[::-1] if lay.bottom_up else pixels

    def close(self) -> None:
        self.f.close()


class RowWriter:
    """A PNM or BMP file written into the open, seekable binary file `out`, top row first: its
    prefix, each block where its rows are stored (from the end of the pixel data back, for BMP's
    bottom-up rows), its suffix."""

    def __init__(self, out, meta: dict, shape, bits: int):
        self.out, self.meta, self.body = out, meta, BODIES[meta["format"]]
        self.bottom_up = bool(meta.get("bottom_up"))
        self.h = shape[0]
        one_row = np.zeros((1,) + tuple(shape[1:]), np.uint16 if bits > 8 else np.uint8)
        self.row_bytes = len(self.body(one_row, meta))
        self.data_at = out.tell() + len(unpack(meta["prefix"]))
        self.done = 0
        out.write(unpack(meta["prefix"]))

    def write(self, pixels: np.ndarray) -> None:
        n = len(pixels)
        first = self.h - self.done - n if self.bottom_up else self.done
        self.out.seek(self.data_at + first * self.row_bytes)
        self.out.write(self.body(pixels[::-1] if self.bottom_up else pixels, self.meta))
        self.done += n

    def close(self) -> None:
        self.out.seek(self.data_at + self.h * self.row_bytes)
        self.out.write(unpack(self.meta["suffix"]))
