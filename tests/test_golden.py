"""Committed .nz files, one per model, still decode to the recorded content. Files written by
0.1.0 under the models' old names (legacy-0.1.0-*.nz: `pixelcnn`, now context-mlp, and `wavenet`,
now lpc-nlms-mlp) decode too, recognised by their shipped weights' hash and never by the name alone
(`wavenet` is a real WaveNet now: a member naming it with any other weights is one of its).
Files a model wrote with an earlier version of its own coding (older-*.nz: ols-cascade's coders 1
to 3, classic's and local-ls's blends before the least-squares mixer, the networks' fixed weight against
the counts and their trained output layer, recognised by their params; files made with an earlier weights file of their model,
recognised by its hash, wavenet's v1 with its fixed predictor among them) decode too."""

import hashlib
import json
from pathlib import Path

import pytest

from media_factory import image_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.models import LEGACY_DECODERS, all_codecs, decoder_for, get_codec
from neuralzip.kernels.classic_image import MIXER_NLMS, MIXER_NONE
from neuralzip.models import jpeg_colour
from neuralzip.models.classic_image import (BLEND_NLMS, BLEND_OLS, BLEND_OLS_PARITY, BLEND_PARITY_TAPS, COLOUR_FLAGGED,
                                            TILE_H, TILE_W, ClassicImageCodec, chunk_tiles)
from neuralzip.models.context_mlp import HEAD_ONLINE, HEAD_POSITIONS, MIX_ONLINE
from neuralzip.weightstore import shipped, shipped_dir

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())
LEGACY = sorted(n for n in EXPECTED if n.startswith("legacy-"))
OLDER = sorted(n for n in EXPECTED if n.startswith("older-"))


def _member(name: str) -> container.Member:
    _, [member] = container.loads((GOLDEN / name).read_bytes())
    return member


def test_every_model_has_a_golden_file():
    shipped = {f"{c.name}-{c.kind}.nz" for c in all_codecs() if c.name != "float-control"}
    assert shipped <= set(EXPECTED)


