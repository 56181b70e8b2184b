"""classic's parity taps ("blend": 7): in a chunk whose parity byte splits the least-squares mixer's
sets, the later channels' mixer also reads the colour difference at N_PARITY_TAPS more neighbours.
A film-scan-like photo codes smaller with them, its first channel exactly as without; a chunk that
does not split codes the very same bits; a photo that splits decodes exactly, and only as
"blend": 7; files of "blend": 5 and 6, and 7 without the colour table, of small images are the
same chunks under today's params (and a colour-table byte)."""

import numpy as np
import pytest

from neuralzip import api, container
from neuralzip.coding.stream import CostCoder
from neuralzip.kernels import classic_image as _k
from neuralzip.models import classic_image, grid_parity
from neuralzip.models.classic_image import BLEND_OFFSET_ROWS, BLEND_OLS_PARITY, BLEND_PARITY_TAPS, ClassicImageCodec

from test_golden import GOLDEN
from test_offset_rows import assert_decodes_only_as_today

YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _film_scan(h: int, w: int, seed: int = 2) -> np.ndarray:
    """Textured colour whose chroma is kept at one value per 2x2 cell and brought back 3/4 from the
    near cell and 1/4 from the far one, as a scan kept as subsampled YCC is."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([120 + 70 * np.sin(xx / 7 + yy / 19), 110 + 60 * np.cos(yy / 5 - xx / 23),
                    100 + 50 * np.sin((xx + yy) / 9)], axis=2) + rng.normal(0, 4, (h, w, 3))
    ycc = rgb @ YCC.T
    for k in (1, 2):
        low = ycc[:, :, k].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        ycc[:, :, k] = _near_far(_near_far(low, 0), 1)
    return np.clip(np.rint(ycc @ np.linalg.inv(YCC).T), 0, 255).astype(np.uint8)


def _near_far(a: np.ndarray, axis: int) -> np.ndarray:
    a = np.moveaxis(a, axis, 0)
    before, after = np.concatenate([a[:1], a[:-1]]), np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:])
    out[0::2], out[1::2] = 0.75 * a + 0.25 * before, 0.75 * a + 0.25 * after
    return np.moveaxis(out, 0, axis)


def _bits(img, parity, parity_taps):
    """The exact model's bits per channel of one chunk."""
    per_channel = np.zeros(img.shape[2])

    def observe(c, sy, sx, classes, sym, rows, nlow):
        r = np.asarray(rows)
        per_channel[c] += float(np.sum(-np.log2(r[np.arange(len(sym)), sym] / r.sum(axis=1)) + nlow))

    classic_image._code_chunk(img.astype(np.int64), 8, CostCoder(), None, img.shape[0], img.shape[1],
                              ClassicImageCodec().prior, observe=observe, fine=True, mixer=_k.MIXER_OLS,
                              parity=parity, offset_rows=True, parity_taps=parity_taps)
    return per_channel


def test_the_taps_make_a_film_scan_smaller_and_leave_the_first_channel_alone():
    img = _film_scan(96, 128)
    with_taps, without = _bits(img, True, True), _bits(img, True, False)
    assert with_taps[0] == without[0]
    assert with_taps[1:].sum() < 0.99 * without[1:].sum()  # the negative control: without them, larger


def test_a_chunk_that_does_not_split_codes_the_same_bits():
    img = _film_scan(64, 80)
    assert np.array_equal(_bits(img, False, True), _bits(img, False, False))


def test_a_photo_coded_with_the_taps_decodes_exactly_and_only_so():
    """The photo is large enough for the encoder's measure to split it; told it is "blend": 6
    (the negative control), the file is refused."""
    img = _film_scan(300, 300)
    assert grid_parity.splits_by_parity(img.astype(np.int64))
    assert_decodes_only_as_today(img, BLEND_OFFSET_ROWS)


@pytest.mark.parametrize("model", ["classic", "local-ls", "local-ls-mlp", "context-mlp", "jpeg-coefficients"])
@pytest.mark.parametrize("kind, blend", [("parity-byte", BLEND_OLS_PARITY), ("offset-rows", BLEND_OFFSET_ROWS),
                                         ("parity-taps", BLEND_PARITY_TAPS)])
def test_older_small_image_file_decodes_and_codes_alike(model, kind, blend):
    """Files of "blend": 5 (stop 55), 6 (stop 56) and 7 without the colour table (stop 57;
    jpeg-coefficients' own fall back to classic on a photo that is no decoded JPEG) decode as
    written. Their 24x32 image is far too small for four count rows per class
    (OFFSET_ROWS_MIN_PIXELS) or the parity split, and its colours do not repeat, so coded again
    today it records "blend": 7 and "colour_table": 1 and the very same chunks but for each chunk's
    colour-table byte, 0, after its parity byte."""
    blob = (GOLDEN / f"older-{model}-{kind}-image.nz").read_bytes()
    _, [member] = container.loads(blob)
    assert member.model == model and member.params["blend"] == blend and "colour_table" not in member.params
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.params == dict(member.params, blend=BLEND_PARITY_TAPS, colour_table=1)
    assert again.chunks == [c[:2] + b"\x00" + c[2:] for c in member.chunks]
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]
