# Exact integer pieces of the learned models (neuralzip/exact): the per-column rescale
# of a quantized layer, and the logistic mixture rows for Python callers.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from neuralzip.kernels cimport logistic
from neuralzip.kernels.primitives cimport clip

ctypedef fused acc_t:
    float
    double

ctypedef fused act_t:
    float
    double
    int64_t


@cython.boundscheck(False)
cdef void rescale_rows(const acc_t[:, ::1] acc, const int64_t[::1] b, const int64_t[::1] m, const int64_t[::1] s,
                       bint last, int64_t act_max, act_t[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t i, j, cols = acc.shape[1]
    cdef int64_t v
    cdef const acc_t* a
    cdef act_t* o
    for i in range(acc.shape[0]):
        a = &acc[i, 0]
        o = &out[i, 0]
        if last:
            for j in range(cols):
                o[j] = <act_t>(((<int64_t>a[j] + b[j]) * m[j] + (<int64_t>1 << (s[j] - 1))) >> s[j])
        else:
            for j in range(cols):
                v = ((<int64_t>a[j] + b[j]) * m[j] + (<int64_t>1 << (s[j] - 1))) >> s[j]
                o[j] = <act_t>min(max(v, <int64_t>0), act_max)


cdef class LayerRescale:
    """One quantized layer's per-column rescale, out = round((acc + b) * m / 2**s), clipped to
    0..act_max unless it is the last layer. acc holds exact integers (the layer's float
    accumulator: float32, or float64 for a wide layer); hidden outputs keep acc's type, the
    last layer's are int64. The products wrap as 64-bit integers, which the weights' checks
    keep from happening."""
    cdef const int64_t[::1] b, m, s
    cdef readonly bint wide, last
    cdef readonly int64_t act_max

    def __init__(self, b, m, s, *, bint wide, bint last, int64_t act_max):
        self.b, self.m, self.s = b, m, s
        self.wide, self.last, self.act_max = wide, last, act_max
        if not self.b.shape[0] == self.m.shape[0] == self.s.shape[0]:
            raise ValueError("rescale parameters differ in length")
        for j in range(self.s.shape[0]):
            if not 1 <= self.s[j] <= 62:
                raise ValueError("rescale shift out of range")

    def __call__(self, acc, out):
        """Rescale acc [rows, columns] into out (same shape)."""
        cdef const float[:, ::1] a32
        cdef const double[:, ::1] a64
        cdef float[:, ::1] o32
        cdef double[:, ::1] o64
        cdef int64_t[:, ::1] oi
        if acc.shape[1] != self.b.shape[0] or tuple(out.shape) != tuple(acc.shape):
            raise ValueError("rescale shapes do not match the layer")
        if self.wide:
            a64 = acc
            if self.last:
                oi = out
                rescale_rows(a64, self.b, self.m, self.s, True, self.act_max, oi)
            else:
                o64 = out
                rescale_rows(a64, self.b, self.m, self.s, False, self.act_max, o64)
        else:
            a32 = acc
            if self.last:
                oi = out
                rescale_rows(a32, self.b, self.m, self.s, True, self.act_max, oi)
            else:
                o32 = out
                rescale_rows(a32, self.b, self.m, self.s, False, self.act_max, o32)


def mixture_row(int64_t pred, int64_t maxv, const int64_t[::1] head, Py_ssize_t k_mix, const int64_t[::1] cdf,
                const int64_t[::1] inv, const int64_t[::1] expt, const int64_t[::1] bounds,
                const int64_t[:, ::1] spans, int64_t[::1] cj, int64_t[::1] row) -> int:
    """row[b] = the integer mass of bucket b under the mixture `head` for a value predicted
    at `pred` in 0..maxv (see neuralzip/exact/logistic.py); -> the row total. Checks the
    shapes the compiled row relies on."""
    if k_mix < 1 or head.shape[0] < 3 * k_mix:
        raise ValueError("mixture head shorter than its components")
    if cdf.shape[0] != 2 * logistic.Z_MAX + 1 or inv.shape[0] < 1:
        raise ValueError("logistic tables have the wrong size")
    if spans.shape[0] != row.shape[0] or spans.shape[1] != 4 or cj.shape[0] < bounds.shape[0]:
        raise ValueError("bucket spans do not match the row")
    for b in range(spans.shape[0]):
        for t in range(4):
            if not 0 <= spans[b, t] < bounds.shape[0]:
                raise ValueError("bucket spans point outside the boundaries")
    return logistic.mixture_row(pred, maxv, head, k_mix, cdf, inv, expt, bounds, spans, cj, row)


@cython.boundscheck(False)
@cython.cdivision(True)  # block bounds: non-negative
cdef void heads_block(Py_ssize_t blk, Py_ssize_t nblk, const int64_t[::1] base16, const int64_t[:, ::1] heads,
                      Py_ssize_t k_mix, int64_t maxv, const int64_t[::1] cdf, const int64_t[::1] inv,
                      const int64_t[::1] expt, const int64_t[::1] bounds, const int64_t[:, ::1] spans,
                      int64_t[:, ::1] head_s, int64_t[:, ::1] cj_s, int64_t[:, ::1] row_s, double[:, ::1] rows,
                      int64_t[::1] preds) noexcept nogil:
    """The rows of block blk of nblk (scratch rows blk of head_s, cj_s, row_s are its own)."""
    cdef Py_ssize_t n = heads.shape[0], i, k, b, top
    cdef int64_t[::1] head = head_s[blk], cj = cj_s[blk], row = row_s[blk]
    cdef int64_t pred, lo = -16 * (maxv + 1), hi = 32 * (maxv + 1)
    for i in range(blk * n // nblk, (blk + 1) * n // nblk):
        top = 0
        for k in range(1, k_mix):
            if heads[i, 2 * k_mix + k] > heads[i, 2 * k_mix + top]:
                top = k
        pred = (clip(base16[i] + heads[i, top], lo, hi) + 8) >> 4
        pred = clip(pred, 0, maxv)
        for k in range(k_mix):
            head[k] = clip(base16[i] + heads[i, k], lo, hi) - 16 * pred
            head[k_mix + k] = heads[i, k_mix + k]
            head[2 * k_mix + k] = heads[i, 2 * k_mix + k]
        logistic.mixture_row(pred, maxv, head, k_mix, cdf, inv, expt, bounds, spans, cj, row)
        for b in range(row.shape[0]):
            rows[i, b] = <double>(row[b] + 1)
        preds[i] = pred


def mixture_rows(const int64_t[::1] base16, const int64_t[:, ::1] heads, Py_ssize_t k_mix, int64_t maxv,
                 const int64_t[::1] cdf, const int64_t[::1] inv, const int64_t[::1] expt,
                 const int64_t[::1] bounds, const int64_t[:, ::1] spans, Py_ssize_t nblk):
    """-> (rows [n, n_buckets] float64, preds [n] int64): for each value, the integer pmf (+ 1)
    over residual buckets of the mixture heads[i] = (means in 1/16 level relative to base16[i],
    scale indices, logits in 1/16 nat), the residuals taken from the predicted value: the most
    weighted component's mean, rounded into 0..maxv. The rows are split into nblk thread blocks
    (any count gives the same rows)."""
    cdef Py_ssize_t n = heads.shape[0], blk
    if k_mix < 1 or heads.shape[1] != 3 * k_mix or base16.shape[0] != n or maxv < 1:
        raise ValueError("mixture_rows: mismatched shapes")
    if cdf.shape[0] != 2 * logistic.Z_MAX + 1 or inv.shape[0] < 1 or expt.shape[0] < 1:
        raise ValueError("logistic tables have the wrong size")
    if spans.shape[0] < 1 or spans.shape[1] != 4 or np.asarray(spans).min() < 0 \
            or np.asarray(spans).max() >= bounds.shape[0]:
        raise ValueError("bucket spans do not index the boundaries")
    nblk = max(1, min(nblk, n))
    rows_a = np.empty((n, spans.shape[0]), np.float64)
    preds_a = np.empty(n, np.int64)
    head_a = np.zeros((nblk, 3 * k_mix), np.int64)
    cj_a = np.zeros((nblk, bounds.shape[0]), np.int64)
    row_a = np.zeros((nblk, spans.shape[0]), np.int64)
    cdef double[:, ::1] rows = rows_a
    cdef int64_t[::1] preds = preds_a
    cdef int64_t[:, ::1] head_s = head_a, cj_s = cj_a, row_s = row_a
    if n == 0:
        return rows_a, preds_a
    if nblk == 1:  # no parallel region for a small step: waking the threads would cost more than the rows
        heads_block(0, 1, base16, heads, k_mix, maxv, cdf, inv, expt, bounds, spans, head_s, cj_s, row_s, rows, preds)
        return rows_a, preds_a
    with nogil:
        for blk in prange(nblk, schedule="static", chunksize=1):
            heads_block(blk, nblk, base16, heads, k_mix, maxv, cdf, inv, expt, bounds, spans, head_s, cj_s, row_s,
                        rows, preds)
    return rows_a, preds_a
