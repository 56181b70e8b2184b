"""The vae's neighbour counts (weights v4 on): they read only what the decoder has, the encoder's
unlearning gives back every earlier state (halving included), the mixed rows keep every bucket,
files made with v3 weights (no counts) still decode while the counts change the stream, the
chain's shares per channel and phase (v5) are the ones it is decoded with, and the context's
activity (v6) is the documented formula of the neighbours' values and errors, the second table's
prediction (v7) the ring's median, its mixer with the first learns online and is undone with it,
the third's (v9) the ring's value nearest the first prediction, mixed by nested splits whose
gradients are those of the log mixture, and the tables start from the weights' prior (v7), which
the training counts from the residuals."""

from types import SimpleNamespace

import numpy as np
import pytest

from media_factory import smooth_image
from neuralzip.errors import InputError
from neuralzip.models import get_codec, vae, vae_layout as L
from neuralzip.models.base import Signal
from neuralzip.kernels import neighbour_counts as _k
from neuralzip.models.neighbour_counts import (COEF_BITS, CONTEXTS, DEFAULT, MAX_TAPS, PREV_CLASSES, SPAN, SPLIT_BITS,
                                               CountsParams, NeighbourCounts)
from neuralzip.train.neighbour_taps import position_taps
from neuralzip import weightstore


def _chain(img, params=DEFAULT):
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


RINGS_ONLY = CountsParams(DEFAULT.shares, DEFAULT.scale, DEFAULT.limit)  # v4's: no taps, no activity


def _with_taps(seed=0, activity=False, median=False, snap=False):
    """Counts parameters with the fitted taps' positions and random coefficients."""
    offsets, ntaps = position_taps()
    rng = np.random.default_rng(seed)
    coefs = rng.integers(-(1 << COEF_BITS), 1 << COEF_BITS, (3, L.PIXELS, MAX_TAPS + 1))
    return CountsParams(DEFAULT.shares, DEFAULT.scale, DEFAULT.limit, (offsets, ntaps, coefs), activity, median,
                        snap=snap)


@pytest.mark.parametrize("params", ["rings", "taps", "activity"])
def test_prediction_reads_only_what_the_decoder_has(params):
    """Scrambling every subpixel the decoder does not have yet at a step (and the padding), its
    value and its recorded error, changes no context and no prediction of that step; scrambling
    what it has does (negative control). With the linear taps (weights v5) and the activity (v6)."""
    img = smooth_image(29, 37, 3, seed=3)
    params = {"rings": RINGS_ONLY, "taps": _with_taps(), "activity": _with_taps(activity=True)}[params]
    counts, x, shapes, plan = _chain(img, params)
    rng = np.random.default_rng(0)
    if counts.errors is not None:
        counts.errors[...] = rng.integers(0, 40, counts.errors.shape)
    spans = plan.spans(0, len(x))
    checked = changed = 0
    for a, e in spans[::3]:
        for phase, c, units, pix in list(vae.coding_steps(shapes[a:e]))[::4]:
            if not len(units):
                continue
            ctx, pred = counts.predict(c, phase, a + units, pix)
            done = _decoded_before(plan, shapes, a, e, phase, c)
            saved = x.copy()
            saved_errors = None if counts.errors is None else counts.errors.copy()
            x[~done] = rng.integers(0, 256, int((~done).sum()))
            if counts.errors is not None:
                counts.errors[~done] = rng.integers(0, 256, int((~done).sum()))
            again = counts.predict(c, phase, a + units, pix)
            x[...] = saved
            if counts.errors is not None:
                counts.errors[...] = saved_errors
            assert np.array_equal(again[0], ctx) and np.array_equal(again[1], pred)
            x[done] = rng.integers(0, 256, int(done.sum()))
            other = counts.predict(c, phase, a + units, pix)
            x[...] = saved
            changed += not np.array_equal(other[1], pred)
            checked += 1
    assert checked > 10 and changed > checked // 2


