"""Image roundtrips: every format and mode, odd shapes, both baseline models."""

import io

import numpy as np
import pytest
from PIL import Image

from media_factory import image_file, png16_bytes, png_bytes, smooth_image
from neuralzip import api
from neuralzip.errors import InputError
from neuralzip.media.detect import read_media

SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 301), (67, 31)]
CASES = [("png", m) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "LA16", "RGB16", "RGBA16")]
CASES += [("tiff", m) for m in ("1", "L", "P", "RGB", "RGBA", "I;16")]
CASES += [("bmp", m) for m in ("1", "L", "P", "RGB", "RGBA")]
CASES += [("ppm", m) for m in ("1", "L", "RGB", "I;16")]
BYTE_IDENTICAL = {"bmp", "ppm"}


def roundtrip(data: bytes, model: str) -> bytes:
    blob = api.compress_bytes(data, "x", model)
    [(name, restored)] = api.decompress_bytes(blob)
    assert name == "x"
    return restored


def assert_same_image(original: bytes, restored: bytes, fmt: str):
    a, b = read_media(original), read_media(restored)
    assert a.samples.dtype == b.samples.dtype and a.samples.shape == b.samples.shape
    assert np.array_equal(a.samples, b.samples)
    assert a.bits == b.bits and a.meta["mode"] == b.meta["mode"]
    if fmt in BYTE_IDENTICAL:
        assert restored == original
    else:  # and an independent reader agrees
        with Image.open(io.BytesIO(original)) as x, Image.open(io.BytesIO(restored)) as y:
            assert x.mode == y.mode and x.size == y.size
            assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("fmt,mode", CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_classic_roundtrip_every_format_mode_shape(fmt, mode, shape):
    data = image_file(fmt, mode, *shape)
    assert_same_image(data, roundtrip(data, "classic"), fmt)


@pytest.mark.parametrize("fmt,mode", CASES)
def test_histogram_roundtrip_every_format_mode(fmt, mode):
    data = image_file(fmt, mode, 19, 23)
    assert_same_image(data, roundtrip(data, "histogram"), fmt)


def test_tile_and_chunk_boundaries_are_exact():
    """Wider than a tile and taller than several tile rows."""
    data = image_file("png", "RGB", 150, 1100)
    assert_same_image(data, roundtrip(data, "classic"), "png")


def test_classic_tiles_are_as_tall_as_a_chunk(monkeypatch):
    """The params record tiles as tall as a chunk and at most 1024 wide: a 150 x 1100 image is one
    chunk of two tiles side by side, 150 x 1024 (a 150 x 900 one would be one tile). With chunks of
    64 rows (CHUNK_PIXELS made small) it is 3 chunks with 64-row tiles, and decodes exactly."""
    from neuralzip import container
    from neuralzip.models import classic_image

    data = image_file("png", "RGB", 150, 1100)
    _, [m] = container.loads(api.compress_bytes(data, "x", "classic"))
    assert (m.params["tile_h"], m.params["tile_w"], len(m.chunks)) == (150, 1024, 1)
    _, [m] = container.loads(api.compress_bytes(image_file("png", "RGB", 150, 900), "x", "classic"))
    assert (m.params["tile_h"], m.params["tile_w"]) == (150, 900)
    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 64 * 1100)
    blob = api.compress_bytes(data, "x", "classic")
    _, [m] = container.loads(blob)
    assert (m.params["tile_h"], m.params["tile_w"], len(m.chunks)) == (64, 1024, 3)
    assert_same_image(data, api.decompress_bytes(blob)[0][1], "png")


