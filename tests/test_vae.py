"""The VAE model coded with bits-back ANS: exact roundtrips for every mode and
odd shape, one chain over an archive, honest ELBO and initial-bits figures,
and damaged chains refused."""

import json
from pathlib import Path

import numpy as np
import pytest

from media_factory import image_file, smooth_image
from neuralzip import api, container
from neuralzip.coding.stream import AnsStack
from neuralzip.errors import ContainerError
from neuralzip.media.detect import read_media
from neuralzip.models import get_codec, vae, vae_layout
from neuralzip.models.base import Signal
from test_images import assert_same_image, roundtrip

CHAIN_MODES = ("L", "LA", "P", "RGB", "RGBA")  # 8-bit: the chain
FALLBACK_MODES = ("1", "I;16", "RGB16")  # other depths: the classic model
SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 301), (67, 31), (1, 1001), (997, 2)]


def _signal(img):
    return Signal("image", img.shape, 8)


@pytest.mark.parametrize("mode", CHAIN_MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_roundtrip_every_8bit_mode_and_odd_shape(mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, "vae"), "png")


@pytest.mark.parametrize("mode", FALLBACK_MODES)
def test_other_depths_use_the_classic_model(mode):
    data = image_file("png", mode, 13, 7)
    assert_same_image(data, roundtrip(data, "vae"), "png")
    _, [member] = container.loads(api.compress_bytes(data, "x.png", "vae"))
    assert member.params["fallback"] == "classic"


def test_patches_cut_and_join_exactly():
    img = smooth_image(19, 27, 3)
    x, shapes = vae.cut_units(img)
    assert len(x) == 3 * 4 and np.array_equal(vae.join_units(x, img.shape), img)
    assert np.array_equal(shapes[:, 0], np.repeat([8, 8, 3], 4)) and np.array_equal(shapes[:, 1], np.tile([8, 8, 8, 3], 3))
    # the padding the decoder rebuilds is the encoder's padding
    rebuilt = x.copy().astype(np.int64)
    yy, xx = np.divmod(np.arange(vae_layout.PIXELS), vae_layout.PATCH)
    for k, (vh, vw, nc) in enumerate(shapes):
        rebuilt[k][(yy >= vh) | (xx >= vw)] = 0
    vae.fill_padding(rebuilt, shapes)
    assert np.array_equal(rebuilt, x)


def test_chain_groups_cover_the_units_and_grow():
    for n in (1, 2, 3, 100, 5000):
        spans = vae_layout.group_spans(n)
        assert spans[0] == (0, 1) and spans[-1][1] == n
        assert all(a == b for (_, a), (b, _) in zip(spans, spans[1:]))
        assert max(e - a for a, e in spans) <= vae_layout.MAX_GROUP


def test_ans_stack_pops_what_was_pushed_in_reverse():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 100, (50, 9)).astype(np.float64)
    sym = rng.integers(0, 9, 50)
    low, nbits = rng.integers(0, 1 << 20, 50), rng.integers(0, 21, 50)
    low &= (1 << nbits) - 1
    stack = AnsStack()
    stack.push_low_bits(low, nbits)
    stack.push(sym, counts)
    back = AnsStack(stack.finish())
    assert np.array_equal(back.pop(counts), sym)
    assert np.array_equal(back.pop_low_bits(nbits), low)
    assert back.is_empty()


def test_coded_size_is_the_negative_elbo_plus_initial_bits():
    """Bits-back gives the borrowed bits back: the stack holds the exact model's -ELBO plus the
    chain's initial bits, within the ANS coder's small overhead (either way: constriction's own
    quantization of the posterior rows changes what a pop gives back a little); float and exact
    are reported."""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    enc = get_codec("vae", "image").encode(media.samples, _signal(media.samples))
    coded = 8 * sum(len(c) for c in enc.chunks)
    assert enc.initial_bits > 0
    assert 0.995 * (enc.nll_bits + enc.initial_bits) <= coded <= 1.01 * (enc.nll_bits + enc.initial_bits) + 64
    assert enc.nll_float_bits != enc.nll_bits and abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.05


