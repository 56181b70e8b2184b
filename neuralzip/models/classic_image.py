"""Classical image baseline: blended causal predictors + adaptive context statistics.

Per pixel and channel (integer arithmetic but for the mixer's least-squares solve,
which is strict float64 in a fixed order; identical on both sides):
  * BASE simple predictors over the causal neighbours (MED/LOCO-I, gradient,
    W+NE-N, N+NE-NNE, N, W, NE, NW, averages, linear extrapolations); for
    later channels also the same predictors corrected by the previous
    channel's error at this pixel;
  * blended with integer weights 1/(16 + e^2), e = each predictor's recent
    error around the pixel (N, NE, NW, W, NN, WW, and for later channels the
    previous channel's error at this pixel): the idea of JPEG XL's
    self-correcting predictor;
  * a bias correction per local texture (signs of three gradients x coarse
    activity, LOCO-I's C[Q]);
  * the blend kept in 1/16 units and corrected by an online least-squares
    mixer that learns the photo being coded: its inputs are the
    sub-predictors' deviations from the blend and the residuals of six
    causal neighbours (W, N, NE, NW, WW, NN) and of the earlier channels at
    the pixel; its weights, one set per activity class / 4 and texture flat
    or not (16 sets), are the least-squares fit of the blend's error over
    the pixels coded so far (forgetting factor 0.9995, a ridge), solved
    every 32 pixels of a set in strict float64 and rounded to integers;
    for the later channels of a chunk whose colours follow the 2x2 pixel
    grid (chroma once subsampled and interpolated: a film scan), each set
    split four ways by the pixel's row and column parity, as the encoder
    chose for the chunk (models/grid_parity.py) and its parity byte says,
    and (files since "blend": 7) the mixer of those channels also reads the
    colour difference at six more neighbours, the ring beyond W, N, NE, NW,
    WW and NN;
  * the bias kept in 1/16 units too, the prediction rounded once; where the
    fine prediction lies above the rounded one the residual's sign is
    flipped, so the likelier side gets the smaller code. (Files with params
    "blend": 7, which new files are, 6 (no colour differences in the ring)
    or 5 (also one count row per class);
    "blend": 4 files have no parity byte and never split the sets.
    "blend": 3 files had an online mixer
    over the deviations alone, 108 weight sets by texture and activity
    trained by normalized LMS; earlier files, without the key, used whole
    units and no mixer. Each decodes as it was written.)
  * the residual coded as a bucket symbol under adaptive counts chosen by a
    quantised activity (neighbouring final errors, the previous channel's
    error here, and the best predictor's recent error) and, in files since
    "blend": 6, in chunks of at least 256x256 pixels, by two more bits:
    whether the fine prediction lies at least 5/16 of a level from the value
    it rounds to (then the residuals 0 and 1 toward it are near equally
    likely; closer, 0 stands out) and whether the texture is flat; plus
    uniform low bits.
Each of these was kept for what it measured on a tuning split of
images/train (see the closing note of the baseline issue).

Decoding steps many pixels at once (a per-pixel coder call would be far too
slow): the image is cut into chunks of rows (about CHUNK_PIXELS pixels, which
bound the memory), and a chunk into tiles as tall as the chunk and at most
TILE_W wide that walk the wavefront x + 2*y = t side by side, so all pixels with
the same t are coded in one pass and one coder call; the statistics are updated
after each pass. A chunk of an image at most TILE_W wide is one tile. Wider
images have tiles side by side: each tile's first column has no west context,
which costs far less than a row without its north one, and a chunk takes
TILE_W + 2 * rows steps however wide the image (one tile across a 6000-pixel
image took 26% more time to code and 47% more to decode). The passes themselves are compiled
(neuralzip/kernels/classic_image.pyx, which also holds the format's constants).

The tiles are recorded in the member's params (tile_h, tile_w). Earlier files
cut each chunk into tiles of TILE_H x TILE_W; each tile's first row had no
north context, which cost about 0.3% on photos and showed as faint lines in
`neuralzip explain`. They decode as they were written.

Photos saved from a decoded JPEG (8-bit, 3 or 4 channels) are coded in the YCbCr they were
decoded from (models/jpeg_colour.py): new members record params "colour": 1, and each chunk
starts with one byte, 0 where the chunk is coded as stored (some pixel is no JPEG decoder's
colour), 1 where its first three channels are coded as (Y, Cb, Cr), which the decoder converts
back to RGB after the chunk. Everything else is the same in both cases. Files without the key
have no such byte.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, TeeCoder, symbol_bits
from neuralzip.kernels import classic_image as _k
from neuralzip.kernels.coding import KernelRangeDecoder, max_threads
from neuralzip.models.base import ParamError, RunCodec, check_chunk_count, drain_chunks, param_int
from neuralzip.models import grid_parity, jpeg_colour
from neuralzip.models import colour_table as ctable
from neuralzip.models.prior import Prior

# BASE predictors per channel, NCLS activity classes (split at THRESHOLDS, on an 8-bit
# scale), bias accumulators per texture context
BASE, NCLS, THRESHOLDS, N_BIAS_CONTEXTS = _k.BASE, _k.NCLS, _k.THRESHOLDS, _k.N_BIAS_CONTEXTS

WEIGHTS_PREFIX = "classic-image"
TILE_W = 1024  # the widest tile
TILE_H = 128  # the tiles' height in earlier files (and in a codec given it)
MAX_TILE = 1 << 16  # the largest tile side params may give
CHUNK_PIXELS = 1 << 21  # bounds the memory of the per-pixel error maps
OFFSET_ROWS_MIN_PIXELS = 1 << 16  # the smallest chunk whose count rows split by offset ("blend": 6)
# How a member keeps its blend, as its params "blend" record it (a model's files without the key:
# its blend_unrecorded). Fine: in 1/16 units, with the residual's sign flipped toward the likelier
# side; NLMS: fine and corrected by the online mixer that normalized LMS trains; OLS: fine and
# corrected by the online least-squares mixer (more inputs: the neighbours' residuals).
# OLS by parity (files since stop 55): the same, and each chunk's leading parity byte (after its
# colour byte, if any) says whether the mixer's weight sets of the later channels split by the
# pixel's row and column parity, as the encoder chose for the chunk (models/grid_parity.py).
# Offset rows (files since stop 56): the same, and in chunks of at least OFFSET_ROWS_MIN_PIXELS
# pixels each activity class has _k.OFFSET_ROWS count rows, by the fine prediction's distance from
# the value it rounds to and by a flat texture (a smaller chunk has too few values to fill four
# times the rows: on crops of images/train photos the split cost 0.26% at 32x32, 0.21% at 64x64,
# 0.02% at 128x128 and gained 0.04% at 256x256 and 0.26% on the whole photos:
# benchmarks/experiments/offset_rows.py).
# Parity taps (files since stop 57): the same, and in the chunks whose parity byte splits the sets,
# the later channels' mixer also reads the colour difference at _k.N_PARITY_TAPS more neighbours
# (benchmarks/experiments/parity_taps.py).
BLEND_INTEGER, BLEND_FINE, BLEND_NLMS, BLEND_OLS, BLEND_OLS_PARITY, BLEND_OFFSET_ROWS, BLEND_PARITY_TAPS = 1, 2, 3, 4, 5, 6, 7
# the blends with the least-squares mixer, the last the one new files write (the networks built on
# classic read any of them alike)
OLS_BLENDS = (BLEND_OLS, BLEND_OLS_PARITY, BLEND_OFFSET_ROWS, BLEND_PARITY_TAPS)
# the kernel's mixer of each mixed blend
MIXERS = {BLEND_NLMS: _k.MIXER_NLMS, **{kind: _k.MIXER_OLS for kind in OLS_BLENDS}}
# params "colour": 1 (files since stop 44, 8-bit images of 3 or 4 channels): each chunk's first byte
# says whether it is coded as stored or in libjpeg's YCbCr (models/jpeg_colour.py). Without the key:
# as stored, no such byte.
COLOUR_FLAGGED = 1
MIXER_STEP_INT64 = _k.OLS_MAX_IN + 3  # the mixer's arrays per pixel of a step (inputs, norm, set, correction)


def chunk_tiles(shape) -> tuple[int, int]:
    """The tiles (tile_h, tile_w) of an image of this shape: as tall as a chunk (CHUNK_PIXELS //
    width rows, at most the image's height) and as wide as the image, at most TILE_W."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, min(h, CHUNK_PIXELS // max(w, 1), MAX_TILE)), max(1, min(w, TILE_W))


def chunk_rows(params, width: int) -> int:
    """Rows of each chunk (the last may have fewer): as many whole tile rows as chunk_pixels holds,
    at least one. The decoder's rule, whatever tiles the file's params name."""
    th = params["tile_h"]
    return max(th, (params["chunk_pixels"] // max(width, 1)) // th * th)


def largest_step(params, height: int, width: int) -> tuple[int, int]:
    """(rows of the largest chunk, pixels of its largest wavefront step): what decoding holds at once."""
    th, tw = params["tile_h"], params["tile_w"]
    rows = min(height, chunk_rows(params, width))
    return rows, min(rows * width, -(-rows // th) * -(-width // tw) * min(th, tw))


def thread_blocks(n: int, smallest: int = 64, busy: int = 0) -> int:
    """Thread blocks for a pass over n independent rows, each block at least `smallest` rows (small
    passes stay on one thread: waking a thread team costs more than they take), on the threads
    that `busy` other threads leave."""
    return max(1, min(max_threads() - busy, n // smallest))


def _wavefront_order(height: int, width: int, tile_h: int, tile_w: int):
    """Pixel coordinates sorted by wavefront step, and where each step starts."""
    ys, xs = np.divmod(np.arange(height * width, dtype=np.int64), width)
    step = (xs % tile_w) + 2 * (ys % tile_h)
    order = np.argsort(step, kind="stable")
    ys, xs, step = ys[order], xs[order], step[order]
    bounds = np.searchsorted(step, np.arange(step[-1] + 2)) if len(step) else np.zeros(1, np.int64)
    return ys, xs, bounds


class _ChunkState:
    """The statistics one chunk's passes adapt, and the compiled kernels' state (`kernel`, which
    also keeps the error maps and the mixer's fits)."""

    def __init__(self, img: np.ndarray, bits: int, prior: np.ndarray | None, tile_h: int, tile_w: int,
                 n_extra: int = 0, fine: bool = False, mixer: int = _k.MIXER_NONE, parity: bool = False,
                 row0: int = 0, offset_rows: bool = False, parity_taps: bool = False, step_max: int = 0):
        c = img.shape[2]
        self.img = img
        self.maxv = (1 << bits) - 1
        self.shift = bits - 8
        self.nsub = (BASE if c == 1 else 2 * BASE) + n_extra
        self.counts = _initial_counts(bits, c, prior, _k.OFFSET_ROWS if offset_rows else 1)
        self.totals = self.counts.sum(axis=2)
        self.bias_sum = np.zeros((c, N_BIAS_CONTEXTS), np.int64)
        self.bias_cnt = np.zeros((c, N_BIAS_CONTEXTS), np.int64)
        self.kernel = _k.ImageChunkState(
            img=img, counts=self.counts, totals=self.totals,
            bias_sum=self.bias_sum, bias_cnt=self.bias_cnt, maxv=self.maxv, shift=self.shift, nsub=self.nsub,
            tile_h=tile_h, tile_w=tile_w, n_extra=n_extra, fine=fine, mixer=mixer, parity=parity, row0=row0,
            offset_rows=offset_rows, parity_taps=parity_taps, step_max=step_max, fit_thread=max_threads() > 1)


def alphabet(bits: int) -> int:
    return buckets.alphabet_size(2 * ((1 << bits) - 1))


def _initial_counts(bits: int, channels: int, prior: np.ndarray | None, rows_per_class: int = 1) -> np.ndarray:
    """Counts each chunk starts from, rows_per_class rows per activity class: the learned prior
    (8-bit images; row 0 for the first channel, row 1 for the others; a class's rows start alike) or
    flat."""
    if bits == 8 and prior is not None:
        counts = np.stack([prior[min(c, 1)] for c in range(channels)]).astype(np.int64)
        return np.repeat(counts, rows_per_class, axis=1)
    return np.ones((channels, NCLS * rows_per_class, alphabet(bits)), np.int64)


def _code_chunk(img: np.ndarray, bits: int, coder, decoder, tile_h: int, tile_w: int,
                prior: np.ndarray | None, observe=None, model_rows=None, extra_predictor=None, fine=False,
                mixer=_k.MIXER_NONE, parity: bool = False, row0: int = 0, offset_rows: bool = False,
                parity_taps: bool = False, colour_table: bool = False, priced=None):
    """Run the step loop over one chunk; encode (coder) or decode in place (decoder).

    `observe(channel, ys, xs, classes, symbols, rows, low-bit counts)` sees every pass
    (learning the prior, explaining where the bits go). `model_rows(step)` lets a
    learned model replace the count rows the symbols are coded with (see StepView);
    it must only read what the decoder also has before the pass. If it has a `learn(step,
    symbols)`, that is called with each pass's symbols before the update pass (what it keeps
    for the chunk lives in step.model_state). `extra_predictor(img, channel,
    ys, xs, out)` writes one more sub-predictor's value per pixel of a pass (< 0: none there), which
    joins the blend; it too must only read what the decoder has. `fine` keeps the blend in 1/16
    units and flips the residual's sign toward the likelier side; `mixer` (with `fine`) corrects the
    blend with an online mixer (the kernel's MIXER_NLMS or MIXER_OLS), `parity` (with MIXER_OLS) its
    weight sets split by the pixel's row and column parity in the image; `offset_rows` (with `fine`)
    gives each activity class _k.OFFSET_ROWS count rows where the chunk has at least
    OFFSET_ROWS_MIN_PIXELS pixels. `row0`: the chunk's first row in the image (the step's pixels are
    at rows row0 + step.ys of the image). `colour_table` (8-bit, 3 or more channels) codes channels
    1 and 2 with models/colour_table.py's flags first; `priced(channel, ys, xs, bits)` then gets,
    after observe, what the flags changed of each pixel's bits against the rows alone (encoder only)."""
    h, w, nch = img.shape
    split_rows = offset_rows and h * w >= OFFSET_ROWS_MIN_PIXELS
    ys, xs, bounds = _wavefront_order(h, w, tile_h, tile_w)
    n_max = int(np.max(np.diff(bounds))) if len(bounds) > 1 else 0
    st = _ChunkState(img, bits, prior, tile_h, tile_w, 0 if extra_predictor is None else 1, fine, mixer, parity, row0,
                     split_rows, parity_taps, max(n_max, 1))
    nbk = st.counts.shape[2]
    later = StepView(n_max, nch, st.nsub, nbk, st.maxv, st.counts, st.totals)
    later.row0 = row0
    # Where the fits have a worker and no hook reads the views, the worker also predicts the first
    # channel of the next step while this one's later channels are coded (_k.predict_ahead), into
    # a view of its own (one channel alone would only wait for it)
    ahead = st.kernel.fit_thread and model_rows is None and extra_predictor is None and nch > 1
    first = StepView(n_max, nch, st.nsub, nbk, st.maxv, st.counts, st.totals) if ahead else later
    first.row0 = row0
    busy = 1 if st.kernel.fit_thread else 0  # the worker's thread: one fewer for the passes
    learn = getattr(model_rows, "learn", None)
    kernel = getattr(coder, "kernel", None)  # a range encoder's, which the kernels code into
    sym = np.empty(n_max, np.int32)
    nlow = np.empty(n_max, np.int64)
    low = np.empty(n_max, np.int64)
    table = ctable.ColourTableStep(n_max, nbk) if colour_table and ctable.applies(bits, nch) else None
    steps = [s for s in range(len(bounds) - 1) if bounds[s] < bounds[s + 1]]
    for k, s in enumerate(steps):
        if k % 64 == 0:
            progress.step(s / len(bounds))
        a, b = bounds[s], bounds[s + 1]
        n = b - a
        sy, sx = ys[a:b], xs[a:b]
        for c in range(nch):
            view = first if c == 0 else later
            view.n, view.ys, view.xs, view.c = n, sy, sx, c
            # all predictions of the step first (they read the state as it was before the step) ...
            if extra_predictor is not None:
                extra_predictor(img, c, sy, sx, view.extra)
            if c == 0 and ahead and k > 0:
                _k.predicted(st.kernel)
            else:
                _k.predict_pass(st.kernel, view.buffers, c, sy, sx, thread_blocks(n, busy=busy))
            rows = view.rows[:n] if model_rows is None else model_rows(view)
            tabled = table is not None and c in ctable.CHANNELS
            extra = None
            if decoder is None:
                # (where the kernel has the range encoder and no table takes the values, it codes the
                # step's symbols and low bits itself)
                direct = None if tabled else kernel
                _k.residual_symbols(st.kernel, view.buffers, c, sy, sx, sym, nlow, low, direct,
                                    None if direct is None else np.ascontiguousarray(rows))
                if tabled:
                    extra = table.encode(coder, img, c, sy, sx, rows, view, fine, sym, nlow, low, priced is not None)
                elif direct is None:
                    coder.symbols(sym[:n], rows)
                    coder.low_bits(low[:n], nlow[:n])
            elif tabled:
                table.decode(decoder, img, c, sy, sx, rows, view, fine, sym, nlow, low)
            else:
                decoder.residuals(np.ascontiguousarray(rows), sym, nlow, low)
            if observe is not None:
                observe(c, sy, sx, view.classes[:n], sym[:n], rows, nlow[:n])
            if extra is not None:
                priced(c, sy, sx, extra)
            # ... then the updates, in pixel order
            if learn is not None:
                learn(view, sym[:n])
            _k.update_pass(st.kernel, view.buffers, c, sy, sx, sym, low, decoder is not None)
            if c == 0 and ahead and k + 1 < len(steps):
                a1, b1 = bounds[steps[k + 1]], bounds[steps[k + 1] + 1]
                _k.predict_ahead(st.kernel, first.buffers, ys[a1:b1], xs[a1:b1])
            if tabled:
                table.learn(img, c, sy, sx)


class StepView:
    """What the predict pass knows about the n pixels of one step and channel c:
    final predictions, activity, context class, sub-predictions, the count rows,
    whether the residual's sign is flipped (flip: the fine blend lies above the
    prediction), and the residuals of the channels already coded at these pixels
    (resid[:, :c]); ys, xs: the step's pixels in the chunk (its first row is row0 of the image);
    counts/totals are the adaptive statistics themselves ([channel, class, bucket]).
    `buffers` is the compiled kernels' typed view of the same arrays; `model_state`
    what a model_rows hook keeps for the chunk (a chunk has its own view)."""

    def __init__(self, n_max: int, nch: int, nsub: int, nbk: int, maxv: int, counts, totals):
        self.n, self.c, self.maxv = 0, 0, maxv
        self.ys = self.xs = np.empty(0, np.int64)
        self.row0 = 0
        self.counts, self.totals = counts, totals
        self.preds = np.empty(n_max, np.int64)
        self.classes = np.empty(n_max, np.int64)
        self.bctx = np.empty(n_max, np.int64)
        self.acts = np.empty(n_max, np.int64)
        self.subs = np.empty((n_max, nsub), np.int64)
        self.rows = np.empty((n_max, nbk), np.float64)
        self.resid = np.zeros((n_max, nch), np.int64)
        self.extra = np.full(n_max, -1, np.int64)
        self.flip = np.zeros(n_max, np.int64)
        self.model_state = {}
        self.buffers = _k.StepBuffers(preds=self.preds, classes=self.classes, bctx=self.bctx, acts=self.acts,
                                      subs=self.subs, rows=self.rows, resid=self.resid, counts=counts,
                                      totals=totals, maxv=maxv, extra=self.extra, flip=self.flip)


def colour_params(signal) -> dict:
    """params "colour" and "colour_table" for a new member of this signal's depth and channels."""
    return ({"colour": COLOUR_FLAGGED} if jpeg_colour.applies(signal.bits, signal.shape[2]) else {}) | (
        {"colour_table": ctable.FLAGGED} if ctable.applies(signal.bits, signal.shape[2]) else {})


class ClassicImageCodec(RunCodec):
    name = "classic"
    kind = "image"
    summary = "blended causal predictors + adaptive context statistics, learned initial statistics"

    def __init__(self, weights: str | Path | None = None, tile_h: int | None = None, tile_w: int | None = None):
        """tile_h, tile_w: fixed tiles (as earlier files have); None: chunk_tiles."""
        self.weights = Prior(WEIGHTS_PREFIX, (2, NCLS, alphabet(8)), weights)
        self.tile_h, self.tile_w = tile_h, tile_w

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "ClassicImageCodec":
        return ClassicImageCodec(path, self.tile_h, self.tile_w)

    @property
    def prior(self) -> np.ndarray:
        return self.weights.counts

    def _spans(self, shape, params):
        rows = chunk_rows(params, shape[1])
        return [(a, min(a + rows, shape[0])) for a in range(0, shape[0], rows)]

    def _params(self, signal):
        th, tw = chunk_tiles(signal.shape)
        params = {"tile_h": self.tile_h or th, "tile_w": self.tile_w or tw, "chunk_pixels": CHUNK_PIXELS}
        return dict(params, **self._recorded(signal))

    def _model_rows(self, params, bits: int):
        """A learned model's replacement for the count rows (see _code_chunk); the classic model has none."""
        return None

    def _extra_predictor(self, params, bits: int):
        """One more sub-predictor for the blend (see _code_chunk); the classic model has none."""
        return None

    # How the model keeps its blend (BLEND_*): in files that do not say (earlier files), and the
    # blends its files record in params "blend", the last being what new files write. A model that
    # records none keeps its unrecorded blend and reads no "blend".
    blend_unrecorded = BLEND_INTEGER
    blends_recorded = (BLEND_NLMS, *OLS_BLENDS)

    def _recorded(self, signal) -> dict:
        """What a new member's params record of how it codes (here its blend; models built on
        classic add theirs, and check them in _check_recorded), and last "colour": 1 where each
        chunk says whether it is coded in libjpeg's YCbCr and "colour_table": 1 where channels 1
        and 2 are coded with the colour table (last: the container's built-in dictionary holds the
        params as they were before them)."""
        blend = {"blend": self.blends_recorded[-1]} if self.blends_recorded else {}
        return {**blend, **self._more_recorded(signal), **colour_params(signal)}

    def _more_recorded(self, signal) -> dict:
        """What a model built on classic records besides the blend and the colour; classic: nothing."""
        return {}

    def _blend(self, params) -> dict:
        """_code_chunk's fine, mixer and count-row switches for this member (params already checked)."""
        kind = params.get("blend", self.blend_unrecorded) if self.blends_recorded else self.blend_unrecorded
        return {"fine": kind != BLEND_INTEGER, "mixer": MIXERS.get(kind, _k.MIXER_NONE),
                "offset_rows": kind in (BLEND_OFFSET_ROWS, BLEND_PARITY_TAPS), "parity_taps": kind == BLEND_PARITY_TAPS}

    @staticmethod
    def _colour_table(params) -> bool:
        """Whether this member's chunks carry a colour-table byte, 1 where channels 1 and 2 are coded
        with the colour table (params already checked)."""
        return params.get("colour_table") == ctable.FLAGGED

    def _parity_flagged(self, params) -> bool:
        """Whether this member's chunks carry a parity byte ("blend": 5 to 7)."""
        return bool(self.blends_recorded) and params.get("blend") in (BLEND_OLS_PARITY, BLEND_OFFSET_ROWS,
                                                                      BLEND_PARITY_TAPS)

    def _check_recorded(self, params, signal) -> None:
        """A recorded blend is one this model's files record or the one its unrecorded files mean;
        chunks flag their colour only in images that can be coded in YCbCr, and a colour table
        codes only images that have one."""
        if "colour_table" in params:
            param_int(params, "colour_table", ctable.FLAGGED, ctable.FLAGGED)
            if not ctable.applies(signal.bits, signal.shape[2]):
                raise ParamError(f"params.colour_table: a {signal.bits}-bit image of {signal.shape[2]} channel(s) "
                                 "has no colour table")
        if "colour" in params:
            param_int(params, "colour", COLOUR_FLAGGED, COLOUR_FLAGGED)
            if not jpeg_colour.applies(signal.bits, signal.shape[2]):
                raise ParamError(f"params.colour: a {signal.bits}-bit image of {signal.shape[2]} channel(s) "
                                 "is never coded in YCbCr")
        if "blend" in params and self.blends_recorded:
            kinds = (self.blend_unrecorded, *self.blends_recorded)
            if param_int(params, "blend", 1, BLEND_PARITY_TAPS) not in kinds:
                raise ParamError(f"params.blend {params['blend']} is not one of {self.name}'s blends {kinds}")

    def _tile(self, params, rows: int, width: int) -> tuple[int, int]:
        """The tile a chunk of `rows` rows is cut into."""
        return params["tile_h"], params["tile_w"]

    @staticmethod
    def as_coded(img: np.ndarray, params) -> tuple[int | None, np.ndarray]:
        """A chunk's values (int64) as a member with these params codes them -> (the chunk's colour
        byte, None where the params flag none; the values, in YCbCr where it says so)."""
        if params.get("colour") != COLOUR_FLAGGED:
            return None, img
        ycc = jpeg_colour.encode_chunk(img)
        return (jpeg_colour.STORED, img) if ycc is None else (jpeg_colour.YCBCR, ycc)

    def _coded_chunks(self, coder_factory, params, rows, signal, observe=None, model_rows=None, priced=None):
        """Code the image's spans of rows in order, `rows(a, b)` giving rows a..b (asked for in
        order, each once): yield (chunk bytes, exact-model bits) per span (observe and priced: see
        _code_chunk, with rows of the image)."""
        if model_rows is None:
            model_rows = self._model_rows(params, signal.bits)
        for a, b in self._spans(signal.shape, params):
            coder = coder_factory()
            img = np.ascontiguousarray(rows(a, b), dtype=np.int64)
            colour, img = self.as_coded(img, params)
            # the encoder's two measures side by side (the table's kernel lets go of the GIL); a chunk
            # coded in YCbCr is a decoded JPEG: its colours repeat as a JPEG's chroma made them, and
            # the table lost on those of images/train
            measure_table = self._colour_table(params) and colour != jpeg_colour.YCBCR
            with ThreadPoolExecutor(1) as pool:
                repeats = pool.submit(ctable.repeats, img) if measure_table else None
                parity = grid_parity.splits_by_parity(img) if self._parity_flagged(params) else None
                uses_table = (measure_table and repeats.result()) if self._colour_table(params) else None
            seen = None if observe is None else (lambda c, sy, *rest, a=a: observe(c, sy + a, *rest))
            paid = None if priced is None else (lambda c, sy, *rest, a=a: priced(c, sy + a, *rest))
            with progress.within(a, b, signal.shape[0]):
                _code_chunk(img, signal.bits, coder, None, *self._tile(params, b - a, img.shape[1]), self.prior,
                            seen, model_rows, self._extra_predictor(params, signal.bits), **self._blend(params),
                            parity=bool(parity), row0=a, colour_table=bool(uses_table), priced=paid)
            # the chunk's leading colour, parity and colour-table bytes are side information, as the
            # params are: their size counts, the likelihood (and the bits per value it sums) does not
            lead = ([] if colour is None else [colour]) + ([] if parity is None else [int(parity)]) + (
                [] if uses_table is None else [int(uses_table)])
            yield bytes(lead) + coder.finish(), coder.bits

    def _tallied_chunks(self, coder_factory, params, rows, signal):
        """_coded_chunks whose generator returns the float model's bits when it ends (None: the
        exact model's; models with a float network override it)."""
        yield from self._coded_chunks(coder_factory, params, rows, signal)

    def _run(self, coder_factory, samples, signal, observe=None, model_rows=None, priced=None):
        params = self._params(signal)
        chunks, bits, _ = drain_chunks(self._coded_chunks(coder_factory, params, lambda a, b: samples[a:b], signal,
                                                          observe, model_rows, priced))
        return params, chunks, bits

    # -- chunk by chunk (neuralzip/chunked.py): every chunk is a span of rows coded on its own
    def chunk_params(self, signal):
        return self._params(signal)

    def encode_chunks(self, params, read, signal):
        return self._tallied_chunks(TeeCoder, params, lambda a, b: read(b - a), signal)

    def bits_per_dim(self, samples, signal):
        out = np.zeros(signal.shape, np.float64)

        def observe(c, sy, sx, classes, sym, rows, nlow):
            out[sy, sx, c] = symbol_bits(sym, rows) + nlow

        def priced(c, sy, sx, bits):  # the colour table's flags
            out[sy, sx, c] += bits

        self._run(CostCoder, samples, signal, observe, priced=priced)
        return out

    def check_params(self, params, signal, nchunks):
        """Tiles of 1..65536 rows and columns, chunks of 1..2^26 pixels, one chunk per span of rows,
        and a blend of this model's where one is recorded."""
        param_int(params, "tile_h", 1, MAX_TILE)
        param_int(params, "tile_w", 1, MAX_TILE)
        param_int(params, "chunk_pixels", 1, 1 << 26)
        self._check_recorded(params, signal)
        check_chunk_count(-(-signal.shape[0] // chunk_rows(params, signal.shape[1])), nchunks)

    def _largest_step(self, params, height: int, width: int) -> tuple[int, int]:
        """(rows of the largest chunk, pixels of its largest wavefront step)."""
        return largest_step(params, height, width)

    def decode_memory(self, params, signal):
        """One chunk's state (the image as int64, the wavefront order, the error maps' ring), the
        arrays of its largest wavefront step in both step views (count rows over the buckets,
        sub-predictions, the mixer's inputs), the mixer's fits and the colour table. The same for
        every model built on this loop, with its own tiles and extra sub-predictor."""
        h, w, c = signal.shape
        rows, step = self._largest_step(params, h, w)
        nsub = (12 if c == 1 else 24) + (self._extra_predictor(params, signal.bits) is not None)
        nbk = alphabet(signal.bits)
        # the least-squares mixer's fits, and a step's pixels waiting to join them
        fits = c * 8 * (_k.OLS_SETS * _k.PARITIES * _k.OLS_STRIDE * (_k.OLS_STRIDE + 1) + step * (_k.OLS_STRIDE + 2))
        table = ctable.decode_memory(step, nbk) if self._colour_table(params) else 0
        maps = _k.error_map_rows(rows, w, self._tile(params, rows, w)[1]) * c * (2 * nsub + 8)
        views = 2  # the worker's prediction ahead has a step view of its own
        return (rows * w * (c * 16 + 128) + maps + views * step * 8 * (nbk + nsub + 8 + c + MIXER_STEP_INT64)
                + fits + table)

    def decode_chunks(self, params, chunk, signal, write):
        spans = self._spans(signal.shape, params)
        dtype = np.uint16 if signal.bits > 8 else np.uint8
        flagged = params.get("colour") == COLOUR_FLAGGED
        parity_flagged = self._parity_flagged(params)
        table_flagged = self._colour_table(params)
        for j, (a, b) in enumerate(spans):
            img = np.zeros((b - a,) + tuple(signal.shape[1:]), np.int64)
            data = chunk(j)
            if flagged:
                if len(data) < 1 or data[0] not in (jpeg_colour.STORED, jpeg_colour.YCBCR):
                    raise ValueError(f"corrupt chunk {j}: it names no colour")
                colour, data = data[0], data[1:]
            parity = False
            if parity_flagged:
                if len(data) < 1 or data[0] not in (0, 1):
                    raise ValueError(f"corrupt chunk {j}: its parity byte is neither 0 nor 1")
                parity, data = data[0] == 1, data[1:]
            uses_table = False
            if table_flagged:
                if len(data) < 1 or data[0] not in (0, 1):
                    raise ValueError(f"corrupt chunk {j}: its colour-table byte is neither 0 nor 1")
                uses_table, data = data[0] == 1, data[1:]
            # the kernels' range decoder (what constriction decodes; the colour table's steps decode
            # inside its kernel from the same object)
            with progress.within(a, b, signal.shape[0]):
                _code_chunk(img, signal.bits, None, KernelRangeDecoder(data),
                            *self._tile(params, b - a, img.shape[1]), self.prior,
                            model_rows=self._model_rows(params, signal.bits),
                            extra_predictor=self._extra_predictor(params, signal.bits), **self._blend(params),
                            parity=parity, row0=a, colour_table=uses_table)
            if flagged and colour == jpeg_colour.YCBCR:
                jpeg_colour.decode_chunk(img)
            write(img.astype(dtype))

    def decode(self, params, chunks, signal):
        if len(self._spans(signal.shape, params)) != len(chunks):
            raise ValueError("chunk count does not match the image size")
        out = np.empty(signal.shape, np.uint16 if signal.bits > 8 else np.uint8)
        done = [0]

        def write(block):
            out[done[0]:done[0] + len(block)] = block
            done[0] += len(block)

        self.decode_chunks(params, chunks.__getitem__, signal, write)
        return out
