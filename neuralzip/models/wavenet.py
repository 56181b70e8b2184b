"""The wavenet audio model: a WaveNet (dilated causal convolutions, gated tanh x sigmoid units,
residual and skip 1x1 layers) over the residual of a linear predictor, with a discretized
logistic mixture output, run exactly in integers one sample at a time with cached activations.

Input side (kernels/wavenet.pyx: track): per channel, a linear predictor leaves a residual r[t];
a running mean |r| (a[t], an integer recursion) scales it, and the network reads u[t] = r[t] / a[t],
clipped to +-8. So the network sees the same shapes whether a recording is loud or quiet, and its
output is in units of a[t] too: per component a mean (added to the linear prediction) and a
log-scale relative to the running scale, and a logit.
Why a residual and not raw samples: raw samples span 2**16 levels or more, and a network of this
size would spend its capacity learning to be a predictor FLAC already has for free.

The predictor is what the weights file was trained on (`wn.predictor`):
- "lpc" (weights v2, the shipped ones): FLAC's kind of predictor, fitted by the encoder to each
  block of each lane (Levinson-Durbin, the order by estimated bits, quantised coefficients: the
  classic audio model's analysis, kernels/classic_audio.pyx) and stored in the chunk. A static
  network cannot fit a filter to a sustained note; the block's LPC does, and the network models
  what it leaves. The encoder chooses the block length per recording (WaveNetCodec._block);
  members record it as params.block.
- "fixed2" (weights v1): the fixed second-order predictor 2 x[t-1] - x[t-2] (FLAC's fixed order
  2), nothing stored; members without params.block. Files written with v1 keep decoding.

Network (sizes from the weights file): an input 1x1 layer into C channels; L layers, layer l a
gated convolution of width 2 and dilation 2**l over [h(t - 2**l), h(t)], whose gated output
updates the residual stream (C) and adds to the skip sum (S); then ReLU, a hidden 1x1 layer
(H, ReLU) and the head (3 k_mix outputs). Receptive field: 2**L samples.

Exact arithmetic: int16 weights and activations in 1/4096, int32 sums, integer rescales, tanh
and sigmoid read from the shipped logistic CDF table (kernels/gates.pxd); the mixture becomes an
integer pmf over zigzag residual buckets (kernels/logistic.pxd) with the scale table and the
log table of the running scale shipped in the weights file, so no float touches the coded bits.

Lanes: each channel is cut into lanes of up to LANE_FRAMES samples whose state starts fresh;
the decoder steps all lanes of a chunk (CHUNK_LANES) in lockstep, its kernel range-decoding every
lane's bucket and low bits itself (kernels/range_decoder.pxd), and the encoder runs every lane start
to end in parallel. Recordings with more
than 24 bits per sample are coded by the classic audio model (params {"fallback": "classic", ...}).

Params: {"lane": frames per lane, "lanes": lanes per chunk, "block": LPC block length (lpc only)}.
Chunk bytes: with "block", first the length of the plans (4 bytes, little endian) and the plans of
every block of every lane of the chunk, lane by lane (classic_audio.BlockPlans.pack with one
channel: mode and wasted bits always 0); then the length of the symbol stream (4 bytes), the
range-coded bucket symbols of every step (lanes in order within a step), then the range-coded low
bits, step by step likewise.
"""

from pathlib import Path

import numpy as np

from neuralzip import progress, weightstore
from neuralzip.coding import buckets
from neuralzip.coding.stream import RangeEncoderStream, symbol_bits
from neuralzip.errors import InputError
from neuralzip.exact import logistic
from neuralzip.kernels import wavenet as kern
from neuralzip.kernels.classic_audio import BlockPlans, plan_blocks
from neuralzip.models.base import Codec, Encoded, ParamError, check_chunk_count, param_int
from neuralzip.models.classic_audio import ClassicAudioCodec, block_size
from neuralzip.models.prior import Prior

