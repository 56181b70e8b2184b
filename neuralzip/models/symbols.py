"""Vectorised bucket/zigzag helpers for whole arrays of values."""

import numba as nb
import numpy as np

from neuralzip.coding import buckets


@nb.njit(cache=True)
def _buckets_of(values, sym, nlow, low):
    for i in range(values.shape[0]):
        sym[i], nlow[i], low[i] = buckets.bucket_of(values[i])


@nb.njit(cache=True)
def _values_of(sym, low, out):
    for i in range(sym.shape[0]):
        out[i] = buckets.value_of(sym[i], low[i])


@nb.njit(cache=True)
def low_bit_counts(sym, out):
    """out[i] = how many low bits follow bucket sym[i]."""
    for i in range(sym.shape[0]):
        out[i] = buckets.low_bits_of_bucket(sym[i])


def buckets_of(values: np.ndarray):
    values = np.ascontiguousarray(values, dtype=np.int64)
    sym = np.empty(len(values), np.int32)
    nlow = np.empty(len(values), np.int64)
    low = np.empty(len(values), np.int64)
    _buckets_of(values, sym, nlow, low)
    return sym, nlow, low


def values_of(sym: np.ndarray, decoder) -> np.ndarray:
    """Decode the low bits that belong to `sym` and rebuild the values."""
    sym = np.ascontiguousarray(sym, dtype=np.int32)
    nlow = np.empty(len(sym), np.int64)
    low_bit_counts(sym, nlow)
    low = decoder.low_bits(nlow)
    out = np.empty(len(sym), np.int64)
    _values_of(sym, low, out)
    return out


def zigzag_array(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    return np.where(x >= 0, 2 * x, -2 * x - 1)


def unzigzag_array(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int64)
    return np.where(u & 1, -((u + 1) >> 1), u >> 1)
