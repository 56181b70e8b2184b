"""A decoded JPEG as its 8x8 blocks of quantized DCT coefficients: libjpeg's integer inverse DCT,
and the adaptive context model that codes the coefficients and any pixel corrections.

The inverse DCT is libjpeg's default ("islow": the Loeffler-Ligtenberg-Moschytz factorisation in
13-bit fixed point, 2 extra bits between the column and the row pass, results rounded, shifted by
128 and clamped to 0..255), which libjpeg-turbo's SIMD versions reproduce bit for bit; so blocks
decoded by Pillow, browsers and most tools come out of `reconstruct` exactly. Exactness never rests
on that: the encoder codes, for every block, the difference between the image and what
`reconstruct` gives (models/jpeg_coefficients.py), and the decoder adds it back.

The model (one implementation for both directions, `code_blocks`): blocks in raster order; per
block and channel first the 63 AC coefficients in JPEG's zigzag order, then the DC coefficient,
each as a bucket symbol (primitives.pxd) under the adaptive counts of its context (starting from a
learned prior), its low bits in pieces under uniform rows. An AC coefficient's context: its zigzag
position; the size of the same coefficient in the left and upper blocks; the size of its two
lower-frequency neighbours in the block; for chroma, the size of the luma coefficient there. The DC
coefficient is coded as its difference from the DC that makes the block continue its left and
upper neighbours' decoded samples across the shared edges (`predict_dc`), in a context of how far
the two edges' predictions disagree. Then one flag per block (does it need corrections), and if
so, the corrections of its samples. With subsampled chroma (4:2:0, 4:2:2) a chunk's luma blocks
come first, with the flags and corrections, then its chroma blocks, whose luma context is the
largest size of the coefficient over the luma blocks they cover (`luma_summary`).

The file also holds libjpeg-turbo's upsampling of subsampled chroma (`upsample`) and the encoder's
estimate of the half-resolution planes from the upsampled ones (`estimate_half`).
"""

cimport cython
from cython.parallel cimport prange
from libc.math cimport nearbyint
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from neuralzip.kernels.primitives cimport (Bucket, bit_length, bucket_of, count_update, low_bits_of_bucket,
                                           unzigzag, value_of, zigzag)
from neuralzip.kernels.range_decoder cimport RangeDecoder, range_decode, range_decoder_init

import numpy as np

cdef enum:
    WIDTH = 64            # every row of counts has this many symbols (unused ones keep count 0)
    PIECE = 6             # low bits go in pieces of at most 6 bits (2^6 = WIDTH)
    DC_CLASSES = 20       # of how far the two edges' DC predictions disagree (half octaves)
    NEIGHBOUR_CLASSES = 10  # of |the same coefficient| in the left and upper blocks, summed (octaves)
    LOWER_CLASSES = 8     # of |the two lower-frequency neighbours| in the block, summed (octaves)
    ACT = NEIGHBOUR_CLASSES * LOWER_CLASSES  # an AC coefficient's activity classes
    N_DC = 2 * DC_CLASSES  # DC contexts: (luma or chroma) x disagreement
    LUMA_CLASSES = 3      # chroma AC contexts also see the luma coefficient's size: 0, 1, more
    N_AC = (1 + LUMA_CLASSES) * 63 * ACT  # AC contexts: luma, chroma x luma class; x zigzag position 1..63 x activity
    N_FLAG = 3            # correction-flag contexts: how many of the left and upper blocks had some
    N_RES = 4 * 3         # correction contexts: channel x the previous correction's size (0, 1, more)
    AT_AC = N_DC
    AT_FLAG = AT_AC + N_AC
    AT_RES = AT_FLAG + N_FLAG
    N_CTX = AT_RES + N_RES
    INC = 32
    LIMIT = 1 << 18
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
        # never the DC coefficient, which a block codes last
        ABOVE_IN_BLOCK[i] = i - 8 if i > 8 else -1
        LEFT_IN_BLOCK[i] = i - 1 if i % 8 and i != 1 else -1


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


