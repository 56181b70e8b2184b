"""Decoded JPEGs coded in libjpeg's YCbCr (models/jpeg_colour.py, kernels/jpeg_colour.pyx): the
conversion is libjpeg's, the encoder's preimages are exact and complete, the models built on
classic flag each chunk and decode every mode and shape exactly, and damaged flags are refused."""

import io

import numpy as np
import pytest
from PIL import Image

from media_factory import jpeg_decoded, smooth_image
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.kernels import jpeg_colour as kernel
from neuralzip.models import classic_image, jpeg_colour
from neuralzip.models.base import ParamError, Signal
from neuralzip.models.classic_image import COLOUR_FLAGGED

MODELS = ["classic", "local-ls", "context-mlp", "local-ls-mlp"]


def _libjpeg_formula(ycc: np.ndarray) -> np.ndarray:
    """The conversion written out again from its constants (jdcolor.c's tables), in numpy."""
    y, cb, cr = (ycc[..., k].astype(np.int64) for k in range(3))
    half = 1 << 15
    r = y + ((91881 * (cr - 128) + half) >> 16)
    g = y + ((-22554 * (cb - 128) + half - 46802 * (cr - 128)) >> 16)
    b = y + ((116130 * (cb - 128) + half) >> 16)
    return np.clip(np.stack([r, g, b], -1), 0, 255)


def _reached() -> np.ndarray:
    """Every RGB colour the conversion reaches, as a 2^24 mask (exhaustive)."""
    ycc = np.stack(np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij"), -1).reshape(-1, 3)
    rgb = _libjpeg_formula(ycc)
    mask = np.zeros(1 << 24, bool)
    mask[(rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]] = True
    return mask


def test_conversion_is_the_formula_on_every_input():
    ycc = np.stack(np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij"), -1)
    img = ycc.reshape(256 * 256, 256, 3).astype(np.int64)
    kernel.to_rgb(img)
    assert np.array_equal(img.reshape(-1, 3), _libjpeg_formula(ycc.reshape(-1, 3)))


def test_conversion_is_what_pillows_libjpeg_does():
    """Pillow's JPEG decoder asked for YCbCr (no conversion) and for RGB: the kernel turns the first
    into the second, pixel for pixel. Negative control: with Cb and Cr swapped it does not."""
    buf = io.BytesIO()
    Image.fromarray(smooth_image(64, 80, 3), "RGB").save(buf, "JPEG", quality=90, subsampling=0)
    im = Image.open(io.BytesIO(buf.getvalue()))
    im.draft("YCbCr", im.size)
    ycc = np.asarray(im).astype(np.int64)
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.int64)
    mine = ycc.copy()
    kernel.to_rgb(mine)
    assert np.array_equal(mine, rgb)
    swapped = ycc[..., [0, 2, 1]].copy()  # the control: Cb and Cr read the other way round
    kernel.to_rgb(swapped)
    assert im.mode == "YCbCr" and not np.array_equal(ycc, rgb) and not np.array_equal(swapped, rgb)


def test_preimages_are_exact_and_complete(monkeypatch):
    """For 40,000 colours, half of them reached (clamped ones included) and half random:
    encode_chunk, its search not bounded, finds a preimage exactly where the exhaustive mask says
    one exists, and it converts back to the colour. (Bounded as shipped, it may leave a clamped
    colour far from the forward conversion: test_the_search_for_clamped_preimages_is_bounded.)"""
    monkeypatch.setattr(jpeg_colour, "SEARCH_RING", 510)
    rng = np.random.default_rng(5)
    reached = _reached()
    ycc = rng.integers(0, 256, (20000, 3))
    ycc[:4000, 0] = rng.choice([0, 1, 254, 255], 4000)  # near the ends of Y: clamped colours
    colours = np.concatenate([_libjpeg_formula(ycc), rng.integers(0, 256, (20000, 3))])
    for rgb in colours.reshape(-1, 200, 1, 3):  # one pixel a row: each colour judged alone
        code = (rgb[:, 0, 0] << 16) | (rgb[:, 0, 1] << 8) | rgb[:, 0, 2]
        if reached[code].all():
            back = jpeg_colour.encode_chunk(rgb)
            assert back is not None
            jpeg_colour.decode_chunk(back)
            assert np.array_equal(back, rgb)
        else:
            assert jpeg_colour.encode_chunk(rgb) is None
    codes = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    for rgb, code in zip(colours[20000:20300], codes[20000:20300]):
        assert (jpeg_colour.encode_chunk(rgb.reshape(1, 1, 3)) is not None) == reached[code]
    assert 0.2 < reached[codes[20000:]].mean() < 0.3  # about a quarter of all colours


def test_saturated_colours_pick_neutral_preimages():
    """White and black (clamped however the chroma lies) get Y at the end and neutral chroma; alpha
    and further channels pass through."""
    img = np.array([[[255, 255, 255, 7], [0, 0, 0, 9]]], np.int64)
    assert np.array_equal(jpeg_colour.encode_chunk(img), [[[255, 128, 128, 7], [0, 128, 128, 9]]])


def _member(blob: bytes) -> container.Member:
    return container.loads(blob)[1][0]


def _ppm(rgb: np.ndarray) -> bytes:
    return b"P6 %d %d 255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.astype(np.uint8).tobytes()


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("h, w, c", [(1, 1, 3), (7, 13, 3), (33, 20, 4)])
def test_decoded_jpeg_roundtrips_in_ycbcr(model, h, w, c):
    arr = jpeg_decoded(max(h, 8), max(w, 8), c)[:h, :w]
    data = _png(arr)
    blob = api.compress_bytes(data, "x.png", model)
    m = _member(blob)
    assert m.params["colour"] == COLOUR_FLAGGED and [ch[0] for ch in m.chunks] == [jpeg_colour.YCBCR]
    [(_, restored)] = api.decompress_bytes(blob)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(restored))), arr)


