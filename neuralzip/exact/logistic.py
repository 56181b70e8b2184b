"""Discretized logistic mixtures as integer pmfs over residual buckets, from tables.

A mixture component is (mean offset m16 in 1/16 of a step, log-scale index,
logit l16 in 1/16 nat). Its CDF at a residual boundary j - 1/2 is
    CDF[(u * INV[scale] + 2**15) >> 16],  u = 16*j - 8 - m16,
a table lookup: INV and CDF (and the EXP table of the mixture weights) are
built once with floats by ``tables()`` and shipped inside the weights file, so
the decoder never evaluates exp itself. Values below 0 and above maxv fold
onto the two end values (PixelCNN++'s edge rule), so the masses of the valid
values sum to exactly weight * CDF_ONE.
"""

import numba as nb
import numpy as np

from neuralzip.coding import buckets

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


@nb.njit(cache=True, inline="always")
def _cdf_at(j, m16, inv, lo_edge, hi_edge, cdf):
    """CDF at residual boundary j - 1/2, with the mass beyond the valid range folded onto its ends."""
    if j <= lo_edge:
        return 0
    if j >= hi_edge:
        return CDF_ONE
    u = 16 * j - 8 - m16
    z = (u * inv + (1 << 15)) >> 16
    if z < -Z_MAX:
        return 0
    if z > Z_MAX:
        return CDF_ONE
    return cdf[z + Z_MAX]


@nb.njit(cache=True)
def mixture_row(pred, maxv, head, k_mix, cdf, inv, expt, bounds, spans, cj, row):
    """row[b] = sum_k weight_k * mass of bucket b under component k (integers), for a value
    predicted at `pred` in 0..maxv; head = (m16[k], scale index[k], l16[k]). Returns the row total.
    The weighted CDFs are summed at each boundary first, so each mass is one difference."""
    lo_edge = -pred  # boundary below value 0
    hi_edge = maxv - pred + 1  # boundary above value maxv
    n_sc = inv.shape[0]
    lmax = head[2 * k_mix]
    for k in range(1, k_mix):
        lmax = max(lmax, head[2 * k_mix + k])
    for t in range(bounds.shape[0]):
        cj[t] = 0
    total = 0
    for k in range(k_mix):
        d = lmax - head[2 * k_mix + k]
        if d >= expt.shape[0]:
            continue
        wk = expt[d]
        total += wk * CDF_ONE
        m16 = head[k]
        si = head[k_mix + k]
        iv = inv[0 if si < 0 else (n_sc - 1 if si >= n_sc else si)]
        for t in range(bounds.shape[0]):
            cj[t] += wk * _cdf_at(bounds[t], m16, iv, lo_edge, hi_edge, cdf)
    for b in range(row.shape[0]):
        row[b] = cj[spans[b, 1]] - cj[spans[b, 0]] + cj[spans[b, 3]] - cj[spans[b, 2]]
    return total