cdef inline void idct_raw(const int64_t* coef, const int64_t* q, int64_t* out, bint without_dc) noexcept nogil:
    """64 coefficients (natural order) times their steps -> the 64 samples before the shift by 128
    and the clamp (without_dc: as if the DC coefficient were 0)."""
    cdef int64_t deq[64]
    cdef int64_t ws[64]
    cdef int i
    for i in range(64):
        deq[i] = coef[i] * q[i]
    if without_dc:
        deq[0] = 0
    for i in range(8):  # columns
        idct_1d(&deq[i], 8, &ws[i], 8, CONST_BITS - PASS1_BITS)
    for i in range(8):  # rows
        idct_1d(&ws[8 * i], 1, &out[8 * i], 1, CONST_BITS + PASS1_BITS + 3)


cdef inline void idct_block(const int64_t* coef, const int64_t* q, int64_t* out) noexcept nogil:
    """64 coefficients (natural order) times their quantizer steps -> 64 samples in 0..255."""
    cdef int i
    idct_raw(coef, q, out, False)
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

def default_counts():
    """The counts a model starts from without a learned prior: small values likelier (32, 16, ...,
    1, then 1 for the rest), in every context."""
    return np.array([[max(1, 32 >> min(s, 6)) for s in range(WIDTH)]] * N_CTX, np.int64)


cdef class BlockModel:
    """Adaptive counts of every context (a chunk starts with a fresh model): from a learned prior
    ((CONTEXTS, ROW_WIDTH) integer counts >= 1), or from a fixed start that favours small values.
    With `tally`, it also counts the symbols seen per context (what a prior is learned from)."""
    cdef int64_t[:, ::1] counts
    cdef int64_t[::1] totals
    cdef readonly object tally
    cdef int64_t[:, ::1] _tally
    cdef bint tallying

    def __init__(self, prior=None, bint tally=False):
        cdef Py_ssize_t i, s
        if prior is None:
            counts = default_counts()
        else:
            counts = np.array(prior, np.int64)
            if counts.shape != (N_CTX, WIDTH) or counts.min() < 1 or counts.max() > (1 << 30):
                raise ValueError("BlockModel: the prior is no table of counts for this model")
        self.counts = counts
        self.totals = counts.sum(axis=1)
        self.tallying = tally
        self.tally = np.zeros((N_CTX, WIDTH), np.int64) if tally else None
        if tally:
            self._tally = self.tally


ctypedef struct Window:
    Py_ssize_t top, bottom, left, right  # the image's samples within a chunk's blocks


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
    if m.tallying:
        m._tally[ctx, sym] += 1
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


cdef inline int64_t code_signed(Coder* k, BlockModel m, Py_ssize_t ctx, int64_t v, int64_t pred,
                                int64_t bound) noexcept nogil:
    """A signed value (`v` when encoding) as its zigzagged difference from `pred`, in context `ctx`
    -> the value; k.failed where the stream fails or the value lies past +-bound."""
    cdef int64_t u = code_value(k, m, ctx, zigzag(v - pred))
    if u < 0:
        return 0
    v = unzigzag(u) + pred
    if v < -bound or v > bound:
        k.failed = True
    return v


cdef inline int64_t iabs(int64_t v) noexcept nogil:
    return -v if v < 0 else v


cdef inline Py_ssize_t half_octave(int64_t v, int64_t classes) noexcept nogil:
    """0, 1, 2, 3, then two classes an octave (4-5, 6-7, 8-11, ...), up to classes - 1."""
    cdef int64_t n
    if v < 4:
        return v
    n = bit_length(v)
    return min(classes - 1, 2 * (n - 3) + 4 + ((v >> (n - 2)) & 1))


cdef inline Py_ssize_t octave(int64_t v, int64_t classes) noexcept nogil:
    """0, 1, 2-3, 4-7, ..., up to classes - 1."""
    return min(classes - 1, bit_length(v))


