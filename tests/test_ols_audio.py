"""The ols-cascade audio model: sample-exact roundtrips at every bit depth, channel count and level,
one frame, many lanes and chunks, extremes, a decode in another process with one thread and
numpy's AVX2 off, damaged chunks and hostile parameters refused as ContainerError, honest figures."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media_factory import tone, wav_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.media.detect import read_media
from neuralzip import models
from neuralzip.models import ols_audio, register
from neuralzip.models.base import Signal

NAME = ols_audio.OlsCascadeCodec.name


@pytest.fixture(autouse=True, params=[1, 2], ids=["level1", "level2"])
def level(request):
    """Each test registers the codec at this level (decoding takes the level from the member's
    params, no option) and leaves the registry as it found it (other modules check its contents)."""
    key = (NAME, "audio")
    before = models._REGISTRY.get(key)
    register(ols_audio.OlsCascadeCodec(request.param))
    yield request.param
    if before is None:
        models._REGISTRY.pop(key, None)
    else:
        register(before)


def roundtrip(data: bytes) -> bytes:
    [(_, restored)] = api.decompress_bytes(api.compress_bytes(data, "a", NAME))
    return restored


def same_samples(a: bytes, b: bytes) -> bool:
    x, y = read_media(a), read_media(b)
    return x.bits == y.bits and np.array_equal(x.samples, y.samples)


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_roundtrip_every_depth_and_channel_count(bits, channels):
    data = wav_file(tone(2500, channels, bits), bits)
    out = roundtrip(data)
    assert out == data and same_samples(out, data)


@pytest.mark.parametrize("frames", [1, 2, 37])
def test_tiny_recordings(frames):
    for channels in (1, 2, 3):
        data = wav_file(tone(frames, channels, 16), 16, rate=8000)
        assert roundtrip(data) == data


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_silence_full_scale_noise_and_jumps(bits):
    """Extremes: predictions are clipped to the sample range, the filters' state never overflows."""
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    noise = rng.integers(lo, hi, (3000, 2), dtype=np.int64).astype(np.int32)
    noise[0] = [lo, hi - 1]
    jumps = np.zeros((3000, 2), np.int32)
    jumps[::7] = [lo, hi - 1]
    for samples in (np.zeros((2000, 2), np.int32), noise, jumps):
        data = wav_file(samples, bits)
        assert roundtrip(data) == data


def test_many_lanes_and_chunks_with_a_short_tail(monkeypatch):
    """Lanes restart their state; a chunk holds chunk_lanes() lanes; the last lane is short."""
    monkeypatch.setattr(ols_audio, "lane_frames", lambda frames, rate, level: 1000)
    monkeypatch.setattr(ols_audio, "CHUNK_LANES", 3)
    data = wav_file(tone(1000 * 7 + 333, 2, 16), 16, rate=8000)
    assert roundtrip(data) == data
    _, [member] = container.loads(api.compress_bytes(data, "a", NAME))
    assert len(member.chunks) == 3 and member.params["lane"] == 1000 and member.params["lanes"] == 3


