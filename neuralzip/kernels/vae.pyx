# Kernels of the latent-variable image model (neuralzip/models/vae.py, which explains
# the model; the patch layout is neuralzip/models/vae_layout.py): the posterior's
# integer rows over the latent bins, and the likelihood's integer rows of one channel
# of one coarse-to-fine phase. Every row is computed on its own, so how the rows are
# split among threads never changes a result.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from neuralzip.kernels.logistic cimport CDF_BITS, Z_MAX, mixture_row
from neuralzip.kernels.primitives cimport clip

# The patch layout (vae.py checks these against vae_layout when it is imported).
cdef enum:
    PATCH = 8
    PIXELS = PATCH * PATCH
    N_NEIGHBOURS = 4
    OUT_KINDS = 3 + 3 + 3 + N_NEIGHBOURS + 1  # means, scales, channel couplings, spatial couplings, activity
    ACT_KIND = OUT_KINDS - 1
    OUTPUTS = PIXELS * OUT_KINDS
    MAXV = 255
    PARALLEL_ROWS = 4096  # posterior or prior rows below which posterior_rows stays on one thread

LAYOUT = {"PATCH": PATCH, "PIXELS": PIXELS, "N_NEIGHBOURS": N_NEIGHBOURS, "OUT_KINDS": OUT_KINDS,
          "ACT_KIND": ACT_KIND, "OUTPUTS": OUTPUTS, "MAXV": MAXV}

ctypedef struct Mean:
    int64_t m16   # the corrected mean, in 1/16 levels
    int64_t act   # the summed magnitudes of the residuals it was corrected by


def _table(name, a, Py_ssize_t ndim=1, bint nonempty=True):
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.ndim != ndim or (nonempty and a.size == 0):
        raise ValueError(f"table {name} has the wrong shape {a.shape}")
    return a


cdef class VaeTables:
    """The integer tables of one set of weights, checked once when the weights load (every kernel
    indexes them without further checks): the logistic CDF, inverse scales and weights (cdf, inv,
    expt); the posterior's bin boundaries and inverse scales (zbounds, qinv); the activity feature
    (act); the neighbours of each pixel in its patch (nbr, -1 for none); the residual buckets as
    spans of boundaries (bounds, spans; neuralzip.exact.logistic.bucket_intervals)."""

    cdef const int64_t[::1] cdf, inv, expt, zbounds, qinv, act, bounds
    cdef const int64_t[:, ::1] spans, nbr
    cdef readonly Py_ssize_t n_buckets

    def __init__(self, *, cdf, inv, expt, zbounds, qinv, act, nbr, bounds, spans):
        cdf = _table("cdf", cdf)
        if cdf.shape[0] != 2 * Z_MAX + 1:
            raise ValueError(f"table cdf has {cdf.shape[0]} entries, not {2 * Z_MAX + 1}")
        nbr = _table("nbr", nbr, 2)
        if nbr.shape != (PIXELS, N_NEIGHBOURS) or nbr.min() < -1 or nbr.max() >= PIXELS:
            raise ValueError("table nbr does not fit the patch layout")
        bounds = _table("bounds", bounds)
        spans = _table("spans", spans, 2)
        if spans.shape[1] != 4 or spans.min() < 0 or spans.max() >= bounds.shape[0]:
            raise ValueError("table spans does not index bounds")
        self.cdf = cdf
        self.inv = _table("inv", inv)
        self.expt = _table("expt", expt)
        self.zbounds = _table("zbounds", zbounds, 1, False)
        self.qinv = _table("qinv", qinv)
        self.act = _table("act", act)
        self.nbr = nbr
        self.bounds = bounds
        self.spans = spans
        self.n_buckets = spans.shape[0]


