"""The wavenet audio model: exact roundtrips for every sample width, channel count and odd length,
lanes and chunks, a sample's pmf reading only earlier samples of its own lane, the input side
(the per-block linear predictor, the running scale) as documented, the stored predictor plans,
files of the first weights (the fixed predictor) still coded and decoded, coded size against the
exact likelihood, and damaged payloads, plans, params and weights refused."""

import json

import numpy as np
import pytest

from media_factory import tone, wav_file
from neuralzip import api, container, weightstore
from neuralzip.errors import ContainerError, InputError
from neuralzip.exact import logistic
from neuralzip.kernels import wavenet as kern
from neuralzip.models import get_codec, wavenet
from neuralzip.models.base import ParamError, Signal
from test_audio import roundtrip


@pytest.fixture(scope="module")
def codec():
    return get_codec("wavenet", "audio")


FIXED_PREDICTORS = [(), (1,), (2, -1), (3, -3, 1)]  # FLAC's fixed predictors of orders 0 to 3


def switching_plans(lengths, block=256):
    """Plans whose blocks cycle through the fixed predictors of orders 0 to 3 (shift 0)."""
    plans = wavenet.LanePlans.empty(lengths, block)
    for b in range(plans.orders.shape[1]):
        coefs = FIXED_PREDICTORS[b % 4]
        plans.orders[:, b] = len(coefs)
        plans.coefs[:, b, :len(coefs)] = coefs
    return plans


def lanes_for(codec, lengths, bits=16, plans=None):
    n = codec._alphabet(bits)[0]
    plans = switching_plans(lengths) if plans is None else plans
    return kern.WaveLanes(codec.net.exact, np.asarray(lengths, np.int64), bits, *logistic.bucket_intervals(n),
                          plans.block, plans.orders, plans.shifts, plans.coefs), n


def rows_of(codec, values, bits=16):
    """The pmf rows of every step of one lane whose values are known."""
    steps = values.shape[1]
    lanes, n = lanes_for(codec, [steps] * len(values), bits)
    offs = np.arange(steps + 1, dtype=np.int64) * len(values)
    m = int(offs[-1])
    sym, nlow, low, rows = np.empty(m, np.int32), np.empty(m, np.int64), np.empty(m, np.int64), np.empty((m, n))
    lanes.encode_window(np.ascontiguousarray(values, np.int64), 0, steps, offs, sym, nlow, low, rows)
    return rows.reshape(steps, len(values), n), sym.reshape(steps, len(values))


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("frames", [0, 1, 2, 3, 1001])
def test_roundtrip_every_width_channel_count_and_odd_length(bits, channels, frames):
    data = wav_file(tone(frames, channels, bits), bits, rate=8000)
    assert roundtrip(data, "wavenet") == data


def test_more_than_24_bits_go_to_the_classic_model():
    data = wav_file(tone(500, 2, 32), 32)
    _, [member] = container.loads(api.compress_bytes(data, "a", "wavenet"))
    assert member.params["fallback"] == "classic"
    _, [member] = container.loads(api.compress_bytes(wav_file(tone(500, 2, 24), 24), "a", "wavenet"))
    assert "fallback" not in member.params


@pytest.mark.parametrize("bits", [16, 24])
def test_silence_full_scale_noise_and_jumps(bits):
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    noise = rng.integers(lo, hi, (4000, 1), dtype=np.int64).astype(np.int32)
    jumps = np.zeros((4000, 1), np.int32)
    jumps[::7] = lo
    jumps[3::7] = hi - 1  # the fixed predictor's worst case: 2 x[t-1] - x[t-2] far outside the range
    for samples in (np.zeros((3000, 1), np.int32), noise, jumps):
        data = wav_file(samples, bits)
        assert roundtrip(data, "wavenet") == data


def test_many_lanes_and_chunks_with_a_short_tail(monkeypatch):
    monkeypatch.setattr(wavenet, "LANE_FRAMES", 1000)
    monkeypatch.setattr(wavenet, "CHUNK_LANES", 3)
    data = wav_file(tone(1000 * 3 + 17, 2, 16), 16, rate=8000)  # 4 spans x 2 channels = 8 lanes
    assert roundtrip(data, "wavenet") == data
    _, [member] = container.loads(api.compress_bytes(data, "a", "wavenet"))
    assert len(member.chunks) == 3 and member.params == {"lane": 1000, "lanes": 3, "block": 1024}
    assert [len(x) for x in wavenet.lane_layout(3017, 2, 1000, 3)] == [3, 3, 2]