cdef int64_t predict_dc(int64_t[:, :, :, ::1] coefs, Py_ssize_t by, Py_ssize_t bx, Py_ssize_t c, bint hasL,
                       bint hasA, const int64_t* q, int64_t* spread) noexcept nogil:
    """The DC coefficient that makes the block (its AC coefficients known) continue the decoded
    samples of the blocks to its left and above smoothly across their shared edges: along each edge,
    the neighbour's last sample plus the mean of the two sides' gradients. Twice the dequantized DC
    from one edge is sum((3 n_last - n_before) - (3 a_first - a_next)) - 2048, with n the
    neighbour's samples and a this block's without its DC. -> the prediction (the two edges'
    mean); `spread` gets how far the two edges' predictions lie apart (in steps)."""
    cdef int64_t a[64]
    cdef int64_t nb[64]
    cdef int64_t fromL = 0, fromA = 0, twice
    cdef Py_ssize_t r
    idct_raw(&coefs[by, bx, c, 0], q, a, True)
    if hasL:
        idct_block(&coefs[by, bx - 1, c, 0], q, nb)
        for r in range(8):
            fromL += 3 * nb[8 * r + 7] - nb[8 * r + 6] - 3 * a[8 * r] + a[8 * r + 1]
        fromL -= 2048
    if hasA:
        idct_block(&coefs[by - 1, bx, c, 0], q, nb)
        for r in range(8):
            fromA += 3 * nb[56 + r] - nb[48 + r] - 3 * a[r] + a[8 + r]
        fromA -= 2048
    if hasL and hasA:
        twice = (fromL + fromA) // 2
        spread[0] = iabs(fromL - fromA) // (2 * q[0])
    elif hasL or hasA:
        twice = fromL if hasL else fromA
        spread[0] = 256
    else:
        twice = 0
        spread[0] = 1024
    # twice / 2 / q[0], rounded, within the coefficients' range (so that the difference coded stays within MAX_U)
    return min(<int64_t>MAX_COEF, max(-<int64_t>MAX_COEF, (twice + q[0]) // (2 * q[0])))


@cython.boundscheck(False)  # the def wrappers check every shape the loops rely on
cdef int code_blocks(Coder* k, BlockModel m, int64_t[:, :, :, ::1] coefs, int64_t[:, :, :] luma,
                     uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr, const int64_t* steps, Window win,
                     Py_ssize_t r0, Py_ssize_t r1, int64_t* ends, Py_ssize_t first, bint with_corr) noexcept nogil:
    """Blocks rows r0..r1-1 of a chunk (coefs: block rows x block columns x channels x 64, channel c
    being the JPEG's component first + c; luma: per block the 64 luma coefficient sizes a chroma
    context sees, a view of coefs' channel 0 when the chroma has full resolution; flags; corr: the
    corrections of the samples, (pixel rows, pixel columns, channels)), of which those in `win` are
    the image's (and coded; the rest pad the edge blocks). Without `with_corr` no flags and no
    corrections. Encoding reads the arrays, decoding writes them; `ends` (when not NULL) gets the
    symbol count after each block. -> 0, or -1 on failure."""
    cdef Py_ssize_t by, bx, c, kk, i, y, x, nbx = coefs.shape[1], nc = coefs.shape[2], cc, ctx
    cdef int64_t u, pred, act, lower, prev
    cdef bint hasL, hasA
    for by in range(r0, r1):
        for bx in range(nbx):
            hasL = bx > 0
            hasA = by > 0
            for c in range(nc):
                cc = 0 if c + first == 0 else 1
                # AC, in zigzag order
                for kk in range(1, 64):
                    i = ZIGZAG[kk]
                    act = 0
                    if hasL:
                        act += iabs(coefs[by, bx - 1, c, i])
                    if hasA:
                        act += iabs(coefs[by - 1, bx, c, i])
                    lower = 0
                    if ABOVE_IN_BLOCK[i] >= 0:
                        lower += iabs(coefs[by, bx, c, ABOVE_IN_BLOCK[i]])
                    if LEFT_IN_BLOCK[i] >= 0:
                        lower += iabs(coefs[by, bx, c, LEFT_IN_BLOCK[i]])
                    act = octave(act, NEIGHBOUR_CLASSES) * LOWER_CLASSES + octave(lower, LOWER_CLASSES)
                    if cc == 0:
                        ctx = AT_AC + (kk - 1) * ACT + act
                    else:
                        ctx = AT_AC + (63 + (kk - 1) * LUMA_CLASSES
                                       + min(<int64_t>LUMA_CLASSES - 1, iabs(luma[by, bx, i]))) * ACT + act
                    coefs[by, bx, c, i] = code_signed(k, m, ctx, coefs[by, bx, c, i], 0, MAX_COEF)
                    if k.failed:
                        return -1
                # DC, last: the difference from the prediction by the neighbours' edges
                pred = predict_dc(coefs, by, bx, c, hasL, hasA, &steps[cc * 64], &act)
                ctx = cc * DC_CLASSES + half_octave(act, DC_CLASSES)
                coefs[by, bx, c, 0] = code_signed(k, m, ctx, coefs[by, bx, c, 0], pred, MAX_COEF)
                if k.failed:
                    return -1
            if not with_corr:
                if ends != NULL:
                    ends[(by - r0) * nbx + bx] = k.n
                continue
            # does the block need pixel corrections?
            ctx = AT_FLAG + (flags[by, bx - 1] if hasL else 0) + (flags[by - 1, bx] if hasA else 0)
            u = code_value(k, m, ctx, flags[by, bx])
            if u < 0 or u > 1:
                k.failed = True
                return -1
            flags[by, bx] = <uint8_t>u
            for c in range(corr.shape[2] if u else 0):
                prev = 0
                for y in range(max(8 * by, win.top), min(8 * by + 8, win.bottom)):
                    for x in range(max(8 * bx, win.left), min(8 * bx + 8, win.right)):
                        ctx = AT_RES + 3 * c + min(prev, 2)
                        corr[y, x, c] = code_signed(k, m, ctx, corr[y, x, c], 0, MAX_CORRECTION)
                        if k.failed:
                            return -1
                        prev = iabs(corr[y, x, c])
            if ends != NULL:
                ends[(by - r0) * nbx + bx] = k.n
    return 0


def encode_rows(BlockModel m, int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
                const int64_t[:, ::1] steps,
                Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t left, Py_ssize_t right, Py_ssize_t r0, Py_ssize_t r1,
                int32_t[::1] syms, double[:, ::1] out_rows, int64_t[::1] ends, bint subsampled=False,
                int64_t[:, :, ::1] luma=None) -> int:
    """The symbols and rows that code block rows r0..r1-1 (in order, into syms/out_rows; ends[i]: how
    many after the i-th block) -> how many. A colour image with subsampled chroma codes its luma blocks
    (`subsampled`: `coefs` hold the luma, `corr` all three channels), then its chroma blocks: with
    `luma` (luma_summary of the chunk's luma blocks), `coefs` are the two subsampled chroma
    planes' blocks, coded without flags and corrections (`flags` and `corr` None)."""
    cdef Coder k
    k.decoding = False
    k.failed = False
    k.syms = &syms[0]
    k.rows = &out_rows[0, 0]
    k.n = 0
    k.cap = min(syms.shape[0], out_rows.shape[0])
    cdef Window win
    cdef int64_t[:, :, :] context
    cdef uint8_t[:, ::1] use_flags
    cdef int64_t[:, :, ::1] use_corr
    cdef Py_ssize_t first = 0 if luma is None else 1
    if luma is None:
        win = window(coefs, flags, corr, steps, top, bottom, left, right, subsampled)
        context = coefs[:, :, 0, :]
        use_flags = flags
        use_corr = corr
    else:
        # subsampled chroma: no flags, no corrections
        check_chroma(coefs, luma, steps)
        context = luma
        use_flags = np.zeros((0, 0), np.uint8)
        use_corr = np.zeros((0, 0, 0), np.int64)
    if (out_rows.shape[1] != WIDTH or not 0 <= r0 <= r1 <= coefs.shape[0]
            or ends.shape[0] < (r1 - r0) * coefs.shape[1]):
        raise ValueError("encode_rows: shapes do not fit")
    with nogil:
        code_blocks(&k, m, coefs, context, use_flags, use_corr, &steps[0, 0], win, r0, r1,
                    &ends[0] if ends.shape[0] else NULL, first, first == 0)
    if k.failed:
        raise ValueError("encode_rows: a value past the model's range, or too little room")
    return k.n


def max_symbols_per_block(Py_ssize_t channels) -> int:
    """Room encode_rows needs per block: every coefficient and correction with its low-bit pieces."""
    return 64 * channels * 4 + 1 + 64 * 4 * 4


def decode(const uint32_t[::1] words, int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
           const int64_t[:, ::1] steps,
           Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t left, Py_ssize_t right, prior=None,
           int64_t[:, :, :, ::1] chroma=None) -> bool:
    """A chunk's coefficients, flags and corrections from its words (arrays written) -> whether the
    stream fitted the model. With `chroma` (the blocks of chroma planes at half resolution across,
    4:2:2, or also down, 4:2:0), `coefs` holds the luma blocks only, and the chroma blocks follow
    them in the stream."""
    cdef Coder k
    cdef BlockModel m = BlockModel(prior)
    k.decoding = True
    k.failed = False
    k.n = 0
    k.cap = 0
    cdef Window win = window(coefs, flags, corr, steps, top, bottom, left, right, chroma is not None)
    cdef int64_t[:, :, ::1] summary
    cdef int64_t[:, :, :] context = coefs[:, :, 0, :]
    cdef uint8_t[:, ::1] no_flags = np.zeros((0, 0), np.uint8)
    cdef int64_t[:, :, ::1] no_corr = np.zeros((0, 0, 0), np.int64)
    if chroma is not None:
        summary = np.zeros((chroma.shape[0], chroma.shape[1], 64), np.int64)
        check_chroma(chroma, summary, steps)
        if (coefs.shape[0] not in (chroma.shape[0], 2 * chroma.shape[0]) or 2 * chroma.shape[1] != coefs.shape[1]
                or chroma.shape[0] == 0):
            raise ValueError("jpeg_blocks: shapes do not fit")
    with nogil:
        range_decoder_init(&k.dec, &words[0] if words.shape[0] else NULL, words.shape[0])
        code_blocks(&k, m, coefs, context, flags, corr, &steps[0, 0], win, 0, coefs.shape[0], NULL, 0, True)
    if chroma is not None and not k.failed:
        luma_summary(coefs, summary)
        with nogil:
            code_blocks(&k, m, chroma, summary, no_flags, no_corr, &steps[0, 0], win, 0, chroma.shape[0], NULL, 1,
                        False)
    return not k.failed


ROW_WIDTH = WIDTH
CONTEXTS = N_CTX


def luma_summary(const int64_t[:, :, :, ::1] luma, int64_t[:, :, ::1] out):
    """What a half-resolution chroma block's contexts see of the luma: per coefficient, the largest
    size it has in the luma blocks the chroma block covers (2x2 with 4:2:0, 1x2 with 4:2:2). luma
    (vertical n, 2m, 1, 64) -> out (n, m, 64)."""
    cdef Py_ssize_t by, bx, i, dy, dx, vertical = luma.shape[0] // out.shape[0] if out.shape[0] else 1
    cdef int64_t v
    if (vertical not in (1, 2) or luma.shape[0] != vertical * out.shape[0] or luma.shape[1] != 2 * out.shape[1]
            or luma.shape[2] != 1 or luma.shape[3] != 64 or out.shape[2] != 64):
        raise ValueError("luma_summary: shapes do not fit")
    for by in range(out.shape[0]):
        for bx in range(out.shape[1]):
            for i in range(64):
                v = 0
                for dy in range(vertical):
                    for dx in range(2):
                        v = max(v, iabs(luma[vertical * by + dy, 2 * bx + dx, 0, i]))
                out[by, bx, i] = v


cdef check_chroma(int64_t[:, :, :, ::1] chroma, int64_t[:, :, :] luma, const int64_t[:, ::1] steps):
    if (chroma.shape[2] != 2 or chroma.shape[3] != 64 or steps.shape[0] != 2 or steps.shape[1] != 64
            or luma.shape[0] != chroma.shape[0] or luma.shape[1] != chroma.shape[1] or luma.shape[2] != 64):
        raise ValueError("jpeg_blocks: shapes do not fit")
    check_steps(steps)


cdef check_steps(const int64_t[:, ::1] steps):
    cdef Py_ssize_t i, j
    for i in range(steps.shape[0]):
        for j in range(64):
            if not 1 <= steps[i, j] <= 255:
                raise ValueError("jpeg_blocks: a step outside 1..255")


cdef Window window(int64_t[:, :, :, ::1] coefs, uint8_t[:, ::1] flags, int64_t[:, :, ::1] corr,
                   const int64_t[:, ::1] steps, Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t left, Py_ssize_t right,
                   bint subsampled=False):
    """The image's window within the chunk's blocks, once every shape the loops rely on is checked
    (`subsampled`: coefs hold the luma of a colour image whose chroma is coded apart)."""
    cdef Window win
    cdef Py_ssize_t channels = 3 if subsampled else coefs.shape[2]
    if (coefs.shape[3] != 64 or coefs.shape[2] > 3 or (subsampled and coefs.shape[2] != 1)
            or flags.shape[0] != coefs.shape[0]
            or flags.shape[1] != coefs.shape[1] or corr.shape[2] != channels
            or corr.shape[0] != 8 * coefs.shape[0] or corr.shape[1] != 8 * coefs.shape[1]
            or not 0 <= top <= bottom <= corr.shape[0] or not 0 <= left <= right <= corr.shape[1]
            or steps.shape[1] != 64 or steps.shape[0] != min(channels, 2)):
        raise ValueError("jpeg_blocks: shapes do not fit")
    check_steps(steps)
    win.top, win.bottom, win.left, win.right = top, bottom, left, right
    return win


# ---- chroma at half resolution: libjpeg-turbo's "fancy" upsampling (models/jpeg_chroma.py says
# what it is)

@cython.boundscheck(False)
@cython.wraparound(False)
cdef void upsample_band(const int64_t[:, :, ::1] rows, const int64_t[:, ::1] above, const int64_t[:, ::1] below,
                        int64_t[:, :, ::1] out, int64_t* sums, Py_ssize_t vertical, int64_t even_bias,
                        int64_t odd_bias) noexcept nogil:
    """rows (n, w, c) -> out (vertical * n, 2w, c): each output row's column sums (vertical 2:
    3 x the near row + the far one, with above and below the rows next to the band, or rows' own
    first and last row at the plane's edges; vertical 1: 4 x the row), then along the row 3 x the
    near sum + the far one, plus the bias of even or odd columns, over 16. `sums`: room for w."""
    cdef Py_ssize_t n = rows.shape[0], w = rows.shape[1], nc = rows.shape[2], r, i, j, c
    cdef int64_t left, right
    for r in range(vertical * n):
        i = r // vertical
        for c in range(nc):
            for j in range(w):
                if vertical == 1:
                    sums[j] = 4 * rows[i, j, c]
                elif r % 2 == 0:
                    sums[j] = 3 * rows[i, j, c] + (rows[i - 1, j, c] if i > 0 else above[j, c])
                else:
                    sums[j] = 3 * rows[i, j, c] + (rows[i + 1, j, c] if i < n - 1 else below[j, c])
            for j in range(w):
                left = sums[j - 1] if j > 0 else sums[0]
                right = sums[j + 1] if j < w - 1 else sums[w - 1]
                out[r, 2 * j, c] = (3 * sums[j] + left + even_bias) >> 4
                out[r, 2 * j + 1, c] = (3 * sums[j] + right + odd_bias) >> 4


def upsample(const int64_t[:, :, ::1] rows, above, below, int64_t[:, :, ::1] out, Py_ssize_t vertical,
             int64_t even_bias, int64_t odd_bias):
    """Upsampling of half-resolution rows (n, w, c) of samples 0..255 into out (vertical * n, 2w,
    c), twice as wide and `vertical` (1 or 2) times as tall, with the plane's rows just above and
    below them ((w, c); None at the plane's edges, where the band's own edge row stands in)."""
    cdef Py_ssize_t n = rows.shape[0], w = rows.shape[1]
    if (n == 0 or w == 0 or vertical not in (1, 2) or out.shape[0] != vertical * n or out.shape[1] != 2 * w
            or out.shape[2] != rows.shape[2]):
        raise ValueError("upsample: shapes do not fit")
    cdef const int64_t[:, ::1] up = rows[0] if above is None else np.ascontiguousarray(above, np.int64)
    cdef const int64_t[:, ::1] down = rows[n - 1] if below is None else np.ascontiguousarray(below, np.int64)
    if up.shape[0] != w or down.shape[0] != w or up.shape[1] != rows.shape[2] or down.shape[1] != rows.shape[2]:
        raise ValueError("upsample: shapes do not fit")
    cdef int64_t[::1] sums = np.empty(w, np.int64)
    with nogil:
        upsample_band(rows, up, down, out, &sums[0], vertical, even_bias, odd_bias)


@cython.boundscheck(False)
@cython.wraparound(False)
def estimate_half(const int64_t[:, :, ::1] full, const uint8_t[:, ::1] valid, Py_ssize_t vertical,
                  int64_t even_bias, int64_t odd_bias, Py_ssize_t rounds, double gain):
    """The encoder's estimate of a plane at half resolution across (and `vertical` 2: also down)
    from its upsampled samples `full` (vertical h, 2w, c) where `valid` is set: from each cell's
    mean, `rounds` rounds of adding `gain` times the mean of what the rounded estimate's
    upsampling (upsample's, with these biases) gets wrong over the cell -> (h, w, c) float64. Each
    operation in a fixed order (IEEE double, no contraction): the same on every machine."""
    cdef Py_ssize_t h = full.shape[0] // vertical, w = full.shape[1] // 2, nc = full.shape[2]
    cdef Py_ssize_t i, j, c, dy, dx, k
    if (vertical not in (1, 2) or full.shape[0] != vertical * h or full.shape[1] != 2 * w
            or valid.shape[0] != full.shape[0] or valid.shape[1] != full.shape[1]):
        raise ValueError("estimate_half: shapes do not fit")
    half_arr = np.empty((h, w, nc), np.float64)
    if h == 0 or w == 0:
        return half_arr
    cdef double[:, :, ::1] half = half_arr
    cdef int64_t[:, :, ::1] rounded = np.empty((h, w, nc), np.int64)
    cdef int64_t[:, :, ::1] up = np.empty((vertical * h, 2 * w, nc), np.int64)
    cdef int64_t[::1] sums = np.empty(w, np.int64)
    cdef int64_t weight, total, every, err
    cdef double v
    with nogil:
        for i in range(h):
            for j in range(w):
                for c in range(nc):
                    weight = 0
                    total = 0  # of the valid samples
                    every = 0  # of all (a cell with none valid)
                    for dy in range(vertical):
                        for dx in range(2):
                            every += full[vertical * i + dy, 2 * j + dx, c]
                            if valid[vertical * i + dy, 2 * j + dx]:
                                weight += 1
                                total += full[vertical * i + dy, 2 * j + dx, c]
                    half[i, j, c] = <double>total / <double>weight if weight else <double>every / (2.0 * vertical)
        for k in range(rounds):
            for i in range(h):
                for j in range(w):
                    for c in range(nc):
                        v = nearbyint(half[i, j, c])
                        rounded[i, j, c] = 0 if v < 0 else (255 if v > 255 else <int64_t>v)
            upsample_band(rounded, rounded[0], rounded[h - 1], up, &sums[0], vertical, even_bias, odd_bias)
            for i in range(h):
                for j in range(w):
                    for c in range(nc):
                        weight = 0
                        err = 0
                        for dy in range(vertical):
                            for dx in range(2):
                                if valid[vertical * i + dy, 2 * j + dx]:
                                    weight += 1
                                    err += full[vertical * i + dy, 2 * j + dx, c] - up[vertical * i + dy, 2 * j + dx, c]
                        if weight:
                            half[i, j, c] = half[i, j, c] + gain * <double>err / <double>weight
    return half_arr


# ---- the encoder's search for coefficients that give a block back exactly

cdef inline Py_ssize_t mismatches(const int64_t* coef, const int64_t* q, const int64_t* target,
                                  const uint8_t* mask) noexcept nogil:
    cdef int64_t out[64]
    cdef Py_ssize_t i, n = 0
    idct_block(coef, q, out)
    for i in range(64):
        if mask[i] and out[i] != target[i]:
            n += 1
    return n


cdef inline void keep(int64_t* best, const int64_t* trial) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(64):
        best[i] = trial[i]


cdef inline Py_ssize_t better(const int64_t* trial, const int64_t* q, const int64_t* target, const uint8_t* mask,
                              int64_t* best, Py_ssize_t best_wrong) noexcept nogil:
    """`trial` kept in `best` where it gets more samples right -> the fewest wrong so far."""
    cdef Py_ssize_t wrong = mismatches(trial, q, target, mask)
    if wrong < best_wrong:
        keep(best, trial)
        return wrong
    return best_wrong


cdef bint search_row(const double* estimate, const int64_t* target, const uint8_t* mask, const int64_t* q,
                     int64_t* coefs, Py_ssize_t candidates, Py_ssize_t max_flips) noexcept nogil:
    """search_flips for one block (its own arrays: rows run in parallel) -> whether it comes back."""
    cdef Py_ssize_t i, j, a, b, c, m = 0, best_wrong
    cdef Py_ssize_t pick[16]
    cdef int64_t alt[16]
    cdef int64_t trial[64]
    cdef int64_t best[64]
    cdef double d, far, dist[64]
    cdef bint taken
    best_wrong = mismatches(coefs, q, target, mask)
    if best_wrong == 0:
        return True
    for i in range(64):
        dist[i] = estimate[i] - coefs[i]
        trial[i] = coefs[i]
        best[i] = coefs[i]
    # the candidates, farthest from their integer first
    for a in range(candidates):
        j = -1
        far = 0.0
        for i in range(64):
            d = dist[i] if dist[i] >= 0 else -dist[i]
            if d > far:
                taken = False
                for b in range(m):
                    taken = taken or pick[b] == i
                if not taken:
                    far = d
                    j = i
        if j < 0:
            break
        pick[m] = j
        alt[m] = coefs[j] + (1 if dist[j] > 0 else -1)
        m += 1
    # one flip, then two, then three (each set tried once, in the candidates' order)
    for a in range(m):
        trial[pick[a]] = alt[a]
        best_wrong = better(trial, q, target, mask, best, best_wrong)
        for b in range(a + 1, m if max_flips >= 2 and best_wrong else a + 1):
            trial[pick[b]] = alt[b]
            best_wrong = better(trial, q, target, mask, best, best_wrong)
            for c in range(b + 1, m if max_flips >= 3 and best_wrong else b + 1):
                trial[pick[c]] = alt[c]
                best_wrong = better(trial, q, target, mask, best, best_wrong)
                trial[pick[c]] = coefs[pick[c]]
            trial[pick[b]] = coefs[pick[b]]
        trial[pick[a]] = coefs[pick[a]]
        if best_wrong == 0:
            break
    keep(coefs, best)
    return best_wrong == 0


@cython.boundscheck(False)  # shapes checked below
def search_flips(const double[:, ::1] estimate, const int64_t[:, ::1] target, const uint8_t[:, ::1] mask,
                 const int64_t[:, ::1] steps, const uint8_t[::1] table, int64_t[:, ::1] coefs,
                 Py_ssize_t candidates, Py_ssize_t max_flips) -> int:
    """For every block whose coefficients (rows of `coefs`, natural order, quantized by
    `steps[table[row]]`) do not give its `target` samples back (where `mask` is set): move the
    `candidates` coefficients whose `estimate` (the unrounded DCT over the step) lay nearest halfway
    between two integers to the other integer, one, two or three (`max_flips`) at a time, and keep
    the first change that gives the block back exactly, else the one that gets most samples right.
    Blocks in parallel threads, each on its own: the result does not depend on their number.
    -> how many blocks come back exactly."""
    cdef Py_ssize_t n = coefs.shape[0], r, exact = 0
    if (estimate.shape[0] != n or target.shape[0] != n or mask.shape[0] != n or table.shape[0] != n
            or coefs.shape[1] != 64 or estimate.shape[1] != 64 or target.shape[1] != 64 or mask.shape[1] != 64
            or steps.shape[1] != 64 or not 0 <= candidates <= 16 or not 0 <= max_flips <= 3):
        raise ValueError("search_flips: shapes do not fit")
    for r in range(n):
        if table[r] >= steps.shape[0]:
            raise ValueError("search_flips: no such table")
    for r in prange(n, nogil=True, schedule="dynamic", chunksize=64):
        if search_row(&estimate[r, 0], &target[r, 0], &mask[r, 0], &steps[table[r], 0], &coefs[r, 0],
                      candidates, max_flips):
            exact += 1
    return exact
