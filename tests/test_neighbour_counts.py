"""The vae's neighbour counts (weights v4): they read only what the decoder has, the encoder's
unlearning gives back every earlier state (halving included), the mixed rows keep every bucket,
and files made with v3 weights (no counts) still decode while the counts change the stream."""

import numpy as np
import pytest

from media_factory import smooth_image
from neuralzip.errors import InputError
from neuralzip.models import get_codec, vae, vae_layout as L
from neuralzip.models.base import Signal
from neuralzip.models.neighbour_counts import CONTEXTS, SPAN, CountsParams, NeighbourCounts
from neuralzip import weightstore


def _chain(img, params=CountsParams(8, 3, 1 << 16)):
    """(counts, x, shapes, plan) of one image's chain, x in the chain's order."""
    x, shapes = vae.cut_units(img)
    plan = vae.ChainOrder(vae.plane_grids(img.shape), context=True)
    x, shapes = np.ascontiguousarray(x[plan.order]), shapes[plan.order]
    return NeighbourCounts(params, x, plan.grid, plan.position, shapes, L.PHASE), x, shapes, plan


def _decoded_before(plan, shapes, a, e, phase, c):
    """Mask [n, PIXELS, 3] of what the decoder has when it reaches step (phase, c) of group [a, e):
    the groups after it on the chain (decoded earlier), and its own earlier steps."""
    n = len(shapes)
    done = np.zeros((n, L.PIXELS, 3), bool)
    done[e:] = True
    for ph, ch, units, pix in vae.coding_steps(shapes[a:e]):
        if (ph, ch) == (phase, c):
            break
        done[a + units, pix, ch] = True
    return done


def test_prediction_reads_only_what_the_decoder_has():
    """Scrambling every subpixel the decoder does not have yet at a step (and the padding) changes
    no context and no prediction of that step; scrambling what it has does (negative control)."""
    img = smooth_image(29, 37, 3, seed=3)
    counts, x, shapes, plan = _chain(img)
    rng = np.random.default_rng(0)
    spans = plan.spans(0, len(x))
    checked = changed = 0
    for a, e in spans[::3]:
        for phase, c, units, pix in list(vae.coding_steps(shapes[a:e]))[::4]:
            if not len(units):
                continue
            ctx, pred = counts.predict(c, phase, a + units, pix)
            done = _decoded_before(plan, shapes, a, e, phase, c)
            saved = x.copy()
            x[~done] = rng.integers(0, 256, int((~done).sum()))
            again = counts.predict(c, phase, a + units, pix)
            x[...] = saved
            assert np.array_equal(again[0], ctx) and np.array_equal(again[1], pred)
            x[done] = rng.integers(0, 256, int(done.sum()))
            other = counts.predict(c, phase, a + units, pix)
            x[...] = saved
            changed += not np.array_equal(other[1], pred)
            checked += 1
    assert checked > 10 and changed > checked // 2


def test_unlearning_gives_back_every_earlier_state_through_halving():
    """The encoder learns a chunk's steps, then unlearns them backwards: each unlearn restores the
    counts before that step exactly, also where a step halved a context (a low limit here)."""
    counts = NeighbourCounts(CountsParams(8, 3, 256), np.zeros((1, L.PIXELS, 3), np.uint8),
                             np.zeros((1, 5), np.int64), np.zeros(1, np.int64), np.zeros((1, 3), np.int64), L.PHASE)
    rng = np.random.default_rng(1)
    steps, before = [], []
    for s in range(60):
        n = int(rng.integers(0, 40))
        ctx = rng.integers(0, 3, n).astype(np.int64)  # few contexts, so they fill and halve
        pred = rng.integers(0, 256, n).astype(np.int64)
        values = np.clip(pred + rng.integers(-3, 4, n), 0, 255).astype(np.int64)
        before.append((counts.counts.copy(), counts.totals.copy()))
        counts.learn(ctx, pred, values, s)
        steps.append((ctx, pred, values))
    assert counts._halved, "the low limit made some step halve"
    for s in reversed(range(60)):
        counts.unlearn(*steps[s], s)
        assert np.array_equal(counts.counts, before[s][0]) and np.array_equal(counts.totals, before[s][1])
    assert not counts.counts.any() and not counts.totals.any()


