"""ols-cascade's logistic row (version 5): every share decodes sample-exact, the share byte of a
chunk matters (a changed one does not decode to the original) and a hostile one is refused, the
encoder's cost figures are the replay's, it picks the cheapest share, and the logistic rows are the
same on every machine (built from a correctly rounded CDF table, recorded here by hash)."""

import hashlib

import numpy as np
import pytest

from media_factory import tone, wav_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.exact import logistic
from neuralzip.media.detect import read_media
from neuralzip.models import ols_audio, value_map
from neuralzip.models.base import Signal

NAME = ols_audio.OlsCascadeCodec.name
kern = ols_audio.kern  # the build the model uses


def noisy(frames: int, channels: int, bits: int, seed: int = 11) -> np.ndarray:
    """A tone under logistic noise whose loudness changes every 1000 frames: a recording whose
    residual the logistic row describes well, so the encoder gives it a share."""
    rng = np.random.default_rng(seed)
    loud = np.repeat(rng.uniform(0.002, 0.05, frames // 1000 + 1), 1000)[:frames, None]
    x = tone(frames, channels, bits, seed=seed) / float(1 << (bits - 1)) + rng.logistic(0, 1, (frames, channels)) * loud
    peak = (1 << (bits - 1)) - 1
    return np.clip(np.round(x * peak), -peak - 1, peak).astype(np.int32)


def shares_of(member, bits: int) -> bytes:
    """The chunk's share section: one byte per lane (a pack: per recording), after the value-map section."""
    chunk = bytes(member.chunks[0])
    _, taken = value_map.read_section(chunk, bits)
    return chunk[taken:taken + member.params.get("pack", member.params.get("lanes"))]


def with_shares(member, bits: int, new: bytes):
    chunk = bytes(member.chunks[0])
    _, taken = value_map.read_section(chunk, bits)
    member.chunks = [chunk[:taken] + new + chunk[taken + len(new):]] + list(member.chunks[1:])
    return member


@pytest.mark.parametrize("share", [4, 8, 12, 14, 15])
@pytest.mark.parametrize("bits, channels", [(16, 1), (16, 2), (24, 2), (8, 3)])
@pytest.mark.parametrize("level", [1, 2])
def test_every_share_decodes_sample_exact(monkeypatch, share, bits, channels, level):
    monkeypatch.setattr(ols_audio, "SHARES", (share,))
    data = wav_file(noisy(3000, channels, bits), bits, rate=22050)
    blob = api.compress_bytes(data, "a.wav", NAME, level=level)
    _, [member] = container.loads(blob)
    assert member.params["coder"] == ols_audio.CODER == 5 and shares_of(member, bits) == bytes([share])
    [(_, restored)] = api.decompress_bytes(blob)
    assert restored == data


def test_a_pack_of_short_recordings_with_shares_decodes_exactly():
    items = [(read_media(wav_file(noisy(900 + 300 * i, 2, 16, seed=i), 16)), f"c{i}.wav") for i in range(5)]
    members = api.encode_members(items, NAME)
    assert members[0].params["pack"] == 5
    assert set(shares_of(members[0], 16)) - {0}  # some clip took a share of the logistic row
    restored = api.decompress_bytes(container.dumps(members))
    assert [np.array_equal(read_media(out).samples, media.samples) for (_, out), (media, _) in zip(restored, items)] \
        == [True] * 5


def test_a_changed_share_does_not_decode_to_the_original(monkeypatch):
    """The negative control of the share byte: the same chunk read with another share is another
    distribution, so the decoder does not come back with the recording (it fails its checksum or
    runs off its stream); an out-of-range share is refused before decoding, naming the share."""
    monkeypatch.setattr(ols_audio, "SHARES", (8,))
    data = wav_file(noisy(4000, 2, 16), 16)
    blob = api.compress_bytes(data, "a.wav", NAME)
    _, [member] = container.loads(blob)
    for other in (0, 4, 12):
        with pytest.raises(ContainerError):
            api.decompress_bytes(container.dumps([with_shares(member, 16, bytes([other]))]))
    p = member.params
    for hostile in (16, 255):
        bad = with_shares(member, 16, bytes([hostile]))
        with pytest.raises(ContainerError):
            api.decompress_bytes(container.dumps([bad]))
        with pytest.raises(ValueError, match="logistic share"):
            ols_audio.OlsCascadeCodec._chunk_state(ols_audio.config(p["level"], 44100, p["coder"]), bytes(bad.chunks[0]),
                                                   np.array([4000]), p["lane"], 2, 16,
                                                   ols_audio.coder_tables(ols_audio.nbk_of(16)))
    assert api.decompress_bytes(container.dumps([with_shares(member, 16, bytes([8]))]))[0][1] == data


@pytest.mark.parametrize("level", [1, 2])
def test_the_encoders_cost_figures_are_the_replays_bits(monkeypatch, level):
    """share_costs (what the encoder chooses by) says what each share adds to the exact model's bits,
    as the replay that codes the chunk counts them."""
    x = noisy(6000, 2, 16)
    signal = Signal("audio", x.shape, 16, 44100)
    cfg = ols_audio.config(level, 44100)
    st = kern.LaneState(cfg, lengths=np.array([len(x)]), nch=2, bits=16, **ols_audio.coder_tables(ols_audio.nbk_of(16)))
    st.load(x)
    sym = np.zeros((1, 2, len(x)), np.uint8)
    cls = np.zeros((1, 2, kern.NCTX, len(x)), np.uint8)
    kern.model_lanes(st, sym, cls)
    candidates = (0, 4, 8, 12, 15)
    costs = kern.share_costs(st, sym, cls, candidates)[0]
    bits = {}
    for a in candidates:
        monkeypatch.setattr(ols_audio, "SHARES", (a,))
        bits[a] = ols_audio.OlsCascadeCodec(level).likelihood(x, signal)[1]
    for a in candidates[1:]:
        assert bits[a] - bits[0] == pytest.approx(costs[candidates.index(a)] - costs[0], abs=1e-6 * bits[0])
    assert len(set(np.round(costs, 3))) == len(candidates)  # the share changes the figure


def test_the_encoder_picks_the_cheapest_share_per_lane(monkeypatch):
    x = noisy(8000, 1, 24)
    signal = Signal("audio", x.shape, 24, 44100)
    single = {}
    for a in ols_audio.SHARES:
        monkeypatch.setattr(ols_audio, "SHARES", (a,))
        single[a] = ols_audio.OlsCascadeCodec(1).likelihood(x, signal)[1]
    monkeypatch.undo()
    chosen = ols_audio.OlsCascadeCodec(1).likelihood(x, signal)[1]
    assert chosen == pytest.approx(min(single.values()), rel=1e-12)
    assert min(single, key=single.get) > 0 and chosen < single[0]  # logistic noise: the row pays


def test_kernel_refuses_shares_and_rows_out_of_range():
    nbk = ols_audio.nbk_of(16)
    tables = ols_audio.coder_tables(nbk)
    st = kern.LaneState(ols_audio.config(1, 44100), lengths=np.array([10, 5]), nch=1, bits=16, **tables)
    for bad in ([16, 0], [-1, 0], [1], [1, 2, 3]):
        with pytest.raises(ValueError, match="shares"):
            st.set_shares(np.array(bad))
    st.set_shares([15, 0])
    assert list(st.shares) == [15, 0]
    plain = kern.LaneState(ols_audio.config(1, 44100, 4), lengths=np.array([10]), nch=1, bits=16, **tables)
    with pytest.raises(ValueError, match="shares"):
        plain.set_shares([4])  # version 4 has no logistic row
    for rows in (None, tables["logistic"][:, :-1], tables["logistic"] * 0.5, tables["logistic"] * 4):
        with pytest.raises(ValueError, match="logistic rows"):
            kern.LaneState(ols_audio.config(1, 44100), lengths=np.array([10]), nch=1, bits=16,
                           prior=tables["prior"], logistic=rows)


def test_the_slow_tables_class_follows_from_the_fine_class():
    """The encoder records the fine class alone and derives the slow table's class from it: the same
    class as from the running mean itself, for every mean the model reaches (at most 16 x 2^24).
    The negative control: past 2^29 the fine class is capped and the derivation would be wrong."""
    assert kern.coarse_class_mismatch(16 << 24) == -1
    assert kern.coarse_class_mismatch(1 << 31) == 1 << 29


# sha256 of logistic_rows(nbk) as float64 bytes: a machine that builds other rows would decode
# other samples, so the build is pinned here (regenerate only when the rows change on purpose)
ROWS_SHA256 = {16: "720d29e40b11cf2294ffa76427aa13997942b69085febe19f58b5e3833957485",
               24: "ead4b46f872dd4f0608c4b822b2f5ccdfce84c40adac3fdfb9adde381168c38b"}


@pytest.mark.parametrize("bits", [16, 24])
def test_logistic_rows_are_the_recorded_ones(bits):
    rows = ols_audio.logistic_rows(ols_audio.nbk_of(bits))
    assert hashlib.sha256(rows.tobytes()).hexdigest() == ROWS_SHA256[bits]
    assert (rows >= 1).all() and (rows == np.floor(rows)).all()
    sums = rows.sum(axis=1)
    assert sums.max() <= (1 << 19) + rows.shape[1] and sums[:100].min() >= (1 << 19) - rows.shape[1]


def test_the_correctly_rounded_cdf_is_the_logistic():
    """The decimal-built table agrees with the float one the learned image models ship to within one
    unit in 2^24 (so it is the logistic), and is symmetric exactly."""
    exact = logistic.correctly_rounded_cdf()
    floats = logistic.tables()["lut.cdf"]
    assert exact.shape == floats.shape and np.abs(exact - floats).max() <= 1
    assert np.array_equal(exact + exact[::-1], np.full_like(exact, logistic.CDF_ONE))
