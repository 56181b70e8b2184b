"""The lpc-nlms-mlp audio model: lanes and chunks, extreme signals, stereo changes between blocks,
damaged payloads and honest likelihood figures (every sample format, channel count and odd
length: test_audio.py's roundtrip matrix)."""

import numpy as np
import pytest

from media_factory import tone, wav_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.media.detect import read_media
from neuralzip.models import lpc_nlms_mlp
from neuralzip.models.base import Signal
from test_audio import roundtrip


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_silence_full_scale_noise_and_jumps(bits):
    """Extremes: the filters and the network's inputs are clipped, never overflow."""
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    noise = rng.integers(lo, hi, (5000, 2), dtype=np.int64).astype(np.int32)
    noise[0] = [lo, hi - 1]
    jumps = np.zeros((5000, 2), np.int32)
    jumps[::7] = [lo, hi - 1]  # worst case for a linear predictor
    for samples in (np.zeros((3000, 2), np.int32), noise, jumps):
        data = wav_file(samples, bits)
        assert roundtrip(data, "lpc-nlms-mlp") == data


def test_stereo_modes_and_always_zero_low_bits_change_between_blocks():
    x = tone(20000, 1, 16)
    pair = np.hstack([x, x])  # identical channels: side = 0
    pair[5000:9000, 1] = -x[5000:9000, 0]  # anti-phase
    pair[9000:13000, 1] = x[9000:13000, 0] // 2 + 1
    pair[13000:] &= ~0xF  # wasted low bits in the last blocks only
    data = wav_file(pair.astype(np.int32), 16)
    assert roundtrip(data, "lpc-nlms-mlp") == data


def test_many_lanes_and_chunks_with_a_short_tail(monkeypatch):
    """Lanes restart their state; chunks hold CHUNK_LANES lanes; the last lane is short."""
    monkeypatch.setattr(lpc_nlms_mlp, "LANE_FRAMES", 2048)
    monkeypatch.setattr(lpc_nlms_mlp, "CHUNK_LANES", 3)
    data = wav_file(tone(2048 * 7 + 1001, 2, 16), 16, rate=8000)
    assert roundtrip(data, "lpc-nlms-mlp") == data
    _, [member] = container.loads(api.compress_bytes(data, "a", "lpc-nlms-mlp"))
    assert len(member.chunks) == 3


def test_long_recordings_get_shorter_lanes_so_every_chunk_is_full(monkeypatch):
    monkeypatch.setattr(lpc_nlms_mlp, "LANE_FRAMES", 1024)
    monkeypatch.setattr(lpc_nlms_mlp, "CHUNK_LANES", 4)
    assert lpc_nlms_mlp.lane_frames(4096, 4) == 1024  # one chunk: full-length lanes
    assert lpc_nlms_mlp.lane_frames(4097, 4) == 513  # two chunks of 4 lanes of 513 frames, not 4 + 1 lanes
    layout = lpc_nlms_mlp.LpcNlmsMlpCodec._layout(4097, 4)
    assert [len(lengths) for _, lengths in layout] == [4, 4] and sum(int(x.sum()) for _, x in layout) == 4097
    data = wav_file(tone(4097 * 2 + 7, 2, 16), 16, rate=8000)
    assert roundtrip(data, "lpc-nlms-mlp") == data


def test_truncated_or_damaged_payload_is_refused():
    data = wav_file(tone(6000, 2, 16), 16)
    blob = api.compress_bytes(data, "a", "lpc-nlms-mlp")
    _, [member] = container.loads(blob)
    for damage in (lambda c: c[: len(c) // 2], lambda c: c[:10] + bytes([c[10] ^ 0x55]) + c[11:]):
        member.chunks = [damage(member.chunks[0])]
        with pytest.raises(ContainerError):
            api.decode_member(member)


def test_kernel_faces_refuse_mismatched_state():
    """The kernels' typed faces check what they are given: state is built from named arrays,
    shapes must match the lanes, and plans read from a file are range-checked."""
    from neuralzip.kernels import lpc_nlms_mlp as kern
    from neuralzip.kernels.classic_audio import BlockPlans
    tables = np.ones((2, kern.NCLS, 40), np.int64)
    with pytest.raises(TypeError):  # positional arguments: refused
        kern.LaneState(np.array([10]), 2, 4, BlockPlans(3, 2), tables, 1 << 16)
    with pytest.raises(ValueError):  # one lane of 10 frames in blocks of 4 has 3 plans, not 2
        kern.LaneState(lengths=np.array([10]), nch=2, blen=4, plans=BlockPlans(2, 2), tables=tables, vmax=1 << 16)
    with pytest.raises(ValueError):  # lengths never increase: the active lanes of a step are a prefix
        kern.LaneState(lengths=np.array([5, 10]), nch=2, blen=4, plans=BlockPlans(6, 2), tables=tables, vmax=1 << 16)
    lanes = kern.LaneState(lengths=np.array([10, 3]), nch=2, blen=4, plans=BlockPlans(6, 2), tables=tables,
                           vmax=1 << 16)
    assert (lanes.nblocks, lanes.lane, lanes.cnt.shape) == (3, 10, (2, 2, kern.NCLS, 40))
    ok = bytes([3]) + bytes([1, 2, 12]) + bytes(4)  # mode MS; wasted bits 1, order 2, shift 12, coefficients
    assert BlockPlans.unpack(ok, 1, 1).orders[0, 0] == 2
    for bad in (bytes([4, 0, 0, 0]), bytes([0, 0, 33, 0]) + bytes(66), bytes([0, 64, 0, 0]), ok + b"x", ok[:-1]):
        with pytest.raises(ValueError):  # stereo mode, LPC order, wasted bits, trailing bytes, cut short
            BlockPlans.unpack(bad, 1, 1)


def _clip():
    media = read_media(open("examples/alto_sax_d4.wav", "rb").read())
    return media, Signal("audio", media.samples.shape, media.bits, int(media.meta["rate"]))


def test_learned_stage_never_costs_bits_and_is_reported():
    """Each block keeps the cheaper of with/without the learned stage (priced exactly), so the
    model with it is never above the model without it; the share of blocks is in the params."""
    media, signal = _clip()
    full = lpc_nlms_mlp.LpcNlmsMlpCodec()
    off = lpc_nlms_mlp.LpcNlmsMlpCodec(learned=False)
    enc = full.encode(media.samples, signal)
    assert 0.0 <= enc.params["learned_share"] <= 1.0
    assert off.encode(media.samples, signal).params["learned_share"] == 0.0
    assert full.likelihood(media.samples, signal)[1] <= off.likelihood(media.samples, signal)[1]


def test_report_coded_size_is_within_1pct_of_the_exact_likelihood():
    media, signal = _clip()
    enc = lpc_nlms_mlp.LpcNlmsMlpCodec().encode(media.samples, signal)
    coded = 8 * sum(len(c) for c in enc.chunks)
    assert enc.nll_bits <= coded <= 1.01 * enc.nll_bits
    assert enc.nll_float_bits > 0 and abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.05
    assert coded < 0.8 * media.samples.size * media.bits  # well below the raw PCM size


def test_bits_per_dim_adds_up_to_the_coded_samples():
    media, signal = _clip()
    codec = lpc_nlms_mlp.LpcNlmsMlpCodec()
    per_value = codec.bits_per_dim(media.samples, signal)
    assert per_value.shape == media.samples.shape and per_value.min() >= 0
    side_bits_bound = 8 * 4096  # side information is not attributed to samples
    exact = codec.likelihood(media.samples, signal)[1]
    assert exact - side_bits_bound <= per_value.sum() <= exact
