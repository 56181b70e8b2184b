"""classic's least-squares mixer with weight sets by parity ("blend": 5, and 6 and today's 7): the encoder's measure
finds chroma that was subsampled 2x2 and interpolated back and nothing in a photo without it;
each chunk's parity byte records the choice, the decoder reads it and refuses any other value;
a chunk coded so decodes exactly, also where a chunk starts at an odd row, and codes smaller
than the same chunk without the split; files of "blend": 4 (no parity byte) still decode."""

import numpy as np
import pytest

from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.models import get_codec, grid_parity
from neuralzip.models import classic_image
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import BLEND_OLS, BLEND_OLS_PARITY, BLEND_PARITY_TAPS

from test_golden import GOLDEN, _rewrite


def _photo(h=320, w=320, subsampled=True, seed=3):
    """A noisy smooth RGB photo; `subsampled`: its colour differences kept at one value per 2x2
    cell and interpolated back (bilinearly, with an offset to the next cell), as a film scan kept
    as subsampled YCC or a 4:2:0 decode."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    luma = 120 + 50 * np.sin(xx / 19) * np.cos(yy / 23) + rng.normal(0, 3, (h, w))
    diffs = np.stack([20 * np.sin((xx + yy) / 31), -15 * np.cos((xx - 2 * yy) / 27)], axis=2)
    diffs += rng.normal(0, 3, (h, w, 2))
    if subsampled:
        cells = diffs.reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
        up = np.repeat(np.repeat(cells, 2, axis=0), 2, axis=1)
        right = np.roll(up, -2, axis=1)  # the next cell across: odd columns lie half-way to it
        up[:, 1::2] = (up[:, 1::2] + right[:, 1::2]) / 2
        down = np.roll(up, -2, axis=0)
        up[1::2] = (up[1::2] + down[1::2]) / 2
        diffs = up
    rgb = np.stack([luma + diffs[..., 0], luma, luma + diffs[..., 1]], axis=2)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def test_the_measure_finds_interpolated_chroma_only():
    plain, subsampled = _photo(subsampled=False), _photo()
    assert grid_parity.parity_gain(plain.astype(np.int64)) < grid_parity.MIN_GAIN / 4
    assert grid_parity.parity_gain(subsampled.astype(np.int64)) > 2 * grid_parity.MIN_GAIN
    assert not grid_parity.splits_by_parity(plain.astype(np.int64))
    assert grid_parity.splits_by_parity(subsampled.astype(np.int64))
    assert grid_parity.parity_gain(subsampled[:20, :20].astype(np.int64)) == 0  # too few pixels to tell
    assert grid_parity.parity_gain(subsampled[..., :1].astype(np.int64)) == 0  # no colour


def _coded(img, monkeypatch=None, split=None):
    codec = get_codec("classic", "image")
    if split is not None:
        monkeypatch.setattr(grid_parity, "splits_by_parity", lambda chunk: split)
    return codec, codec.encode(img, Signal("image", img.shape, 8))


def test_a_parity_chunk_codes_smaller_and_decodes_exactly(monkeypatch):
    """The chunk's bytes lead with its colour byte, then its parity byte (1 here); it decodes
    exactly. Coded with the split forced off (byte 0), the same photo is larger: the split is what
    the byte switches."""
    img = _photo()
    codec, enc = _coded(img)
    assert enc.params["blend"] == BLEND_PARITY_TAPS and enc.chunks[0][1] == 1
    assert np.array_equal(codec.decode(enc.params, enc.chunks, Signal("image", img.shape, 8)), img)
    _, off = _coded(img, monkeypatch, False)
    assert off.chunks[0][1] == 0
    assert len(enc.chunks[0]) < 0.99 * len(off.chunks[0])


def test_a_plain_photo_keeps_the_joint_fits(monkeypatch):
    """Without the structure the byte is 0, and blend 5's stream is blend 4's with that byte added."""
    img = _photo(subsampled=False)
    codec, enc = _coded(img)
    assert enc.params["blend"] == BLEND_PARITY_TAPS and enc.chunks[0][1] == 0
    recorded = classic_image.ClassicImageCodec.blends_recorded
    monkeypatch.setattr(type(codec), "blends_recorded", recorded[:recorded.index(BLEND_OLS_PARITY) + 1])
    parity = codec.encode(img, Signal("image", img.shape, 8))
    monkeypatch.setattr(type(codec), "blends_recorded", recorded[:recorded.index(BLEND_OLS) + 1])
    older = codec.encode(img, Signal("image", img.shape, 8))
    assert parity.params["blend"] == BLEND_OLS_PARITY and parity.chunks[0][1] == 0
    assert older.params["blend"] == BLEND_OLS and older.chunks[0] == parity.chunks[0][:1] + parity.chunks[0][2:]


@pytest.mark.parametrize("byte", [2, 255])
def test_a_parity_byte_other_than_0_or_1_is_refused(byte):
    img = _photo()
    codec, enc = _coded(img)
    chunk = enc.chunks[0][:1] + bytes([byte]) + enc.chunks[0][2:]
    with pytest.raises(ValueError, match="parity byte"):
        codec.decode(enc.params, [chunk], Signal("image", img.shape, 8))


def test_the_other_parity_byte_does_not_decode_the_file():
    """The negative control: the chunk's byte flipped to 0, the file no longer decodes (the range
    decoder refuses it, or the member's checksum does)."""
    data = _ppm(_photo())
    blob = api.compress_bytes(data, "x.ppm", "classic")
    _, [member] = container.loads(blob)
    assert member.chunks[0][1] == 1 and api.decompress_bytes(blob) == [("x.ppm", data)]
    flipped = [member.chunks[0][:1] + b"\x00" + member.chunks[0][2:]]
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, chunks=flipped))