def test_every_old_name_has_a_legacy_golden_file():
    assert {_member(n).model for n in LEGACY} == {old for old, _, _ in LEGACY_DECODERS} == {"pixelcnn", "wavenet"}
    assert all(n.startswith("legacy-0.1.0-") for n in LEGACY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes(name):
    [(stored, restored)] = api.decompress_bytes((GOLDEN / name).read_bytes())
    assert stored == EXPECTED[name]["restores"]
    assert hashlib.sha256(restored).hexdigest() == EXPECTED[name]["sha256"]


# written before today's coding of their model: test_older_file_keeps_the_networks_trained_weight
BEFORE_THE_LEARNED_WEIGHT = {"legacy-0.1.0-pixelcnn-image.nz"}


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(OLDER) - BEFORE_THE_LEARNED_WEIGHT))
def test_golden_source_reencodes_to_the_same_member(name):
    """The format did not move: coding the restored file again with the recorded model gives the
    committed member: the same chunks byte for byte and the same header entry. Only the
    likelihood figures ("stats", a report, not the format) may differ: golden files made
    before they were rounded to 1/1000 bit carry full precision, and lpc-nlms-mlp's now count the
    blocks' side bits too. A legacy file's model is recorded under its old name: it is coded again
    with the model that decodes it now, which writes the same bytes under its new name. A classic
    or context-mlp file written before tiles became as tall as a chunk records 128 x 1024 tiles; its
    image is smaller than a tile, so the tiles of today give the same chunks, recorded as the
    image's size."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    [(stored, restored)] = api.decompress_bytes(blob)
    model = decoder_for(member.model, member.kind, member.weights).name
    assert (model != member.model) == (name in LEGACY)
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.chunks == member.chunks
    assert again.model == model
    before = {k: v for k, v in member.header().items() if k not in ("stats", "model")}
    if (before["params"].get("tile_h"), before["params"].get("tile_w")) == (TILE_H, TILE_W):
        before["params"] = dict(before["params"], **dict(zip(("tile_h", "tile_w"), chunk_tiles(member.shape))))
    assert {k: v for k, v in again.header().items() if k not in ("stats", "model")} == before
    assert again.stats.keys() == member.stats.keys()


def _rewrite(blob: bytes, **fields) -> bytes:
    _, members = container.loads(blob)
    for k, v in fields.items():
        setattr(members[0], k, v)
    return container.dumps(members)


def test_legacy_names_decode_with_every_weights_file_they_shipped_with():
    """Both weights versions 0.1.0 shipped for `pixelcnn` are recognised (the golden file has v2)."""
    data = image_file("ppm", "RGB", 13, 17)  # PPM: restored byte for byte
    [v1] = shipped_dir().glob("context-mlp-image-v1-*.npz")
    blob = api.compress_bytes(data, "x.ppm", "context-mlp", weights=str(v1))
    _, [member] = container.loads(blob)
    assert member.weights == "ce1c4fdce63f11d6" != get_codec("context-mlp", "image").weights_hash
    for name in ("context-mlp", "pixelcnn"):
        assert api.decompress_bytes(_rewrite(blob, model=name)) == [("x.ppm", data)]
    for key, new in LEGACY_DECODERS.items():
        codec = decoder_for(*key)
        assert (codec.name, codec.kind, codec.weights_hash) == (new, key[1], key[2])


# a shipped weights file of another model, and a hash no file has
OTHER_WEIGHTS = ["5abb9a4764865410", "0123456789abcdef"]


UNREGISTERED_LEGACY = ["legacy-0.1.0-pixelcnn-image.nz"]  # `pixelcnn` names no model today


@pytest.mark.parametrize("weights", OTHER_WEIGHTS + ["swap"])
@pytest.mark.parametrize("name", UNREGISTERED_LEGACY)
def test_old_name_with_other_weights_is_an_unknown_model(name, weights):
    """The name alone means nothing: `pixelcnn` with any weights but the ones 0.1.0 shipped
    (including the other old model's) is refused as unknown, before anything is decoded."""
    member = _member(name)
    if weights == "swap":  # the other legacy model's weights
        weights = next(h for (old, _, h) in LEGACY_DECODERS if old != member.model)
    blob = _rewrite((GOLDEN / name).read_bytes(), weights=weights)
    with pytest.raises(ContainerError) as err:
        api.decompress_bytes(blob)
    msg = str(err.value)
    assert "unknown to this neuralzip" in msg and repr(member.model) in msg and weights in msg and "\n" not in msg


@pytest.mark.parametrize("weights", OTHER_WEIGHTS + ["swap"])
def test_wavenet_with_other_weights_is_the_real_wavenet_and_refused(weights):
    """A `wavenet` member with any weights but 0.1.0's is a member of today's wavenet model, never
    decoded as lpc-nlms-mlp: with weights that are not there, or not a WaveNet's, it is refused in
    one line."""
    name = "legacy-0.1.0-wavenet-audio.nz"
    if weights == "swap":
        weights = next(h for (old, _, h) in LEGACY_DECODERS if old != "wavenet")
    with pytest.raises(ContainerError) as err:
        api.decompress_bytes(_rewrite((GOLDEN / name).read_bytes(), weights=weights))
    msg = str(err.value)
    assert ("not available" in msg and weights in msg or "corrupt" in msg) and "\n" not in msg
    assert decoder_for("wavenet", "audio", get_codec("wavenet", "audio").weights_hash).name == "wavenet"


@pytest.mark.parametrize("name", UNREGISTERED_LEGACY)
def test_old_name_with_other_weights_exits_1_through_the_cli(run_cli, tmp_path, name):
    nz = tmp_path / "old.nz"
    nz.write_bytes(_rewrite((GOLDEN / name).read_bytes(), weights=OTHER_WEIGHTS[1]))
    r = run_cli("decompress", nz, "-o", tmp_path / "out")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "unknown to this neuralzip" in r.stderr
    assert not (tmp_path / "out").exists()
    # the negative control: the untouched legacy file decodes through the same command
    nz.write_bytes((GOLDEN / name).read_bytes())
    r = run_cli("decompress", nz, "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256((tmp_path / "out").read_bytes()).hexdigest() == EXPECTED[name]["sha256"]


def test_auto_is_no_model_a_member_can_record():
    blob = (GOLDEN / "classic-image.nz").read_bytes()
    with pytest.raises(ContainerError, match="unknown to this neuralzip"):
        api.decompress_bytes(_rewrite(blob, model="auto"))


@pytest.mark.parametrize("old, new, source", [("pixelcnn", "context-mlp", "legacy-0.1.0-pixelcnn-image.nz")])
def test_old_names_are_not_models_to_compress_with(run_cli, tmp_path, old, new, source):
    """`--model pixelcnn` is a usage error (exit 2, one line) naming the models there are; the name
    is kept for a real model of that family (`wavenet` is one now: test_wavenet.py)."""
    [(stored, restored)] = api.decompress_bytes((GOLDEN / source).read_bytes())
    src = tmp_path / stored
    src.write_bytes(restored)
    r = run_cli("compress", src, "--model", old)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert f"unknown model {old!r}" in r.stderr and new in r.stderr and "classic" in r.stderr
    assert not Path(f"{src}.nz").exists()
    r = run_cli("compress", src, "--model", new, "--json")  # the negative control: the new name works
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == new


@pytest.mark.parametrize("name, coder", [("older-ols-cascade-coder1-audio.nz", None),
                                         ("older-ols-cascade-coder2-audio.nz", 2),
                                         ("older-ols-cascade-coder3-audio.nz", 3),
                                         ("older-ols-cascade-coder4-audio.nz", 4)])
def test_older_ols_cascade_files_are_read_with_their_own_version(name, coder):
    """An older ols-cascade file decodes with the version its params record (coder 1: no
    params.coder). Read as the next version (the negative control) its content no longer matches
    its checksum. Coded again today it is a member of the current version, of the same content.
    (The coder-3 file is a level-2 file: version 4 changed level 2 only; the coder-4 file is level 1.)"""
    from neuralzip.models.ols_audio import CODER
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    assert member.model == "ols-cascade" and member.params.get("coder") == coder
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, coder=(coder or 1) + 1)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, "ols-cascade", level=member.params["level"]))
    assert again.params["coder"] == CODER == 5 and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


