"""ols-cascade: an audio model that learns each recording while coding it.

Per lane, channel and sample (neuralzip/kernels/ols_audio.pyx has the loops and says exactly what
they compute): an online least-squares predictor (order 16 + 8 partner samples at level 1, solved
every 32 samples; 32 + 8, solved every 4, at level 2; forgetting factor 0.999, 0.998 below
LOW_RATE; at level 2 each sample weighted by (recent |error| + 2)^-3/4, so loud errors pull the
fit less, as the coding cost grows with log |error| and not its square; the second channel of a
pair also reads the first channel's current and recent samples), a cascade of NLMS stages on its
residual (448/32/16 taps at level 1, 1280/256/32/16 at level 2 at 44.1 kHz, 512/32/16 below
LOW_RATE at level 2; the first stage spans the same time at every sample rate: first_taps), an
RLS stage (order 4, forgetting factor 0.97, at level 2; order 8 and 0.98 below LOW_RATE at both
levels) that predicts what the cascade left from its last values and follows it within tens of
samples (speech formants move that fast), at level 2 a second least-squares fit on the same
inputs with a short memory (forgetting factor 0.995, 0.98 below LOW_RATE: a few hundred samples)
whose prediction, against the first fit's, is one more input of the mixer, an adaptive-step
mixer of the stages' predictions, and the residual as a bucket symbol under adaptive counts
selected by fast and slow running means of |residual| (two tables added), mixed (version 5) with
a discretized logistic whose scale is the slow running mean's, at a share the encoder picks per
lane from SHARES (the cheapest for that lane; 0 keeps version 4's rows), plus raw low bits. The
cascade works in 1/64 sample units, so a quiet recording whose residuals are a few units keeps
the stages' fractions. The residual is taken against the prediction rounded from
1/64 units, its sign flipped where the unrounded prediction lies above, and, where a chunk uses
only some of the values its bit depth allows, as a difference of ranks among the values used
(value_map.py). Nothing is learned offline: the initial counts are a fixed geometric shape per
scale class, the logistic rows (logistic_rows) a fixed shape per fine scale class, built from a
correctly rounded CDF table. The least squares, the NLMS and RLS stages and the mixer are strict IEEE-754 doubles
(a fixed order of + - * / sqrt), everything else is integer.

Versions (params["coder"]): 5 is the model above. Version 4 had no logistic row (its chunks no
share section) and decodes with CODER4_LEVELS. Version 3 had no second fit at level 2 (its
level 1 is version 4's) and decodes with CODER3_LEVELS. Files written by version 2 (integer stages, a
sign-sign mixer, a bias correction in a context of the recent error signs, two stages at level 1)
decode with CODER2_LEVELS; files without "coder" are version 1 and decode with CODER1_LEVELS
(the residual rounded to a whole sample). The kernel's own `coder` option is only that rounding:
2 (the sign by the unrounded prediction) in versions 2 to 5.

Layout: the recording is cut into lanes of about LANE_SECONDS seconds (balanced, so lanes of one
recording differ by at most a frame), up to `lanes` lanes per chunk, and the lanes into two
chunks where there are several (chunk_lanes); each lane restarts every state. The chunk's symbol
stream interleaves its lanes step by step (a step: one channel of one frame of every lane;
channels are separate steps because a channel reads the previous channel's sample of the same
frame), so the decoder steps the lanes in lockstep, each symbol range-decoded inside the kernel
(kernels/range_decoder.pxd), and decodes the two halves of the chunks at once, the second in a
forked process (in_two_processes). The encoder codes chunks two at a time in threads (its
kernels run a whole chunk without the GIL). The low bits of a lane are raw bits in the lane's own bit stream (after
the chunk's range-coded symbols), so they cost no coder call.

Chunk bytes: (versions 2 to 5) the value-map section (value_map.chunk_section: a flag byte, and where it
is 1 the packed map's length, 4 bytes little endian, and the packed map); (version 5) one byte per
lane, its share of the logistic row in sixteenths (0 to 15; the decoder takes any); then the symbol stream
length (4, little endian), the range-coded symbols, then per lane the number of 64-bit low-bit
words (4 each), then those words (little endian), lane after lane.
"""

import contextvars
import functools
import mmap
import os
import signal as signals
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, RangeEncoderStream, symbol_bits
from neuralzip.errors import ContainerError
from neuralzip.exact import logistic
from neuralzip.kernels import dispatch
from neuralzip.models import value_map
from neuralzip.models.base import Encoded, ParamError, RunCodec, check_chunk_count, param_int
from neuralzip.parallel import cpu_count

kern = dispatch.ols_audio()  # the kernels, built with AVX where this CPU has it (same bits)