def _ppm(rgb) -> bytes:
    return b"P6 %d %d 255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.tobytes()


def test_a_chunk_missing_its_parity_byte_is_refused():
    img = _photo(32, 32)
    codec, enc = _coded(img)
    assert enc.chunks[0][1] == 0  # too small to split
    with pytest.raises(ValueError, match="parity byte"):
        codec.decode(enc.params, [enc.chunks[0][:1]], Signal("image", img.shape, 8))


def test_chunks_starting_at_odd_rows_decode_exactly(monkeypatch):
    """Chunks of 101 rows (the second starts at an odd row of the image), each with its own parity
    byte: the decoder reads each and restores the photo exactly."""
    img = _photo(202, 960)
    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 101 * 960)
    codec, enc = _coded(img)
    assert enc.params["chunk_pixels"] == 101 * 960 and len(enc.chunks) == 2 and all(c[1] == 1 for c in enc.chunks)
    assert np.array_equal(codec.decode(enc.params, enc.chunks, Signal("image", img.shape, 8)), img)


@pytest.mark.parametrize("name, model", [("older-classic-ols-mixer-image.nz", "classic"),
                                         ("older-local-ls-ols-mixer-image.nz", "local-ls"),
                                         ("older-local-ls-mlp-ols-mixer-image.nz", "local-ls-mlp"),
                                         ("older-context-mlp-ols-mixer-image.nz", "context-mlp"),
                                         ("older-jpeg-coefficients-ols-mixer-image.nz", "jpeg-coefficients")])
def test_older_ols_mixer_file_has_no_parity_byte(name, model):
    """Files of "blend": 4 (before stop 55; jpeg-coefficients' own falls back to classic on a photo
    that is no decoded JPEG) have no parity byte and decode as written; told they are
    "blend": 5 (the negative control), they are refused. Coded again today they record today's
    "blend" and decode."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    assert member.model == model and member.params["blend"] == BLEND_OLS
    [(stored, restored)] = api.decompress_bytes(blob)
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, blend=BLEND_OLS_PARITY)))
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.params["blend"] == BLEND_PARITY_TAPS and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]
