"""Datasets: folders with every kind of file, ls, extracting some members, --jobs, stdin/stdout."""

import os
import subprocess
import sys

import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import api, streaming
from neuralzip.errors import ContainerError, InputError


FAST = ("--model", "histogram")  # the archive is the point here, not the model


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "set"
    (d / "deep").mkdir(parents=True)
    (d / "a.png").write_bytes(image_file("png", "RGB", 11, 9))
    (d / "deep" / "b.wav").write_bytes(wav_file(tone(700, 2, 16), 16, 8000))
    (d / "deep" / "c.wav").write_bytes(wav_file(tone(500, 1, 16, seed=3), 16, 8000))
    (d / "labels.csv").write_text("a.png,cat\n" * 30)
    (d / "empty").write_bytes(b"")
    os.chmod(d / "labels.csv", 0o640)
    os.utime(d / "labels.csv", (1_500_000_000, 1_500_000_000))
    os.chmod(d / "deep" / "c.wav", 0o755)
    return d


def _same_tree(a, b):
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        x, y = a / rel, b / rel
        if rel.suffix == ".png":  # PNG: the same pixels and metadata, not necessarily the same deflate
            assert api.read_media(x.read_bytes()).samples.tobytes() == api.read_media(y.read_bytes()).samples.tobytes()
        else:
            assert x.read_bytes() == y.read_bytes(), rel
        assert x.stat().st_mode & 0o7777 == y.stat().st_mode & 0o7777, rel
        assert int(x.stat().st_mtime) == int(y.stat().st_mtime), rel


