"""The colour table (params "colour_table": 1, models/colour_table.py): where a photo's colours
repeat, channels 1 and 2 are coded with flags "the value is the key's most frequent one", "... the
next one" first.
A photo whose third channel follows from its first two codes it far smaller (negative control:
the same member without the table) and decodes exactly, in every model built on classic; only
with its table byte as written; a photo whose colours do not repeat is left to the model, chunk
for chunk as before; the exact bits per subpixel sum to the coded size; hostile params and
bytes are refused."""

import copy

import numpy as np
import pytest

from neuralzip import api, container
from neuralzip.coding import buckets
from neuralzip.errors import ContainerError
from neuralzip.kernels import colour_table as _k
from neuralzip.models import colour_table, get_codec
from neuralzip.models.base import Signal

from media_factory import image_file, repeating_colours
from test_golden import _rewrite
from test_offset_rows import _photo


def _ppm(img: np.ndarray) -> bytes:
    return b"P6 %d %d 255\n" % (img.shape[1], img.shape[0]) + img.tobytes()


def _without_table(codec):
    """A copy of the codec coding its members as it did before the table (the negative control)."""
    plain = copy.copy(codec)
    plain._params = lambda signal: {k: v for k, v in codec._params(signal).items() if k != "colour_table"}
    return plain


@pytest.mark.parametrize("model", ["classic", "local-ls", "local-ls-mlp", "context-mlp"])
def test_a_photo_whose_colours_repeat_codes_smaller_and_decodes_exactly(model):
    img = repeating_colours(64, 80)
    signal = Signal("image", img.shape, 8)
    codec = get_codec(model, "image")
    member = codec.encode(img, signal)
    assert member.params["colour_table"] == colour_table.FLAGGED
    assert np.array_equal(codec.decode(member.params, member.chunks, signal), img)
    plain = _without_table(codec).encode(img, signal)
    assert "colour_table" not in plain.params
    assert sum(map(len, member.chunks)) < 0.85 * sum(map(len, plain.chunks))
    assert member.nll_bits < 0.85 * plain.nll_bits
    # the networks' float figure counts the flags' change as the exact one does: the two differ by
    # what they differed by without the table (else by the table's whole gain)
    assert member.nll_float_bits - member.nll_bits == pytest.approx(plain.nll_float_bits - plain.nll_bits, abs=1e-3)


def test_the_exact_bits_per_subpixel_sum_to_the_coded_bits():
    img = repeating_colours(48, 56)
    signal = Signal("image", img.shape, 8)
    codec = get_codec("classic", "image")
    per_subpixel = codec.bits_per_dim(img, signal)
    assert per_subpixel.sum() == pytest.approx(codec.encode(img, signal).nll_bits, rel=1e-9)
    without = _without_table(codec).bits_per_dim(img, signal)
    assert np.array_equal(per_subpixel[..., 0], without[..., 0])  # the first channel has no table
    assert per_subpixel[..., 2].sum() < 0.8 * without[..., 2].sum()


def test_the_table_byte_is_the_encoders_choice_and_only_that_decodes():
    img = repeating_colours(64, 80)
    data = _ppm(img)
    blob = api.compress_bytes(data, "x.ppm", "classic")
    _, [member] = container.loads(blob)
    [chunk] = member.chunks
    assert chunk[2] == 1  # after the colour and parity bytes
    assert api.decompress_bytes(blob) == [("x.ppm", data)]
    told_not = _rewrite(blob, chunks=[chunk[:2] + b"\x00" + chunk[3:]])
    with pytest.raises(ContainerError):
        api.decompress_bytes(told_not)
    for byte in (2, 255):
        with pytest.raises(ContainerError):
            api.decompress_bytes(_rewrite(blob, chunks=[chunk[:2] + bytes([byte]) + chunk[3:]]))


