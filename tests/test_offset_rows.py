"""classic's count rows by offset ("blend": 6): in chunks of at least OFFSET_ROWS_MIN_PIXELS pixels
each activity class has four count rows, chosen by whether the fine prediction lies at least
OFFSET_HALF/16 of a level from the value it rounds to and whether the texture is flat. Every value
is coded with one of its class's rows, all four are used on a photo, the photo codes smaller than
with one row per class and decodes exactly, and not as "blend": 5; a smaller chunk keeps one row
per class, so files of "blend": 5 of small images are the same chunks under today's params
(test_parity_taps.py)."""

import numpy as np
import pytest

from neuralzip import api, container
from neuralzip.coding.stream import CostCoder
from neuralzip.errors import ContainerError
from neuralzip.kernels import classic_image as _k
from neuralzip.models import classic_image
from neuralzip.models.classic_image import (BLEND_OLS_PARITY, BLEND_PARITY_TAPS, OFFSET_ROWS_MIN_PIXELS,
                                            ClassicImageCodec)

from test_golden import _rewrite


def _photo(h=256, w=272, seed=5):
    """Smooth colour gradients with noise well below a level: a value is then likely the one its
    prediction rounds to, or two values about equally, as the prediction lies near one or half-way."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 110 + 60 * np.sin(xx / 23) * np.cos(yy / 17)
    rgb = np.stack([base + 20 * np.cos(yy / 11), base, base - 25 * np.sin(xx / 13)], axis=2)
    return np.clip(np.rint(rgb + rng.normal(0, 0.4, rgb.shape)), 0, 255).astype(np.uint8)


def _rows_used(img, offset_rows):
    """(activity class, count row) of every coded value, and the exact model's bits."""
    seen = []

    def model_rows(view):
        seen.append((view.classes[:view.n].copy(), np.asarray(view.buffers.crows)[:view.n].copy()))
        return view.rows[:view.n]

    coder = CostCoder()
    classic_image._code_chunk(img.astype(np.int64), 8, coder, None, img.shape[0], img.shape[1],
                              ClassicImageCodec().prior, model_rows=model_rows, fine=True, mixer=_k.MIXER_OLS,
                              offset_rows=offset_rows)
    classes, rows = (np.concatenate(v) for v in zip(*seen))
    return classes, rows, coder.bits


def test_each_value_is_coded_with_one_of_its_classes_rows():
    img = _photo()
    assert img.shape[0] * img.shape[1] >= OFFSET_ROWS_MIN_PIXELS
    classes, rows, bits = _rows_used(img, True)
    assert len(rows) == img.size
    assert np.array_equal(rows // _k.OFFSET_ROWS, classes)
    assert set(np.unique(rows % _k.OFFSET_ROWS)) == set(range(_k.OFFSET_ROWS))  # every kind of row in use
    # the negative control: without the split each value takes its class's one row
    classes1, rows1, bits1 = _rows_used(img, False)
    assert np.array_equal(rows1, classes1)
    assert bits < 0.995 * bits1


def test_a_smaller_chunk_keeps_one_row_per_class():
    img = _photo(128, 200)
    assert img.shape[0] * img.shape[1] < OFFSET_ROWS_MIN_PIXELS
    classes, rows, bits = _rows_used(img, True)
    assert np.array_equal(rows, classes) and bits == _rows_used(img, False)[2]


def assert_decodes_only_as_today(img: np.ndarray, earlier: int) -> None:
    """The photo, coded by classic, records today's blend and decodes exactly; told it is the
    earlier blend (the negative control), the file is refused."""
    data = b"P6 %d %d 255\n" % (img.shape[1], img.shape[0]) + img.tobytes()
    blob = api.compress_bytes(data, "x.ppm", "classic")
    _, [member] = container.loads(blob)
    assert member.params["blend"] == BLEND_PARITY_TAPS
    assert api.decompress_bytes(blob) == [("x.ppm", data)]
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, blend=earlier)))


def test_a_photo_coded_with_offset_rows_decodes_exactly_and_only_so():
    """Told it is "blend": 5 (the negative control), the file is refused."""
    assert_decodes_only_as_today(_photo(257, 259), BLEND_OLS_PARITY)


def test_the_rows_need_the_fine_blend():
    img = np.zeros((4, 4, 3), np.int64)
    with pytest.raises(ValueError, match="fine blend"):
        classic_image._ChunkState(img, 8, None, 4, 4, offset_rows=True)
