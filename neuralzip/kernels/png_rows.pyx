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
