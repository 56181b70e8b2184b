"""Large images read and written a block of rows at a time, so that a member coded chunk by chunk
(neuralzip/chunked.py) never holds the whole image: non-interlaced PNG (inflated and unfiltered as
the rows are asked for; written back as media/png.write writes it), binary PNM and uncompressed
BMP (by the pixel data's offset; BMP's bottom-up rows from the end back). A reader gives the same
samples and `meta` as the whole-file reader (media/detect.read_media) would. TIFF and interlaced
PNG are read whole (an interlaced PNG is written back non-interlaced, so a block at a time)."""

import os
import warnings

from neuralzip.errors import InputError
from neuralzip.media import image, png, rawimage

READERS = {"png": png.RowReader, "pnm": lambda path: rawimage.RowReader(path, rawimage.PnmLayout),
           "bmp": lambda path: rawimage.RowReader(path, rawimage.BmpLayout)}
WRITERS = {"png": png.RowWriter, "pnm": rawimage.RowWriter, "bmp": rawimage.RowWriter}


def open_reader(path, fmt: str):
    """A block reader of the image file at `path` (fmt as sniffed: png, pnm or bmp)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return READERS[fmt](path)
        except InputError:
            raise
        except Exception as exc:  # a damaged file must not surface as a traceback
            raise InputError(f"unreadable {fmt.upper()} image: {exc}") from None


def probe(path, min_bytes: int = 0) -> tuple[int, int, int] | None:
    """(height, width, channels) that a PNG, PNM or BMP file declares, from its header alone, when it can
    be read a block of rows at a time; None otherwise (another format, interlaced, unreadable: the
    whole-file path then says why), or for a PNM or BMP file of fewer than min_bytes / 8 bytes, which
    cannot hold min_bytes samples. Only decides which path codes it."""
    try:
        with open(path, "rb") as f:
            head = f.read(rawimage.HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
            fmt = image.sniff(head[:16])
            if fmt in ("pnm", "bmp") and 8 * size < min_bytes:  # at most 8 samples a byte (1-bit)
                return None
            if fmt == "pnm":
                return rawimage.PnmLayout(head).shape
            if fmt == "bmp":
                return rawimage.BmpLayout(head[:rawimage.BMP_HEAD]).shape
            if fmt == "png":
                lay = png.Layout(lambda pos, n: (f.seek(pos), f.read(n))[1], size, check_crc=True)
                return None if lay.interlace else lay.shape
    except Exception:  # noqa: BLE001 - a damaged file goes the usual way, which names the problem
        return None
    return None


def open_writer(out, meta: dict, shape, bits: int):
    """A writer of the restored file (meta: the member's) into the open, seekable binary file `out`:
    write(rows) block by block in order, then close()."""
    fmt = meta.get("format")
    if fmt not in WRITERS:
        raise ValueError(f"no block writer for format {fmt!r}")
    return WRITERS[fmt](out, meta, shape, bits)