def test_older_classic_file_with_tiles_is_read_with_its_tiles():
    """An earlier classic file cut each chunk into tiles of 128 x 1024; this one is 150
    rows, two tile rows (made once by the current code with those tiles, which is what that
    version wrote). It decodes with the tiles its params record. Read as one tile (the negative
    control) its content no longer matches its checksum. Coded again today it is one tile."""
    blob = (GOLDEN / "older-classic-tiles-image.nz").read_bytes()
    _, [member] = container.loads(blob)
    assert (member.params["tile_h"], member.params["tile_w"], member.shape[:2]) == (128, 1024, (150, 24))
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, tile_h=150, tile_w=24)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, "classic"))
    assert (again.params["tile_h"], again.params["tile_w"]) == (150, 24) and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


@pytest.mark.parametrize("name, model, recorded, fine, mixer", [
    ("older-classic-integer-blend-image.nz", "classic", None, False, MIXER_NONE),
    ("older-local-ls-fine-blend-image.nz", "local-ls", None, True, MIXER_NONE),
    ("older-classic-nlms-mixer-image.nz", "classic", BLEND_NLMS, True, MIXER_NLMS),
    ("older-local-ls-nlms-mixer-image.nz", "local-ls", BLEND_NLMS, True, MIXER_NLMS)])