@pytest.mark.parametrize("model", ["classic", "local-ls-mlp"])
def test_ycbcr_makes_a_decoded_jpeg_smaller(model):
    """The point of it: the same decoded JPEG coded as stored (its chunk flagged STORED by an encoder
    told no colour is reached) is larger."""
    data = _ppm(jpeg_decoded(48, 64))
    flagged = len(api.compress_bytes(data, "x.ppm", model))
    real = jpeg_colour.encode_chunk
    try:
        jpeg_colour.encode_chunk = lambda img: None
        as_stored = api.compress_bytes(data, "x.ppm", model)
    finally:
        jpeg_colour.encode_chunk = real
    assert _member(as_stored).chunks[0][0] == jpeg_colour.STORED
    assert flagged < 0.97 * len(as_stored)


def test_one_unreached_pixel_keeps_its_chunk_as_stored(monkeypatch):
    """Chunks decide on their own: with chunks of 64 pixels, a pixel no JPEG decoder makes sends its
    chunk (and only it) to the stored colours; every chunk decodes exactly."""
    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 64)
    arr = jpeg_decoded(24, 16)
    arr[9, 3] = (100, 100, 101)  # no decoded colour
    assert jpeg_colour.encode_chunk(arr[9:10, 3:4].astype(np.int64)) is None
    blob = api.compress_bytes(_ppm(arr), "x.ppm", "classic")
    m = _member(blob)
    assert [ch[0] for ch in m.chunks] == [1, 1, 0, 1, 1, 1]  # rows 8-11 hold the pixel
    [(_, restored)] = api.decompress_bytes(blob)
    assert restored == _ppm(arr)


@pytest.mark.parametrize("mode, shape", [("L", (20, 20)), ("LA", (20, 20, 2))])
def test_images_of_fewer_channels_record_no_colour(mode, shape):
    arr = smooth_image(20, 20, 1 if mode == "L" else 2).reshape(shape)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    m = _member(api.compress_bytes(buf.getvalue(), "x.png", "classic"))
    assert "colour" not in m.params


def test_sixteen_bit_rgb_records_no_colour():
    codec = classic_image.ClassicImageCodec()
    assert "colour" not in codec._params(Signal("image", (4, 4, 3), 16))
    assert codec._params(Signal("image", (4, 4, 3), 8))["colour"] == COLOUR_FLAGGED


@pytest.mark.parametrize("first", [b"\x02", b"\xff", b""])
def test_a_chunk_without_a_colour_byte_is_refused(first):
    blob = api.compress_bytes(_ppm(jpeg_decoded(8, 8)), "x.ppm", "classic")
    _, [m] = container.loads(blob)
    m.chunks = [first + m.chunks[0][1:] if first else b""]
    with pytest.raises(ContainerError):
        api.decompress_bytes(container.dumps([m]))


