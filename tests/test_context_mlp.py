"""The context-mlp image model: exact roundtrips for every mode and odd shape, its
exact integer pieces, and honest likelihood figures."""

import numpy as np
import pytest

from media_factory import image_file
from neuralzip import api, container
from neuralzip.exact import logistic
from neuralzip.media.detect import read_media
from neuralzip.models import get_codec
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import ClassicImageCodec
from test_images import assert_same_image, roundtrip

NETWORK_MODES = ("L", "LA", "P", "RGB", "RGBA")  # 8-bit: coded with the network
COUNTS_MODES = ("1", "I;16", "LA16", "RGB16", "RGBA16")  # other depths: the adaptive counts alone
SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 301), (67, 31), (1, 3001), (2003, 1)]


@pytest.mark.parametrize("mode", NETWORK_MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_roundtrip_every_8bit_mode_and_odd_shape(mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


@pytest.mark.parametrize("mode", COUNTS_MODES)
@pytest.mark.parametrize("shape", [(1, 1), (13, 7)])
def test_roundtrip_other_depths(mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


def test_tile_and_chunk_boundaries_are_exact():
    data = image_file("png", "RGB", 150, 1100)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


def test_bucket_masses_partition_the_valid_values():
    """Every valid value's mass lies in exactly one bucket and nothing is lost at the edges."""
    tables = logistic.tables()
    bounds, spans = logistic.bucket_intervals(48)
    row = np.zeros(48, np.int64)
    cj = np.zeros(len(bounds), np.int64)
    for pred in (0, 1, 17, 128, 254, 255):
        head = np.array([37, -5, 80, 10, 50, 140, 0, 3, -20], np.int64)  # 3 components
        total = logistic.mixture_row(pred, 255, head, 3, tables["lut.cdf"], tables["lut.inv"], tables["lut.exp"],
                                     bounds, spans, cj, row)
        assert row.min() >= 0 and row.sum() == total
        for b in range(48):  # buckets holding no valid value get nothing
            vals = [r for r in range(-pred, 256 - pred)
                    if bounds[spans[b, 0]] <= r < bounds[spans[b, 1]] or bounds[spans[b, 2]] <= r < bounds[spans[b, 3]]]
            if not vals:
                assert row[b] == 0


def test_report_shows_float_and_exact_likelihood_and_coded_size_is_close(tmp_path):
    """On a real photo the coded size is within 1% of the exact model's likelihood and the
    float model's likelihood is reported apart (quantization cost small but not zero)."""
    data = open("examples/swallowtail.png", "rb").read()
    media = read_media(data)
    codec = get_codec("context-mlp", "image")
    enc = codec.encode(media.samples, Signal("image", media.samples.shape, 8))
    coded_bits = 8 * sum(len(c) for c in enc.chunks)
    assert enc.nll_bits <= coded_bits <= 1.01 * enc.nll_bits
    assert enc.nll_float_bits != enc.nll_bits
    assert abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.02
    # and the network earns its place over the counts on the blend it reads, classic's
    classic = ClassicImageCodec().likelihood(media.samples, Signal("image", media.samples.shape, 8))[1]
    assert enc.nll_bits < classic


def _with_trained_weight(model: str, mix_w: int, tmp_path):
    """The model with its shipped network but a trained weight against the counts of mix_w/16."""
    codec = get_codec(model, "image")
    z = dict(np.load(codec.weights.path))
    path = tmp_path / f"{model}-mix{mix_w}.npz"
    np.savez(path, **dict(z, mix_w=np.array(mix_w)))
    return codec.with_weights(path)


def _fixed(codec):
    """The same model and weights, writing files whose network weight stays the trained one (no "mix")."""
    class Fixed(type(codec)):
        def _recorded(self, signal):
            return {k: v for k, v in super()._recorded(signal).items() if k != "mix"}

    return Fixed(codec.weights.path)


@pytest.mark.parametrize("model", ["context-mlp", "local-ls-mlp"])
@pytest.mark.parametrize("mix_w", [0, 16])
def test_the_learned_weight_recovers_from_a_wrong_trained_one(model, mix_w, tmp_path):
    """The network's weight against the counts, learned per channel and class as the photo is
    coded ("mix": 2), moves away from a trained weight that is wrong for the photo: counts alone
    (0/16) or the network alone (16/16). Kept fixed (the control), the same weight codes larger.
    Both roundtrip exactly."""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    crop = np.ascontiguousarray(media.samples[:96, :128])
    sig = Signal("image", crop.shape, 8)
    learned = _with_trained_weight(model, mix_w, tmp_path)
    fixed = _fixed(learned)
    assert learned._recorded(sig)["mix"] == 2 and "mix" not in fixed._recorded(sig)
    bits_learned, bits_fixed = learned.likelihood(crop, sig)[1], fixed.likelihood(crop, sig)[1]
    assert bits_learned < 0.995 * bits_fixed
    for codec in (learned, fixed):
        enc = codec.encode(crop, sig)
        assert np.array_equal(codec.decode(enc.params, enc.chunks, sig), crop)


def test_context_mlp_is_chosen_by_name_and_recorded():
    blob = api.compress_bytes(image_file("png", "RGB", 9, 11), "x.png", "context-mlp")
    _, [member] = container.loads(blob)
    assert member.model == "context-mlp" and member.weights == get_codec("context-mlp", "image").weights_hash
