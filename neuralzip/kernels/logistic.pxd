# cython: boundscheck=False
# (No per-index checks in these inner loops: every index is bounded by construction or by
# the callers' checks when the tables are loaded — cdf has 2*Z_MAX+1 entries, spans index
# bounds, head holds 3*k_mix values, row has at most spans.shape[0] entries — and z, d and
# the scale index are clamped below.)
# Discretized logistic mixtures as integer pmfs over residual buckets, from tables
# (shared by the learned image models; the Python face and the tables are in
# neuralzip/exact/logistic.py, which explains the scheme).

cimport cython
from libc.stdint cimport int64_t

cdef enum:
    CDF_BITS = 24
    Z_STEPS = 64
    Z_MAX = 24 * 64


cdef inline int64_t cdf_at(int64_t j, int64_t m16, int64_t inv, int64_t lo_edge, int64_t hi_edge,
                           const int64_t[::1] cdf, int64_t inv_bits, int64_t reach) noexcept nogil:
    """CDF at residual boundary j - 1/2, with the mass beyond the valid range folded onto its ends.
    inv is the inverse scale in 2**-inv_bits of a table step per 1/16 level (16 for the image
    models; wavenet's scales reach far wider and take more bits). Beyond `reach` (in 1/16 level:
    saturation_reach) the CDF is 0 or 1 without the product, which could leave an int64 there."""
    cdef int64_t u, z
    if j <= lo_edge:
        return 0
    if j >= hi_edge:
        return <int64_t>1 << CDF_BITS
    u = 16 * j - 8 - m16
    if u >= reach:
        return <int64_t>1 << CDF_BITS
    if u <= -reach:
        return 0
    z = (u * inv + ((<int64_t>1) << (inv_bits - 1))) >> inv_bits
    if z < -Z_MAX:
        return 0
    if z > Z_MAX:
        return <int64_t>1 << CDF_BITS
    return cdf[z + Z_MAX]


@cython.cdivision(True)  # both operands positive
cdef inline int64_t saturation_reach(int64_t inv, int64_t inv_bits) noexcept nogil:
    """The distance (1/16 level) from the mean beyond which a component's CDF is 0 or 1 in the
    table: |u| * inv >= (Z_MAX + 1) << inv_bits. Below it every product u * inv fits an int64."""
    if inv <= 0:
        return (<int64_t>1) << 40  # a flat component: the table's middle at any distance in range
    return (((<int64_t>Z_MAX + 1) << inv_bits) // inv) + 1


cdef inline int64_t clamped_inverse(const int64_t[::1] inv, int64_t si) noexcept nogil:
    """The inverse scale of scale index si, the index clamped to the table."""
    cdef Py_ssize_t n_sc = inv.shape[0]
    return inv[0 if si < 0 else (n_sc - 1 if si >= n_sc else si)]


cdef inline int64_t mixture_row(int64_t pred, int64_t maxv, const int64_t[::1] head, Py_ssize_t k_mix,
                                const int64_t[::1] cdf, const int64_t[::1] inv, const int64_t[::1] expt,
                                const int64_t[::1] bounds, const int64_t[:, ::1] spans, int64_t[::1] cj,
                                int64_t[::1] row, int64_t inv_bits=16) noexcept nogil:
    """row[b] = sum_k weight_k * mass of bucket b under component k (integers), for a value
    predicted at `pred` in 0..maxv; head = (m16[k], scale index[k], l16[k]). Returns the row total.
    The weighted CDFs are summed at each boundary first, so each mass is one difference.
    Tables come from a weights file whose shapes were checked when it was loaded
    (cdf has 2*Z_MAX+1 entries; spans index bounds)."""
    cdef int64_t lo_edge = -pred  # boundary below value 0
    cdef int64_t hi_edge = maxv - pred + 1  # boundary above value maxv
    cdef Py_ssize_t k, t, b
    cdef int64_t lmax = head[2 * k_mix], d, wk, m16, si, iv, reach, total = 0
    for k in range(1, k_mix):
        lmax = max(lmax, head[2 * k_mix + k])
    for t in range(bounds.shape[0]):
        cj[t] = 0
    for k in range(k_mix):
        d = lmax - head[2 * k_mix + k]
        if d >= expt.shape[0]:
            continue
        wk = expt[d]
        total += wk << CDF_BITS
        m16 = head[k]
        si = head[k_mix + k]
        iv = clamped_inverse(inv, si)
        reach = saturation_reach(iv, inv_bits)
        for t in range(bounds.shape[0]):
            cj[t] += wk * cdf_at(bounds[t], m16, iv, lo_edge, hi_edge, cdf, inv_bits, reach)
    for b in range(row.shape[0]):
        row[b] = cj[spans[b, 1]] - cj[spans[b, 0]] + cj[spans[b, 3]] - cj[spans[b, 2]]
    return total
