"""ols-cascade packs: short recordings of one archive coded as the lanes of one chunk (one coder
call decodes a sample of each), exactly, decoded only as a whole."""

import numpy as np
import pytest

from media_factory import tone, wav_file
from neuralzip import api
from neuralzip.errors import ContainerError
from neuralzip.media import Media
from neuralzip.models import ols_audio
from neuralzip import streaming
from neuralzip.streaming import Source, compress_sources, extract, list_entries


def _clip(frames: int, channels: int = 1, rate: int = 8000, seed: int = 0) -> Media:
    return Media("audio", tone(frames, channels, 16, seed=seed), 16, {"format": "wav", "rate": rate, "width": 2,
                                                                       "prefix": "", "suffix": ""})


def _items():
    """Nine short mono clips of several lengths, a long one and a stereo one among them."""
    lengths = [900, 2500, 2500, 1200, 700]
    items = [(_clip(n, seed=i), f"a{i}.wav") for i, n in enumerate(lengths)]
    items.append((_clip(ols_audio.PACK_FRAMES + 5, seed=9), "long.wav"))
    items.append((_clip(1500, 2, seed=10), "stereo.wav"))
    items += [(_clip(n, seed=20 + i), f"b{i}.wav") for i, n in enumerate([1800, 600, 2000])]
    return items


def _members():
    return api.encode_members(_items(), "ols-cascade")


def test_short_recordings_are_packed_and_decode_exactly():
    items, members = _items(), _members()
    packs = [m.params.get("pack") for m in members]
    assert packs == [5, 0, 0, 0, 0, None, None, 3, 0, 0]
    assert [len(m.chunks) for m in members] == [1, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    decoded = api.decode_members(members)
    for (media, _), back in zip(items, decoded):
        assert np.array_equal(media.samples, back.samples)


def test_a_pack_costs_no_more_than_its_members_alone():
    """Negative control for the packing: the same clips coded one by one decode too, and take more
    bytes (each pays its own chunk header and coder flush)."""
    items = _items()[:5]
    packed = api.encode_members(items, "ols-cascade")
    alone = [api.encode_media(media, name, "ols-cascade") for media, name in items]
    assert all("pack" not in m.params for m in alone)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(api.decode_members(alone), api.decode_members(packed)))
    assert sum(len(c) for m in packed for c in m.chunks) < sum(len(c) for m in alone for c in m.chunks)


def test_level_2_packs_decode_exactly():
    items = _items()[:3]
    members = api.encode_members(items, "ols-cascade", level=2)
    assert members[0].params == {"level": 2, "coder": ols_audio.CODER, "pack": 3}
    for (media, _), back in zip(items, api.decode_members(members)):
        assert np.array_equal(media.samples, back.samples)


def test_an_incomplete_pack_is_refused():
    members = _members()
    for part in (members[1:5], members[:4], [members[2]]):
        with pytest.raises(ContainerError, match="pack"):
            api.decode_members(part)


@pytest.mark.parametrize("params,chunks", [({"pack": 1}, 1), ({"pack": 3}, 0), ({"pack": 0}, 1),
                                           ({"pack": ols_audio.PACK_LANES + 1}, 1), ({"pack": 2, "coder": 1}, 1)])
def test_bad_pack_params_are_refused(params, chunks):
    m = _members()[0]
    m.params = dict({"level": 1, "coder": 2}, **params)
    m.chunks = m.chunks[:1] * chunks
    with pytest.raises(ContainerError, match="corrupt container header"):
        api.decode_members([m])


def test_a_full_pack_and_the_one_after_it():
    """PACK_LANES clips make one pack (a whole group of the archive); the next clip starts another."""
    n = ols_audio.PACK_LANES
    items = [(_clip(40 + 7 * i, seed=i), f"c{i}.wav") for i in range(n + 2)]
    members = api.encode_members(items, "ols-cascade")
    assert [m.params.get("pack") for m in members] == [n] + [0] * (n - 1) + [2, 0]
    assert n <= streaming.GROUP_MEMBERS
    for (media, _), back in zip(items, api.decode_members(members)):
        assert np.array_equal(media.samples, back.samples)


def test_a_long_recording_cannot_claim_a_pack():
    m = _members()[5]
    m.params = {"level": 1, "coder": 2, "pack": 2}
    with pytest.raises(ContainerError, match="corrupt container header"):
        api.decode_members([m])


def test_packed_archive_through_the_cli(tmp_path):
    """An archive of short WAVs: every file back byte for byte, and one member alone by --member."""
    src = tmp_path / "clips"
    src.mkdir()
    for i in range(6):
        (src / f"c{i}.wav").write_bytes(wav_file(tone(800 + 300 * i, 1, 16, seed=i), 16, rate=8000))
    out = tmp_path / "clips.nz"
    sources = [Source(name=str(p.relative_to(tmp_path)), path=p) for p in sorted(src.iterdir())]
    compress_sources(sources, out, archive=True, model="ols-cascade", jobs=1)
    assert len(list_entries(out)) == 6
    extract(out, tmp_path / "all", jobs=1)
    for p in src.iterdir():
        assert (tmp_path / "all" / "clips" / p.name).read_bytes() == p.read_bytes()
    extract(out, tmp_path / "one", patterns=["clips/c3.wav"], jobs=1)
    assert (tmp_path / "one" / "clips" / "c3.wav").read_bytes() == (src / "c3.wav").read_bytes()
    assert not (tmp_path / "one" / "clips" / "c2.wav").exists()


def test_only_files_small_enough_to_pack_share_a_group():
    """A recording too long to pack keeps a group (a process) of its own; short ones around it group."""
    big = ols_audio.OlsCascadeCodec.chain_member_bytes + 1
    kinds = ["audio"] * 6
    assert streaming.plan_groups(kinds, [1000, 1000, big, 1000, 1000, 1000], "ols-cascade", None, 1) == \
        [[0, 1], [2], [3, 4, 5]]
    assert streaming.plan_groups(kinds, [1000] * 6, "classic", None, 1) == [[i] for i in range(6)]
