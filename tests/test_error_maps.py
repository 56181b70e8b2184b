"""The classic kernel's error maps keep each tile row's last few columns (classic_image.pyx's
RING_COLUMNS), not the whole chunk: that changes no value read. Chunks cut into tiles of every
width (one column, narrower than the ring, exactly its width, wider, several side by side, tiles
shorter than the chunk as earlier files had) code to the very bytes the whole-chunk maps wrote
(SHA-256 of the chunks, taken with stop 59's code, before the change), and decode exactly."""

import hashlib

import numpy as np
import pytest

from neuralzip.models.base import Signal
from neuralzip.models.classic_image import ClassicImageCodec

WHOLE_MAP_DIGESTS = {
    ("rgb", 5, 1): "b7d25b4f70724714", ("grey", 5, 1): "4480fb4e9391d85c",
    ("rgb", 7, 3): "bc3a38133893500a", ("grey", 7, 3): "c1cc9001d644f3d5",
    ("rgb", 6, 7): "31504c5cec82994e", ("grey", 6, 7): "609febac6676cc00",
    ("rgb", 9, 8): "77c44ea0f2e1a541", ("grey", 9, 8): "5eed087e7d4c7c92",
    ("rgb", 4, 13): "7df54fbb7fa631ef", ("grey", 4, 13): "e9c044fc61738885",
    ("rgb", 23, 20): "d05f3b3c15b4adb9", ("grey", 23, 20): "2db7f99d5e5581c9",
    ("rgb", 2, 45): "bbe6a41e3a7f1063", ("grey", 2, 45): "5677f9dfe2ed8f51",
}


def _photo() -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:23, 0:45]
    return np.clip(60 + 2 * xx[:, :, None] + 40 * np.arange(3) + 25 * np.sin(yy / 4.0 + xx / 9.0)[:, :, None]
                   + rng.normal(0, 5, (23, 45, 3)), 0, 255).astype(np.uint8)


def _coded(img, tile_h, tile_w):
    codec = ClassicImageCodec(tile_h=tile_h, tile_w=tile_w)
    signal = Signal("image", img.shape, 8)
    enc = codec.encode_set([(img, signal)])[0]
    return codec, signal, enc


@pytest.mark.parametrize("mode,tile_h,tile_w", sorted(WHOLE_MAP_DIGESTS))
def test_every_tile_width_codes_the_bytes_the_whole_maps_wrote(mode, tile_h, tile_w):
    img = _photo() if mode == "rgb" else _photo()[:, :, :1]
    codec, signal, enc = _coded(img, tile_h, tile_w)
    assert hashlib.sha256(b"".join(enc.chunks)).hexdigest()[:16] == WHOLE_MAP_DIGESTS[mode, tile_h, tile_w]
    assert np.array_equal(codec.decode(enc.params, enc.chunks, signal), img)


def test_the_digest_sees_one_pixel():
    """Negative control: one pixel changed (far from the corner, so read only through the maps
    and the statistics it feeds) changes the digest."""
    img = _photo()
    img[15, 30, 1] ^= 1
    _, _, enc = _coded(img, 9, 8)
    assert hashlib.sha256(b"".join(enc.chunks)).hexdigest()[:16] != WHOLE_MAP_DIGESTS["rgb", 9, 8]
