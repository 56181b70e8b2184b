"""The PNG writer's two compiled or threaded parts (media/png.py): each row's filter chosen by the
kernel (kernels/png_rows.pyx's filter_rows) exactly as the numpy reference below chooses it, and a
large image's rows deflated in pieces side by side that join into one valid zlib stream of the
same filtered bytes, read back by Pillow and by our reader, nearly as small as one pass."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from neuralzip import api
from neuralzip.media import png


def reference_filtered(raw: np.ndarray, above, bpp: int) -> bytes:
    """libpng's heuristic in numpy (the writer's code before the kernel): per row the filter whose
    bytes, read as signed, have the smallest sum of magnitudes, ties to the lower type."""
    h = raw.shape[0]
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


@pytest.mark.parametrize("bpp", [1, 2, 3, 4, 6, 8])
def test_filters_chosen_as_the_reference_chooses_them(bpp):
    rng = np.random.default_rng(bpp)
    for t in range(60):
        h, w = int(rng.integers(1, 25)), int(rng.integers(1, 30)) * bpp
        if t % 3 == 0:
            raw = rng.integers(0, 256, (h, w), dtype=np.uint8)  # noise: every filter scores alike
        elif t % 3 == 1:
            raw = (np.cumsum(rng.integers(-3, 4, (h, w)), axis=1) % 256).astype(np.uint8)  # ramps
        else:
            raw = np.full((h, w), rng.integers(0, 256), np.uint8)  # flat: ties everywhere
        above = None if t % 2 else rng.integers(0, 256, w, dtype=np.uint8)
        assert png._filtered(raw, above, bpp) == reference_filtered(raw, above, bpp)
    # negative control: the comparison sees a changed byte
    raw = rng.integers(0, 256, (4, 6 * bpp), dtype=np.uint8)
    other = raw.copy()
    other[2, 3] ^= 1
    assert png._filtered(other, None, bpp) != reference_filtered(raw, None, bpp)


def idat_of(data: bytes) -> bytes:
    out, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            out.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    return b"".join(out)


@pytest.mark.parametrize("shape", [(700, 520, 3), (1100, 997, 1)])
def test_large_images_deflate_in_pieces_into_one_stream(shape):
    rng = np.random.default_rng(shape[1])
    smooth = np.cumsum(rng.integers(-2, 3, shape), axis=1) + np.arange(shape[0])[:, None, None]
    pixels = (smooth % 256).astype(np.uint8)
    mode = "RGB" if shape[2] == 3 else "L"
    src = io.BytesIO()
    Image.fromarray(pixels if shape[2] == 3 else pixels[:, :, 0], mode).save(src, "PNG")
    media = api.read_media(src.getvalue(), "x.png")
    raw, bpp = png._raw_rows(media.samples, 8)
    assert raw.size >= 2 * png.DEFLATE_PIECE  # pieces, not one pass
    written = api.write_media(media)
    stream = idat_of(written)
    filtered = b"".join(png._filtered_batches(raw, None, bpp))
    assert zlib.decompress(stream) == filtered  # one valid zlib stream (its Adler-32 checked)
    assert len(stream) <= len(zlib.compress(filtered, 6)) * 1.002 + 64  # nearly one pass's size
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(written))).reshape(shape), pixels)
    assert np.array_equal(api.read_media(written, "y.png").samples, media.samples)
    assert api.write_media(media) == written  # the same bytes every time
