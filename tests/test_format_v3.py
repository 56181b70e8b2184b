"""Container format version 3: what it changed from version 2. A file of one member ends with the
brief trailer instead of the member table; a self-contained description is deflated with the
built-in DESCRIPTION_DICT; the writer's versions are stored without their names. Version 1 and 2
files keep decoding (most golden files are of those versions; ols-cascade's, local-ls-mlp's and
gated-pixelcnn's are version 3)."""

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import api, archive, container, streaming
from neuralzip.errors import ContainerError

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def single():
    data = wav_file(tone(400, 2, 16), 16)
    return api.compress_bytes(data, "t.wav", "ols-cascade"), data


def _piped(blob):
    """What decompressing from a pipe writes to a pipe (the front-to-back reader)."""
    out = io.BytesIO()
    streaming.extract_stream(io.BytesIO(blob), to_stream=out)
    return [out.getvalue()]


def test_a_one_member_file_ends_with_the_brief_trailer(single, tmp_path):
    blob, data = single
    assert blob[8:10] == b"\x03\x00" and blob.endswith(archive.BRIEF_TAG)
    assert blob[-archive.BRIEF.size - 1] == archive.REC_END
    assert api.decompress_bytes(blob) == [("t.wav", data)]
    assert _piped(blob) == [data]
    nz = tmp_path / "t.nz"
    nz.write_bytes(blob)
    f, table = streaming.open_table(nz)  # the seekable reader: the table made from the record
    with f:
        assert len(table) == 1 and table.names == ["t.wav"] and table.version == 3
        assert int(table.offset[0]) + int(table.size[0]) == len(blob) - archive.BRIEF.size - 1
    top, (m,) = container.loads(blob)
    assert top["version"] == 3 and top["neuralzip"] and top["constriction"]
    assert m.stats["nll_bits"] > 0 and "nll_float_bits" in m.stats  # the figures came through the trailer


def test_a_one_member_files_fixed_overhead_is_at_most_100_bytes(single):
    """Everything but the payload, the name and the description: header, model definition, record
    fields, CRCs and trailer (version 2: about 200 bytes); and the description deflates to less than
    half of what it takes alone."""
    blob, _ = single
    _, (m,) = container.loads(blob)
    text = archive.description_text(m.meta, m.params)
    desc = archive.deflate(text, archive.DESCRIPTION_DICT)
    other = len(blob) - sum(len(c) for c in m.chunks) - len(m.name) - len(desc)
    assert 60 <= other <= 100, other
    assert len(desc) < len(archive.deflate(text, None)) / 2


def test_a_two_member_archive_keeps_the_member_table():
    items = [("a.png", image_file("png", "RGB", 9, 7)), ("b.wav", wav_file(tone(300, 1, 16), 16))]
    members = api.encode_members([(api.read_media(d, n), n) for n, d in items], "histogram")
    blob = container.dumps(members, archive=True)
    assert blob.endswith(archive.TRAILER_TAG)
    out = dict(api.decompress_bytes(blob))
    assert set(out) == {"a.png", "b.wav"} and out["b.wav"] == dict(items)["b.wav"]  # WAV: byte for byte


def test_damage_anywhere_in_a_one_member_file_is_a_clean_error_or_harmless(single):
    blob, data = single
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        for read in (api.decompress_bytes, _piped):
            try:
                out = read(bytes(bad))
            except ContainerError as exc:
                assert "\n" not in str(exc)
                continue
            assert out in ([("t.wav", data)], [data]), pos


def test_truncation_and_trailing_bytes_are_refused(single):
    blob, _ = single
    for cut in [*range(1, 40), *range(len(blob) - 40, len(blob))]:
        for read in (api.decompress_bytes, _piped):
            with pytest.raises(ContainerError):
                read(blob[:cut])
    for read in (api.decompress_bytes, _piped):
        with pytest.raises(ContainerError):
            read(blob + b"\x00")


def test_a_one_member_record_that_needs_an_earlier_description_is_refused(single):
    """A consistent file (CRC fixed) whose record says its description was deflated against member 0's."""
    blob, _ = single
    f = io.BytesIO(blob)
    f.read(10)
    head = archive.Source(f)
    archive.read_header(head, 3)
    start = 10 + head.count
    src = archive.Source(f)
    rec = archive.read_record(src, archive.Definitions(None, None, 3), None, False)
    at = start + rec.start + 1 + 1 + len("t.wav") + 1 + 1 + 2 + 1 + 1  # type, name, kind, model, shape, group
    assert blob[at] == 0  # the dictionary reference: self-contained
    bad = bytearray(blob)
    bad[at] = 1
    end = len(blob) - archive.BRIEF.size - 1
    rec_start = start + rec.start
    bad[end - 4:end] = struct.pack("<I", zlib.crc32(bytes(bad[rec_start:end - 4])))
    for read in (api.decompress_bytes, _piped):
        with pytest.raises(ContainerError, match="description|self-contained"):
            read(bytes(bad))


def test_the_description_dictionary_is_fixed():
    """Part of the format: a change would make every version-3 file undecodable."""
    assert hashlib.sha256(archive.DESCRIPTION_DICT).hexdigest()[:16] == DICT_SHA256


DICT_SHA256 = "6a7c7eb11ead661e"


def _relabelled(blob, version):
    """The file with another version number in its header (the header's CRC fixed)."""
    head_len = 8 + 2 + 2 + blob[11]
    out = bytearray(blob)
    out[8:10] = struct.pack("<H", version)
    out[head_len:head_len + 4] = struct.pack("<I", zlib.crc32(bytes(out[:head_len])))
    return bytes(out)


def test_version_2_files_still_decode():
    """A version-2 golden file: descriptions deflated alone, the writer's names in its info, a
    member table even for one member."""
    blob = (GOLDEN / "older-ols-cascade-coder4-audio.nz").read_bytes()
    assert blob[8:10] == b"\x02\x00" and blob.endswith(archive.TRAILER_TAG)
    top, members = container.loads(blob)
    assert top["version"] == 2 and top["neuralzip"] and top["constriction"] and len(members) == 1


def test_version_3_files_need_version_3s_rules(single):
    """Negative controls: labelled version 2, a one-member file (its brief trailer) and an archive
    with a member table (its descriptions, deflated with the dictionary) no longer read."""
    blob, _ = single
    items = [("a.png", image_file("png", "RGB", 9, 7)), ("b.wav", wav_file(tone(300, 1, 16), 16))]
    members = api.encode_members([(api.read_media(d, n), n) for n, d in items], "histogram")
    two = container.dumps(members, archive=True)
    for v3 in (blob, two):
        assert api.decompress_bytes(v3)
        with pytest.raises(ContainerError):
            api.decompress_bytes(_relabelled(v3, 2))
        with pytest.raises(ContainerError):
            _piped(_relabelled(v3, 2))


def test_the_format_document_gives_the_dictionary():
    text = (Path(__file__).parents[1] / "docs" / "FORMAT.md").read_text()
    block = text.split("**The built-in dictionary**", 1)[1].split("\n\n")[1]
    assert "".join(line[4:] for line in block.splitlines()).encode() == archive.DESCRIPTION_DICT