def test_older_file_without_the_least_squares_mixer_is_read_so(name, model, recorded, fine, mixer):
    """classic and local-ls files written before the online mixers record no "blend": classic's kept
    the blend in whole units, local-ls's in 1/16 units, neither had a mixer. Then came the NLMS
    mixer ("blend": 3), then the least-squares mixer ("blend": 4), with a parity byte per chunk
    ("blend": 5: test_grid_parity.py), four count rows per activity class ("blend": 6:
    test_offset_rows.py); today's files record "blend": 7 (the parity taps: test_parity_taps.py).
    The older file decodes as it
    was written; told it has the least-squares mixer (the negative control), its content no longer
    matches its checksum. Coded again today it records today's blend, its chunks differ, and it
    decodes."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    assert member.params.get("blend") == recorded and member.model == model
    assert get_codec(model, "image")._blend(member.params) == {"fine": fine, "mixer": mixer, "offset_rows": False,
                                                                   "parity_taps": False}
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, blend=BLEND_OLS)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.params == dict(member.params, blend=BLEND_PARITY_TAPS, colour=COLOUR_FLAGGED, colour_table=1)
    assert again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


@pytest.mark.parametrize("older, model, prefix", [
    ("older-context-mlp-v2-weights-image.nz", "context-mlp", "context-mlp-image"),
    ("older-local-ls-mlp-v1-weights-image.nz", "local-ls-mlp", "local-ls-mlp-image")])
def test_older_network_file_is_read_with_its_weights_and_the_blend_they_read(older, model, prefix):
    """context-mlp's weights v1 and v2 were trained on classic's integer blend, v3 and v4 on its
    blend with the least-squares mixer; local-ls-mlp's v1 on the integer blend, v2 and v3 on
    local-ls's blend with the mixer. An older file names its weights' hash and records no "blend",
    and decodes with both; told it has the mixer (the negative control), its content no longer
    matches its checksum.
    Today's file names the newest weights and records "blend": 7 (the mixer, with a parity byte per
    chunk, four count rows per activity class and the parity taps)."""
    blob = (GOLDEN / older).read_bytes()
    _, [member] = container.loads(blob)
    newest = shipped(prefix)
    assert member.model == model and "blend" not in member.params
    assert len(list(shipped_dir().glob(f"{prefix}-v*-{member.weights}.npz"))) == 1 and member.weights not in newest.name
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, blend=BLEND_OLS)))
    _, [current] = container.loads((GOLDEN / f"{model}-image.nz").read_bytes())
    assert current.weights in newest.name and current.params["blend"] == BLEND_PARITY_TAPS


@pytest.mark.parametrize("name, model", [("older-context-mlp-fixed-weight-image.nz", "context-mlp"),
                                         ("older-local-ls-mlp-v1-weights-image.nz", "local-ls-mlp"),
                                         ("legacy-0.1.0-pixelcnn-image.nz", "context-mlp")])
def test_older_file_keeps_the_networks_trained_weight(name, model):
    """context-mlp and local-ls-mlp files written before the network's weight against the counts
    was learned while coding (0.1.0's `pixelcnn` files too) record no "mix": they decode with the
    trained weight. Told the weight is learned ("mix": 2, the negative control), the content no
    longer matches its checksum. Coded again today the file records "mix": 2, its chunks differ,
    and it decodes."""
    assert (name in BEFORE_THE_LEARNED_WEIGHT) != name.startswith("older-")
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    assert decoder_for(member.model, member.kind, member.weights).name == model and "mix" not in member.params
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, mix=MIX_ONLINE)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.params["mix"] == MIX_ONLINE and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


@pytest.mark.parametrize("older, prefix, version, today", [
    ("older-vae-v1-weights-image.nz", "vae-image", 1, "vae-image.nz"),
    ("older-vae-v2-weights-image.nz", "vae-image", 2, "vae-image.nz"),
    ("older-vae-v3-weights-image.nz", "vae-image", 3, "vae-image.nz"),
    ("older-vae-v4-weights-image.nz", "vae-image", 4, "vae-image.nz"),
    ("older-vae-v5-weights-image.nz", "vae-image", 5, "vae-image.nz"),
    ("older-vae-v6-weights-image.nz", "vae-image", 6, "vae-image.nz"),
    ("older-vae-v7-weights-image.nz", "vae-image", 7, "vae-image.nz"),
    ("older-vae-v8-weights-image.nz", "vae-image", 8, "vae-image.nz"),
    ("older-context-mlp-v3-weights-image.nz", "context-mlp-image", 3, "context-mlp-image.nz"),
    ("older-local-ls-mlp-v2-weights-image.nz", "local-ls-mlp-image", 2, "local-ls-mlp-image.nz"),
    ("older-local-ls-mlp-v3-weights-image.nz", "local-ls-mlp-image", 3, "local-ls-mlp-image.nz"),
    ("older-jpeg-coefficients-v1-weights-image.nz", "jpeg-coefficients-image", 1,
     "jpeg-coefficients-jpeg420-image.nz")])
def test_older_file_is_read_with_the_earlier_weights_it_names(older, prefix, version, today):
    """A file made with an earlier weights version of its model (vae v1, whose encoder v2
    requantized; vae v3, whose networks v4 keeps and adds the neighbour counts to; vae v4, one
    share of the counts where v5 fits one per channel and phase; vae v5, whose counts' context v6 reads
    from the neighbours' errors, with networks trained further on the mixture; vae v6, one table of
    counts starting empty, where v7 mixes in a second (the ring's median) and starts both from a prior; vae v7, the counts' floor at 1/3 of a count, where v8 has 1/32; vae v8, two tables of counts, where v9 adds a third (the snap) and starts them from a lighter prior; context-mlp v3 and local-ls-mlp v2, networks half as wide as today's, over the
    same blend; local-ls-mlp v3, trained on every photo's RGB, where v4 learned decoded JPEGs in
    the YCbCr they are coded in; jpeg-coefficients v1, a prior learned from the training folder's
    own decoded JPEGs alone, where v2 also counts them resaved at other qualities and samplings)
    records that file's hash and decodes with the shipped file; today's golden file of the same
    input (`today`) names the newest. Forced onto the newest (--weights), the older file is
    refused; rewritten to name it (the negative control), it no longer decodes."""
    blob = (GOLDEN / older).read_bytes()
    _, [member] = container.loads(blob)
    [earlier] = shipped_dir().glob(f"{prefix}-v{version}-*.npz")
    newest = shipped(prefix)
    assert member.weights in earlier.name and earlier != newest
    _, [current] = container.loads((GOLDEN / today).read_bytes())
    # the same params but today's learned output layer (recorded since the newest weights), colour
    # flags, the blend with its parity byte (stop 55), the colour table (stop 58) and the vae's shares of its
    # neighbour counts (weights v4 on)
    assert current.weights in newest.name
    def without_later_params(params):
        return {k: v for k, v in params.items()
                if k not in ("head", "colour", "blend", "colour_table", "counts_share", "counts_shares")}

    assert without_later_params(current.params) == without_later_params(member.params)
    with pytest.raises(ContainerError, match="not the weights file"):
        api.decompress_bytes(blob, weights=str(newest))
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, weights=current.weights))


def test_older_vae_file_keeps_the_weights_shares_it_records():
    """Before the encoder chose the vae's shares of its neighbour counts per chain (stop 54), every
    chain recorded the weights' own (the older file, made with weights v7). It decodes with the
    shares it records; read with other shares (the negative control) its content no longer matches
    its checksum. Coded again today with the same weights it records the shares chosen for it, its
    chunks differ, and it decodes."""
    blob = (GOLDEN / "older-vae-weights-shares-image.nz").read_bytes()
    _, [member] = container.loads(blob)
    [weights] = shipped_dir().glob("vae-image-v7-*.npz")
    assert member.weights in weights.name
    net = get_codec("vae", "image", weights=str(weights)).net
    assert member.params["counts_shares"] == net.counts.shares.tolist()
    other = (net.counts.shares + 1).clip(0, 16).tolist()
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, counts_shares=other)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, "vae", weights=str(weights)))
    assert again.weights == member.weights
    assert again.params["counts_shares"] != member.params["counts_shares"] and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


def test_older_wavenet_file_keeps_the_fixed_predictor_of_its_weights():
    """wavenet's weights v1 read the residual of the fixed second-order predictor, v2 that of an
    LPC per block stored in the chunk (params "block"). The older file names v1, records no
    "block" and decodes with v1; rewritten to name v2 (the negative control), its content no
    longer matches its checksum. Today's file names v2 and records "block"."""
    blob = (GOLDEN / "older-wavenet-v1-weights-audio.nz").read_bytes()
    _, [member] = container.loads(blob)
    [v1] = shipped_dir().glob("wavenet-audio-v1-*.npz")
    newest = shipped("wavenet-audio")
    assert member.weights in v1.name and v1 != newest and "block" not in member.params
    assert api.decompress_bytes(blob)[0][1]
    _, [current] = container.loads((GOLDEN / "wavenet-audio.nz").read_bytes())
    assert current.weights in newest.name and current.params["block"] > 0
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, weights=current.weights))