def test_folder_round_trip_with_other_files_times_and_modes(run_cli, folder, tmp_path):
    nz = tmp_path / "set.nz"
    r = run_cli("compress", folder, "-o", nz, "--jobs", "1", "-q", *FAST)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    r = run_cli("decompress", nz, "-o", out, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    _same_tree(folder, out)


def test_jobs_give_the_same_bytes(run_cli, folder, tmp_path):
    blobs = []
    for jobs in ("1", "2", "0"):
        nz = tmp_path / f"j{jobs}.nz"
        assert run_cli("compress", folder, "-o", nz, "--jobs", jobs, "-q", *FAST).returncode == 0
        blobs.append(nz.read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]


def test_ls_lists_from_the_table(run_cli, folder, tmp_path):
    nz = tmp_path / "set.nz"
    assert run_cli("compress", folder, "-o", nz, "-q", "--jobs", "1", *FAST).returncode == 0
    r = run_cli("ls", nz)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["a.png", "deep/b.wav", "deep/c.wav", "empty", "labels.csv"]
    assert lines[1].split()[1:3] == ["audio", "700x2"] and lines[4].split()[1:3] == ["file", "300"]
    entries = api.list_archive(nz)
    assert sum(e.bytes for e in entries) < nz.stat().st_size and entries[0].dims == 11 * 9 * 3
    r = run_cli("ls", folder / "labels.csv")
    assert r.returncode == 1 and "not a neuralzip file" in r.stderr


def test_members_by_name_and_glob_and_to_stdout(run_cli, folder, tmp_path):
    nz = tmp_path / "set.nz"
    assert run_cli("compress", folder, "-o", nz, "-q", "--jobs", "1", *FAST).returncode == 0
    out = tmp_path / "some"
    r = run_cli("decompress", nz, "-o", out, "--member", "deep/*.wav", "--member", "labels.csv")
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["deep/b.wav", "deep/c.wav", "labels.csv"]
    r = subprocess.run([sys.executable, "-m", "neuralzip", "decompress", str(nz), "--member", "deep/b.wav", "-o", "-"],
                       capture_output=True)
    assert r.returncode == 0 and r.stdout == (folder / "deep" / "b.wav").read_bytes()
    r = run_cli("decompress", nz, "-o", "-")
    assert r.returncode == 2 and "one member" in r.stderr
    r = run_cli("decompress", nz, "-o", tmp_path / "none", "--member", "nope*")
    assert r.returncode == 2 and "no member" in r.stderr and not (tmp_path / "none").exists()
    assert api.extract_member(nz, "labels.csv") == (folder / "labels.csv").read_bytes()


def test_extraction_is_all_or_nothing(run_cli, folder, tmp_path):
    """A damaged member late in the archive: nothing is left, neither files nor temporaries nor folders."""
    nz = tmp_path / "set.nz"
    assert run_cli("compress", folder, "-o", nz, "-q", "--jobs", "1", *FAST).returncode == 0
    f, table = streaming.open_table(nz)
    f.close()
    i = table.names.index("deep/c.wav")
    blob = bytearray(nz.read_bytes())
    blob[int(table.offset[i] + table.size[i]) - 10] ^= 0x20  # in its payload
    nz.write_bytes(bytes(blob))
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        r = run_cli("decompress", nz, "-o", out, "--jobs", jobs)
        assert r.returncode == 1 and "corrupt payload in member 'deep/c.wav'" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert not out.exists()
    out = tmp_path / "one"
    assert run_cli("decompress", nz, "-o", out, "--member", "deep/b.wav").returncode == 0  # its group is intact
    assert (out / "deep" / "b.wav").read_bytes() == (folder / "deep" / "b.wav").read_bytes()


def test_stdin_and_stdout(folder, tmp_path):
    wav = (folder / "deep" / "b.wav").read_bytes()
    cmd = [sys.executable, "-m", "neuralzip"]
    r = subprocess.run(cmd + ["compress", "-", "--name", "x.wav", "--json", *FAST], input=wav, capture_output=True)
    assert r.returncode == 0, r.stderr
    blob = r.stdout
    assert blob[:5] == b"\x89NZIP" and b'"file": "x.wav"' in r.stderr  # the report goes to stderr
    r = subprocess.run(cmd + ["decompress", "-"], input=blob, capture_output=True)
    assert r.returncode == 0 and r.stdout == wav
    assert api.decompress_bytes(blob) == [("x.wav", wav)]
    # an archive through a pipe, front to back, into a folder
    nz = tmp_path / "set.nz"
    api.compress_paths([folder], nz, "histogram", jobs=1)
    out = tmp_path / "piped"
    r = subprocess.run(cmd + ["decompress", "-", "-o", str(out)], input=nz.read_bytes(), capture_output=True)
    assert r.returncode == 0, r.stderr
    _same_tree(folder, out)
    r = subprocess.run(cmd + ["decompress", "-"], input=nz.read_bytes(), capture_output=True)
    assert r.returncode == 2 and b"give -o DIR" in r.stderr and not r.stdout
    r = subprocess.run(cmd + ["decompress", "-", "-o", str(tmp_path / "cut")], input=nz.read_bytes()[:-40],
                       capture_output=True)
    assert r.returncode == 1 and b"truncated" in r.stderr and not (tmp_path / "cut").exists()


def test_api_for_archives(folder, tmp_path):
    nz = tmp_path / "set.nz"
    reports = api.compress_paths([folder], nz, "histogram", jobs=1)
    assert [r.file for r in reports] == ["a.png", "deep/b.wav", "deep/c.wav", "empty", "labels.csv"]
    with pytest.raises(InputError, match="already exists"):
        api.compress_paths([folder], nz)
    out = tmp_path / "x"
    written = api.decompress_file(nz, out, members=["deep/*"], jobs=1)
    assert [p.relative_to(out).as_posix() for p in written] == ["deep/b.wav", "deep/c.wav"]
    with pytest.raises(InputError, match="cannot read"):
        api.decompress_file(tmp_path / "missing.nz")
    with pytest.raises(ContainerError, match="not a neuralzip file"):
        api.list_archive(folder / "labels.csv")


def test_shard_sets_read_like_one_archive(run_cli, folder, tmp_path):
    import neuralzip

    shards = tmp_path / "shards"
    r = run_cli("compress", folder, "-o", shards, "--shard-size", "300", "--jobs", "2", "-q", *FAST)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in shards.iterdir())
    assert files[0] == "manifest.json" and len(files) >= 3  # several shards of about 300 bytes
    one = tmp_path / "one"
    assert run_cli("compress", folder, "-o", one, "--shard-size", "300", "--jobs", "1", "-q", *FAST).returncode == 0
    assert all((one / f).read_bytes() == (shards / f).read_bytes() for f in files)  # the same for any --jobs
    r = run_cli("ls", shards)
    assert [line.split()[0] for line in r.stdout.splitlines()] == \
        ["a.png", "deep/b.wav", "deep/c.wav", "empty", "labels.csv"]
    out = tmp_path / "out"
    assert run_cli("decompress", shards, "-o", out, "--jobs", "2").returncode == 0
    _same_tree(folder, out)
    r = run_cli("decompress", shards, "--member", "deep/c.wav", "-o", tmp_path / "c")
    assert r.returncode == 0 and (tmp_path / "c" / "deep" / "c.wav").read_bytes() == \
        (folder / "deep" / "c.wav").read_bytes()
    ds = neuralzip.open(shards)
    assert len(ds) == 5 and ds["labels.csv"].array.tobytes() == (folder / "labels.csv").read_bytes()
    r = run_cli("compress", folder, "-o", shards, "--shard-size", "300", "-q", *FAST)
    assert r.returncode == 2 and "already exists" in r.stderr
    (shards / files[1]).unlink()
    r = run_cli("decompress", shards, "-o", tmp_path / "broken")
    assert r.returncode == 1 and "missing" in r.stderr and not (tmp_path / "broken").exists()
    r = run_cli("compress", folder, "-o", tmp_path / "x", "--shard-size", "lots")
    assert r.returncode == 2 and "--shard-size" in r.stderr


def test_a_bad_file_in_a_folder_is_named_and_nothing_is_written(run_cli, folder, tmp_path):
    (folder / "deep" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 16)
    for jobs in ("1", "2"):
        r = run_cli("compress", folder, "-o", tmp_path / "set.nz", "--jobs", jobs, *FAST)
        assert r.returncode == 2 and "bad.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no archive, no temporary