CODER = 5  # the model version compress writes (params["coder"]; params without one are coder 1)
CODER3_LEVELS = {  # the levels as coder-3 files were written (they keep decoding)
    1: dict(n_own=16, n_cross=8, solve_every=32, lam=0.999, taps=(448, 32, 16), mu_shift=(3, 5, 6), nu_rel=1e-9,
            bias_rate=0, coder=2, pow_norm=2, mixer=1, fine_stages=1,
            rls_n=0,  # above 32 kHz the RLS stage gave 0.17% for 13% of the model's time
            low_rate=dict(lam=0.998, rls_n=8, rls_lam=0.98)),
    2: dict(n_own=32, n_cross=8, solve_every=4, lam=0.999, taps=(1280, 256, 32, 16), mu_shift=(3, 4, 5, 6),
            nu_rel=1e-9, bias_rate=0, coder=2, pow_norm=1, irls=1, mixer=1, fine_stages=1, rls_n=4, rls_lam=0.97,
            low_rate=dict(lam=0.998, taps=(512, 32, 16), mu_shift=(3, 5, 6), rls_n=8, rls_lam=0.98)),
}
CODER4_LEVELS = {  # tuned on audio/train (excerpts of 12 files a source, 60 speech files for low_rate), never on valid
    1: dict(CODER3_LEVELS[1]),  # level 1 is version 3's: the same bits
    # level 2 adds a second least-squares fit with a short memory (lam2): 0.5% on audio/train, 1.2% on its speech
    2: dict(CODER3_LEVELS[2], lam2=0.995, low_rate=dict(CODER3_LEVELS[2]["low_rate"], lam2=0.98)),
}
# version 5 may mix a discretized logistic of the slow running scale into the count rows, at a share
# (SHARES) the encoder picks per lane; version 4's bits where it picks 0
LEVELS = {level: dict(CODER4_LEVELS[level], logistic=1) for level in (1, 2)}
SHARES = (0, 4, 8, 12, 14)  # the logistic row's shares the encoder tries, in sixteenths (the decoder takes 0..15)
CODER2_LEVELS = {  # the levels as coder-2 files were written (they keep decoding)
    1: dict(n_own=16, n_cross=8, solve_every=32, lam=0.999, taps=(448, 16), mu_shift=(3, 5), nu_rel=1e-9,
            bias_rate=8, coder=2, pow_norm=2, low_rate=dict(lam=0.998)),
    2: dict(n_own=32, n_cross=8, solve_every=4, lam=0.999, taps=(1280, 256, 16), mu_shift=(3, 4, 6), nu_rel=1e-9,
            bias_rate=8, coder=2, pow_norm=1, irls=1,
            low_rate=dict(lam=0.998, taps=(512, 32, 16), mu_shift=(3, 5, 6))),
}
CODER1_LEVELS = {  # the levels as coder-1 files were written (they keep decoding)
    1: dict(n_own=16, n_cross=4, solve_every=32, lam=0.998, taps=(448, 16), mu_shift=(3, 5), nu_rel=1e-9,
            bias_rate=8),
    2: dict(n_own=32, n_cross=8, solve_every=4, lam=0.998, taps=(512, 32, 16), mu_shift=(3, 5, 6), nu_rel=1e-9,
            bias_rate=8),
}
VERSIONS = {1: CODER1_LEVELS, 2: CODER2_LEVELS, 3: CODER3_LEVELS, 4: CODER4_LEVELS, CODER: LEVELS}  # params["coder"] -> the levels it was written with
LOW_RATE = 32000  # below this rate a level's `low_rate` stages replace its own (long filters hurt 8 kHz speech)
LANE_SECONDS = {1: 6, 2: 12}
MAX_LANE = 1 << 22  # frames per lane the decoder accepts
MAX_LANES = 64  # lanes per chunk the decoder accepts
CHUNK_LANES = 32
WINDOW = 64  # frames per encoder replay window (one coder call each)
PACK_FRAMES = 1 << 15  # recordings at most this long are packed (each is one lane anyway)
PACK_LANES = 32  # recordings per pack
CHUNKS_AT_ONCE = 2  # chunks coded at once (encoder: threads; decoder: two processes where it can fork)
FORK = hasattr(os, "fork") and sys.platform.startswith("linux")


REFERENCE_RATE = 44100  # the first NLMS stage spans LEVELS' taps at this rate: a fixed time


def first_taps(taps: int, rate: int) -> int:
    """The first NLMS stage's length at `rate`: the same span of time as `taps` at REFERENCE_RATE
    (a multiple of 16, 16..MAX_TAPS). Long filters help music at 44.1-48 kHz and hurt 8 kHz speech."""
    scaled = (taps * max(int(rate), 1) + REFERENCE_RATE * 8) // (REFERENCE_RATE * 16) * 16
    return max(16, min(kern.MAX_TAPS, scaled))