def test_no_row_loses_its_north_context_at_a_tile_edge():
    """Rows alike in content cost alike: the 129th row is no dearer than those above it. With the
    tiles of earlier files (128 rows; the negative control) it starts a tile without the
    row above and costs a third more."""
    from neuralzip.models.base import Signal
    from neuralzip.models.classic_image import ClassicImageCodec

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:48]
    img = np.clip(40 + 3 * xx[:, :, None] + 50 * np.arange(3) + 20 * np.sin(yy / 5.0)[:, :, None]
                  + rng.normal(0, 4, (200, 48, 3)), 0, 255).astype(np.uint8)
    signal = Signal("image", img.shape, 8)

    def edge_row_cost(codec) -> float:
        rows = codec.bits_per_dim(img, signal).sum(axis=(1, 2))
        return rows[128] / np.median(rows[96:128])

    assert edge_row_cost(ClassicImageCodec()) < 1.1
    assert edge_row_cost(ClassicImageCodec(tile_h=128, tile_w=1024)) > 1.2


def test_16bit_rgb_png_keeps_all_16_bits():
    arr = smooth_image(9, 11, 3, 65535)
    arr[0, 0] = [1, 257, 65535]  # values whose low byte Pillow would drop
    restored = read_media(roundtrip(png16_bytes(arr), "classic"))
    assert restored.bits == 16 and np.array_equal(restored.samples, arr)


def test_png_metadata_chunks_survive():
    arr = smooth_image(20, 30, 3)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "neuralzip test")
    icc = b"\x00" * 128 + b"fake icc profile bytes"
    data = png_bytes(arr, "RGB", pnginfo=info, dpi=(300, 300), icc_profile=icc)
    restored = roundtrip(data, "classic")
    with Image.open(io.BytesIO(restored)) as im:
        assert im.info["Title"] == "neuralzip test"
        assert im.info["icc_profile"] == icc
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)


def test_palette_png_with_transparency():
    arr = smooth_image(12, 12, 1)
    im = Image.fromarray(arr[:, :, 0], "L").convert("P")
    im.putpalette(bytes(range(256)) * 3)
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=bytes([0, 128] + [255] * 254))
    restored = roundtrip(buf.getvalue(), "classic")
    with Image.open(io.BytesIO(restored)) as out:
        assert out.mode == "P" and out.info["transparency"] == bytes([0, 128] + [255] * 254)
        assert np.array_equal(np.asarray(out), arr[:, :, 0])


def test_interlaced_png_restores_the_same_pixels():
    import png

    arr = smooth_image(10, 13, 3)
    buf = io.BytesIO()
    png.Writer(13, 10, greyscale=False, interlace=True).write_array(buf, arr.reshape(-1))
    assert_same_image(buf.getvalue(), roundtrip(buf.getvalue(), "classic"), "png")


def test_constant_and_full_noise_images():
    flat = np.full((40, 40, 3), 77, np.uint8)
    noise = np.random.default_rng(5).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for arr in (flat, noise):
        data = png_bytes(arr, "RGB")
        assert_same_image(data, roundtrip(data, "classic"), "png")


@pytest.mark.parametrize("make,message", [
    (lambda: b"just some text\n" * 10, "unsupported file type"),
    (lambda: b"", "unsupported file type"),
    (lambda: _cmyk_tiff(), "CMYK"),
    (lambda: _animated_png(), "animated"),
    (lambda: _gif(), "unsupported file type"),
    (lambda: image_file("png", "RGB", 8, 8)[:60], "PNG"),
])
def test_unsupported_images_are_refused_clearly(make, message):
    with pytest.raises(InputError, match=message):
        read_media(make())


def _cmyk_tiff():
    buf = io.BytesIO()
    Image.new("CMYK", (4, 4)).save(buf, "TIFF")
    return buf.getvalue()


def _animated_png():
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _gif():
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, "GIF")
    return buf.getvalue()


def test_array_api_roundtrip():
    arr = smooth_image(21, 5, 3)
    assert np.array_equal(api.decompress_array(api.compress_array(arr, "image")), arr)
    gray = smooth_image(3, 9, 1, 4095)[:, :, 0]
    out = api.decompress_array(api.compress_array(gray, "image", bits=12))
    assert np.array_equal(out[:, :, 0], gray)


def test_tall_png_crosses_the_writer_row_batches():
    data = image_file("png", "RGB", 600, 7)
    assert_same_image(data, roundtrip(data, "classic"), "png")
