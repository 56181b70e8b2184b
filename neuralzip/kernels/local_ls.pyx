# Per-pixel least-squares prediction over a causal window (the local-ls image model;
# neuralzip/models/local_ls_image.py is the face).
#
# For pixel (y, x) of channel c the kernel fits, by least squares, weights that predict a
# sample of channel c from its causal neighbours (FEATURES below: ten of its own channel,
# and for later channels the previous channel's sample at the same place and four of its
# neighbours, and for the third channel the first channel's sample), over every training
# pixel in a window of `radius` rows up and `radius` columns either side that the decoder
# already has, and predicts (y, x) with those weights.
#
# "Already has": the chunk is coded in wavefront steps x + 2y = t (one tile per chunk), so a
# pixel of step t may learn from pixel (y', x') only where x' + 2y' < t (every channel of it
# is decoded); each training pixel's own neighbours then lie in earlier steps too. Channels
# of one step are separate passes, so the previous channels' samples at (y, x) are known.
#
# Row y is coded at x = 0, 1, 2, ... in consecutive steps, so its window sums slide: one column
# leaves and one enters each window row. The sums are of products of integer samples, so every
# entry is an exact integer in float64 (below 2^53 for any depth up to
# 16 bits): sliding gives the very bits summing afresh gives, in any order.
#
# Exact on any machine: the solve is strict IEEE-754 float64 with only + - * / and sqrt in a
# fixed order (the build allows no contraction or fast-math), and each pixel is computed by one
# thread from the image and its own row's sums, so the thread split never changes a result.

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport floor, sqrt
from libc.stdint cimport int64_t

cdef enum:
    N_OWN = 10      # neighbours of the pixel's own channel
    N_PREV = 5      # the previous channel's samples (later channels)
    MAX_FEATURES = N_OWN + N_PREV + 1
    REACH = 2       # the farthest any feature lies from its pixel, in rows and in columns
    MAX_RADIUS = 12
    NONE = -1       # no prediction at this pixel

# own-channel neighbours (rows up, columns right): every one lies in an earlier wavefront step
cdef int OWN_DY[N_OWN]
cdef int OWN_DX[N_OWN]
OWN_DY[:] = [0, -1, -1, -1, 0, -2, -1, -2, -2, -2]
OWN_DX[:] = [-1, 0, -1, 1, -2, 0, -2, -1, 1, 2]
# previous channel: here, W, N, NW, NE
cdef int PREV_DY[N_PREV]
cdef int PREV_DX[N_PREV]
PREV_DY[:] = [0, 0, -1, -1, -1]
PREV_DX[:] = [0, -1, 0, -1, 1]

# the weights the ridge pulls towards (a plane through W, N, NW; later channels add the same
# plane's error in the previous channel)
cdef double PRIOR[MAX_FEATURES]
PRIOR[:] = [1, 1, -1, 0, 0, 0, 0, 0, 0, 0, 1, -1, -1, 1, 0, 0]

MAX_RADIUS_ = MAX_RADIUS
NO_PREDICTION = NONE


cdef inline Py_ssize_t n_features(Py_ssize_t c) noexcept nogil:
    return N_OWN if c == 0 else (N_OWN + N_PREV if c == 1 else MAX_FEATURES)


cdef inline void features(const int64_t* img, Py_ssize_t w, Py_ssize_t nch, Py_ssize_t c, Py_ssize_t y,
                          Py_ssize_t x, double* f) noexcept nogil:
    """The feature vector of channel c at (y, x) (the caller keeps (y, x) REACH from the edges)."""
    cdef Py_ssize_t j, q = 0
    cdef const int64_t* at = img + (y * w + x) * nch + c
    for j in range(N_OWN):
        f[q] = <double>at[(OWN_DY[j] * w + OWN_DX[j]) * nch]
        q += 1
    if c > 0:
        for j in range(N_PREV):
            f[q] = <double>at[(PREV_DY[j] * w + PREV_DX[j]) * nch - 1]
            q += 1
    if c > 1:
        f[q] = <double>at[-c]


