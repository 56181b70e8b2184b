"""The command line through its real entry point: outputs, archives, errors, exit codes."""

import json
import shutil

import numpy as np
import pytest

from media_factory import image_file, tone, wav_file
from neuralzip.media.detect import read_media

FIELDS = {"file", "kind", "dims", "model", "weights", "nll_float_bits", "nll_bits", "nll_bpd", "bytes", "bpd",
          "overhead_pct", "seconds"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "photo.png").write_bytes(image_file("png", "RGB", 24, 33))
    (tmp_path / "gray.pgm").write_bytes(image_file("ppm", "L", 17, 5))
    (tmp_path / "clip.wav").write_bytes(wav_file(tone(3000, 2, 16), 16))
    return tmp_path


def test_compress_decompress_single_file(run_cli, files):
    src = files / "photo.png"
    r = run_cli("compress", src, "--json", "--compare", "--verify")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip())
    assert FIELDS <= rep.keys() and rep["kind"] == "image" and rep["dims"] == 24 * 33 * 3
    nz = files / "photo.png.nz"
    assert rep["bytes"] == nz.stat().st_size
    assert rep["bpd"] == pytest.approx(8 * rep["bytes"] / rep["dims"], rel=1e-5)
    assert rep["overhead_pct"] == pytest.approx(100 * (8 * rep["bytes"] / rep["nll_bits"] - 1), abs=1e-3)
    assert rep["peers"]["png"]["bytes"] > 0
    original = src.read_bytes()
    src.unlink()
    r = run_cli("decompress", nz)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(read_media(src.read_bytes()).samples, read_media(original).samples)


def test_table_report_and_audio_compare(run_cli, files):
    r = run_cli("compress", files / "clip.wav", "--compare")
    assert r.returncode == 0, r.stderr
    assert "flac bpd" in r.stdout and "clip.wav" in r.stdout and "achieved" in r.stdout


def test_quiet_prints_nothing(run_cli, files):
    r = run_cli("compress", "-q", files / "gray.pgm")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""


def test_several_inputs_without_o_give_one_nz_each(run_cli, files):
    r = run_cli("compress", "-q", files / "photo.png", files / "clip.wav")
    assert r.returncode == 0, r.stderr
    assert (files / "photo.png.nz").exists() and (files / "clip.wav.nz").exists()


def test_refuses_to_overwrite_without_force(run_cli, files):
    assert run_cli("compress", "-q", files / "gray.pgm").returncode == 0
    before = (files / "gray.pgm.nz").read_bytes()
    r = run_cli("compress", files / "gray.pgm")
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    assert (files / "gray.pgm.nz").read_bytes() == before
    r = run_cli("decompress", files / "gray.pgm.nz")
    assert r.returncode == 2 and "already exists" in r.stderr
    assert run_cli("decompress", "--force", files / "gray.pgm.nz").returncode == 0


def test_archive_of_several_files_and_a_directory(run_cli, files, tmp_path):
    sub = files / "set" / "deep"
    sub.mkdir(parents=True)
    shutil.copy(files / "photo.png", sub / "p.png")
    shutil.copy(files / "clip.wav", files / "set" / "c.wav")
    (files / "set" / "notes.txt").write_text("not media")
    r = run_cli("compress", files / "set", "-o", tmp_path / "set.nz", "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 3  # one JSON line per member, notes.txt included (LZMA)
    out = tmp_path / "restored"
    r = run_cli("decompress", tmp_path / "set.nz", "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "deep" / "p.png").exists()
    assert (out / "notes.txt").read_text() == "not media"
    assert (out / "c.wav").read_bytes() == (files / "set" / "c.wav").read_bytes()
    r = run_cli("compress", "-q", files / "photo.png", files / "gray.pgm", "-o", tmp_path / "two.nz")
    assert r.returncode == 0
    r = run_cli("decompress", tmp_path / "two.nz", "-o", tmp_path / "two")
    assert r.returncode == 0
    assert (tmp_path / "two" / "gray.pgm").read_bytes() == (files / "gray.pgm").read_bytes()


def test_directory_without_o_becomes_dir_nz(run_cli, files):
    d = files / "album"
    d.mkdir()
    shutil.copy(files / "gray.pgm", d / "g.pgm")
    assert run_cli("compress", "-q", d).returncode == 0
    assert (files / "album.nz").exists()


def test_unsafe_member_names_are_refused(run_cli, files, tmp_path):
    from neuralzip import api, container

    for bad in ("../evil.pgm", "/abs/evil.pgm", "a/../../evil.pgm"):
        member = api.encode_media(read_media((files / "gray.pgm").read_bytes()), bad)
        nz = tmp_path / "bad.nz"
        nz.write_bytes(container.dumps([member], archive=True))
        out = tmp_path / "x"
        r = run_cli("decompress", nz, "-o", out)
        assert r.returncode == 1 and "unsafe member name" in r.stderr
        assert not out.exists() and not (tmp_path / "evil.pgm").exists()


@pytest.mark.parametrize("content,message", [
    (b"hello world, not an image\n", "unsupported file type"),
    (wav_file(tone(10, 1, 16), 16)[:20], "WAV"),
])
def test_unsupported_input_exit_2_and_no_output(run_cli, tmp_path, content, message):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(content)
    r = run_cli("compress", bad)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.bin.nz").exists()


def test_usage_errors_exit_2(run_cli, files):
    assert run_cli("compress", files / "missing.png").returncode == 2
    r = run_cli("compress", files / "photo.png", "--model", "nosuchmodel")
    assert r.returncode == 2 and "nosuchmodel" in r.stderr
    assert run_cli("compress").returncode == 2


def test_info_and_models(run_cli, files):
    assert run_cli("compress", "-q", files / "photo.png").returncode == 0
    r = run_cli("info", files / "photo.png.nz")
    assert r.returncode == 0 and "photo.png" in r.stdout and "classic" in r.stdout
    r = run_cli("models")
    assert r.returncode == 0 and "histogram" in r.stdout and "classic" in r.stdout


def test_python_dash_m_works(files):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "neuralzip", "models"], capture_output=True, text=True)
    assert r.returncode == 0 and "classic" in r.stdout
