"""Large alphabets as a bucket symbol plus raw low bits (the Python face of the
compiled primitives in neuralzip/kernels/primitives.pxd, which says how a value is split).

Small values, which dominate, get a bucket each; larger ones share a bucket per
bit length and leading bits, and carry the rest as uniform low bits. So the
modelled alphabet stays small (a few dozen buckets even for 32-bit audio).
"""

import numpy as np

from neuralzip.kernels import coding as _k

EXACT = 32  # values below this get their own bucket (2**EXACT_BITS)
EXACT_BITS = 5
MANTISSA = 2

low_bits_of_bucket = _k.bucket_low_bits  # (bucket) -> number of low bits
value_of = _k.bucket_value  # (bucket, low bits) -> value


def alphabet_size(max_value: int) -> int:
    """Number of buckets needed for values 0..max_value."""
    if max_value < EXACT:
        return EXACT
    n = int(max_value).bit_length()
    return EXACT + (n - EXACT_BITS) * (1 << MANTISSA)


def buckets_of(values: np.ndarray):
    """-> (bucket symbols int32, low-bit counts, low-bit values) of non-negative values."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    sym = np.empty(len(values), np.int32)
    nlow = np.empty(len(values), np.int64)
    low = np.empty(len(values), np.int64)
    _k.buckets_of(values, sym, nlow, low)
    return sym, nlow, low


def low_bit_counts(sym: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """How many low bits follow each bucket symbol (into `out` if given)."""
    sym = np.ascontiguousarray(sym, dtype=np.int32)
    if out is None:
        out = np.empty(len(sym), np.int64)
    _k.low_bit_counts(sym, out[:len(sym)])
    return out


def values_of(sym: np.ndarray, decoder) -> np.ndarray:
    """Decode the low bits that belong to `sym` and rebuild the values."""
    sym = np.ascontiguousarray(sym, dtype=np.int32)
    return values_with_low(sym, decoder.low_bits(low_bit_counts(sym)))


def values_with_low(sym: np.ndarray, low: np.ndarray) -> np.ndarray:
    """The values of buckets `sym` with their low bits `low` (decoded by whatever model coded them)."""
    out = np.empty(len(sym), np.int64)
    _k.values_of(np.ascontiguousarray(sym, dtype=np.int32), np.ascontiguousarray(low, dtype=np.int64), out)
    return out


def zigzag_array(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    return np.where(x >= 0, 2 * x, -2 * x - 1)


def unzigzag_array(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int64)
    return np.where(u & 1, -((u + 1) >> 1), u >> 1)
