"""The kernels' range encoder (neuralzip/kernels/range_encoder.pxd, through KernelRangeEncoder and
coding/stream.py's RangeEncoderStream) against constriction's RangeEncoder: the same words for
the same symbols under the same rows, low-bit fields, uniform values and shared rows, one at a
time and interleaved, through carries held back mid-stream and at the end; its tally against the
cost coder's; what it refuses. And the colour table's steps coded inside its kernel against the
same steps coded through Python calls."""

import constriction
import numpy as np
import pytest

from neuralzip import api
from neuralzip.coding.stream import CostCoder, RangeEncoderStream, TeeCoder, split_pieces
from neuralzip.kernels.coding import KernelRangeEncoder, information, uniform_information
from neuralzip.media.detect import read_media
from neuralzip.models import base

from media_factory import image_file, png_bytes, repeating_colours
from test_range_decoder import random_rows as decoder_rows

CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
UNIFORM = constriction.stream.model.Uniform()


def random_rows(rng, n, width):
    """test_range_decoder's rows, more of them dominated by one symbol (which narrows the interval
    little and makes carries likely)."""
    return decoder_rows(rng, n, width, peaked_share=0.3, peak=2.0 ** 40)


def low_bit_fields(rng, n):
    nbits = rng.integers(0, 61, n).astype(np.int64)
    return np.array([int(rng.integers(0, 2 ** int(b))) if b else 0 for b in nbits], np.int64), nbits


def constriction_words(batches) -> bytes:
    """What constriction's RangeEncoder writes for ("rows", symbols, rows), ("low", values, nbits),
    ("uniform", values, sizes) and ("iid", symbols, counts) batches, in order."""
    enc = constriction.stream.queue.RangeEncoder()
    for kind, values, model in batches:
        if kind == "low":
            values, model, _, _ = split_pieces(values, model, True)
            kind = "uniform"
        if len(values) == 0:
            continue
        if kind == "rows":
            enc.encode(values, CATEGORICAL, model)
        elif kind == "uniform":
            enc.encode(np.asarray(values, np.int32), UNIFORM, np.asarray(model, np.int32))
        else:
            enc.encode(values, constriction.stream.model.Categorical(model, perfect=False))
    return enc.get_compressed().tobytes()


def kernel_words(batches, coder=None) -> bytes:
    coder = RangeEncoderStream() if coder is None else coder
    for kind, values, model in batches:
        {"rows": coder.symbols, "low": coder.low_bits, "uniform": coder.uniform, "iid": coder.symbols_iid}[kind](
            values, model)
    return coder.finish()


@pytest.mark.parametrize("n,width", [(0, 3), (1, 2), (2, 3), (7, 40), (300, 2), (5000, 25), (20000, 58)])
def test_writes_constriction_words_for_rows(n, width):
    rng = np.random.default_rng(n * 7 + width)
    rows = random_rows(rng, n, width)
    batch = [("rows", rng.integers(0, width, n).astype(np.int32), rows)]
    assert kernel_words(batch) == constriction_words(batch)


def test_carries_mid_stream_and_at_the_end():
    """Streams that end with words held back (the interval wrapping 2^64 when sealed) and streams
    where held words were settled mid-way: the tests above could miss both; these must meet them."""
    rng = np.random.default_rng(11)
    held_at_end = settled = 0
    for _ in range(300):
        n, width = int(rng.integers(1, 200)), int(rng.integers(2, 30))
        rows = random_rows(rng, n, width)
        symbols = rng.integers(0, width, n).astype(np.int32)
        enc = KernelRangeEncoder()
        was_held = False
        for i in range(n):  # a symbol at a time, to see the held words come and go
            enc.symbols(symbols[i:i + 1], rows[i:i + 1])
            settled += was_held and enc.held_words == 0
            was_held = enc.held_words > 0
        held_at_end += enc.held_words > 0
        assert enc.finish() == constriction_words([("rows", symbols, rows)])
    assert held_at_end >= 5 and settled >= 5


@pytest.mark.parametrize("seed", range(4))
def test_writes_constriction_words_for_every_kind_interleaved(seed):
    rng = np.random.default_rng(40 + seed)
    batches = []
    for _ in range(40):
        kind, n = ("rows", "low", "uniform", "iid")[int(rng.integers(0, 4))], int(rng.integers(0, 60))
        if kind == "rows":
            width = int(rng.integers(2, 40))
            batches.append((kind, rng.integers(0, width, n).astype(np.int32), random_rows(rng, n, width)))
        elif kind == "low":
            batches.append((kind, *low_bit_fields(rng, n)))
        elif kind == "uniform":
            sizes = rng.integers(2, 2 ** 16 + 1, n).astype(np.int32)
            batches.append((kind, (rng.random(n) * sizes).astype(np.int64), sizes))
        else:
            width = int(rng.integers(2, 300))
            batches.append((kind, rng.integers(0, width, n).astype(np.int32), random_rows(rng, 1, width)[0]))
    assert kernel_words(batches) == constriction_words(batches)


