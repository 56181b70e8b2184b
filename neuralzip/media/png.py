"""PNG: raw samples at the header's bit depth, every ancillary chunk kept verbatim.

Pixels come from Pillow for 1- and 8-bit images and from pypng for 2-, 4- and
16-bit ones (Pillow silently reduces 16-bit RGB(A) to 8 bits). On restore the
original IHDR (made non-interlaced), PLTE, tRNS and every ancillary chunk are
written back in their original places; only IDAT is re-encoded, so the pixels
and all metadata (ICC profile, DPI, text, gamma, ...) come back identical.
"""

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.fileio import open_input
from neuralzip.kernels import png_rows as _rows
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# deflate codes at most 258 bytes per 2 bits (1032:1); the rest is block and zlib overhead
MAX_INFLATE_RATIO = 1040
MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


def _chunks(read_at, size: int):
    """-> (type, body position, body length) of every chunk up to IEND; `read_at(pos, n)` reads the file."""
    pos = len(SIGNATURE)
    while pos + 8 <= size:
        length, ctype = struct.unpack(">I4s", read_at(pos, 8))
        if pos + 8 + length > size:
            raise InputError("truncated PNG chunk")
        yield ctype.decode("latin-1"), pos + 8, length
        pos += 12 + length
        if ctype == b"IEND":
            return
    raise InputError("PNG without IEND chunk (truncated file)")


def _chunk(ctype: str, body: bytes) -> bytes:
    head = ctype.encode("latin-1")
    return struct.pack(">I", len(body)) + head + body + struct.pack(">I", zlib.crc32(head + body))


class Layout:
    """What a PNG's chunks say, read without its pixels: the IHDR fields, where the image data
    lies (`idat`: (position, length) of each IDAT chunk) and the restore metadata (`meta`)."""

    def __init__(self, read_at, size: int, check_crc: bool = False):
        """`check_crc`: refuse a chunk before the image data whose CRC is wrong, as Pillow does when
        it reads the whole file (the block reader's check; the whole-file reader leaves it to Pillow)."""
        groups = {"pre_plte": [], "pre_idat": [], "post_idat": []}
        ihdr = None
        place = "pre_plte"
        self.idat = []
        for ctype, pos, length in _chunks(read_at, size):
            if check_crc and place != "post_idat" and ctype != "IDAT":
                crc = zlib.crc32(ctype.encode("latin-1") + read_at(pos, length))
                if read_at(pos + length, 4) != struct.pack(">I", crc):
                    raise InputError(f"unreadable PNG image: broken PNG file (bad {ctype} checksum)")
            if ctype == "IHDR":
                ihdr = read_at(pos, length)
            elif ctype == "PLTE":
                place = "pre_idat"
                groups[place].append([ctype, pack(read_at(pos, length))])
            elif ctype == "IDAT":
                place = "post_idat"
                self.idat.append((pos, length))
            elif ctype == "IEND":
                break
            elif ctype in ("acTL", "fcTL", "fdAT"):
                raise InputError("animated PNG (APNG) is not supported")
            else:
                groups[place].append([ctype, pack(read_at(pos, length))])
        if ihdr is None or len(ihdr) != 13:
            raise InputError("PNG without a valid IHDR chunk")
        self.width, self.height, self.depth, self.ctype, _, _, self.interlace = struct.unpack(">IIBBBBB", ihdr)
        if self.ctype not in CHANNELS:
            raise InputError(f"PNG colour type {self.ctype} is not valid")
        _check_size(self.width, self.height, self.depth, self.ctype, self.interlace, sum(n for _, n in self.idat))
        self.channels = CHANNELS[self.ctype]
        mode = "1" if (self.ctype == 0 and self.depth == 1) else MODES[self.ctype]
        self.meta = {"format": "png", "mode": mode, "ihdr": pack(ihdr[:12] + b"\x00"),
                     "interlaced": bool(self.interlace), "chunks": groups}

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    @property
    def dtype(self):
        return np.dtype(np.uint16 if self.depth == 16 else np.uint8)


def read(data: bytes) -> Media:
    lay = Layout(lambda pos, n: data[pos:pos + n], len(data))
    if lay.depth in (1, 8):
        pixels = _read_pillow(data, lay.ctype, lay.depth)
    else:
        pixels = _read_pypng(data, lay.ctype, lay.depth)
    pixels = pixels.reshape(lay.shape)
    return Media("image", np.ascontiguousarray(pixels, dtype=lay.dtype), lay.depth, lay.meta)


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


