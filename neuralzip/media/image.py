"""Image formats: sniffed by their magic bytes, never by the file name."""

import logging
import re
import warnings

from neuralzip.errors import InputError
from neuralzip.media import Media, png, rawimage, tiff

READERS = {"png": png.read, "pnm": rawimage.read_pnm, "bmp": rawimage.read_bmp, "tiff": tiff.read}
WRITERS = {"png": png.write, "pnm": rawimage.write_pnm, "bmp": rawimage.write_bmp, "tiff": tiff.write}


def sniff(head: bytes) -> str | None:
    if head.startswith(png.SIGNATURE):
        return "png"
    if head[:2] in (b"P4", b"P5", b"P6") and len(head) > 2 and head[2] in b" \t\r\n#":
        return "pnm"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def read(data: bytes, fmt: str) -> Media:
    pil_log = logging.getLogger("PIL")
    was = pil_log.level
    pil_log.setLevel(logging.CRITICAL + 1)  # Pillow logs what it finds wrong in a file (to stderr by default)
    try:
        with warnings.catch_warnings():  # a damaged file is one line of error, not library warnings
            warnings.simplefilter("ignore")
            return READERS[fmt](data)
    except InputError:
        raise
    except Exception as exc:  # a damaged file must not surface as a traceback
        why = re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc)).strip() or type(exc).__name__
        raise InputError(f"unreadable {fmt.upper()} image: {why.splitlines()[0]}") from None
    finally:
        pil_log.setLevel(was)


def write(media: Media) -> bytes:
    return WRITERS[media.meta["format"]](media)
