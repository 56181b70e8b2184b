"""Audio roundtrips: every sample format and container, odd lengths and channel counts."""

import numpy as np
import pytest

from media_factory import sf_file, tone, wav_file
from neuralzip import api
from neuralzip.errors import InputError
from neuralzip.media.detect import read_media


def roundtrip(data: bytes, model: str) -> bytes:
    [(_, restored)] = api.decompress_bytes(api.compress_bytes(data, "a", model))
    return restored


def assert_same_audio(original: bytes, restored: bytes):
    a, b = read_media(original), read_media(restored)
    assert a.bits == b.bits and a.samples.shape == b.samples.shape
    assert np.array_equal(a.samples, b.samples)
    assert a.meta["rate"] == b.meta["rate"]


@pytest.mark.parametrize("model", ["lpc-nlms-mlp", "classic", "histogram"])
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 8])
@pytest.mark.parametrize("frames", [1, 2, 5000])
def test_wav_roundtrip_is_byte_identical(model, bits, channels, frames):
    data = wav_file(tone(frames, channels, bits), bits)
    assert roundtrip(data, model) == data


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_silence_and_full_scale_noise(bits):
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    noise = rng.integers(lo, hi, (3000, 2), dtype=np.int64).astype(np.int32)
    noise[0] = [lo, hi - 1]
    for samples in (np.zeros((3000, 2), np.int32), noise):
        data = wav_file(samples, bits)
        assert roundtrip(data, "classic") == data


def test_wav_extra_chunks_and_partial_frame_survive_byte_identical():
    data = wav_file(tone(1001, 2, 16), 16, rate=22050, extra_chunk=b"INFOISFT\x05\x00\x00\x00test\x00",
                    odd_tail=b"\x01")
    assert roundtrip(data, "classic") == data


def test_24bit_with_always_zero_low_bits():
    samples = tone(6000, 2, 24) & ~0xFF  # 16-bit content in a 24-bit file
    data = wav_file(samples, 24)
    assert roundtrip(data, "classic") == data


def test_near_mono_and_anti_phase_stereo():
    x = tone(9000, 1, 16)
    for pair in (np.hstack([x, x]), np.hstack([x, -x]), np.hstack([x, x // 2 + 1])):
        data = wav_file(pair.astype(np.int32), 16)
        assert roundtrip(data, "classic") == data


@pytest.mark.parametrize("fmt", ["FLAC", "AIFF"])
@pytest.mark.parametrize("bits", [8, 16, 24])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_flac_and_aiff_roundtrip(fmt, bits, channels):
    data = sf_file(tone(4000, channels, bits), bits, fmt, rate=8000)
    assert_same_audio(data, roundtrip(data, "classic"))


def test_aiff_32bit_and_flac_tags():
    data = sf_file(tone(3000, 2, 32), 32, "AIFF")
    assert_same_audio(data, roundtrip(data, "classic"))
    import io

    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", 44100, 1, format="FLAC", subtype="PCM_16") as f:
        f.title = "a title"
        f.write(tone(500, 1, 16).astype(np.int16))
    with sf.SoundFile(io.BytesIO(roundtrip(buf.getvalue(), "classic"))) as f:
        assert f.title == "a title"


def test_long_recording_spans_several_chunks(monkeypatch):
    from neuralzip.models import classic_audio

    monkeypatch.setattr(classic_audio, "CHUNK_FRAMES", 8192)
    data = wav_file(tone(30000, 2, 16), 16)
    assert roundtrip(data, "classic") == data


def test_float_wav_is_refused():
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros((10, 1), np.float32), 8000, format="WAV", subtype="FLOAT")
    with pytest.raises(InputError, match="floating-point"):
        read_media(buf.getvalue())


def test_truncated_wav_header_is_refused():
    with pytest.raises(InputError):
        read_media(wav_file(tone(100, 1, 16), 16)[:30])


def test_audio_array_api():
    x = tone(777, 3, 24)
    assert np.array_equal(api.decompress_array(api.compress_array(x, "audio", bits=24, rate=48000)), x)