cdef inline void accumulate(double* A, double* b, const int64_t* img, Py_ssize_t w, Py_ssize_t nch,
                            Py_ssize_t c, Py_ssize_t n, Py_ssize_t yy, Py_ssize_t x0, Py_ssize_t x1,
                            double wt) noexcept nogil:
    """Add (wt = 1) or take away (wt = -1) the training pixels x0..x1 of row yy: every entry stays an
    integer below 2^53, so the sums are exact and do not depend on the order they were made in."""
    cdef Py_ssize_t xx, i, j
    cdef double f[MAX_FEATURES]
    cdef double v
    for xx in range(x0, x1 + 1):
        features(img, w, nch, c, yy, xx, f)
        v = <double>img[(yy * w + xx) * nch + c]
        for i in range(n):
            for j in range(i + 1):  # lower triangle
                A[i * n + j] = A[i * n + j] + wt * f[i] * f[j]
            b[i] = b[i] + wt * f[i] * v


cdef inline Py_ssize_t seg_lo(Py_ssize_t x, Py_ssize_t r) noexcept nogil:
    return max(x - r, <Py_ssize_t>REACH)


cdef inline Py_ssize_t seg_hi(Py_ssize_t x, Py_ssize_t r, Py_ssize_t dy, Py_ssize_t w) noexcept nogil:
    # causal: a training pixel of row y - dy must lie in an earlier step, x' + 2(y - dy) < x + 2y
    return min(x + r, w - 1 - REACH, x + 2 * dy - 1)


cdef void window_sums(double* A, double* b, const int64_t* img, Py_ssize_t w, Py_ssize_t nch, Py_ssize_t c,
                      Py_ssize_t n, Py_ssize_t y, Py_ssize_t x, Py_ssize_t r, bint slide) noexcept nogil:
    """The window of radius r around (y, x) added to A and b; with slide, A and b hold the window
    around (y, x - 1) and only the columns that leave and enter it are taken away and added."""
    cdef Py_ssize_t dy, yy, lo, hi, plo, phi
    for dy in range(r + 1):
        yy = y - dy
        if yy < REACH:
            break
        lo, hi = seg_lo(x, r), seg_hi(x, r, dy, w)
        if not slide:
            accumulate(A, b, img, w, nch, c, n, yy, lo, hi, 1.0)
            continue
        plo, phi = seg_lo(x - 1, r), seg_hi(x - 1, r, dy, w)
        accumulate(A, b, img, w, nch, c, n, yy, plo, min(phi, lo - 1), -1.0)
        accumulate(A, b, img, w, nch, c, n, yy, max(lo, phi + 1), hi, 1.0)


@cython.cdivision(True)
cdef int64_t solve_predict(const double* S, const double* sb, const int64_t* img, Py_ssize_t w, Py_ssize_t nch,
                           Py_ssize_t c, Py_ssize_t y, Py_ssize_t x, double ridge, int64_t maxv) noexcept nogil:
    """Solve (S + nu I) z = sb + nu PRIOR by Cholesky and predict (y, x) with z (NONE: singular)."""
    cdef Py_ssize_t n = n_features(c), i, j, k
    cdef double A[MAX_FEATURES * MAX_FEATURES]
    cdef double z[MAX_FEATURES]
    cdef double f[MAX_FEATURES]
    cdef double acc, tr = 0.0, nu, v
    for i in range(n * n):
        A[i] = S[i]
    for i in range(n):
        tr = tr + A[i * n + i]
    nu = ridge * tr / n + 1.0
    for j in range(n):
        acc = A[j * n + j] + nu
        for k in range(j):
            acc = acc - A[j * n + k] * A[j * n + k]
        if not acc > 0.0:
            return NONE
        A[j * n + j] = sqrt(acc)
        for i in range(j + 1, n):
            acc = A[i * n + j]
            for k in range(j):
                acc = acc - A[i * n + k] * A[j * n + k]
            A[i * n + j] = acc / A[j * n + j]
    for i in range(n):
        acc = sb[i] + nu * PRIOR[i]
        for k in range(i):
            acc = acc - A[i * n + k] * z[k]
        z[i] = acc / A[i * n + i]
    for i in range(n - 1, -1, -1):
        acc = z[i]
        for k in range(i + 1, n):
            acc = acc - A[k * n + i] * z[k]
        z[i] = acc / A[i * n + i]
    features(img, w, nch, c, y, x, f)
    acc = 0.0
    for i in range(n):
        acc = acc + z[i] * f[i]
    if not (acc > -1e12 and acc < 1e12):
        return NONE
    v = floor(acc + 0.5)
    return 0 if v < 0.0 else (maxv if v > <double>maxv else <int64_t>v)


