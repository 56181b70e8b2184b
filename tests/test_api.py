"""The Python API for files (bytes and arrays are covered by the roundtrip tests)."""

import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import api
from neuralzip.errors import ContainerError, InputError


def test_compress_file_and_decompress_file(tmp_path):
    src = tmp_path / "a.wav"
    original = wav_file(tone(1500, 2, 24), 24)
    src.write_bytes(original)
    nz = api.compress_file(src)
    assert nz == tmp_path / "a.wav.nz"
    with pytest.raises(InputError, match="already exists"):
        api.compress_file(src)
    src.unlink()
    assert api.decompress_file(nz) == [src]
    assert src.read_bytes() == original
    with pytest.raises(InputError, match="already exists"):
        api.decompress_file(nz)
    other = tmp_path / "sub" / "b.wav"
    assert api.decompress_file(nz, other) == [other] and other.read_bytes() == original


def test_decompress_file_refuses_damage(tmp_path):
    src = tmp_path / "p.ppm"
    src.write_bytes(image_file("ppm", "RGB", 5, 6))
    nz = api.compress_file(src, tmp_path / "p.nz", model="histogram")
    nz.write_bytes(nz.read_bytes()[:-3])
    with pytest.raises(ContainerError, match="truncated"):
        api.decompress_file(nz, tmp_path / "out.ppm")
    assert not (tmp_path / "out.ppm").exists()