def _linear(img, c, y, x, offsets, coefs):
    """The taps' linear prediction of channel c at (y, x), written out (None: a tap outside)."""
    ty, tx = y + offsets[:, 0], x + offsets[:, 1]
    h, w = img.shape[:2]
    if not len(offsets) or not np.all((ty >= 0) & (tx >= 0) & (ty < h) & (tx < w)):
        return None
    plane = img[..., c].astype(np.int64) - (img[..., c - 1] if c else 0)
    total = int(coefs[:len(offsets)] @ plane[ty, tx]) + int(coefs[MAX_TAPS])
    return min(255, max(0, (total + (1 << (COEF_BITS - 1))) // (1 << COEF_BITS) + (int(img[y, x, c - 1]) if c else 0)))


def test_the_snap_is_the_rings_value_nearest_the_taps_prediction():
    """v9 with the linear taps: the third prediction is the ring's value (R) or difference (G, B,
    plus the earlier channel's value) nearest the taps' prediction, the smaller of two as near;
    it differs from the median's and from the taps' on some subpixels and equals the taps' on
    others (a smooth image: a neighbour often holds the value predicted)."""
    img = smooth_image(32, 40, 3, seed=12)
    counts, x, shapes, plan = _chain(img, _with_taps(2, activity=True, median=True, snap=True))
    errors = np.zeros(img.shape, np.int64)
    checked = moved = equal = 0
    for a, e in plan.spans(0, len(x)):
        for phase, c, units, pix in vae.coding_steps(shapes[a:e]):
            ctx, pred = counts.predict(c, phase, a + units, pix)
            ys = plan.grid[a + units, 3] * L.PATCH + pix // L.PATCH
            xs = plan.grid[a + units, 4] * L.PATCH + pix % L.PATCH
            for k in range(len(units)):
                want = _activity_reference(img, errors, c, int(ys[k]), int(xs[k]), phase, int(pred[0, k]))
                assert pred[2, k] == want[3] and pred[1, k] == want[2]
            checked += len(units)
            moved += int(np.sum((pred[2] != pred[0]) & (pred[2] != pred[1])))
            equal += int(np.sum(pred[2] == pred[0]))
            values = x[a + units, pix, c]
            counts.learn(ctx, pred, values)
            counts.record(c, a + units, pix, pred)
            errors[ys, xs, c] = counts.errors[a + units, pix, c]
    assert checked == img.size and moved > checked // 20 and equal > checked // 20


def test_linear_taps_predict_as_documented_and_fall_back_to_the_rings_at_the_edges():
    """Where the decoder has every tap of a pixel's position, the prediction is the rounded linear
    combination (R of R's values, G and B the earlier channel plus one of the differences), and G's
    and B's context classes the earlier channel's residual from its own linear prediction; where a
    tap is missing (the photo's top and left edges) prediction and context are the rings', as
    without taps."""
    img = smooth_image(40, 48, 3, seed=9)
    params = _with_taps(1)
    offsets, ntaps, coefs = params.linear
    with_taps, x, shapes, plan = _chain(img, params)
    without, *_ = _chain(img, RINGS_ONLY)
    h, w = img.shape[:2]
    linear = fallback = reclassed = 0
    for a, e in plan.spans(0, len(x)):
        for phase, c, units, pix in vae.coding_steps(shapes[a:e]):
            ctx, pred = with_taps.predict(c, phase, a + units, pix)
            ring_ctx, ring_pred = without.predict(c, phase, a + units, pix)
            for k, (u, p) in enumerate(zip(a + units, pix)):
                y = plan.grid[u, 3] * L.PATCH + p // L.PATCH
                xx = plan.grid[u, 4] * L.PATCH + p % L.PATCH
                want = _linear(img, c, y, xx, offsets[p, :ntaps[p]], coefs[c, p])
                if want is None:
                    assert (pred[k], ctx[k]) == (ring_pred[k], ring_ctx[k])
                    fallback += 1
                    continue
                assert pred[k] == want
                want_ctx = ring_ctx[k]
                if c:
                    r = int(img[y, xx, c - 1]) - _linear(img, c - 1, y, xx, offsets[p, :ntaps[p]], coefs[c - 1, p])
                    want_ctx += min(int(abs(r) + 1).bit_length() - 1, 3) - ring_ctx[k] % PREV_CLASSES
                assert ctx[k] == want_ctx
                linear += 1
                reclassed += want_ctx != ring_ctx[k]
    assert linear > 4 * fallback > 0 and reclassed > 0


RING_OFFSETS = [[(0, -1), (0, 1), (-1, 0), (1, 0)],
                [(0, -2), (0, 2), (-2, 0), (2, 0), (-2, -2), (-2, 2), (2, -2), (2, 2)],
                [(0, -4), (0, 4), (-4, 0), (4, 0)]]


def _activity_reference(img, errors, c, y, x, phase, target=None):
    """The v6 context and ring prediction of channel c at (y, x) (no taps), written out from the
    documentation: the first ring with a neighbour the decoder has (an earlier wave of patches, or
    the pixel's own patch at an earlier phase), the activity class log2(1 + m + e) with m the mean
    absolute deviation of the ring's values (R) or of their differences from the earlier channel
    (G, B) and e the ring's mean error, and PREV_CLASSES classes of the earlier channel's residual
    from its ring mean; and (v7) the median of the ring's values or differences (the mean of the
    middle two, rounded up; plus the earlier channel's value at the pixel); and (v9) the snap: the
    ring's value or difference nearest `target` (the first prediction; the ring mean's when None)
    less the earlier channel's value, the smaller of two as near, plus that value."""
    h, w = img.shape[:2]
    v = img.astype(int).tolist()  # Python integers: no overflow, exact floor division
    for ring, offsets in enumerate(RING_OFFSETS):
        near = [(y + dy, x + dx) for dy, dx in offsets if 0 <= y + dy < h and 0 <= x + dx < w]
        near = [(a, b) for a, b in near if a // 8 + b // 8 < y // 8 + x // 8
                or (a // 8, b // 8) == (y // 8, x // 8) and L.PHASE[(a % 8) * 8 + b % 8] < phase]
        if near:
            break
    else:
        return (c * 4 + 3) * 8 * PREV_CLASSES, 128, 128, 128  # no ring: no activity, no earlier channel's class
    n = len(near)
    vals = [v[a][b][c] - (v[a][b][c - 1] if c else 0) for a, b in near]
    mad = sum(abs(n * t - sum(vals)) for t in vals)
    err = sum(int(errors[a, b, c]) for a, b in near)
    d = min(((n * n + n * err + mad) // (n * n)).bit_length() - 1, 7)
    s = sum(v[a][b][c] for a, b in near)
    prev, pred = 0, (2 * s + n) // (2 * n)
    if c:
        r = n * v[y][x][c - 1] - sum(v[a][b][c - 1] for a, b in near)
        pred = (2 * (s + r) + n) // (2 * n)
        prev = min((1 + abs(r) // n).bit_length() - 1, PREV_CLASSES - 1)
    mid = sorted(vals)
    median = mid[n // 2] if n % 2 else (mid[n // 2 - 1] + mid[n // 2] + 1) // 2
    base = v[y][x][c - 1] if c else 0
    median += base
    pred = min(255, max(0, pred))
    aim = (pred if target is None else target) - base
    snap = min(sorted(vals), key=lambda t: abs(t - aim)) + base
    return ((c * 4 + ring) * 8 + d) * PREV_CLASSES + prev, pred, min(255, max(0, median)), min(255, max(0, snap))


@pytest.mark.parametrize("tables", [1, 2, 3])
def test_activity_context_is_the_documented_formula(tables):
    """Weights v6: every context and prediction (rings, no taps) equals the written-out formula, given
    the errors recorded so far; the errors the decoder records are |value - prediction| capped at
    255; the same pixels without the activity (v4's context) are classed otherwise on some. v7
    (2 tables): the second prediction is the ring's median, the first and the errors as before;
    v9 (3 tables): the third the ring's value nearest the first."""
    img = smooth_image(27, 35, 3, seed=11)
    img[10:20, 5:25] = np.random.default_rng(4).integers(0, 256, (10, 20, 3))  # a busy region
    median = tables > 1
    params = _params(tables)
    counts, x, shapes, plan = _chain(img, params)
    plain, *_ = _chain(img, RINGS_ONLY)
    errors = np.zeros(img.shape, np.int64)  # the recorded errors, in image coordinates
    checked = differ = 0
    for a, e in plan.spans(0, len(x)):
        for phase, c, units, pix in vae.coding_steps(shapes[a:e]):
            ctx, both = counts.predict(c, phase, a + units, pix)
            pred = both[0] if median else both
            plain_ctx, plain_pred = plain.predict(c, phase, a + units, pix)
            assert np.array_equal(pred, plain_pred)
            ys = plan.grid[a + units, 3] * L.PATCH + pix // L.PATCH
            xs = plan.grid[a + units, 4] * L.PATCH + pix % L.PATCH
            for k in range(len(units)):
                want = _activity_reference(img, errors, c, int(ys[k]), int(xs[k]), phase)
                assert (ctx[k], pred[k]) == want[:2]
                assert not median or both[1, k] == want[2]
                assert tables < 3 or both[2, k] == want[3]
            values = x[a + units, pix, c]
            counts.learn(ctx, both, values)
            counts.record(c, a + units, pix, both)
            assert np.array_equal(counts.errors[a + units, pix, c], np.minimum(np.abs(values - pred), 255))
            errors[ys, xs, c] = counts.errors[a + units, pix, c]
            checked += len(units)
            differ += int(np.sum(ctx != plain_ctx))
    assert checked == img.size and 0 < differ < checked


def _state(counts):
    return [counts.tables.copy(), counts.totals.copy(), counts.logits.copy()]


def _params(tables, **kw):
    """DEFAULT's counts with 1, 2 (v7: the median's) or 3 tables (v9: and the snap's)."""
    kw = {"scale": DEFAULT.scale, "limit": DEFAULT.limit, **kw}
    return CountsParams(DEFAULT.shares, kw.pop("scale"), kw.pop("limit"), activity=True, median=tables > 1,
                        snap=tables > 2, **kw)


@pytest.mark.parametrize("tables", [1, 2, 3])
def test_unlearning_gives_back_every_earlier_state_through_halving(tables):
    """The encoder learns a chunk's steps, then unlearns them backwards: each unlearn restores the
    counts before that step exactly, also where a step halved a context (a low limit here), and
    with more tables (v7, v9) every table and the mixer's logits, which the steps moved."""
    params = _params(tables, scale=3, limit=256)
    median = tables > 1
    counts = NeighbourCounts(params, np.zeros((1, L.PIXELS, 3), np.uint8), np.zeros((1, 5), np.int64),
                             np.zeros(1, np.int64), np.zeros((1, 3), np.int64), L.PHASE)
    rng = np.random.default_rng(1)
    steps, before = [], []
    for s in range(60):
        n = int(rng.integers(0, 40))
        ctx = rng.integers(0, 3, n).astype(np.int64) * PREV_CLASSES  # few contexts, so they fill and halve
        pred = rng.integers(0, 256, (tables, n) if median else n).astype(np.int64)
        values = np.clip((pred[0] if median else pred) + rng.integers(-3, 4, n), 0, 255).astype(np.int64)
        before.append(_state(counts))
        counts.learn(ctx, pred, values, s)
        steps.append((ctx, pred, values))
    assert counts._halved, "the low limit made some step halve"
    assert not median or counts.logits[0, :3].min() > 0, "the taps' table, nearer the values, gained its part"
    for s in reversed(range(60)):
        counts.unlearn(*steps[s], s)
        assert all(np.array_equal(a, b) for a, b in zip(_state(counts), before[s]))
    assert not any(t.any() for t in _state(counts))


def test_mixed_rows_keep_every_bucket_and_follow_the_share():
    counts, *_ = _chain(smooth_image(9, 9, 3), CountsParams(DEFAULT.shares, DEFAULT.scale, DEFAULT.limit))
    rng = np.random.default_rng(2)
    n = 50
    vae_rows = rng.integers(1, 1 << 16, (n, vae.N_BUCKETS)).astype(np.float64)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, n).astype(np.int64)
    vae_preds = rng.integers(0, 256, n).astype(np.int64)
    counts.tables[...] = rng.integers(0, 50, (1, CONTEXTS, SPAN))
    counts.totals[...] = counts.tables.sum(2)
    rows = counts.rows(1, 5, ctx, pred, vae_preds, vae_rows)
    assert rows.shape == vae_rows.shape and rows.min() >= 1 and np.array_equal(rows, np.rint(rows))
    # at a step whose share is all the vae's: the vae's rows rescaled; none of it: the same rows
    # whatever the vae says; each step reads its own channel's and phase's share
    shares = np.full((3, L.N_PHASES), 8)
    shares[1, 5], shares[2, 0] = 16, 0
    counts.params = counts.params.with_shares(shares)
    alone = counts.rows(1, 5, ctx, pred, vae_preds, vae_rows)
    assert np.allclose(alone / alone.sum(1, keepdims=True), vae_rows / vae_rows.sum(1, keepdims=True), atol=1e-5)
    a = counts.rows(2, 0, ctx, pred, vae_preds, vae_rows)
    b = counts.rows(2, 0, ctx, pred, vae_preds, vae_rows[::-1].copy())
    assert np.array_equal(a, b)
    assert not np.array_equal(counts.rows(1, 4, ctx, pred, vae_preds, vae_rows), alone)


def _splits(n, *values):
    return np.array([[v] * n for v in values], np.int64).reshape(len(values), n)


def test_tables_mix_by_their_parts():
    """v7, v9: with the first split whole, the rows are the first table's alone exactly; with none
    of it, the rest's: with the second split whole the second table's alone (at its own
    predictions), with none the third's; in between, other rows, every bucket at least 1; the same
    for the low bits' rows. The parts are the nested splits' and sum to the whole."""
    rng = np.random.default_rng(5)
    n = 40
    vae_rows = rng.integers(1, 1 << 16, (n, vae.N_BUCKETS)).astype(np.float64)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, (3, n)).astype(np.int64)
    vae_preds = rng.integers(0, 256, n).astype(np.int64)
    tables = rng.integers(0, 50, (3, CONTEXTS, SPAN)).astype(np.int32)
    share, scale, one = 6, 3, 1 << SPLIT_BITS

    def rows(*splits, t=slice(None)):
        return _k.mixed_rows(tables[t], ctx, pred[t], vae_preds, vae_rows, share, scale, 2, _splits(n, *splits))

    for t in range(3):  # one table alone, as three
        alone = rows(t=slice(t, t + 1))
        assert np.array_equal(alone, rows(*[[one, 0], [0, one], [0, 0]][t]))
    assert np.array_equal(rows(one, t=slice(0, 2)), rows(t=slice(0, 1)))
    assert np.array_equal(rows(0, t=slice(0, 2)), rows(t=slice(1, 2)))
    mid = rows(one // 2, one // 3)
    assert mid.min() >= 1 and all(not np.array_equal(mid, rows(t=slice(t, t + 1))) for t in range(3))
    parts = _k.mixture_parts(_splits(n, one // 2, one // 3), 3)
    assert parts[:, 0].tolist() == [one // 2, (one // 2 * (one // 3)) >> SPLIT_BITS, one // 2 - parts[1, 0]]
    assert np.array_equal(_k.mixture_parts(_splits(n, 1000), 2)[1], np.full(n, one - 1000))
    sym = np.full(n, 40, np.int64)  # a bucket with low bits
    low = _k.low_rows(tables, ctx, pred, vae_preds, vae_rows, sym, share, scale, _splits(n, 0, 0))
    assert np.array_equal(low, _k.low_rows(tables[2:], ctx, pred[2:], vae_preds, vae_rows, sym, share, scale,
                                           _splits(n)))
    with pytest.raises(ValueError, match="split"):
        rows(one, t=slice(0, 1))  # a split too many


@pytest.mark.parametrize("tables", [2, 3])
def test_the_mixer_reads_the_rows_totals_as_it_would_count_them(tables):
    """mixed_rows hands each row's totals to the mixer's update (the decoder builds the rows,
    then learns the same step): the gradients are those the update counts itself; a total below 1
    is refused."""
    rng = np.random.default_rng(6)
    n = 300
    counts = rng.integers(0, 40, (tables, CONTEXTS, SPAN)).astype(np.int32)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, (tables, n)).astype(np.int64)
    values = rng.integers(0, 256, n).astype(np.int64)
    splits = rng.integers(1, 1 << SPLIT_BITS, (tables - 1, n)).astype(np.int64)
    mixer = ctx // PREV_CLASSES
    totals = np.zeros((tables, n), np.int64)
    _k.mixed_rows(counts, ctx, pred, values, np.ones((n, vae.N_BUCKETS)), 6, 3, 2, splits, totals)
    counted, read = (np.zeros((tables - 1, CONTEXTS // PREV_CLASSES), np.int64) for _ in range(2))
    _k.mixer_gradients(counts, ctx, pred, splits, values, 3, mixer, counted)
    _k.mixer_gradients(counts, ctx, pred, splits, values, 3, mixer, read, totals)
    assert np.array_equal(counted, read) and np.count_nonzero(read) > 10 * (tables - 1)
    other = np.zeros_like(read)  # negative control: other totals, other gradients (so they are read)
    _k.mixer_gradients(counts, ctx, pred, splits, values, 3, mixer, other, totals * 2)
    assert not np.array_equal(other, read)
    totals[1, 7] = 0
    with pytest.raises(ValueError, match="total"):
        _k.mixer_gradients(counts, ctx, pred, splits, values, 3, mixer, read, totals)


@pytest.mark.parametrize("tables", [2, 3])
def test_the_mixers_gradients_are_those_of_the_log_mixture(tables):
    """Each subpixel's gradient (its own mixer context here) is 2 * 2**PROB_BITS times the
    derivative of the log of the tables' mixture at its value with respect to each split's logit,
    the splits nested (the first table against the rest, then the second against the third): a
    float finite difference agrees to 1% where the gradient is not tiny; the two logits' gradients
    differ (negative control: they are not the same number twice)."""
    rng = np.random.default_rng(9)
    n = 200
    counts = rng.integers(0, 40, (tables, CONTEXTS, SPAN)).astype(np.int32)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(100, 156, (tables, n)).astype(np.int64)
    values = rng.integers(90, 166, n).astype(np.int64)
    logits = rng.normal(0, 1.5, (tables - 1, n))
    one = 1 << SPLIT_BITS
    splits = np.rint(one / (1 + np.exp(-logits))).astype(np.int64)
    logits = np.log(splits / (one - splits))  # the logits the integer splits stand for
    grads = np.zeros((tables - 1, n), np.int64)
    _k.mixer_gradients(counts, ctx, pred, splits, values, 3, np.arange(n, dtype=np.int64), grads)
    probs = np.empty((tables, n))
    for t in range(tables):
        _k.value_probabilities(counts[t], ctx, pred[t], values, 3, probs[t])

    def log_mixture(lg):
        s = 1 / (1 + np.exp(-lg))
        rest = probs[1] if tables == 2 else s[1] * probs[1] + (1 - s[1]) * probs[2]
        return np.log(s[0] * probs[0] + (1 - s[0]) * rest)

    for i in range(tables - 1):
        step = np.zeros_like(logits)
        step[i] = 1e-6
        want = (log_mixture(logits + step) - log_mixture(logits - step)) / 2e-6 * 2 * 2.0 ** _k.LAYOUT["PROB_BITS"]
        big = np.abs(want) > 2.0 ** 14
        assert big.sum() > n // 4
        assert np.allclose(grads[i][big], want[big], rtol=1e-2)
    assert tables == 2 or not np.array_equal(grads[0], grads[1])


def _v3_codec():
    return vae.VAECodec(next(weightstore.shipped_dir().glob("vae-image-v3-*.npz")))


def test_counts_change_the_stream_and_v3_files_still_decode():
    """The shipped weights mix in the counts: the stream differs from v3's, each decodes exactly with
    its own weights, and the shipped weights' stream decoded without the counts is refused or wrong
    (negative control)."""
    shipped, v3 = get_codec("vae", "image"), _v3_codec()
    assert shipped.net.counts is not None and v3.net.counts is None
    _each_decodes_with_its_own_weights_only(shipped, v3, smooth_image(40, 48, 3, seed=5))


def _each_decodes_with_its_own_weights_only(codec, other, img):
    """The two codecs code img into different streams, each decodes its own exactly, and codec's
    stream read by other is refused or wrong (the negative control)."""
    sig = Signal("image", img.shape, 8)
    mine, theirs = codec.encode(img, sig), other.encode(img, sig)
    assert mine.chunks != theirs.chunks
    assert np.array_equal(codec.decode(mine.params, mine.chunks, sig), img)
    assert np.array_equal(other.decode(theirs.params, theirs.chunks, sig), img)
    try:
        wrong = other.decode(mine.params, mine.chunks, sig)
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


@pytest.mark.parametrize("share, shape, scale, limit", [(17, (3, 7), 3, 1 << 16), (-1, (3, 7), 3, 1 << 16),
                                                       (8, (3, 6), 3, 1 << 16), (8, (3, 7), 0, 1 << 16),
                                                       (8, (3, 7), 3, 10)])
def test_counts_parameters_out_of_range_are_refused(tmp_path, share, shape, scale, limit):
    z = weightstore.load(get_codec("vae", "image").path)
    shares = np.full(shape, 8, np.int64)
    shares[-1, -1] = share
    z.update(DEFAULT.arrays())
    z.update({"counts.shares": shares, "counts.scale": np.int64(scale), "counts.limit": np.int64(limit)})
    path = weightstore.save(z, tmp_path, "vae-image", 5)
    with pytest.raises(InputError, match="neighbour counts"):
        vae.VAECodec(path).net


@pytest.mark.parametrize("activity", [2, -1])
def test_an_activity_flag_out_of_range_is_refused(tmp_path, activity):
    z = weightstore.load(get_codec("vae", "image").path)
    z["counts.activity"] = np.int64(activity)
    with pytest.raises(InputError, match="neighbour counts"):
        vae.VAECodec(weightstore.save(z, tmp_path, "vae-image", 6)).net


def test_files_of_weights_without_the_activity_decode_with_v5s_context(tmp_path):
    """The same networks and counts with the activity turned off (v5's context) code another stream;
    each decodes exactly with its own weights, and read with the other's it is refused or wrong."""
    v6 = vae.VAECodec(next(weightstore.shipped_dir().glob("vae-image-v6-*.npz")))
    assert v6.net.counts.activity and not v6.net.counts.median
    z = weightstore.load(v6.path)
    z["counts.activity"] = np.int64(0)
    plain = vae.VAECodec(weightstore.save(z, tmp_path, "vae-image", 6))
    assert not plain.net.counts.activity
    _each_decodes_with_its_own_weights_only(v6, plain, smooth_image(40, 48, 3, seed=12))


def _prior(seed=0, limit=1 << 16, tables=3):
    rng = np.random.default_rng(seed)
    prior = np.zeros((tables, CONTEXTS, SPAN), np.uint16)
    prior[..., SPAN // 2 - 20:SPAN // 2 + 21] = rng.integers(0, limit // 64, (tables, CONTEXTS, 41))
    return prior


def test_the_counts_start_from_the_prior_and_unlearn_back_to_it():
    """Every chain chunk's tables start as the weights' prior (totals its row sums); learning
    steps and unlearning them backwards gives the prior back."""
    params = DEFAULT.with_prior(_prior(3))
    img = smooth_image(24, 40, 3, seed=4)
    counts, x, shapes, plan = _chain(img, params)
    assert np.array_equal(counts.tables, params.prior) and np.array_equal(counts.totals, params.prior.sum(axis=2))
    steps = []
    for k, (phase, c, units, pix) in enumerate(vae.coding_steps(shapes)):
        ctx, pred = counts.predict(c, phase, units, pix)
        steps.append((ctx, pred, x[units, pix, c].astype(np.int64)))
        counts.learn(*steps[-1], k)
    assert not np.array_equal(counts.tables[0], params.prior[0])
    for k in reversed(range(len(steps))):
        counts.unlearn(*steps[k], k)
    assert np.array_equal(counts.tables, params.prior)
    assert np.array_equal(params.prior, DEFAULT.with_prior(_prior(3)).prior)  # the weights' own, untouched


@pytest.mark.parametrize("variant", ["another prior", "no prior", "no snap table", "no median or snap table"])
def test_files_of_v9_weights_decode_only_with_their_tables(tmp_path, variant):
    """The shipped weights (v9: the median's and the snap's tables and a prior) with another prior,
    with none, without the snap's table (v8's tables) or without both (the prior's first tables
    kept) code other streams; each decodes exactly with its own weights, and read with the other's
    it is refused or wrong."""
    shipped = get_codec("vae", "image")
    assert shipped.net.counts.median and shipped.net.counts.snap and shipped.net.counts.prior is not None
    z = weightstore.load(shipped.path)
    if variant == "another prior":
        z["counts.prior"] = _prior(7, tables=3)
    elif variant == "no prior":
        del z["counts.prior"]
    else:
        z["counts.snap"] = np.int64(0)
        z["counts.prior"] = z["counts.prior"][:2]
        if variant == "no median or snap table":
            z["counts.median"] = np.int64(0)
            z["counts.prior"] = z["counts.prior"][:1]
    other = vae.VAECodec(weightstore.save(z, tmp_path, "vae-image", 7))
    _each_decodes_with_its_own_weights_only(shipped, other, smooth_image(40, 48, 3, seed=13))


@pytest.mark.parametrize("change", ["shape", "negative", "float", "over the limit"])
def test_a_prior_out_of_range_is_refused(tmp_path, change):
    z = weightstore.load(get_codec("vae", "image").path)
    prior = _prior(1).astype(np.int64)
    if change == "shape":
        prior = prior[:-1]
    elif change == "negative":
        prior[1, 5, 7] = -1
    elif change == "float":
        prior = prior.astype(np.float64)
    else:
        prior[0, 9, :] = int(z["counts.limit"]) // SPAN + 1
    z["counts.prior"] = prior
    with pytest.raises(InputError, match="neighbour counts"):
        vae.VAECodec(weightstore.save(z, tmp_path, "vae-image", 7)).net


def test_the_trained_prior_is_the_residuals_scaled_to_its_weight():
    """counts_residuals counts each step's residual in its context, per table, as the codec's
    counts learn them; counts_prior scales each row to PRIOR_WEIGHT (fewer-counted rows kept),
    rounded."""
    from neuralzip.train.vae import PRIOR_WEIGHT, counts_prior

    img = smooth_image(17, 33, 3, seed=8)  # a last column and row of patches: some steps code nothing
    params = _with_taps(activity=True, median=True, snap=True)
    residuals = vae.counts_residuals(SimpleNamespace(counts=params), img)
    assert residuals.shape == (3, CONTEXTS, SPAN) and all(r.sum() == img.size for r in residuals)
    counts, x, shapes, plan = _chain(img, params)
    expect = np.zeros_like(residuals)
    for a, e in reversed(plan.spans(0, len(x))):  # the decoder's order: the last group first
        for phase, c, units, pix in vae.coding_steps(shapes[a:e]):
            ctx, pred = counts.predict(c, phase, a + units, pix)
            values = x[a + units, pix, c].astype(np.int64)
            for t in range(3):
                np.add.at(expect[t], (ctx, values - pred[t] + SPAN // 2), 1)
            counts.learn(ctx, pred, values)
            counts.record(c, a + units, pix, pred)
    assert np.array_equal(residuals, expect)
    rows = np.zeros((2, CONTEXTS, SPAN), np.int64)
    rows[0, 0, :4] = [3, 0, 1, 2]  # few: kept
    rows[1, 1, 10:12] = [3 * PRIOR_WEIGHT, PRIOR_WEIGHT]  # many: scaled to PRIOR_WEIGHT
    prior = counts_prior(rows, 1 << 16)
    assert prior.dtype == np.uint16 and prior[0, 0, :4].tolist() == [3, 0, 1, 2]
    assert prior[1, 1, 10:12].tolist() == [3 * PRIOR_WEIGHT // 4, PRIOR_WEIGHT // 4]
    assert prior.sum() == 6 + PRIOR_WEIGHT


def test_the_chain_records_its_shares_and_the_decoder_reads_them():
    """The chain's first member records the shares the counts were mixed in at, per channel and
    phase (those the encoder chose for it); a chunk coded at other shares decodes exactly at those
    only (negative control: read with one step's share changed, it is refused or wrong)."""
    img = smooth_image(40, 56, 3, seed=7)
    sig = Signal("image", img.shape, 8)
    codec = get_codec("vae", "image")
    enc = codec.encode(img, sig)
    _, x, shapes, plan = _chain(img)
    chosen = vae.chosen_shares(codec.net, x, shapes, plan)
    assert enc.params["counts_shares"] == chosen.tolist()
    assert np.array_equal(vae.chain_shares(enc.params), chosen)
    shares = np.arange(21).reshape(3, L.N_PHASES) % 17
    data, _, seeded = vae.encode_chain(codec.net, x, shapes, plan, 0, len(x), shares)
    out = np.zeros_like(x)
    vae.decode_chain(codec.net, data, out, shapes, plan, 0, len(x), seeded, shares)
    assert np.array_equal(out, x)
    wrong = np.zeros_like(x)
    other = shares.copy()
    other[1, 6] = 3
    try:
        vae.decode_chain(codec.net, data, wrong, shapes, plan, 0, len(x), seeded, other)
    except Exception as exc:  # noqa: BLE001 - a refusal is what we want
        assert "corrupt" in str(exc)
    else:
        assert not np.array_equal(wrong, x)


@pytest.mark.parametrize("shares, v3, message", [
    ([[8] * 7, [8] * 7, [17] + [8] * 6], False, "counts_shares"),
    ([[8] * 7, [8] * 7], False, "counts_shares"),
    ([[8] * 7, [8] * 7, [8] * 6], False, "counts_shares"),
    ([[8] * 7, [8] * 7, [8] * 7 + [8]], False, "counts_shares"),
    ([8] * 21, False, "counts_shares"),
    (None, False, "counts_share"),
    ("both", False, "counts_shares"),
    ([[8] * 7] * 3, True, "neighbour counts")])
def test_wrong_or_missing_shares_are_refused(shares, v3, message):
    """counts_shares must be 3 lists of N_PHASES shares in 0..16, alone (a v4 chain's single
    counts_share is read too); weights without counts refuse either."""
    from neuralzip.models.base import ParamError

    img = smooth_image(16, 16, 3)
    sig = Signal("image", img.shape, 8)
    enc = get_codec("vae", "image").encode(img, sig)
    params = dict(enc.params)
    if shares is None:
        del params["counts_shares"]
    elif shares == "both":
        params["counts_share"] = 8
    else:
        params["counts_shares"] = shares
    codec = _v3_codec() if v3 else get_codec("vae", "image")
    with pytest.raises(ParamError, match=message):
        codec.check_params(params, sig, len(enc.chunks))


@pytest.mark.parametrize("tables", [1, 2, 3])
def test_bucket_and_low_bits_code_the_mixture_value_by_value(tables):
    """A bucket's mass (mixed_rows) times its low bits' (low_rows) is the mixture of the vae's
    pmf (uniform within its bucket) and the counts' pmf at each value, to the rows' rounding (0.1%).
    With more tables (v7, v9), the counts' pmf is their mixture at the mixer's parts."""
    counts, *_ = _chain(smooth_image(9, 9, 3), _params(tables))
    median = tables > 1
    rng = np.random.default_rng(4)
    n = 400
    counts.tables[...] = rng.integers(0, 30, counts.tables.shape)
    counts.totals[...] = counts.tables.sum(2)
    counts.logits = rng.integers(-3 << 16, 3 << 16, counts.logits.shape)
    vae_rows = rng.integers(1, 1 << 16, (n, vae.N_BUCKETS)).astype(np.float64)
    ctx = rng.integers(0, CONTEXTS, n).astype(np.int64)
    pred = rng.integers(0, 256, (tables, n) if median else n).astype(np.int64)
    vae_preds = rng.integers(0, 256, n).astype(np.int64)
    values = rng.integers(0, 256, n).astype(np.int64)
    sym, nlow, low = vae.residual_symbols(values, vae_preds)
    shares = np.full((3, L.N_PHASES), 8)
    shares[0, 4] = 5
    counts.params = counts.params.with_shares(shares)
    rows = counts.rows(0, 4, ctx, pred, vae_preds, vae_rows)
    p = rows[np.arange(n), sym] / rows.sum(1)
    groups = counts.low_groups(0, 4, ctx, pred, vae_preds, vae_rows, sym)
    assert sorted(np.concatenate([idx for idx, _ in groups])) == list(np.flatnonzero(nlow > 0))
    for idx, low_rows in groups:
        assert low_rows.shape[1] == 2 ** nlow[idx[0]] and low_rows.min() >= 1
        p[idx] *= low_rows[np.arange(len(idx)), low[idx]] / low_rows.sum(1)
    w = 5 / 16
    p_counts = counts.probabilities(ctx, pred, values)
    p_vae = vae_rows[np.arange(n), sym] / vae_rows.sum(1) / 2.0 ** nlow
    # each part's mass rounds to an integer of the rows' total of about 2**24: 0.1%, or a few
    # 2**-24 absolute on the least likely values (a floor of 1/32 of a count, v8, makes them rarer)
    assert np.allclose(p, w * p_vae + (1 - w) * p_counts, rtol=1e-3, atol=1e-7)
    assert set(nlow) > {0}, "some values lie in buckets with low bits"
    # negative control: the low bits coded uniformly (v3's way) give another pmf
    uniform = rows[np.arange(n), sym] / rows.sum(1) / 2.0 ** nlow
    assert not np.allclose(uniform, w * p_vae + (1 - w) * p_counts, rtol=1e-2)


def _toned_print(h, w, seed):
    """R a noisy texture, G and B fixed curves of R (a toned print, like an old engraving's sepia):
    channels tied in a way the vae never saw, where the counts, which learn the photo, do better."""
    rng = np.random.default_rng(seed)
    r = np.clip(smooth_image(h, w, 1, seed=seed)[..., 0].astype(np.int64) + rng.integers(-60, 60, (h, w)), 0, 255)
    return np.stack([r, (r * r) // 255, 255 - (255 - r) ** 2 // 255], axis=2).astype(np.uint8)


def _exact_bits(net, x, shapes, plan, shares):
    """The exact model's bits of the chain's pixels (the latents' do not depend on the shares, only
    on where bits-back finds enough bits to borrow, which the shares move by chance)."""
    return vae.encode_chain(net, x, shapes, plan, 0, len(x), shares)[1].pixels


@pytest.mark.parametrize("image", ["smooth", "toned"])
def test_the_encoder_picks_each_steps_cheapest_share(image):
    """The shares the encoder records are, channel and phase each on its own, the ones that code the
    chain smallest: moving any one of them by a sixteenth up or down costs the exact model bits
    of the pixels (each step's share changes only that step's, since the counts never read the vae). On a
    print whose G and B follow R (`_toned_print`) they beat the weights' shares by far (the
    negative control: the weights' shares are not the cheapest there)."""
    img = smooth_image(32, 48, 3, seed=5) if image == "smooth" else _toned_print(32, 48, seed=5)
    net = get_codec("vae", "image").net
    _, x, shapes, plan = _chain(img)
    chosen = vae.chosen_shares(net, x, shapes, plan)
    assert chosen.shape == (3, L.N_PHASES) and chosen.min() >= 0 and chosen.max() <= 16
    best = _exact_bits(net, x, shapes, plan, chosen)
    for c in range(3):
        for phase in range(L.N_PHASES):
            for d in (-1, 1):
                if 0 <= chosen[c, phase] + d <= 16:
                    other = chosen.copy()
                    other[c, phase] += d
                    assert _exact_bits(net, x, shapes, plan, other) > best - 1, (c, phase, d)
    weights = _exact_bits(net, x, shapes, plan, net.counts.shares)
    assert weights > best
    if image == "toned":
        assert weights > 1.005 * best


def test_each_chunk_of_a_long_chain_is_coded_as_if_it_learned_its_counts_itself(monkeypatch):
    """A chain of several chunks (as photos over 4 megapixels make; here chunks of 8 patches): the
    encoder's choice of shares learns every chunk's counts, and hands the first chunk's to the
    coder instead of learning them again. The chunks' bytes are those each chunk gets learning its
    own counts, and the file decodes exactly. Negative control: another chunk's learned counts
    handed over give other bytes, or are refused."""
    monkeypatch.setattr(vae, "CHAIN_UNITS", 8)
    img = smooth_image(40, 56, 3, seed=3)
    sig = Signal("image", img.shape, 8)
    codec = get_codec("vae", "image")
    enc = codec.encode(img, sig)
    assert len(enc.chunks) == 5 and enc.params["chain_units"] == [8, 8, 8, 8, 3]
    assert np.array_equal(codec.decode(enc.params, enc.chunks, sig), img)
    _, x, shapes, plan = _chain(img)
    shares = vae.chosen_shares(codec.net, x, shapes, plan)
    assert enc.params["counts_shares"] == shares.tolist()
    for k, a in enumerate(range(0, len(x), 8)):
        assert vae.encode_chain(codec.net, x, shapes, plan, a, min(a + 8, len(x)), shares)[0] == enc.chunks[k]
    counts = vae._neighbour_counts(codec.net, x, shapes, plan, None)
    other = counts, vae._learn_chunk(counts, x, shapes, plan.spans(8, 16))
    try:
        data = vae.encode_chain(codec.net, x, shapes, plan, 0, 8, shares, other)[0]
    except ValueError:
        pass
    else:
        assert data != enc.chunks[0]


def test_share_costs_price_what_the_report_prices():
    """vae.share_costs (what training fits the shares on) at the chain's recorded shares, plus the
    latents' float bits, is the report's float -ELBO; at all-vae shares it is not (negative control)."""
    img = smooth_image(32, 40, 3, seed=8)
    codec = get_codec("vae", "image")
    net = codec.net
    enc = codec.encode(img, Signal("image", img.shape, 8))
    costs = vae.share_costs(net, img)
    assert costs.shape == (3, L.N_PHASES, 17)
    steps = np.arange(3)[:, None], np.arange(L.N_PHASES)[None, :]
    x, _ = vae.cut_units(img)
    plan = vae.ChainOrder(vae.plane_grids(img.shape), context=True)
    x = np.ascontiguousarray(x[plan.order])
    ctx = plan.context(x, 0, len(x))
    qmu, qls, z = net.float_posterior_draw(x, ctx, seed=0)
    log2_q, log2_p = net.float_latent_log2(qmu, qls, z, ctx)
    shares = vae.chain_shares(enc.params)
    assert costs[steps + (shares,)].sum() + log2_q - log2_p == pytest.approx(enc.nll_float_bits, rel=1e-9)
    assert costs[..., 16].sum() + log2_q - log2_p != pytest.approx(enc.nll_float_bits, rel=1e-3)
