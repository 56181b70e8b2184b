"""WaveNet-family audio model: a causal context network on top of a classical cascade.

The recording is cut into chunks (CHUNK_LANES lanes of up to LANE_FRAMES frames);
each lane restarts its adaptive state, so the decoder steps all lanes of a
chunk in lockstep, one range-coder call per frame for all of them, and memory
stays bounded by one chunk. The per-sample work is in wavenet_kernels.

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
from neuralzip.coding.stream import PIECE_BITS, RangeDecoderStream, RangeEncoderStream, symbol_bits
from neuralzip.errors import InputError
from neuralzip.models import classic_audio
from neuralzip.models import wavenet_kernels as kern
from neuralzip.models.base import Codec, Encoded, decode_batch_limit, sub_batches
from neuralzip.models.prior import Prior

WEIGHTS_PREFIX = "wavenet-audio"
LANE_FRAMES = 1 << 14
CHUNK_LANES = 128
WINDOW = 32  # frames per pass-2 window (the count rows handed to the coder stay in cache)
ALPHABET = classic_audio.ALPHABET


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


def _log2_table(prior_max: int) -> np.ndarray:
    """log2(n) for every count a table can hold (initial counts, then at most LIMIT + INC per row)."""
    return np.log2(np.maximum(np.arange(max(prior_max, kern.LIMIT) + kern.INC + 1), 1)).astype(np.float64)


def block_size(rate: int) -> int:
    """Frames per block (one LPC analysis and one learned-stage flag each). Longer than classic's
    at high rates: the NLMS stage follows changes within a block, so fewer coefficient sets pay
    (measured on audio/valid: 8192 beat 4096 and 16384 in total; speech at 8 kHz kept 1024)."""
    return 8192 if rate >= 32000 else (4096 if rate >= 16000 else 1024)


class _Network:
    """Quantized MLP (coding) and its float twin (report) from a weights file.

    File arrays: w1 (hidden, features) int8, b1 int32, m1 int32 per hidden unit, s1 (one shift),
    w2 (2, hidden) int8, b2, m2 int32, s2; float twin fw1, fb1, fw2, fb2. The kernels get the
    exact one as integer-valued float64 arrays (w1 transposed)."""

    def __init__(self, z: dict | None, path=None):
        if z is None:  # no learned stage: a network without hidden units switches it off
            self.exact = (np.zeros((kern.N_FEATURES, 0)), np.zeros(0), np.zeros(0), np.ones(1, np.int64),
                          np.zeros((2, 0)), np.zeros(2), np.ones(2), np.ones(1, np.int64))
            self.float = (np.zeros((0, kern.N_FEATURES)), np.zeros(0), np.zeros((2, 0)), np.zeros(2))
            return
        try:
            w1, b1, m1, w2, b2, m2 = (np.asarray(z[n], np.int64) for n in ("w1", "b1", "m1", "w2", "b2", "m2"))
            s1, s2 = int(z["s1"]), int(z["s2"])
            self.float = tuple(np.ascontiguousarray(z[n], np.float64) for n in ("fw1", "fb1", "fw2", "fb2"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a weights file for the wavenet model ({exc})") from None
        nh = w1.shape[0] if w1.ndim == 2 else -1
        ok = (w1.ndim == 2 and w1.shape[1] == kern.N_FEATURES and w2.shape == (2, nh) and b1.shape == m1.shape == (nh,)
              and b2.shape == m2.shape == (2,) and max(abs(w1).max(initial=0), abs(w2).max(initial=0)) <= 127
              and max(abs(b1).max(initial=0), abs(b2).max(initial=0), m1.max(initial=0), m2.max()) < 1 << 31
              and min(m1.min(initial=1), m2.min()) >= 1 and 1 <= s1 <= 62 and 1 <= s2 <= 62)
        if not ok:
            raise InputError(f"{path}: the wavenet network has the wrong shape for this version of neuralzip")
        f64 = lambda a: np.ascontiguousarray(a, np.float64)  # noqa: E731
        self.exact = (f64(w1.T), f64(b1), f64(m1), np.array([s1]), f64(w2), f64(b2), f64(m2), np.array([s2]))

    @property
    def hidden(self) -> int:
        return self.exact[0].shape[1]


class _Lanes:
    """The adaptive state of every lane of one chunk (see wavenet_kernels for the arrays)."""

    def __init__(self, nlanes: int, nch: int, nblocks: int, lane: int, prior: np.ndarray, ntables: int):
        n = lane
        self.orig = np.zeros((nlanes, nch, n), np.int64)
        self.cod = np.zeros((nlanes, nch, kern.HIST + n), np.int64)
        self.u = np.zeros((nlanes, nch, kern.N_STAGES, kern.HIST + n), np.int32)  # clipped to +-U_CLIP
        self.e2 = np.zeros((nlanes, nch, kern.RES_HIST + n), np.int32)  # clipped to +-E2_CLIP
        self.wn = np.zeros((nlanes, nch, kern.N_STAGES, kern.MAX_TAPS), np.int32)  # clipped to +-U_CLIP
        self.norm = np.zeros((nlanes, nch, kern.N_STAGES), np.int64)
        self.ema = np.full((nlanes, nch), 16 << 4, np.int64)
        self.emas = np.full((nlanes, nch), 16 << 4, np.int64)
        tables = [prior[0], prior[1], prior[1]][:ntables]
        # int32 counts: the tables of every lane are the decoder's working set (cache), rows are
        # widened to float64 for the coder as they are copied out
        self.cnt = np.repeat(np.stack(tables).astype(np.int32)[None], nlanes, axis=0)
        self.tot = self.cnt.sum(axis=3, dtype=np.int64)
        self.modes = np.zeros((nlanes, nblocks), np.int64)
        self.wshift = np.zeros((nlanes, nblocks, nch), np.int64)
        self.orders = np.zeros((nlanes, nblocks, nch), np.int64)
        self.qshifts = np.zeros((nlanes, nblocks, nch), np.int64)
        self.coefs = np.zeros((nlanes, nblocks, nch, kern.MAX_ORDER), np.int64)
        self.flags = np.zeros((nlanes, nblocks), np.bool_)
        self.scratch = np.zeros((nlanes, nch, 7 + kern.N_STAGES), np.int64)

    def set_plans(self, plans: list, nblocks: int) -> None:
        for i, p in enumerate(plans):
            k, b = divmod(i, nblocks)
            self.modes[k, b] = p.mode
            for c, order in enumerate(p.orders):
                self.wshift[k, b, c], self.orders[k, b, c], self.qshifts[k, b, c] = p.shifts[c], order, p.qshifts[c]
                self.coefs[k, b, c, :order] = p.coefs[c]


class WaveNetCodec(Codec):
    name = "wavenet"
    kind = "audio"
    summary = "LPC + NLMS cascade, learned mean/scale stage per block, adaptive counts; lanes in lockstep"

    def __init__(self, weights: str | Path | None = None, learned: bool = True):
        self.weights = Prior(WEIGHTS_PREFIX, (2, kern.NCLS, ALPHABET), weights)
        self.learned = learned  # False: every block without the learned stage (the ablation)
        self._net = None

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    def with_weights(self, path) -> "WaveNetCodec":
        return WaveNetCodec(path, self.learned)

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

    def _start(self, lengths, nch, blen, nbk, ntables):
        lane = max(int(lengths[0]), 1)
        nblocks = -(-lane // blen)
        return _Lanes(len(lengths), nch, nblocks, lane, self.weights.counts[:, :, :nbk], ntables), nblocks

    @staticmethod
    def _nbk(bits: int) -> int:
        return buckets.alphabet_size((1 << (bits + 3)) - 1)

    # -- encoder ------------------------------------------------------------------------------
    @staticmethod
    def _plan(part, lengths, lanes, nblocks, blen) -> bytes:
        """The classic per-block analysis (stereo mode, wasted bits, LPC) of every block of every lane,
        into the lane arrays. -> the side information that stores it."""
        nch, lane = part.shape[1], int(lengths[0])
        for k, n in enumerate(lengths):
            lanes.orig[k, :, :n] = part[k * lane:k * lane + n].T
        block_starts = np.arange(nblocks)[None, :] * blen
        starts = (np.arange(len(lengths))[:, None] * lane + block_starts).ravel()
        sizes = np.clip(lengths[:, None] - block_starts, 0, blen).ravel()
        flat = [a.reshape((-1,) + a.shape[2:]) for a in (lanes.modes, lanes.wshift, lanes.orders, lanes.qshifts,
                                                         lanes.coefs)]
        classic_audio.plan_blocks(np.ascontiguousarray(part, np.int64), starts, sizes, *flat,
                                  np.zeros((0, nch, 0), np.int64))
        return classic_audio.pack_plan_arrays(*flat) if nch else b""

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

        lanes, nblocks = self._start(lengths, nch, blen, nbk, 3)
        plan_side = self._plan(part, lengths, lanes, nblocks, blen)
        prior_cnt, prior_tot = lanes.cnt[:, :2].copy(), lanes.tot[:, :2].copy()
        costs = np.zeros(lanes.flags.shape + (3,), np.float64)
        shape = lanes.orig.shape
        res, corr = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        cls_base, cls_net = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
        nlanes = len(lengths)
        kern.model_lanes(lengths, blen, lanes.orig, lanes.cod, lanes.u, lanes.e2, lanes.wn, lanes.norm, lanes.ema,
                         lanes.emas, lanes.cnt, lanes.tot, lanes.modes, lanes.wshift, lanes.orders, lanes.qshifts,
                         lanes.coefs, _vmax(signal.bits), net.exact, net.float, self.learned, lanes.scratch,
                         np.zeros((nlanes, kern.N_FEATURES), np.int64), np.zeros((nlanes, net.hidden)),
                         np.zeros((nlanes, 2), np.int64), np.zeros((nlanes, nch), np.int64), costs, res, corr,
                         cls_base, cls_net, _log2_table(int(prior_tot.max())),
                         dump if dump is not None else np.zeros((0, kern.N_FEATURES + 2), np.int64), dump_every)
        del lanes  # pass 2 needs only the records and the initial counts
        progress.step(0.5)
        used = np.arange(nblocks)[None, :] * blen < lengths[:, None]
        flags = (costs[:, :, kern.NET] < costs[:, :, kern.BASE]) & used & self.learned
        side = plan_side + np.packbits(flags.ravel()).tobytes()
        side_bits = 8 * (8 + len(side))  # with the two length fields of the chunk layout
        exact = side_bits + float(np.where(flags, costs[:, :, kern.NET], costs[:, :, kern.BASE]).sum())
        fbits = side_bits + float(np.where(flags, costs[:, :, kern.FLOAT], costs[:, :, kern.BASE]).sum())

        if observe is not None:
            observe(lengths, res, corr, cls_base, cls_net)
        if emit is None:
            return side, exact, fbits, int(used.sum()), int(flags.sum())
        # pass 2: replay the count tables from the records, in windows, for the coder
        active = (lengths[None, :] > np.arange(lengths[0])[:, None]).sum(axis=1) * nch
        steps = int(lengths.max())
        for t0 in range(0, steps, WINDOW):
            t1 = min(t0 + WINDOW, steps)
            offs = np.concatenate([[0], np.cumsum(active[t0:t1])])
            n = int(offs[-1])
            sym, nlow, low = np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, np.int64)
            rows = np.empty((n, nbk), np.float64)
            kern.replay_window(t0, t1, offs, lengths, prior_cnt, prior_tot, flags, blen, res, corr, cls_base,
                               cls_net, sym, nlow, low, rows)
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
    def decode(self, params, chunks, signal):
        frames, nch = signal.shape
        nlanes = int(params.get("lanes", 0))
        if not 1 <= nlanes <= 4096 or int(params.get("lane", 0)) != lane_frames(frames, nlanes):
            raise ValueError("this file uses a wavenet lane layout that this version does not know")
        blen = block_size(signal.rate)
        layout = self._layout(frames, nlanes)
        if len(layout) != len(chunks):
            raise ValueError("chunk count does not match the recording length")
        nbk = self._nbk(signal.bits)
        net = self.net
        out = np.zeros(signal.shape, np.int32)
        limit = decode_batch_limit()
        for (a, lengths), data in zip(layout, chunks):
            lanes, nblocks = self._start(lengths, nch, blen, nbk, 2)
            side_len = int.from_bytes(data[:4], "little")
            side = data[4:4 + side_len]
            nflags = (len(lengths) * nblocks + 7) // 8
            if side_len < nflags or side_len > len(data) - 8:
                raise ValueError("corrupt side information")
            pos = 4 + side_len
            sym_len = int.from_bytes(data[pos:pos + 4], "little")
            if sym_len > len(data) - pos - 4:
                raise ValueError("corrupt chunk layout")
            plans = classic_audio._unpack_plans(side[:side_len - nflags], len(lengths) * nblocks, nch)
            lanes.set_plans(plans, nblocks)
            flags = np.unpackbits(np.frombuffer(side[side_len - nflags:], np.uint8))[:len(lengths) * nblocks]
            lanes.flags[:] = flags.reshape(len(lengths), nblocks).astype(bool)
            sym_decoder = RangeDecoderStream(data[pos + 4:pos + 4 + sym_len])
            low_decoder = RangeDecoderStream(data[pos + 4 + sym_len:])
            width = len(lengths) * nch
            preds = np.empty(width, np.int64)
            rows = np.empty((width, nbk), np.float64)
            sym = np.zeros(width, np.int32)
            low = np.zeros(width, np.int64)
            pieces_max = width * (-(-(signal.bits + 3) // PIECE_BITS))
            sizes = np.empty(pieces_max, np.int32)
            owner, shift = np.empty(pieces_max, np.int64), np.empty(pieces_max, np.int64)
            pieces = np.zeros(pieces_max, np.int32)
            nl = len(lengths)
            f, hid, o = np.zeros((nl, kern.N_FEATURES), np.int64), np.zeros((nl, net.hidden)), np.zeros((nl, 2), np.int64)
            steps = int(lengths.max())
            state = (lengths, blen, lanes.orig, lanes.cod, lanes.u, lanes.e2, lanes.wn, lanes.norm, lanes.ema,
                     lanes.emas, lanes.cnt, lanes.tot, lanes.modes, lanes.wshift, lanes.orders, lanes.qshifts,
                     lanes.coefs, _vmax(signal.bits), lanes.flags, net.exact, net.float, lanes.scratch, f, hid, o, preds, rows,
                     sym, pieces, owner, shift)
            with progress.within(a, a + int(lengths.sum()), frames):
                m = kern.decode_step(0, steps, *state, 0, low)
                for t in range(steps):
                    if t % 1024 == 0:
                        progress.step(t / steps)
                    for p, q in sub_batches(m, limit):
                        sym[p:q] = sym_decoder.symbols(rows[p:q])
                    npieces = kern.low_bit_pieces(sym, m, PIECE_BITS, sizes, owner, shift)
                    for p, q in sub_batches(npieces, limit):
                        pieces[p:q] = low_decoder.uniform(sizes[p:q])
                    m = kern.decode_step(t + 1, steps, *state, npieces, low)
            for k, n in enumerate(lengths):
                s = a + k * int(lengths[0])
                out[s:s + n] = lanes.orig[k, :, :n].T
        return out
