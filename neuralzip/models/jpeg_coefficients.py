"""jpeg-coefficients: a photo that is a decoded JPEG, coded as the JPEG's quantized DCT coefficients.

A JPEG decoder makes each 8x8 block of each channel from 64 integer coefficients times the steps
of a quantization table, by an inverse DCT in integer arithmetic (kernels/jpeg_blocks.pyx), then
converts (Y, Cb, Cr) to RGB (kernels/jpeg_colour.pyx). A PNG saved from such a decode holds far
less information than its pixel count suggests: the coefficients of a quality-96 JPEG take about
half the bits a pixel model spends on its RGB. The encoder finds them again:

1. the (Y, Cb, Cr) of every pixel (models/jpeg_colour.py; grey images are their own Y);
2. the quantization table: libjpeg's standard tables at the quality (1..100) under which most
   blocks come back exactly;
3. per block, the forward DCT divided by the steps and rounded, then corrected where the inverse
   DCT does not give the block back (a few rounds of the DCT of the error);
4. what is still wrong after that, sample by sample in RGB, as corrections.

The decoder only runs the inverse DCT and the colour conversion and adds the corrections, so
every image decodes exactly whichever coefficients the encoder found; how many blocks need
corrections only changes the size. Blocks the image's right and bottom edges cut are coded whole
(their hidden part filled from the edge) and corrected on their visible pixels.

Images that are no decoded JPEG, or not 8-bit with 1 or 3 channels, are coded by `classic` (params
{"fallback": "classic", ...}). `--model auto` picks this model for an image only when the
recovery says it is a decoded JPEG (`recognises`), at every level.
"""

import numpy as np

from neuralzip import progress
from neuralzip.coding.stream import CostCoder, TeeCoder, symbol_bits
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.models import jpeg_colour
from neuralzip.models.base import Encoded, ParamError, RunCodec, check_chunk_count, param_ints
from neuralzip.models.classic_image import ClassicImageCodec

CHUNK_BLOCK_ROWS = 32  # a chunk: 256 rows of pixels, decoded on its own
# The JPEG standard's example tables (its Annex K), which libjpeg scales by the quality setting
LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                   47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.int64)
SAMPLE_BLOCKS = 512  # blocks the quality search tries each table on
REFINE_ROUNDS = 8
# recognises(): at least this share of the sampled blocks that hold detail (some AC coefficient)
# must come back exactly from their rounded coefficients. 8-bit photos that are no decoded JPEG
# reach about 0; the decoded JPEGs of ../shared/data about 0.2 to 0.4 (benchmarks/jpeg_coefficients.py).
RECOGNISED_SHARE = 0.05