cdef int64_t predict_one(const int64_t* img, Py_ssize_t h, Py_ssize_t w, Py_ssize_t nch, Py_ssize_t c,
                         Py_ssize_t y, Py_ssize_t x, Py_ssize_t radius, double ridge, int64_t maxv, double* A, double* b, int64_t* last) noexcept nogil:
    """The prediction of channel c at (y, x) (NONE near an edge or where the window is too small or
    singular). A, b: this row's window sums; last: the pixel they hold ((-1, -1): none). Where they
    hold (y, x - 1) the window slides one column, else it is summed afresh."""
    cdef Py_ssize_t n = n_features(c), i, dy, count = 0
    cdef bint slide
    if y < REACH or x < REACH or x + REACH >= w:
        return NONE
    slide = last[0] == y and last[1] == x - 1
    if not slide:
        for i in range(n * n):
            A[i] = 0.0
        for i in range(n):
            b[i] = 0.0
    window_sums(A, b, img, w, nch, c, n, y, x, radius, slide)
    last[0], last[1] = y, x
    for dy in range(radius + 1):
        if y - dy >= REACH:
            count += max(0, seg_hi(x, radius, dy, w) - seg_lo(x, radius) + 1)
    if count < n + 2:
        return NONE
    return solve_predict(A, b, img, w, nch, c, y, x, ridge, maxv)


def ring_rows(Py_ssize_t width) -> int:
    """Rows of window sums a chunk keeps: the rows a wavefront step can hold (row y is coded at
    steps 2y .. 2y + width - 1, so rows K apart never overlap)."""
    return width // 2 + 1


def new_state(Py_ssize_t width, Py_ssize_t nch):
    """A chunk's window sums (one slot per in-flight row and channel), empty."""
    k = ring_rows(width)
    return (np.zeros((k, nch, MAX_FEATURES * MAX_FEATURES)), np.zeros((k, nch, MAX_FEATURES)),
            np.full((k, nch, 2), -1, np.int64))


@cython.boundscheck(False)
def predict_pass(const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys, const int64_t[::1] xs,
                 int64_t[::1] out, Py_ssize_t radius, double ridge, int64_t maxv, int n_threads,
                 double[:, :, ::1] sums, double[:, :, ::1] rhs, int64_t[:, :, ::1] last):
    """out[i] = the least-squares prediction of channel c at (ys[i], xs[i]) (NO_PREDICTION where
    there is none), for the pixels of one wavefront step (at most one a row); sums/rhs/last: the
    chunk's window sums (new_state), adapted. n_threads blocks in parallel."""
    cdef Py_ssize_t h = img.shape[0], w = img.shape[1], nch = img.shape[2], n = ys.shape[0], i, k, s
    if not 0 <= c < nch or out.shape[0] < n or xs.shape[0] != n or not 1 <= radius <= MAX_RADIUS:
        raise ValueError("local least squares: arguments out of range")
    k = ring_rows(w)
    if (sums.shape[0] != k or sums.shape[1] != nch or sums.shape[2] != MAX_FEATURES * MAX_FEATURES
            or rhs.shape[0] != k or rhs.shape[1] != nch or rhs.shape[2] != MAX_FEATURES
            or last.shape[0] != k or last.shape[1] != nch or last.shape[2] != 2):
        raise ValueError("local least squares: window sums do not fit the chunk")
    for i in range(n):
        if not (0 <= ys[i] < h and 0 <= xs[i] < w):
            raise ValueError("pixel outside the chunk")
        if i > 0 and ys[i] <= ys[i - 1]:
            raise ValueError("local least squares: a step's rows must rise")
    if n > 0 and ys[n - 1] - ys[0] >= k:
        raise ValueError("local least squares: a step spans more rows than the window sums hold")
    if n == 0:
        return
    cdef const int64_t* base = &img[0, 0, 0]
    for i in prange(n, nogil=True, schedule="static", num_threads=max(1, n_threads)):
        s = ys[i] % k
        out[i] = predict_one(base, h, w, nch, c, ys[i], xs[i], radius, ridge, maxv,
                             &sums[s, c, 0], &rhs[s, c, 0], &last[s, c, 0])
