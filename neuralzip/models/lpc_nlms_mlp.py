"""The lpc-nlms-mlp audio model: per-block LPC, a cascade of two NLMS filters and a small
learned stage (a one-hidden-layer MLP, 8 units in the shipped weights) that corrects the
mean and picks the scale class.

Not a WaveNet (no dilated convolutions): files written by neuralzip 0.1.0 name this model
`wavenet` and decode through the legacy entry of neuralzip.models (recognised by the
weights hash, never by the name alone).

The recording is cut into chunks (CHUNK_LANES lanes of up to LANE_FRAMES frames);
each lane restarts its adaptive state, so the decoder steps all lanes of a
chunk in lockstep, one range-coder call per frame for all of them, and memory
stays bounded by one chunk. The per-sample work is in neuralzip/kernels/lpc_nlms_mlp.pyx.

Encoder (it knows every sample): per block the classic analysis picks the
stereo mode, wasted bits and LPC coefficients (side information); pass 1
runs every lane start to end and prices each block with and without the
learned stage; each block keeps the cheaper option (one flag, stored; the
report's `learned_share`); pass 2 replays the lanes window by window and
hands the chosen symbols and count rows to the range coder in decoding order.
"""

from pathlib import Path

import numpy as np

from neuralzip import progress, weightstore
from neuralzip.coding import buckets
from neuralzip.coding.stream import RangeDecoderStream, RangeEncoderStream, symbol_bits
from neuralzip.errors import InputError
from neuralzip.kernels import lpc_nlms_mlp as kern
from neuralzip.kernels.classic_audio import BlockPlans, plan_blocks
from neuralzip.kernels.coding import bucket_pieces_into, join_pieces_into
from neuralzip.models import classic_audio
from neuralzip.models.base import Codec, Encoded, decode_batch_limit, sub_batches
from neuralzip.models.prior import Prior

WEIGHTS_PREFIX = "lpc-nlms-mlp-audio"
LANE_FRAMES = 1 << 14
CHUNK_LANES = 128
WINDOW = 32  # frames per pass-2 window (the count rows handed to the coder stay in cache)
ALPHABET = classic_audio.ALPHABET
BASE_TABLE, NET_TABLE = 0, 1  # the prior's count tables: without the learned stage, with it


