"""The context-MLP image model: small multilayer perceptrons over the classic model's
predictions, with a discretized logistic mixture head, on top of the classic model's state.

It is not a PixelCNN (no convolutions over the image): for every pixel and channel, in
the classic model's wavefront order, an MLP reads only already-decoded information: the
classic sub-predictions around the pixel (its neighbours and their linear extrapolations,
and for later channels the same corrected by the earlier channel's error), the local
activity, the blended prediction and the residuals of the channels already coded at this
pixel (so each channel gets its own mixture, conditioned on the earlier channels' values).
The blend is classic's own, with its online least-squares mixer and sign flip (files with
params "blend": 4, which weights v3 and v4 were trained on; where the sign is flipped the
mixture is mirrored); files without "blend" (weights v1 and v2) read the integer blend.
It outputs a mixture of K logistics over the residual; the mixture is turned into an
integer pmf over residual buckets from shipped lookup tables, mixed with the classic
adaptive counts (the per-image adaptation), and coded. The network's weight in that mix
starts at the trained one (the weights' mix_w) and, in files with params "mix": 2 (new
files), is learned on the image as it is coded: one weight per channel and activity class,
stepped after every pixel toward the part (network or counts) that gave the coded value
more probability, so a network that does not suit the image loses its weight. (Files
without "mix" keep the trained weight.) In files with params "head": 3 (new files) the
network's output layer is learned on the image too: a correction of every head, linear in the
last hidden layer's activations and in indicators of the pixel's position (its 2x2 phase, its
column and row in an 8-pixel period: photos once subsampled in chroma or coded in 8x8 blocks
keep statistics that vary with them), starts at zero with every chunk and takes one normalized
gradient step after every wavefront step on -ln of the network's probability of the values
just coded (_OutputCorrection; "head": 2 files learn it from the hidden activations alone,
files without "head" keep the trained layer). Everything on that path is exact integer
arithmetic (neuralzip.exact, and exact sums of integers in double). Images that are not 8-bit
are coded by the counts alone, exactly as the classic model codes them.

Files written by neuralzip 0.1.0 name this model `pixelcnn`; they decode through the
legacy entries of neuralzip.models (recognised by their weights hash).

One network call per wavefront step and channel covers every pixel of that step
in every tile of the chunk (a call per pixel would be far too slow). The per-step
loops are compiled (neuralzip/kernels/context_mlp.pyx).
"""

from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.coding.stream import CostCoder, TeeCoder
from neuralzip.errors import InputError
from neuralzip.exact import logistic
from neuralzip.exact.mlp import FloatMLP, QuantizedMLP
from neuralzip.kernels import context_mlp as _k
from neuralzip.models.base import Encoded, drain_chunks, param_int
from neuralzip.models.prior import Prior
from neuralzip.models.classic_image import (BASE, BLEND_INTEGER, NCLS, OLS_BLENDS, ClassicImageCodec,
                                            thread_blocks)

WEIGHTS_PREFIX = "context-mlp-image"
FEATURE_CLIP = _k.FEATURE_CLIP  # features are clipped to -255..255
MIX_BITS = _k.MIX_BITS  # the trained weight of the network against the adaptive counts is in 1/16
WEIGHT_BITS = _k.WEIGHT_BITS  # the weight a row is mixed with, in 1/2**WEIGHT_BITS
# params "mix": MIX_FIXED (what a file without it means) keeps the trained weight, MIX_ONLINE (new
# files) learns it per channel and class at LEARNING_RATE (kernels/context_mlp.pyx, learn_weights)
MIX_FIXED, MIX_ONLINE = 1, 2
LEARNING_RATE = 1024
# params "head": HEAD_FIXED (what a file without it means) codes with the trained output layer,
# HEAD_ONLINE adds a correction of it learned while coding from the last hidden layer
# (_OutputCorrection), HEAD_POSITIONS (new 8-bit files) from the hidden layer and the pixel's
# position inputs (position_marks: POSITION_INPUTS indicators, POSITION_MARKS of them POSITION_INPUT)
HEAD_FIXED, HEAD_ONLINE, HEAD_POSITIONS = 1, 2, 3
HEAD_RATES = {HEAD_ONLINE: 1024, HEAD_POSITIONS: 1024}  # the learning rate each "head" means
POSITION_INPUTS, POSITION_MARKS, POSITION_INPUT = 20, 3, 128
N_FEATURES = (BASE + 2, 2 * BASE + 4)  # first channel, later channels
FLOAT_INPUT_SCALE = 1 / 32  # the float network reads features / 32
LOG_SCALE_MAX = logistic.LOG_SCALE_MIN + (logistic.N_SCALES - 1) / logistic.LOG_SCALE_STEPS