cdef inline void posterior_row(const int64_t* zb, int64_t mu, int64_t iv, const int64_t* cdf, double* out,
                               Py_ssize_t n_bins) noexcept nogil:
    """out[j] = the integer mass of bin j (boundaries zb, n_bins - 1 of them) under the logistic of
    mean mu and inverse scale iv, + 1 (cdf has 2 * Z_MAX + 1 entries)."""
    cdef int64_t prev = 0, c, z
    cdef Py_ssize_t j
    for j in range(n_bins - 1):
        z = ((zb[j] - mu) * iv + (1 << 15)) >> 16
        if z < -Z_MAX:
            c = 0
        elif z > Z_MAX:
            c = <int64_t>1 << CDF_BITS
        else:
            c = cdf[z + Z_MAX]
        out[j] = <double>(c - prev + 1)
        prev = c
    out[n_bins - 1] = <double>((<int64_t>1 << CDF_BITS) - prev + 1)


@cython.boundscheck(False)
def posterior_rows(VaeTables t, const int64_t[::1] mu, const int64_t[::1] si, Py_ssize_t n_bins):
    """-> rows [n, n_bins] float64: row i holds the integer mass of each bin under the logistic of
    mean mu[i] and scale index si[i] (clipped to the table), + 1."""
    cdef Py_ssize_t n = mu.shape[0], i
    if si.shape[0] != n or n_bins < 1 or t.zbounds.shape[0] < n_bins - 1:
        raise ValueError("posterior_rows: mismatched shapes")
    out_a = np.empty((n, n_bins), np.float64)
    if n == 0:
        return out_a
    cdef double[:, ::1] out = out_a
    cdef const int64_t[::1] qinv = t.qinv
    cdef const int64_t* zb = &t.zbounds[0] if n_bins > 1 else NULL
    cdef const int64_t* cdf = &t.cdf[0]
    cdef Py_ssize_t n_sc = qinv.shape[0]
    with nogil:
        if n < PARALLEL_ROWS:  # a small group's rows: no thread team (its start costs more than the rows)
            for i in range(n):
                posterior_row(zb, mu[i], qinv[clip(si[i], 0, n_sc - 1)], cdf, &out[i, 0], n_bins)
        else:
            for i in prange(n, schedule="static"):
                posterior_row(zb, mu[i], qinv[clip(si[i], 0, n_sc - 1)], cdf, &out[i, 0], n_bins)
    return out_a


cdef inline int64_t coef(const int64_t* o, Py_ssize_t kind, Py_ssize_t p) noexcept nogil:
    """The decoder's coefficient of this kind at pixel p, in 1/64."""
    return clip(o[kind * PIXELS + p], -128, 128)


@cython.boundscheck(False)
@cython.cdivision(True)  # n // PATCH and n % PATCH only for n >= 0
cdef inline Mean mean16(Py_ssize_t c, Py_ssize_t p, const int64_t* o, const int64_t* xu, int64_t vh, int64_t vw,
                        const int64_t[:, ::1] nbr) noexcept nogil:
    """The mean of channel c at pixel p of a unit (its decoder output o, its pixels xu [PIXELS, 3],
    vh x vw of them valid), in 1/16 levels: the decoder's mean corrected by the residuals
    (16 * value - mean) of the decoded neighbours (same channel) and of the earlier channels (same
    pixel), with the decoder's coefficients in 1/64; and the summed magnitudes of those residuals."""
    cdef int64_t acc = 0, r, g
    cdef Mean m
    cdef Py_ssize_t k, n
    m.act = 0
    for k in range(N_NEIGHBOURS):
        n = nbr[p, k]
        if n >= 0 and n // PATCH < vh and n % PATCH < vw:
            r = 16 * xu[3 * n + c] - o[c * PIXELS + n]
            acc += coef(o, 9 + k, p) * r
            m.act += r if r >= 0 else -r
    if c >= 1:
        r = 16 * xu[3 * p] - o[p]
        acc += coef(o, 6 + c - 1, p) * r
        m.act += r if r >= 0 else -r
        if c == 2:
            g = 16 * xu[3 * p + 1] - o[PIXELS + p]
            acc += coef(o, 8, p) * g
            m.act += g if g >= 0 else -g
    m.m16 = o[c * PIXELS + p] + (acc >> 6)
    return m


