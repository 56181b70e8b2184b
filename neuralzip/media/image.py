"""Image formats: sniffed by their magic bytes, never by the file name."""

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
    try:
        return READERS[fmt](data)
    except InputError:
        raise
    except Exception as exc:  # a damaged file must not surface as a traceback
        raise InputError(f"unreadable {fmt.upper()} image: {exc}") from None


def write(media: Media) -> bytes:
    return WRITERS[media.meta["format"]](media)
