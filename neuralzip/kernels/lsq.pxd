# Least-squares primitives the online fits share, written once and inlined where they are
# cimported: the ols-cascade audio model's fits (ols_audio.pyx) and the image models' online
# least-squares mixer (classic_image.pyx). Exact on any machine: strict IEEE-754 float64, only
# + - * / and sqrt, every sum in a fixed order.

cimport cython
from libc.math cimport sqrt

# Vector helpers in C: two-lane double vectors (SSE2 on x86-64, NEON on ARM64; GCC and Clang
# vector extensions), or four-lane ones where the cimporting module is compiled with AVX
# (ols_audio_avx, see setup.py). Every lane operation is one IEEE-754 double operation and every sum has a fixed
# order (eight partial sums over q % 8, then a fixed tree, then the tail in order), so the
# results are the same bits with two lanes, four or none, at -O0 and at -O2 (no contraction is
# allowed by the build flags). The four-lane copy exists because GCC's four-lane code without
# AVX ran 30-50% slower than the two-lane one, and AVX made the model about 10% faster.
cdef extern from *:
    """
    #if defined(__AVX__)
    #define NZ_VECTOR_LANES 4
    typedef double nz_v4d __attribute__((vector_size(32), aligned(8)));
    #define NZ_V4(p) (*(const nz_v4d*)(p))
    /* the same partial sums as below, as two four-lane vectors: s0[j] sums q % 8 == j, s4[j] q % 8 == 4 + j */
    static inline double nz_dot(const double* a, const double* b, Py_ssize_t n) {
        nz_v4d s0 = {0.0, 0.0, 0.0, 0.0}, s4 = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            s0 = s0 + NZ_V4(a + q) * NZ_V4(b + q);
            s4 = s4 + NZ_V4(a + q + 4) * NZ_V4(b + q + 4);
        }
        double out = ((s0[0] + s0[1]) + (s0[2] + s0[3])) + ((s4[0] + s4[1]) + (s4[2] + s4[3]));
        for (; q < n; q++) out = out + a[q] * b[q];
        return out;
    }
    static inline double nz_axpy_dot(double* w, const double* xo, const double* xn, double g, Py_ssize_t n) {
        nz_v4d gg = {g, g, g, g}, s0 = {0.0, 0.0, 0.0, 0.0}, s4 = {0.0, 0.0, 0.0, 0.0}, w0, w4;
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            w0 = NZ_V4(w + q) + gg * NZ_V4(xo + q);
            w4 = NZ_V4(w + q + 4) + gg * NZ_V4(xo + q + 4);
            *(nz_v4d*)(w + q) = w0;
            *(nz_v4d*)(w + q + 4) = w4;
            s0 = s0 + w0 * NZ_V4(xn + q);
            s4 = s4 + w4 * NZ_V4(xn + q + 4);
        }
        double out = ((s0[0] + s0[1]) + (s0[2] + s0[3])) + ((s4[0] + s4[1]) + (s4[2] + s4[3]));
        for (; q < n; q++) {
            w[q] = w[q] + g * xo[q];
            out = out + w[q] * xn[q];
        }
        return out;
    }
    static inline void nz_decay_axpy_to(double* dst, const double* r, const double* x, double lam, double g,
                                        Py_ssize_t n) {
        nz_v4d ll = {lam, lam, lam, lam}, gg = {g, g, g, g};
        Py_ssize_t q = 0;
        for (; q + 4 <= n; q += 4) *(nz_v4d*)(dst + q) = ll * NZ_V4(r + q) + gg * NZ_V4(x + q);
        for (; q < n; q++) dst[q] = lam * r[q] + g * x[q];
    }
    static inline void nz_decay_axpy(double* r, const double* x, double lam, double g, Py_ssize_t n) {
        nz_decay_axpy_to(r, r, x, lam, g, n);
    }
    static inline void nz_mix2(double* dst, const double* a, const double* b, double wa, double wb, Py_ssize_t n) {
        nz_v4d aa = {wa, wa, wa, wa}, bb = {wb, wb, wb, wb};
        Py_ssize_t q = 0;
        for (; q + 4 <= n; q += 4) *(nz_v4d*)(dst + q) = aa * NZ_V4(a + q) + bb * NZ_V4(b + q);
        for (; q < n; q++) dst[q] = wa * a[q] + wb * b[q];
    }
    static inline double nz_wsq(const double* p, const double* a, Py_ssize_t n) {
        nz_v4d s0 = {0.0, 0.0, 0.0, 0.0}, s4 = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            s0 = s0 + (NZ_V4(p + q) * NZ_V4(a + q)) * NZ_V4(a + q);
            s4 = s4 + (NZ_V4(p + q + 4) * NZ_V4(a + q + 4)) * NZ_V4(a + q + 4);
        }
        double out = ((s0[0] + s0[1]) + (s0[2] + s0[3])) + ((s4[0] + s4[1]) + (s4[2] + s4[3]));
        for (; q < n; q++) out = out + (p[q] * a[q]) * a[q];
        return out;
    }
    #else
    #define NZ_VECTOR_LANES 2
    typedef double nz_v2d __attribute__((vector_size(16), aligned(8)));
    /* sum of a[q] * b[q], q < n: eight partial sums over q % 8 (four pairs, so that the adds of
       a long sum do not wait on each other), then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)),
       then the n % 8 tail in order */
    static inline double nz_dot(const double* a, const double* b, Py_ssize_t n) {
        nz_v2d s01 = {0.0, 0.0}, s23 = {0.0, 0.0}, s45 = {0.0, 0.0}, s67 = {0.0, 0.0};
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            s01 = s01 + *(const nz_v2d*)(a + q) * *(const nz_v2d*)(b + q);
            s23 = s23 + *(const nz_v2d*)(a + q + 2) * *(const nz_v2d*)(b + q + 2);
            s45 = s45 + *(const nz_v2d*)(a + q + 4) * *(const nz_v2d*)(b + q + 4);
            s67 = s67 + *(const nz_v2d*)(a + q + 6) * *(const nz_v2d*)(b + q + 6);
        }
        double out = ((s01[0] + s01[1]) + (s23[0] + s23[1])) + ((s45[0] + s45[1]) + (s67[0] + s67[1]));
        for (; q < n; q++) out = out + a[q] * b[q];
        return out;
    }
    /* w[q] += g * xo[q] for q < n, and -> the sum of w[q] * xn[q] with the new w, in nz_dot's order
       (one pass over w for an NLMS update and the next prediction) */
    static inline double nz_axpy_dot(double* w, const double* xo, const double* xn, double g, Py_ssize_t n) {
        nz_v2d gg = {g, g}, s01 = {0.0, 0.0}, s23 = {0.0, 0.0}, s45 = {0.0, 0.0}, s67 = {0.0, 0.0}, w01, w23, w45, w67;
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            w01 = *(nz_v2d*)(w + q) + gg * *(const nz_v2d*)(xo + q);
            w23 = *(nz_v2d*)(w + q + 2) + gg * *(const nz_v2d*)(xo + q + 2);
            w45 = *(nz_v2d*)(w + q + 4) + gg * *(const nz_v2d*)(xo + q + 4);
            w67 = *(nz_v2d*)(w + q + 6) + gg * *(const nz_v2d*)(xo + q + 6);
            *(nz_v2d*)(w + q) = w01;
            *(nz_v2d*)(w + q + 2) = w23;
            *(nz_v2d*)(w + q + 4) = w45;
            *(nz_v2d*)(w + q + 6) = w67;
            s01 = s01 + w01 * *(const nz_v2d*)(xn + q);
            s23 = s23 + w23 * *(const nz_v2d*)(xn + q + 2);
            s45 = s45 + w45 * *(const nz_v2d*)(xn + q + 4);
            s67 = s67 + w67 * *(const nz_v2d*)(xn + q + 6);
        }
        double out = ((s01[0] + s01[1]) + (s23[0] + s23[1])) + ((s45[0] + s45[1]) + (s67[0] + s67[1]));
        for (; q < n; q++) {
            w[q] = w[q] + g * xo[q];
            out = out + w[q] * xn[q];
        }
        return out;
    }
    /* r[q] = lam * r[q] + g * x[q], q < n (n a multiple of 2) */
    static inline void nz_decay_axpy(double* r, const double* x, double lam, double g, Py_ssize_t n) {
        nz_v2d ll = {lam, lam}, gg = {g, g};
        for (Py_ssize_t q = 0; q < n; q += 2)
            *(nz_v2d*)(r + q) = ll * *(nz_v2d*)(r + q) + gg * *(const nz_v2d*)(x + q);
    }
    /* dst[q] = wa * a[q] + wb * b[q], q < n (n a multiple of 2) */
    static inline void nz_mix2(double* dst, const double* a, const double* b, double wa, double wb, Py_ssize_t n) {
        nz_v2d aa = {wa, wa}, bb = {wb, wb};
        for (Py_ssize_t q = 0; q < n; q += 2)
            *(nz_v2d*)(dst + q) = aa * *(const nz_v2d*)(a + q) + bb * *(const nz_v2d*)(b + q);
    }
    /* sum of (p[q] * a[q]) * a[q], q < n: nz_dot's order */
    static inline double nz_wsq(const double* p, const double* a, Py_ssize_t n) {
        nz_v2d s01 = {0.0, 0.0}, s23 = {0.0, 0.0}, s45 = {0.0, 0.0}, s67 = {0.0, 0.0};
        Py_ssize_t q = 0;
        for (; q + 8 <= n; q += 8) {
            s01 = s01 + (*(const nz_v2d*)(p + q) * *(const nz_v2d*)(a + q)) * *(const nz_v2d*)(a + q);
            s23 = s23 + (*(const nz_v2d*)(p + q + 2) * *(const nz_v2d*)(a + q + 2)) * *(const nz_v2d*)(a + q + 2);
            s45 = s45 + (*(const nz_v2d*)(p + q + 4) * *(const nz_v2d*)(a + q + 4)) * *(const nz_v2d*)(a + q + 4);
            s67 = s67 + (*(const nz_v2d*)(p + q + 6) * *(const nz_v2d*)(a + q + 6)) * *(const nz_v2d*)(a + q + 6);
        }
        double out = ((s01[0] + s01[1]) + (s23[0] + s23[1])) + ((s45[0] + s45[1]) + (s67[0] + s67[1]));
        for (; q < n; q++) out = out + (p[q] * a[q]) * a[q];
        return out;
    }
    /* dst[q] = lam * r[q] + g * x[q], q < n (n a multiple of 2) */
    static inline void nz_decay_axpy_to(double* dst, const double* r, const double* x, double lam, double g,
                                        Py_ssize_t n) {
        nz_v2d ll = {lam, lam}, gg = {g, g};
        for (Py_ssize_t q = 0; q < n; q += 2)
            *(nz_v2d*)(dst + q) = ll * *(const nz_v2d*)(r + q) + gg * *(const nz_v2d*)(x + q);
    }
    #endif
    /* 1 where this process may use AVX (the CPU has it and the system saves its registers) */
    static inline int nz_cpu_has_avx(void) {
    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx");
    #else
        return 0;
    #endif
    }
    """
    int nz_cpu_has_avx() noexcept nogil
    int NZ_VECTOR_LANES
    void nz_decay_axpy_to(double* dst, const double* r, const double* x, double lam, double g,
                          Py_ssize_t n) noexcept nogil
    void nz_mix2(double* dst, const double* a, const double* b, double wa, double wb, Py_ssize_t n) noexcept nogil
    double nz_dot(const double* a, const double* b, Py_ssize_t n) noexcept nogil
    double nz_wsq(const double* p, const double* a, Py_ssize_t n) noexcept nogil
    double nz_axpy_dot(double* w, const double* xo, const double* xn, double g, Py_ssize_t n) noexcept nogil
    void nz_decay_axpy(double* r, const double* x, double lam, double g, Py_ssize_t n) noexcept nogil


