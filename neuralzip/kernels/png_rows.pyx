"""PNG's row filters undone, for images read a block of rows at a time (media/png.RowReader).

Each stored row is a filter-type byte and the row's bytes filtered by that type: 0 none, 1 Sub
(the byte bpp to the left), 2 Up (the byte above), 3 Average (of left and above, rounded down),
4 Paeth (whichever of left, above and upper-left is nearest left + above - upper-left, ties in
that order); sums are taken modulo 256 and bytes left of the row (or above the image) count as 0.
Pillow and pypng do the same for a whole image; this does it for a block, carrying the row above.
"""

cimport cython


@cython.boundscheck(False)
def unfilter(const unsigned char[:, ::1] stored, unsigned char[::1] above, int bpp, unsigned char[:, ::1] out):
    """Rows of `stored` (filter byte, then the row's bytes) undone into `out` (rows, row bytes);
    `above` is the unfiltered row above the first (zeros at the image's top) and is left holding
    the last row. -> -1, or the index of the first row with an unknown filter type."""
    cdef Py_ssize_t n = out.shape[0], width = out.shape[1], r, i, bad = -1
    cdef int ft, a, b, c, p, pa, pb, pc, pred
    if stored.shape[0] != n or stored.shape[1] != width + 1 or above.shape[0] != width or bpp < 1:
        raise ValueError("unfilter: shapes do not agree")
    with nogil:
        for r in range(n):
            ft = stored[r, 0]
            if ft > 4:
                bad = r
                break
            for i in range(width):
                a = out[r, i - bpp] if i >= bpp else 0
                b = above[i]
                c = above[i - bpp] if i >= bpp else 0
                if ft == 0:
                    pred = 0
                elif ft == 1:
                    pred = a
                elif ft == 2:
                    pred = b
                elif ft == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa = p - a if p >= a else a - p
                    pb = p - b if p >= b else b - p
                    pc = p - c if p >= c else c - p
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                out[r, i] = <unsigned char>((stored[r, i + 1] + pred) & 0xFF)
            for i in range(width):
                above[i] = out[r, i]
    return bad


cdef inline int filtered_byte(int ft, int x, int a, int b, int c) noexcept nogil:
    """Byte x filtered by type ft, with a left, b above and c upper-left of it (0..255 each)."""
    cdef int p, pa, pb, pc
    if ft == 0:
        return x
    if ft == 1:
        return (x - a) & 0xFF
    if ft == 2:
        return (x - b) & 0xFF
    if ft == 3:
        return (x - ((a + b) >> 1)) & 0xFF
    p = a + b - c
    pa = p - a if p >= a else a - p
    pb = p - b if p >= b else b - p
    pc = p - c if p >= c else c - p
    return (x - (a if (pa <= pb and pa <= pc) else (b if pb <= pc else c))) & 0xFF


@cython.boundscheck(False)
def filter_rows(const unsigned char[:, ::1] raw, const unsigned char[::1] above, int bpp, unsigned char[:, ::1] out):
    """The writer's side: each row of `raw` (row bytes) into `out` as a filter-type byte and the
    row filtered by the type whose bytes, read as signed, have the smallest sum of magnitudes
    (libpng's heuristic; ties to the lower type). `above` is the row above the first (zeros at the
    image's top)."""
    cdef Py_ssize_t n = raw.shape[0], width = raw.shape[1], r, i
    cdef int ft, best, v, a, b, c
    cdef long sums[5]
    cdef const unsigned char* up
    if out.shape[0] != n or out.shape[1] != width + 1 or above.shape[0] != width or bpp < 1:
        raise ValueError("filter_rows: shapes do not agree")
    with nogil:
        for r in range(n):
            up = &above[0] if r == 0 else &raw[r - 1, 0]
            for ft in range(5):
                sums[ft] = 0
            for i in range(width):
                a = raw[r, i - bpp] if i >= bpp else 0
                b = up[i]
                c = up[i - bpp] if i >= bpp else 0
                for ft in range(5):
                    v = filtered_byte(ft, raw[r, i], a, b, c)
                    sums[ft] += 256 - v if v > 127 else v
            best = 0
            for ft in range(1, 5):
                if sums[ft] < sums[best]:
                    best = ft
            out[r, 0] = <unsigned char>best
            for i in range(width):
                a = raw[r, i - bpp] if i >= bpp else 0
                b = up[i]
                c = up[i - bpp] if i >= bpp else 0
                out[r, i + 1] = <unsigned char>filtered_byte(best, raw[r, i], a, b, c)