def lane_frames(frames: int, lanes: int) -> int:
    """Frames per lane: LANE_FRAMES, or less when the recording needs several chunks of `lanes`
    lanes, so that every chunk is full (the decoder's steps, one per frame of a lane, are what its
    time goes into)."""
    if frames <= LANE_FRAMES * lanes:
        return LANE_FRAMES
    chunks = -(-frames // (LANE_FRAMES * lanes))
    return -(-frames // (chunks * lanes))


def _vmax(bits: int) -> int:
    """Bound of the coded signals (a side channel has one bit more than the samples); predictions are
    clipped to it, so a residual never needs more than bits + 3 bits (the alphabet)."""
    return 1 << bits


def block_size(rate: int) -> int:
    """Frames per block (one LPC analysis and one learned-stage flag each). Longer than classic's
    at high rates: the NLMS stage follows changes within a block, so fewer coefficient sets pay
    (measured on audio/valid: 8192 beat 4096 and 16384 in total; speech at 8 kHz kept 1024)."""
    return 8192 if rate >= 32000 else (4096 if rate >= 16000 else 1024)


class _Network:
    """Quantized MLP (coding) and its float twin (report) from a weights file, as kern.NetWeights.

    File arrays: w1 (hidden, features) int8, b1 int32, m1 int32 per hidden unit, s1 (one shift),
    w2 (2, hidden) int8, b2, m2 int32, s2; float twin fw1, fb1, fw2, fb2."""

    def __init__(self, z: dict | None, path=None):
        if z is None:  # no learned stage: a network without hidden units switches it off
            self.weights = kern.NetWeights(w1t=np.zeros((kern.N_FEATURES, 0)), b1=np.zeros(0), m1=np.zeros(0), s1=1,
                                           w2=np.zeros((2, 0)), b2=np.zeros(2), m2=np.ones(2), s2=1,
                                           fw1=np.zeros((0, kern.N_FEATURES)), fb1=np.zeros(0), fw2=np.zeros((2, 0)),
                                           fb2=np.zeros(2))
            return
        try:
            w1, b1, m1, w2, b2, m2 = (np.asarray(z[n], np.int64) for n in ("w1", "b1", "m1", "w2", "b2", "m2"))
            s1, s2 = int(z["s1"]), int(z["s2"])
            fw1, fb1, fw2, fb2 = (np.asarray(z[n], np.float64) for n in ("fw1", "fb1", "fw2", "fb2"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a weights file for the lpc-nlms-mlp model ({exc})") from None
        nh = w1.shape[0] if w1.ndim == 2 else -1
        ok = (w1.ndim == 2 and w1.shape[1] == kern.N_FEATURES and w2.shape == (2, nh) and b1.shape == m1.shape == (nh,)
              and b2.shape == m2.shape == (2,) and max(abs(w1).max(initial=0), abs(w2).max(initial=0)) <= 127
              and max(abs(b1).max(initial=0), abs(b2).max(initial=0), m1.max(initial=0), m2.max()) < 1 << 31
              and min(m1.min(initial=1), m2.min()) >= 1 and 1 <= s1 <= 62 and 1 <= s2 <= 62)
        if not ok:
            raise InputError(f"{path}: the lpc-nlms-mlp network has the wrong shape for this version of neuralzip")
        try:
            self.weights = kern.NetWeights(w1t=w1.T, b1=b1, m1=m1, s1=s1, w2=w2, b2=b2, m2=m2, s2=s2,
                                           fw1=fw1, fb1=fb1, fw2=fw2, fb2=fb2)
        except ValueError as exc:
            raise InputError(f"{path}: the lpc-nlms-mlp network's float twin has the wrong shape ({exc})") from None

    @property
    def hidden(self) -> int:
        return self.weights.hidden


class LpcNlmsMlpCodec(Codec):
    name = "lpc-nlms-mlp"
    kind = "audio"
    summary = "LPC + NLMS cascade, learned mean/scale stage per block, adaptive counts; lanes in lockstep"

    def __init__(self, weights: str | Path | None = None, learned: bool = True):
        self.weights = Prior(WEIGHTS_PREFIX, (2, kern.NCLS, ALPHABET), weights)
        self.learned = learned  # False: every block without the learned stage (the ablation)
        self._net = None

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "LpcNlmsMlpCodec":
        return LpcNlmsMlpCodec(path, self.learned)

    @property
    def net(self) -> _Network:
        if self._net is None:
            self._net = _Network(weightstore.load(self.weights.path), self.weights.path)
        return self._net

    # -- layout -------------------------------------------------------------------------------
    @staticmethod
    def _layout(frames: int, lanes: int):
        """[(chunk start, lane lengths)]: lanes of lane_frames() frames, `lanes` per chunk (the first
        lane of a chunk is always the longest)."""
        lane = lane_frames(frames, lanes)
        per = lane * lanes
        out = []
        for a in range(0, max(frames, 1), per):
            n = min(per, frames - a)
            lengths = [min(lane, n - s) for s in range(0, n, lane)] or [0]
            out.append((a, np.array(lengths, np.int64)))
        return out

    def _start(self, lengths, nch, blen, nbk, ntables, bits, plans=None) -> kern.LaneState:
        """Fresh lane state for one chunk; `plans`: the chunk's stored block plans (decoder), else
        empty ones the encoder's analysis fills in."""
        nblocks = -(-max(int(lengths[0]), 1) // blen)
        if plans is None:
            plans = BlockPlans(len(lengths) * nblocks, nch)
        counts = self.weights.counts[:, :, :nbk]
        tables = [counts[BASE_TABLE], counts[NET_TABLE], counts[NET_TABLE]][:ntables]  # the float twin starts as NET
        return kern.LaneState(lengths=lengths, nch=nch, blen=blen, plans=plans, tables=np.stack(tables),
                              vmax=_vmax(bits))

    @staticmethod
    def _nbk(bits: int) -> int:
        return buckets.alphabet_size((1 << (bits + 3)) - 1)

    # -- encoder ------------------------------------------------------------------------------
    @staticmethod
    def _plan(part, lanes: kern.LaneState) -> bytes:
        """The classic per-block analysis (stereo mode, wasted bits, LPC) of every block of every lane,
        into the lanes' plans (block b of lane k is plan k * nblocks + b). -> the side information
        that stores it."""
        lengths, nch, lane, blen = lanes.lengths, part.shape[1], lanes.lane, lanes.blen
        for k, n in enumerate(lengths):
            lanes.orig[k, :, :n] = part[k * lane:k * lane + n].T
        block_starts = np.arange(lanes.nblocks)[None, :] * blen
        starts = (np.arange(len(lengths))[:, None] * lane + block_starts).ravel()
        sizes = np.clip(lengths[:, None] - block_starts, 0, blen).ravel()
        plan_blocks(np.ascontiguousarray(part, np.int64), starts, sizes, lanes.plans)
        return lanes.plans.pack() if nch else b""

    def _code_chunk(self, part, lengths, signal, emit, dump=None, dump_every=1, observe=None):
        """Both encoder passes over one chunk (`part`: its frames, cut into lanes of `lengths`);
        emit(t0, t1, offs, sym, nlow, low, rows) gets every window of pass 2 (None: skip pass 2).
        Training hooks: `dump` receives network inputs (see model_lanes), observe(lengths, res, corr,
        cls_base, cls_net) pass 1's records.
        -> (side info, exact bits, float bits, blocks, blocks using the network)."""
        blen = block_size(signal.rate)
        nch = part.shape[1]
        nbk = self._nbk(signal.bits)
        net = self.net if self.learned else _Network(None)

        lanes = self._start(lengths, nch, blen, nbk, 3, signal.bits)
        nblocks = lanes.nblocks
        plan_side = self._plan(part, lanes)
        prior_cnt, prior_tot = lanes.cnt[:, :2].copy(), lanes.tot[:, :2].copy()
        rec = kern.Records(lanes)
        kern.model_lanes(lanes, net.weights, rec, self.learned, dump, dump_every)
        del lanes  # pass 2 needs only the records and the initial counts
        costs = rec.costs
        progress.step(0.5)
        used = np.arange(nblocks)[None, :] * blen < lengths[:, None]
        flags = (costs[:, :, kern.NET] < costs[:, :, kern.BASE]) & used & self.learned
        side = plan_side + np.packbits(flags.ravel()).tobytes()
        side_bits = 8 * (8 + len(side))  # with the two length fields of the chunk layout
        exact = side_bits + float(np.where(flags, costs[:, :, kern.NET], costs[:, :, kern.BASE]).sum())
        fbits = side_bits + float(np.where(flags, costs[:, :, kern.FLOAT], costs[:, :, kern.BASE]).sum())

        if observe is not None:
            observe(lengths, rec.res, rec.corr, rec.cls_base, rec.cls_net)
        if emit is None:
            return side, exact, fbits, int(used.sum()), int(flags.sum())
        # pass 2: replay the count tables from the records, in windows, for the coder
        active = (lengths[None, :] > np.arange(lengths[0])[:, None]).sum(axis=1) * nch
        steps = int(lengths.max())
        replay = kern.Replay(rec, lengths=lengths, counts=prior_cnt, totals=prior_tot, flags=flags, blen=blen)
        for t0 in range(0, steps, WINDOW):
            t1 = min(t0 + WINDOW, steps)
            offs = np.concatenate([[0], np.cumsum(active[t0:t1])]).astype(np.int64)
            sym, nlow, low, rows = replay.window(t0, t1, offs)
            emit(t0, t1, offs, sym, nlow, low, rows)
            progress.step(0.5 + 0.5 * t1 / steps)
        return side, exact, fbits, int(used.sum()), int(flags.sum())

    def _each_chunk(self, samples, signal, make_emit):
        """Code every chunk: make_emit(chunk start, lane lengths) -> the chunk's emit callback.
        -> list of (side, exact, float, blocks, network blocks)."""
        samples = np.asarray(samples)
        out = []
        for a, lengths in self._layout(samples.shape[0], CHUNK_LANES):
            end = a + int(lengths.sum())
            with progress.within(a, end, samples.shape[0]):
                out.append(self._code_chunk(samples[a:end], lengths, signal, make_emit(a, lengths)))
        return out

    def encode(self, samples, signal):
        streams = []  # per chunk: (bucket symbols, low bits) in two range coders, so each takes whole windows

        def make_emit(a, lengths):
            streams.append((RangeEncoderStream(), RangeEncoderStream()))

            def emit(t0, t1, offs, sym, nlow, low, rows):
                streams[-1][0].symbols(sym, rows)
                streams[-1][1].low_bits(low, nlow)
            return emit

        results = self._each_chunk(samples, signal, make_emit)
        chunks = []
        for (side, *_), (sym_stream, low_stream) in zip(results, streams):
            sym_data = sym_stream.finish()
            chunks.append(b"".join([len(side).to_bytes(4, "little"), side, len(sym_data).to_bytes(4, "little"),
                                    sym_data, low_stream.finish()]))
        blocks, net_blocks = sum(r[3] for r in results), sum(r[4] for r in results)
        params = {"lane": lane_frames(np.shape(samples)[0], CHUNK_LANES), "lanes": CHUNK_LANES,
                  "learned_share": round(net_blocks / max(blocks, 1), 4)}
        return Encoded(params, chunks, sum(r[1] for r in results), sum(r[2] for r in results))

    def likelihood(self, samples, signal):
        results = self._each_chunk(samples, signal, lambda a, lengths: None)
        return sum(r[2] for r in results), sum(r[1] for r in results)

    def bits_per_dim(self, samples, signal):
        out = np.zeros(np.shape(samples), np.float64)
        nch = out.shape[1]

        def make_emit(a, lengths):
            def emit(t0, t1, offs, sym, nlow, low, rows):
                bits = symbol_bits(sym, rows) + nlow
                for t in range(t0, t1):
                    live = np.nonzero(lengths > t)[0]
                    out[a + live * int(lengths[0]) + t] = bits[offs[t - t0]:offs[t - t0 + 1]].reshape(len(live), nch)
            return emit

        self._each_chunk(samples, signal, make_emit)
        return out

    # -- decoder ------------------------------------------------------------------------------
    def check_params(self, params, signal, nchunks):
        """1..4096 lanes per chunk, the lane length this version derives from the frame count."""
        from neuralzip.models.base import ParamError, check_chunk_count, param_int

        frames = signal.shape[0]
        lanes = param_int(params, "lanes", 1, 4096)
        lane = param_int(params, "lane", 1, 1 << 48)
        if lane != lane_frames(frames, lanes):
            raise ParamError(f"params.lane {lane} is not the lane length of {frames} frames in {lanes} lanes")
        check_chunk_count(-(-max(frames, 1) // (lane * lanes)), nchunks)

    def decode_memory(self, params, signal):
        """One chunk's lanes: their samples and cascades (int64/int32 per stage), side information per
        block, the count tables of every lane and the count rows of one step."""
        from neuralzip.coding import buckets

        frames, nch = signal.shape
        lane, lanes = params["lane"], params["lanes"]
        per = min(max(frames, 1), lane * lanes)
        used = -(-per // min(lane, per))
        blocks = used * -(-min(lane, per) // 1024)
        nbk = buckets.alphabet_size((1 << (signal.bits + 3)) - 1)
        return per * nch * 128 + blocks * nch * 2048 + used * (3 * 128 * nbk * 4 + nch * nbk * 24) + (32 << 20)

    def decode(self, params, chunks, signal):
        frames, nch = signal.shape
        nlanes = int(params.get("lanes", 0))
        if not 1 <= nlanes <= 4096 or int(params.get("lane", 0)) != lane_frames(frames, nlanes):
            raise ValueError("this file uses an lpc-nlms-mlp lane layout that this version does not know")
        blen = block_size(signal.rate)
        layout = self._layout(frames, nlanes)
        if len(layout) != len(chunks):
            raise ValueError("chunk count does not match the recording length")
        nbk = self._nbk(signal.bits)
        net = self.net
        out = np.zeros(signal.shape, np.int32)
        limit = decode_batch_limit()
        for (a, lengths), data in zip(layout, chunks):
            nblocks = -(-max(int(lengths[0]), 1) // blen)
            side_len = int.from_bytes(data[:4], "little")
            side = data[4:4 + side_len]
            nflags = (len(lengths) * nblocks + 7) // 8
            if side_len < nflags or side_len > len(data) - 8:
                raise ValueError("corrupt side information")
            pos = 4 + side_len
            sym_len = int.from_bytes(data[pos:pos + 4], "little")
            if sym_len > len(data) - pos - 4:
                raise ValueError("corrupt chunk layout")
            plans = BlockPlans.unpack(side[:side_len - nflags], len(lengths) * nblocks, nch)
            lanes = self._start(lengths, nch, blen, nbk, 2, signal.bits, plans)
            flags = np.unpackbits(np.frombuffer(side[side_len - nflags:], np.uint8))[:len(lengths) * nblocks]
            lanes.flags[:] = flags.reshape(len(lengths), nblocks)
            sym_decoder = RangeDecoderStream(data[pos + 4:pos + 4 + sym_len])
            low_decoder = RangeDecoderStream(data[pos + 4 + sym_len:])
            width = len(lengths) * nch
            preds = np.empty(width, np.int64)
            rows = np.empty((width, nbk), np.float64)
            sym = np.zeros(width, np.int32)
            low = np.zeros(width, np.int64)
            # low-bit pieces of one step (at most 4 per bucket), kept across steps
            sizes, pieces = np.empty(4 * width, np.int32), np.empty(4 * width, np.int32)
            owner, shift = np.empty(4 * width, np.int64), np.empty(4 * width, np.int64)
            steps = int(lengths.max())
            with progress.within(a, a + int(lengths.sum()), frames):
                m = kern.decode_step(lanes, net.weights, 0, sym, low, preds, rows)
                for t in range(steps):
                    if t % 1024 == 0:
                        progress.step(t / steps)
                    for p, q in sub_batches(m, limit):
                        sym[p:q] = sym_decoder.symbols(rows[p:q])
                    # the low bits of this frame's buckets, as uniform pieces in the coder's order
                    k = bucket_pieces_into(sym, m, sizes, owner, shift)
                    for p, q in sub_batches(k, limit):
                        pieces[p:q] = low_decoder.uniform(sizes[p:q])
                    join_pieces_into(pieces[:k], owner, shift, low, width)
                    m = kern.decode_step(lanes, net.weights, t + 1, sym, low, preds, rows)
            for k, n in enumerate(lengths):
                s = a + k * int(lengths[0])
                out[s:s + n] = lanes.orig[k, :, :n].T
        return out