WEIGHTS_PREFIX = "wavenet-audio"
ONE = 4096  # activations, gates and the network's input in 1/4096
LIMIT = 8.0  # activations, the residual stream and the input are clipped to +-8
LIMIT_INT = 8 * ONE - 1
MAX_BITS = 24  # deeper recordings go to the classic audio model
LOG_SCALE_MIN = logistic.LOG_SCALE_MIN
N_SCALES = 256  # the scale table: log-scales -3 .. about 13 in 1/16 steps (scales up to 4e5 levels)
LOG_SCALE_MAX = LOG_SCALE_MIN + (N_SCALES - 1) / logistic.LOG_SCALE_STEPS
INV_BITS = 24  # inverse scales in 2**-24 (kernels/wavenet.pyx)
LN_BITS = 5
LANE_FRAMES = 1 << 14  # 1 << 15 coded 0.13% smaller on the Rhodes recordings, decoding at half the speed
CHUNK_LANES = 64
WINDOW = 256  # encoder steps per call (the rows handed to the coder at once)
PREDICTORS = ("fixed2", "lpc")
# LPC block lengths the encoder weighs, in units of the rate's usual block (4096 samples at 32 kHz
# and up). On the tuning tenth of audio/train the choice coded 0.51% smaller than the usual block
# alone (the Rhodes 1.65%, sonic-pi 0.84%, speech 0.15%, the tagelharpa 0.06% larger), where
# choosing by coding each candidate would have given 0.54% (benchmarks/wavenet_blocks.py).
BLOCK_CHOICES = (0.5, 1, 2, 4)


