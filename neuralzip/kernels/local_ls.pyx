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
# Exact on any machine: strict IEEE-754 float64 with only + - * / and sqrt in a fixed order
# (the build allows no contraction or fast-math), and each pixel is computed by one thread
# from the image alone, so the thread split never changes a result.

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


@cython.cdivision(True)
cdef int64_t predict_one(const int64_t* img, Py_ssize_t h, Py_ssize_t w, Py_ssize_t nch, Py_ssize_t c,
                         Py_ssize_t y, Py_ssize_t x, Py_ssize_t radius, double ridge, int64_t maxv, double dist_pow) noexcept nogil:
    """The least-squares prediction of channel c at (y, x), or NO_PREDICTION where the pixel is too
    near an edge, the window holds too few pixels or the system is singular."""
    cdef Py_ssize_t n = n_features(c), i, j, k, dy, yy, xx, x0, x1, count = 0
    cdef double A[MAX_FEATURES * MAX_FEATURES]
    cdef double b[MAX_FEATURES]
    cdef double f[MAX_FEATURES]
    cdef double z[MAX_FEATURES]
    cdef double v, acc, tr, nu
    if y < REACH or x < REACH or x + REACH >= w:
        return NONE
    for i in range(n * n):
        A[i] = 0.0
    for i in range(n):
        b[i] = 0.0
    cdef double wt
    for dy in range(radius, -1, -1):
        yy = y - dy
        if yy < REACH:
            continue
        x0 = max(x - radius, REACH)
        # causal: x' + 2y' < x + 2y
        x1 = min(x + radius, w - 1 - REACH, x + 2 * dy - 1)
        for xx in range(x0, x1 + 1):
            features(img, w, nch, c, yy, xx, f)
            v = <double>img[(yy * w + xx) * nch + c]
            wt = 1.0 if dist_pow == 0 else 1.0 / (1.0 + (dy * dy + (xx - x) * (xx - x)) * dist_pow)
            for i in range(n):
                for j in range(i + 1):  # lower triangle
                    A[i * n + j] = A[i * n + j] + wt * f[i] * f[j]
                b[i] = b[i] + wt * f[i] * v
            count += 1
    if count < n + 2:
        return NONE
    tr = 0.0
    for i in range(n):
        tr = tr + A[i * n + i]
    nu = ridge * tr / n + 1.0
    for i in range(n):
        b[i] = b[i] + nu * PRIOR[i]
    # Cholesky A + nu I = L L' in place (lower triangle), then L z = b, L' w = z
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
        acc = b[i]
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


@cython.boundscheck(False)
def predict_pass(const int64_t[:, :, ::1] img, Py_ssize_t c, const int64_t[::1] ys, const int64_t[::1] xs,
                 int64_t[::1] out, Py_ssize_t radius, double ridge, int64_t maxv, int n_threads,
                 double dist_pow=0.0):
    """out[i] = the least-squares prediction of channel c at (ys[i], xs[i]) (NO_PREDICTION where
    there is none), for every pixel of one wavefront step; n_threads blocks in parallel."""
    cdef Py_ssize_t h = img.shape[0], w = img.shape[1], nch = img.shape[2], n = ys.shape[0], i
    if not 0 <= c < nch or out.shape[0] < n or xs.shape[0] != n or not 1 <= radius <= MAX_RADIUS:
        raise ValueError("local least squares: arguments out of range")
    for i in range(n):
        if not (0 <= ys[i] < h and 0 <= xs[i] < w):
            raise ValueError("pixel outside the chunk")
    if n == 0:
        return
    cdef const int64_t* base = &img[0, 0, 0]
    for i in prange(n, nogil=True, schedule="static", num_threads=max(1, n_threads)):
        out[i] = predict_one(base, h, w, nch, c, ys[i], xs[i], radius, ridge, maxv, dist_pow)
