# Exact integer pieces of the learned models (neuralzip/exact): the per-column rescale
# of a quantized layer, and the logistic mixture row for Python callers.

cimport cython
from libc.stdint cimport int64_t
from neuralzip.kernels cimport logistic

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
