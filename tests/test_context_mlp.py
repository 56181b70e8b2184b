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
    # and the network earns its place over the counts on the blend it reads: classic's integer blend
    # (today's classic, with the least-squares mixer, is smaller than context-mlp on this photo)
    classic = _ClassicIntegerBlend().likelihood(media.samples, Signal("image", media.samples.shape, 8))[1]
    assert enc.nll_bits < classic


class _ClassicIntegerBlend(ClassicImageCodec):
    """classic as context-mlp's network reads it: the blend in whole units, no online mixer."""
    blends_recorded = ()


def test_context_mlp_is_chosen_by_name_and_recorded():
    blob = api.compress_bytes(image_file("png", "RGB", 9, 11), "x.png", "context-mlp")
    _, [member] = container.loads(blob)
    assert member.model == "context-mlp" and member.weights == get_codec("context-mlp", "image").weights_hash
