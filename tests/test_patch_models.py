"""The patch-autoregressive image models (made, nade): exact roundtrips for every mode and odd
shape, the wavefront order reading only decoded pixels, no value's head reading a later value
(and MADE's masks, refused when a weights file breaks them), the decoder's steps giving the
encoder's heads, coded size against the exact likelihood, and damaged payloads refused."""

import numpy as np
import pytest

from media_factory import image_file, smooth_image
from neuralzip import api, container, weightstore
from neuralzip.errors import ContainerError, InputError
from neuralzip.media.detect import read_media
from neuralzip.models import get_codec, made
from neuralzip.models import patch_context as P
from neuralzip.models.base import Signal
from test_images import assert_same_image, roundtrip

MODELS = ("made", "nade")
MODES = ("L", "LA", "P", "RGB", "RGBA")
SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 301), (67, 31), (5, 4)]


def _signal(img):
    return Signal("image", img.shape, 8)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_roundtrip_every_8bit_mode_and_odd_shape(model, mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, model), "png")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("mode", ("1", "I;16", "RGB16"))
def test_other_depths_use_the_classic_model(model, mode):
    data = image_file("png", mode, 13, 7)
    assert_same_image(data, roundtrip(data, model), "png")
    _, [member] = container.loads(api.compress_bytes(data, "x.png", model))
    assert member.params["fallback"] == "classic"


def test_planes_pad_and_join_exactly():
    img = smooth_image(9, 14, 4)
    x, counts = P.planes(img)
    assert x.shape == (2, 12, 16, 3) and counts == [3, 1]
    assert np.array_equal(P.join_planes(x, img.shape), img)
    grid = P.Grid(img.shape)
    values = grid.values(x, np.arange(len(grid)))
    # every value that is not coded is a copy of an earlier value of its patch: the decoder rebuilds it
    assert np.all(grid.sources <= np.arange(P.DIMS)[None, :])
    assert np.array_equal(np.take_along_axis(values, grid.sources, axis=1), values)
    alpha = grid.plane == 1
    assert not grid.coded[alpha][:, 1::3].any() and not grid.coded[alpha][:, 2::3].any()


def test_a_wavefront_reads_only_decoded_patches():
    """A patch's context is the same whatever the patches of its own and later wavefronts hold."""
    img = smooth_image(23, 30, 3)
    grid = P.Grid(img.shape)
    x, _ = P.planes(img)
    rng = np.random.default_rng(1)
    for t in range(grid.n_waves):
        patches = grid.wave_patches(t)
        later = np.flatnonzero(grid.wave >= t)
        garbage = x.copy()
        grid.store(garbage, later, rng.integers(0, 256, (len(later), P.DIMS)))
        for a, b in zip(grid.context(x, patches), grid.context(garbage, patches)):
            assert np.array_equal(a, b)
    # the control: garbage in the earlier wavefronts does reach a patch's context
    earlier = np.flatnonzero(grid.wave < 3)
    garbage = x.copy()
    grid.store(garbage, earlier, rng.integers(0, 256, (len(earlier), P.DIMS)))
    assert not np.array_equal(grid.context(x, grid.wave_patches(3))[0], grid.context(garbage, grid.wave_patches(3))[0])


def test_masks_are_autoregressive():
    """Through the masks, value d's output depends on values < d only, and on every one of them."""
    hidden, layers = 96, 2
    ms = P.masks(hidden, layers)
    reach = ms[0][P.CONTEXT:] > 0
    for m in ms[1:]:
        reach = (reach.astype(int) @ (m > 0).astype(int)) > 0
    assert np.array_equal(reach, np.arange(P.DIMS)[:, None] < np.arange(P.DIMS)[None, :])


@pytest.mark.parametrize("model", MODELS)
def test_shipped_network_reads_no_later_value(model):
    """The exact network's heads for value d do not move when values d.. change, and do when
    earlier ones do."""
    net = get_codec(model, "image").net
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, P.INPUTS)).astype(np.int64)
    base = net.all_heads(x)
    for d in (0, 7, 30, P.DIMS - 1):
        y = x.copy()
        y[:, P.CONTEXT + d:] = rng.integers(0, 256, (4, P.DIMS - d))
        moved = net.all_heads(y)
        assert np.array_equal(moved[:, :d + 1], base[:, :d + 1])
        if d < P.DIMS - 1:
            assert not np.array_equal(moved[:, d + 1:], base[:, d + 1:])


@pytest.mark.parametrize("model", MODELS)
def test_decoder_steps_give_the_encoders_heads(model):
    """The decoder's steps give the heads of the encoder's network, bit for bit (for made: the
    decoder computes unit by unit what the encoder computes as whole layers)."""
    net = get_codec(model, "image").net
    rng = np.random.default_rng(2)
    inputs = rng.integers(0, 256, (5, P.INPUTS)).astype(np.int64)
    full = net.all_heads(inputs)
    steps = net.stepper(inputs[:, :P.CONTEXT])
    for d in range(P.DIMS):
        assert np.array_equal(steps.heads(d), full[:, d])
        steps.feed(d, inputs[:, P.CONTEXT + d])


def test_weights_that_break_the_masks_are_refused(tmp_path):
    path = get_codec("made", "image").path
    arrays = dict(weightstore.load(path))
    w = arrays["made.w1"].copy()
    w[-1, 0] = 1  # the last unit (highest degree) feeding the first (degree -1)
    arrays["made.w1"] = w
    broken = weightstore.save(arrays, tmp_path, made.MadeCodec.weights_prefix, 99)
    with pytest.raises(InputError, match="not masked"):
        made.MadeCodec(broken).net
    arrays["made.w1"][-1, 0] = 0  # the control: the same file without the stray weight loads
    made.MadeCodec(weightstore.save(arrays, tmp_path, made.MadeCodec.weights_prefix, 98)).net


@pytest.mark.parametrize("model", MODELS)
def test_coded_size_is_the_exact_likelihood(model):
    media = read_media(open("examples/swallowtail.png", "rb").read())
    img = np.ascontiguousarray(media.samples[:96, :128])
    enc = get_codec(model, "image").encode(img, _signal(img))
    coded = 8 * len(enc.chunks[0])
    # within 1% above; a little below is possible: the coder quantizes the pmf rows itself
    assert 0.998 * enc.nll_bits <= coded <= 1.01 * enc.nll_bits + 64
    assert enc.nll_float_bits != enc.nll_bits and abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.02
    bpd = get_codec(model, "image").bits_per_dim(img, _signal(img))
    assert bpd.shape == img.shape and abs(bpd.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_payload_is_refused(model, damage):
    blob = api.compress_bytes(image_file("png", "RGB", 40, 40), "x.png", model)
    _, [member] = container.loads(blob)
    data = member.chunks[0]
    member.chunks[0] = data[:-8] if damage == "truncate" else data[:20] + bytes([data[20] ^ 0x5A]) + data[21:]
    with pytest.raises(ContainerError):
        api.decode_member(member)
