"""neuralzip.open: random access, len, iteration, pickling; no torch."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import neuralzip
from media_factory import image_file, tone, wav_file
from neuralzip import api, container


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    src = d / "set"
    src.mkdir()
    (src / "a.png").write_bytes(image_file("png", "L", 6, 5))
    (src / "b.wav").write_bytes(wav_file(tone(300, 2, 16), 16, 8000))
    (src / "c.txt").write_text("label\n")
    nz = d / "set.nz"
    api.compress_paths([src], nz, "histogram", jobs=1)
    return nz, src


def test_random_access_len_and_iteration(archive_path):
    nz, src = archive_path
    with neuralzip.open(nz) as ds:
        assert len(ds) == 3 and ds.names == ["a.png", "b.wav", "c.txt"] and "b.wav" in ds
        b = ds["b.wav"]
        want = api.read_media((src / "b.wav").read_bytes())
        assert b.kind == "audio" and b.rate == 8000 and b.bits == 16 and np.array_equal(b.array, want.samples)
        assert b.file_bytes() == (src / "b.wav").read_bytes()
        assert ds[-1].array.tobytes() == b"label\n" and ds[-1].kind == "file"
        assert [s.name for s in ds] == ds.names
        assert ds[0].array.shape == (6, 5, 1)
        with pytest.raises(KeyError):
            ds["nope"]
        with pytest.raises(IndexError):
            ds[3]


def test_pickles_as_its_path_and_reopens(archive_path):
    nz, _ = archive_path
    ds = neuralzip.open(nz)
    again = pickle.loads(pickle.dumps(ds))
    assert len(pickle.dumps(ds)) < 500  # the path and options, not the table or any sample
    assert np.array_equal(again["a.png"].array, ds["a.png"].array)
    ds.close()


def test_version_1_archives_open_too(archive_path):
    nz, src = archive_path
    members = api.encode_members([(api.read_media((src / "b.wav").read_bytes()), "b.wav")], "histogram")
    v1 = nz.with_name("v1.nz")
    v1.write_bytes(container.dumps_v1(members, archive=True))
    ds = neuralzip.open(v1)
    assert ds.names == ["b.wav"] and ds[0].array.shape == (300, 2)


def test_opening_imports_neither_torch_nor_the_models(archive_path):
    nz, _ = archive_path
    code = ("import sys, neuralzip; ds = neuralzip.open(sys.argv[1]); len(ds); "
            "print('torch' in sys.modules, 'neuralzip.models' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(nz)], capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"], r.stderr
