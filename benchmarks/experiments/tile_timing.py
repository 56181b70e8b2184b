"""The classic image model with its earlier tiles (128 x 1024) against today's (as tall as a chunk,
at most 1024 wide: this crop is one tile, no tile-boundary loss): bytes and in-process encode /
decode time of a 768x512 centre crop of images/valid/urban_img_007 (measured, never tuned on),
three times each.

    python benchmarks/experiments/tile_timing.py"""

import time
from pathlib import Path

import numpy as np
from PIL import Image

from neuralzip.models.base import Signal
from neuralzip.models.classic_image import ClassicImageCodec

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "images" / "valid" / "urban_img_007.png"

im = np.asarray(Image.open(PHOTO).convert("RGB"))
h, w = im.shape[:2]
img = np.ascontiguousarray(im[(h - 512) // 2:(h - 512) // 2 + 512, (w - 768) // 2:(w - 768) // 2 + 768])
sig = Signal("image", img.shape, 8)
for name, codec in [("tiles 128x1024", ClassicImageCodec(tile_h=128, tile_w=1024)), ("one tile (today)", ClassicImageCodec())] * 3:
    t = time.perf_counter()
    enc = codec.encode(img, sig)
    te = time.perf_counter() - t
    t = time.perf_counter()
    out = codec.decode(enc.params, enc.chunks, sig)
    td = time.perf_counter() - t
    assert (out == img).all()
    print(f"{name}: {sum(len(c) for c in enc.chunks)} bytes, encode {te:.2f} s, decode {td:.2f} s")