@pytest.mark.parametrize("damage", ["flip", "cut", "zeros", "extend"])
def test_a_damaged_table_chunk_is_refused_or_decodes_to_other_pixels(damage):
    """The table's steps decode inside its kernel (decode_step) from the payload: damaged there
    (its CRC made to match, as a hostile file would), the file is refused with the one-line error
    or decodes to other pixels, and every such decode is the same on a second try (no state
    leaks between files); never a crash. (benchmarks/fuzz.py meets it with every other damage.)"""
    img = repeating_colours(64, 80)
    data = _ppm(img)
    blob = api.compress_bytes(data, "x.ppm", "classic")
    _, [member] = container.loads(blob)
    [chunk] = member.chunks
    head, payload = chunk[:3], bytearray(chunk[3:])
    rng = np.random.default_rng(["flip", "cut", "zeros", "extend"].index(damage))
    outcomes = set()
    for _ in range(6):
        p = bytearray(payload)
        if damage == "flip":
            at = int(rng.integers(0, len(p)))
            p[at] ^= 1 << int(rng.integers(0, 8))
        elif damage == "cut":
            p = p[:4 * int(rng.integers(0, len(p) // 4))]
        elif damage == "zeros":
            at = 4 * int(rng.integers(0, len(p) // 4))
            p[at:at + 16] = bytes(len(p[at:at + 16]))
        else:
            p += rng.integers(0, 256, 4 * int(rng.integers(1, 5)), dtype=np.uint8).tobytes()
        hostile = _rewrite(blob, chunks=[head + bytes(p)])
        results = []
        for _ in range(2):
            try:
                results.append(api.decompress_bytes(hostile))
            except ContainerError as e:
                assert "\n" not in str(e)
                results.append("refused")
        assert results[0] == results[1]
        outcomes.add("refused" if results[0] == "refused" else results[0] == [("x.ppm", data)])
    # the damage did something (words past the end are not read: a lengthened payload may decode
    # back to the photo, as it does through constriction)
    assert damage == "extend" or outcomes != {True}


def test_chunks_take_the_table_each_as_its_colours_say_and_decode_exactly(monkeypatch):
    """An image whose upper chunk's colours repeat and whose lower chunk's do not: the chunks' table
    bytes are 1 and 0, each chunk starts a table of its own, and the whole decodes exactly, from
    the member and through the file API."""
    from neuralzip.models import classic_image
    img = np.concatenate([repeating_colours(40, 64), _photo(40, 64)])
    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 40 * 64)
    signal = Signal("image", img.shape, 8)
    codec = get_codec("classic", "image")
    member = codec.encode(img, signal)
    assert [c[2] for c in member.chunks] == [1, 0]  # after the colour and parity bytes
    assert np.array_equal(codec.decode(member.params, member.chunks, signal), img)
    data = _ppm(img)
    assert api.decompress_bytes(api.compress_bytes(data, "x.ppm", "classic")) == [("x.ppm", data)]


def test_a_photo_whose_colours_do_not_repeat_is_coded_as_before():
    """The encoder leaves the table out of such a chunk: the same bytes as without the table's
    param, but for the chunk's table byte 0."""
    img = _photo(64, 80)
    signal = Signal("image", img.shape, 8)
    assert not colour_table.repeats(img.astype(np.int64))
    codec = get_codec("classic", "image")
    member, plain = codec.encode(img, signal), _without_table(codec).encode(img, signal)
    assert [c[:2] + c[3:] for c in member.chunks] == plain.chunks and all(c[2] == 0 for c in member.chunks)
    assert member.nll_bits == plain.nll_bits


def test_the_encoders_measure():
    """repeats counts the pixels whose later channels were their key's most frequent value so far."""
    img = np.zeros((2, 3, 3), np.int64)
    img[..., 0] = 7
    img[..., 1] = [[1, 1, 2], [1, 2, 2]]
    img[..., 2] = [[5, 5, 5], [6, 5, 5]]
    # the second channel under key 7: 1 (new), 1 (hit), 2 (miss), 1 (hit), 2 (miss: 1 leads 3-1),
    # 2 (miss: a tie stays with 1); the third under (7, 1): 5, 5 (hit), 6 (miss); (7, 2): 5, 5 (hit), 5 (hit)
    assert _k.repeats(img) == (2, 3)
    assert colour_table.repeats(img)
    # every value is checked before the count (which runs without the GIL), in any channel
    for c in range(3):
        bad = img.copy()
        bad[1, 2, c] = 256 if c else -1
        with pytest.raises(ValueError, match="outside 0..255"):
            _k.repeats(bad)


@pytest.mark.parametrize("mode", ["L", "LA", "I;16"])
def test_images_without_three_8_bit_channels_have_no_table(mode):
    data = image_file("png", mode, 9, 11)
    _, [member] = container.loads(api.compress_bytes(data, "x.png", "classic"))
    assert "colour_table" not in member.params


def test_an_rgba_photo_codes_its_colours_with_the_table_and_decodes_exactly():
    img = np.dstack([repeating_colours(40, 48), np.full((40, 48), 200, np.uint8)])
    signal = Signal("image", img.shape, 8)
    codec = get_codec("classic", "image")
    member = codec.encode(img, signal)
    assert member.params["colour_table"] == 1 and member.chunks[0][2] == 1
    assert np.array_equal(codec.decode(member.params, member.chunks, signal), img)


@pytest.mark.parametrize("params", [{"colour_table": 2}, {"colour_table": True}, {"colour_table": "1"}])
def test_hostile_params_are_refused(params):
    blob = api.compress_bytes(_ppm(repeating_colours(16, 16)), "x.ppm", "classic")
    _, [member] = container.loads(blob)
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, **params)))


def test_a_grey_image_told_it_has_a_table_is_refused():
    blob = api.compress_bytes(image_file("png", "L", 9, 11), "x.png", "classic")
    _, [member] = container.loads(blob)
    with pytest.raises(ContainerError, match="colour_table"):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, colour_table=1)))