@pytest.mark.parametrize("params, shape, bits", [({"colour": 2}, (8, 8, 3), 8), ({"colour": True}, (8, 8, 3), 8),
                                                 ({"colour": 1}, (8, 8, 1), 8), ({"colour": 1}, (8, 8, 2), 8),
                                                 ({"colour": 1}, (8, 8, 3), 16)])
def test_colour_params_that_cannot_be_are_refused(params, shape, bits):
    codec = classic_image.ClassicImageCodec()
    base = codec._params(Signal("image", shape, bits))
    with pytest.raises(ParamError, match="colour"):
        codec.check_params({**base, **params}, Signal("image", shape, bits), 1)


@pytest.mark.parametrize("model", ["context-mlp", "local-ls-mlp"])
def test_the_trainer_learns_the_coded_values(model, tmp_path):
    """The networks' trainer (no torch needed for its features) takes a decoded JPEG's targets in
    the YCbCr the codec codes it in, channel 0 apart from the later ones. Negative control: they
    are not the RGB values."""
    from neuralzip.train.image import extract

    arr = jpeg_decoded(24, 20)
    Image.fromarray(arr).save(tmp_path / "photo.png")
    [first, later] = extract([tmp_path / "photo.png"], crops=1, size=64, seed=0, log=lambda *_: None, model=model)
    ycc = jpeg_colour.encode_chunk(arr.astype(np.int64))
    assert sorted(first["v"]) == sorted(ycc[:, :, 0].ravel())
    assert sorted(later["v"]) == sorted(ycc[:, :, 1:].ravel())
    assert sorted(first["v"]) != sorted(arr[:, :, 0].ravel())


def test_the_search_for_clamped_preimages_is_bounded(monkeypatch):
    """Clamped colours go to the exhaustive search once each, within SEARCH_RING of the forward
    conversion and at most MAX_SEARCHED_COLOURS of them a chunk; past either bound the chunk is
    coded as stored (None), so no image can make the encoder search long."""
    rng = np.random.default_rng(3)
    ycc = np.stack([np.full(400, 250), rng.integers(0, 256, 400), rng.integers(0, 256, 400)], -1)
    rgb = _libjpeg_formula(ycc).reshape(20, 20, 3)  # bright, saturated chroma: many clamped colours
    assert jpeg_colour.encode_chunk(rgb) is not None
    monkeypatch.setattr(jpeg_colour, "MAX_SEARCHED_COLOURS", 10)
    assert jpeg_colour.encode_chunk(rgb) is None
    monkeypatch.setattr(jpeg_colour, "MAX_SEARCHED_COLOURS", 1 << 16)
    monkeypatch.setattr(jpeg_colour, "SEARCH_RING", 0)
    assert jpeg_colour.encode_chunk(rgb) is None


def test_clamped_preimages_do_not_depend_on_the_threads():
    """The clamped colours are searched in parallel; each colour's pick is its own, so a batch gives
    what each colour gives alone, run after run. (A first version shared the search's starting point
    between threads: on one photo of images/train its picks, all valid, differed in 1 run of 20.
    This test did not catch that version in 15 runs: the race needs two threads to interleave at
    one instruction. What rules it out now is that no variable of the parallel loop outlives a
    colour: the search is a function of the colour alone.)"""
    rng = np.random.default_rng(11)
    ycc = np.stack([rng.choice([0, 3, 250, 255], 6000), rng.integers(0, 256, 6000), rng.integers(0, 256, 6000)], -1)
    rgb = _libjpeg_formula(ycc)
    colours = np.unique(rgb[((rgb == 0) | (rgb == 255)).any(1)], axis=0)
    assert len(colours) > 2000
    batches = []
    for _ in range(3):
        found = np.empty_like(colours)
        assert kernel.preimages_slow(colours, found, 510) == 0
        batches.append(found)
    alone = np.empty_like(colours)
    for k in range(len(colours)):
        assert kernel.preimages_slow(colours[k:k + 1], alone[k:k + 1], 510) == 0
    assert all(np.array_equal(b, alone) for b in batches)
