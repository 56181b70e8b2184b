"""Damaged containers: every failure is exit 1, one line, and no output file."""

import struct

import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import FORMAT_VERSION, api, container
from neuralzip.errors import ContainerError


@pytest.fixture
def nz(tmp_path):
    src = tmp_path / "img.png"
    src.write_bytes(image_file("png", "RGB", 30, 40))
    blob = api.compress_bytes(src.read_bytes(), "img.png")
    src.unlink()
    return tmp_path, blob


def _decompress_fails(run_cli, tmp_path, blob, message):
    path = tmp_path / "img.png.nz"
    path.write_bytes(blob)
    r = run_cli("decompress", path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "img.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["img.png.nz"]  # no temporary left either


def test_bad_magic(run_cli, nz):
    tmp, blob = nz
    _decompress_fails(run_cli, tmp, b"XX" + blob[2:], "not a neuralzip file")


def test_unknown_version(run_cli, nz):
    tmp, blob = nz
    bad = blob[:8] + struct.pack("<H", FORMAT_VERSION + 1) + blob[10:]
    _decompress_fails(run_cli, tmp, bad, "unknown container format version")


def test_corrupt_header(run_cli, nz):
    tmp, blob = nz
    bad = bytearray(blob)
    bad[20] ^= 0x40
    _decompress_fails(run_cli, tmp, bytes(bad), "corrupt container header")


def test_corrupt_payload(run_cli, nz):
    tmp, blob = nz
    bad = bytearray(blob)
    bad[len(blob) // 2 + 200] ^= 0x01
    _decompress_fails(run_cli, tmp, bytes(bad), "corrupt payload")


@pytest.mark.parametrize("cut", [5, 12, 40, 300, -1])
def test_truncated(run_cli, nz, cut):
    tmp, blob = nz
    _decompress_fails(run_cli, tmp, blob[:cut], "not a neuralzip" if 0 < cut <= 5 else "truncated")


def test_trailing_garbage(run_cli, nz):
    tmp, blob = nz
    _decompress_fails(run_cli, tmp, blob + b"junk", "trailing bytes")


def _rewrite_member(blob: bytes, edit) -> bytes:
    _, members = container.loads(blob)
    edit(members[0])
    return container.dumps(members)


def test_checksum_mismatch_is_caught(run_cli, nz):
    """A consistent container (valid CRCs) whose content checksum does not match."""
    tmp, blob = nz

    def edit(m):
        m.sha256 = "0" * 64

    _decompress_fails(run_cli, tmp, _rewrite_member(blob, edit), "checksum mismatch")


def test_payload_that_decodes_to_something_else(run_cli, nz):
    """Valid CRCs, but the coded stream was altered: the checksum catches it."""
    tmp, blob = nz

    def edit(m):
        c = bytearray(m.chunks[0])
        c[100] ^= 0x10
        m.chunks[0] = bytes(c)

    _decompress_fails(run_cli, tmp, _rewrite_member(blob, edit), "member 'img.png'")


def test_unknown_model_and_missing_weights(run_cli, nz):
    tmp, blob = nz

    def model(m):
        m.model = "from-the-future"

    _decompress_fails(run_cli, tmp, _rewrite_member(blob, model), "unknown to this neuralzip")

    def weights(m):
        m.weights = "deadbeef"

    _decompress_fails(run_cli, tmp, _rewrite_member(blob, weights), "weights")


def test_archive_is_all_or_nothing(run_cli, tmp_path):
    good = api.encode_media(api.read_media(wav_file(tone(100, 1, 16), 16)), "a.wav")
    bad = api.encode_media(api.read_media(wav_file(tone(100, 1, 16, seed=9), 16)), "b.wav")
    bad.sha256 = "1" * 64
    nz = tmp_path / "set.nz"
    nz.write_bytes(container.dumps([good, bad], archive=True))
    r = run_cli("decompress", nz, "-o", tmp_path / "out")
    assert r.returncode == 1
    assert not (tmp_path / "out" / "a.wav").exists()


def test_loads_rejects_directly():
    with pytest.raises(ContainerError):
        container.loads(b"")