def test_a_sample_reads_only_earlier_samples_of_its_own_lane(codec):
    """The row of step t is unchanged when samples t.. of its lane or any sample of another lane
    change; it changes with sample t - 1 and with a sample far back within the receptive field."""
    rng = np.random.default_rng(0)
    base = np.cumsum(rng.integers(-300, 301, (2, 3000)), axis=1) % 20000 + 20000
    rows, _ = rows_of(codec, base)
    t = 2500
    later = base.copy()
    later[0, t:] = rng.integers(0, 65536, 3000 - t)
    later[1] = rng.integers(0, 65536, 3000)
    moved, _ = rows_of(codec, later)
    assert np.array_equal(moved[:t + 1, 0], rows[:t + 1, 0])
    assert not np.array_equal(moved[:, 1], rows[:, 1])  # the control: lane 1 did change
    for back in (1, 2, 700):
        earlier = base.copy()
        earlier[0, t - back] += 5000
        assert not np.array_equal(rows_of(codec, earlier)[0][t, 0], rows[t, 0]), back


def test_lanes_stepped_together_give_the_rows_of_lanes_run_alone(codec):
    rng = np.random.default_rng(1)
    values = np.cumsum(rng.integers(-50, 51, (3, 700)), axis=1) + 30000
    together, _ = rows_of(codec, values)
    for k in range(3):
        assert np.array_equal(rows_of(codec, values[k:k + 1])[0][:, 0], together[:, k])


def test_the_input_side_is_the_linear_predictor_and_the_running_scale():
    values = np.array([100, 110, 130, 120, 120], np.int64) + (1 << 15)
    fixed = wavenet.LanePlans.fixed([5])
    r, a, u = kern.track(values, 16, *fixed.lane(0))
    assert list(r) == [100, 10 - 100, 130 - 120, 120 - 150, 120 - 110]  # x - (2 x[t-1] - x[t-2]), x[-1] = x[-2] = 0
    assert a[0] == 16 * 16 and a[1] == a[0] + ((16 * 100 - a[0]) >> 4)
    assert u[0] == 100 * 16 * 4096 // a[0]  # r / (a / 16) in 1/4096: 6.25
    assert u[2] == (2 * 10 * 16 * 4096 + a[2]) // (2 * a[2])  # rounded half up
    loud = kern.track(np.array([0, 65535, 0], np.int64), 16, *wavenet.LanePlans.fixed([3]).lane(0))[2]
    assert list(loud) == [-(8 * 4096 - 1), 8 * 4096 - 1, -(8 * 4096 - 1)]  # clipped at +-8
    # a plan of two blocks of 3: order 1 (coefficient 3, shift 1: 1.5 x[t-1]), then order 2 (2, -1)
    plans = wavenet.LanePlans.empty([5], 3)
    plans.orders[0] = (1, 2)
    plans.shifts[0] = (1, 0)
    plans.coefs[0, 0, 0], plans.coefs[0, 1, :2] = 3, (2, -1)
    r = kern.track(values, 16, *plans.lane(0))[0]
    assert list(r) == [100, 110 - 150, 130 - 165, 120 - 150, 120 - 110]  # floor(1.5 x) in block 0
    negative = kern.track(np.array([-7, 0], np.int64) + (1 << 15), 16, *plans.lane(0))[0]
    assert negative[1] == 0 - (-21 >> 1)  # the shift floors: -10.5 -> -11


