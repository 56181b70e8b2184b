"""Large alphabets as a bucket symbol plus raw low bits.

A non-negative integer u (a zigzagged residual, or a sample value) becomes
  u < EXACT:   bucket u, no low bits;
  otherwise:   with n = bit_length(u), the bucket names n and the MANTISSA bits
               under the leading one; the remaining n-1-MANTISSA bits are "low
               bits", coded uniformly.
So the modelled alphabet stays small (a few dozen buckets even for 32-bit audio)
while small values, which dominate, are modelled exactly.
"""

import numba as nb

EXACT = 32  # values below this get their own bucket (2**EXACT_BITS)
EXACT_BITS = 5
MANTISSA = 2


@nb.njit(cache=True, inline="always")
def zigzag(r):
    return 2 * r if r >= 0 else -2 * r - 1


@nb.njit(cache=True, inline="always")
def unzigzag(u):
    return u >> 1 if (u & 1) == 0 else -((u + 1) >> 1)


@nb.njit(cache=True, inline="always")
def bit_length(u):
    n = 0
    while u > 0:
        u >>= 1
        n += 1
    return n


@nb.njit(cache=True, inline="always")
def bucket_of(u):
    """-> (bucket, number of low bits, low bits value)."""
    if u < EXACT:
        return u, 0, 0
    n = bit_length(u)
    nlow = n - 1 - MANTISSA
    mant = (u >> nlow) & ((1 << MANTISSA) - 1)
    return EXACT + (n - EXACT_BITS - 1) * (1 << MANTISSA) + mant, nlow, u & ((1 << nlow) - 1)


@nb.njit(cache=True, inline="always")
def low_bits_of_bucket(b):
    if b < EXACT:
        return 0
    n = (b - EXACT) // (1 << MANTISSA) + EXACT_BITS + 1
    return n - 1 - MANTISSA


@nb.njit(cache=True, inline="always")
def value_of(b, low):
    if b < EXACT:
        return b
    n = (b - EXACT) // (1 << MANTISSA) + EXACT_BITS + 1
    mant = (b - EXACT) % (1 << MANTISSA)
    nlow = n - 1 - MANTISSA
    return ((1 << MANTISSA) | mant) << nlow | low


def alphabet_size(max_value: int) -> int:
    """Number of buckets needed for values 0..max_value."""
    if max_value < EXACT:
        return EXACT
    n = int(max_value).bit_length()
    return EXACT + (n - EXACT_BITS) * (1 << MANTISSA)