# the file coded today with the weights these older files were made with (local-ls-mlp's v3)
SAME_WEIGHTS_TODAY = {"local-ls-mlp": "older-local-ls-mlp-v3-weights-image.nz"}


@pytest.mark.parametrize("name, model, recorded", [
    ("older-context-mlp-fixed-head-image.nz", "context-mlp", None),
    ("older-local-ls-mlp-fixed-head-image.nz", "local-ls-mlp", None),
    ("older-context-mlp-hidden-head-image.nz", "context-mlp", HEAD_ONLINE),
    ("older-local-ls-mlp-hidden-head-image.nz", "local-ls-mlp", HEAD_ONLINE)])
def test_older_file_keeps_the_output_layer_it_was_written_with(name, model, recorded):
    """context-mlp and local-ls-mlp files written before today's output layer (today's weights,
    every other param as today's) decode with the layer they record: files without "head" with
    the trained layer, "head": 2 files with the layer learned from the hidden activations alone.
    Told the layer is today's ("head": 3, the negative control), the content no longer matches
    its checksum. Today's golden file records "head": 3, and coded again today the older file's
    content gets the same params as today's file and other chunks."""
    blob = (GOLDEN / name).read_bytes()
    _, [member] = container.loads(blob)
    _, [current] = container.loads((GOLDEN / SAME_WEIGHTS_TODAY.get(model, f"{model}-image.nz")).read_bytes())
    assert member.params.get("head") == recorded
    # today's params (local-ls-mlp's stand-in was written before stop 55's parity byte: "blend": 4, and
    # before stop 58's colour table)
    today = dict(current.params, blend=BLEND_PARITY_TAPS, colour_table=1)
    assert today == dict(member.params, head=HEAD_POSITIONS, colour=COLOUR_FLAGGED, blend=BLEND_PARITY_TAPS,
                         colour_table=1)
    assert member.weights == current.weights
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, head=HEAD_POSITIONS)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, model))
    assert again.params == today and again.chunks != member.chunks
    assert api.decompress_bytes(container.dumps([again])) == [(stored, restored)]


