"""Container format versions 2 and 3 (written): streamed records, the member table, groups, and every
field checked. What version 3 changed (the brief trailer of a one-member file, the description
dictionary) is tested in test_format_v3.py."""

import io
import random
import struct
import zlib

import numpy as np
import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import FORMAT_VERSION, api, archive, container, streaming
from neuralzip.errors import ContainerError, InputError


def _clips(n, seed=0):
    """n short 16-bit WAV clips of different lengths (each WAV header differs)."""
    rng = np.random.default_rng(seed)
    return [(f"clips/c{i:03d}.wav", wav_file(tone(int(rng.integers(200, 600)), 1, 16, seed=i), 16, 8000))
            for i in range(n)]


def _archive(items, model="histogram"):
    members = api.encode_members([(api.read_media(d, n), n) for n, d in items], model)
    return container.dumps(members, archive=True), members


@pytest.fixture(scope="module")
def small():
    items = [("a.png", image_file("png", "RGB", 9, 7)), ("b/b.wav", wav_file(tone(300, 2, 16), 16)),
             ("b/c.png", image_file("png", "L", 5, 6))]
    blob, _ = _archive(items)
    return blob, dict(items)


def _decoded(blob):
    return dict(api.decompress_bytes(blob))


def test_new_files_are_version_3_and_round_trip(small):
    blob, items = small
    assert FORMAT_VERSION == 3 and blob[8:10] == struct.pack("<H", 3)
    out = _decoded(blob)
    assert out["b/b.wav"] == items["b/b.wav"]  # WAV comes back byte for byte
    assert set(out) == set(items)


def test_front_to_back_reading_matches_the_table(small):
    blob, _ = small
    f = io.BytesIO(blob)
    f.read(10)
    piped = [m for _, m in container.iter_pipe(f, 3)]
    _, loaded = container.loads(blob)
    assert [m.header() | {"stats": {}} for m in piped] == [m.header() | {"stats": {}} for m in loaded]
    assert [m.chunks for m in piped] == [m.chunks for m in loaded]


def test_pipe_reader_refuses_truncation_and_a_table_that_disagrees(small):
    blob, _ = small
    for cut in (11, 40, len(blob) // 2, len(blob) - 30, len(blob) - 1):
        f = io.BytesIO(blob[:cut])
        f.read(10)
        with pytest.raises(ContainerError):
            list(container.iter_pipe(f, 3))
    bad = blob[:-12] + struct.pack("<I", 7) + blob[-8:]  # the trailer's member count
    f = io.BytesIO(bad)
    f.read(10)
    with pytest.raises(ContainerError):
        list(container.iter_pipe(f, 3))


def test_per_member_overhead_is_at_most_48_bytes(tmp_path):
    """Everything but the names, the payloads and the descriptions (meta + params: where each clip's
    verbatim WAV header lives), per member, over 300 clips from files (modification time and permission
    bits stored), the file's fixed costs included; and each description costs less than the raw
    44-byte header it holds (what repeats is deflated against an earlier one)."""
    src = tmp_path / "clips"
    src.mkdir()
    for name, data in _clips(300):
        (tmp_path / name).write_bytes(data)
    nz = tmp_path / "clips.nz"
    streaming.compress_sources(api.archive_sources([src]), nz, True, model="histogram", jobs=1)
    f, table = streaming.open_table(nz)
    with f:
        parts = archive.overhead_breakdown(f, table)
    assert 8 + 4 + 5 <= parts["other"] <= 48, parts  # checksum, CRC, mtime at least: not vacuous
    assert parts["descriptions"] < 44, parts


def test_groups_are_fixed_by_the_input(monkeypatch):
    """Chained members (the vae's bits-back chain) share a group of at most GROUP_MEMBERS; other
    members are groups of one; a group never mixes media."""
    monkeypatch.setattr(streaming, "GROUP_MEMBERS", 2)
    kinds = ["image", "image", "image", "audio", "image"]
    assert streaming.plan_groups(kinds, [10] * 5, "vae", None, 1) == [[0, 1], [2], [3], [4]]
    assert streaming.plan_groups(kinds, [10] * 5, "histogram", None, 1) == [[0], [1], [2], [3], [4]]
    monkeypatch.setattr(streaming, "GROUP_BYTES", 15)
    assert streaming.plan_groups(kinds, [10] * 5, "vae", None, 1) == [[0], [1], [2], [3], [4]]


def test_a_chained_group_is_one_unit_of_random_access(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "GROUP_MEMBERS", 2)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"p{i}.png").write_bytes(image_file("png", "RGB", 8 + i, 8))
    nz = tmp_path / "set.nz"
    streaming.compress_sources(api.archive_sources([src]), nz, True, model="vae", jobs=1)
    f, table = streaming.open_table(nz)
    f.close()
    assert table.group.tolist() == [2, 0, 1] and table.group_span(1) == (0, 2)
    _, members = container.loads(nz.read_bytes())
    assert members[0].params["chain"] == 2 and not members[1].chunks
    for i in range(3):
        restored = api.extract_member(nz, f"p{i}.png")
        assert api.read_media(restored).samples.tobytes() == \
            api.read_media((src / f"p{i}.png").read_bytes()).samples.tobytes()


