"""A decoded JPEG as its 8x8 blocks of quantized DCT coefficients: libjpeg's integer inverse DCT,
and the adaptive context model that codes the coefficients and any pixel corrections.

The inverse DCT is libjpeg's default ("islow": the Loeffler-Ligtenberg-Moschytz factorisation in
13-bit fixed point, 2 extra bits between the column and the row pass, results rounded, shifted by
128 and clamped to 0..255), which libjpeg-turbo's SIMD versions reproduce bit for bit; so blocks
decoded by Pillow, browsers and most tools come out of `reconstruct` exactly. Exactness never rests
on that: the encoder codes, for every block, the difference between the image and what
`reconstruct` gives (models/jpeg_coefficients.py), and the decoder adds it back.

The model (one implementation for both directions, `code_blocks`): blocks in raster order; per
block and channel the 64 coefficients in JPEG's zigzag order, each as a bucket symbol
(primitives.pxd) under adaptive counts chosen by a context, its low bits in pieces under uniform
rows. Contexts: the DC coefficient is coded as its difference from a prediction by the left, upper
and upper-left blocks' DC (the median of L, A and L + A - AL), in a context of how much those
differ; each AC coefficient in a context of its zigzag position and the magnitudes of the same
coefficient in the left and upper blocks and of its two lower-frequency neighbours in the block.
Then one flag per block (does it need corrections), and if so, the corrections of its pixels.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from neuralzip.kernels.primitives cimport (Bucket, bit_length, bucket_of, count_update, low_bits_of_bucket,
                                           unzigzag, value_of, zigzag)
from neuralzip.kernels.range_decoder cimport RangeDecoder, range_decode, range_decoder_init

import numpy as np

cdef enum:
    WIDTH = 64            # every row of counts has this many symbols (unused ones keep count 0)
    PIECE = 6             # low bits go in pieces of at most 6 bits (2^6 = WIDTH)
    ACT = 12              # activity classes of a context
    N_DC = 2 * ACT        # DC contexts: (luma or chroma) x activity
    N_AC = 2 * 63 * ACT   # AC contexts: (luma or chroma) x zigzag position 1..63 x activity
    N_FLAG = 3            # correction-flag contexts: how many of the left and upper blocks had some
    N_RES = 4 * 3         # correction contexts: channel x the previous correction's size (0, 1, more)
    N_CTX = N_DC + N_AC + N_FLAG + N_RES
    INC = 32
    LIMIT = 1 << 16
    # CONST_BITS and PASS1_BITS of libjpeg's islow inverse DCT
    CONST_BITS = 13
    PASS1_BITS = 2

cdef enum:
    MAX_COEF = 2047        # |coefficient| of an 8-bit JPEG (and what the encoder may record)
    MAX_CORRECTION = 255   # |image - reconstruction| of a sample
    MAX_U = 4 * MAX_COEF + 1  # the largest zigzagged value coded (a DC difference)

COEF_LIMIT = MAX_COEF

# JPEG's zigzag order: ZIGZAG[k] is the natural (row-major) index of the k-th coefficient coded
cdef int ZIGZAG[64]
cdef int ABOVE_IN_BLOCK[64]   # natural index of the lower-frequency neighbour (u, v-1), or -1
cdef int LEFT_IN_BLOCK[64]    # (u-1, v), or -1


cdef void _init_orders():
    cdef int k = 0, s, i, r, c
    for s in range(15):
        for i in range(s + 1):
            # even diagonals run up and to the right, odd ones down and to the left
            r = s - i if s % 2 == 0 else i
            c = s - r
            if r < 8 and c < 8:
                ZIGZAG[k] = r * 8 + c
                k += 1
    for i in range(64):
        ABOVE_IN_BLOCK[i] = i - 8 if i >= 8 else -1
        LEFT_IN_BLOCK[i] = i - 1 if i % 8 else -1


_init_orders()
zigzag_order = np.array([ZIGZAG[k] for k in range(64)], dtype=np.int64)


# ---- libjpeg's islow inverse DCT

cdef enum:
    F_0_298 = 2446
    F_0_390 = 3196
    F_0_541 = 4433
    F_0_765 = 6270
    F_0_899 = 7373
    F_1_175 = 9633
    F_1_501 = 12299
    F_1_847 = 15137
    F_1_961 = 16069
    F_2_053 = 16819
    F_2_562 = 20995
    F_3_072 = 25172


cdef inline int64_t descale(int64_t x, int n) noexcept nogil:
    return (x + (<int64_t>1 << (n - 1))) >> n


cdef inline void idct_1d(const int64_t* x, Py_ssize_t stride, int64_t* out, Py_ssize_t ostride, int shift) noexcept nogil:
    """One 8-point pass of the islow inverse DCT over x[0], x[stride], ..., results descaled by
    `shift` bits into out[0], out[ostride], ..."""
    cdef int64_t z1, z2, z3, z4, z5, t0, t1, t2, t3, t10, t11, t12, t13, o0, o1, o2, o3
    # even part
    z2 = x[2 * stride]
    z3 = x[6 * stride]
    z1 = (z2 + z3) * F_0_541
    t2 = z1 - z3 * F_1_847
    t3 = z1 + z2 * F_0_765
    t0 = (x[0] + x[4 * stride]) << CONST_BITS
    t1 = (x[0] - x[4 * stride]) << CONST_BITS
    t10 = t0 + t3
    t13 = t0 - t3
    t11 = t1 + t2
    t12 = t1 - t2
    # odd part
    o0 = x[7 * stride]
    o1 = x[5 * stride]
    o2 = x[3 * stride]
    o3 = x[1 * stride]
    z1 = o0 + o3
    z2 = o1 + o2
    z3 = o0 + o2
    z4 = o1 + o3
    z5 = (z3 + z4) * F_1_175
    o0 = o0 * F_0_298
    o1 = o1 * F_2_053
    o2 = o2 * F_3_072
    o3 = o3 * F_1_501
    z1 = -z1 * F_0_899
    z2 = -z2 * F_2_562
    z3 = -z3 * F_1_961 + z5
    z4 = -z4 * F_0_390 + z5
    o0 = o0 + z1 + z3
    o1 = o1 + z2 + z4
    o2 = o2 + z2 + z3
    o3 = o3 + z1 + z4
    out[0] = descale(t10 + o3, shift)
    out[7 * ostride] = descale(t10 - o3, shift)
    out[1 * ostride] = descale(t11 + o2, shift)
    out[6 * ostride] = descale(t11 - o2, shift)
    out[2 * ostride] = descale(t12 + o1, shift)
    out[5 * ostride] = descale(t12 - o1, shift)
    out[3 * ostride] = descale(t13 + o0, shift)
    out[4 * ostride] = descale(t13 - o0, shift)


cdef inline void idct_block(const int64_t* coef, const int64_t* q, int64_t* out) noexcept nogil:
    """64 coefficients (natural order) times their quantizer steps -> 64 samples in 0..255."""
    cdef int64_t deq[64]
    cdef int64_t ws[64]
    cdef int i
    for i in range(64):
        deq[i] = coef[i] * q[i]
    for i in range(8):  # columns
        idct_1d(&deq[i], 8, &ws[i], 8, CONST_BITS - PASS1_BITS)
    for i in range(8):  # rows
        idct_1d(&ws[8 * i], 1, &out[8 * i], 1, CONST_BITS + PASS1_BITS + 3)
    for i in range(64):
        out[i] = min(255, max(0, out[i] + 128))


@cython.boundscheck(False)
def reconstruct(const int64_t[:, :, :, ::1] coefs, const int64_t[:, ::1] steps, int64_t[:, :, ::1] out):
    """Blocks (block rows, block columns, channels, 64 natural-order coefficients), channel c
    quantized by steps[min(c, 1)] (luma, chroma) -> out (8 x block rows, 8 x block columns,
    channels): the samples a JPEG decoder makes of them."""
    cdef Py_ssize_t by, bx, c, i, nby = coefs.shape[0], nbx = coefs.shape[1], nc = coefs.shape[2]
    cdef int64_t block[64]
    if (out.shape[0] != 8 * nby or out.shape[1] != 8 * nbx or out.shape[2] != nc or coefs.shape[3] != 64
            or steps.shape[1] != 64 or steps.shape[0] < min(nc, 2)):
        raise ValueError("reconstruct: shapes do not fit")
    with nogil:
        for by in range(nby):
            for bx in range(nbx):
                for c in range(nc):
                    idct_block(&coefs[by, bx, c, 0], &steps[min(c, 1), 0], block)
                    for i in range(64):
                        out[8 * by + i // 8, 8 * bx + i % 8, c] = block[i]


# ---- the model

cdef class BlockModel:
    """Adaptive counts of every context (a chunk starts with a fresh model)."""
    cdef int64_t[:, ::1] counts
    cdef int64_t[::1] totals

    def __init__(self):
        cdef Py_ssize_t i, s
        self.counts = np.zeros((N_CTX, WIDTH), np.int64)
        self.totals = np.zeros(N_CTX, np.int64)
        for i in range(N_CTX):
            for s in range(WIDTH):
                # small values likelier from the start: 32, 16, ..., 1, then 1 for the rest
                self.counts[i, s] = max(1, 32 >> min(s, 6))
                self.totals[i] += self.counts[i, s]


ctypedef struct Coder:
    bint decoding
    RangeDecoder dec
    int32_t* syms     # encoding: the symbols and their rows, in coding order
    double* rows
    Py_ssize_t n, cap
    bint failed       # decoding: the stream does not fit the model; encoding: out of room


cdef double UNIFORM[PIECE + 1][WIDTH]


cdef void _init_uniform():
    cdef int w, s
    for w in range(PIECE + 1):
        for s in range(WIDTH):
            UNIFORM[w][s] = 1.0 if s < (1 << w) else 0.0


_init_uniform()


cdef inline int64_t code_symbol(Coder* k, const double* row, double total, int64_t sym) noexcept nogil:
    """Encoding: record `sym` under `row`; decoding: the symbol the stream holds. -1 on failure."""
    cdef Py_ssize_t s
    if k.failed:
        return -1
    if k.decoding:
        sym = range_decode(&k.dec, row, WIDTH, total)
        if sym < 0:
            k.failed = True
        return sym
    if k.n >= k.cap:
        k.failed = True
        return -1
    k.syms[k.n] = <int32_t>sym
    for s in range(WIDTH):
        k.rows[k.n * WIDTH + s] = row[s]
    k.n += 1
    return sym


cdef int64_t code_value(Coder* k, BlockModel m, Py_ssize_t ctx, int64_t u) noexcept nogil:
    """A non-negative value (`u` when encoding) in context `ctx`: its bucket under the context's
    counts (then updated), its low bits under uniform rows. -> the value; -1 on failure."""
    cdef Bucket b
    cdef double row[WIDTH]
    cdef int64_t sym, nlow, low = 0, piece, shift = 0, width
    cdef Py_ssize_t s
    b = bucket_of(u if not k.decoding else 0)
    for s in range(WIDTH):
        row[s] = <double>m.counts[ctx, s]
    sym = code_symbol(k, row, <double>m.totals[ctx], b.sym)
    if sym < 0:
        return -1
    count_update(&m.counts[ctx, 0], &m.totals[ctx], WIDTH, sym, INC, LIMIT)
    nlow = low_bits_of_bucket(sym)
    if nlow > 16:  # past any value this model codes: a damaged stream
        k.failed = True
        return -1
    while shift < nlow:
        width = min(<int64_t>PIECE, nlow - shift)
        piece = code_symbol(k, UNIFORM[width], <double>(1 << width), (b.low >> shift) & ((1 << width) - 1))
        if piece < 0 or piece >= (1 << width):
            k.failed = True
            return -1
        low |= piece << shift
        shift += width
    u = value_of(sym, low)
    if u > MAX_U:
        k.failed = True
        return -1
    return u


cdef inline int64_t iabs(int64_t v) noexcept nogil:
    return -v if v < 0 else v


cdef inline Py_ssize_t activity(int64_t v) noexcept nogil:
    return min(<int64_t>ACT - 1, bit_length(v))


cdef inline int64_t median3(int64_t a, int64_t b, int64_t c) noexcept nogil:
    return max(min(a, b), min(max(a, b), c))


@cython.boundscheck(False)  # the def wrappers check every shape the loops rely on
cdef int code_blocks(Coder* k, BlockModel m, int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags,
                     int64_t[:, :, ::1] corr, Py_ssize_t rows, Py_ssize_t cols,
                     Py_ssize_t r0, Py_ssize_t r1, int64_t* ends) noexcept nogil:
    """Blocks rows r0..r1-1 of a chunk (coefs: block rows x block columns x channels x 64; flags;
    corr: the corrections of the samples, (pixel rows, pixel columns, channels)), of which the
    first `rows` x `cols` pixels are visible (and coded). Encoding reads the arrays, decoding writes them;
    `ends` (when not NULL) gets the symbol count after each block. -> 0, or -1 on failure."""
    cdef Py_ssize_t by, bx, c, kk, i, y, x, nbx = coefs.shape[1], nc = coefs.shape[2], cc, ctx
    cdef int64_t v, u, pred, L, A, AL, act, prev
    cdef bint hasL, hasA
    for by in range(r0, r1):
        for bx in range(nbx):
            hasL = bx > 0
            hasA = by > 0
            for c in range(nc):
                cc = 0 if c == 0 else 1
                # DC: the difference from the neighbours' prediction
                L = coefs[by, bx - 1, c, 0] if hasL else 0
                A = coefs[by - 1, bx, c, 0] if hasA else 0
                AL = coefs[by - 1, bx - 1, c, 0] if hasL and hasA else 0
                if hasL and hasA:
                    pred = median3(L, A, L + A - AL)
                    act = iabs(L - AL) + iabs(A - AL)
                elif hasL or hasA:
                    pred = L if hasL else A
                    act = 64
                else:
                    pred = 0
                    act = 1024
                u = code_value(k, m, cc * ACT + activity(act), zigzag(coefs[by, bx, c, 0] - pred))
                if u < 0:
                    return -1
                v = unzigzag(u) + pred
                if v < -MAX_COEF or v > MAX_COEF:
                    k.failed = True
                    return -1
                coefs[by, bx, c, 0] = v
                # AC, in zigzag order
                for kk in range(1, 64):
                    i = ZIGZAG[kk]
                    act = 0
                    if hasL:
                        act += 2 * iabs(coefs[by, bx - 1, c, i])
                    if hasA:
                        act += 2 * iabs(coefs[by - 1, bx, c, i])
                    if ABOVE_IN_BLOCK[i] >= 0:
                        act += iabs(coefs[by, bx, c, ABOVE_IN_BLOCK[i]])
                    if LEFT_IN_BLOCK[i] >= 0:
                        act += iabs(coefs[by, bx, c, LEFT_IN_BLOCK[i]])
                    ctx = N_DC + (cc * 63 + kk - 1) * ACT + activity(act)
                    u = code_value(k, m, ctx, zigzag(coefs[by, bx, c, i]))
                    if u < 0:
                        return -1
                    v = unzigzag(u)
                    if v < -MAX_COEF or v > MAX_COEF:
                        k.failed = True
                        return -1
                    coefs[by, bx, c, i] = v
            # does the block need pixel corrections?
            ctx = N_DC + N_AC + (flags[by, bx - 1] if hasL else 0) + (flags[by - 1, bx] if hasA else 0)
            u = code_value(k, m, ctx, flags[by, bx])
            if u < 0 or u > 1:
                k.failed = True
                return -1
            flags[by, bx] = <uint8_t>u
            for c in range(corr.shape[2] if u else 0):
                prev = 0
                for y in range(8 * by, min(8 * by + 8, rows)):
                    for x in range(8 * bx, min(8 * bx + 8, cols)):
                        ctx = N_DC + N_AC + N_FLAG + 3 * c + min(prev, 2)
                        u = code_value(k, m, ctx, zigzag(corr[y, x, c]))
                        if u < 0:
                            return -1
                        v = unzigzag(u)
                        if v < -MAX_CORRECTION or v > MAX_CORRECTION:
                            k.failed = True
                            return -1
                        corr[y, x, c] = v
                        prev = iabs(v)
            if ends != NULL:
                ends[(by - r0) * nbx + bx] = k.n
    return 0


def encode_rows(BlockModel m, int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
                Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t r0, Py_ssize_t r1,
                int32_t[::1] syms, double[:, ::1] out_rows, int64_t[::1] ends) -> int:
    """The symbols and rows that code block rows r0..r1-1 (in order, into syms/out_rows; ends[i]: how
    many after the i-th block) -> how many."""
    cdef Coder k
    k.decoding = False
    k.failed = False
    k.syms = &syms[0]
    k.rows = &out_rows[0, 0]
    k.n = 0
    k.cap = min(syms.shape[0], out_rows.shape[0])
    check_shapes(coefs, flags, corr, rows, cols)
    if (out_rows.shape[1] != WIDTH or not 0 <= r0 <= r1 <= coefs.shape[0]
            or ends.shape[0] < (r1 - r0) * coefs.shape[1]):
        raise ValueError("encode_rows: shapes do not fit")
    with nogil:
        code_blocks(&k, m, coefs, flags, corr, rows, cols, r0, r1, &ends[0] if ends.shape[0] else NULL)
    if k.failed:
        raise ValueError("encode_rows: a value past the model's range, or too little room")
    return k.n


def max_symbols_per_block(Py_ssize_t channels) -> int:
    """Room encode_rows needs per block: every coefficient and correction with its low-bit pieces."""
    return 64 * channels * 4 + 1 + 64 * 4 * 4


def decode(const uint32_t[::1] words, int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
           Py_ssize_t rows, Py_ssize_t cols) -> bool:
    """A chunk's coefficients, flags and corrections from its words (arrays written) -> whether the
    stream fitted the model."""
    cdef Coder k
    cdef BlockModel m = BlockModel()
    k.decoding = True
    k.failed = False
    k.n = 0
    k.cap = 0
    check_shapes(coefs, flags, corr, rows, cols)
    with nogil:
        range_decoder_init(&k.dec, &words[0] if words.shape[0] else NULL, words.shape[0])
        code_blocks(&k, m, coefs, flags, corr, rows, cols, 0, coefs.shape[0], NULL)
    return not k.failed


ROW_WIDTH = WIDTH


cdef check_shapes(int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
                  Py_ssize_t rows, Py_ssize_t cols):
    if (coefs.shape[3] != 64 or coefs.shape[2] > 3 or flags.shape[0] != coefs.shape[0]
            or flags.shape[1] != coefs.shape[1] or corr.shape[2] > 4 or rows < 0 or cols < 0
            or rows > corr.shape[0] or cols > corr.shape[1] or rows > 8 * coefs.shape[0]
            or cols > 8 * coefs.shape[1]):
        raise ValueError("jpeg_blocks: shapes do not fit")