def test_one_chain_over_an_archive(tmp_path):
    """Several images: one stream, stored with the first member, and the initial bits paid once, by
    the member whose patch the encoder's chain starts with (with context, one in the last wave:
    here the largest image)."""
    codec = get_codec("vae", "image")
    images = [smooth_image(16 + 3 * i, 24, 3, seed=i) for i in range(5)]
    encs = codec.encode_set([(im, _signal(im)) for im in images])
    assert len(encs[0].chunks) == 1 and all(not e.chunks for e in encs[1:])
    assert encs[-1].initial_bits > 0 and all(e.initial_bits == 0 for e in encs[:-1])
    decoded = codec.decode_set([(e.params, e.chunks, _signal(im)) for e, im in zip(encs, images)])
    assert all(np.array_equal(a, b) for a, b in zip(decoded, images))
    # alone, a later member cannot be decoded
    with pytest.raises(ContainerError):
        codec.decode_set([(encs[1].params, encs[1].chunks, _signal(images[1]))])


def test_archive_with_cli_restores_every_member(tmp_path, run_cli):
    src = tmp_path / "set"
    (src / "sub").mkdir(parents=True)
    files = {"a.png": image_file("png", "RGB", 20, 30), "sub/b.png": image_file("png", "L", 9, 40),
             "c.png": image_file("png", "RGB16", 5, 6)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    r = run_cli("compress", str(src), "-o", str(tmp_path / "set.nz"), "--model", "vae", "--json")
    assert r.returncode == 0, r.stderr
    reports = {Path(d["file"]).name: d for d in map(json.loads, r.stdout.splitlines())}
    # the chain's start is paid once and shown apart; the 16-bit image is not on the chain
    assert sorted(reports) == ["a.png", "b.png", "c.png"] and "initial_bits" not in reports["c.png"]
    assert sum(reports[n]["initial_bits"] > 0 for n in ("a.png", "b.png")) == 1
    archive = (tmp_path / "set.nz").stat().st_size
    assert sum(d["bytes"] for d in reports.values()) <= archive
    r = run_cli("decompress", str(tmp_path / "set.nz"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        assert_same_image(data, (tmp_path / "out" / name).read_bytes(), "png")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_chain_is_refused(damage):
    blob = api.compress_bytes(image_file("png", "RGB", 40, 40), "x.png", "vae")
    _, [member] = container.loads(blob)
    data = member.chunks[0]
    member.chunks[0] = data[:-8] if damage == "truncate" else data[:20] + bytes([data[20] ^ 0x5A]) + data[21:]
    with pytest.raises(ContainerError):
        api.decode_member(member)


def test_cheap_start_never_borrows_more_than_the_stack_holds():
    """Flat patches first cost almost nothing, so the stack is nearly empty when the next groups
    would borrow: those groups are seeded (listed, paid as initial bits) and decoding is exact.
    (The encoder's chain starts at the last wave: the flat half is the bottom one.)"""
    rng = np.random.default_rng(3)
    img = np.full((48, 200, 3), 128, np.uint8)
    img[:24] = rng.integers(0, 256, (24, 200, 3), dtype=np.uint8)
    codec = get_codec("vae", "image")
    enc = codec.encode(img, _signal(img))
    [seeded] = enc.params["seeded"]
    assert seeded[0] == 0 and len(seeded) > 1
    assert np.array_equal(codec.decode(enc.params, enc.chunks, _signal(img)), img)
    flat = np.full((40, 40, 3), 7, np.uint8)
    enc = codec.encode(flat, _signal(flat))
    assert np.array_equal(codec.decode(enc.params, enc.chunks, _signal(flat)), flat)


def test_archive_with_a_weights_file_is_one_chain():
    """--weights gives every member the same codec, so an archive is still one chain that decodes."""
    path = str(get_codec("vae", "image").path)
    medias = [read_media(image_file("png", "RGB", 12 + i, 20)) for i in range(3)]
    members = api.encode_members([(m, f"{i}.png") for i, m in enumerate(medias)], "vae", path)
    assert members[0].params["chain"] == 3 and all(not m.chunks for m in members[1:])
    restored = api.decode_members(members, path)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(restored, medias))


def _grid_positions(grids):
    """Each unit's (plane, patch row, patch column), in cut_units' numbering."""
    return [(p, r, c) for p, (ph, pw) in enumerate(grids) for r in range(ph) for c in range(pw)]


def test_waves_put_every_context_before_its_patch():
    """With context, the decoder (the chain's positions backwards) meets every patch after the
    patches its context comes from, and no group mixes waves (its patches are decoded at once)."""
    grids = [(3, 5), (4, 2), (1, 1), (3, 5)]
    plan = vae.ChainOrder(grids, context=True)
    n = sum(ph * pw for ph, pw in grids)
    assert sorted(plan.order) == list(range(n))
    units = _grid_positions(grids)
    position = {units[u]: k for k, u in enumerate(plan.order)}
    for (p, r, c), k in position.items():
        for dr, dc in ((-1, -1), (-1, 0), (0, -1)):
            if r + dr >= 0 and c + dc >= 0:
                assert position[(p, r + dr, c + dc)] > k
    for a, e in plan.spans(0, n):
        assert len(set(plan.waves[a:e])) == 1
    # without context (weights before v3) the chain keeps cut_units' order and groups
    plain = vae.ChainOrder(grids, context=False)
    assert np.array_equal(plain.order, np.arange(n)) and plain.spans(0, n) == vae_layout.group_spans(n)


def test_context_is_the_pixels_above_and_left_of_each_patch():
    """The context read off the chain's units is the padded plane's pixels at CONTEXT_OFFSETS, MISSING
    outside it; the trainer's windows give the same inputs as the codec for the same patch."""
    from neuralzip.train.vae import MARGIN, split_windows

    img = smooth_image(21, 30, 3, seed=4)
    x, _ = vae.cut_units(img)
    grids = vae.plane_grids(img.shape)
    plan = vae.ChainOrder(grids, context=True)
    ctx = plan.context(x[plan.order], 0, len(x))
    ph, pw = grids[0]
    padded = np.pad(img, ((0, ph * 8 - 21), (0, pw * 8 - 30), (0, 0)), mode="edge").astype(np.int64)
    units = _grid_positions(grids)
    for k, u in enumerate(plan.order):
        _, r, c = units[u]
        want = np.full((vae_layout.CONTEXT_PIXELS, 3), vae_layout.MISSING)
        for j, (dy, dx) in enumerate(vae_layout.CONTEXT_OFFSETS):
            if 8 * r + dy >= 0 and 8 * c + dx >= 0 and (dy >= 0 or r > 0) and (dx >= 0 or c > 0):
                want[j] = padded[8 * r + dy, 8 * c + dx]
        assert np.array_equal(ctx[k, :-2], want.ravel()), (r, c)
        assert list(ctx[k, -2:]) == [255 * (r > 0), 255 * (c > 0)]
        if r > 0 and c > 0:  # an inner patch: the trainer's window around it
            window = padded[8 * r - MARGIN:8 * r + 8, 8 * c - MARGIN:8 * c + 8][None]
            patches, context = split_windows(window)
            assert np.array_equal(context[0], ctx[k]) and np.array_equal(patches[0], x[u])


def test_seeded_groups_beyond_the_chunks_groups_are_refused():
    """params.seeded may list only groups the chunk has: the header check allows any index below
    its unit count, the decoder then refuses one beyond the chunk's real groups in one line."""
    img = smooth_image(40, 40, 3, seed=2)
    codec = get_codec("vae", "image")
    enc = codec.encode(img, _signal(img))
    [seeded] = enc.params["seeded"]
    units = enc.params["units"]
    groups = len(vae.ChainOrder(vae.plane_grids(img.shape), codec.net.context).spans(0, units))
    assert groups < units
    assert np.array_equal(codec.decode(enc.params, enc.chunks, _signal(img)), img)
    damaged = dict(enc.params, seeded=[seeded + [units - 1]])
    assert codec.check_params(damaged, _signal(img), 1) is None
    with pytest.raises(ContainerError, match="seeded groups"):
        codec.decode(damaged, enc.chunks, _signal(img))
