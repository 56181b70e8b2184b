"""local-ls: the classic image model plus a least-squares predictor fitted around every pixel.

For each pixel and channel, weights over its causal neighbours (ten of its own channel; later
channels also the previous channel's sample there and four of its neighbours, the third channel
the first channel's sample) are fitted by least squares to the pixels of a window around it that
the decoder already has (`radius` rows up, `radius` columns either side), and the fit predicts the
pixel (neuralzip/kernels/local_ls.pyx). So the model learns the photo while it codes it: the
weights are refitted from the photo's own pixels at every pixel. Each row's window sums slide one
column a step, and they are exact integers, so the fit costs a few thousand operations a sample.

That prediction joins the classic model's error-weighted blend as one more sub-predictor (its
recent error counts half), and where it lies relative to the blend steers the context: its
distance raises the activity, its side picks the bias context (neuralzip/kernels/classic_image.pyx,
EXTRA_ERROR, EXTRA_SPREAD). The blend and its bias are kept in 1/16 units and rounded once; where
the fine prediction lies above the rounded one the residual's sign is flipped, so the likelier side
gets the smaller code (FINE). New files (params "blend": 6; "blend": 5 the same with one count row
per activity class, "blend": 4 also without classic's parity byte per chunk) also correct the blend
with classic's online least-squares mixer, whose inputs here include the fit; files with "blend": 3
used classic's earlier NLMS mixer, and earlier files (no "blend") no mixer, and decode so. The rest (adaptive
counts per activity class, the learned initial counts) is the classic model's.

As in classic, each chunk is one tile: its wavefront is x + 2y over the whole chunk, so no row
loses its north context at a tile edge, and the window can reach into every earlier row.

Levels: 1 fits over radius 5, 2 over radius 8 (a little smaller, somewhat slower)."""

from neuralzip.kernels import local_ls as _ls
from neuralzip.models.base import ParamError, check_chunk_count, param_int
from neuralzip.models.classic_image import BLEND_FINE, CHUNK_PIXELS, ClassicImageCodec, thread_blocks

LEVELS = {1: 5, 2: 8}  # level -> window radius
RIDGE = 2.0 ** -20  # ridge relative to the mean diagonal (keeps flat windows solvable)
MAX_CHUNK_PIXELS = 1 << 24


def chunk_rows(params, width: int) -> int:
    """Rows of each chunk (the last may have fewer): as many as chunk_pixels holds, at least one."""
    return max(1, params["chunk_pixels"] // max(width, 1))


class LocalLsImageCodec(ClassicImageCodec):
    name = "local-ls"
    kind = "image"
    summary = "classic blend + least squares fitted around every pixel, one wavefront per chunk"
    levels = tuple(sorted(LEVELS))
    blend_unrecorded = BLEND_FINE  # earlier files: fine, no mixer; then NLMS, now OLS (as classic)

    def __init__(self, weights=None, level: int = 1):
        super().__init__(weights)
        self._weights_file = weights  # None: the shipped classic-image prior
        if level not in LEVELS:
            raise ValueError(f"local-ls has levels {sorted(LEVELS)}, not {level!r}")
        self.level = level

    def at_level(self, level: int) -> "LocalLsImageCodec":
        if level not in LEVELS:
            return super().at_level(level)  # the one-line error naming the levels
        return self if level == self.level else type(self)(self._weights_file, level)

    def with_weights(self, path) -> "LocalLsImageCodec":
        return type(self)(path, self.level)

    def _params(self, signal):
        return {"level": self.level, "radius": LEVELS[self.level], "chunk_pixels": CHUNK_PIXELS, **self._recorded(signal)}

    def _spans(self, shape, params):
        h, rows = shape[0], chunk_rows(params, shape[1])
        return [(a, min(a + rows, h)) for a in range(0, h, rows)]

    def _tile(self, params, rows, width):
        return rows, width  # one tile: the least-squares window needs the wavefront x + 2y

    def _extra_predictor(self, params, bits):
        """The fit, with the chunk's window sums (made at its first pass: one call per chunk)."""
        radius, maxv = params["radius"], (1 << bits) - 1
        state = []

        def predict(img, c, ys, xs, out):
            if not state:
                state.extend(_ls.new_state(img.shape[1], img.shape[2]))
            _ls.predict_pass(img, c, ys, xs, out, radius, RIDGE, maxv, thread_blocks(len(ys)), *state)

        return predict

    def check_params(self, params, signal, nchunks):
        """A known level with its radius, chunks of 1..2^24 pixels, one chunk per span of rows."""
        level = param_int(params, "level", 1, max(LEVELS))
        if param_int(params, "radius", 1, _ls.MAX_RADIUS_) != LEVELS[level]:
            raise ParamError(f"params.radius {params['radius']} is not level {level}'s {LEVELS[level]}")
        param_int(params, "chunk_pixels", 1, MAX_CHUNK_PIXELS)
        self._check_recorded(params, signal)
        check_chunk_count(-(-signal.shape[0] // chunk_rows(params, signal.shape[1])), nchunks)

    def _largest_step(self, params, height, width):
        rows = min(height, chunk_rows(params, width))
        return rows, min(rows, width)  # one tile: a step holds at most one pixel a row

    def decode_memory(self, params, signal):
        """classic's chunk state (one tile a chunk, the fit one more sub-predictor) and the fit's
        window sums (a slot per in-flight row and channel)."""
        w, c = signal.shape[1], signal.shape[2]
        slot = sum(a.nbytes for a in _ls.new_state(0, 1))  # one row slot of one channel
        return super().decode_memory(params, signal) + _ls.ring_rows(w) * c * slot