# ------------------------------------------------------------------ hostile input

def _one_error(blob):
    try:
        out = _decoded(blob)
    except ContainerError as exc:
        assert "\n" not in str(exc)
        return None
    return out


def test_damage_anywhere_is_a_clean_error_or_harmless(small):
    """Byte flips everywhere in the header, the first record and the table, and at random elsewhere:
    a one-line ContainerError, never another exception; never a wrong result."""
    blob, items = small
    good = _decoded(blob)
    offset = struct.unpack("<Q", blob[-archive.TRAILER.size:][:8])[0]
    rng = random.Random(5)
    spots = list(range(0, 80)) + list(range(offset - 1, len(blob))) + rng.sample(range(len(blob)), 150)
    for pos in spots:
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[pos] ^= bit
            out = _one_error(bytes(bad))
            assert out is None or out == good, pos
            assert _piped(bytes(bad)) in (None, good), pos


def _piped(blob):
    """What the front-to-back reader makes of a file: its members' restored files, or None for a
    one-line ContainerError."""
    f = io.BytesIO(blob)
    f.read(10)
    try:
        members = [m for _, m in container.iter_pipe(f, 3)]
        return {m.name: api.restore(m, md) for m, md in zip(members, api.decode_members(members))}
    except ContainerError as exc:
        assert "\n" not in str(exc)
        return None


def _table(blob):
    offset, tsize, raw_len, n, crc, tag = archive.TRAILER.unpack(blob[-archive.TRAILER.size:])
    raw = zlib.decompress(blob[offset:offset + tsize])
    table = archive.parse_table(raw, n, True, "", 0, offset - 1, 3)
    return offset, table


def _with_table(blob, edit):
    """The archive with its table edited (a consistent file: the CRC and trailer fixed)."""
    offset, t = _table(blob)
    cols = {"kind_bits": (t.kind.astype(np.uint8) << 6) | (t.bits - 1).astype(np.uint8), "model": t.model.copy(),
            "group": t.group.copy(), "shape": t.shape.copy(), "size": t.size.copy(),
            "gap": t.offset - np.append(np.uint64(0), t.offset[:-1] + t.size[:-1]),
            "stats": t.stats.copy(), "float_delta": t.float_delta.copy()}
    names = list(t.names)
    models = [archive.model_body(m, w) for m, w in t.models]
    edit(cols, names)
    encoded = [n.encode() for n in names]
    cols["name_len"] = np.array([len(n) for n in encoded])
    raw = archive.table_bytes(models, cols, b"".join(encoded))
    packed = zlib.compress(raw)
    return blob[:offset] + packed + archive.TRAILER.pack(offset, len(packed), len(raw), len(names),
                                                          zlib.crc32(packed), archive.TRAILER_TAG)


def _set(col, index, value):
    def edit(cols, names):
        cols[col][index] = value
    return edit


def _name(index, value):
    def edit(cols, names):
        names[index] = value
    return edit


