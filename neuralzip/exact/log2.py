"""log2 of positive integers in fixed point, the same on every machine.

For an encoder's choices that must not depend on the machine (numpy's float log2 may differ in its
last digit between CPUs and builds, which could flip a close choice and so change the file's bytes):
the integer part is the bit length, the fraction a table lookup on the next MANTISSA_BITS bits,
built with Python's decimal arithmetic, whose logarithm is correctly rounded. Truncating the
mantissa errs by less than 2**-MANTISSA_BITS / ln 2 bits, downward (up to the table's rounding).

>>> import numpy as np
>>> log2_fixed(np.array([1, 2, 3, 1 << 40])) / (1 << FRACTION_BITS)
array([ 0.        ,  1.        ,  1.58496094, 40.        ])
"""

import functools

import numpy as np

FRACTION_BITS = 16  # the result in 1/2**FRACTION_BITS bits
MANTISSA_BITS = 12  # the table's resolution: the bits after the leading one
MAX_INPUT_BITS = 52  # below 2**52, so that frexp on a float64 is exact


@functools.cache
def _fraction_table() -> np.ndarray:
    """round(2**FRACTION_BITS * log2(1 + i / 2**MANTISSA_BITS)), i = 0 .. 2**MANTISSA_BITS - 1."""
    import decimal

    ctx = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
    ln2 = ctx.ln(decimal.Decimal(2))
    one = 1 << MANTISSA_BITS
    return np.array([int(ctx.multiply(ctx.divide(ctx.ln(decimal.Decimal(one + i) / one), ln2), 1 << FRACTION_BITS)
                         .to_integral_value(rounding=decimal.ROUND_HALF_EVEN, context=ctx)) for i in range(one)],
                    np.int64)


def log2_fixed(m: np.ndarray) -> np.ndarray:
    """log2(m) in 1/2**FRACTION_BITS bits (int64) of integers 1 <= m < 2**MAX_INPUT_BITS, the
    mantissa truncated to MANTISSA_BITS bits."""
    m = np.asarray(m, np.int64)
    if m.size and (m.min() < 1 or m.max() >= 1 << MAX_INPUT_BITS):
        raise ValueError(f"log2_fixed takes integers 1 .. 2**{MAX_INPUT_BITS} - 1")
    exponent = np.frexp(m.astype(np.float64))[1].astype(np.int64) - 1  # exact: the bit length - 1
    shift = exponent - MANTISSA_BITS
    top = np.where(shift >= 0, m >> np.maximum(shift, 0), m << np.maximum(-shift, 0))  # MANTISSA_BITS + 1 bits
    return (exponent << FRACTION_BITS) + _fraction_table()[top - (1 << MANTISSA_BITS)]