def test_lanes_are_balanced_and_long():
    assert ols_audio.lane_frames(1, 44100, 1) == 1
    lane = ols_audio.lane_frames(44100 * 120, 44100, 1)
    assert lane >= 4 * 44100 and lane * (-(-44100 * 120 // lane)) - 44100 * 120 < -(-44100 * 120 // lane)
    assert ols_audio.lane_frames(44100 * 120, 44100, 2) >= lane


def test_first_stage_spans_a_fixed_time_at_every_rate():
    assert ols_audio.first_taps(512, 44100) == 512 and ols_audio.first_taps(512, 8000) == 96
    assert ols_audio.first_taps(512, 48000) == 560 and ols_audio.first_taps(512, 10 ** 9) == ols_audio.kern.MAX_TAPS
    assert ols_audio.first_taps(512, 0) == 16 and ols_audio.first_taps(512, -5) == 16
    for rate in (1, 8000, 11025, 22050, 44100, 96000, 192000):
        assert ols_audio.config(2, rate).taps[0] % 16 == 0


def test_decode_in_another_process_with_one_thread_and_no_avx2_in_numpy(tmp_path, monkeypatch, level):
    monkeypatch.setattr(ols_audio, "lane_frames", lambda frames, rate, level: 1500)
    data = wav_file(tone(1500 * 5 + 77, 2, 16), 16)
    blob = api.compress_bytes(data, "a", NAME)
    (tmp_path / "a.nz").write_bytes(blob)
    script = ("import sys; from neuralzip import api;"
              "[(_, out)] = api.decompress_bytes(open(sys.argv[1], 'rb').read());"
              "open(sys.argv[2], 'wb').write(out)")
    env = dict(os.environ, OMP_NUM_THREADS="1", NPY_DISABLE_CPU_FEATURES="AVX2 AVX512F")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.nz"), str(tmp_path / "b.wav")], check=True,
                   env=env, cwd=Path(__file__).resolve().parents[1])
    assert (tmp_path / "b.wav").read_bytes() == data


@pytest.mark.parametrize("fork", [True, False])
def test_two_decoders_at_once_and_a_damaged_chunk_in_either_half(monkeypatch, fork):
    """The decoder runs the second half of the chunks in a forked process (FORK) or here; either way
    the samples come back exact, and damage in either half is a ContainerError, not a hang or a
    traceback from the child."""
    monkeypatch.setattr(ols_audio, "lane_frames", lambda frames, rate, level: 700)
    monkeypatch.setattr(ols_audio, "CHUNK_LANES", 2)
    monkeypatch.setattr(ols_audio, "FORK", fork and ols_audio.FORK)
    data = wav_file(tone(700 * 9 + 55, 2, 16), 16)
    blob = api.compress_bytes(data, "a", NAME)
    [(_, out)] = api.decompress_bytes(blob)
    assert out == data
    _, [member] = container.loads(blob)
    assert len(member.chunks) == 5
    chunks = list(member.chunks)
    for k in (0, 4):
        member.chunks = chunks[:k] + [chunks[k][:len(chunks[k]) // 2]] + chunks[k + 1:]
        with pytest.raises(ContainerError):
            api.decompress_bytes(container.dumps([member]))


def test_boundary_rows_rebuild_the_least_squares_matrix():
    """The kernel keeps two rows of R a sample and rebuilds R when it solves: the rebuilt matrix is
    the same bits as the full update R = lam R + x x' over the same inputs (numpy, same order)."""
    kern = ols_audio.kern  # the build the model uses
    rng = np.random.default_rng(5)
    frames = 300
    x = (rng.normal(size=(frames, 2)) * 3000).astype(np.int32)
    cfg = kern.Config(n_own=6, n_cross=3, solve_every=1, lam=0.998, taps=(8,), mu_shift=(3,))
    st = kern.LaneState(cfg, lengths=np.array([frames]), nch=2, bits=16, prior=ols_audio.prior(ols_audio.nbk_of(16)))
    st.load(x)
    sym = np.zeros((1, 2, frames), np.uint8)
    cls = np.zeros((1, 2, kern.NCTX, frames), np.uint8)
    kern.model_lanes(st, sym, cls)
    s = np.concatenate([np.zeros((40, 2)), x.astype(np.float64) / 32768.0])
    for c, (other, off) in enumerate([(1, 1), (0, 0)]):
        R = np.zeros((9, 9))
        for t in range(frames):
            v = np.concatenate([s[40 + t - 1 - np.arange(6), c], s[40 + t - off - np.arange(3), other]])
            R = 0.998 * R + v[:, None] * v[None, :]
        got = np.tril(st.R[c, :9, :9])
        assert np.array_equal(got, np.tril(R))


def test_a_second_fit_with_the_first_fits_memory_changes_nothing():
    """The second least-squares fit runs the first fit's arithmetic on its own statistics: with the
    first's forgetting factor its matrix is the same bits as the first's, its prediction adds 0 to
    the mixer, and every symbol is the one coded without it. With another factor (the control)
    the symbols differ. A second fit needs the adaptive mixer."""
    kern = ols_audio.kern  # the build the model uses
    rng = np.random.default_rng(7)
    frames = 3000
    x = np.clip(np.cumsum(rng.normal(size=(frames, 2)) * 300, axis=0), -32768, 32767).astype(np.int32)
    shape = dict(n_own=6, n_cross=3, solve_every=2, lam=0.998, taps=(32, 16), mu_shift=(3, 5), irls=1, mixer=1,
                 coder=2, pow_norm=1, fine_stages=1)

    def run(**extra):
        st = kern.LaneState(kern.Config(**shape, **extra), lengths=np.array([frames]), nch=2, bits=16,
                            prior=ols_audio.prior(ols_audio.nbk_of(16)))
        st.load(x)
        sym = np.zeros((1, 2, frames), np.uint8)
        cls = np.zeros((1, 2, kern.NCTX, frames), np.uint8)
        kern.model_lanes(st, sym, cls)
        return st, sym

    plain, sym = run()
    same, sym_same = run(lam2=0.998)
    assert np.array_equal(same.R2, same.R) and np.array_equal(same.w2, same.w)
    assert np.array_equal(sym_same, sym)
    _, sym_other = run(lam2=0.98)
    assert not np.array_equal(sym_other, sym)
    for bad in (dict(lam2=0.998, mixer=0), dict(lam2=1.0), dict(lam2=0.3)):
        with pytest.raises(ValueError, match="out of range"):
            kern.Config(**dict(shape, **bad))


def _member(data: bytes):
    return container.loads(api.compress_bytes(data, "a", NAME))[1][0]


def test_a_symbol_stream_the_range_decoder_cannot_place_is_refused():
    """All-ones words put the point past every symbol's interval at the first step: the kernel's
    range decoder refuses (the same stream constriction refuses), and the member is a ContainerError."""
    samples = tone(4000, 2, 16)
    member = _member(wav_file(samples, 16))
    chunk = member.chunks[0]
    assert chunk[0] == 0  # no value map: the lane's logistic share, then the symbol stream's length
    n = int.from_bytes(chunk[2:6], "little")
    damaged = chunk[:6] + b"\xff" * n + chunk[6 + n:]
    p = member.params
    lengths = np.array([4000], np.int64)
    for data, refused in ((chunk, False), (damaged, True)):
        st, words = ols_audio.OlsCascadeCodec._chunk_state(
            ols_audio.config(p["level"], 44100, p["coder"]), data, lengths, p["lane"], 2, 16, ols_audio.coder_tables(
                ols_audio.nbk_of(16)))
        if refused:
            with pytest.raises(ValueError, match="range decoder"):
                ols_audio.kern.decode_lanes(st, words)
        else:
            ols_audio.kern.decode_lanes(st, words)
            assert np.array_equal(st.unload(), samples)
    member.chunks = [damaged]
    with pytest.raises(ContainerError):
        api.decompress_bytes(container.dumps([member]))


def test_damaged_chunks_are_refused_as_container_errors():
    data = wav_file(tone(4000, 2, 16), 16)
    member = _member(data)
    good = member.chunks[0]
    rng = np.random.default_rng(0)
    damages = [lambda c: c[: len(c) // 2], lambda c: c[:3], lambda c: b"",
               lambda c: c[:6] + bytes([c[6] ^ 0x55]) + c[7:],  # inside the range-coded symbols
               lambda c: c[:-9] + bytes([c[-9] ^ 0xFF]) + c[-8:],  # inside the low bits
               lambda c: (1 << 30).to_bytes(4, "little") + c[4:],  # symbol stream length
               lambda c: c + b"\0" * 8]
    damages += [lambda c, i=i: c[:i] + bytes([rng.integers(256)]) + c[i + 1:] for i in rng.integers(0, len(good), 8)]
    for damage in damages:
        member.chunks = [damage(good)]
        blob = container.dumps([member])
        try:
            [(_, out)] = api.decompress_bytes(blob)
        except ContainerError:
            continue
        assert False, "a damaged chunk decoded"  # the checksum would refuse a wrong decode too


@pytest.mark.parametrize("field,value", [("level", 3), ("level", 0), ("level", "1"), ("lane", 0), ("lane", 1 << 40),
                                         ("lanes", 0), ("lanes", 10 ** 6), ("lane", 10), ("lanes", None),
                                         ("coder", 0), ("coder", 6), ("coder", "5")])
def test_hostile_params_are_refused_naming_the_field(field, value):
    member = _member(wav_file(tone(3000, 2, 16), 16))
    member.params = dict(member.params, **{field: value})
    with pytest.raises(ContainerError) as err:
        api.decompress_bytes(container.dumps([member]))
    assert field in str(err.value) or "chunk" in str(err.value)


def test_check_params_is_arithmetic():
    codec = ols_audio.OlsCascadeCodec()
    signal = Signal("audio", (10 ** 9, 2), 16, 44100)
    codec.check_params({"level": 1, "lane": 1 << 22, "lanes": 32}, signal, -(-10 ** 9 // ((1 << 22) * 32)))
    with pytest.raises(ValueError):
        codec.check_params({"level": 1, "lane": 1 << 22, "lanes": 32}, signal, 1)


def _clip():
    media = read_media(wav_file(tone(20000, 2, 16, level=0.2), 16, rate=22050))
    return media, Signal("audio", media.samples.shape, media.bits, 22050)


def test_coded_size_is_the_exact_likelihood_and_bits_per_dim_adds_up(level):
    media, signal = _clip()
    codec = ols_audio.OlsCascadeCodec(level)
    enc = codec.encode(media.samples, signal)
    coded = 8 * sum(len(c) for c in enc.chunks)
    assert enc.nll_bits <= coded + 64 and coded <= 1.01 * enc.nll_bits + 1024
    assert codec.likelihood(media.samples, signal)[1] == pytest.approx(enc.nll_bits, rel=1e-9)
    per_value = codec.bits_per_dim(media.samples, signal)
    assert per_value.shape == media.samples.shape and per_value.min() >= 0
    assert enc.nll_bits - 8 * 4096 <= per_value.sum() <= enc.nll_bits
    assert coded < 0.7 * media.samples.size * media.bits  # the tone carries noise of about 10.4 bits a sample
    assert np.array_equal(codec.decode(enc.params, enc.chunks, signal), media.samples)


def test_level_is_stored_and_level2_is_not_larger_on_a_clip():
    media, signal = _clip()
    one, two = ols_audio.OlsCascadeCodec(1).encode(media.samples, signal), ols_audio.OlsCascadeCodec(2).encode(
        media.samples, signal)
    assert one.params["level"] == 1 and two.params["level"] == 2
    with pytest.raises(ValueError):
        ols_audio.OlsCascadeCodec(3)


def _dual_mono(frames=60000, rate=44100):
    """A smooth, decaying two-note signal with a little noise, the same on both channels."""
    t = np.arange(frames) / rate
    rng = np.random.default_rng(5)
    x = 3000 * np.exp(-t) * (np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 277 * t)) + rng.normal(0, 2, frames)
    x = np.round(x).astype(np.int64)
    return np.stack([x, x], 1), rate


@pytest.mark.parametrize("level", [1, 2])
def test_a_copied_channel_costs_almost_nothing(level):
    """Dual mono (the second channel equal to the first) is common: the cross-channel least squares must
    learn to copy. A ridge that scales with the signal's energy shrank exactly that direction on smooth
    signals (3.5 bits a sample for the copy of a piano note, against 0.3 for lpc-nlms-mlp)."""
    x, rate = _dual_mono()
    bits = ols_audio.OlsCascadeCodec().at_level(level).bits_per_dim(x, Signal("audio", x.shape, 16, rate))
    first, second = bits[5000:].mean(axis=0)
    assert first > 2.0  # the signal itself is not trivial
    assert second < 0.1, (first, second)


def test_a_copied_channel_is_costly_with_the_old_ridge(monkeypatch):
    """Negative control of the test above: with the ridge it had first (1e-6 of the mean energy) it fails."""
    monkeypatch.setitem(ols_audio.LEVELS, 1, dict(ols_audio.LEVELS[1], nu_rel=1e-6))
    x, rate = _dual_mono()
    bits = ols_audio.OlsCascadeCodec().bits_per_dim(x, Signal("audio", x.shape, 16, rate))
    assert bits[5000:, 1].mean() > 0.1


def _moving_resonance(frames: int = 24000, seed: int = 3, segment: int = 160, radius: float = 0.97,
                      lowest: float = 0.02, noise: float = 200) -> np.ndarray:
    """Noise through a two-pole resonance that jumps to another frequency (lowest..0.2 of the rate)
    every `segment` samples (160 by default: 20 ms at 8 kHz, how fast speech formants move)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(frames)
    y1 = y2 = 0.0
    for t0 in range(0, frames, segment):
        a1, a2 = 2 * radius * np.cos(2 * np.pi * rng.uniform(lowest, 0.2)), -radius * radius
        for t in range(t0, min(t0 + segment, frames)):
            y1, y2 = a1 * y1 + a2 * y2 + rng.normal(0, noise), y1
            x[t] = y1
    return np.clip(np.round(x), -32768, 32767).astype(np.int64)[:, None]


def _quiet_chord(frames: int = 30000, seed: int = 4) -> np.ndarray:
    """Two quiet partials and a little noise: residuals of a unit or two."""
    t = np.arange(frames)
    x = 40 * np.sin(2 * np.pi * t * 0.013) + 25 * np.sin(2 * np.pi * t * 0.0371)
    return np.round(x + np.random.default_rng(seed).normal(0, 1.5, frames)).astype(np.int64)[:, None]


def _mean_bits(x, rate, level, monkeypatch=None, **overrides):
    if overrides:
        monkeypatch.setitem(ols_audio.LEVELS, level, dict(ols_audio.LEVELS[level], **overrides))
    return ols_audio.OlsCascadeCodec(level).bits_per_dim(x, Signal("audio", x.shape, 16, rate)).mean()


def test_the_rls_stage_follows_a_resonance_that_moves(level, monkeypatch):
    """The RLS stage (forgetting factor 0.98 below LOW_RATE) learns a resonance within tens of
    samples, where the least squares (0.998) and the NLMS stages lag; without it (the control) the
    same signal costs 0.08 bits a sample more (0.16 measured). Level 2's second least-squares fit
    follows such a signal too, so both arms go without it."""
    x = _moving_resonance()
    low = dict(ols_audio.LEVELS[level]["low_rate"], lam2=0.0)
    with_rls = _mean_bits(x, 8000, level, monkeypatch, low_rate=low)
    assert _mean_bits(x, 8000, level, monkeypatch, low_rate=dict(low, rls_n=0)) > with_rls + 0.08


def test_level_2s_second_fit_follows_sounds_that_change(monkeypatch):
    """Level 2's second least-squares fit (forgetting factor 0.995 at 44.1 kHz: a memory of a few
    hundred samples) refits within a sound of 300 samples, where the first fit (0.999) still
    averages the sounds before; without it (the control) the same signal costs 0.08 bits a sample
    more (0.16 measured). Level 1 has no second fit."""
    x = _moving_resonance(30000, 5, segment=300, radius=0.995, lowest=0.01, noise=100)  # sounds of 300 samples
    assert ols_audio.LEVELS[2]["lam2"] > 0 and "lam2" not in ols_audio.LEVELS[1]
    with_fit = _mean_bits(x, 44100, 2)
    assert _mean_bits(x, 44100, 2, monkeypatch, lam2=0.0) > with_fit + 0.08


def test_the_cascade_keeps_fractions_of_a_quiet_signal(level, monkeypatch):
    """The cascade in 1/64 sample units: where residuals are a unit or two, whole-sample stages (the
    control) lose 0.03 bits a sample or more (0.05 at level 2, 0.1 at level 1 measured)."""
    x = _quiet_chord()
    fine = _mean_bits(x, 44100, level)
    assert _mean_bits(x, 44100, level, monkeypatch, fine_stages=0) > fine + 0.03



DOUBLE_STATE = ("R", "F", "bv", "w", "ch", "ring", "wt", "ols", "gp", "am", "rls", "R2", "bv2", "w2", "cnt", "tot")


def model_state(kern, samples, bits, rate, level, lam_ulps=0):
    """Runs model_lanes over one lane with `kern` and the level's config at this rate -> (symbols,
    every double array of the state as raw 64-bit words). lam_ulps moves the forgetting factor by
    that many ulps."""
    cfg = ols_audio.config_fields(level, rate)
    for _ in range(lam_ulps):
        cfg["lam"] = float(np.nextafter(cfg["lam"], 1.0))
    frames, nch = samples.shape
    st = kern.LaneState(kern.Config(**cfg), lengths=np.array([frames]), nch=nch, bits=bits,
                        **ols_audio.coder_tables(ols_audio.nbk_of(bits)))
    st.load(samples)
    sym = np.zeros((1, nch, frames), np.uint8)
    kern.model_lanes(st, sym, np.zeros((1, nch, kern.NCTX, frames), np.uint8))
    return sym, {name: np.asarray(getattr(st, name)).view(np.uint64) for name in DOUBLE_STATE}


def test_the_avx_build_computes_the_same_bits_as_the_generic_build(monkeypatch, level):
    """ols_audio_avx (four-lane vectors) and ols_audio (two-lane) end a lane with the same double
    state, bit for bit, code the same bytes, and decode each other's files, at both sample rates'
    configurations, mono and stereo, 16 and 24 bits. The negative control: the forgetting factor
    moved by one ulp changes the state, so the state comparison sees a one-ulp difference in the
    double arithmetic (the bytes of a clip this short need not change: predictions are rounded)."""
    from neuralzip.kernels import dispatch, ols_audio as generic
    avx = dispatch.ols_audio()
    if avx is generic:
        pytest.skip("no AVX build on this machine (not x86-64, or the CPU lacks AVX)")
    assert (generic.VECTOR_LANES, avx.VECTOR_LANES) == (2, 4)
    monkeypatch.setattr(ols_audio, "lane_frames", lambda frames, rate, level: 3000)
    rng = np.random.default_rng(11)
    cases = [(tone(7001, 2, 24) + rng.integers(-900, 900, (7001, 2)).astype(np.int32), 24, 44100),
             (tone(5003, 1, 16, level=0.05), 16, 8000)]
    for samples, bits, rate in cases:
        sym, state = model_state(generic, samples, bits, rate, level)
        sym4, state4 = model_state(avx, samples, bits, rate, level)
        assert np.array_equal(sym, sym4)
        for name in DOUBLE_STATE:
            assert np.array_equal(state[name], state4[name]), name
        _, moved = model_state(generic, samples, bits, rate, level, lam_ulps=1)
        assert not np.array_equal(moved["R"], state["R"])
        data = wav_file(samples, bits, rate=rate)
        blobs = {}
        for kern in (generic, avx):
            monkeypatch.setattr(ols_audio, "kern", kern)
            blobs[kern.VECTOR_LANES] = api.compress_bytes(data, "a", NAME)
        assert blobs[2] == blobs[4]
        for kern in (generic, avx):
            monkeypatch.setattr(ols_audio, "kern", kern)
            [(_, out)] = api.decompress_bytes(blobs[2])
            assert out == data