def test_plans_fitted_by_the_encoder_are_stored_and_read_back():
    rng = np.random.default_rng(5)
    lengths = np.array([3000, 3000, 1100], np.int64)
    values = (np.cumsum(rng.integers(-200, 201, (3, 3000)), axis=1) % 30000 + 20000).astype(np.int64)
    plans = wavenet.LanePlans.fitted(values, lengths, 1024, 16)
    assert plans.orders.shape == (3, 3) and plans.orders[:2].min() > 0  # a random walk: LPC pays
    assert plans.orders[2, 2] == 0  # lane 2 has two blocks: the third is past its end
    data = plans.pack(lengths)
    back = wavenet.LanePlans.unpack(data, lengths, 1024)
    for a, b in ((plans.orders, back.orders), (plans.shifts, back.shifts), (plans.coefs, back.coefs)):
        assert np.array_equal(a, b)
    for bad in (data[:-1], data + b"\0", bytes([1]) + data[1:], bytes([0, 1]) + data[2:], bytes([0, 0, 33]) + data[3:]):
        with pytest.raises(ValueError, match="corrupt"):  # short, long, a stereo mode, wasted bits, order 33
            wavenet.LanePlans.unpack(bad, lengths, 1024)


def test_files_of_the_fixed_predictor_weights_still_code_and_decode(tmp_path):
    """Weights v1 were trained on the fixed second-order predictor's residual: coding with them
    stores no plans (params without "block"), and such files decode with them."""
    v1 = next(weightstore.shipped_dir().glob("wavenet-audio-v1-*.npz"))
    data = wav_file(tone(3000, 2, 16), 16, rate=8000)
    blob = api.compress_bytes(data, "a.wav", "wavenet", weights=str(v1))
    _, [member] = container.loads(blob)
    assert member.params == {"lane": wavenet.LANE_FRAMES, "lanes": wavenet.CHUNK_LANES}
    assert member.weights == weightstore.file_hash(v1) != get_codec("wavenet", "audio").weights_hash
    assert api.decompress_bytes(blob)[0][1] == data


def test_the_stored_plans_are_what_the_decoder_predicts_with(codec):
    """Negative control for the plans: the same chunk with one coefficient changed no longer
    restores the recording (the container's checksum refuses it)."""
    blob = api.compress_bytes(wav_file(tone(3000, 1, 16), 16, rate=8000), "a.wav", "wavenet")
    _, [member] = container.loads(blob)
    data = member.chunks[0]
    plan_len = int.from_bytes(data[:4], "little")
    plans = wavenet.LanePlans.unpack(data[4:4 + plan_len], [3000], member.params["block"])
    assert plans.orders[0, 0] > 0
    plans.coefs[0, 0, 0] += 1
    member.chunks = [data[:4] + plans.pack([3000]) + data[4 + plan_len:]]
    with pytest.raises(ContainerError):
        api.decode_member(member)


def test_coded_size_is_the_exact_likelihood(codec):
    x = tone(6000, 2, 16)
    sig = Signal("audio", x.shape, 16, 8000)
    enc = codec.encode(x, sig)
    coded = 8 * sum(len(c) for c in enc.chunks)
    assert 0.998 * enc.nll_bits <= coded <= 1.01 * enc.nll_bits + 256
    assert enc.nll_float_bits != enc.nll_bits and abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.05
    assert codec.likelihood(x, sig) == (enc.nll_float_bits, enc.nll_bits)
    bpd = codec.bits_per_dim(x, sig)
    assert bpd.shape == x.shape and abs(bpd.sum() - enc.nll_bits) < 1e-6 * enc.nll_bits


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_payload_is_refused(damage):
    blob = api.compress_bytes(wav_file(tone(3000, 1, 16), 16), "a.wav", "wavenet")
    _, [member] = container.loads(blob)
    data = member.chunks[0]
    member.chunks[0] = data[:-8] if damage == "truncate" else data[:40] + bytes([data[40] ^ 0x5A]) + data[41:]
    with pytest.raises(ContainerError):
        api.decode_member(member)