@pytest.mark.parametrize("edit,message", [
    (_name(1, "../evil.wav"), "unsafe member name"),
    (_name(1, "/abs.wav"), "unsafe member name"),
    (_name(2, "a.png"), "stored twice"),
    (_name(2, "b/other.png"), "does not match the member table"),
    (_set("group", 1, 2), "groups"),
    (_set("group", 0, 0), "groups"),
    (_set("gap", 0, 0), "offsets"),
    (_set("gap", 1, 3), ""),
    (_set("gap", 2, 1 << 40), "offsets"),
    (_set("gap", 2, (1 << 64) - 1), "offsets"),
    (_set("size", 2, 1 << 40), "offsets"),
    (_set("size", 0, 9), "does not match the member table"),
    (_set("shape", (0, 0), 0), "shape"),
    (_set("shape", (0, 2), 9), "shape"),
    (_set("shape", (1, 1), 0), "shape"),
    (_set("kind_bits", 0, 3 << 6), "kind"),
    (_set("kind_bits", 0, (1 << 6) | 15), "shape"),
    (_set("kind_bits", 0, 6), "does not match the member table"),
    (_set("kind_bits", 0, 31), "bits"),
    (_set("model", 0, 9), "model"),
    (_set("stats", (0, 0), np.inf), "finite"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_table_values_out_of_range_are_refused(small, edit, message):
    blob, _ = small
    with pytest.raises(ContainerError, match=message.replace("(", r"\(") or None):
        api.decompress_bytes(_with_table(blob, edit))


def test_random_access_checks_each_record_against_its_row(small, tmp_path):
    """The seeking reader (one member) meets the same lies as the whole-file reader."""
    blob, _ = small
    nz = tmp_path / "x.nz"
    for edit, name, message in ((_set("size", 0, 9), "a.png", "payload is larger than its record"),
                                (_name(2, "b/other.png"), "b/other.png", "does not match the member table"),
                                (_set("gap", 1, 3), "b/b.wav", None)):
        nz.write_bytes(_with_table(blob, edit))
        with pytest.raises(ContainerError, match=message):
            api.extract_member(nz, name)


def test_table_that_declares_too_much_is_refused_before_inflating(small):
    blob, _ = small
    offset, tsize, raw_len, n, crc, tag = archive.TRAILER.unpack(blob[-archive.TRAILER.size:])
    bad = blob[:-archive.TRAILER.size] + archive.TRAILER.pack(offset, tsize, 3 << 30, n, crc, tag)
    with pytest.raises(ContainerError, match="declares"):
        container.loads(bad, 1 << 30)


def _rebuilt(blob, edit):
    """The archive written again after `edit(members)` (consistent CRCs and table)."""
    _, members = container.loads(blob)
    edit(members)
    return container.dumps(members, archive=True)


@pytest.mark.parametrize("edit,message", [
    (lambda ms: setattr(ms[0], "sha256", "0" * 16), "checksum mismatch"),
    (lambda ms: setattr(ms[1], "model", "from-the-future"), "unknown to this neuralzip"),
    (lambda ms: ms[1].meta.update(width=7), "meta.width"),
    (lambda ms: setattr(ms[0], "bits", 16), "bits"),
    (lambda ms: setattr(ms[1], "chunks", ms[1].chunks + [b"x"]), "chunks"),
    (lambda ms: setattr(ms[2], "kind", "file"), "shape"),
], ids=["checksum", "model", "meta", "bits", "chunks", "kind"])
def test_record_values_are_checked_like_version_1(small, edit, message):
    blob, _ = small
    with pytest.raises(ContainerError, match=message):
        api.decompress_bytes(_rebuilt(blob, edit))


def test_version_1_files_still_decode_and_version_4_is_refused(small):
    blob, items = small
    _, members = container.loads(blob)
    with pytest.raises(ContainerError):
        container.dumps_v1(members)  # a v2 member keeps only 8 bytes of its SHA-256: no v1 from it
    v1 = container.dumps_v1(api.encode_members([(api.read_media(items["b/b.wav"]), "b.wav")], "histogram"))
    assert v1[8:10] == b"\x01\x00" and api.decompress_bytes(v1) == [("b.wav", items["b/b.wav"])]
    with pytest.raises(ContainerError, match="unknown container format version 4"):
        container.loads(blob[:8] + b"\x04\x00" + blob[10:])
