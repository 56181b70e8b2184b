"""The fixed-point log2 the encoder's choices rest on (neuralzip/exact/log2.py): close to the true
log2, never above it, exact at powers of two, and the same table on every machine (built with
correctly rounded decimal arithmetic; a few entries checked against values worked out by hand)."""

import math

import numpy as np
import pytest

from neuralzip.exact import log2
from neuralzip.exact.log2 import FRACTION_BITS, MANTISSA_BITS, log2_fixed


def test_log2_fixed_is_within_its_truncation_of_the_true_log2():
    rng = np.random.default_rng(0)
    m = np.concatenate([np.arange(1, 5000), rng.integers(1, 1 << 51, 20000)])
    err = np.array([math.log2(v) for v in m.tolist()]) - log2_fixed(m) / (1 << FRACTION_BITS)
    bound = 2.0 ** -MANTISSA_BITS / math.log(2) + 2.0 ** -FRACTION_BITS  # the mantissa's truncation, the table's rounding
    assert err.max() <= bound and err.min() >= -2.0 ** -FRACTION_BITS
    # without truncation (m below 2**MANTISSA_BITS) only the table's rounding is left
    small = m < 1 << MANTISSA_BITS
    assert np.abs(err[small]).max() <= 2.0 ** -(FRACTION_BITS + 1) + 1e-12


def test_log2_fixed_is_exact_at_powers_of_two_and_monotone():
    powers = np.int64(1) << np.arange(52)
    assert np.array_equal(log2_fixed(powers), np.arange(52) << FRACTION_BITS)
    m = np.arange(1, 1 << 16)
    assert np.all(np.diff(log2_fixed(m)) >= 0)


def test_the_table_holds_the_rounded_logarithms():
    table = log2._fraction_table()
    assert table.shape == (1 << MANTISSA_BITS,) and table[0] == 0
    # log2(1.5) = 0.5849625007..., log2(1.25) = 0.3219280948..., in 1/65536: 38336.1..., 21098.0...
    assert table[1 << (MANTISSA_BITS - 1)] == 38336 and table[1 << (MANTISSA_BITS - 2)] == 21098


@pytest.mark.parametrize("bad", [0, -3, 1 << 52])
def test_log2_fixed_refuses_what_it_cannot_take(bad):
    with pytest.raises(ValueError, match="log2_fixed"):
        log2_fixed(np.array([5, bad]))
