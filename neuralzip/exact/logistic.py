"""Discretized logistic mixtures as integer pmfs over residual buckets, from tables.

A mixture component is (mean offset m16 in 1/16 of a step, log-scale index,
logit l16 in 1/16 nat). Its CDF at a residual boundary j - 1/2 is
    CDF[(u * INV[scale] + 2**15) >> 16],  u = 16*j - 8 - m16,
a table lookup: INV and CDF (and the EXP table of the mixture weights) are
built once with floats by ``tables()`` and shipped inside the weights file, so
the decoder never evaluates exp itself. Values below 0 and above maxv fold
onto the two end values (PixelCNN++'s edge rule), so the masses of the valid
values sum to exactly weight * CDF_ONE.

The row itself is compiled (neuralzip/kernels/logistic.pxd, inlined into the
models' loops); ``mixture_row`` here is its checked entry point for Python callers.
"""

import numpy as np

from neuralzip.coding import buckets
from neuralzip.kernels.exact import mixture_row  # noqa: F401  (re-exported)

CDF_BITS = 24
CDF_ONE = 1 << CDF_BITS
Z_STEPS = 64  # CDF table resolution: 1/64 of a scale unit
Z_MAX = 24 * Z_STEPS  # sigma(-24) is below 2**-24: the table ends there
LOG_SCALE_MIN = -3.0
LOG_SCALE_STEPS = 16  # scale index i means log(scale) = LOG_SCALE_MIN + i / 16
N_SCALES = 150  # up to a scale of about e**6.3
EXP_BITS = 15
N_EXP = 256  # mixture weights below e**-16 of the largest are dropped
EXACT_SPAN = 16  # residuals -16..15 have a bucket of their own


def tables() -> dict:
    """The lookup tables (int64) that every exact logistic mixture reads."""
    z = np.arange(-Z_MAX, Z_MAX + 1) / Z_STEPS
    cdf = np.round(CDF_ONE / (1.0 + np.exp(-z))).astype(np.int64)
    scale = np.exp(LOG_SCALE_MIN + np.arange(N_SCALES) / LOG_SCALE_STEPS)
    inv = np.round((1 << 16) * Z_STEPS / 16 / scale).astype(np.int64)
    exp = np.round((1 << EXP_BITS) * np.exp(-np.arange(N_EXP) / 16)).astype(np.int64)
    return {"lut.cdf": cdf, "lut.inv": inv, "lut.exp": exp}


def correctly_rounded_cdf() -> np.ndarray:
    """The CDF table of ``tables()`` (CDF_ONE / (1 + e^-z) at z = i / Z_STEPS, |i| <= Z_MAX, rounded),
    built with Python's decimal arithmetic, whose exp is correctly rounded: every machine builds the
    same table, so a model can build it at run time instead of shipping it (ols-cascade's logistic
    row). Half of it by the symmetry CDF(-z) = CDF_ONE - CDF(z)."""
    import decimal

    ctx = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
    one = decimal.Decimal(CDF_ONE)
    half = np.array([int((one / (1 + ctx.exp(decimal.Decimal(-i) / Z_STEPS))).to_integral_value(
        rounding=decimal.ROUND_HALF_EVEN, context=ctx)) for i in range(Z_MAX + 1)], np.int64)
    return np.concatenate([CDF_ONE - half[:0:-1], half])


def bucket_intervals(n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """The residuals of bucket b are a1..e1-1 and a2..e2-1 (the second span may be empty).
    -> (sorted distinct boundaries, [b] -> indices of (a1, e1, a2, e2) among them): each
    component's CDF is evaluated once per boundary and every bucket mass is a difference."""
    spans = np.zeros((n_buckets, 4), np.int64)
    for b in range(n_buckets):
        if b < buckets.EXACT:
            r = b >> 1 if b % 2 == 0 else -((b + 1) >> 1)
            spans[b] = (r, r + 1, r, r)
        else:
            nlow = buckets.low_bits_of_bucket(b)
            lo = buckets.value_of(b, 0)
            hi = lo + (1 << nlow) - 1
            spans[b] = (lo // 2, (hi + 1) // 2, -(hi + 1) // 2, -lo // 2)
    bounds = np.unique(spans)
    return bounds, np.searchsorted(bounds, spans)
