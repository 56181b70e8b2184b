"""Photos that are decoded JPEGs, coded in the YCbCr they were decoded from.

A JPEG decoder (libjpeg and its descendants, which are what Pillow, browsers and most tools
use) makes each RGB pixel from integer (Y, Cb, Cr) by one fixed-point conversion
(kernels/jpeg_colour.pyx). That conversion reaches only about a quarter of the 2^24 RGB colours,
so a photo saved as PNG straight from a JPEG decode has every pixel among them, and a model that
codes its RGB spends probability on colours that cannot occur (in every (R, G) about three B
values in four). Coded in (Y, Cb, Cr) instead, no value is impossible, and the chroma planes are
as smooth as the JPEG's subsampled chroma made them. On the urban photos of images/valid, all
decoded JPEGs, this makes `classic`'s files 12-19% smaller.

The encoder decides per chunk of rows: `encode_chunk` gives the chunk's (Y, Cb, Cr) when every
pixel has a preimage, else None (the chunk is coded as stored). Pixels with a clamped channel can
have several preimages; the encoder's pick does not matter to the decoder, which only converts
back (`decode_chunk`). Only the first three channels of an 8-bit image take part (alpha stays).
"""

import numpy as np

from neuralzip.kernels import jpeg_colour as _k

STORED, YCBCR = 0, 1  # what a chunk's leading byte says its values are
# The encoder's search for clamped colours' preimages is bounded, so that no image can make it slow:
# a chunk with more distinct clamped colours than this, or one whose preimage lies further than
# SEARCH_RING from JPEG's forward conversion (Cb and Cr distances summed), is coded as stored.
# The decoded JPEGs of ../shared/data (every urban photo) hold at most 8,826 such colours in 0.8 MP,
# all with a preimage within 7 (benchmarks/jpeg_colour.py); at these bounds a chunk costs at most
# 2^16 colours x 2 x 32^2 trials, about a second.
MAX_SEARCHED_COLOURS = 1 << 16
SEARCH_RING = 32


def applies(bits: int, channels: int) -> bool:
    """Whether images of this depth and channel count can be coded in libjpeg's YCbCr."""
    return bits == 8 and channels >= 3


def encode_chunk(img: np.ndarray) -> np.ndarray | None:
    """A chunk (rows, width, channels >= 3; int64 RGB first) in (Y, Cb, Cr), further channels as
    they are, or None when a pixel is no JPEG decoder's colour."""
    img = np.ascontiguousarray(img, dtype=np.int64)
    out = img.copy()
    status = np.empty(img.shape[:2], np.uint8)
    if _k.preimages_fast(img, out, status):
        return None
    clamped = status == _k.STATUS_CLAMPED
    if clamped.any():
        colours, where = np.unique(img[clamped][:, :3], axis=0, return_inverse=True)
        found = np.empty_like(colours)
        if len(colours) > MAX_SEARCHED_COLOURS or _k.preimages_slow(colours, found, SEARCH_RING):
            return None
        out[clamped, :3] = found[where.reshape(-1)]
    return out


def decode_chunk(img: np.ndarray) -> None:
    """The chunk's (Y, Cb, Cr) turned back into the RGB the encoder saw (in place; int64)."""
    _k.to_rgb(img)
