"""jpeg-coefficients: decoded JPEGs coded as their quantized DCT coefficients, exactly.

The inputs are real JPEG decodes (Pillow's libjpeg): what the model finds in them is checked against
what the decoder made, and every roundtrip is asserted sample-exact, on whole and cut blocks, grey
and RGB, 4:4:4 and subsampled chroma, and on images that are no decoded JPEG (the classic fallback).
"""

import io

import numpy as np
import pytest
from PIL import Image

from media_factory import jpeg_decoded, smooth_image
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.models import auto_model, get_codec
from neuralzip.models.base import ParamError, Signal
from neuralzip.models import jpeg_chroma
from neuralzip.models import jpeg_coefficients as jc
from neuralzip.models.jpeg_coefficients import (CHUNK_BLOCK_ROWS, JpegCoefficientsCodec, found, recognises, recover,
                                                standard_steps, upright)

CODEC = JpegCoefficientsCodec()


def _roundtrip(arr: np.ndarray):
    sig = Signal("image", arr.shape, 8)
    enc = CODEC.encode(arr, sig)
    CODEC.check_params(enc.params, sig, len(enc.chunks))
    out = CODEC.decode(enc.params, enc.chunks, sig)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)
    return enc


def _ppm(rgb) -> bytes:
    return b"P6 %d %d 255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.astype("uint8").tobytes()


def test_standard_steps_follow_libjpeg_scaling():
    assert standard_steps(50, 3)[0, :8].tolist() == [16, 11, 10, 16, 24, 40, 51, 61]
    assert standard_steps(100, 1).tolist() == [[1] * 64]
    assert standard_steps(96, 3)[1, :8].tolist() == [1, 1, 2, 4, 8, 8, 8, 8]
    assert standard_steps(1, 3).max() == 255


@pytest.mark.parametrize("quality", [75, 92])
def test_the_inverse_dct_is_the_decoders(quality):
    """Grey JPEGs decoded by libjpeg: the table found is the one they were made with, and nearly every
    block comes back exactly from the coefficients found (no chance match: 64 samples each)."""
    arr = jpeg_decoded(64, 96, channels=1, quality=quality, subsampling=0)
    f = found(arr, 8)
    assert np.array_equal(f.steps, standard_steps(quality, 1)) and f.canvas[:2] == (0, 0)
    flags = recover(arr, f)[1]
    assert flags.mean() < 0.1
    # negative control: one step off in the table, and blocks no longer come back
    wrong = f.steps.copy()
    wrong[0, 1] += 1
    assert recover(arr, f._replace(steps=wrong))[1].mean() > flags.mean() + 0.2


def test_an_image_cut_from_a_decode_finds_the_grid():
    arr = jpeg_decoded(67, 85, quality=90, subsampling=0)[3:, 5:]
    f = found(arr, 8)
    assert f.canvas[:2] == (3, 5) and recover(arr, f)[1][1:, 1:].mean() < 0.1  # the cut blocks: corrected
    enc = _roundtrip(arr)
    assert enc.params["pad"] == [3, 5]