def test_a_changed_symbol_changes_the_words():
    """Negative control: the comparisons above can fail."""
    rng = np.random.default_rng(5)
    rows = random_rows(rng, 500, 12)
    symbols = rng.integers(0, 12, 500).astype(np.int32)
    other = symbols.copy()
    other[250] = (other[250] + 1) % 12
    assert kernel_words([("rows", other, rows)]) != constriction_words([("rows", symbols, rows)])


def test_tally_is_the_cost_coders():
    """TeeCoder's bits (the encoder's tally) equal CostCoder's for the same calls, to the last bit."""
    rng = np.random.default_rng(9)
    tee, cost = TeeCoder(), CostCoder()
    for _ in range(30):
        rows = random_rows(rng, 40, 9) + 1  # (no zero counts: every symbol's bits finite)
        symbols = rng.integers(0, 9, 40).astype(np.int32)
        values, nbits = low_bit_fields(rng, 20)
        sizes = rng.integers(2, 5000, 15).astype(np.int32)
        index = (rng.random(15) * sizes).astype(np.int64)
        for coder in (tee, cost):
            coder.symbols(symbols, rows)
            coder.low_bits(values, nbits)
            coder.uniform(index, sizes)
            coder.symbols_iid(symbols, rows[0])
    assert tee.bits == cost.bits and 0 < tee.bits < np.inf
    assert information(symbols, rows) > 0 and uniform_information(sizes) > 0


@pytest.mark.parametrize("call", [
    lambda e: e.symbols(np.array([3], np.int32), np.ones((1, 3))),  # symbol outside its row
    lambda e: e.symbols(np.array([0], np.int32), np.array([[-1.0, 2.0]])),
    lambda e: e.symbols(np.array([0], np.int32), np.array([[np.nan, 2.0]])),
    lambda e: e.symbols(np.array([0], np.int32), np.zeros((1, 2))),
    lambda e: e.symbols(np.array([0], np.int32), np.ones((1, 1))),  # a row of one count
    lambda e: e.symbols(np.array([0, 1], np.int32), np.ones((1, 2))),  # too few rows
    lambda e: e.low_bits(np.array([1], np.int64), np.array([61], np.int64)),
    lambda e: e.uniform(np.array([5], np.int64), np.array([5], np.int32)),
    lambda e: e.uniform(np.array([0], np.int64), np.array([1], np.int32)),
    lambda e: e.uniform(np.array([0], np.int64), np.array([2 ** 16 + 1], np.int32)),
])
def test_refuses_what_constriction_refuses(call):
    with pytest.raises(ValueError):
        call(KernelRangeEncoder())


def test_finish_seals_once():
    enc = KernelRangeEncoder()
    assert enc.finish() == b""  # no symbols, no words (as constriction)
    enc = KernelRangeEncoder()
    enc.symbols(np.array([1], np.int32), np.ones((1, 2)))
    words = enc.finish()
    assert enc.finish() == words and len(words) % 4 == 0 and words
    with pytest.raises(ValueError, match="finished"):
        enc.symbols(np.array([1], np.int32), np.ones((1, 2)))


class PythonCalls:
    """A coder without `kernel`: classic and the colour table then code each step through Python
    calls (counted)."""

    calls = 0

    def __init__(self):
        self._coder = TeeCoder()
        for name in ("low_bits", "uniform", "symbols_iid", "finish"):
            setattr(self, name, getattr(self._coder, name))

    def symbols(self, symbols, counts):
        PythonCalls.calls += 1
        self._coder.symbols(symbols, counts)

    @property
    def bits(self):
        return self._coder.bits


class CountedTee(TeeCoder):
    calls = 0

    def symbols(self, symbols, counts):
        CountedTee.calls += 1
        super().symbols(symbols, counts)


@pytest.mark.parametrize("case", ["repeating colours", "RGB", "L", "RGBA16"])
def test_steps_coded_in_the_kernels_as_through_python(case):
    """classic's residual_symbols and the colour table's encode_step coding a step into the encoder
    themselves write the same chunk bytes, and tally the same bits, as the coder's Python calls; a
    photo whose colours repeat has the table code its later channels."""
    if case == "repeating colours":
        data = png_bytes(repeating_colours(48, 64), "RGB")
    else:
        data = image_file("png", case, 37, 53)
    media = read_media(data)
    PythonCalls.calls = CountedTee.calls = 0
    try:  # (a whole image is coded through the RunCodec's coder: models/base.py's)
        base.TeeCoder = CountedTee
        kernel = api.encode_media(media, "x.png", model="classic")
        base.TeeCoder = PythonCalls
        python = api.encode_media(media, "x.png", model="classic")
    finally:
        base.TeeCoder = TeeCoder
    if case == "repeating colours":
        assert kernel.params["colour_table"] == 1 and kernel.chunks[0][2] == 1  # the table codes the chunk
    assert CountedTee.calls == 0 and PythonCalls.calls > 0  # every step coded by the kernels, or by Python
    assert python.chunks == kernel.chunks and python.stats == kernel.stats
    assert np.array_equal(api.decode_member(kernel).samples, media.samples)