# rows are filtered about this many bytes at a time; each row's filter depends on that row and the
# one above only, and zlib's output does not depend on how its input is cut (no flush in between),
# so the bytes never depend on the batch
FILTER_BYTES = 1 << 20
# A whole image with at least twice this many bytes of rows is deflated in pieces of about this
# size, side by side on threads (zlib lets go of the GIL): each piece is primed with the 32 KB
# before it and all but the last end in a sync flush, so the pieces join into one deflate stream
# nearly as small as a single pass makes (tens of bytes more). Their number follows from the size
# alone: the bytes never depend on the machine's cores. (The filtered rows are held whole for it,
# as many bytes again as the image: an image too large for that is written a block of rows at a
# time by RowWriter, in one pass.)
DEFLATE_PIECE = 1 << 18
WINDOW = 1 << 15  # deflate's window: what a piece can refer back to


def _filtered_batches(raw: np.ndarray, above, bpp: int):
    """Rows (raw, under the row `above`, None at the top) filtered a batch at a time."""
    step = max(1, FILTER_BYTES // max(1, raw.shape[1]))
    for a in range(0, raw.shape[0], step):
        yield _filtered(raw[a:a + step], raw[a - 1] if a else above, bpp)


def _idat(pixels: np.ndarray, depth: int) -> bytes:
    """Serialised, filtered and deflated rows."""
    raw, bpp = _raw_rows(pixels, depth)
    if raw.size < 2 * DEFLATE_PIECE:
        packer = zlib.compressobj(6)
        parts = [packer.compress(batch) for batch in _filtered_batches(raw, None, bpp)]
        parts.append(packer.flush())
        return b"".join(parts)
    data = b"".join(_filtered_batches(raw, None, bpp))
    n = len(data) // DEFLATE_PIECE
    cuts = [k * len(data) // n for k in range(n + 1)]

    def piece(k: int) -> bytes:
        a, b = cuts[k], cuts[k + 1]
        packer = (zlib.compressobj(6, zlib.DEFLATED, -15, zdict=data[max(0, a - WINDOW):a]) if a
                  else zlib.compressobj(6, zlib.DEFLATED, -15))
        return packer.compress(data[a:b]) + packer.flush(zlib.Z_FINISH if k == n - 1 else zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(min(n, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(piece, range(n)))
    # zlib's header for level 6 and a 32 KB window, then the pieces, then the Adler-32 of the whole
    return b"\x78\x9c" + b"".join(parts) + struct.pack(">I", zlib.adler32(data))


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
    """Each row with the filter that minimises the sum of |signed bytes| (libpng's heuristic;
    kernels/png_rows.pyx)."""
    h, width = raw.shape
    if h == 0 or width == 0:
        return b"".join(b"\x00" + r.tobytes() for r in raw)
    out = np.empty((h, width + 1), np.uint8)
    _rows.filter_rows(np.ascontiguousarray(raw, np.uint8),
                      np.zeros(width, np.uint8) if above is None else np.ascontiguousarray(above, np.uint8), bpp, out)
    return out.tobytes()


# ------------------------------------------------------------------ a block of rows at a time

INFLATE_PIECE = 1 << 20  # bytes of IDAT read, and of filtered rows inflated, at a time


class RowReader:
    """A non-interlaced PNG file read a block of rows at a time (neuralzip/chunked.py): `shape`,
    `bits`, `dtype`, `meta` as `read` gives them, then `read(n)`: the next n rows as (n, W, C)."""

    def __init__(self, path):
        self.f = open_input(path)
        try:
            if self._read_at(0, len(SIGNATURE)) != SIGNATURE:
                raise InputError("not a PNG file")
            self.lay = Layout(self._read_at, os.fstat(self.f.fileno()).st_size, check_crc=True)
        except BaseException:
            self.f.close()
            raise
        if self.lay.interlace:
            self.f.close()
            raise InputError("an interlaced PNG is read whole, not a block of rows at a time")
        lay = self.lay
        self.shape, self.bits, self.dtype, self.meta = lay.shape, lay.depth, lay.dtype, lay.meta
        self.row_bytes = (lay.width * lay.channels * lay.depth + 7) // 8
        self.bpp = max(1, lay.channels * lay.depth // 8)
        self._above = np.zeros(self.row_bytes, np.uint8)
        self._inflate = zlib.decompressobj()
        self._pieces = self._idat_pieces()
        self._pending = b""  # inflated bytes not yet handed out as rows

    def _read_at(self, pos: int, n: int) -> bytes:
        self.f.seek(pos)
        return self.f.read(n)

    def _idat_pieces(self):
        for pos, length in self.lay.idat:
            for at in range(pos, pos + length, INFLATE_PIECE):
                piece = self._read_at(at, min(INFLATE_PIECE, pos + length - at))
                if not piece:
                    raise InputError("unreadable PNG image: the file changed while it was read")
                yield piece

    def _inflated(self, need: int) -> bytes:
        """The next `need` bytes of filtered rows."""
        parts, have = [self._pending], len(self._pending)
        d = self._inflate
        while have < need:
            if d.eof:
                break
            data = d.unconsumed_tail or next(self._pieces, b"")
            if not data:
                break
            try:
                out = d.decompress(data, max(need - have, INFLATE_PIECE))
            except zlib.error as exc:
                raise InputError(f"unreadable PNG image: {exc}") from None
            parts.append(out)
            have += len(out)
        got = b"".join(parts)
        if len(got) < need:
            raise InputError("unreadable PNG image: image file is truncated (its data ends before its last row)")
        self._pending = got[need:]
        return got[:need]

    def read(self, n: int) -> np.ndarray:
        stored = np.frombuffer(self._inflated(n * (1 + self.row_bytes)), np.uint8).reshape(n, 1 + self.row_bytes)
        raw = np.empty((n, self.row_bytes), np.uint8)
        bad = _rows.unfilter(stored, self._above, self.bpp, raw)
        if bad >= 0:
            raise InputError(f"unreadable PNG image: row filter type {stored[bad, 0]} is not valid")
        return _pixels_of(raw, self.lay.width, self.lay.channels, self.bits)

    def close(self) -> None:
        self.f.close()


def _pixels_of(raw: np.ndarray, width: int, channels: int, depth: int) -> np.ndarray:
    """Unfiltered rows (n, row bytes) -> samples (n, width, channels): _raw_rows undone."""
    n = raw.shape[0]
    if depth == 16:
        return raw.view(">u2").astype(np.uint16).reshape(n, width, channels)
    if depth == 8:
        return raw.reshape(n, width, channels).copy()
    per_byte = 8 // depth
    shifts = (depth * np.arange(per_byte - 1, -1, -1)).astype(np.uint8)
    vals = (raw[:, :, None] >> shifts) & ((1 << depth) - 1)
    return np.ascontiguousarray(vals.reshape(n, -1)[:, :width * channels]).reshape(n, width, channels)


class RowWriter:
    """The PNG `write` makes, written into the open, seekable binary file `out` a block of rows at a
    time: the same bytes (the same filter for every row, one deflate stream, and one IDAT chunk
    whose length is filled in at the end)."""

    def __init__(self, out, meta: dict, shape, bits: int):
        self.out = out
        ihdr = unpack(meta["ihdr"])
        self.depth = struct.unpack(">IIBB", ihdr[:10])[2]
        self.groups = meta["chunks"]
        out.write(SIGNATURE + _chunk("IHDR", ihdr))
        for t, b in self.groups["pre_plte"] + self.groups["pre_idat"]:
            out.write(_chunk(t, unpack(b)))
        self.idat_at = out.tell()
        out.write(b"\0\0\0\0IDAT")
        self.crc, self.length = zlib.crc32(b"IDAT"), 0
        self.packer = zlib.compressobj(6)
        self.above = None  # the last row written (stored form), which the next block's filters read

    def _put(self, data: bytes) -> None:
        self.out.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)

    def write(self, pixels: np.ndarray) -> None:
        if not len(pixels):
            return
        raw, bpp = _raw_rows(pixels, self.depth)
        for batch in _filtered_batches(raw, self.above, bpp):
            self._put(self.packer.compress(batch))
        self.above = raw[-1].copy()

    def close(self) -> None:
        self._put(self.packer.flush())
        out = self.out
        out.write(struct.pack(">I", self.crc))
        for t, b in self.groups["post_idat"]:
            out.write(_chunk(t, unpack(b)))
        out.write(_chunk("IEND", b""))
        end = out.tell()
        out.seek(self.idat_at)
        out.write(struct.pack(">I", self.length))
        out.seek(end)