def standard_steps(quality: int, channels: int) -> np.ndarray:
    """libjpeg's quantization tables at `quality` (1..100): (1 or 2, 64) steps, natural order."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    tables = [LUMA, CHROMA][:min(channels, 2)]
    return np.stack([np.clip((t * scale + 50) // 100, 1, 255) for t in tables]).astype(np.int64)


# The orthonormal 8-point DCT basis in 2^14 fixed point: an integer forward DCT, so that the encoder
# finds the same coefficients on every machine (no float summation order involved)
_BASIS = np.round(np.array([[(np.sqrt(1 / 8) if k == 0 else np.sqrt(2 / 8)) * np.cos((2 * i + 1) * k * np.pi / 16)
                             for i in range(8)] for k in range(8)]) * (1 << 14)).astype(np.int64)
_DCT_SCALE = 1 << 28


def forward_dct(blocks: np.ndarray) -> np.ndarray:
    """(..., 8, 8) int64 samples (already shifted by -128) -> their DCT coefficients in units of
    2^-28 (int64)."""
    return _BASIS @ blocks @ _BASIS.T


def quantize(dct: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """forward_dct's output (..., channels, 8, 8) divided by the steps (channels' tables) and
    rounded to the nearest integer, within the coefficients' range."""
    q = steps.reshape((1,) * (dct.ndim - 3) + (steps.shape[0], 8, 8))
    q = np.concatenate([q[..., :1, :, :]] + [q[..., 1:, :, :]] * (dct.shape[-3] - 1), axis=-3)
    num, den = 2 * dct + q * _DCT_SCALE, 2 * q * _DCT_SCALE
    return np.clip(num // den, -_k.COEF_LIMIT, _k.COEF_LIMIT)


def _blocks(planes: np.ndarray) -> np.ndarray:
    """(8 nby, 8 nbx, c) -> (nby, nbx, c, 8, 8)."""
    h, w, c = planes.shape
    return planes.reshape(h // 8, 8, w // 8, 8, c).transpose(0, 2, 4, 1, 3)


def _coded_values(img: np.ndarray) -> np.ndarray | None:
    """The values the JPEG's blocks held: (Y, Cb, Cr) of an RGB image (None when some pixel is no
    JPEG decoder's colour), a grey image as it is."""
    if img.shape[2] == 1:
        return img
    return jpeg_colour.encode_chunk(img)


def _pad(planes: np.ndarray) -> np.ndarray:
    h, w = planes.shape[:2]
    return np.pad(planes, ((0, -h % 8), (0, -w % 8), (0, 0)), mode="edge")


def _reconstruct(coefs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    nby, nbx, nc = coefs.shape[:3]
    out = np.empty((8 * nby, 8 * nbx, nc), np.int64)
    _k.reconstruct(np.ascontiguousarray(coefs.reshape(nby, nbx, nc, 64)), steps, out)
    return out


def _to_image(planes: np.ndarray) -> np.ndarray:
    """Decoded planes -> the pixels a JPEG decoder shows (RGB for three channels), in place."""
    if planes.shape[2] == 3:
        jpeg_colour.decode_chunk(planes)
    return planes


def _exact_share(coefs, steps, target) -> float:
    """Share of the blocks holding detail that come back exactly."""
    rec = _blocks(_reconstruct(coefs, steps))
    detailed = (coefs.reshape(coefs.shape[:3] + (64,))[..., 1:] != 0).any(axis=(2, 3))
    if not detailed.any():
        return 0.0
    exact = (rec == target).all(axis=(2, 3, 4))
    return float(exact[detailed].mean())


def _sample(nby: int, nbx: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to SAMPLE_BLOCKS whole blocks spread over the image (block rows and columns)."""
    n = min(SAMPLE_BLOCKS, nby * nbx)
    pick = np.linspace(0, nby * nbx - 1, n).astype(np.int64)
    return pick // nbx, pick % nbx


def _whole_blocks(img: np.ndarray) -> tuple[int, int]:
    return img.shape[0] // 8, img.shape[1] // 8


def estimate_steps(values: np.ndarray) -> tuple[np.ndarray, float]:
    """The standard table (over qualities 1..100) under which most sampled whole blocks come back
    exactly -> (steps, the share of detailed blocks that do)."""
    nby, nbx = _whole_blocks(values)
    if nby == 0 or nbx == 0:
        return standard_steps(100, values.shape[2]), 0.0
    by, bx = _sample(nby, nbx)
    target = _blocks(values[:8 * nby, :8 * nbx])[by, bx][None]  # (1, n, c, 8, 8)
    dct = forward_dct(target - 128)
    best, best_share = None, -1.0
    for quality in range(100, 0, -1):
        steps = standard_steps(quality, values.shape[2])
        share = _exact_share(quantize(dct, steps), steps, target)
        if share > best_share:
            best, best_share = steps, share
    return best, best_share


def recognises(samples: np.ndarray, bits: int) -> bool:
    """Whether the image looks like a decoded JPEG that this model codes (cheap: a sample of blocks)."""
    if bits != 8 or samples.ndim != 3 or samples.shape[2] not in (1, 3) or min(samples.shape[:2]) < 8:
        return False
    values = _coded_values(np.ascontiguousarray(samples, dtype=np.int64))
    return values is not None and estimate_steps(values)[1] >= RECOGNISED_SHARE


def recover(img: np.ndarray, values: np.ndarray, steps: np.ndarray):
    """The coefficients of every block (nby, nbx, c, 64) and the corrections (image - what they
    decode to; padded to whole blocks) -> (coefs, flags, corrections)."""
    target = _blocks(_pad(values))
    dct = forward_dct(target - 128)
    coefs = quantize(dct, steps)
    wrong = (_blocks(_reconstruct(coefs, steps)) != target).sum(axis=(3, 4)).sum(axis=2)
    for _ in range(REFINE_ROUNDS):
        bad = wrong > 0
        if not bad.any():
            break
        err = target[bad] - _blocks(_reconstruct(coefs, steps))[bad]
        trial = coefs.copy()
        trial[bad] = np.clip(coefs[bad] + quantize(forward_dct(err), steps), -_k.COEF_LIMIT, _k.COEF_LIMIT)
        now = (_blocks(_reconstruct(trial, steps)) != target).sum(axis=(3, 4)).sum(axis=2)
        better = now < wrong
        if not better.any():
            break
        coefs[better] = trial[better]
        wrong = np.minimum(now, wrong)
    shown = _to_image(_reconstruct(coefs, steps))
    corr = np.zeros(shown.shape, np.int64)
    h, w = img.shape[:2]
    corr[:h, :w] = img - shown[:h, :w]
    flags = (_blocks(corr) != 0).any(axis=(2, 3, 4)).astype(np.uint8)
    return np.ascontiguousarray(coefs.reshape(coefs.shape[:3] + (64,))), flags, corr


class JpegCoefficientsCodec(RunCodec):
    name = "jpeg-coefficients"
    kind = "image"
    summary = "a decoded JPEG as its quantized DCT coefficients (other images: classic)"

    def __init__(self):
        self._fallback = ClassicImageCodec()

    # ---- the classic fallback (as the learned image codecs have it)
    def _encode_fallback(self, coder_factory, samples, signal):
        params, chunks, bits = self._fallback._run(coder_factory, samples, signal)
        return {"fallback": "classic", **params}, chunks, bits

    @staticmethod
    def _fallback_params(params: dict) -> dict | None:
        if "fallback" not in params:
            return None
        if params["fallback"] != "classic":
            raise ParamError(f"params.fallback {params['fallback']!r} is not a model this neuralzip has")
        return {k: v for k, v in params.items() if k != "fallback"}

    # ---- the model
    def _layout(self, shape):
        """(block rows, block columns, chunk spans of block rows)."""
        nby, nbx = -(-shape[0] // 8), -(-shape[1] // 8)
        spans = [(a, min(a + CHUNK_BLOCK_ROWS, nby)) for a in range(0, nby, CHUNK_BLOCK_ROWS)]
        return nby, nbx, spans

    def _run(self, coder_factory, samples, signal, observe=None):
        img = np.ascontiguousarray(samples, dtype=np.int64)
        values = None
        if signal.bits == 8 and img.shape[2] in (1, 3) and min(img.shape[:2]) >= 8:
            values = _coded_values(img)
        if values is None:
            return self._encode_fallback(coder_factory, samples, signal)
        steps, share = estimate_steps(values)
        if share < RECOGNISED_SHARE:
            return self._encode_fallback(coder_factory, samples, signal)
        coefs, flags, corr = recover(img, values, steps)
        nby, nbx, spans = self._layout(img.shape)
        width = img.shape[1]
        per_block = _k.max_symbols_per_block(img.shape[2])
        syms = np.empty(per_block * nbx, np.int32)
        rows_buf = np.empty((per_block * nbx, _k.ROW_WIDTH), np.float64)
        ends = np.empty(nbx, np.int64)
        chunks, bits = [], 0.0
        for a, b in spans:
            coder, model = coder_factory(), _k.BlockModel()
            c_coefs, c_flags = coefs[a:b].copy(), flags[a:b].copy()
            c_corr = np.ascontiguousarray(corr[8 * a:8 * b])
            visible = min(img.shape[0], 8 * b) - 8 * a
            for r in range(b - a):
                n = _k.encode_rows(model, c_coefs, c_flags, c_corr, visible, width, r, r + 1, syms, rows_buf, ends)
                coder.symbols(syms[:n], rows_buf[:n])
                if observe is not None:
                    observe(a + r, symbol_bits(syms[:n], rows_buf[:n]), ends)
            progress.step(b / nby)
            chunks.append(coder.finish())
            bits += coder.bits
        params = {"steps": steps.reshape(-1).tolist()}
        return params, chunks, bits

    def bits_per_dim(self, samples, signal):
        """A block's bits spread evenly over its visible samples."""
        out = np.zeros(signal.shape, np.float64)
        h, w = signal.shape[:2]

        def observe(by, bits, ends):
            starts = np.concatenate([[0], ends[:-1]])
            for bx, (s, e) in enumerate(zip(starts, ends)):
                cell = out[8 * by:8 * by + 8, 8 * bx:8 * bx + 8]
                cell[...] = bits[s:e].sum() / cell.size

        params, _, _ = self._run(CostCoder, samples, signal, observe)
        if "fallback" in params:
            return self._fallback.bits_per_dim(samples, signal)
        return out

    # ---- decoding
    def check_params(self, params, signal, nchunks):
        """A classic fallback, or: 8-bit, 1 or 3 channels, one table of 64 steps (1..255) per
        luma and chroma, one chunk per CHUNK_BLOCK_ROWS block rows."""
        rest = self._fallback_params(params)
        if rest is not None:
            self._fallback.check_params(rest, signal, nchunks)
            return
        h, w, c = signal.shape
        if signal.bits != 8 or c not in (1, 3):
            raise ParamError(f"{self.name} codes 8-bit images of 1 or 3 channels, not {c} of {signal.bits} bits")
        steps = param_ints(params, "steps", 1, 255, 128)
        if len(steps) != 64 * min(c, 2):
            raise ParamError(f"params.steps holds {len(steps)} steps where {c} channel(s) need {64 * min(c, 2)}")
        if set(params) != {"steps"}:
            raise ParamError(f"unexpected params {sorted(set(params) - {'steps'})}")
        check_chunk_count(len(self._layout(signal.shape)[2]), nchunks)

    def decode_memory(self, params, signal):
        """One chunk's coefficients, corrections and planes (int64), with the image's width."""
        rest = self._fallback_params(params)
        if rest is not None:
            return self._fallback.decode_memory(rest, signal)
        w, c = -(-signal.shape[1] // 8) * 8, signal.shape[2]
        return 8 * CHUNK_BLOCK_ROWS * 8 * w * c * 8 * 4 + (1 << 20)

    def decode(self, params, chunks, signal):
        rest = self._fallback_params(params)
        if rest is not None:
            return self._fallback.decode(rest, chunks, signal)
        h, w, c = signal.shape
        nby, nbx, spans = self._layout(signal.shape)
        if len(spans) != len(chunks):
            raise ValueError("chunk count does not match the image size")
        steps = np.array(params["steps"], np.int64).reshape(-1, 64)
        out = np.empty(signal.shape, np.uint8)
        for (a, b), data in zip(spans, chunks):
            if len(data) % 4:
                raise ValueError("corrupt chunk: its length is not a whole number of words")
            words = np.frombuffer(data, "<u4").astype(np.uint32)
            coefs = np.zeros((b - a, nbx, c, 64), np.int64)
            flags = np.zeros((b - a, nbx), np.uint8)
            corr = np.zeros((8 * (b - a), 8 * nbx, c), np.int64)
            visible = min(h, 8 * b) - 8 * a
            if not _k.decode(words, coefs, flags, corr, visible, w):
                raise ValueError("corrupt chunk: its stream does not decode")
            planes = _to_image(_reconstruct(coefs, steps))[:visible, :w] + corr[:visible, :w]
            if planes.min() < 0 or planes.max() > 255:
                raise ValueError("corrupt chunk: a corrected sample outside 0..255")
            out[8 * a:8 * a + visible] = planes
            progress.step(b / nby)
        return out
