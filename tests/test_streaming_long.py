"""Long recordings coded and restored chunk by chunk (neuralzip/chunked.py), tested on short ones:
the threshold is lowered so that every recording here takes that path, and ols-cascade's chunks
hold one lane each, so a recording of three lanes is three chunks (a pair decoded in two processes,
then one alone). The .nz must be byte for byte the one the whole-member path writes."""

import io
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import count_chunked_calls, whole_member_path
from media_factory import sf_file, tone, wav_file
from neuralzip import api, archive, chunked, streaming
from neuralzip.errors import ContainerError
from neuralzip.models import ols_audio

FRAMES = 3 * 32768 - 999  # three lanes of ols-cascade (at least 2^15 frames, or 6 s): three chunks
RATE = 4000  # 6 s are fewer than 2^15 frames


@pytest.fixture
def long_path(monkeypatch):
    """Every recording takes the chunked path; -> the calls made to it (encode, decode)."""
    monkeypatch.setattr(chunked, "STREAM_BYTES", 1000)
    monkeypatch.setattr(ols_audio, "CHUNK_LANES", 1)
    return count_chunked_calls(monkeypatch)


def _recordings():
    x16, x24 = tone(FRAMES, 2, 16), tone(FRAMES, 2, 24, seed=5)
    return {
        "s16.wav": wav_file(x16, 16, RATE, extra_chunk=b"INFOISFT\x04\x00\x00\x00test", odd_tail=b"\x07"),
        "s24.wav": wav_file(x24, 24, RATE),
        "s16.flac": sf_file(x16, 16, "FLAC", RATE),
        "m24.aiff": sf_file(x24[:, :1], 24, "AIFF", RATE),
    }


RECORDINGS = _recordings()


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_chunked_path_writes_the_same_bytes_and_restores_exactly(name, tmp_path, monkeypatch, long_path):
    src = tmp_path / name
    src.write_bytes(RECORDINGS[name])
    whole = whole_member_path(monkeypatch, lambda: api.compress_file(src, tmp_path / "whole.nz"))
    assert long_path["encode"] == 0
    chunky = api.compress_file(src, tmp_path / "chunked.nz")
    assert long_path["encode"] == 1
    assert chunky.read_bytes() == whole.read_bytes()
    [(_, params)] = [(m.name, m.params) for m in api.container.loads(chunky.read_bytes())[1]]
    assert params["lanes"] == 1 and -(-FRAMES // params["lane"]) == 3
    out = tmp_path / "out" / name
    api.decompress_file(chunky, out)
    assert long_path["decode"] == 1
    restored = out.read_bytes()
    expected = whole_member_path(monkeypatch, lambda: dict(api.decompress_bytes(chunky.read_bytes()))[name])
    assert long_path["decode"] == 1
    assert restored == expected  # the same file as the whole-member path restores
    if name.endswith(".wav"):
        assert restored == RECORDINGS[name]
    else:  # FLAC and AIFF: the same samples, rate and format
        a, ra = sf.read(io.BytesIO(RECORDINGS[name]), dtype="int32")
        b, rb = sf.read(io.BytesIO(restored), dtype="int32")
        assert ra == rb and np.array_equal(a, b)


def test_without_a_second_process_too(tmp_path, monkeypatch, long_path):
    monkeypatch.setattr(ols_audio, "CHUNKS_AT_ONCE", 1)
    src = tmp_path / "s16.wav"
    src.write_bytes(RECORDINGS["s16.wav"])
    nz = api.compress_file(src, tmp_path / "a.nz")
    api.decompress_file(nz, tmp_path / "out.wav")
    assert (tmp_path / "out.wav").read_bytes() == RECORDINGS["s16.wav"] and long_path == {"encode": 1, "decode": 1}


def test_a_long_recording_is_a_group_of_its_own(monkeypatch):
    kinds = ["image"] * 4
    assert streaming.plan_groups(kinds, [10] * 4, "vae", None, 1) == [[0, 1, 2, 3]]
    assert streaming.plan_groups(kinds, [10] * 4, "vae", None, 1, [False, True, False, False]) == [[0], [1], [2, 3]]


def test_archive_with_a_long_recording_is_the_same_and_comes_back(tmp_path, monkeypatch, long_path):
    monkeypatch.setattr(chunked, "STREAM_BYTES", 200_000)  # the long one only
    monkeypatch.setattr(streaming, "ALONE_BYTES", 200_000)  # in both runs: the same groups
    d = tmp_path / "set"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "long.wav").write_bytes(RECORDINGS["s16.wav"])
    (d / "notes.txt").write_text("labels\n")
    (d / "short.flac").write_bytes(sf_file(tone(3000, 2, 16), 16, "FLAC", RATE))
    whole = whole_member_path(monkeypatch, lambda: (api.compress_paths([d], tmp_path / "whole.nz", jobs=1), tmp_path / "whole.nz")[1])
    api.compress_paths([d], tmp_path / "chunked.nz", jobs=1, verify=True)
    assert long_path["encode"] == 1 and long_path["decode"] == 1  # --verify decodes from the spool
    assert (tmp_path / "chunked.nz").read_bytes() == whole.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no spool or part file left
    api.decompress_file(tmp_path / "chunked.nz", tmp_path / "out", jobs=1)
    for p in ("sub/long.wav", "notes.txt"):
        assert (tmp_path / "out" / p).read_bytes() == (d / p).read_bytes()
    assert sf.read(tmp_path / "out" / "short.flac")[0].shape == (3000, 2)
    assert long_path["decode"] == 2
    # one member, to a stream and as bytes
    buf = io.BytesIO()
    streaming.extract(tmp_path / "chunked.nz", None, ["sub/long.wav"], to_stream=buf)
    assert buf.getvalue() == RECORDINGS["s16.wav"]
    assert api.extract_member(tmp_path / "chunked.nz", "sub/long.wav") == RECORDINGS["s16.wav"]
    # front to back, as from a pipe
    with open(tmp_path / "chunked.nz", "rb") as f:
        streaming.extract_stream(f, tmp_path / "piped")
    assert (tmp_path / "piped" / "sub" / "long.wav").read_bytes() == RECORDINGS["s16.wav"]
    assert long_path["decode"] == 5


