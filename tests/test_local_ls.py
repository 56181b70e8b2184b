"""local-ls: least squares fitted around every pixel, joined to the classic blend."""

import numpy as np
import pytest

from media_factory import image_file, png16_bytes, smooth_image
from neuralzip import api, container
from neuralzip.kernels import local_ls as kern
from neuralzip.models import get_codec
from neuralzip.models.base import ParamError, Signal
from test_images import CASES, assert_same_image


def roundtrip(data: bytes, level: int) -> bytes:
    blob = api.compress_bytes(data, "x", "local-ls", level=level)
    _, [member] = container.loads(blob)
    assert (member.model, member.params["level"]) == ("local-ls", level)
    [(_, restored)] = api.decompress_bytes(blob)
    return restored


@pytest.mark.parametrize("fmt,mode", [c for c in CASES if c[0] == "png"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (3, 5), (2, 301), (41, 29)])
def test_roundtrip_every_mode_and_odd_shape(fmt, mode, shape):
    data = image_file(fmt, mode, *shape)
    assert_same_image(data, roundtrip(data, 1), fmt)


@pytest.mark.parametrize("level", [1, 2])
def test_both_levels_roundtrip_a_photo_like_image_and_16_bits(level):
    data = image_file("png", "RGB", 48, 57)
    assert_same_image(data, roundtrip(data, level), "png")
    arr = (smooth_image(37, 45, 3, seed=3).astype(np.uint16) * 257 + np.arange(45, dtype=np.uint16)[None, :, None])
    data16 = png16_bytes(arr)
    assert_same_image(data16, roundtrip(data16, level), "png")


def test_chunks_are_one_wavefront_each_and_decode_exactly(monkeypatch):
    from neuralzip.models import local_ls_image

    monkeypatch.setattr(local_ls_image, "CHUNK_PIXELS", 40 * 23)  # 23 rows a chunk: three chunks
    data = image_file("png", "RGB", 60, 40)
    blob = api.compress_bytes(data, "x", "local-ls")
    _, [member] = container.loads(blob)
    assert len(member.chunks) == 3
    [(_, restored)] = api.decompress_bytes(blob)
    assert_same_image(data, restored, "png")


def _photo(h=64, w=72, seed=5):
    """Gradients and noise, well inside 0..255 (no prediction is clipped)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 60 + yy + xx // 2 + 20 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    img = base[:, :, None] + np.array([0, 10, -15]) + rng.integers(-6, 7, (h, w, 3))
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.int64))


def test_the_fit_reads_only_pixels_of_earlier_wavefront_steps():
    """What the decoder has when it predicts (y, x) of channel c: every channel of steps before
    x + 2y, and channels below c at (y, x). Changing anything else must not change the prediction;
    the negative control changes a pixel the fit does read, and the prediction moves."""
    img = _photo()
    h, w, _ = img.shape
    rng = np.random.default_rng(0)
    for y, x, c in [(20, 30, 0), (20, 30, 2), (40, 3, 1), (63, 69, 2)]:
        t = x + 2 * y
        before = np.empty(1, np.int64)
        kern.predict_pass(img, c, np.array([y]), np.array([x]), before, 5, 2.0 ** -20, 255, 1, 0.1)
        later = img.copy()
        ys, xs = np.divmod(np.arange(h * w), w)
        unseen = (xs + 2 * ys) >= t
        later[ys[unseen], xs[unseen]] = rng.integers(0, 256, (unseen.sum(), 3))
        later[y, x, :c] = img[y, x, :c]  # channels below c at (y, x) are known
        after = np.empty(1, np.int64)
        kern.predict_pass(later, c, np.array([y]), np.array([x]), after, 5, 2.0 ** -20, 255, 1, 0.1)
        assert before[0] == after[0] != kern.NO_PREDICTION
        # negative control: a pixel of an earlier step inside the window does move it
        seen = img.copy()
        seen[y - 1, x - 2:x + 2] = 255 - seen[y - 1, x - 2:x + 2]
        moved = np.empty(1, np.int64)
        kern.predict_pass(seen, c, np.array([y]), np.array([x]), moved, 5, 2.0 ** -20, 255, 1, 0.1)
        assert moved[0] != before[0]


def test_threads_do_not_change_a_prediction():
    img = _photo()
    ys, xs = np.divmod(np.arange(img.shape[0] * img.shape[1]), img.shape[1])
    outs = []
    for threads in (1, 2, 5):
        out = np.empty(len(ys), np.int64)
        kern.predict_pass(img, 1, ys, xs, out, 8, 2.0 ** -20, 255, threads, 0.1)
        outs.append(out)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert (outs[0] >= 0).mean() > 0.8  # most pixels have a fit (the edges fall back to the blend)


def test_it_is_a_better_model_than_classic_and_level_2_at_least_as_good():
    """The fit earns its time on a photo-like image: fewer exact-model bits than classic."""
    img = _photo(96, 96, seed=11).astype(np.uint8)
    sig = Signal("image", img.shape, 8)
    classic = get_codec("classic", "image").likelihood(img, sig)[1]
    one = get_codec("local-ls", "image", level=1).likelihood(img, sig)[1]
    two = get_codec("local-ls", "image", level=2).likelihood(img, sig)[1]
    assert one < classic and two <= one * 1.005


def test_a_radius_that_is_not_the_levels_is_refused():
    codec = get_codec("local-ls", "image")
    sig = Signal("image", (10, 10, 3), 8)
    good = {"level": 1, "radius": 5, "chunk_pixels": 1 << 21}
    codec.check_params(good, sig, 1)
    for bad in ({**good, "radius": 8}, {**good, "level": 3}, {**good, "chunk_pixels": 0}, {"level": 1}):
        with pytest.raises(ParamError):
            codec.check_params(bad, sig, 1)
    with pytest.raises(ParamError):
        codec.check_params(good, sig, 2)


def test_kernel_refuses_arguments_out_of_range():
    img = _photo(8, 8)
    out = np.empty(1, np.int64)
    with pytest.raises(ValueError):
        kern.predict_pass(img, 3, np.array([4]), np.array([4]), out, 5, 0.0, 255, 1)
    with pytest.raises(ValueError):
        kern.predict_pass(img, 0, np.array([8]), np.array([4]), out, 5, 0.0, 255, 1)
    with pytest.raises(ValueError):
        kern.predict_pass(img, 0, np.array([4]), np.array([4]), out, kern.MAX_RADIUS_ + 1, 0.0, 255, 1)