class LanePlans:
    """The linear predictor of every block of a chunk's lanes: block length, orders and shifts
    [lane, block], coefficients [lane, block, kern.MAX_ORDER] (what kern.WaveLanes and kern.track
    read). Lanes shorter than the first have order 0 in the blocks past their end."""

    def __init__(self, block: int, orders, shifts, coefs):
        self.block, self.orders, self.shifts, self.coefs = block, orders, shifts, coefs

    def lane(self, k: int) -> tuple:
        return self.block, self.orders[k], self.shifts[k], self.coefs[k]

    @staticmethod
    def _blocks(lengths, block: int) -> np.ndarray:
        return -(-np.asarray(lengths, np.int64) // block)

    @classmethod
    def _stored_order(cls, lengths, block: int) -> tuple:
        """(lane, block within the lane) of every stored block, in the order they are stored."""
        lane_of = np.repeat(np.arange(len(lengths)), cls._blocks(lengths, block))
        return lane_of, np.arange(len(lane_of)) - np.searchsorted(lane_of, lane_of)

    @classmethod
    def empty(cls, lengths, block: int) -> "LanePlans":
        shape = (len(lengths), max(1, int(cls._blocks(lengths, block).max(initial=0))))
        return cls(block, np.zeros(shape, np.int64), np.zeros(shape, np.int64),
                   np.zeros(shape + (kern.MAX_ORDER,), np.int64))

    @classmethod
    def fixed(cls, lengths) -> "LanePlans":
        """The fixed second-order predictor: one block per lane, order 2, coefficients (2, -1)."""
        plans = cls.empty(lengths, max(1, int(np.max(lengths, initial=1))))
        plans.orders[:] = 2
        plans.coefs[:, :, :2] = (2, -1)
        return plans

    @classmethod
    def fitted(cls, lane_values: np.ndarray, lengths, block: int, bits: int) -> "LanePlans":
        """The encoder's LPC of every block of every lane (lane_values [lane, step], stored values)."""
        counts = cls._blocks(lengths, block)
        steps = lane_values.shape[1]
        starts = np.concatenate([k * steps + np.arange(n) * block for k, n in enumerate(counts)]).astype(np.int64)
        ends = np.repeat(np.arange(len(counts)) * steps + np.asarray(lengths, np.int64), counts)
        signed = np.ascontiguousarray((lane_values - (1 << (bits - 1))).reshape(-1, 1))
        flat = BlockPlans(len(starts), 1)
        plan_blocks(signed, starts, np.minimum(block, ends - starts).astype(np.int64), flat)
        return cls._spread(flat, lengths, block)

    @classmethod
    def _spread(cls, flat: BlockPlans, lengths, block: int) -> "LanePlans":
        plans = cls.empty(lengths, block)
        lane_of, index = cls._stored_order(lengths, block)
        plans.orders[lane_of, index] = flat.orders[:, 0]
        plans.shifts[lane_of, index] = flat.qshifts[:, 0]
        plans.coefs[lane_of, index] = flat.coefs[:, 0]
        return plans

    def pack(self, lengths) -> bytes:
        """The stored plans: every lane's blocks in order, as one channel's BlockPlans."""
        lane_of, index = self._stored_order(lengths, self.block)
        flat = BlockPlans(len(lane_of), 1)
        flat.orders[:, 0] = self.orders[lane_of, index]
        flat.qshifts[:, 0] = self.shifts[lane_of, index]
        flat.coefs[:, 0] = self.coefs[lane_of, index]
        return flat.pack()

    @classmethod
    def unpack(cls, data: bytes, lengths, block: int) -> "LanePlans":
        """Plans read back from a chunk (checked: a stereo mode or wasted bits is corrupt here)."""
        flat = BlockPlans.unpack(data, int(cls._blocks(lengths, block).sum()), 1)
        if flat.modes.any() or flat.shifts.any():
            raise ValueError("corrupt predictor plans")
        return cls._spread(flat, lengths, block)


def tables() -> dict:
    """The tables the exact mixture reads, built once with floats and shipped in the weights file:
    the logistic CDF and weight tables every model ships, this model's inverse scales (a wider
    range in finer units than the image models'), and ln16[n, v] = round(16 ln(a / 16)) for a
    running scale a of bit length n whose LN_BITS bits under the leading one are v."""
    out = logistic.tables()
    scale = np.exp(LOG_SCALE_MIN + np.arange(N_SCALES) / logistic.LOG_SCALE_STEPS)
    out["lut.inv"] = np.round((1 << INV_BITS) * logistic.Z_STEPS / 16 / scale).astype(np.int64)
    ln16 = np.zeros((64, 1 << LN_BITS), np.int64)
    for n in range(1, 64):
        top = (1 << LN_BITS) + np.arange(1 << LN_BITS)  # the leading one and the bits under it
        mid = top * 2.0 ** (n - 1 - LN_BITS) if n > LN_BITS else top / 2.0 ** (LN_BITS + 1 - n)
        if n > LN_BITS + 1:
            mid = mid + 2.0 ** (n - 2 - LN_BITS)  # the middle of the values that share those bits
        ln16[n] = np.round(16 * np.log(mid / 16))
    out["wn.ln16"] = ln16
    return out


class WaveNetNetwork:
    """The exact network (kern.WaveNetWeights) and its float twin (the report's likelihood) read
    from a weights file."""

    def __init__(self, path: Path):
        z = weightstore.load(path)
        try:
            n = int(z["wn.layers"])
            self.k_mix = int(z["wn.k_mix"])

            def layer(prefix):
                return tuple(z[f"{prefix}.{k}"] for k in "wbms")

            self.exact = kern.WaveNetWeights(layer("wn.embed"), [layer(f"wn.gate{i}") for i in range(n)],
                                             [layer(f"wn.out{i}") for i in range(n)], layer("wn.hidden"),
                                             layer("wn.head"), self.k_mix, z["lut.cdf"], z["lut.inv"], z["lut.exp"],
                                             z["wn.ln16"])
            self.float = {k[4:]: np.asarray(z[k], np.float32) for k in z if k.startswith("fwn.")}
            self.n_layers = n
            self.predictor = str(z.get("wn.predictor", "fixed2"))
            if self.predictor not in PREDICTORS:
                raise ValueError(f"unknown predictor {self.predictor!r}")
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a weights file for the wavenet model ({exc})") from None

    def float_bits(self, values: np.ndarray, bits: int, plan: tuple) -> float:
        """-log2 p of one lane's values (0..2**bits - 1) under the float network (report only), with
        the lane's predictor plan (LanePlans.lane)."""
        if len(values) == 0:
            return 0.0
        r, a, u = kern.track(np.ascontiguousarray(values, np.int64), bits, *plan)
        f, k = self.float, self.k_mix
        x = np.concatenate([[0.0], u[:-1] / ONE]).astype(np.float32)[:, None]  # step t reads u[t - 1]
        h = np.clip(x @ f["embed.weight"][:, :, 0].T + f["embed.bias"], -LIMIT, LIMIT)
        c, n = h.shape[1], len(h)
        skip = np.zeros((n, f["hidden.weight"].shape[1]), np.float32)
        for i in range(self.n_layers):
            w, d = f[f"gates.{i}.weight"], 2 ** i
            older = np.zeros_like(h)
            older[d:] = h[:max(n - d, 0)]
            z = older @ w[:, :, 0].T + h @ w[:, :, 1].T + f[f"gates.{i}.bias"]
            g = np.tanh(z[:, :c]) * _sigmoid(z[:, c:])
            o = g @ f[f"outs.{i}.weight"][:, :, 0].T + f[f"outs.{i}.bias"]
            h = np.clip(h + o[:, :c], -LIMIT, LIMIT)
            skip += o[:, c:]
        hid = np.clip(np.clip(skip, 0, LIMIT) @ f["hidden.weight"][:, :, 0].T + f["hidden.bias"], 0, LIMIT)
        out = (hid @ f["head.weight"][:, :, 0].T + f["head.bias"]).astype(np.float64)
        scale = (a / 16.0)[:, None]
        mu = np.clip(out[:, :k], -LIMIT, LIMIT) * scale
        log_s = np.clip(out[:, k:2 * k] + np.log(scale), LOG_SCALE_MIN, LOG_SCALE_MAX)
        w = np.exp(out[:, 2 * k:] - out[:, 2 * k:].max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        inv = np.exp(-log_s)
        rr = r[:, None].astype(np.float64)
        mass = _sigmoid((rr + 0.5 - mu) * inv) - _sigmoid((rr - 0.5 - mu) * inv)
        p = np.sum(w * mass, axis=1)
        return float(-np.sum(np.log2(np.maximum(p, 1e-300))))


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def lane_layout(frames: int, channels: int, lane: int, lanes: int) -> list[np.ndarray]:
    """The lanes of a recording, chunk by chunk: [chunk] -> lengths of its lanes (at most `lanes`
    per chunk). Lane order is (span, channel): span s of channel c holds frames s * lane.. of c;
    the last span is the shortest, so every chunk's lengths are non-increasing."""
    spans = max(1, -(-frames // lane))
    lengths = np.repeat([min(lane, frames - s * lane) for s in range(spans)], channels)
    return [np.asarray(lengths[i:i + lanes], np.int64) for i in range(0, len(lengths), lanes)]


def lane_values(values: np.ndarray, chunk_start: int, lengths: np.ndarray) -> np.ndarray:
    """[lane, step] values of one chunk's lanes (lane chunk_start + k is span (.. // channels),
    channel (.. % channels))."""
    nch = values.shape[1]
    out = np.zeros((len(lengths), int(lengths[0])), np.int64)
    for k, n in enumerate(lengths):
        span, c = divmod(chunk_start + k, nch)
        out[k, :n] = values[span * LANE_FRAMES:span * LANE_FRAMES + n, c]
    return out


def block_estimate(values: np.ndarray, bits: int, block: int) -> int:
    """A cheap integer stand-in for the coded size of a recording (values as stored) with LPC
    blocks of `block` samples: the bit length of every residual plus the bits of the stored plans.
    (An integer, so the encoder's choice is the same on every machine.)"""
    total, start = 0, 0
    for lengths in lane_layout(*values.shape, LANE_FRAMES, CHUNK_LANES):
        lanes = lane_values(values, start, lengths)
        plans = LanePlans.fitted(lanes, lengths, block, bits)
        total += 8 * len(plans.pack(lengths))
        for k, n in enumerate(lengths):
            r = kern.track(np.ascontiguousarray(lanes[k, :n]), bits, *plans.lane(k))[0]
            total += int(np.frexp(np.abs(r).astype(np.float64))[1].sum())  # exact bit lengths
        start += len(lengths)
    return total


def choose_block(values: np.ndarray, bits: int, rate: int) -> int:
    """The encoder's LPC block length for a recording (values as stored): of BLOCK_CHOICES times
    the rate's usual block (classic's), the one with the smallest block_estimate; ties go to the
    shorter. (The trainer fits its data with the usual block: weights trained on the chosen
    blocks coded the tuning files 0.12% larger.)"""
    usual = block_size(rate)
    return min((int(usual * m) for m in BLOCK_CHOICES), key=lambda b: block_estimate(values, bits, b))


def chunk_count(frames: int, channels: int, lane: int, lanes: int) -> int:
    return -(-max(1, -(-frames // lane)) * channels // lanes)


class WaveNetCodec(Codec):
    name = "wavenet"
    kind = "audio"
    summary = "WaveNet (dilated causal convolutions, gated units, logistic mixture) over a per-block LPC residual"

    def __init__(self, weights: str | Path | None = None):
        self.weights = Prior(WEIGHTS_PREFIX, (), weights)
        self._net = None
        self._fallback = ClassicAudioCodec()

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "WaveNetCodec":
        return WaveNetCodec(path)

    @property
    def net(self) -> WaveNetNetwork:
        if self._net is None:
            self._net = WaveNetNetwork(self.weights.path)
        return self._net

    @staticmethod
    def _alphabet(bits: int):
        """(bucket count, boundaries, spans) of residuals relative to a value in 0..2**bits - 1."""
        n = buckets.alphabet_size(2 * ((1 << bits) - 1))
        return (n, *logistic.bucket_intervals(n))

    # -- the lanes ------------------------------------------------------------------------------
    def _lanes(self, lengths, bits, plans: LanePlans):
        _, bounds, spans = self._alphabet(bits)
        return kern.WaveLanes(self.net.exact, lengths, bits, bounds, spans, plans.block, plans.orders, plans.shifts,
                              plans.coefs)

    def _block(self, values, signal) -> int | None:
        """The LPC block length for this recording (values as stored), or None where the weights
        read the fixed predictor."""
        return choose_block(values, signal.bits, signal.rate) if self.net.predictor == "lpc" else None

    @staticmethod
    def _plans(lane_values, lengths, bits, block) -> LanePlans:
        if block is None:
            return LanePlans.fixed(lengths)
        return LanePlans.fitted(lane_values, lengths, block, bits)

    def _code(self, samples, signal, emit):
        """Every chunk's lanes stepped with their values known; emit(chunk, offs, sym, nlow, low, rows)
        gets each window, and emit(chunk, None, ..., plans=its stored plans, or None) the chunk's end.
        -> (exact bits, float bits, the LPC block length or None: the fixed predictor)."""
        values = np.asarray(samples, np.int64) + (1 << (signal.bits - 1))
        nbk = self._alphabet(signal.bits)[0]
        exact = fbits = 0.0
        start, total = 0, max(values.size, 1)
        done = 0
        block = self._block(values, signal)
        for j, lengths in enumerate(lane_layout(*values.shape, LANE_FRAMES, CHUNK_LANES)):
            chunk_values = lane_values(values, start, lengths)
            plans = self._plans(chunk_values, lengths, signal.bits, block)
            lanes = self._lanes(lengths, signal.bits, plans)
            steps = int(lengths[0])
            for t0 in range(0, steps, WINDOW):
                t1 = min(t0 + WINDOW, steps)
                active = (lengths[None, :] > np.arange(t0, t1)[:, None]).sum(axis=1)
                offs = np.concatenate([[0], np.cumsum(active)]).astype(np.int64)
                n = int(offs[-1])
                sym, nlow, low = np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, np.int64)
                rows = np.empty((n, nbk), np.float64)
                lanes.encode_window(chunk_values, t0, t1, offs, sym, nlow, low, rows)
                exact += float(symbol_bits(sym, rows).sum() + nlow.sum())
                if emit is not None:
                    emit(j, offs, sym, nlow, low, rows)
                progress.step((done + n) / total)
                done += n
            fbits += sum(self.net.float_bits(chunk_values[k, :n], signal.bits, plans.lane(k))
                         for k, n in enumerate(lengths))
            packed = None if block is None else plans.pack(lengths)
            if packed is not None:  # the stored plans are part of the likelihood (both of them)
                exact, fbits = exact + 8 * (4 + len(packed)), fbits + 8 * (4 + len(packed))
            if emit is not None:
                emit(j, None, None, None, None, None, plans=packed)
            start += len(lengths)
        return exact, fbits, block

    # -- encoder --------------------------------------------------------------------------------
    def encode(self, samples, signal):
        if signal.bits > MAX_BITS:
            enc = self._fallback.encode(samples, signal)
            return Encoded({"fallback": "classic", **enc.params}, enc.chunks, enc.nll_bits, enc.nll_float_bits)
        chunks = []
        coders = [RangeEncoderStream(), RangeEncoderStream()]

        def emit(j, offs, sym, nlow, low, rows, plans=None):
            if offs is None:
                plans = b"" if plans is None else len(plans).to_bytes(4, "little") + plans
                sym_data = coders[0].finish()
                chunks.append(plans + len(sym_data).to_bytes(4, "little") + sym_data + coders[1].finish())
                coders[:] = [RangeEncoderStream(), RangeEncoderStream()]
                return
            coders[0].symbols(sym, rows)
            coders[1].low_bits(low, nlow)

        exact, fbits, block = self._code(samples, signal, emit)
        params = {"lane": LANE_FRAMES, "lanes": CHUNK_LANES} | ({} if block is None else {"block": block})
        return Encoded(params, chunks, exact, fbits)

    def likelihood(self, samples, signal):
        if signal.bits > MAX_BITS:
            return self._fallback.likelihood(samples, signal)
        exact, fbits, _ = self._code(samples, signal, None)
        return fbits, exact

    def bits_per_dim(self, samples, signal):
        if signal.bits > MAX_BITS:
            return self._fallback.bits_per_dim(samples, signal)
        out = np.zeros(np.shape(samples), np.float64)
        nch = out.shape[1]
        layout = lane_layout(*out.shape, LANE_FRAMES, CHUNK_LANES)
        firsts = np.concatenate([[0], np.cumsum([len(x) for x in layout])])
        t0s = {}

        def emit(j, offs, sym, nlow, low, rows, plans=None):
            if offs is None:
                if plans is not None:  # the chunk's stored plans, spread evenly over its samples
                    for k, n in enumerate(layout[j]):
                        span, c = divmod(int(firsts[j]) + k, nch)
                        out[span * LANE_FRAMES:span * LANE_FRAMES + n, c] += 8 * (4 + len(plans)) / layout[j].sum()
                return
            t0 = t0s.get(j, 0)
            alive = np.diff(offs)  # the lanes alive at each step of the window: a prefix of the chunk's
            step = np.repeat(np.arange(len(alive)), alive)
            span, c = np.divmod(firsts[j] + np.arange(int(offs[-1])) - np.repeat(offs[:-1], alive), nch)
            out[span * LANE_FRAMES + t0 + step, c] = symbol_bits(sym, rows) + nlow
            t0s[j] = t0 + len(alive)

        self._code(samples, signal, emit)
        return out

    # -- decoder --------------------------------------------------------------------------------
    def check_params(self, params, signal, nchunks):
        """A classic fallback (more than 24 bits), or this version's lane layout."""
        if "fallback" in params:
            if params["fallback"] != "classic" or signal.bits <= MAX_BITS:
                raise ParamError(f"params.fallback {params['fallback']!r} does not fit this member")
            self._fallback.check_params({k: v for k, v in params.items() if k != "fallback"}, signal, nchunks)
            return
        if signal.bits > MAX_BITS:
            raise ParamError(f"bits {signal.bits}: wavenet codes at most {MAX_BITS} bits per sample itself")
        lane, lanes = param_int(params, "lane", 1, 1 << 24), param_int(params, "lanes", 1, 256)
        if "block" in params:  # (as classic's blocks: a file cannot ask for a million tiny plans)
            param_int(params, "block", 16, 1 << 16)
        check_chunk_count(chunk_count(*signal.shape, lane, lanes), nchunks)

    def decode_memory(self, params, signal):
        """One chunk's lanes: their values, layer queues and predictor plans, and the rows of one step."""
        if "fallback" in params:
            return self._fallback.decode_memory({k: v for k, v in params.items() if k != "fallback"}, signal)
        frames, nch = signal.shape
        lane = params["lane"]
        lanes = min(params["lanes"], max(1, -(-frames // lane)) * nch)
        plans = -(-min(frames, lane) // params.get("block", lane)) * 2 * 8 * (kern.MAX_ORDER + 2)
        return lanes * (min(frames, lane) * 8 + (1 << 14) * 256 + 256 * 64 + plans) + (16 << 20)

    def decode(self, params, chunks, signal):
        if "fallback" in params:
            return self._fallback.decode({k: v for k, v in params.items() if k != "fallback"}, chunks, signal)
        frames, nch = signal.shape
        lane = params["lane"]
        layout = lane_layout(frames, nch, lane, params["lanes"])
        if len(layout) != len(chunks):
            raise ValueError("chunk count does not match the recording length")
        nbk = self._alphabet(signal.bits)[0]
        out = np.zeros(signal.shape, np.int64)
        start = 0
        for lengths, data in zip(layout, chunks):
            if "block" in params:
                plan_len = int.from_bytes(data[:4], "little")
                if len(data) < 4 or plan_len > len(data) - 4:
                    raise ValueError("corrupt chunk layout")
                plans = LanePlans.unpack(bytes(data[4:4 + plan_len]), lengths, params["block"])
                data = data[4 + plan_len:]
            else:
                plans = LanePlans.fixed(lengths)
            sym_len = int.from_bytes(data[:4], "little")
            if len(data) < 4 or sym_len > len(data) - 4 or sym_len % 4 or (len(data) - 4 - sym_len) % 4:
                raise ValueError("corrupt chunk layout")
            lanes = self._lanes(lengths, signal.bits, plans)
            width = len(lengths)
            with progress.within(start, start + width, max(1, -(-frames // lane)) * nch):
                lanes.decode_chunk(np.frombuffer(data[4:4 + sym_len], "<u4").astype(np.uint32),
                                   np.frombuffer(data[4 + sym_len:], "<u4").astype(np.uint32), progress.step)
            decoded = lanes.lane_values()
            for k, n in enumerate(lengths):
                span, c = divmod(start + k, nch)
                out[span * lane:span * lane + n, c] = decoded[k, :n]
            start += width
        return (out - (1 << (signal.bits - 1))).astype(np.int32)