def test_streams_the_range_decoder_cannot_place_are_refused(codec):
    """All-ones words in the symbol stream, or in the low-bit stream of a recording whose residuals
    need low bits, are refused by the kernel's range decoder (and by the API as a ContainerError);
    the undamaged chunk decodes to the recording."""
    samples = tone(3000, 1, 16)
    blob = api.compress_bytes(wav_file(samples, 16), "a.wav", "wavenet")
    _, [member] = container.loads(blob)
    plan_len = int.from_bytes(member.chunks[0][:4], "little")
    head, data = member.chunks[0][:4 + plan_len], member.chunks[0][4 + plan_len:]
    plans = wavenet.LanePlans.unpack(head[4:], [3000], member.params["block"])
    n = int.from_bytes(data[:4], "little")
    ones_symbols = data[:4] + b"\xff" * n + data[4 + n:]
    ones_low_bits = data[:4 + n] + b"\xff" * (len(data) - 4 - n)
    assert len(data) - 4 - n > 0  # there are low bits to damage
    for chunk, refused in ((data, False), (ones_symbols, True), (ones_low_bits, True)):
        lanes, _ = lanes_for(codec, [3000], plans=plans)
        words = [np.frombuffer(part, "<u4").astype(np.uint32) for part in (chunk[4:4 + n], chunk[4 + n:])]
        if refused:
            with pytest.raises(ValueError, match="range decoder"):
                lanes.decode_chunk(*words)
            member.chunks = [head + chunk]
            with pytest.raises(ContainerError):
                api.decode_member(member)
        else:
            lanes.decode_chunk(*words)
            assert np.array_equal(lanes.lane_values()[0] - (1 << 15), samples[:, 0])


@pytest.mark.parametrize("params, bits", [({"lane": 0, "lanes": 64}, 16), ({"lane": 32768, "lanes": 257}, 16),
                                          ({"lane": 32768}, 16), ({"lane": 100, "lanes": 64}, 16),
                                          ({"fallback": "classic"}, 16), ({"lane": 32768, "lanes": 64}, 32),
                                          ({"lane": 32768, "lanes": 64, "block": 15}, 16),
                                          ({"lane": 32768, "lanes": 64, "block": 65537}, 16)])
def test_params_the_decoder_cannot_use_are_refused(codec, params, bits):
    with pytest.raises(ParamError):
        codec.check_params(params, Signal("audio", (5000, 2), bits, 8000), 1)
    codec.check_params({"lane": 32768, "lanes": 64}, Signal("audio", (5000, 2), 16, 8000), 1)  # the controls
    codec.check_params({"lane": 32768, "lanes": 64, "block": 1024}, Signal("audio", (5000, 2), 16, 8000), 1)


def test_weights_the_kernel_cannot_sum_exactly_are_refused(codec, tmp_path):
    arrays = dict(weightstore.load(codec.weights.path))
    w = arrays["wn.gate1.w"].copy()
    w[0, 0] = 32767  # fan-in * 32767 * the largest input overflows an int32 sum
    with pytest.raises(InputError, match="int32"):
        wavenet.WaveNetCodec(weightstore.save(dict(arrays, **{"wn.gate1.w": w}), tmp_path, "wavenet-audio", 99)).net
    with pytest.raises(InputError, match="expected"):
        short = arrays["wn.gate1.w"][:, :-1]  # a missing input column
        wavenet.WaveNetCodec(weightstore.save(dict(arrays, **{"wn.gate1.w": short}), tmp_path, "wavenet-audio", 98)).net
    wavenet.WaveNetCodec(weightstore.save(arrays, tmp_path, "wavenet-audio", 97)).net  # the control: as shipped


def test_kernel_refuses_lanes_windows_and_values_out_of_range(codec):
    with pytest.raises(ValueError, match="non-increasing"):
        lanes_for(codec, [10, 20])
    lanes, n = lanes_for(codec, [10, 5])
    buf = (np.empty(30, np.int32), np.empty(30, np.int64), np.empty(30, np.int64), np.empty((30, n)))
    offs = np.array([0, 2, 4], np.int64)
    with pytest.raises(ValueError, match="range"):
        lanes.encode_window(np.full((2, 10), 1 << 16, np.int64), 0, 2, offs, *buf)
    with pytest.raises(ValueError, match="outside"):
        lanes.encode_window(np.zeros((2, 10), np.int64), 0, 11, offs, *buf)
    rows = np.empty((2, n))
    assert lanes.decode_step(0, np.zeros(2, np.int32), np.zeros(2, np.int64), rows) == 2
    plans = switching_plans([10, 5], block=4)
    for field, value, match in (("orders", 33, "out of range"), ("shifts", 32, "out of range"),
                                ("coefs", 1 << 15, "out of range"), ("orders", -1, "out of range")):
        bad = wavenet.LanePlans(4, plans.orders.copy(), plans.shifts.copy(), plans.coefs.copy())
        getattr(bad, field)[1, 0] = value
        with pytest.raises(ValueError, match=match):
            lanes_for(codec, [10, 5], plans=bad)
    with pytest.raises(ValueError, match="cover"):  # blocks of 4: three are needed for 10 samples
        lanes_for(codec, [10, 5], plans=wavenet.LanePlans(4, plans.orders[:, :2], plans.shifts[:, :2],
                                                          plans.coefs[:, :2]))
    with pytest.raises(ValueError, match="match the lanes"):
        lanes_for(codec, [10, 5], plans=switching_plans([10], block=4))
    with pytest.raises(ValueError, match="shape"):
        lanes_for(codec, [10, 5], plans=wavenet.LanePlans(4, plans.orders, plans.shifts, plans.coefs[:, :, :8]))
    with pytest.raises(ValueError, match="alphabet"):
        lanes.decode_step(1, np.array([n, 0], np.int32), np.zeros(2, np.int64), rows)