def test_single_member_from_a_pipe_to_a_stream(tmp_path, long_path):
    src = tmp_path / "s24.wav"
    src.write_bytes(RECORDINGS["s24.wav"])
    nz = api.compress_file(src, tmp_path / "a.nz")
    out = io.BytesIO()
    streaming.extract_stream(io.BytesIO(nz.read_bytes()), None, to_stream=out)
    assert out.getvalue() == RECORDINGS["s24.wav"] and long_path["decode"] == 1


def _payload_span(blob: bytes) -> tuple[int, int]:
    """Where the (only) member's chunks lie in a .nz."""
    f = io.BytesIO(blob)
    table = archive.read_table(f, len(blob))
    f.seek(int(table.offset[0]))
    rec = archive.read_record(archive.Source(f), archive.Definitions(table.models, None), None, archive.LATER)
    start = f.tell()
    return start, start + sum(rec.chunks.lengths)


def _leftovers(d) -> list:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("damage", ["first chunk", "last chunk", "record CRC", "checksum"])
def test_damaged_member_is_refused_and_leaves_nothing(damage, tmp_path, long_path):
    src = tmp_path / "in" / "s16.wav"
    src.parent.mkdir()
    src.write_bytes(RECORDINGS["s16.wav"])
    blob = bytearray(api.compress_file(src, tmp_path / "a.nz").read_bytes())
    start, end = _payload_span(bytes(blob))
    if damage == "first chunk":
        blob[start + 40] ^= 0x10
    elif damage == "last chunk":
        blob[end - 9] ^= 0x01
    elif damage == "record CRC":
        blob[end] ^= 0xFF
    else:  # the stored checksum (the 8 bytes before the chunks), with the record's CRC made to agree
        blob[start - 1] ^= 0x01
        rec_start = int(archive.read_table(io.BytesIO(bytes(blob)), len(blob)).offset[0])
        blob[end:end + 4] = zlib.crc32(bytes(blob[rec_start:end])).to_bytes(4, "little")
    bad = tmp_path / "bad.nz"
    bad.write_bytes(bytes(blob))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ContainerError, match="corrupt|CRC|checksum"):
        api.decompress_file(bad, out / "s16.wav")
    assert _leftovers(out) == [] and long_path["decode"] == 1
    if damage != "last chunk":
        return
    with pytest.raises(ContainerError, match="corrupt|CRC|checksum"):
        streaming.extract_stream(io.BytesIO(bytes(blob)), out / "piped.wav")
    assert _leftovers(out) == []
    stdout = io.BytesIO()
    with pytest.raises(ContainerError):
        streaming.extract(bad, None, ["s16.wav"], to_stream=stdout)
    assert stdout.getvalue() == b""  # nothing reaches a stream before the member is checked
    assert long_path["decode"] == 3


