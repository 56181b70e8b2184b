"""The per-pixel image models (gated-pixelcnn, pixelrnn): exact roundtrips for every 8-bit mode and odd shape, a pixel's
prediction reading only pixels before it in raster order and every such pixel in its receptive
field (no blind spot), the same integers on any number of threads, the exact network close to the
float one, coded size against the exact likelihood, and damaged payloads and weights refused."""

import numpy as np
import pytest

from media_factory import image_file
from neuralzip import api, container, weightstore
from neuralzip.errors import ContainerError, InputError
from neuralzip.media.detect import read_media
from neuralzip.models import get_codec, pixel_codec
from neuralzip.models.base import Signal
from test_images import assert_same_image, roundtrip

MODELS = ("gated-pixelcnn", "pixelrnn")
MODES = ("L", "LA", "P", "RGB", "RGBA")
SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 61), (9, 30)]


@pytest.fixture(scope="module", params=MODELS)
def net(request):
    return get_codec(request.param, "image").net


def features(net, plane, blocks=1):
    """The network's features at every pixel, computed wavefront by wavefront as the codec does."""
    h, w = plane.shape[:2]
    stacks = net.stacks(h, w, blocks)
    out = np.zeros((h, w, net.channels), np.int64)
    for t in range(net.n_waves(h, w)):
        i, j = net.wave_pixels(t, h, w)
        out[i, j] = stacks.predict(i, j)
        stacks.update(i, j, plane[i, j])
    return out


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


def test_wavefronts_cover_every_pixel_once(net):
    h, w = 7, 23
    seen = np.zeros((h, w), np.int64)
    for t in range(net.n_waves(h, w)):
        i, j = net.wave_pixels(t, h, w)
        seen[i, j] += 1
    assert np.all(seen == 1)


# Pixels (di, dj) from a pixel at the edge of its receptive field, by model and layer count: the
# Gated PixelCNN sees the row above out to column j + layers (the vertical stack widens a column a
# layer) and the pixels up and to the right that the first PixelCNN's blind spot missed; the Row
# LSTM sees row i - k out to column j + k - 1 (a triangle) and the pixels to the left.
FIELD = {"gated-pixelcnn": lambda layers: [(0, -1), (-1, 1), (-2, 2), (-1, layers)],
         "pixelrnn": lambda layers: [(0, -1), (0, -2), (-1, 0), (-2, 1), (-3, 2)]}


def test_a_pixel_reads_only_earlier_pixels_and_all_of_its_field(net):
    """Changing every pixel from (i, j) on in raster order leaves the features at (i, j) alone;
    changing one earlier pixel at the edge of the receptive field does not."""
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (12, 20, 3))
    base = features(net, plane)
    for i, j in [(0, 0), (3, 7), (5, 0), (11, 19), (6, 13)]:
        later = plane.copy().reshape(-1, 3)
        later[i * 20 + j:] = rng.integers(0, 256, later[i * 20 + j:].shape)
        assert np.array_equal(features(net, later.reshape(plane.shape))[i, j], base[i, j])
    i, j = 6, 10
    for di, dj in FIELD[net.model](net.layers):
        moved = plane.copy()
        moved[i + di, j + dj] = 255 - moved[i + di, j + dj]
        assert not np.array_equal(features(net, moved)[i, j], base[i, j]), (di, dj)


def test_thread_blocks_give_the_same_integers(net):
    plane = np.random.default_rng(1).integers(0, 256, (9, 40, 3))
    assert np.array_equal(features(net, plane, 1), features(net, plane, 4))


def test_exact_network_tracks_the_float_network(net):
    """The integer stacks and head give means within a fraction of a level of the float network's
    on a photo (the exact-decode claim is elsewhere: this checks the quantization is sane)."""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    plane = np.ascontiguousarray(media.samples[:40, :96, :3], np.int64)  # wider than the kernels' ring of columns
    heads = net.pixel_heads(features(net, plane).reshape(-1, net.channels))
    exact_mean = heads[:, :net.k_mix] / 16  # channel 0's means in levels relative to 128
    float_mean = pixel_codec.float_heads(np, net.float_outputs(plane), plane.reshape(-1, 3).astype(np.float64), net.k_mix)[:, 0, :net.k_mix]
    assert np.median(np.abs(exact_mean - float_mean)) < 0.5
    assert np.corrcoef(exact_mean.ravel(), float_mean.ravel())[0, 1] > 0.999


@pytest.mark.parametrize("model", MODELS)
def test_coded_size_is_the_exact_likelihood(model):
    media = read_media(open("examples/swallowtail.png", "rb").read())
    img = np.ascontiguousarray(media.samples[:64, :80])
    codec = get_codec(model, "image")
    sig = Signal("image", img.shape, 8)
    enc = codec.encode(img, sig)
    coded = 8 * len(enc.chunks[0])
    # within 1% above; a little below is possible: the coder quantizes the pmf rows itself
    assert 0.998 * enc.nll_bits <= coded <= 1.01 * enc.nll_bits + 64
    assert enc.nll_float_bits != enc.nll_bits and abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.03
    bpd = codec.bits_per_dim(img, sig)
    assert bpd.shape == img.shape and abs(bpd.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_payload_is_refused(model, damage):
    blob = api.compress_bytes(image_file("png", "RGB", 30, 30), "x.png", model)
    _, [member] = container.loads(blob)
    data = member.chunks[0]
    member.chunks[0] = data[:-8] if damage == "truncate" else data[:20] + bytes([data[20] ^ 0x5A]) + data[21:]
    with pytest.raises(ContainerError):
        api.decode_member(member)


@pytest.mark.parametrize("model, key", [("gated-pixelcnn", "gpc.h1.w"), ("pixelrnn", "prnn.l1.w")])
def test_weights_the_kernel_cannot_sum_exactly_are_refused(model, key, tmp_path):
    codec = get_codec(model, "image")
    arrays = dict(weightstore.load(codec.path))
    w = arrays[key].copy()
    w[0, 0] = 32767  # fan-in * 32767 * the largest input overflows an int32 sum
    arrays[key] = w
    with pytest.raises(InputError, match="int32"):
        type(codec)(weightstore.save(arrays, tmp_path, codec.weights_prefix, 99)).net
    arrays[key] = arrays[key][:, :-1]  # a missing input column
    with pytest.raises(InputError, match="wrong shape"):
        type(codec)(weightstore.save(arrays, tmp_path, codec.weights_prefix, 98)).net
    arrays[key] = dict(weightstore.load(codec.path))[key]  # the control: the file as shipped loads
    type(codec)(weightstore.save(arrays, tmp_path, codec.weights_prefix, 97)).net


def test_kernels_refuse_pixels_and_values_out_of_range(net):
    stacks = net.stacks(4, 5)
    with pytest.raises(ValueError, match="outside"):
        stacks.predict([4], [0])
    with pytest.raises(ValueError, match="outside"):
        stacks.update([0], [-1], [[0, 0, 0]])
    with pytest.raises(ValueError, match="0..255"):
        stacks.update([0], [0], [[0, 256, 0]])