@cython.boundscheck(False)
@cython.cdivision(True)  # block bounds: non-negative
cdef void pixel_block(Py_ssize_t blk, Py_ssize_t nblk, Py_ssize_t c, const int64_t[::1] units,
                      const int64_t[::1] pix, const int64_t[:, ::1] out_net, const int64_t[:, :, ::1] x,
                      const int64_t[:, ::1] shapes, VaeTables t, int64_t[:, ::1] head_s, int64_t[:, ::1] cj_s,
                      int64_t[:, ::1] row_s, double[:, ::1] rows, int64_t[::1] preds) noexcept nogil:
    """The rows of block blk of nblk (scratch rows blk of head_s, cj_s, row_s are its own).
    Every index was checked by pixel_rows."""
    cdef Py_ssize_t n = units.shape[0], k, b, u, p
    cdef Py_ssize_t n_sc = t.inv.shape[0], n_act = t.act.shape[0], nbk = rows.shape[1]
    cdef int64_t[::1] head = head_s[blk], cj = cj_s[blk], row = row_s[blk]
    cdef const int64_t* o
    cdef int64_t pred, feat
    cdef Mean m
    for k in range(blk * n // nblk, (blk + 1) * n // nblk):
        u = units[k]
        p = pix[k]
        o = &out_net[u, 0]
        m = mean16(c, p, o, &x[u, 0, 0], shapes[u, 0], shapes[u, 1], t.nbr)
        pred = clip((m.m16 + 8) >> 4, 0, MAXV)
        head[0] = m.m16 - 16 * pred
        feat = t.act[clip(m.act, 0, n_act - 1)]
        head[1] = clip(o[(3 + c) * PIXELS + p] + ((coef(o, ACT_KIND, p) * feat) >> 6), 0, n_sc - 1)
        head[2] = 0
        mixture_row(pred, MAXV, head, 1, t.cdf, t.inv, t.expt, t.bounds, t.spans, cj, row)
        for b in range(nbk):
            rows[k, b] = <double>(row[b] + 1)
        preds[k] = pred


def pixel_rows(VaeTables t, Py_ssize_t c, const int64_t[::1] units, const int64_t[::1] pix, *,
               const int64_t[:, ::1] out_net, const int64_t[:, :, ::1] x, const int64_t[:, ::1] shapes,
               Py_ssize_t nblk):
    """-> (rows [n, n_buckets] float64, preds [n] int64): the integer pmf (+ 1) over residual
    buckets of channel c at the subpixels (units[k], pix[k]), and the predicted value the residual
    is taken from. x [m, PIXELS, 3] holds the units with the earlier phases and channels known,
    out_net [m, OUTPUTS] the decoder's output, shapes [m, >=2] the valid rows and columns.
    The rows are split into nblk thread blocks (any count gives the same rows)."""
    cdef Py_ssize_t n = units.shape[0], m = x.shape[0], k, blk
    if not 0 <= c < 3 or pix.shape[0] != n or x.shape[1] != PIXELS or x.shape[2] != 3 \
            or out_net.shape[0] != m or out_net.shape[1] != OUTPUTS or shapes.shape[0] != m or shapes.shape[1] < 2:
        raise ValueError("pixel_rows: mismatched shapes")
    for k in range(n):
        if not (0 <= units[k] < m and 0 <= pix[k] < PIXELS):
            raise ValueError("pixel_rows: a subpixel outside the units")
    nblk = max(1, min(nblk, n))
    rows_a = np.empty((n, t.n_buckets), np.float64)
    preds_a = np.empty(n, np.int64)
    head_a = np.zeros((nblk, 3), np.int64)
    cj_a = np.zeros((nblk, t.bounds.shape[0]), np.int64)
    row_a = np.zeros((nblk, t.n_buckets), np.int64)
    cdef double[:, ::1] rows = rows_a
    cdef int64_t[::1] preds = preds_a
    cdef int64_t[:, ::1] head_s = head_a, cj_s = cj_a, row_s = row_a
    with nogil:
        if nblk == 1:  # no thread team for one block (small groups: the waves of a narrow image)
            pixel_block(0, 1, c, units, pix, out_net, x, shapes, t, head_s, cj_s, row_s, rows, preds)
        else:
            for blk in prange(nblk, schedule="static", chunksize=1):
                pixel_block(blk, nblk, c, units, pix, out_net, x, shapes, t, head_s, cj_s, row_s, rows, preds)
    return rows_a, preds_a
