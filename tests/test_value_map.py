"""ols-cascade's value maps: a recording that uses only some values codes rank differences among
them, exactly, and pays for the map only where it saves more than it costs."""

import zlib

import numpy as np
import pytest

from media_factory import sparse_tone, tone, wav_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.models import ols_audio, value_map


def _member(data: bytes, level: int = 1):
    blob = api.compress_bytes(data, "a.wav", "ols-cascade", level=level)
    _, [m] = container.loads(blob)
    return blob, m


@pytest.mark.parametrize("level", [1, 2])
def test_sparse_recording_is_mapped_and_exact(level):
    data = wav_file(sparse_tone(12000, 2, 16), 16, 44100)
    blob, m = _member(data, level)
    assert m.params["coder"] == ols_audio.CODER and m.chunks[0][0] == 1  # the chunk carries a map
    assert api.decompress_bytes(blob) == [("a.wav", data)]


def test_map_makes_a_sparse_recording_smaller(monkeypatch):
    """Negative control: the same recording without a map codes larger, and still exactly."""
    data = wav_file(sparse_tone(12000, 2, 16), 16, 44100)
    mapped, _ = _member(data)
    monkeypatch.setattr(value_map, "worth_mapping", lambda *a: False)
    plain, m = _member(data)
    assert m.chunks[0][0] == 0
    assert api.decompress_bytes(plain) == [("a.wav", data)]
    assert len(mapped) < 0.97 * len(plain)


def test_dense_recording_has_no_map():
    data = wav_file(tone(12000, 2, 16), 16, 44100)
    _, m = _member(data)
    assert m.chunks[0][0] == 0


def test_24_bit_recordings_are_never_mapped():
    data = wav_file(sparse_tone(6000, 1, 24), 24, 48000)
    blob, m = _member(data)
    assert m.chunks[0][0] == 0 and api.decompress_bytes(blob) == [("a.wav", data)]


def test_pack_unpack_roundtrip_and_refusals():
    used = np.array([-32768, -5, 0, 3, 32767], np.int32)
    packed = value_map.pack(used, 16)
    assert np.array_equal(value_map.unpack(packed, 16), used)
    for bad in (b"", b"garbage", packed[:-1], packed + b"x", value_map.pack(used[:1], 16)[:3]):
        with pytest.raises(ValueError):
            value_map.unpack(bad, 16)
    with pytest.raises(ValueError):  # a well-formed bitmap with nothing set
        value_map.unpack(zlib.compress(bytes(32)), 8)
    with pytest.raises(ValueError):
        value_map.unpack(packed, 24)


def test_kernel_refuses_bad_maps():
    cfg = ols_audio.config(1, 44100)
    kern = ols_audio.kern  # the build the model uses
    st = kern.LaneState(cfg, lengths=np.array([10]), nch=1, bits=16, **ols_audio.coder_tables(ols_audio.nbk_of(16)))
    for bad in ([], [3, 1], [1, 1], [-40000, 0], [0, 40000]):
        with pytest.raises(ValueError):
            st.set_value_map(np.array(bad, np.int64))
    st24 = kern.LaneState(cfg, lengths=np.array([10]), nch=1, bits=24, **ols_audio.coder_tables(ols_audio.nbk_of(24)))
    with pytest.raises(ValueError):
        st24.set_value_map(np.array([0, 1]))


def _rewrite_chunk(blob: bytes, chunk: bytes) -> bytes:
    _, [m] = container.loads(blob)
    m.chunks = [chunk]
    return container.dumps([m])


def test_damaged_map_is_refused_cleanly():
    """A map that lost a used value, or one cut short, is one ContainerError, never a wrong file."""
    data = wav_file(sparse_tone(12000, 2, 16), 16, 44100)
    blob, m = _member(data)
    chunk = m.chunks[0]
    n = int.from_bytes(chunk[1:5], "little")
    used = value_map.unpack(chunk[5:5 + n], 16)
    fewer = value_map.pack(np.delete(used, len(used) // 2), 16)
    damaged = chunk[:1] + len(fewer).to_bytes(4, "little") + fewer + chunk[5 + n:]
    for bad in (damaged, chunk[:3], b"\x02" + chunk[1:]):
        with pytest.raises(ContainerError):
            api.decompress_bytes(_rewrite_chunk(blob, bad))