def test_cli_compresses_with_wavenet_and_reports_both_likelihoods(run_cli, tmp_path):
    src = tmp_path / "speech.wav"
    src.write_bytes(wav_file(tone(4000, 1, 16), 16, rate=8000))
    r = run_cli("compress", src, "--model", "wavenet", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["model"] == "wavenet" and report["nll_bits"] > 0 and report["nll_float_bits"] > 0
    r = run_cli("decompress", f"{src}.nz", "-o", tmp_path / "back.wav")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back.wav").read_bytes() == src.read_bytes()


def test_the_encoder_chooses_the_lpc_block_by_its_estimate(codec):
    """Of half, once, twice and four times the rate's usual block (4096 at 44.1 kHz), the encoder
    keeps the one with the smallest integer estimate: the longest for a steady tone (fewer plans to
    store), the shortest where the signal changes character every 2048 samples. Decoded exactly
    either way; told another block (the negative control), the chunk's plans no longer parse."""
    rng = np.random.default_rng(7)
    t = np.arange(32768)
    steady = (3000 * np.sin(0.031 * t) + 2000 * np.sin(0.173 * t) + rng.normal(0, 20, t.size)).astype(np.int32)
    noise = rng.normal(0, 300, t.size)
    smooth, rough = np.cumsum(noise) % 20000 - 10000, np.diff(noise, prepend=0) * 8
    switching = np.where((t // 2048) % 2 == 0, smooth, rough).astype(np.int32)
    for x, expected in ((steady, 16384), (switching, 2048)):
        sig = Signal("audio", (len(x), 1), 16, 44100)
        values = x[:, None].astype(np.int64) + (1 << 15)
        estimates = {b: wavenet.block_estimate(values, 16, b) for b in (2048, 4096, 8192, 16384)}
        enc = codec.encode(x[:, None], sig)
        assert enc.params["block"] == min(estimates, key=estimates.get) == expected
        assert np.array_equal(codec.decode(enc.params, enc.chunks, sig)[:, 0], x)
        with pytest.raises(ValueError, match="corrupt"):
            codec.decode(dict(enc.params, block=4096), enc.chunks, sig)


def test_the_trainer_reads_the_lanes_and_residuals_the_coder_computes(tmp_path):
    """train.wavenet.sequences (no torch needed): one sequence per lane (16384 samples of one
    channel), whose residuals are those of the LPC fitted to the lane with the rate's usual block,
    as kern.track gives them; the running scale and the input in the trainer's float units."""
    from neuralzip.train import wavenet as trainer

    x = tone(20000, 2, 16)
    path = tmp_path / "a.wav"
    path.write_bytes(wav_file(x, 16, rate=8000))
    seqs = trainer.sequences([path], log=lambda *_: None)
    assert [len(s["r"]) for s in seqs] == [16384, 16384, 3616, 3616]  # lanes: (span, channel)
    values = x.astype(np.int64) + (1 << 15)
    [lengths] = wavenet.lane_layout(20000, 2, wavenet.LANE_FRAMES, 64)
    lanes = wavenet.lane_values(values, 0, lengths)
    plans = wavenet.LanePlans.fitted(lanes, lengths, 1024, 16)
    for k, s in enumerate(seqs):
        r, a, u = kern.track(np.ascontiguousarray(lanes[k, :lengths[k]]), 16, *plans.lane(k))
        assert np.array_equal(s["r"], r) and np.array_equal(s["a"], a / 16) and np.array_equal(s["u"], u / 4096)
