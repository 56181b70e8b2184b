"""The cost coder's information content (kernels/coding.pyx's `information`): the sum of -log2 p of
each symbol under its row of counts, as numpy's symbol_bits gives it, for contiguous and strided
rows; a symbol outside its row is refused."""

import numpy as np
import pytest

from neuralzip.coding.stream import CostCoder, symbol_bits
from neuralzip.kernels.coding import information


def test_the_sum_is_numpys_to_rounding():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5000, (300, 48)).astype(np.float64)
    counts[np.arange(300), rng.integers(0, 48, 300)] += 1  # no row all zero
    symbols = np.array([rng.choice(np.flatnonzero(r)) for r in counts], np.int32)
    want = float(np.sum(symbol_bits(symbols, counts)))
    assert information(symbols, counts) == pytest.approx(want, rel=1e-12)
    # rows taken every other one (a strided view) and through the cost coder
    assert information(symbols[::2].copy(), counts[::2]) == pytest.approx(float(np.sum(symbol_bits(
        symbols[::2], counts[::2]))), rel=1e-12)
    coder = CostCoder()
    coder.symbols(symbols, counts)
    assert coder.bits == pytest.approx(want, rel=1e-12)
    # negative control: other symbols cost other bits
    assert information((symbols + 1) % 48, counts) != pytest.approx(want, rel=1e-6)


def test_a_symbol_outside_its_row_is_refused():
    counts = np.ones((2, 4))
    for bad in ([0, 4], [-1, 0]):
        with pytest.raises(ValueError, match="outside its row"):
            information(np.array(bad, np.int32), counts)
    with pytest.raises(ValueError, match="fewer count rows"):
        information(np.zeros(3, np.int32), counts)