def config_fields(level: int, rate: int, coder: int = CODER) -> dict:
    """The kernels' Config fields of a level at this rate, as `coder` files were written."""
    cfg = dict(VERSIONS[coder][level])
    low = cfg.pop("low_rate", {})
    if rate < LOW_RATE:
        cfg.update(low)
    cfg["taps"] = (first_taps(cfg["taps"][0], rate),) + tuple(cfg["taps"][1:])
    return cfg


def config(level: int, rate: int, coder: int = CODER) -> kern.Config:
    return kern.Config(**config_fields(level, rate, coder))


def lane_frames(frames: int, rate: int, level: int) -> int:
    """Balanced lanes of at most LANE_SECONDS[level] seconds (at least 2^15 frames)."""
    target = min(MAX_LANE, max(1 << 15, LANE_SECONDS[level] * max(rate, 1)))
    n = max(1, -(-frames // target))
    return max(1, -(-frames // n))


def chunk_lanes(nch: int, nlanes: int) -> int:
    """Lanes per chunk: the recording's lanes in two chunks where they are several (the decoder
    steps the two at once), at most CHUNK_LANES and 64 // nch."""
    return max(1, min(CHUNK_LANES, 64 // max(nch, 1), -(-nlanes // CHUNKS_AT_ONCE)))


def layout(frames: int, lane: int, lanes: int):
    """[(chunk start, lane lengths)]: lanes of `lane` frames, `lanes` per chunk."""
    per = lane * lanes
    out = []
    for a in range(0, max(frames, 1), per):
        n = min(per, frames - a)
        out.append((a, np.array([min(lane, n - s) for s in range(0, n, lane)] or [0], np.int64)))
    return out


def in_threads(work, jobs: list) -> list:
    """[work(job) for job in jobs], CHUNKS_AT_ONCE at a time (the encoder: chunks are independent
    streams, its kernels run a whole chunk without the GIL and call the coder once a window).
    Exceptions come back to the caller."""
    if min(CHUNKS_AT_ONCE, len(jobs), cpu_count()) <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(min(CHUNKS_AT_ONCE, len(jobs))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, job) for job in jobs]
        return [f.result() for f in futures]


def in_two_processes(work, jobs: list) -> None:
    """work(job) for every job: the second half of the jobs in a forked process, the first half
    here, at once (the decoder's results go to memory both processes share). Not threads: a
    decoder step calls the coder, which needs the GIL, a million times a minute of stereo, and
    two threads handing the GIL back and forth ran slower than one on a busy machine. An error
    in the child comes back as a ValueError with its message (a child killed by a signal: a
    RuntimeError)."""
    mine, theirs = jobs[:(len(jobs) + 1) // 2], jobs[(len(jobs) + 1) // 2:]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no cleanup, no progress reports (the parent reports its half)
        code = 0
        try:
            os.close(read_end)
            with progress.reporting(None):
                for job in theirs:
                    work(job)
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
            os.write(write_end, (str(e) or type(e).__name__).encode("utf-8", "replace")[:4096])
            code = 1
        os._exit(code)
    os.close(write_end)
    try:
        for job in mine:
            work(job)
    except BaseException:
        os.kill(pid, signals.SIGKILL)
        raise
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode("utf-8", "replace")
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise RuntimeError(f"the second decoder process was killed by signal {os.WTERMSIG(status)}")
    if status != 0:
        raise ValueError(message or "the second decoder process failed")


def nbk_of(bits: int) -> int:
    """Buckets of a zigzagged residual of `bits`-bit samples (|residual| < 2^bits)."""
    return buckets.alphabet_size((1 << (bits + 1)) - 1)


def _pow(r: float, n: int) -> float:
    """r^n by squaring: IEEE multiplications only, the same bits on every machine."""
    out, base = 1.0, r
    while n:
        if n & 1:
            out *= base
        base *= base
        n >>= 1
    return out


def row_bits(offs, sym, rows) -> tuple[np.ndarray, np.ndarray]:
    """One replay window's rows (step after step, each step's active lanes in order): the bits each
    costs (its bucket symbol under its counts, plus its raw low bits) and the lane it belongs to."""
    lane = np.arange(len(sym)) - np.repeat(offs[:-1], np.diff(offs))
    return symbol_bits(sym, rows) + buckets.low_bit_counts(sym), lane


_PRIORS: dict = {}


def prior(nbk: int) -> np.ndarray:
    """(NCLS, nbk) initial counts: per scale class, a geometric distribution of the zigzagged
    residual with the class's mean, integrated over each bucket, as 1 + 1024 p (exact IEEE
    arithmetic, no transcendental functions)."""
    if nbk in _PRIORS:
        return _PRIORS[nbk]
    out = np.ones((kern.NCLS, nbk), np.int32)
    for cls in range(kern.NCLS):
        if cls == 0:
            q = 0.5
        else:
            h = 0 if cls % 2 else 1
            bl = (cls + 1 - h) // 2
            q = (1.25 if h == 0 else 1.75) * 2.0 ** (bl - 1)
        mean = 2.0 * q / 16.0 + 0.5  # of the zigzagged residual
        r = mean / (mean + 1.0)
        masses = []
        for j in range(nbk):
            nlow = int(buckets.low_bits_of_bucket(j))
            lo = int(buckets.value_of(j, 0))
            width = 1 << nlow
            masses.append(_pow(r, lo) * (1.0 - _pow(r, width)))
        total = sum(masses)
        for j, m in enumerate(masses):
            out[cls, j] = 1 + int(m / total * 1024.0)
    _PRIORS[nbk] = out
    return out


LOGISTIC_UNIT = 0.7213475204444817  # 1 / (2 ln 2): the logistic scale whose mean |x| is 1
LOGISTIC_MIN_SCALE = 0.3
LOGISTIC_FRACTION_BITS = 8  # the CDF table is read between its steps, in 1/256 of a step
# the kernel's running means step by a floored shift, which leaves them about one unit of |residual|
# (16 in their 16x units) below the mean they follow
EMA_FLOOR_BIAS = 16.0


def fine_class_scale(q: int) -> float:
    """The logistic scale of fine scale class q (kernels/audio.pxd, fine_scale_class: eight classes an
    octave of the 16x running mean of |residual|): the mean |residual| at the class's middle (its
    floor bias added back), as a logistic's scale (the same IEEE products on every machine)."""
    bl, j = divmod(q, 8)
    mean16 = 0.5 if bl == 0 else (8.5 + j) * 2.0 ** (bl - 1) / 8.0 + EMA_FLOOR_BIAS
    return max(mean16 / 16.0 * LOGISTIC_UNIT, LOGISTIC_MIN_SCALE)


@functools.cache
def logistic_rows(nbk: int) -> np.ndarray:
    """(NQ, nbk) the logistic row of every fine scale class (coder 5): a discretized logistic centred
    on the prediction, of the class's scale, as integer masses of its buckets (about 2^19 a row, each at least 1).
    Built from the correctly rounded CDF table, with IEEE products and quotients only, so every
    machine builds the same rows."""
    cdf = _logistic_cdf()
    bounds, at = logistic.bucket_intervals(nbk)
    out = np.zeros((kern.NQ, nbk), np.float64)
    for q in range(kern.NQ):
        c = _cdf_between(cdf, (bounds - 0.5) / fine_class_scale(q))  # at each boundary j - 1/2
        mass = c[at[:, 1]] - c[at[:, 0]] + c[at[:, 3]] - c[at[:, 2]]  # CDF_ONE units
        out[q] = np.maximum((mass + 16) >> 5, 1)  # every bucket possible, also where the scale outgrows the alphabet
    return out


def _cdf_between(cdf: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The CDF table at x (in units of the scale), read linearly between its steps (integers:
    the position in 1/256 of a step is an IEEE product, floored)."""
    one = 1 << LOGISTIC_FRACTION_BITS
    pos = np.floor(x * float(logistic.Z_STEPS * one)).astype(np.int64)
    pos = np.clip(pos, -logistic.Z_MAX * one, logistic.Z_MAX * one - 1) + logistic.Z_MAX * one
    i, frac = pos >> LOGISTIC_FRACTION_BITS, pos & (one - 1)
    return cdf[i] + (((cdf[i + 1] - cdf[i]) * frac + (one >> 1)) >> LOGISTIC_FRACTION_BITS)


@functools.cache
def _logistic_cdf() -> np.ndarray:
    return logistic.correctly_rounded_cdf()


def coder_tables(nbk: int) -> dict:
    """The LaneState's coder tables for an alphabet of nbk buckets: initial counts and logistic rows."""
    return {"prior": prior(nbk), "logistic": logistic_rows(nbk)}


class OlsCascadeCodec(RunCodec):
    name = "ols-cascade"
    kind = "audio"
    summary = "online least squares + NLMS cascade + mixer + bias, adaptive counts; long lanes in lockstep"
    levels = tuple(sorted(LEVELS))
    # only files small enough to hold a packable recording share a group (a longer one codes alone,
    # and in a group of its own it keeps a process to itself): 32768 frames of stereo 32-bit, or of
    # 8 channels of 8-bit, plus a header
    chain_member_bytes = 4 * 2 * PACK_FRAMES + 4096

    def __init__(self, level: int = 1):
        if level not in LEVELS:
            raise ValueError(f"ols-cascade has levels {sorted(LEVELS)}, not {level!r}")
        self.level = level

    def at_level(self, level: int) -> "OlsCascadeCodec":
        if level not in LEVELS:
            return super().at_level(level)  # the one-line error
        return self if level == self.level else OlsCascadeCodec(level)

    # -- encoder (and likelihood, and the bit map: one loop over a coder) --------------------------
    def chunk_params(self, signal):
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        lane = lane_frames(frames, signal.rate, self.level)
        return {"level": self.level, "lane": lane, "lanes": chunk_lanes(nch, -(-frames // lane)), "coder": CODER}

    def _run(self, coder_factory, samples, signal, observe=None):
        samples = np.asarray(samples)
        frames, nch = samples.shape
        params = self.chunk_params(signal)
        level, lane, lanes = params["level"], params["lane"], params["lanes"]
        cfg = config(level, signal.rate)
        nbk = nbk_of(signal.bits)
        tables = coder_tables(nbk)
        jobs = layout(frames, lane, lanes)

        def run(job):
            a, lengths = job
            end = a + int(lengths.sum())
            with progress.within(a, end, max(frames, 1)):
                return self._code_chunk(cfg, samples[a:end], lengths, nch, signal.bits, tables, coder_factory,
                                        None if observe is None else (lambda *x: observe(a, *x)))

        done = in_threads(run, jobs)
        return params, [d for d, _ in done], sum(b for _, b in done)

    def encode_chunks(self, params, read, signal):
        """encode's chunks, CHUNKS_AT_ONCE at a time: their frames are read (in order) into their lane
        states here, then coded in threads; only those chunks' states are ever held."""
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        cfg = config(params["level"], signal.rate)
        tables = coder_tables(nbk_of(signal.bits))
        jobs = layout(frames, params["lane"], params["lanes"])
        for i in range(0, len(jobs), CHUNKS_AT_ONCE):
            batch = jobs[i:i + CHUNKS_AT_ONCE]
            states = [self._read_state(cfg, read, lengths, nch, signal.bits, tables) for _, lengths in batch]

            def run(k):
                a, lengths = batch[k]
                st, states[k] = states[k], None  # the state goes with its chunk
                with progress.within(a, a + int(lengths.sum()), max(frames, 1)):
                    return self._code_state(st, lengths, nch, RangeEncoderStream, None)

            yield from in_threads(run, list(range(len(batch))))

    @staticmethod
    def _read_state(cfg, read, lengths, nch, nbits, tables):
        """A chunk's encoder state, its frames read a lane at a time: what LaneState.load does with
        the chunk's frames in one array, without that array."""
        st = kern.LaneState(cfg, lengths=lengths, nch=nch, bits=nbits, **tables)
        for k, n in enumerate(lengths.tolist()):
            if n:
                st.s[k, :, kern.HIST:kern.HIST + n] = read(n).T
        return st

    @staticmethod
    def _encoder_state(cfg, part, lengths, nch, nbits, tables):
        st = kern.LaneState(cfg, lengths=lengths, nch=nch, bits=nbits, **tables)
        st.load(part)
        return st

    @staticmethod
    def _code_chunk(cfg, part, lengths, nch, nbits, tables, coder_factory, observe):
        st = OlsCascadeCodec._encoder_state(cfg, part, lengths, nch, nbits, tables)
        return OlsCascadeCodec._code_state(st, lengths, nch, coder_factory, observe)

    @staticmethod
    def _code_state(st, lengths, nch, coder_factory, observe):
        """A chunk's bytes and exact-model bits, from its loaded lane state (versions 2 to 4: the chunk
        starts with its value-map section, which may set a map on the state)."""
        lane = st.lane
        map_section = value_map.chunk_section(st, lengths)
        sym = np.zeros((len(lengths), nch, lane), np.uint8)
        cls = np.zeros((len(lengths), nch, kern.NCTX, lane), np.uint8)
        kern.model_lanes(st, sym, cls)
        share_section = b""
        if st.logistic:  # each lane's share of the logistic row: the cheapest candidate
            costs = kern.share_costs(st, sym, cls, SHARES)
            st.set_shares(np.array(SHARES)[np.argmin(costs, axis=1)])
            share_section = st.shares.tobytes()
        progress.step(0.5)
        coder = coder_factory()
        # the encoder's coder takes rows; a cost count (likelihood) needs only the kernel's bits
        stream = None if isinstance(coder, CostCoder) else coder
        need_rows = stream is not None or observe is not None
        active = (lengths[None, :] > np.arange(lane)[:, None]).sum(axis=1)
        width = len(lengths) * nch * WINDOW
        out_sym = np.zeros(width, np.int32)
        rows = np.zeros((width, st.nbk), np.float64) if need_rows else None
        model_bits = 0.0
        for t0 in range(0, int(lengths[0]), WINDOW):
            t1 = min(t0 + WINDOW, int(lengths[0]))
            offs = np.concatenate([[0], np.cumsum(np.repeat(active[t0:t1], nch))]).astype(np.int64)
            model_bits += kern.replay(st, sym, cls, t0, t1, offs, out_sym, rows)
            n = int(offs[-1])
            if stream is not None:
                stream.symbols(out_sym[:n], rows[:n])
            if observe is not None:
                observe(lengths, t0, t1, offs, out_sym[:n], rows[:n])
        del sym, cls, rows  # freed before the chunk's bytes are put together (a long recording codes two at once)
        low_bits = int(st.lowpos.sum())
        words = [st.low_words(k).astype("<u8", copy=False) for k in range(len(lengths))]
        sym_data = coder.finish()
        del coder, stream
        data = b"".join([map_section, share_section, len(sym_data).to_bytes(4, "little"), sym_data,
                         np.array([len(w) for w in words], "<u4").tobytes()] + [memoryview(w) for w in words])
        side = 8 * (len(map_section) + len(share_section) + 4 + 4 * len(lengths))
        return data, model_bits + low_bits + side

    def bits_per_dim(self, samples, signal):
        out = np.zeros(np.shape(samples), np.float64)
        nch = out.shape[1]
        lane = lane_frames(out.shape[0], signal.rate, self.level)

        def observe(a, lengths, t0, t1, offs, sym, rows):
            b, k = row_bits(offs, sym, rows)
            steps = np.arange((t1 - t0) * nch)
            per = np.diff(offs)
            t = np.repeat(t0 + steps // nch, per)
            c = np.repeat(steps % nch, per)
            out[a + k * lane + t, c] = b

        self._run(CostCoder, samples, signal, observe)
        return out

    # -- packs: short recordings of an archive as the lanes of one chunk -------------------------------
    # A pack of up to PACK_LANES consecutive short recordings (the same channels, bit depth and rate) is
    # coded as one chunk whose lanes are the recordings, longest first (ties in archive order): one
    # symbol stream, one chunk header and one value-map section for all of them, decoded in one
    # lockstep pass. The chunk is stored with the pack's first member (params "pack": the member
    # count); the others carry no chunks ("pack": 0). A pack is decoded whole, like a bits-back chain.
    @staticmethod
    def _packable(signal) -> tuple | None:
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        if not 1 <= frames <= PACK_FRAMES or not 2 <= signal.bits <= 32:
            return None
        return nch, signal.bits, signal.rate

    @staticmethod
    def _packs(signals) -> list[list[int]]:
        """Indices cut into runs of packable signals of one shape class, at most PACK_LANES each."""
        runs, key = [], None
        for i, sig in enumerate(signals):
            k = OlsCascadeCodec._packable(sig)
            if k is not None and k == key and len(runs[-1]) < PACK_LANES:
                runs[-1].append(i)
            else:
                runs.append([i])
            key = k
        return runs

    @staticmethod
    def _lane_order(frames: list[int]) -> list[int]:
        return sorted(range(len(frames)), key=lambda i: (-frames[i], i))

    def encode_set(self, items):
        out = [None] * len(items)
        for run in self._packs([sig for _, sig in items]):
            if len(run) == 1:
                out[run[0]] = self.encode(*items[run[0]])
                continue
            order = [run[j] for j in self._lane_order([int(items[i][1].shape[0]) for i in run])]
            sig = items[run[0]][1]
            nch, nbits = int(sig.shape[1]), sig.bits
            lengths = np.array([int(items[i][1].shape[0]) for i in order], np.int64)
            cfg = config(self.level, sig.rate)
            st = kern.LaneState(cfg, lengths=lengths, nch=nch, bits=nbits, **coder_tables(nbk_of(nbits)))
            for k, i in enumerate(order):
                st.s[k, :, kern.HIST:kern.HIST + int(lengths[k])] = np.asarray(items[i][0]).T
            lane_bits = np.zeros(len(order))

            def observe(lengths_, t0, t1, offs, sym, rows):
                b, k = row_bits(offs, sym, rows)
                np.add.at(lane_bits, k, b)

            data, bits = self._code_state(st, lengths, nch, RangeEncoderStream, observe)
            lane_bits[0] += bits - lane_bits.sum()  # the chunk's side bits go to the longest recording
            for k, i in enumerate(order):
                params = {"level": self.level, "coder": CODER, "pack": len(run) if i == run[0] else 0}
                out[i] = Encoded(params, [data] if i == run[0] else [], float(lane_bits[k]), float(lane_bits[k]))
        return out

    def decode_set(self, items):
        out = [None] * len(items)
        i = 0
        while i < len(items):
            params, chunks, sig = items[i]
            n = params.get("pack")
            if n is None:
                out[i] = self.decode(params, chunks, sig)
                i += 1
                continue
            run = list(range(i, i + n)) if isinstance(n, int) and n >= 2 else []
            if not run or run[-1] >= len(items) or any(items[j][0].get("pack") != 0 for j in run[1:]) \
                    or any(self._packable(items[j][2]) != self._packable(sig) for j in run[1:]):
                raise ContainerError("a pack of short recordings is incomplete: decode the whole archive it belongs to")
            order = [run[j] for j in self._lane_order([int(items[j][2].shape[0]) for j in run])]
            lengths = np.array([int(items[j][2].shape[0]) for j in order], np.int64)
            nch, nbits = int(sig.shape[1]), sig.bits
            cfg = config(params["level"], sig.rate, params["coder"])
            st, words = self._chunk_state(cfg, bytes(chunks[0]), lengths, int(lengths[0]), nch, nbits,
                                          coder_tables(nbk_of(nbits)))
            with progress.within(i, i + n, len(items)):
                kern.decode_lanes(st, words, progress.step)
            for k, j in enumerate(order):
                out[j] = np.ascontiguousarray(st.s[k, :, kern.HIST:kern.HIST + int(lengths[k])].T)
            i += n
        return out

    # -- decoder ------------------------------------------------------------------------------------
    def check_params(self, params, signal, nchunks):
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        level = param_int(params, "level", 1, max(LEVELS))
        if "coder" in params:
            param_int(params, "coder", 1, CODER)
        if "pack" in params:  # a member of a pack: short, coded by version 2 or later, the chunk with the first
            n = param_int(params, "pack", 0, PACK_LANES)
            param_int(params, "coder", 2, CODER)
            if n == 1 or self._packable(signal) is None:
                raise ParamError(f"params.pack {n} on a recording that is not packed ({frames} frames)")
            check_chunk_count(1 if n else 0, nchunks)
            return
        lane = param_int(params, "lane", 1, MAX_LANE)
        lanes = param_int(params, "lanes", 1, MAX_LANES)
        if not 2 <= signal.bits <= 32:
            raise ParamError(f"bits {signal.bits}: ols-cascade codes 2..32-bit samples")
        if nch < 1:
            raise ParamError("shape: no channels")
        if lane > max(frames, 1):
            raise ParamError(f"params.lane {lane} is longer than the recording ({frames} frames)")
        del level
        check_chunk_count(max(1, -(-frames // (lane * lanes))), nchunks)

    def decode_memory(self, params, signal):
        """Two chunks' lane states at once (the decoder runs two), and the samples (a pack's first
        member: the whole pack's lane state)."""
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        if "pack" in params:
            lane, lanes, frames = PACK_FRAMES, max(1, int(params["pack"])), PACK_FRAMES * max(1, int(params["pack"]))
        else:
            lane, lanes = int(params["lane"]), int(params["lanes"])
        lanes = min(lanes, max(1, -(-frames // lane)))
        nbk = nbk_of(signal.bits)
        n, stages, taps, ntab = kern.MAX_OWN + kern.MAX_CROSS, kern.MAX_STAGES, kern.MAX_TAPS, kern.NTAB
        doubles = (3 * n * n + 2 * kern.HISTORY_DEPTH * n + 5 * n + 3 * stages * taps + ntab * kern.NCLS * (nbk + 1)
                   + kern.MIXER_DOUBLES + kern.RLS_DOUBLES)
        per_kc = 8 * doubles + 2048
        per_lane = nch * (per_kc + 4 * (lane + kern.HIST)) + nch * (signal.bits + 2) * lane // 8 + 16 * nbk
        return 2 * lanes * per_lane + 8 * frames * nch

    def decode(self, params, chunks, signal):
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        self.check_params(params, signal, len(chunks))
        level, lane, lanes = params["level"], params["lane"], params["lanes"]
        cfg = config(level, signal.rate, params.get("coder", 1))
        nbk = nbk_of(signal.bits)
        tables = coder_tables(nbk)
        jobs = list(zip(layout(frames, lane, lanes), chunks))
        forked = len(jobs) > 1 and CHUNKS_AT_ONCE > 1 and FORK and cpu_count() > 1
        # the samples: in memory shared with the forked decoder, if there is one
        out = (np.frombuffer(mmap.mmap(-1, max(4 * frames * nch, 1)), np.int32, frames * nch).reshape(frames, nch)
               if forked else np.zeros((frames, nch), np.int32))

        def run(job):
            (a, lengths), data = job
            st, words = self._chunk_state(cfg, bytes(data), lengths, lane, nch, signal.bits, tables)
            with progress.within(a, a + int(lengths.sum()), max(frames, 1)):
                kern.decode_lanes(st, words, progress.step)
            n = int(lengths.sum())
            if n:
                out[a:a + n] = st.unload()

        if forked:
            in_two_processes(run, jobs)
        else:
            for job in jobs:
                run(job)
        return out

    def decodes_in_chunks(self, params):
        """Not a member of a pack: a pack is decoded with its group (params.pack)."""
        return "pack" not in params

    def chunk_decode_memory(self, params, signal):
        """Two chunks' lane states, the shared block the second one's samples come back in, both
        chunks' bytes, and a lane's samples on their way out."""
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        lane, lanes = int(params["lane"]), int(params["lanes"])
        span = min(lane * lanes, max(frames, 1))
        states = self.decode_memory(params, signal) - 8 * frames * nch
        return states + 4 * span * nch + 2 * span * nch * (signal.bits + 2) // 8 + 16 * lane * nch

    def decode_chunks(self, params, chunk, signal, write):
        """decode's chunks, two at a time where it can fork (the second in a forked process, its
        samples back through shared memory), each chunk's samples handed to `write` lane by lane."""
        frames, nch = int(signal.shape[0]), int(signal.shape[1])
        lane, lanes = params["lane"], params["lanes"]
        cfg = config(params["level"], signal.rate, params.get("coder", 1))
        tables = coder_tables(nbk_of(signal.bits))
        jobs = layout(frames, lane, lanes)
        forked = len(jobs) > 1 and CHUNKS_AT_ONCE > 1 and FORK and cpu_count() > 1
        span = int(jobs[0][1].sum())
        shared = (np.frombuffer(mmap.mmap(-1, max(4 * span * nch, 1)), np.int32, span * nch).reshape(span, nch)
                  if forked else None)

        def decoded(a, lengths, data):
            st, words = self._chunk_state(cfg, bytes(data), lengths, lane, nch, signal.bits, tables)
            with progress.within(a, a + int(lengths.sum()), max(frames, 1)):
                kern.decode_lanes(st, words, progress.step)
            return [st.s[k, :, kern.HIST:kern.HIST + int(n)].T for k, n in enumerate(lengths) if n]

        def run(job):
            here, (a, lengths), data = job
            lanes_out = decoded(a, lengths, data)
            if here:
                for block in lanes_out:
                    write(block)
                return
            pos = 0
            for block in lanes_out:
                shared[pos:pos + len(block)] = block
                pos += len(block)

        for i in range(0, len(jobs), CHUNKS_AT_ONCE if forked else 1):
            batch = [(j == i, jobs[j], chunk(j)) for j in range(i, min(i + CHUNKS_AT_ONCE, len(jobs)))] \
                if forked else [(True, jobs[i], chunk(i))]
            if len(batch) == 1:
                run(batch[0])
                continue
            in_two_processes(run, batch)
            n = int(batch[1][1][1].sum())
            for b in range(0, n, lane):
                write(shared[b:min(b + lane, n)])

    @staticmethod
    def _chunk_state(cfg, data, lengths, lane, nch, nbits, tables):
        """A chunk's lane state for the decoder, its low bits and value map loaded, and its symbol
        stream's 32-bit words (the kernel decodes them)."""
        nl = len(lengths)
        used = None
        if cfg.coder >= 2:
            used, taken = value_map.read_section(data, nbits)
            data = data[taken:]
        shares = None
        if cfg.logistic:
            if len(data) < nl:
                raise ValueError("corrupt chunk: too short")
            shares = np.frombuffer(data[:nl], np.uint8)  # LaneState.set_shares refuses any above 15
            data = data[nl:]
        if len(data) < 4:
            raise ValueError("corrupt chunk: too short")
        sym_len = int.from_bytes(data[:4], "little")
        pos = 4 + sym_len
        if sym_len % 4 or pos + 4 * nl > len(data):
            raise ValueError("corrupt chunk layout")
        counts = np.frombuffer(data[pos:pos + 4 * nl], "<u4").astype(np.int64)
        pos += 4 * nl
        if pos + 8 * int(counts.sum()) != len(data) or (counts > (lane * nch * (nbits + 2)) // 64 + 2).any():
            raise ValueError("corrupt chunk: low-bit words do not add up")
        low_words = []
        for n in counts:
            low_words.append(np.frombuffer(data[pos:pos + 8 * int(n)], "<u8").astype(np.uint64))
            pos += 8 * int(n)
        st = kern.LaneState(cfg, lengths=lengths, nch=nch, bits=nbits, **tables, low_words=low_words)
        if used is not None:
            st.set_value_map(used)
        if shares is not None:
            st.set_shares(shares)
        return st, np.frombuffer(data[4:4 + sym_len], "<u4").astype(np.uint32)