def test_a_table_of_its_own_is_estimated():
    """Cameras and editors write tables of their own: each step is found from the coefficients."""
    rng = np.random.default_rng(3)
    luma = [int(v) for v in rng.integers(2, 12, 64)]
    chroma = [int(v) for v in rng.integers(3, 16, 64)]
    buf = io.BytesIO()
    textured = (smooth_image(96, 128, 3) * 0.6 + 50 + rng.normal(0, 8, (96, 128, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(textured).save(buf, "JPEG", qtables=[luma, chroma], subsampling=0)
    arr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert recognises(arr, 8) and recover(arr, found(arr, 8))[1].mean() < 0.2
    _roundtrip(arr)


@pytest.mark.parametrize("h,w", [(16, 24), (21, 30), (40, 17), (64, 96)])
@pytest.mark.parametrize("channels", [1, 3])
def test_decoded_jpegs_roundtrip_exactly(h, w, channels):
    arr = jpeg_decoded(h, w, channels=channels, quality=90, subsampling=0)
    enc = _roundtrip(arr)
    assert "fallback" not in enc.params
    assert len(enc.params["steps"]) == 64 * min(channels, 2)


@pytest.mark.parametrize("h,w", [(8, 8), (9, 8), (8, 1), (1, 1), (7, 300)])
@pytest.mark.parametrize("channels", [1, 3])
def test_tiny_images_roundtrip_exactly(h, w, channels):
    _roundtrip(jpeg_decoded(max(h, 8), max(w, 8), channels=channels, quality=90, subsampling=0)[:h, :w])


def test_coefficients_beat_classic_on_a_decoded_jpeg():
    arr = jpeg_decoded(96, 128, quality=90, subsampling=0)
    ours = sum(map(len, _roundtrip(arr).chunks))
    classic = sum(map(len, get_codec("classic", "image").encode(arr, Signal("image", arr.shape, 8)).chunks))
    assert ours < 0.8 * classic


def test_the_likelihood_is_the_coded_size():
    arr = jpeg_decoded(64, 80, quality=85, subsampling=0)
    enc = _roundtrip(arr)
    size = 8 * sum(map(len, enc.chunks))
    assert abs(size - enc.nll_bits) <= 0.01 * size + 64
    bits = CODEC.bits_per_dim(arr, Signal("image", arr.shape, 8))
    assert bits.shape == arr.shape and abs(bits.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits + 1


def test_pixels_the_coefficients_miss_are_corrected():
    """Move a few pixels of a decoded JPEG (each still a colour a JPEG decoder makes): still coded as
    coefficients, the blocks they landed in carry corrections, and the roundtrip is exact."""
    arr = jpeg_decoded(48, 64, quality=90, subsampling=0).copy()
    arr[5, 7], arr[30, 40], arr[47, 63] = arr[40, 60].copy(), arr[0, 0].copy(), arr[20, 3].copy()
    sig = Signal("image", arr.shape, 8)
    flags = recover(arr, found(arr, 8))[1]
    assert flags[0, 0] and flags[3, 5] and flags[5, 7]
    enc = _roundtrip(arr)
    assert "fallback" not in enc.params
    assert enc.nll_bits > CODEC.encode(jpeg_decoded(48, 64, quality=90, subsampling=0), sig).nll_bits


# ---- subsampled chroma: at half resolution (4:2:0: across and down; 4:2:2: across), upsampled by
# the decoder

PILLOW_SUBSAMPLING = {"4:2:0": 2, "4:2:2": 1}
SAMPLINGS = sorted(PILLOW_SUBSAMPLING)


def _muted(h, w, quality, sampling="4:2:0"):
    """A decode with subsampled chroma of a textured image with few clamped colours (whose chroma
    the encoder cannot tell, so that they need not come back from the coefficients)."""
    rng = np.random.default_rng(5)
    textured = (smooth_image(h, w, 3) * 0.5 + 60 + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(textured).save(buf, "JPEG", quality=quality, subsampling=PILLOW_SUBSAMPLING[sampling])
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("quality", [75, 95])
def test_the_upsampling_is_the_decoders(quality, sampling, monkeypatch):
    """Decodes by libjpeg-turbo (Pillow) with subsampled chroma: recognised with the sampling and
    the table they were made with, and every pixel comes back from the coefficients found,
    upsampled; negative control: one rounding bias changed in the upsampling (odd columns rounded
    up a quarter step more: what a decoder other than libjpeg-turbo's fancy upsampling might do),
    and many blocks need corrections."""
    arr = _muted(80, 112, quality, sampling)
    f = found(arr, 8)
    assert f.canvas.sampling == sampling and recognises(arr, 8)
    assert np.array_equal(f.steps, standard_steps(quality, 3))
    assert recover(arr, f)[1].mean() < 0.06
    upsample = jpeg_chroma.upsample
    even, odd = jpeg_chroma.BIASES[f.canvas.vertical]
    monkeypatch.setattr(jpeg_chroma, "upsample",
                        lambda rows, above, below, vertical: upsample(rows, above, below, vertical, (even, odd + 4)))
    assert recover(arr, f)[1].mean() > 0.2


def test_a_subsampled_decode_passing_for_full_resolution_under_the_finest_table(monkeypatch):
    """Under the finest table (every step 1) the luma and the upsampled chroma of a subsampled
    decode can come back from rounded coefficients about equally often, and then it passes the
    test for full-resolution chroma (4 of the 150 copies of images/train photos resaved at
    qualities 60 and 95 with 4:2:0 or 4:2:2 chroma did). Its blocks do not come back after the
    search, so recognition goes on to the subsampled samplings and finds the one it was made with.
    Emulated here on a small uncut decode (its grid where the jumps say: at 0, 0): the
    three-channel table estimate gives the finest table, and the chroma test says full resolution. Negative control: that full-resolution reading's blocks
    do not come back (what stopped recognition before)."""
    arr = _muted(160, 224, 95, "4:2:2")
    estimate = jc.estimate_steps

    def finest_for_three_channels(target):
        steps, share = estimate(target)
        return (standard_steps(100, 3), max(share, 0.1)) if target.shape[2] == 3 else (steps, share)

    monkeypatch.setattr(jc, "estimate_steps", finest_for_three_channels)
    monkeypatch.setattr(jc, "grid_offset", lambda values: (0, 0))
    monkeypatch.setattr(jc, "_full_resolution_chroma", lambda target, steps: True)
    monkeypatch.setattr(jc, "_LAST_FOUND", {})
    f = found(arr, 8)
    assert f.canvas.sampling == "4:2:2" and recognises(arr, 8)
    assert np.array_equal(f.steps, standard_steps(95, 3))
    canvas, values = jc.Canvas.of(arr.shape), jc._values_u8(arr)
    full_share = jc._searched_share(arr, canvas.place(values), canvas, standard_steps(100, 3))
    assert full_share < jc.RECOGNISED_AFTER_SEARCH <= f.share


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("h,w", [(16, 16), (21, 30), (37, 53), (64, 96), (9, 300), (150, 17)])
def test_subsampled_decodes_roundtrip_exactly(h, w, sampling):
    arr = jpeg_decoded(h, w, quality=88, subsampling=PILLOW_SUBSAMPLING[sampling])
    enc = _roundtrip(arr)
    assert enc.params.get("sampling") == sampling and len(enc.params["steps"]) == 128


@pytest.mark.parametrize("sampling,top,left", [("4:2:0", 3, 5), ("4:2:0", 8, 0), ("4:2:0", 13, 11),
                                               ("4:2:2", 3, 5), ("4:2:2", 5, 13)])
def test_an_image_cut_from_a_subsampled_decode(sampling, top, left):
    """A cut anywhere in the cells of subsampled chroma: the luma grid and the chroma's phase are
    found, and the blocks past the cut cells (whose chroma blocks the cut hides in part) need few
    corrections."""
    arr = np.ascontiguousarray(_muted(80, 96, 90, sampling)[top:, left:])
    f = found(arr, 8)
    assert f.canvas.sampling == sampling and f.canvas[:2] == (top, left)
    flags = recover(arr, f)[1]
    cell_h = f.canvas.cell[0]
    first = 1 + (top + cell_h // 2) // cell_h, 1 + (left + 8) // 16  # the first blocks of whole chroma blocks
    assert flags[first[0]:, first[1]:].mean() < 0.2
    assert _roundtrip(arr).params["pad"] == [top, left]


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_subsampled_bands_join_exactly(sampling):
    """Taller than one chunk: the upsampling across the chunks' edge uses the neighbouring chunk's
    chroma rows, in the encoder and the decoder alike."""
    arr = _muted(8 * CHUNK_BLOCK_ROWS + 40, 48, 85, sampling)
    enc = _roundtrip(arr)
    assert len(enc.chunks) == 2 and enc.params.get("sampling") == sampling
    assert recover(arr, found(arr, 8))[1].mean() < 0.02


@pytest.mark.parametrize("sampling,top,left", [("4:2:0", 3, 5), ("4:2:0", 11, 9), ("4:2:2", 3, 13)])
def test_subsampled_likelihood_is_the_coded_size(sampling, top, left):
    """explain's map spreads the chroma blocks' bits over their cells, and the bits of luma blocks
    wholly outside the image (in a cut cell) over the nearest samples: it sums to the likelihood,
    which is the coded size."""
    arr = np.ascontiguousarray(_muted(70, 90, 90, sampling)[top:, left:])
    enc = _roundtrip(arr)
    size = 8 * sum(map(len, enc.chunks))
    assert abs(size - enc.nll_bits) <= 0.01 * size + 64
    bits = CODEC.bits_per_dim(arr, Signal("image", arr.shape, 8))
    assert bits.shape == arr.shape and abs(bits.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits + 1


@pytest.mark.parametrize("turns", [1, 2, 3])
@pytest.mark.parametrize("sampling", ["4:4:4", "4:2:0", "4:2:2", "grey"])
def test_a_decode_turned_after_decoding(turns, sampling):
    """A photo whose orientation tag a tool applied to the decoded pixels: coded as coefficients
    at about the size of the decode itself, and decoded exactly, its explain map turned too. A
    quarter turn (the inverse DCT's passes do not commute) is undone (params.rotation); a half turn
    may stay (turning a block over negates its odd coefficients, exactly, with full-resolution
    chroma)."""
    if sampling == "grey":
        decode = jpeg_decoded(40, 56, channels=1, quality=90, subsampling=0)
    elif sampling == "4:4:4":
        decode = jpeg_decoded(40, 56, quality=90, subsampling=0)
    else:
        decode = _muted(40, 56, 90, sampling)
    plain = _roundtrip(decode)
    assert "rotation" not in plain.params
    arr = np.ascontiguousarray(np.rot90(decode, -turns))
    f = found(arr, 8)
    assert f.rotation % 2 == turns % 2  # a quarter turn is undone, a half one need not be
    assert np.array_equal(upright(arr, f), np.rot90(arr, f.rotation))
    enc = _roundtrip(arr)
    assert enc.params.get("rotation", 0) == f.rotation and "fallback" not in enc.params
    assert sum(map(len, enc.chunks)) <= 1.05 * sum(map(len, plain.chunks)) + 16
    bits = CODEC.bits_per_dim(arr, Signal("image", arr.shape, 8))
    assert bits.shape == arr.shape and abs(bits.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits + 1


@pytest.mark.parametrize("params,message", [
    ({"sampling": "4:1:1"}, "sampling"),
    ({"sampling": 2}, "sampling"),
    ({"pad": [8, 0]}, "pad"),                       # full-resolution chroma: cells of 8
    ({"sampling": "4:2:2", "pad": [8, 15]}, "pad"),  # 4:2:2: cells of 8 rows
    ({"sampling": "4:2:0", "pad": [0, 16]}, "pad"),
    ({"rotation": 4}, "rotation"),
    ({"rotation": [1]}, "rotation"),
])
def test_bad_subsampling_params_are_refused(params, message):
    sig, enc = _encoded(jpeg_decoded(24, 32, quality=90, subsampling=2))
    bad = {**enc.params, **params}
    if "sampling" not in params:
        bad.pop("sampling")
    with pytest.raises(ParamError, match=message):
        CODEC.check_params(bad, sig, len(enc.chunks))


def test_subsampling_is_refused_for_a_grey_image():
    sig, enc = _encoded(jpeg_decoded(24, 32, channels=1, quality=90, subsampling=0))
    with pytest.raises(ParamError, match="sampling"):
        CODEC.check_params({**enc.params, "sampling": "4:2:0"}, sig, len(enc.chunks))


def test_subsampled_chunks_damaged_are_refused():
    sig, enc = _encoded(jpeg_decoded(40, 48, quality=90, subsampling=2))
    assert enc.params.get("sampling") == "4:2:0"
    for chunk in (enc.chunks[0][:-4], enc.chunks[0][:5], b"\xff" * len(enc.chunks[0])):
        try:
            out = CODEC.decode(enc.params, [chunk], sig)
        except ValueError:
            continue
        assert not np.array_equal(out, jpeg_decoded(40, 48, quality=90, subsampling=2))


@pytest.mark.parametrize("make", [
    lambda: smooth_image(48, 64, 3),                          # no JPEG at all
    lambda: jpeg_decoded(48, 64, channels=4, subsampling=0),  # RGBA
    lambda: jpeg_decoded(5, 64, quality=90, subsampling=0),   # shorter than a block
])
def test_other_images_fall_back_to_classic(make):
    arr = make()
    enc = _roundtrip(arr)
    assert enc.params["fallback"] == "classic"
    assert not recognises(arr, 8)


def test_sixteen_bit_images_fall_back():
    arr = (smooth_image(16, 16, 1).astype(np.uint16) * 257)
    sig = Signal("image", arr.shape, 16)
    enc = CODEC.encode(arr, sig)
    assert enc.params["fallback"] == "classic"
    assert np.array_equal(CODEC.decode(enc.params, enc.chunks, sig), arr)


def test_auto_takes_it_for_decoded_jpegs_only():
    jpeg = jpeg_decoded(48, 64, quality=90, subsampling=0)
    assert auto_model("image", jpeg, 8) == "jpeg-coefficients"
    assert auto_model("image", _muted(48, 64, 90), 8) == "jpeg-coefficients"  # 4:2:0 too
    assert auto_model("image", _muted(48, 64, 90, "4:2:2"), 8) == "jpeg-coefficients"
    assert auto_model("image", smooth_image(48, 64, 3), 8) is None
    assert auto_model("image", jpeg.astype(np.uint16), 16) is None
    for level in (1, 2):
        blob = api.compress_bytes(_ppm(jpeg), "x.ppm", "auto", level=level)
        _, [member] = container.loads(blob)
        assert member.model == "jpeg-coefficients"
        [(_, restored)] = api.decompress_bytes(blob)
        assert restored == _ppm(jpeg)
    _, [member] = container.loads(api.compress_bytes(_ppm(smooth_image(48, 64, 3)), "y.ppm", "auto"))
    assert member.model == "classic"


def _encoded(arr):
    sig = Signal("image", arr.shape, 8)
    return sig, CODEC.encode(arr, sig)


@pytest.mark.parametrize("change", [
    lambda p: p.update(steps=p["steps"][:64]),
    lambda p: p.update(steps=[0] + p["steps"][1:]),
    lambda p: p.update(steps=[256] + p["steps"][1:]),
    lambda p: p.update(steps="96"),
    lambda p: p.update(extra=1),
    lambda p: p.update(pad=[8, 0]),
    lambda p: p.update(pad=[0]),
    lambda p: p.pop("pad"),
    lambda p: p.pop("steps"),
    lambda p: p.update(fallback="vae"),
])
def test_bad_params_are_refused(change):
    sig, enc = _encoded(jpeg_decoded(24, 32, quality=90, subsampling=0))
    params = dict(enc.params)
    change(params)
    with pytest.raises(ParamError):
        CODEC.check_params(params, sig, len(enc.chunks))


def test_wrong_chunk_count_and_shape_are_refused():
    sig, enc = _encoded(jpeg_decoded(24, 32, quality=90, subsampling=0))
    with pytest.raises(ParamError):
        CODEC.check_params(enc.params, sig, len(enc.chunks) + 1)
    with pytest.raises(ParamError):
        CODEC.check_params(enc.params, Signal("image", (24, 32, 4), 8), len(enc.chunks))


@pytest.mark.parametrize("damage", ["truncate", "flip", "odd", "empty", "garbage"])
def test_damaged_chunks_fail_cleanly_or_decode_to_bounded_values(damage):
    """A damaged stream either raises ValueError or decodes to some 8-bit image of the right shape
    (the container's checksum refuses that one); never a crash or a hang."""
    sig, enc = _encoded(jpeg_decoded(40, 48, quality=90, subsampling=0))
    data = bytearray(enc.chunks[0])
    if damage == "truncate":
        data = data[:len(data) // 2 // 4 * 4]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x5A
    elif damage == "odd":
        data = data[:-1]
    elif damage == "empty":
        data = b""
    else:
        data = np.random.default_rng(7).integers(0, 256, len(data), dtype=np.uint8).tobytes()
    try:
        out = CODEC.decode(enc.params, [bytes(data)], sig)
    except ValueError:
        return
    assert out.shape == sig.shape and out.dtype == np.uint8


def test_a_damaged_file_is_refused_in_one_line():
    blob = bytearray(api.compress_bytes(_ppm(jpeg_decoded(40, 48, quality=90, subsampling=0)), "x.ppm",
                                        "jpeg-coefficients"))
    blob[-20] ^= 0xFF
    with pytest.raises(ContainerError) as err:
        api.decompress_bytes(bytes(blob))
    assert "\n" not in str(err.value)


def test_reconstruct_checks_shapes():
    coefs = np.zeros((1, 1, 3, 64), np.int64)
    with pytest.raises(ValueError):
        _k.reconstruct(coefs, np.ones((2, 64), np.int64), np.zeros((8, 16, 3), np.int64))


def test_a_flat_block_is_its_dc():
    """The inverse DCT of a DC-only block is flat at 128 + DC * step / 8, as JPEG defines it."""
    coefs = np.zeros((1, 1, 1, 64), np.int64)
    coefs[0, 0, 0, 0] = 40
    out = np.zeros((8, 8, 1), np.int64)
    _k.reconstruct(coefs, np.full((1, 64), 2, np.int64), out)
    assert (out == 128 + 10).all()


def test_pillow_reads_what_decompress_writes():
    arr = jpeg_decoded(33, 41, quality=88, subsampling=0)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    blob = api.compress_bytes(buf.getvalue(), "x.png", "jpeg-coefficients")
    [(_, restored)] = api.decompress_bytes(blob)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(restored))), arr)


def test_the_search_does_not_depend_on_the_threads():
    """Blocks are searched in parallel threads; each block's result is its own (no variable of the
    parallel loop outlives a block: the search is a function of the block alone), so a batch gives
    what each block gives alone."""
    from neuralzip.models import jpeg_coefficients as jc

    arr = jpeg_decoded(64, 96, channels=1, quality=97, subsampling=0).astype(np.int64)  # steps of 1: searched
    steps = standard_steps(97, 1)
    target = jc._blocks(arr).reshape(-1, 64)
    dct = jc.forward_dct(target.reshape(-1, 1, 8, 8) - 128)
    start = jc.quantize(dct, steps).reshape(-1, 64)
    estimate = (dct / (steps.reshape(1, 1, 8, 8) * float(1 << 28))).reshape(-1, 64)
    mask = np.ones_like(target, dtype=np.uint8)
    table = np.zeros(len(target), np.uint8)
    batch = start.copy()
    exact = _k.search_flips(estimate, target, mask, steps, table, batch, 14, 3)
    alone = start.copy()
    for r in range(len(target)):
        _k.search_flips(estimate[r:r + 1], target[r:r + 1], mask[r:r + 1], steps, table[r:r + 1], alone[r:r + 1], 14, 3)
    assert np.array_equal(batch, alone)
    assert (batch != start).any() and exact > 0.8 * len(target)  # the search did find something


def test_explain_takes_the_model_compress_takes(tmp_path):
    from neuralzip import explain

    jpeg = api.read_media(_ppm(jpeg_decoded(48, 64, quality=90, subsampling=0)), "x.ppm")
    info = explain.explain(jpeg, "x.ppm", tmp_path / "map.png")
    assert info["model"] == "jpeg-coefficients" and (tmp_path / "map.png").stat().st_size > 0
    other = api.read_media(_ppm(smooth_image(48, 64, 3)), "y.ppm")
    assert explain.explain(other, "y.ppm", tmp_path / "other.png")["model"] == "classic"


def test_the_golden_subsampled_file_is_one():
    """tests/golden's 4:2:0 file (test_golden decodes it) holds a member with half-resolution chroma."""
    from pathlib import Path
    blob = (Path(__file__).parent / "golden" / "jpeg-coefficients-jpeg420-image.nz").read_bytes()
    member = container.loads(blob)[1][0]
    assert member.params["sampling"] == "4:2:0" and "fallback" not in member.params