cdef enum:
    LSQ_MAX_N = 40  # the most unknowns a solve takes


cdef inline void decay_add(double* R, double* b, const double* x, Py_ssize_t n, Py_ssize_t stride, double lam,
                           double cw, double y) noexcept nogil:
    """R = lam R + cw x x' (the whole lower triangle, rows `stride` apart), b = lam b + cw x y: one
    weighted sample. Each row is rounded up to a pair, so x[n] must be 0 when n is odd."""
    cdef Py_ssize_t i
    for i in range(n):
        nz_decay_axpy(R + i * stride, x, lam, cw * x[i], (i + 2) & ~1)
    nz_decay_axpy(b, x, lam, cw * y, (n + 1) & ~1)


@cython.boundscheck(False)
@cython.cdivision(True)
cdef inline bint cholesky_solve(const double* R, const double* b, double* w, double* C, Py_ssize_t n,
                                Py_ssize_t stride, double nu) noexcept nogil:
    """w = (R + nu I)^-1 b by Cholesky (R: the lower triangle, rows `stride` apart; C: work of R's
    shape; n <= LSQ_MAX_N). -> False (w kept) if the matrix is not positive definite."""
    cdef Py_ssize_t i, j, q
    cdef double z[LSQ_MAX_N]
    cdef double dinv[LSQ_MAX_N]
    cdef double acc
    for j in range(n):
        acc = (R[j * stride + j] + nu) - nz_dot(C + j * stride, C + j * stride, j)
        if not acc > 0.0:
            return False
        C[j * stride + j] = sqrt(acc)
        dinv[j] = 1.0 / C[j * stride + j]  # one division a column: multiplications below
        for i in range(j + 1, n):
            C[i * stride + j] = (R[i * stride + j] - nz_dot(C + i * stride, C + j * stride, j)) * dinv[j]
    for i in range(n):
        z[i] = (b[i] - nz_dot(C + i * stride, z, i)) * dinv[i]
    for i in range(n - 1, -1, -1):
        acc = z[i]
        for q in range(i + 1, n):
            acc = acc - C[q * stride + i] * w[q]
        w[i] = acc * dinv[i]
    return True