def test_mixed_rows_keep_every_bucket_and_follow_the_share():
    counts, *_ = _chain(smooth_image(9, 9, 3))
    rng = np.random.default_rng(2)
    n = 50
    vae_rows = rng.integers(1, 1 << 16, (n, vae.N_BUCKETS)).astype(np.float64)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, n).astype(np.int64)
    vae_preds = rng.integers(0, 256, n).astype(np.int64)
    counts.counts[...] = rng.integers(0, 50, (CONTEXTS, SPAN))
    counts.totals[...] = counts.counts.sum(1)
    rows = counts.rows(ctx, pred, vae_preds, vae_rows)
    assert rows.shape == vae_rows.shape and rows.min() >= 1 and np.array_equal(rows, np.rint(rows))
    # all the vae's: the vae's rows rescaled; none of it: the same rows whatever the vae says
    counts.params.share = 16
    alone = counts.rows(ctx, pred, vae_preds, vae_rows)
    assert np.allclose(alone / alone.sum(1, keepdims=True), vae_rows / vae_rows.sum(1, keepdims=True), atol=1e-5)
    counts.params.share = 0
    a = counts.rows(ctx, pred, vae_preds, vae_rows)
    b = counts.rows(ctx, pred, vae_preds, vae_rows[::-1].copy())
    assert np.array_equal(a, b)


def _v3_codec():
    return vae.VAECodec(next(weightstore.shipped_dir().glob("vae-image-v3-*.npz")))


def test_counts_change_the_stream_and_v3_files_still_decode():
    """The shipped weights mix in the counts: the stream differs from v3's, each decodes exactly with
    its own weights, and v4's stream decoded without the counts is refused or wrong (negative
    control)."""
    img = smooth_image(40, 48, 3, seed=5)
    sig = Signal("image", img.shape, 8)
    v4, v3 = get_codec("vae", "image"), _v3_codec()
    assert v4.net.counts is not None and v3.net.counts is None
    e4, e3 = v4.encode(img, sig), v3.encode(img, sig)
    assert e4.chunks != e3.chunks
    assert np.array_equal(v4.decode(e4.params, e4.chunks, sig), img)
    assert np.array_equal(v3.decode(e3.params, e3.chunks, sig), img)
    try:
        wrong = v3.decode(e4.params, e4.chunks, sig)
    except Exception as exc:  # noqa: BLE001 - a refusal is what we want
        assert "corrupt" in str(exc)
    else:
        assert not np.array_equal(wrong, img)


def test_report_mixes_the_float_model_too():
    """The float -ELBO mixes the same counts in: it stays within a few percent of the exact one
    (the vae alone in float would be several percent larger on a noisy image)."""
    img = smooth_image(48, 64, 3, seed=6)
    enc = get_codec("vae", "image").encode(img, Signal("image", img.shape, 8))
    assert abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.03


@pytest.mark.parametrize("share, scale, limit", [(17, 3, 1 << 16), (8, 0, 1 << 16), (8, 3, 10)])
def test_counts_parameters_out_of_range_are_refused(tmp_path, share, scale, limit):
    z = weightstore.load(get_codec("vae", "image").path)
    z.update({"counts.share": np.int64(share), "counts.scale": np.int64(scale), "counts.limit": np.int64(limit)})
    path = weightstore.save(z, tmp_path, "vae-image", 4)
    with pytest.raises(InputError, match="neighbour counts"):
        vae.VAECodec(path).net


