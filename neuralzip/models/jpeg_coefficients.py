"""jpeg-coefficients: a photo that is a decoded JPEG, coded as the JPEG's quantized DCT coefficients.

A JPEG decoder makes each 8x8 block of each channel from 64 integer coefficients times the steps
of a quantization table, by an inverse DCT in integer arithmetic (kernels/jpeg_blocks.pyx), then
converts (Y, Cb, Cr) to RGB (kernels/jpeg_colour.pyx). A PNG saved from such a decode holds far
less information than its pixel count suggests: on the decoded JPEGs of images/valid the
coefficients take two thirds of the bits the strongest pixel model here (local-ls-mlp, level 2)
spends on the RGB, half those of `cjxl -e 9`. The encoder finds them again:

1. the (Y, Cb, Cr) of every pixel (models/jpeg_colour.py; a grey image is its own Y);
2. where the block grid lies (an image cut from a larger decode need not start on a block edge),
   from the jumps at block edges;
3. the quantization table: libjpeg's standard table at the quality (1..100), or one estimated
   step by step from the coefficients (cameras and editors use their own), whichever gives more
   blocks back exactly;
4. per block, the forward DCT divided by the steps and rounded, then a search among the
   coefficients that were nearest a half for the ones that give the block back exactly;
5. what is still wrong after that, sample by sample in RGB, as corrections.

The decoder only runs the inverse DCT and the colour conversion and adds the corrections, so every
image decodes exactly whichever coefficients the encoder found; how many blocks need corrections
only changes the size. The blocks the image's edges cut are coded whole (their hidden part filled
from the edge) and corrected on their visible samples.

A JPEG with half-resolution chroma (4:2:0, the default of phones, cameras and most encoders;
params "sampling": "4:2:0") has 16x16 cells of four luma blocks and one block of each chroma
plane; with chroma halved across only (4:2:2, many cameras' own JPEGs; "sampling": "4:2:2"),
16 wide and 8 tall cells of two luma blocks and one of each chroma plane. Its decoder upsamples
the chroma (models/jpeg_chroma.py). The encoder first recovers the half-resolution planes from the
full-resolution chroma, then searches their blocks as above; a chunk codes its luma blocks with
the corrections, then its chroma blocks, whose contexts see the luma blocks they cover. The upsampling of a chunk's first and last rows reads the
neighbouring chunks' chroma rows, so a chunk is shown once the next one is decoded.

Images that are no such decoded JPEG (4:1:1 and other samplings included), or not 8-bit with 1
or 3 channels, are coded by `classic` (params {"fallback": "classic", ...}). `--model auto` picks
this model for an image only when `recognises` says it is such a decoded JPEG, at every level.
"""

import hashlib
import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neuralzip import progress
from neuralzip.coding.stream import CostCoder, symbol_bits
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.models import jpeg_chroma, jpeg_colour
from neuralzip.models.base import ParamError, RunCodec, check_chunk_count, param_int, param_ints
from neuralzip.models.classic_image import ClassicImageCodec
from neuralzip.models.learned_image import LearnedImageCodec
from neuralzip.models.prior import Prior

CHUNK_BLOCK_ROWS = 32  # a chunk: 32 rows of blocks (256 rows of samples), decoded on its own
# The JPEG standard's example tables (its Annex K), which libjpeg scales by the quality setting
LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                   47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.int64)
SAMPLE_BLOCKS = 512  # whole blocks the table search tries each table on
REFINE_ROUNDS = 1  # a second round gains 0.01% (urban_img_007)
SEARCH_CANDIDATES, SEARCH_FLIPS = 14, 3  # kernels/jpeg_blocks.pyx's search_flips
# recognises(): at least RECOGNISED_SHARE of the sampled blocks that hold detail (some AC
# coefficient) must come back exactly from their rounded coefficients (8-bit photos that are no
# decoded JPEG: about 0; the decoded JPEGs of ../shared/data: 0.07 to 0.3), and at least
# RECOGNISED_AFTER_SEARCH of the sampled blocks after the search, on their unclamped samples (the
# urban photos decoded with libjpeg's inverse DCT: 0.58 to 0.95; the two decoded with another one,
# urban_img_020 and urban_img_062: 0.25 and 0.33, where corrections cost more than classic's coding).
RECOGNISED_SHARE = 0.05
RECOGNISED_AFTER_SEARCH = 0.5
# params.sampling of a member whose chroma has half resolution (absent: full), and how many luma
# rows a chroma row covers: 4:2:0 halves it across and down, 4:2:2 across only
SAMPLINGS = {"4:2:0": 2, "4:2:2": 1}


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


def _per_channel(steps: np.ndarray, channels: int) -> np.ndarray:
    """(channels, 8, 8): luma's table for channel 0, chroma's for the others."""
    return np.stack([steps[min(c, 1)] for c in range(channels)]).reshape(channels, 8, 8)