def test_older_file_without_colour_flags_is_read_so(monkeypatch):
    """classic files written before the colour flag (stop 43's coding, "blend": 4) record no
    "colour" and their chunks have no leading byte. Told they have one (the negative control), the
    file is refused. Coded again with stop 55's "blend": 5, the photo (no decoded JPEG) is coded as
    stored: the same chunk behind a leading STORED byte, a parity byte and a colour-table byte.
    Today's coding ("blend": 7, "colour_table": 1) gives today's golden file."""
    blob = (GOLDEN / "older-classic-no-colour-image.nz").read_bytes()
    _, [member] = container.loads(blob)
    _, [current] = container.loads((GOLDEN / "classic-image.nz").read_bytes())
    assert "colour" not in member.params
    assert current.params == dict(member.params, colour=COLOUR_FLAGGED, blend=BLEND_PARITY_TAPS, colour_table=1)
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, params=dict(member.params, colour=COLOUR_FLAGGED)))
    [(stored, restored)] = api.decompress_bytes(blob)
    _, [again] = container.loads(api.compress_bytes(restored, stored, "classic"))
    assert again.params == current.params and again.chunks == current.chunks
    recorded = ClassicImageCodec.blends_recorded
    monkeypatch.setattr(ClassicImageCodec, "blends_recorded", recorded[:recorded.index(BLEND_OLS_PARITY) + 1])
    _, [parity] = container.loads(api.compress_bytes(restored, stored, "classic"))
    assert parity.params == dict(current.params, blend=BLEND_OLS_PARITY)
    # stop 55's chunk: the colour byte, the parity byte (0: too small to split), then (since stop 58)
    # the colour-table byte (0: its colours do not repeat), then the same stream
    assert parity.chunks == [bytes([jpeg_colour.STORED, 0, 0]) + member.chunks[0]]


@pytest.mark.parametrize("model", ["classic", "local-ls", "context-mlp", "local-ls-mlp"])
def test_golden_decoded_jpeg_is_coded_in_ycbcr(model):
    """Each model built on classic has a golden file of a decoded JPEG: its one chunk is flagged
    YCbCr. Flagged as stored instead (the negative control), its content no longer matches its
    checksum."""
    blob = (GOLDEN / f"{model}-jpeg-image.nz").read_bytes()
    _, [member] = container.loads(blob)
    assert member.params["colour"] == COLOUR_FLAGGED and member.chunks[0][0] == jpeg_colour.YCBCR
    as_stored = [bytes([jpeg_colour.STORED]) + member.chunks[0][1:]]
    with pytest.raises(ContainerError):
        api.decompress_bytes(_rewrite(blob, chunks=as_stored))
