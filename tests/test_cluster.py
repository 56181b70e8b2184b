"""compress --scheduler: a Dask cluster started by the test writes the same shards as --shard-size here.
Skipped where Dask is not installed (it is an optional extra: pip install 'neuralzip[cluster]')."""

import os
import subprocess
import sys

import pytest

from media_factory import image_file, tone, wav_file

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                 worker_dashboard_address=None)
    yield c
    c.close()


def test_cluster_writes_the_same_shards_as_the_local_path(cluster, tmp_path):
    from neuralzip import api, cluster as nzcluster, shards

    src = tmp_path / "set"
    src.mkdir()
    for i in range(6):
        (src / f"p{i}.png").write_bytes(image_file("png", "RGB", 9 + i, 7))
        (src / f"s{i}.wav").write_bytes(wav_file(tone(300 + 50 * i, 1, 16, seed=i), 16, 8000))
    (src / "labels.csv").write_text("p0,cat\n" * 20)
    local = tmp_path / "local"
    shards.compress_sharded(api.archive_sources([src]), local, 2000, "histogram", jobs=1)
    remote = tmp_path / "remote"
    nzcluster.compress_on_cluster([src], remote, cluster.scheduler_address, 2000, "histogram")
    files = sorted(p.name for p in local.iterdir())
    assert len(files) > 2 and files == sorted(p.name for p in remote.iterdir())
    assert all((local / f).read_bytes() == (remote / f).read_bytes() for f in files)
    r = subprocess.run([sys.executable, "-m", "neuralzip", "compress", str(src), "-o", str(tmp_path / "cli"),
                        "--scheduler", cluster.scheduler_address, "--shard-size", "2000", "--model", "histogram",
                        "-q"], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert r.returncode == 0, r.stderr
    assert all((local / f).read_bytes() == (tmp_path / "cli" / f).read_bytes() for f in files)


def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_file(tone(100, 1, 16), 16))
    r = subprocess.run([sys.executable, "-m", "neuralzip", "compress", str(tmp_path / "a.wav"), "-o",
                        str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "Dask scheduler" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_large_image_and_a_long_recording_are_coded_chunk_by_chunk_on_a_worker(tmp_path, monkeypatch):
    """Workers in this process (threads), so that the lowered threshold and the counter reach them."""
    from neuralzip import api, chunked, cluster as nzcluster, shards, streaming

    monkeypatch.setattr(chunked, "STREAM_BYTES", 20_000)
    monkeypatch.setattr(streaming, "ALONE_BYTES", 20_000)  # the long recording is a group of its own
    calls = []
    encode_file = chunked.encode_file
    monkeypatch.setattr(chunked, "encode_file", lambda *a, **k: calls.append(a[1]) or encode_file(*a, **k))
    src = tmp_path / "set"
    src.mkdir()
    (src / "big.png").write_bytes(image_file("png", "RGB", 90, 40))
    (src / "long.wav").write_bytes(wav_file(tone(9000, 2, 16), 16, 8000))
    (src / "small.png").write_bytes(image_file("png", "L", 9, 7))
    local = tmp_path / "local"
    with monkeypatch.context() as m:
        m.setattr(chunked, "STREAM_BYTES", 1 << 62)  # the whole-member path here
        shards.compress_sharded(api.archive_sources([src]), local, 1 << 30, "auto", jobs=1)
    assert calls == []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  worker_dashboard_address=None) as c:
        nzcluster.compress_on_cluster([src], tmp_path / "remote", c.scheduler_address, 1 << 30)
    assert sorted(calls) == ["big.png", "long.wav"]
    files = sorted(p.name for p in local.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "remote").iterdir())
    assert all((local / f).read_bytes() == (tmp_path / "remote" / f).read_bytes() for f in files)