def quantize(dct: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """forward_dct's output (..., channels, 8, 8) divided by the steps and rounded to the nearest
    integer, within the coefficients' range."""
    q = _per_channel(steps, dct.shape[-3])
    return np.clip((2 * dct + q * _DCT_SCALE) // (2 * q * _DCT_SCALE), -_k.COEF_LIMIT, _k.COEF_LIMIT)


def _blocks(planes: np.ndarray) -> np.ndarray:
    """(8 nby, 8 nbx, c) -> (nby, nbx, c, 8, 8)."""
    h, w, c = planes.shape
    return planes.reshape(h // 8, 8, w // 8, 8, c).transpose(0, 2, 4, 1, 3)


def _planes(blocks: np.ndarray) -> np.ndarray:
    """_blocks undone: (nby, nbx, c, 8, 8) -> (8 nby, 8 nbx, c)."""
    nby, nbx, c = blocks.shape[:3]
    return blocks.transpose(0, 3, 1, 4, 2).reshape(8 * nby, 8 * nbx, c)


def _coded_values(img: np.ndarray) -> np.ndarray | None:
    """The values the JPEG's blocks held: (Y, Cb, Cr) of an RGB image (None when some pixel is no
    JPEG decoder's colour), a grey image as it is."""
    if img.shape[2] == 1:
        return img
    return jpeg_colour.encode_chunk(img)


def _reconstruct(coefs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Blocks' coefficients (nby, nbx, c, 64 or 8, 8) -> the decoded planes (8 nby, 8 nbx, c)."""
    nby, nbx, nc = coefs.shape[:3]
    out = np.empty((8 * nby, 8 * nbx, nc), np.int64)
    _k.reconstruct(np.ascontiguousarray(coefs.reshape(nby, nbx, nc, 64)), steps, out)
    return out


def _to_image(planes: np.ndarray) -> np.ndarray:
    """Decoded planes -> the pixels a JPEG decoder shows (RGB for three channels), in place."""
    if planes.shape[2] == 3:
        jpeg_colour.decode_chunk(planes)
    return planes


# ---- where the blocks are

class Canvas(NamedTuple):
    """The image on the JPEG's block grid: `pad` rows above and columns to the left fill the first
    blocks the image cuts, and more below and to the right fill the last. With subsampled chroma
    (`sampling` "4:2:0" or "4:2:2") the grid's cells are a chroma block's: 16 luma samples across,
    16 (4:2:0) or 8 (4:2:2) down."""
    top: int
    left: int
    height: int  # of the whole canvas: whole cells
    width: int
    sampling: str = "4:4:4"

    @staticmethod
    def of(shape, top: int = 0, left: int = 0, sampling: str = "4:4:4") -> "Canvas":
        h, w = shape[:2]
        cell_h, cell_w = Canvas(0, 0, 0, 0, sampling).cell
        return Canvas(top, left, -(-(top + h) // cell_h) * cell_h, -(-(left + w) // cell_w) * cell_w, sampling)

    @property
    def subsampled(self) -> bool:
        return self.sampling != "4:4:4"

    @property
    def vertical(self) -> int:
        """Luma rows a chroma row covers (1 without subsampling)."""
        return SAMPLINGS.get(self.sampling, 1)

    @property
    def cell(self) -> tuple[int, int]:
        """Samples down and across the area one block of each channel covers."""
        return (8 * self.vertical, 16) if self.subsampled else (8, 8)

    def place(self, planes: np.ndarray) -> np.ndarray:
        """The image's planes on the canvas, the margins filled from the nearest edge sample."""
        h, w = planes.shape[:2]
        return np.pad(planes, ((self.top, self.height - self.top - h), (self.left, self.width - self.left - w), (0, 0)),
                      mode="edge")


def grid_offset(values: np.ndarray) -> tuple[int, int]:
    """(rows, columns) to pad above and to the left so that blocks start on JPEG's grid: where the
    jumps between neighbouring samples, summed over channels, are largest with period 8."""
    pads = []
    for axis in (0, 1):
        jumps = np.abs(np.diff(values, axis=axis)).sum(axis=2).mean(axis=1 - axis)  # after each row (column)
        if len(jumps) < 8:
            pads.append(0)
            continue
        edge = int(np.argmax([jumps[p::8].mean() for p in range(8)]))  # between samples edge and edge + 1
        pads.append((7 - edge) % 8)
    return pads[0], pads[1]


# ---- the quantization table

def _exact_share(coefs, steps, target) -> float:
    """Share of the blocks holding detail that come back exactly."""
    rec = _blocks(_reconstruct(coefs, steps))
    detailed = (coefs.reshape(coefs.shape[:3] + (64,))[..., 1:] != 0).any(axis=(2, 3))
    if not detailed.any():
        return 0.0
    exact = (rec == target).all(axis=(2, 3, 4))
    return float(exact[detailed].mean())


def _sampled_blocks(canvas_values: np.ndarray, canvas: Canvas, shape) -> np.ndarray:
    """Up to SAMPLE_BLOCKS blocks wholly inside the image, spread over it: (1, n, c, 8, 8)."""
    blocks = _blocks(canvas_values)
    by0, bx0 = -(-canvas.top // 8), -(-canvas.left // 8)
    by1, bx1 = (canvas.top + shape[0]) // 8, (canvas.left + shape[1]) // 8
    inner = blocks[by0:by1, bx0:bx1].reshape((-1,) + blocks.shape[2:])
    pick = np.linspace(0, len(inner) - 1, min(SAMPLE_BLOCKS, len(inner))).astype(np.int64)
    return inner[pick][None].astype(np.int64)


def _estimated_steps(dct: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Each step on its own: the largest (1..255) that puts 90% of the sampled coefficients (dct of
    (1, n, c, 8, 8)) at least 0.75 from 0 within 0.6 of one of its multiples; where fewer than 4
    are that far from 0, `fallback`'s step."""
    e = dct[0] / float(_DCT_SCALE)  # (n, c, 8, 8)
    out = fallback.copy()
    candidates = np.arange(255, 0, -1, dtype=np.float64)[:, None]
    for t in range(out.shape[0]):
        vals = (e[:, :1] if t == 0 else e[:, 1:]).transpose(1, 0, 2, 3).reshape(-1, 64)
        for i in range(64):
            v = vals[:, i][np.abs(vals[:, i]) >= 0.75]
            if len(v) < 4:
                continue
            fits = (np.abs(v - candidates * np.round(v / candidates)) < 0.6).mean(axis=1) >= 0.9
            out[t, i] = int(candidates[np.argmax(fits), 0]) if fits.any() else 1
    return out


def estimate_steps(target: np.ndarray) -> tuple[np.ndarray, float]:
    """The table under which most of the sampled whole blocks `target` (1, n, channels, 8, 8) come
    back exactly: libjpeg's standard ones (qualities 1..100) and the step-by-step estimate ->
    (steps, the share of detailed blocks that do)."""
    channels = target.shape[2]
    if target.shape[1] == 0:
        return standard_steps(100, channels), 0.0
    dct = forward_dct(target - 128)
    # every quality on a sixth of the sample, the three best on all of it (a small sample: all on all)
    qualities = list(range(100, 0, -1))
    if target.shape[1] >= 120:
        few = slice(None, None, 6)
        rough = {}
        for q in qualities:
            steps = standard_steps(q, channels)
            rough[q] = _exact_share(quantize(dct[:, few], steps), steps, target[:, few])
        qualities = sorted(qualities, key=lambda q: (-rough[q], -q))[:3]
    best, best_share = None, -1.0
    for quality in qualities:
        steps = standard_steps(quality, channels)
        share = _exact_share(quantize(dct, steps), steps, target)
        if share > best_share:
            best, best_share = steps, share
    estimated = _estimated_steps(dct, best)
    share = _exact_share(quantize(dct, estimated), estimated, target)
    if share > best_share:
        best, best_share = estimated, share
    return best, best_share


# ---- the coefficients

def _search(coefs, dct, steps, target, mask):
    """search_flips (kernels/jpeg_blocks.pyx) over every block and channel."""
    nby, nbx, nc = coefs.shape[:3]
    estimate = (dct / (_per_channel(steps, nc) * float(_DCT_SCALE))).reshape(-1, 64)
    flat = np.ascontiguousarray(coefs.reshape(-1, 64))
    mask = np.ascontiguousarray(np.broadcast_to(mask, target.shape).reshape(-1, 64))
    table = np.ascontiguousarray(np.broadcast_to(np.minimum(np.arange(nc), 1), (nby, nbx, nc)).reshape(-1)
                                 .astype(np.uint8))
    _k.search_flips(np.ascontiguousarray(estimate), np.ascontiguousarray(target.reshape(-1, 64)), mask,
                    np.ascontiguousarray(steps), table, flat, SEARCH_CANDIDATES, SEARCH_FLIPS)
    return flat.reshape(coefs.shape)


def _wrong(coefs, steps, target, mask) -> np.ndarray:
    """Samples per block and channel that do not come back where they must."""
    return ((_blocks(_reconstruct(coefs, steps)) != target) & (mask != 0)).sum(axis=(3, 4))


class Found(NamedTuple):
    """What a sample of an image's blocks says of it as a decoded JPEG: the block grid (and the
    chroma's sampling), the quantization steps (1 or 2 tables of 64, natural
    order), and the share of the sampled blocks that come back exactly after the search; with the
    decode's coded values (uint8), which the blocks are recovered from, and how the image was turned
    after the decode (a photo whose orientation tag was applied: `rotation` quarter turns of the
    image give the decode back)."""
    canvas: Canvas
    steps: np.ndarray
    share: float
    values: np.ndarray
    rotation: int = 0  # quarter turns (counterclockwise) that bring the image back to the decode


def upright(samples: np.ndarray, f: Found) -> np.ndarray:
    """The image as it was decoded (before it was turned by f.rotation quarter turns)."""
    return np.ascontiguousarray(np.rot90(samples, f.rotation)) if f.rotation else samples


def _values_u8(img: np.ndarray) -> np.ndarray | None:
    """_coded_values of a whole image, band by band of 256 rows (bounded working memory), as uint8;
    None when some pixel is no JPEG decoder's colour."""
    out = np.empty(img.shape, np.uint8)
    for r in range(0, img.shape[0], 8 * CHUNK_BLOCK_ROWS):
        values = _coded_values(np.ascontiguousarray(img[r:r + 8 * CHUNK_BLOCK_ROWS], dtype=np.int64))
        if values is None:
            return None
        out[r:r + 8 * CHUNK_BLOCK_ROWS] = values
    return out


def _unclamped(img: np.ndarray) -> np.ndarray:
    """Where a sample must come back (h, w, 1): not at a clamped colour, whose (Y, Cb, Cr) the
    encoder picked among several (any of them gives the same RGB); every sample of a grey image."""
    if img.shape[2] == 1:
        return np.ones(img.shape, bool)
    return ~((img == 0) | (img == 255)).any(axis=2, keepdims=True)


def _searched_share(img: np.ndarray, canvas_values: np.ndarray, canvas: Canvas, steps: np.ndarray) -> float:
    """Share of the sampled whole blocks that come back exactly, on their unclamped samples, once
    search_flips has run on them: 0.6 to 0.95 for a photo decoded with libjpeg's inverse DCT, near
    0.3 for one decoded with another (whose blocks need corrections where its rounding differs)."""
    target = _sampled_blocks(canvas_values, canvas, img.shape)
    if target.shape[1] == 0:
        return 0.0
    mask = _sampled_blocks(canvas.place(_unclamped(img).astype(np.uint8)), canvas, img.shape)
    mask = np.broadcast_to(mask, target.shape).astype(np.uint8)
    dct = forward_dct(target - 128)
    coefs = _search(quantize(dct, steps), dct, steps, target, mask)
    return float(((_blocks(_reconstruct(coefs, steps)) == target) | (mask == 0)).all(axis=(2, 3, 4)).mean())


def _full_resolution_chroma(target: np.ndarray, steps: np.ndarray) -> bool:
    """Whether the sampled blocks' chroma comes back from rounded coefficients about as often as
    their luma does (a decode with full-resolution chroma: 0.7 to 1.8 times on four urban photos;
    with subsampled chroma only its flat blocks, or with 4:2:2 those with no detail across, do:
    0 to 0.05 times)."""
    luma, chroma = target[:, :, :1], target[:, :, 1:]
    luma_share = _exact_share(quantize(forward_dct(luma - 128), steps[:1]), steps[:1], luma)
    chroma_share = _exact_share(quantize(forward_dct(chroma - 128), _chroma_steps(steps)), _chroma_steps(steps), chroma)
    return chroma_share >= max(RECOGNISED_SHARE, luma_share / 2)


def _find(samples: np.ndarray, values: np.ndarray) -> Found | None:
    """found() for the image as it is (`values`: its _values_u8)."""
    # the grid where the jumps say, else (a photo whose blocks barely show) where an uncut decode has it
    for pads in dict.fromkeys([grid_offset(values.astype(np.int16)), (0, 0)]):
        canvas = Canvas.of(samples.shape, *pads)
        canvas_values = canvas.place(values)
        target = _sampled_blocks(canvas_values, canvas, samples.shape)
        steps, share = estimate_steps(target)
        full = None
        if share >= RECOGNISED_SHARE:
            full = Found(canvas, steps, _searched_share(samples, canvas_values, canvas, steps), values)
            # settled unless its blocks do not come back: a subsampled decode's luma and chroma can
            # both pass for full resolution under the finest table (every step 1), and then only
            # the searched share tells
            if samples.shape[2] == 1 or (full.share >= RECOGNISED_AFTER_SEARCH
                                         and _full_resolution_chroma(target, steps)):
                return full
        if samples.shape[2] == 3:
            # the luma alone: a JPEG with subsampled chroma? (its flat chroma blocks can pass for full
            # resolution ones: where the chroma's detailed blocks do not come back, it may be one)
            canvas_luma = canvas_values[..., :1]
            steps, share = estimate_steps(_sampled_blocks(canvas_luma, canvas, samples.shape))
            luma_share = _searched_share(samples, canvas_luma, canvas, steps) if share >= RECOGNISED_SHARE else 0.0
            # a decode is recognised only if its luma blocks come back (the chroma trials cost seconds)
            if luma_share >= RECOGNISED_AFTER_SEARCH:
                half = _find_subsampled(samples, values, pads, steps, luma_share)
                if half is not None and (full is None or half.share > full.share):
                    return half
        if full is not None:
            return full
    return None


# ---- subsampled chroma: planes at half resolution across, and down with 4:2:0 (models/jpeg_chroma.py)

CHROMA_TRIAL_ROWS = 256  # recognition tries chroma tables on a band of this many rows, at most
# of the trial band's chroma blocks, the share whose upsampled samples must all come back exactly
# (where they are unclamped): a 4:2:0 decode's 0.77 (a small noisy test image) to 1.0 (photos);
# a grid 8 samples off its phase, 0.27
RECOGNISED_CHROMA = 0.5


def _extent(canvas: Canvas, shape) -> tuple[int, int]:
    return jpeg_chroma.extent(canvas.top, canvas.left, shape[0], shape[1], canvas.vertical)


def _chroma_source(values: np.ndarray, img: np.ndarray, canvas: Canvas, r0: int, r1: int):
    """The full-resolution chroma of canvas rows r0..r1-1 over the canvas's width, cut to the
    plane's extent (what the decoder upsamples to), with where it must come back -> (chroma (n, w,
    2) int64, valid (n, w) bool); whole cells of the half-resolution plane."""
    ch, cw = _extent(canvas, img.shape)
    r1 = min(r1, canvas.vertical * ch)
    rows = np.arange(r0, r1) - canvas.top
    cols = np.arange(2 * cw) - canvas.left
    inside = ((rows >= 0) & (rows < img.shape[0]))[:, None] & ((cols >= 0) & (cols < img.shape[1]))[None]
    rows, cols = np.clip(rows, 0, img.shape[0] - 1), np.clip(cols, 0, img.shape[1] - 1)
    chroma = values[rows][:, cols, 1:].astype(np.int64)
    valid = inside & _unclamped(img[rows][:, cols])[..., 0]
    return chroma, valid


class ChromaBand(NamedTuple):
    """Half-resolution chroma rows c0..c1-1 (canvas chroma coordinates) as the encoder estimates
    them: `target` and `mask` as blocks to search for (n/8, w/8, 2, 8, 8); past the plane's
    extent its edge repeated (where libjpeg's encoder put it) and unmasked. With the
    full-resolution chroma they were estimated from (`full`, `valid`: the rows those cover,
    columns up to the extent), the estimate's rows just above and below (None at the plane's
    edges) and the luma rows one chroma row covers (`vertical`)."""
    target: np.ndarray
    mask: np.ndarray
    full: np.ndarray
    valid: np.ndarray
    above: np.ndarray | None
    below: np.ndarray | None
    vertical: int


def _chroma_band(values, img, canvas: Canvas, c0: int, c1: int, margin: int) -> ChromaBand:
    """The estimate of chroma rows c0..c1-1, informed by `margin` rows above and below."""
    ch, cw = _extent(canvas, img.shape)
    v = canvas.vertical
    e0, e1, r1 = max(0, c0 - margin), min(ch, c1 + margin), min(c1, ch)
    chroma, valid = _chroma_source(values, img, canvas, v * e0, v * e1)
    rounded = np.clip(np.round(jpeg_chroma.estimate_half(chroma, valid, v)), 0, 255).astype(np.int64)
    cell_valid = valid.reshape(e1 - e0, v, cw, 2).any(axis=(1, 3))[c0 - e0:r1 - e0]
    pad = ((0, c1 - r1), (0, canvas.width // 2 - cw))
    target = np.pad(rounded[c0 - e0:r1 - e0], pad + ((0, 0),), mode="edge")
    mask = np.pad(cell_valid, pad)[..., None].repeat(2, axis=2).astype(np.uint8)
    rows = slice(v * (c0 - e0), v * (r1 - e0))
    return ChromaBand(_blocks(target), _blocks(mask), chroma[rows], valid[rows],
                      rounded[c0 - e0 - 1] if c0 > e0 else None, rounded[r1 - e0] if r1 < e1 else None, v)


def _wrong_blocks(band: ChromaBand, planes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per chroma block: does the upsampling of the band's half-resolution `planes` (what its
    blocks decode to) miss a sample of its cell where `valid` (like band.valid) is set? (nby, nbx)
    bool."""
    rows = planes[:band.full.shape[0] // band.vertical, :band.full.shape[1] // 2]
    up = jpeg_chroma.upsample(rows, band.above, band.below, band.vertical)
    return _any_per_block(~(up == band.full).all(axis=2) & valid, band.target.shape[:2], band.vertical)


def _any_per_block(samples: np.ndarray, blocks, vertical: int) -> np.ndarray:
    """(rows, columns) bool at full resolution, from a chroma band's first row and column -> for
    each of its `blocks` (nby, nbx) chroma blocks, whether any sample of its cell (8 vertical x 16)
    is set."""
    nby, nbx = blocks
    cells = np.zeros((8 * vertical * nby, 16 * nbx), bool)
    cells[:samples.shape[0], :samples.shape[1]] = samples
    return cells.reshape(nby, 8 * vertical, nbx, 16).any(axis=(1, 3))


def _chroma_coefs(band: ChromaBand, steps: np.ndarray) -> np.ndarray:
    """The chroma blocks' coefficients: rounded from the estimate's DCT, and searched only where
    their upsampling misses a sample (elsewhere they are the decoder's already)."""
    planes = _reconstruct(quantize(forward_dct(band.target - 128), steps), steps)
    wrong = _wrong_blocks(band, planes, band.valid)
    target = np.where(wrong[..., None, None, None], band.target, _blocks(planes))
    return _recover_blocks(target, band.mask, steps)


def _chroma_steps(steps: np.ndarray) -> np.ndarray:
    """The chroma table twice: for blocks of the two chroma planes alone."""
    return np.stack([steps[-1], steps[-1]])


def _recover_blocks(target: np.ndarray, mask: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Coefficients (nby, nbx, c, 8, 8) that give the blocks `target` back where `mask` is set, as
    far as the search finds them."""
    dct = forward_dct(target - 128)
    coefs = _search(quantize(dct, steps), dct, steps, target, mask)
    for _ in range(REFINE_ROUNDS):
        # blocks still off: step each coefficient by the rounded DCT of the error, search again,
        # keep what helps
        wrong = _wrong(coefs, steps, target, mask)
        bad = wrong > 0
        if not bad.any():
            break
        err = (target - _blocks(_reconstruct(coefs, steps))) * mask
        step = quantize(forward_dct(err), steps)
        trial = np.clip(np.where(bad[..., None, None], coefs + step, coefs), -_k.COEF_LIMIT, _k.COEF_LIMIT)
        trial = _search(trial, dct, steps, target, mask)
        better = _wrong(trial, steps, target, mask) < wrong
        if not better.any():
            break
        coefs[better] = trial[better]
    return coefs


def _trial_band(values, img, canvas: Canvas) -> ChromaBand:
    """The chroma of up to CHROMA_TRIAL_ROWS rows across the middle of the image, estimated."""
    cell_h = canvas.cell[0]
    side = CHROMA_TRIAL_ROWS // cell_h
    by = max(0, (canvas.height // cell_h - side) // 2)
    return _chroma_band(values, img, canvas, 8 * by, min(8 * (by + side), canvas.height // canvas.vertical), 8)


def _estimate_fit(band: ChromaBand) -> float:
    """Share of the band's samples (where they must come back) that its rounded estimate, upsampled,
    gives back: 0.89 to 0.97 when the plane was subsampled as the band assumes, 0.35 to 0.88 when
    not (quality-85 decodes of three valid photos: a 4:2:2 plane taken for 4:2:0 loses its detail
    down the columns, a 4:2:0 one taken for 4:2:2 is not smooth enough down them)."""
    planes = _planes(band.target)[:band.full.shape[0] // band.vertical, :band.full.shape[1] // 2]
    up = jpeg_chroma.upsample(planes, band.above, band.below, band.vertical)
    return float((up == band.full).all(axis=2)[band.valid].mean()) if band.valid.any() else 0.0


def _chroma_trial(values, img, canvas: Canvas, luma_steps: np.ndarray) -> tuple[np.ndarray, float]:
    """The chroma table of a subsampled decode, tried on a band of rows across the middle of the image:
    the luma's quality, the standard tables that bring most estimated blocks back and the
    step-by-step estimate, each searched and upsampled -> (steps (2, 64), the share of the band's
    chroma blocks whose unclamped samples all come back)."""
    band = _trial_band(values, img, canvas)
    flat = band.target.reshape((1, -1, 1, 8, 8))
    flat_dct = forward_dct(flat - 128)
    chroma_tables = {q: standard_steps(q, 2)[1:] for q in range(100, 0, -1)}

    def tables():
        # the luma's quality first (most encoders scale both tables alike), then the standard
        # tables that bring most rounded blocks back (a sixth of them), then the estimate
        same = [q for q in chroma_tables if np.array_equal(standard_steps(q, 1), luma_steps)]
        yield from (chroma_tables[q][0] for q in same)
        few = (slice(None), slice(None, None, 6))
        shares = {q: _exact_share(quantize(flat_dct[few], t), t, flat[few]) for q, t in chroma_tables.items()}
        best_three = sorted(shares, key=lambda q: (-shares[q], -q))[:3]
        yield from (chroma_tables[q][0] for q in best_three if q not in same)
        yield _estimated_steps(flat_dct, chroma_tables[best_three[0]])[0]

    # judged on the band's inside (its first and last rows' neighbours are estimates) and on the
    # blocks with some sample that must come back
    inner = band.valid.copy()
    inner[:2], inner[-2:], inner[:, :2], inner[:, -2:] = False, False, False, False
    judged = _any_per_block(inner, band.target.shape[:2], canvas.vertical)
    best, best_share = None, -1.0
    for table in tables():
        steps = np.stack([luma_steps[0], table])
        coefs = _chroma_coefs(band, _chroma_steps(steps))
        wrong = _wrong_blocks(band, _reconstruct(coefs, _chroma_steps(steps)), inner)
        share = float((~wrong)[judged].mean()) if judged.any() else 0.0
        if share > best_share:
            best, best_share = steps, share
        if share >= RECOGNISED_CHROMA:
            break
    return best, best_share


def _find_subsampled(samples, values, pads, luma_steps, luma_share) -> Found | None:
    """The image as a decode with subsampled chroma whose luma grid `pads` gives, or None: the
    sampling (4:2:0 or 4:2:2) whose estimate fits the chroma best, then the chroma grid's phase
    (twice as coarse as the luma's each way it is subsampled), the first where the table found
    brings most blocks back (the uncut one first)."""
    fits = {sampling: _estimate_fit(_trial_band(values, samples, Canvas.of(samples.shape, *pads, sampling)))
            for sampling in SAMPLINGS}
    sampling = max(fits, key=fits.get)
    for dy in (0, 8)[:SAMPLINGS[sampling]]:
        for dx in (0, 8):
            canvas = Canvas.of(samples.shape, pads[0] + dy, pads[1] + dx, sampling)
            steps, share = _chroma_trial(values, samples, canvas, luma_steps)
            if share >= RECOGNISED_CHROMA:
                return Found(canvas, steps, luma_share, values)
    return None


_LAST_FOUND: dict = {}  # the last image's: --model auto asks `recognises`, then the codec encodes it


def found(samples: np.ndarray, bits: int) -> Found | None:
    """What the sample of blocks says (None: the image cannot be a decoded JPEG coded here)."""
    key = (bits, samples.shape, hashlib.blake2b(np.ascontiguousarray(samples).data, digest_size=16).digest())
    if key in _LAST_FOUND:
        return _LAST_FOUND[key]
    result = None
    fits = bits == 8 and samples.ndim == 3 and samples.shape[2] in (1, 3) and min(samples.shape[:2]) >= 8
    values = _values_u8(samples) if fits else None
    if values is not None:
        result = _find(samples, values)
    if values is not None and (result is None or result.share < RECOGNISED_AFTER_SEARCH):
        # a decode turned after decoding (cameras and phones record an orientation, and tools apply
        # it to the decoded pixels): its blocks come back once it is turned back (the values of each
        # pixel turn with it)
        for turns in (1, 2, 3):
            turned = _find(np.ascontiguousarray(np.rot90(samples, turns)),
                           np.ascontiguousarray(np.rot90(values, turns)))
            if turned is not None and turned.share >= RECOGNISED_AFTER_SEARCH:
                result = turned._replace(rotation=turns)
                break
    _LAST_FOUND.clear()
    _LAST_FOUND[key] = result
    return result


def recognises(samples: np.ndarray, bits: int) -> bool:
    """Whether the image is a decoded JPEG this model codes well (cheap: a sample of blocks): its
    blocks come back exactly from rounded coefficients often enough to say which table made them,
    and from searched ones often enough to say that the decoder's inverse DCT was libjpeg's."""
    f = found(samples, bits)
    return f is not None and f.share >= RECOGNISED_AFTER_SEARCH


# ---- the blocks, a band of block rows at a time (bounded working memory)

def layout(canvas: Canvas) -> tuple[int, int, list]:
    """(block rows, block columns, the chunks' spans of block rows)."""
    nby, nbx = canvas.height // 8, canvas.width // 8
    return nby, nbx, [(a, min(a + CHUNK_BLOCK_ROWS, nby)) for a in range(0, nby, CHUNK_BLOCK_ROWS)]


def _chunk_window(canvas: Canvas, shape, a: int, b: int) -> tuple[int, int, int, int]:
    """The image's samples within block rows a..b-1: (top, bottom, left, right), chunk-relative."""
    top = min(max(0, canvas.top - 8 * a), 8 * (b - a))
    bottom = max(top, min(8 * (b - a), canvas.top + shape[0] - 8 * a))
    return top, bottom, canvas.left, canvas.left + shape[1]


class Band(NamedTuple):
    """Block rows a..b-1: the blocks' coefficients (rows, nbx, channels, 64; with subsampled chroma
    the luma's, and `chroma` the chroma planes' (rows / Canvas.vertical, nbx / 2, 2, 64), else
    None), which blocks need
    corrections, and the corrections (image - what the coefficients decode to, on the band's part
    of the canvas)."""
    a: int
    b: int
    coefs: np.ndarray
    chroma: np.ndarray | None
    flags: np.ndarray | None = None
    corr: np.ndarray | None = None


def _band_blocks(samples: np.ndarray, f: Found, a: int, b: int) -> Band:
    """Block rows a..b-1's coefficients, without the corrections."""
    canvas, steps = f.canvas, f.steps
    top, bottom, left, right = _chunk_window(canvas, samples.shape, a, b)
    r0 = 8 * a + top - canvas.top
    channels = 1 if canvas.subsampled else samples.shape[2]
    band = np.pad(f.values[r0:r0 + bottom - top, :, :channels].astype(np.int64),
                  ((top, 8 * (b - a) - bottom), (left, canvas.width - right), (0, 0)), mode="edge")
    inside = np.zeros(band.shape[:2] + (1,), np.uint8)
    inside[top:bottom, left:right] = _unclamped(samples[r0:r0 + bottom - top])
    luma_steps = steps[:1] if canvas.subsampled else steps
    coefs = _recover_blocks(_blocks(band), _blocks(inside), luma_steps)
    chroma = None
    if canvas.subsampled:
        v = canvas.vertical
        chroma = _chroma_coefs(_chroma_band(f.values, samples, canvas, 8 * a // v, 8 * b // v, 16),
                               _chroma_steps(steps))
        chroma = np.ascontiguousarray(chroma.reshape(chroma.shape[:3] + (64,)))
    return Band(a, b, np.ascontiguousarray(coefs.reshape(coefs.shape[:3] + (64,))), chroma)


def _shown_bands(bands, canvas: Canvas, shape, steps: np.ndarray):
    """What the decoder shows of each band (rows, canvas width, channels) before corrections:
    yields (band, shown). With 4:2:0 a band's upsampled chroma needs the chroma rows just above and
    below it, so each band is shown once the next one is known (4:2:2 the same way, though its
    upsampling reads neither)."""
    if not canvas.subsampled:
        for band in bands:
            yield band, _to_image(_reconstruct(band.coefs, steps))
        return
    ch, cw = _extent(canvas, shape)
    v = canvas.vertical
    above = None
    pending = None
    for band in itertools.chain(bands, [None]):  # one band ahead, never all of them
        planes = None if band is None else _reconstruct(band.chroma, _chroma_steps(steps))
        if pending is not None:
            p_band, p_planes = pending
            c0, c1 = 8 * p_band.a // v, min(8 * p_band.b // v, ch)
            below = planes[0] if planes is not None and c1 < ch else None
            up = jpeg_chroma.upsample(p_planes[:c1 - c0, :cw], None if above is None else above[:cw],
                                      None if below is None else below[:cw], v)
            rows = 8 * (p_band.b - p_band.a)
            full = np.zeros((rows, canvas.width, 3), np.int64)
            full[..., :1] = _reconstruct(p_band.coefs, steps[:1])
            full[:up.shape[0], :up.shape[1], 1:] = up[:rows]
            above = p_planes[c1 - c0 - 1]
            yield p_band, _to_image(full)
        pending = None if band is None else (band, planes)


def _with_corrections(samples: np.ndarray, f: Found, band: Band, shown: np.ndarray) -> Band:
    top, bottom, left, right = _chunk_window(f.canvas, samples.shape, band.a, band.b)
    r0 = 8 * band.a + top - f.canvas.top
    corr = np.zeros(shown.shape, np.int64)
    corr[top:bottom, left:right] = samples[r0:r0 + bottom - top] - shown[top:bottom, left:right]
    flags = (_blocks(corr) != 0).any(axis=(2, 3, 4)).astype(np.uint8)
    return band._replace(flags=flags, corr=corr)


def recovered_bands(samples: np.ndarray, f: Found):
    """Every band's coefficients and corrections, in order (one band ahead: bounded memory)."""
    bands = (_band_blocks(samples, f, a, b) for a, b in layout(f.canvas)[2])
    for band, shown in _shown_bands(bands, f.canvas, samples.shape, f.steps):
        yield _with_corrections(samples, f, band, shown)


def recover(samples: np.ndarray, f: Found):
    """The bands joined (for tests and benchmarks; the coder takes a band at a time) -> (coefs,
    flags, corr); with subsampled chroma the coefficients are the luma's."""
    bands = list(recovered_bands(samples, f))
    return tuple(np.concatenate([getattr(band, k) for band in bands]) for k in ("coefs", "flags", "corr"))


def code_image(samples: np.ndarray, f: Found, new_model, coder_factory=None, observe=None):
    """Code the blocks chunk by chunk, each with a fresh `new_model()`: yield (model, coder) after
    each chunk's last block (coder None without a coder_factory: the model only learns).
    `observe(cell, block row, bits per symbol, symbols after each block)` sees every block row: its
    blocks cover cells of (rows, columns) samples (subsampled chroma's Canvas.cell, else 8 x 8)."""
    nby, nbx, spans = layout(f.canvas)
    per_block = _k.max_symbols_per_block(samples.shape[2])
    syms = np.empty(per_block * nbx, np.int32)
    rows = np.empty((per_block * nbx, _k.ROW_WIDTH), np.float64)
    ends = np.empty(nbx, np.int64)
    subsampled = f.canvas.subsampled
    for band in recovered_bands(samples, f):
        coder, model = coder_factory() if coder_factory else None, new_model()
        window = _chunk_window(f.canvas, samples.shape, band.a, band.b)
        parts = [((8, 8), band.coefs, band.flags, band.corr, {"subsampled": subsampled})]
        if subsampled:
            summary = np.empty(band.chroma.shape[:2] + (64,), np.int64)
            _k.luma_summary(band.coefs, summary)
            parts.append((f.canvas.cell, band.chroma, None, None, {"luma": summary}))
        for cell, coefs, flags, corr, how in parts:
            for r in range(coefs.shape[0]):
                n = _k.encode_rows(model, coefs, flags, corr, f.steps, *window, r, r + 1, syms, rows, ends, **how)
                if coder is not None:
                    coder.symbols(syms[:n], rows[:n])
                if observe is not None:
                    observe(cell, band.a * 8 // cell[0] + r, symbol_bits(syms[:n], rows[:n]), ends[:coefs.shape[1]])
        yield model, coder


class JpegCoefficientsCodec(RunCodec):
    name = "jpeg-coefficients"
    kind = "image"
    summary = "a decoded JPEG as its quantized DCT coefficients (other images: classic)"
    weights_prefix = "jpeg-coefficients-image"

    def __init__(self, weights: str | Path | None = None):
        self.weights = Prior(self.weights_prefix, (_k.CONTEXTS, _k.ROW_WIDTH), weights)
        self._fallback = ClassicImageCodec()

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "JpegCoefficientsCodec":
        return JpegCoefficientsCodec(path)

    # ---- the classic fallback (as the learned image codecs have it)
    def _encode_fallback(self, coder_factory, samples, signal):
        params, chunks, bits = self._fallback._run(coder_factory, samples, signal)
        return {"fallback": "classic", **params}, chunks, bits

    _fallback_params = staticmethod(LearnedImageCodec.fallback_params)  # the same member form

    # ---- the model
    def _new_model(self):
        return _k.BlockModel(self.weights.counts)

    def _run(self, coder_factory, samples, signal, observe=None):
        if not recognises(samples, signal.bits):
            return self._encode_fallback(coder_factory, samples, signal)
        f = found(samples, signal.bits)
        nby = layout(f.canvas)[0]
        chunks, bits = [], 0.0
        for j, (_, coder) in enumerate(code_image(upright(samples, f), f, self._new_model, coder_factory, observe)):
            chunks.append(coder.finish())
            bits += coder.bits
            progress.step(min(nby, (j + 1) * CHUNK_BLOCK_ROWS) / nby)
        params = {"steps": f.steps.reshape(-1).tolist(), "pad": [f.canvas.top, f.canvas.left]}
        if f.canvas.subsampled:
            params["sampling"] = f.canvas.sampling
        if f.rotation:
            params["rotation"] = f.rotation
        return params, chunks, bits

    def bits_per_dim(self, samples, signal):
        """A block's bits spread evenly over its samples in the image."""
        if not recognises(samples, signal.bits):
            return self._fallback.bits_per_dim(samples, signal)
        f = found(samples, signal.bits)
        image = upright(samples, f)
        canvas, shape = f.canvas, image.shape
        on_canvas = np.zeros((canvas.height, canvas.width), np.float64)
        visible = np.zeros(on_canvas.shape, np.float64)
        visible[canvas.top:canvas.top + shape[0], canvas.left:canvas.left + shape[1]] = 1

        rows = (canvas.top, canvas.top + shape[0])
        cols = (canvas.left, canvas.left + shape[1])

        def within(start, end, shown):
            # a block's span moved onto the image where it lies wholly outside (a luma block in the
            # last, padded cell of subsampled chroma): its bits go to the nearest samples shown
            if end <= shown[0]:
                return slice(shown[0], shown[0] + 1)
            if start >= shown[1]:
                return slice(shown[1] - 1, shown[1])
            return slice(max(start, shown[0]), min(end, shown[1]))

        def observe(size, by, bits, ends):
            starts = np.concatenate([[0], ends[:-1]])
            for bx, (s, e) in enumerate(zip(starts, ends)):
                cell = (within(size[0] * by, size[0] * (by + 1), rows), within(size[1] * bx, size[1] * (bx + 1), cols))
                on_canvas[cell] += bits[s:e].sum() / (visible[cell].sum() * signal.shape[2])

        for _ in code_image(image, f, self._new_model, None, observe):
            pass
        shown = np.rot90(on_canvas[canvas.top:canvas.top + shape[0], canvas.left:canvas.left + shape[1]], -f.rotation)
        return np.repeat(shown[..., None], signal.shape[2], axis=2)

    # ---- decoding
    @staticmethod
    def _upright_shape(params, signal) -> tuple:
        """The decode's shape: the image's, turned back by params.rotation quarter turns."""
        h, w, c = signal.shape
        return (w, h, c) if params.get("rotation", 0) % 2 else (h, w, c)

    def _canvas(self, params, signal) -> Canvas:
        top, left = params["pad"]
        return Canvas.of(self._upright_shape(params, signal), top, left, params.get("sampling", "4:4:4"))

    def check_params(self, params, signal, nchunks):
        """A classic fallback, or: 8-bit, 1 or 3 channels, one table of 64 steps (1..255) per
        luma and chroma, a pad within a cell of the grid (0..7 rows and columns; with subsampled
        chroma, which only an image of 3 channels has, 0..15 columns and 0..15 rows for 4:2:0), one
        chunk per CHUNK_BLOCK_ROWS block rows."""
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
        if set(params) - {"sampling", "rotation"} != {"steps", "pad"}:
            raise ParamError(f"unexpected params {sorted(set(params) - {'steps', 'pad', 'sampling', 'rotation'})}")
        if "rotation" in params:
            param_int(params, "rotation", 1, 3)
        if "sampling" in params and (params["sampling"] not in SAMPLINGS or c != 3):
            raise ParamError(f"params.sampling is one of {sorted(SAMPLINGS)} for an image of 3 channels, or absent")
        canvas = Canvas.of(signal.shape, 0, 0, params.get("sampling", "4:4:4"))
        pad = param_ints(params, "pad", 0, max(canvas.cell) - 1, 2)
        if len(pad) != 2 or pad[0] >= canvas.cell[0]:
            raise ParamError("params.pad is not two integers within a cell of the block grid")
        check_chunk_count(len(layout(self._canvas(params, signal))[2]), nchunks)

    def decode_memory(self, params, signal):
        """Two chunks' coefficients, corrections and planes (int64) over the canvas's width
        (subsampled chroma shows a chunk once the next one is decoded)."""
        rest = self._fallback_params(params)
        if rest is not None:
            return self._fallback.decode_memory(rest, signal)
        width = (max(signal.shape[:2]) + 16) * signal.shape[2]
        turned = signal.shape[0] * signal.shape[1] * signal.shape[2] if params.get("rotation") else 0  # a copy
        return 2 * 8 * CHUNK_BLOCK_ROWS * width * 8 * 5 + turned + (1 << 20)

    def _decoded_bands(self, canvas: Canvas, chunks, shape, steps):
        """Each chunk's Band (of a decode of `shape`), decoded from its words."""
        c = shape[2]
        nby, nbx, spans = layout(canvas)
        prior = self.weights.counts
        for (a, b), data in zip(spans, chunks):
            if len(data) % 4:
                raise ValueError("corrupt chunk: its length is not a whole number of words")
            coefs = np.zeros((b - a, nbx, 1 if canvas.subsampled else c, 64), np.int64)
            chroma = np.zeros(((b - a) // canvas.vertical, nbx // 2, 2, 64), np.int64) if canvas.subsampled else None
            flags = np.zeros((b - a, nbx), np.uint8)
            corr = np.zeros((8 * (b - a), 8 * nbx, c), np.int64)
            if not _k.decode(np.frombuffer(data, "<u4").astype(np.uint32), coefs, flags, corr, steps,
                             *_chunk_window(canvas, shape, a, b), prior, chroma):
                raise ValueError("corrupt chunk: its stream does not decode")
            yield Band(a, b, coefs, chroma, flags, corr)

    def decode(self, params, chunks, signal):
        rest = self._fallback_params(params)
        if rest is not None:
            return self._fallback.decode(rest, chunks, signal)
        canvas = self._canvas(params, signal)
        nby, nbx, spans = layout(canvas)
        if len(spans) != len(chunks):
            raise ValueError("chunk count does not match the image size")
        steps = np.array(params["steps"], np.int64).reshape(-1, 64)
        shape = self._upright_shape(params, signal)
        out = np.empty(shape, np.uint8)
        bands = self._decoded_bands(canvas, chunks, shape, steps)
        for band, shown in _shown_bands(bands, canvas, shape, steps):
            top, bottom, left, right = _chunk_window(canvas, shape, band.a, band.b)
            planes = (shown + band.corr)[top:bottom, left:right]
            if planes.min(initial=0) < 0 or planes.max(initial=0) > 255:
                raise ValueError("corrupt chunk: a corrected sample outside 0..255")
            out[8 * band.a + top - canvas.top:8 * band.a + bottom - canvas.top] = planes
            progress.step(band.b / nby)
        turns = params.get("rotation", 0)
        return np.ascontiguousarray(np.rot90(out, -turns)) if turns else out