def test_the_table_keeps_each_keys_two_most_frequent_values():
    """The third channel's values 5, 6, 6, 9, 9, 9, 5 at one key (R 7, G 0): 9 leads (3), then 6,
    which reached 2 before 5 did."""
    table = _k.ColourTable()
    img = np.zeros((1, 7, 3), np.int64)
    img[0, :, 0] = 7
    img[0, :, 2] = [5, 6, 6, 9, 9, 9, 5]
    no_flags = np.full((_k.CANDIDATES, 7), -1, np.int64)
    _k.learn(table, img, 2, np.zeros(7, np.int64), np.arange(7, dtype=np.int64), no_flags, np.zeros_like(no_flags))
    key = 256 + 7 * 256 + 0
    assert list(table.top[key]) == [9, 6] and table.totals[key] == 7 and table.count(key, 5) == 2
    # the key's counts took the table's first row; a key never met has none and counts nothing
    assert table.row_of[key] == 0 and table.row_of[key + 1] == -1 and table.count(key + 1, 5) == 0
    assert list(table.counts[0, [5, 6, 9]]) == [2, 2, 3]


def test_low_bits_skip_the_excluded_candidates_both_ways():
    """In a bucket of 8 values whose low bits 2 and 5 are two missed candidates, the other six are
    indices 0..5, and the decoder's mapping undoes the encoder's (with one candidate excluded, seven)."""
    sym_bucket = 32
    assert buckets.low_bits_of_bucket(sym_bucket) == 3
    for excluded_ranks, others in ((3, [0, 1, 3, 4, 6, 7]), (1, [0, 1, 3, 4, 5, 6, 7])):
        n = len(others)
        inner = np.arange(n, dtype=np.int64)
        sym = np.full(n, sym_bucket, np.int32)
        excluded = np.full(n, excluded_ranks, np.int64)
        sym_m = np.full((2, n), sym_bucket, np.int64)
        low_m = np.array([[2] * n, [5] * n], np.int64)
        index = np.empty(n, np.int64)
        _k.inner_index(inner, sym, np.array(others, np.int64), excluded, sym_m, low_m, index)
        assert list(index) == list(range(n))
        back = np.empty(n, np.int64)
        _k.inner_low(inner, sym, index, excluded, sym_m, low_m, back)
        assert list(back) == others
