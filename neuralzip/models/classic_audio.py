"""Classical audio baseline: per-block LPC, per-block stereo choice, adaptive statistics.

Encoder-only analysis (float is fine here, its results are stored): for each
block the stereo mode (L/R, L/S, S/R, M/S) and, per coded channel, the
always-zero low bits, the LPC order and the quantised coefficients, all chosen
from Levinson-Durbin's error estimates. These go into a small side-info area.

Everything that feeds the coder is integer: the prediction
sum(q_i * x[t-i]) >> shift, and the residual coded as a bucket symbol under
adaptive counts chosen by the running mean of recent |residual|, plus uniform
low bits. Blocks are independent (short warm-up inside each), so every block
of a chunk is stepped in lockstep: one coder call codes sample t of every
block and channel (blocks decoded in lockstep), with the counts shared and
updated per step. The loops are in neuralzip/kernels/classic_audio.pyx.
"""

from pathlib import Path

import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, RangeDecoderStream, symbol_bits
from neuralzip.models.base import RunCodec, decode_batch_limit, sub_batches
from neuralzip.models.prior import Prior
from neuralzip.coding.buckets import low_bit_counts
from neuralzip.kernels.classic_audio import NCLS, BlockPlans, Residuals, plan_blocks, restore_blocks

CHUNK_FRAMES = 1 << 20
MODES = ("LR", "LS", "SR", "MS")  # the stereo modes, as the side information numbers them
WEIGHTS_PREFIX = "classic-audio"
ALPHABET = buckets.alphabet_size((1 << 35) - 1)  # residual buckets of 32-bit audio (side channel, overshoot)


def block_size(rate: int) -> int:
    return 4096 if rate >= 32000 else (2048 if rate >= 16000 else 1024)


def _code_residuals(sig, lengths, plans: BlockPlans, bits, prior, coder, decoder, observe=None):
    """Lockstep over all blocks of a chunk: encode sig, or decode into it.
    `observe(t, classes, symbols, count rows, low-bit counts)` sees every step
    (learning the prior, explaining where the bits go)."""
    blen = sig.shape[2]
    nbk = buckets.alphabet_size((1 << (bits + 3)) - 1)
    # buckets are absolute magnitudes: one prior fits every bit depth
    state = Residuals(sig, lengths, plans, prior[:, :nbk])
    sym, nlow, low, rows, classes = state.sym, state.nlow, state.low, state.rows, state.classes
    limit = decode_batch_limit() if decoder is not None else 0
    for t in range(blen):
        if t % 256 == 0:
            progress.step(t / blen)
        m = state.context(t)
        if decoder is None:
            state.symbols(t)
            coder.symbols(sym[:m], rows[:m])
            coder.low_bits(low[:m], nlow[:m])
            if observe is not None:
                observe(t, classes[:m], sym[:m], rows[:m], nlow[:m])
        else:
            parts = sub_batches(m, limit)
            for p, q in parts:
                sym[p:q] = decoder.symbols(rows[p:q])
            low_bit_counts(sym[:m], nlow)
            for p, q in parts:
                low[p:q] = decoder.low_bits(nlow[p:q])
        state.update(t, decoder is not None)


def _in_frames(observe, starts: np.ndarray, lengths: np.ndarray):
    """Turn _code_residuals' per-step view into frame indices for `observe` (None stays None)."""
    if observe is None:
        return None

    def per_step(t, classes, sym, rows, nlow):
        active = starts[lengths > t]  # the blocks still running at step t, in coding order
        observe(active + t, classes, sym, rows, nlow)

    return per_step


class ClassicAudioCodec(RunCodec):
    name = "classic"
    kind = "audio"
    summary = "per-block LPC + stereo choice + adaptive residual statistics, learned initial statistics"

    def __init__(self, weights: str | Path | None = None):
        self.weights = Prior(WEIGHTS_PREFIX, (NCLS, ALPHABET), weights)

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "ClassicAudioCodec":
        return ClassicAudioCodec(path)

    @property
    def prior(self) -> np.ndarray:
        return self.weights.counts

    def _layout(self, frames: int, blen: int):
        """Chunks as (start, end, block starts, block lengths): each chunk cut into blocks of blen frames."""
        per = max(blen, CHUNK_FRAMES // blen * blen)
        spans = [(a, min(a + per, frames)) for a in range(0, frames, per)] or [(0, 0)]
        return [(a, b, np.arange(a, b, blen), np.array([min(blen, b - s) for s in range(a, b, blen)], np.int64))
                for a, b in spans]

    def _run(self, coder_factory, samples, signal, observe=None):
        blen = block_size(signal.rate)
        chunks, bits = [], 0.0
        nch = samples.shape[1]
        for a, b, starts, lengths in self._layout(samples.shape[0], blen):
            sig = np.zeros((len(starts), nch, blen), np.int64)
            plans = BlockPlans(len(starts), nch)
            plan_blocks(np.ascontiguousarray(samples, np.int64), starts, lengths, plans, sig)
            coder = coder_factory()
            with progress.within(a, b, samples.shape[0]):
                _code_residuals(sig, lengths, plans, signal.bits, self.prior, coder, None,
                                _in_frames(observe, starts, lengths))
            side = plans.pack()
            chunks.append(len(side).to_bytes(4, "little") + side + coder.finish())
            bits += coder.bits + 8 * (4 + len(side))
        return {"block": blen}, chunks, bits

    def bits_per_dim(self, samples, signal):
        out = np.zeros(signal.shape, np.float64)

        def observe(frames, classes, sym, rows, nlow):
            out[frames] = (symbol_bits(sym, rows) + nlow).reshape(len(frames), -1)

        self._run(CostCoder, samples, signal, observe)
        return out

    def check_params(self, params, signal, nchunks):
        """Blocks of 16..65536 frames, one chunk per CHUNK_FRAMES frames (whole blocks)."""
        from neuralzip.models.base import check_chunk_count, param_int

        blen = param_int(params, "block", 16, 1 << 16)
        frames = signal.shape[0]
        check_chunk_count(-(-frames // max(blen, CHUNK_FRAMES // blen * blen)) if frames else 1, nchunks)

    def decode_memory(self, params, signal):
        """One chunk: its blocks' samples (int64), side information and count rows per block and channel."""
        from neuralzip.coding import buckets

        frames, nch = signal.shape
        blen = params["block"]
        per = min(max(frames, 1), max(blen, CHUNK_FRAMES // blen * blen))
        blocks = -(-per // blen)
        nbk = buckets.alphabet_size((1 << (signal.bits + 3)) - 1)
        return 16 * blocks * blen * nch + blocks * nch * (2048 + 16 * nbk) + (1 << 20)

    def decode(self, params, chunks, signal):
        frames, nch = signal.shape
        blen = int(params["block"])
        layout = self._layout(frames, blen)
        if len(layout) != len(chunks):
            raise ValueError("chunk count does not match the recording length")
        out = np.zeros(signal.shape, np.int32)
        for (a, b, starts, lengths), data in zip(layout, chunks):
            side_len = int.from_bytes(data[:4], "little")
            plans = BlockPlans.unpack(data[4:4 + side_len], len(starts), nch)
            sig = np.zeros((len(starts), nch, blen), np.int64)
            with progress.within(a, b, frames):
                _code_residuals(sig, lengths, plans, signal.bits, self.prior, None,
                                RangeDecoderStream(data[4 + side_len:]))
            restore_blocks(sig, starts, lengths, plans, out)
        return out