def test_truncated_pipe_is_refused_and_leaves_nothing(tmp_path, long_path):
    src = tmp_path / "s16.wav"
    src.write_bytes(RECORDINGS["s16.wav"])
    blob = api.compress_file(src, tmp_path / "a.nz").read_bytes()
    start, end = _payload_span(blob)
    out = tmp_path / "out"
    for cut in (start + 10, (start + end) // 2, end + 2):
        with pytest.raises(ContainerError, match="truncated"):
            streaming.extract_stream(io.BytesIO(blob[:cut]), out)
        assert not out.exists() or _leftovers(out) == []
    with pytest.raises(ContainerError, match="truncated"):  # a seekable file: its table is gone
        (tmp_path / "cut.nz").write_bytes(blob[:(start + end) // 2])
        api.decompress_file(tmp_path / "cut.nz", out / "x.wav")


def test_max_memory_of_a_chunked_member_is_the_codecs_not_the_length(tmp_path, long_path):
    src = tmp_path / "s16.wav"
    src.write_bytes(RECORDINGS["s16.wav"])
    nz = api.compress_file(src, tmp_path / "a.nz")
    [m] = api.container.loads(nz.read_bytes())[1]
    codec = api._member_codec(m, None)
    chunk_need = codec.chunk_decode_memory(m.params, chunked.member_signal(m))
    whole_need = api.member_memory(m, codec)
    assert 0 < chunk_need < whole_need
    api.decompress_file(nz, tmp_path / "ok.wav", max_memory=chunk_need + 1)
    assert (tmp_path / "ok.wav").read_bytes() == RECORDINGS["s16.wav"]
    with pytest.raises(ContainerError, match="--max-memory"):
        api.decompress_file(nz, tmp_path / "no.wav", max_memory=chunk_need - 1)
    with pytest.raises(ContainerError, match="--max-memory"):  # decoded whole (in memory): the whole estimate
        api.decompress_bytes(nz.read_bytes(), max_memory=chunk_need + 1)
    assert not (tmp_path / "no.wav").exists()


def test_cli_refuses_a_damaged_long_member_in_one_line(tmp_path, run_cli):
    x = tone(2 * 32768 + 5, 2, 16)
    src = tmp_path / "a.wav"
    src.write_bytes(wav_file(x, 16, RATE))
    env = {"NEURALZIP_STREAM_BYTES": "1000"}
    r = run_cli("compress", src, "-o", tmp_path / "a.nz", "-q", env=env)
    assert r.returncode == 0, r.stderr
    blob = bytearray((tmp_path / "a.nz").read_bytes())
    start, end = _payload_span(bytes(blob))
    r = run_cli("decompress", tmp_path / "a.nz", "-o", tmp_path / "ok.wav", "-q", env=env)
    assert r.returncode == 0 and (tmp_path / "ok.wav").read_bytes() == src.read_bytes()
    blob[(start + end) // 2] ^= 0x20
    (tmp_path / "bad.nz").write_bytes(bytes(blob))
    r = run_cli("decompress", tmp_path / "bad.nz", "-o", tmp_path / "out.wav", env=env)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.nz", "a.wav", "bad.nz", "ok.wav"]


def test_a_pack_member_is_never_decoded_chunk_by_chunk(tmp_path, long_path):
    """Found by `benchmarks/fuzz.py --chunked --seed 7` (threshold 0): a damaged table that makes each
    member of an ols-cascade pack a group of its own sent the pack's first member down the chunked
    path, whose memory estimate read params it does not have (KeyError, a traceback). A pack member
    is decoded with its pack; this one is refused in one line."""
    bad = Path(__file__).parent / "regressions" / "chunked" / "pack_members_as_groups_of_one.nz"
    [m, *_] = api.container.loads(bad.read_bytes())[1]
    assert m.params["pack"] == 3 and not chunked.decodes(m, api._member_codec(m, None))
    with pytest.raises(ContainerError, match="pack"):
        api.decompress_file(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert long_path["decode"] == 0
