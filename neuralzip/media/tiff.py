"""TIFF through Pillow: identical pixels, DPI, ICC profile and compression kept."""

import io
import os
import sys
import tempfile
from contextlib import contextmanager

import numpy as np

from neuralzip import limits
from neuralzip.errors import InputError
from neuralzip.media import Media
from neuralzip.media.blob import pack, unpack

MODES = {"1": (1, 1), "L": (1, 8), "LA": (2, 8), "P": (1, 8), "RGB": (3, 8), "RGBA": (4, 8),
         "I;16": (1, 16), "I;16B": (1, 16)}
WRITABLE = {"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits", "group4"}


def read(data: bytes) -> Media:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if getattr(im, "n_frames", 1) > 1:
            raise InputError("multi-page TIFF is not supported")
        if im.mode not in MODES:
            raise InputError(f"TIFF image mode {im.mode} is not supported")
        _, depth = MODES[im.mode]
        per_sample = im.tag_v2.get(258, (depth,))  # BitsPerSample; Pillow may read more than it keeps
        per_sample = per_sample if isinstance(per_sample, tuple) else (per_sample,)
        if max(per_sample) > depth:
            raise InputError(f"{max(per_sample)}-bit {im.mode} TIFF is not supported")
        w, h = im.size
        if w < 1 or h < 1:
            raise InputError(f"TIFF with an invalid size ({w}x{h})")
        limits.check_declared(f"TIFF image ({w}x{h})", w * h * MODES[im.mode][0], 2 if depth == 16 else 1)
        with _libtiff_messages() as said:
            try:
                im.load()
            except Exception as exc:
                first = said()
                raise InputError(f"unreadable TIFF image: {exc}{' (' + first + ')' if first else ''}") from None
        arr = np.asarray(im)
        meta = {"format": "tiff", "mode": im.mode, "compression": im.info.get("compression", "raw")}
        if im.mode == "P":
            meta["palette"] = pack(bytes(im.getpalette(rawmode="RGB") or []))
        if "icc_profile" in im.info:
            meta["icc"] = pack(im.info["icc_profile"])
        if "dpi" in im.info:
            meta["dpi"] = [float(v) for v in im.info["dpi"]]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    channels = MODES[meta["mode"]][0]
    arr = arr.astype(np.uint16 if depth == 16 else np.uint8).reshape(arr.shape[0], arr.shape[1], channels)
    return Media("image", np.ascontiguousarray(arr), depth, meta)


@contextmanager
def _libtiff_messages():
    """libtiff prints what is wrong with a damaged file straight to stderr (file descriptor 2):
    keep it off the terminal (an error is one line); -> a function giving its first line."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        os.dup2(caught.fileno(), 2)
        try:
            yield lambda: _first_line(caught)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _first_line(f) -> str:
    f.flush()
    f.seek(0)
    text = f.read(2000).decode(errors="replace").strip()
    return text.splitlines()[0][:200] if text else ""


def write(media: Media) -> bytes:
    from PIL import Image

    m, px = media.meta, media.samples
    if m["mode"] == "1":
        im = Image.fromarray(px[:, :, 0].astype(bool))
    elif m["mode"].startswith("I;16"):
        im = Image.fromarray(px[:, :, 0].astype(np.uint16))
    elif px.shape[2] == 1:
        im = Image.fromarray(px[:, :, 0], "L")
        if m["mode"] == "P":
            im.putpalette(unpack(m["palette"]))  # turns the L image into P
    else:
        im = Image.fromarray(px, m["mode"])
    kwargs = {}
    if m.get("compression") in WRITABLE:
        kwargs["compression"] = m["compression"]
    if "icc" in m:
        kwargs["icc_profile"] = unpack(m["icc"])
    if "dpi" in m:
        kwargs["dpi"] = tuple(m["dpi"])
    buf = io.BytesIO()
    im.save(buf, "TIFF", **kwargs)
    return buf.getvalue()