def features(view, x: np.ndarray) -> None:
    """The network's integer inputs (see N_FEATURES) for the view.n pixels of a step, channel
    view.c, into x as integer-valued float32 rows."""
    _k.features(view.buffers, view.c, view.n, x)


def _mixture_tables(net: "_Network", bounds: np.ndarray, spans: np.ndarray) -> _k.MixtureTables:
    """The network's tables with the bucket spans, checked once for the kernels."""
    return _k.MixtureTables(cdf=net.cdf, inv=net.inv, expt=net.exp, bounds=bounds, spans=spans, k_mix=net.k_mix,
                            log_scale_min=logistic.LOG_SCALE_MIN, log_scale_max=LOG_SCALE_MAX)


class _FloatTally:
    """Adds up the float model's bits. Only the encoder needs them and it knows every value, so
    the float network runs on large batches of recorded steps, not once per step."""

    FLUSH_ROWS = 1 << 15

    def __init__(self, net: "_Network", bounds: np.ndarray, spans: np.ndarray, maxv: int):
        self.net, self.maxv = net, maxv
        self.tables = _mixture_tables(net, bounds, spans)
        self.pending = ([], [])
        self.rows = [0, 0]
        self.bits = 0.0

    def add(self, group: int, x, shift, preds, flip, sym, counts_rows, weights):
        """shift: the learned correction the exact heads had (in their 1/16 units), or None."""
        n = len(sym)
        csym = counts_rows[np.arange(n), sym]
        shift = np.zeros((n, 3 * self.net.k_mix), np.int64) if shift is None else shift.copy()
        self.pending[group].append((x.copy(), shift, preds.copy(), flip.copy(), sym.copy(), csym,
                                    counts_rows.sum(axis=1), weights.copy()))
        self.rows[group] += n
        if self.rows[group] >= self.FLUSH_ROWS:
            self.flush(group)

    def flush(self, group: int):
        parts = self.pending[group]
        if not parts:
            return
        x, shift, preds, flip, sym, csym, ctot, weights = (np.concatenate(col) for col in zip(*parts))
        parts.clear()
        self.rows[group] = 0
        # the float network, moved by the same correction as the exact one (head units are 1/16)
        heads = self.net.float_nets[group].forward(x) + shift / 16
        out = np.empty(len(sym))
        _k.float_bits(self.tables, self.maxv, preds, flip, sym, csym, ctot, weights, heads, out)
        self.bits += float(out.sum())

    def total(self) -> float:
        for group in range(len(self.pending)):
            self.flush(group)
        return self.bits


class _OutputCorrection:
    """The network's output layer learned while coding (params "head": 2 and 3): per channel a
    table that corrects every head from the last hidden layer's activations (and, "head": 3, the
    pixel's position inputs: position_marks), zero when a chunk starts, stepped after every step
    of pixels on -ln of the network's probability of the buckets just coded, NLMS-normalized, at
    the file's HEAD_RATES (kernels/context_mlp.pyx: correct_heads, learn_heads; exact integer results)."""

    def __init__(self, channels: int, widths: list[int], outputs: int, n_max: int, head: int):
        positions = head == HEAD_POSITIONS
        self.rate = HEAD_RATES[head]
        self.indicators = POSITION_INPUTS if positions else 0
        # integers held in float64 (exactly) for the kernels' exact double sums
        self.tables = [np.zeros((outputs, widths[min(c, 1)] + self.indicators + 1)) for c in range(channels)]
        self.shift = np.zeros((n_max, outputs), np.int64)
        self.marks = np.zeros((n_max, POSITION_MARKS if positions else 0), np.int64)

    def marks_of(self, view) -> np.ndarray:
        """The step's position inputs (as the kernels take indicator inputs: which are POSITION_INPUT)."""
        marks = self.marks[:view.n]
        if self.indicators:
            position_marks(view.row0 + view.ys, view.xs, marks)
        return marks

    def apply(self, c: int, heads: np.ndarray, hidden: np.ndarray, marks: np.ndarray) -> None:
        """heads [n, outputs] += the correction of channel c (kept in self.shift[:n] for the report)."""
        _k.correct_heads(heads, hidden, marks, self.indicators, POSITION_INPUT, self.tables[c], len(heads), self.shift)

    def learn(self, tables: _k.MixtureTables, view, c: int, heads: np.ndarray, hidden: np.ndarray,
              marks: np.ndarray, sym) -> None:
        """One step of channel c's table once the step's symbols `sym` are known (heads: as coded)."""
        _k.learn_heads(tables, view.buffers, len(sym), heads, hidden, marks, self.indicators, POSITION_INPUT, sym,
                       self.tables[c], self.rate)