def test_the_chain_records_its_share_and_the_decoder_reads_it():
    """The chain's first member records the share the counts were mixed in at (the weights' today);
    a chunk coded at another share decodes exactly at that share only (negative control: read at
    another, it is refused or wrong)."""
    img = smooth_image(40, 56, 3, seed=7)
    sig = Signal("image", img.shape, 8)
    codec = get_codec("vae", "image")
    enc = codec.encode(img, sig)
    assert enc.params["counts_share"] == codec.net.counts.share == 8
    x, shapes = vae.cut_units(img)
    plan = vae.ChainOrder(vae.plane_grids(img.shape), context=True)
    x, shapes = np.ascontiguousarray(x[plan.order]), shapes[plan.order]
    data, _, seeded = vae.encode_chain(codec.net, x, shapes, plan, 0, len(x), 3)
    out = np.zeros_like(x)
    vae.decode_chain(codec.net, data, out, shapes, plan, 0, len(x), seeded, 3)
    assert np.array_equal(out, x)
    wrong = np.zeros_like(x)
    try:
        vae.decode_chain(codec.net, data, wrong, shapes, plan, 0, len(x), seeded, 12)
    except Exception as exc:  # noqa: BLE001 - a refusal is what we want
        assert "corrupt" in str(exc)
    else:
        assert not np.array_equal(wrong, x)


@pytest.mark.parametrize("share, v3, message", [(17, False, "counts_share"), (None, False, "counts_share"),
                                                (8, True, "neighbour counts")])
def test_a_wrong_or_missing_share_is_refused(share, v3, message):
    from neuralzip.models.base import ParamError

    img = smooth_image(16, 16, 3)
    sig = Signal("image", img.shape, 8)
    enc = get_codec("vae", "image").encode(img, sig)
    params = dict(enc.params)
    if share is None:
        del params["counts_share"]
    else:
        params["counts_share"] = share
    codec = _v3_codec() if v3 else get_codec("vae", "image")
    with pytest.raises(ParamError, match=message):
        codec.check_params(params, sig, len(enc.chunks))


def test_bucket_and_low_bits_code_the_mixture_value_by_value():
    """A bucket's mass (mixed_rows) times its low bits' (low_rows) is the mixture of the vae's
    pmf (uniform within its bucket) and the counts' pmf at each value, to the rows' rounding (0.1%)."""
    from neuralzip.coding import buckets

    counts, *_ = _chain(smooth_image(9, 9, 3))
    rng = np.random.default_rng(4)
    counts.counts[...] = rng.integers(0, 30, (CONTEXTS, SPAN))
    counts.totals[...] = counts.counts.sum(1)
    n = 400
    vae_rows = rng.integers(1, 1 << 16, (n, vae.N_BUCKETS)).astype(np.float64)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, n).astype(np.int64)
    vae_preds = rng.integers(0, 256, n).astype(np.int64)
    values = rng.integers(0, 256, n).astype(np.int64)
    sym, nlow, low = vae.residual_symbols(values, vae_preds)
    rows = counts.rows(ctx, pred, vae_preds, vae_rows)
    p = rows[np.arange(n), sym] / rows.sum(1)
    groups = counts.low_groups(ctx, pred, vae_preds, vae_rows, sym)
    assert sorted(np.concatenate([idx for idx, _ in groups])) == list(np.flatnonzero(nlow > 0))
    for idx, low_rows in groups:
        assert low_rows.shape[1] == 2 ** nlow[idx[0]] and low_rows.min() >= 1
        p[idx] *= low_rows[np.arange(len(idx)), low[idx]] / low_rows.sum(1)
    w = counts.params.share / 16
    p_counts = counts.probabilities(ctx, pred, values)
    p_vae = vae_rows[np.arange(n), sym] / vae_rows.sum(1) / 2.0 ** nlow
    assert np.allclose(p, w * p_vae + (1 - w) * p_counts, rtol=1e-3)  # the rows round at 2**-20
    assert set(nlow) > {0}, "some values lie in buckets with low bits"
    # negative control: the low bits coded uniformly (v3's way) give another pmf
    uniform = rows[np.arange(n), sym] / rows.sum(1) / 2.0 ** nlow
    assert not np.allclose(uniform, w * p_vae + (1 - w) * p_counts, rtol=1e-2)