def position_marks(ys: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
    """The pixels' POSITION_INPUTS position inputs, of which out [n, POSITION_MARKS] names the
    ones that are POSITION_INPUT (the others are 0): which of the four 2x2 phases (y mod 2,
    x mod 2; inputs 0-3), which column of an 8-pixel period (x mod 8; inputs 4-11) and which
    row (y mod 8; inputs 12-19). Photos once subsampled in chroma (2x2) or coded in 8x8 blocks
    keep statistics that vary with these phases, which the learned layer picks up; on other
    photos its entries for them stay near zero."""
    out[:, 0] = (ys & 1) * 2 + (xs & 1)
    out[:, 1] = 4 + (xs & 7)
    out[:, 2] = 12 + (ys & 7)


class _Network:
    """The shipped (or user's) weights: quantized and float nets per channel group, tables."""

    def __init__(self, path: Path):
        z = weightstore.load(path)
        try:
            self.k_mix = int(z["k_mix"])
            self.mix_w = int(z["mix_w"])
            if not 0 <= self.mix_w <= 1 << MIX_BITS:
                raise ValueError(f"mix_w {self.mix_w} is not in 0..{1 << MIX_BITS}")
            self.nets = [QuantizedMLP(z, f"net{g}") for g in range(2)]
            self.float_nets = [FloatMLP(z, f"float{g}", FLOAT_INPUT_SCALE) for g in range(2)]
            self.cdf, self.inv, self.exp = (z[k].astype(np.int64) for k in ("lut.cdf", "lut.inv", "lut.exp"))
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a weights file for the context-mlp model ({exc})") from None
        for g, net in enumerate(self.nets):
            if (net.inputs != N_FEATURES[g] or net.outputs != 3 * self.k_mix or not 1 <= self.k_mix <= 8
                    or len(net.layers) < 2 or net.layers[-1][0].shape[0] > _k.HEAD_WIDTH_MAX):
                raise InputError(f"{path}: network {g} has the wrong shape for this version of neuralzip")
        # the width of each network's last hidden layer: what the learned output correction reads
        self.hidden = [net.layers[-1][0].shape[0] for net in self.nets]


class ContextMLPCodec(ClassicImageCodec):
    name = "context-mlp"
    kind = "image"
    summary = "MLP over classic predictions, discretized logistic mixture, mixed with adaptive counts (8-bit)"
    weights_prefix = WEIGHTS_PREFIX
    # the network reads the blend it was trained on: weights v1 and v2 the integer blend (files
    # without "blend"), v3 and v4 (twice as wide) classic's blend with the least-squares mixer ("blend": 4;
    # "blend": 5, the same with classic's parity byte per chunk, which the network reads alike; new
    # files "blend": 6, the same with four count rows per activity class to mix the network with)
    blend_unrecorded, blends_recorded = BLEND_INTEGER, OLS_BLENDS

    def __init__(self, weights: str | Path | None = None, tile_h: int | None = None, tile_w: int | None = None):
        # the file's "counts" (the classic prior), its path and hash are handled as for classic
        super().__init__(None, tile_h, tile_w)
        self.weights = Prior(self.weights_prefix, self.weights.shape, weights)
        self._net = None

    @property
    def net(self) -> _Network:
        if self._net is None:
            self._net = _Network(self.weights.path)
        return self._net

    def with_weights(self, path) -> "ContextMLPCodec":
        return ContextMLPCodec(path, self.tile_h, self.tile_w)

    def _more_recorded(self, signal) -> dict:
        """(8-bit images, where the network codes) the network's weight and its output layer's
        correction learned online."""
        return {"mix": MIX_ONLINE, "head": HEAD_POSITIONS} if signal.bits == 8 else {}

    def _check_recorded(self, params, signal) -> None:
        super()._check_recorded(params, signal)
        if "mix" in params:
            param_int(params, "mix", MIX_FIXED, MIX_ONLINE)
        if "head" in params:
            param_int(params, "head", HEAD_FIXED, HEAD_POSITIONS)

    def _model_rows(self, params, bits):
        """The hook that replaces the classic count rows (8-bit images only), and learns the
        network's weight where the member says so (params "mix")."""
        if bits != 8:
            return None
        net = self.net
        tables = _mixture_tables(net, *logistic.bucket_intervals(self.prior.shape[2]))
        rate = LEARNING_RATE if params.get("mix", MIX_FIXED) == MIX_ONLINE else 0
        head = params.get("head", HEAD_FIXED)
        learn_head = head in (HEAD_ONLINE, HEAD_POSITIONS)

        def model_rows(view):
            n, c = view.n, view.c
            state = view.model_state
            if not state:  # a new chunk: its step's buffers, every weight at the trained one, no correction
                n_max = view.rows.shape[0]
                state.update(rows=np.empty_like(view.rows), net_p=np.empty(view.rows.shape, np.int64),
                             count_p=np.empty(view.rows.shape, np.int64),
                             x=[np.zeros((n_max, f), np.float32) for f in N_FEATURES],
                             weights=np.full((view.counts.shape[0], NCLS), net.mix_w << (WEIGHT_BITS - MIX_BITS),
                                             np.int64),
                             head=_OutputCorrection(view.counts.shape[0], net.hidden, 3 * net.k_mix, n_max, head)
                             if learn_head else None)
            x = state["x"][min(c, 1)][:n]
            features(view, x)
            model_rows.x = x  # for the float-model observer of the same run
            heads, hidden = net.nets[min(c, 1)].forward_hidden(x)
            if learn_head:
                marks = state["head"].marks_of(view)
                state["head"].apply(c, heads, hidden, marks)
                state["step"] = heads, hidden, marks
            _k.step_rows(tables, view.buffers, c, n, heads, state["weights"], state["rows"], state["net_p"],
                         state["count_p"], thread_blocks(n))
            model_rows.view = view
            return state["rows"][:n]

        def learn(view, sym):
            state = view.model_state
            if rate:
                _k.learn_weights(state["weights"], view.c, view.classes, sym, state["net_p"], state["count_p"],
                                 state["rows"], len(sym), rate)
            if learn_head:
                state["head"].learn(tables, view, view.c, *state["step"], sym)

        if rate or learn_head:
            model_rows.learn = learn
        return model_rows

    def _tallied_chunks(self, coder_factory, params, rows, signal):
        """The chunks, and (the generator's value) the float model's bits. Without the network (not
        8-bit) the float model is the exact one (None)."""
        model_rows = self._model_rows(params, signal.bits)
        if model_rows is None:
            yield from self._coded_chunks(coder_factory, params, rows, signal)
            return None
        bounds, spans = logistic.bucket_intervals(self.prior.shape[2])
        tally = _FloatTally(self.net, bounds, spans, (1 << signal.bits) - 1)
        low_bits = [0.0]

        def observe(c, sy, sx, classes, sym, rows_, nlow):
            view = model_rows.view
            n = len(sym)
            # the weights as the step's rows used them (learn moves them after this)
            weights = view.model_state["weights"][c, view.classes[:n]]
            head = view.model_state["head"]
            shift = None if head is None else head.shift[:n]
            tally.add(min(c, 1), model_rows.x, shift, view.preds[:n], view.flip[:n], sym, view.rows[:n], weights)
            low_bits[0] += float(np.sum(nlow))

        def priced(c, sy, sx, bits):
            # the colour table's flags are integer arithmetic in both models: what they change of the
            # exact model's bits, they change of the float model's
            low_bits[0] += float(np.sum(bits))

        yield from self._coded_chunks(coder_factory, params, rows, signal, observe, model_rows, priced)
        return tally.total() + low_bits[0]

    def _run_both(self, coder_factory, samples, signal):
        """-> (params, chunks, exact-model bits, float-model bits)."""
        params = self._params(signal)
        chunks, bits, float_bits = drain_chunks(
            self._tallied_chunks(coder_factory, params, lambda a, b: samples[a:b], signal))
        return params, chunks, bits, bits if float_bits is None else float_bits

    def decode_memory(self, params, signal):
        """The classic model's state, plus the network's features and mixture rows of one step."""
        _, step = self._largest_step(params, signal.shape[0], signal.shape[1])
        return super().decode_memory(params, signal) + step * 8 * 512 + (64 << 20)

    def encode(self, samples, signal):
        params, chunks, bits, float_bits_total = self._run_both(TeeCoder, samples, signal)
        return Encoded(params, chunks, bits, float_bits_total)

    def likelihood(self, samples, signal):
        _, _, bits, float_bits_total = self._run_both(CostCoder, samples, signal)
        return float_bits_total, bits
