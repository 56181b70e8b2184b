"""The vae's neighbour counts: a likelihood that learns the photo while it is decoded (weights v4 on).

The vae codes a patch's pixels given its latents z, and under bits-back the encoder picks each
group's z only after the groups decoded later are coded. So a part that adapts to the photo may
read decoded pixels, never z or anything computed from it. This one:

* predicts every subpixel from its decoded neighbours. "Decoded" is what the decoder surely has:
  an earlier wave of patches (vae.ChainOrder), or the pixel's own patch at an earlier phase; never
  the wave's other patches. Weights v5 on: a linear prediction from a few taps fixed per position
  in the patch (R from R's values there; G and B as the earlier channel's value plus a prediction
  of their difference from it), fitted in training (train/neighbour_taps.py). Where a tap is
  missing (the photo's top and left edges), and in v4: the mean of the first ring of the same
  channel that has any decoded neighbour (the 4 at distance 1, else the 8 at distance 2, else
  the 4 at distance 4), for G and B plus the earlier channel's residual from its own mean there;
* counts the residual (value - prediction) per context: channel, which ring, the ring's activity
  (8 classes), and for G and B the earlier channel's residual from its prediction (classes of
  log2(1 + |residual|)). Weights v6 on: the activity is log2(1 + m + e), m the mean absolute
  deviation of the ring's values (R) or of their differences from the earlier channel (G, B), e
  the mean of the ring's errors (|value - prediction| of each neighbour, kept as it is decoded),
  and the earlier channel's residual has 6 classes. Before (v4, v5): log2(1 + 2 m), m of the
  ring's values alone (G and B in a textured patch looked busy even where their differences from
  R were smooth), and 4 classes. Its pmf over the values
  0..255 is scale * count + 1, normalized; counts are learned after each coding step (a phase of
  one channel of a group of patches), and a context whose total passes `limit` is halved;
* weights v7 on: keeps a second table, of the residuals from another prediction, the median of
  the same ring's values (R) or differences (G, B; plus the earlier channel's value), in the
  same contexts, and mixes the two tables' pmfs. The first table's part, the split, is the
  sigmoid of a logit per mixer context (the counts' context without the earlier channel's
  class: channel, ring, activity; 96), learned online: after each step, before its values are
  counted, each logit moves by 1/20 of the sum over the step's subpixels of the gradient of the
  log of the tables' mixture at the true value (kernel mixer_gradients, integers; the
  sigmoid is a correctly rounded table). A linear predictor and a median err on different
  pixels (edges, texture), and the mixer learns, per context and photo, which to trust. The
  update reads the tables only, never the vae, which depends on z;
* weights v9 on: keeps a third table, of the residuals from the snap: the ring's value (R) or
  difference (G, B; plus the earlier channel's value) nearest the first prediction. Flat areas
  and edges often repeat a neighbour exactly (a decoded JPEG's blocks, posterized skies), which a
  linear prediction only comes near. The three are mixed by two nested splits, each the sigmoid
  of a logit per mixer context learned as v7's: the taps' table's part is the first split, the
  median's the second split of the rest, the snap's what is left (kernel mixture_parts);
* mixes that pmf, folded onto the vae's residual buckets, with the vae's row. The vae's share, in
  sixteenths, is one per channel and phase (v5, fitted in training: the vae leads in the sparse
  early phases, the counts in the dense late ones; v4 had one share, 8). A bucket's low bits are
  then coded with the same mixture within the bucket (the vae's part uniform there, the counts'
  value by value), so that the two together code the value-by-value mixture the float model
  prices (neuralzip/kernels/neighbour_counts.pyx, in integers).

The tables start in every chain chunk from the weights' prior (v7 on: per table and context, the
residuals counted on the training photos, scaled to a total of at most train.vae.PRIOR_WEIGHT:
a photo's first pixels are coded with what photos usually hold, not a uniform pmf; before v7,
empty), the mixer's logits at 0 (an even split). The decoder learns each step after it decodes
it; the encoder, which pushes the steps in the other order, first learns every step of the
chunk, then unlearns them backwards (restoring a context's counts where a step halved it, and
the mixer's logits), so each step is coded with the state it will be decoded with.
"""

import functools

import numpy as np

from neuralzip.coding import buckets
from neuralzip.exact import logistic
from neuralzip.kernels import neighbour_counts as _k
from neuralzip.models import vae_layout as L
from neuralzip.models.classic_image import thread_blocks

if (_k.LAYOUT["PATCH"], _k.LAYOUT["MAXV"]) != (L.PATCH, 255):
    raise ImportError("neuralzip.kernels.neighbour_counts was built for another patch layout: rebuild the package")

CONTEXTS = _k.LAYOUT["CONTEXTS"]
PREV_CLASSES = _k.LAYOUT["PREV_CLASSES"]  # a context's classes of the earlier channel's residual (v6; v4, v5 use 4)
SPAN = 2 * _k.LAYOUT["MAXV"] + 1
SHARES = 1 << _k.LAYOUT["SHARE_BITS"]


SPLIT_BITS = _k.LAYOUT["SPLIT_BITS"]
MIXER_CONTEXTS = CONTEXTS // PREV_CLASSES  # v7: the mixer's context is the counts' less the earlier channel's class
LOGIT_BITS = 16  # the mixer's logits in 1/2**LOGIT_BITS nat
LOGIT_TABLE_BITS = logistic.Z_STEPS.bit_length() - 1  # the sigmoid table's steps: 1/64 nat
LOGIT_LIMIT = 8 << LOGIT_BITS  # +-8 nats: each table keeps at least 1/3000 of the mixture
# the mixer's learning rate: a step's gradient (in 1/2**PROB_BITS) over this is its logits' change in
# 1/2**LOGIT_BITS nat, a rate of 1/20 (the float study: 0.05 gained more than 0.02 and 0.1)
MIXER_RATE = 20 << (_k.LAYOUT["PROB_BITS"] - LOGIT_BITS)
MAX_TAPS = _k.LAYOUT["MAX_TAPS"]
COEF_BITS = _k.LAYOUT["COEF_BITS"]
NO_TAPS = (np.zeros((0, MAX_TAPS, 2), np.int64), np.zeros(0, np.int64), np.zeros((0, 0, MAX_TAPS + 1), np.int64))


class CountsParams:
    """The part's integers, from a weights file (keys counts.*), checked: the vae's share of the
    mixture per channel and phase [3, N_PHASES] in 1/SHARES, the counts' scale and halving limit,
    (weights v5 on) the linear taps per position in the patch: taps [PIXELS, MAX_TAPS, 2]
    (dy, dx), ntaps [PIXELS] (how many are used), coefs [3, PIXELS, MAX_TAPS + 1] (the kernel's
    predict explains them), (v6 on: `activity`) the context's activity from the neighbours'
    errors and G's and B's differences, and (v7 on) `median`, a second table of counts of the
    residuals from the ring's median, mixed with the first by a mixer learned online, and
    `prior`, the tables every chain chunk starts from, [tables, CONTEXTS, SPAN] (None: empty); (v9
    on) `snap`, a third table, of the residuals from the ring's value nearest the first
    prediction."""

    def __init__(self, shares, scale: int, limit: int, linear=NO_TAPS, activity: bool = False,
                 median: bool = False, prior=None, snap: bool = False):
        shares = np.asarray(shares, np.int64)
        taps, ntaps, coefs = (np.ascontiguousarray(a, np.int64) for a in linear)
        if shares.shape != (3, L.N_PHASES) or not (
                np.all((shares >= 0) & (shares <= SHARES)) and 1 <= scale <= 64 and 256 <= limit <= 1 << 20):
            raise ValueError(f"neighbour counts parameters out of range: shares {shares.tolist()}, scale {scale}, "
                             f"limit {limit}")
        if len(ntaps) and (taps.shape != (L.PIXELS, MAX_TAPS, 2) or ntaps.shape != (L.PIXELS,)
                           or coefs.shape != (3, L.PIXELS, MAX_TAPS + 1) or ntaps.min() < 0 or ntaps.max() > MAX_TAPS
                           or np.abs(taps).max() > _k.LAYOUT["TAP_REACH"]
                           or np.abs(coefs).max() > _k.LAYOUT["COEF_LIMIT"]):
            raise ValueError("neighbour counts' linear taps out of range")
        if median and not activity:
            raise ValueError("neighbour counts' median table needs the activity context")
        if snap and not median:
            raise ValueError("neighbour counts' snap table needs the median's")
        self.tables = 1 + median + snap
        if prior is not None:
            prior = np.asarray(prior)
            if prior.shape != (self.tables, CONTEXTS, SPAN) or prior.dtype.kind not in "iu" or prior.min() < 0 \
                    or prior.astype(np.int64).sum(axis=2).max() > limit:
                raise ValueError("neighbour counts' prior out of range")
            prior = prior.astype(np.int32)
        self.prior = prior
        self.shares, self.scale, self.limit = shares, int(scale), int(limit)
        self.linear = taps, ntaps, coefs
        self.activity, self.median, self.snap = bool(activity), bool(median), bool(snap)

    @classmethod
    def from_weights(cls, z: dict) -> "CountsParams | None":
        """Weights v9 on: counts.snap 1; v7 on: counts.median 1 and counts.prior; v6 on: counts.activity 1; v5 on: a share
        per channel and phase (counts.shares) and linear taps; v4: one share (counts.share), the
        rings' prediction alone."""
        if "counts.scale" not in z:
            return None
        scale, limit = (int(np.asarray(z[k]).reshape(())) for k in ("counts.scale", "counts.limit"))
        activity, median, snap = (int(np.asarray(z.get(k, 0)).reshape(()))
                                  for k in ("counts.activity", "counts.median", "counts.snap"))
        if activity not in (0, 1) or median not in (0, 1) or snap not in (0, 1):
            raise ValueError(f"neighbour counts' activity, median or snap flag out of range: {activity}, {median}, "
                             f"{snap}")
        if "counts.shares" in z:
            return cls(z["counts.shares"], scale, limit, (z["counts.taps"], z["counts.ntaps"], z["counts.coefs"]),
                       bool(activity), bool(median), z.get("counts.prior"), bool(snap))
        return cls(np.full((3, L.N_PHASES), int(np.asarray(z["counts.share"]).reshape(()))), scale, limit)

    def arrays(self) -> dict:
        taps, ntaps, coefs = self.linear
        arrays = {"counts.shares": self.shares.copy(), "counts.scale": np.int64(self.scale),
                  "counts.limit": np.int64(self.limit), "counts.taps": taps.copy(), "counts.ntaps": ntaps.copy(),
                  "counts.coefs": coefs.copy(), "counts.activity": np.int64(self.activity)}
        if self.median:
            arrays["counts.median"] = np.int64(1)
        if self.snap:
            arrays["counts.snap"] = np.int64(1)
        if self.prior is not None:
            arrays["counts.prior"] = self.prior.astype(np.uint16)
        return arrays

    def _replaced(self, **changes) -> "CountsParams":
        kw = dict(shares=self.shares, scale=self.scale, limit=self.limit, linear=self.linear, activity=self.activity,
                  median=self.median, prior=self.prior, snap=self.snap)
        kw.update(changes)
        return CountsParams(**kw)

    def with_shares(self, shares) -> "CountsParams":
        return self._replaced(shares=shares)

    def with_prior(self, prior) -> "CountsParams":
        return self._replaced(prior=prior)


# what training starts from before it fits the shares and taps (v4 was made from v3 so, without the
# activity): half the vae's, counts + 1/32, halved past 2**16, no taps. The floor: v4 to v7 had
# counts + 1/3 (the float study benchmarks/experiments/vae_adaptive_mixture.py chose w = 0.5, a floor
# of 0.3, when the counts started empty); with v7's prior a lighter floor prices better on the
# tuning files, steadily from 1/3 to 1/64 (float mixture at the best shares: scale 3 3.2439, 8
# 3.2374, 16 3.2356, 24 3.2350, 32 3.2347, 40 3.2346, 64 3.2344), and v8 takes 32; v9 adds the
# snap's table
DEFAULT = CountsParams(np.full((3, L.N_PHASES), 8), 32, 1 << 16, activity=True, median=True, snap=True)


@functools.cache
def _sigmoid() -> np.ndarray:
    """2**CDF_BITS / (1 + e^-z) at z = i / Z_STEPS, |i| <= Z_MAX, the same on every machine."""
    return logistic.correctly_rounded_cdf()


def splits_of(logits: np.ndarray) -> np.ndarray:
    """The mixer's splits, in 1/2**SPLIT_BITS, at its logits in 1/2**LOGIT_BITS nat (clamped to
    +-LOGIT_LIMIT nats: a split stays in 1..2**SPLIT_BITS - 1): with two tables the first's part of
    the counts' mixture; with three, the first's and the second's of the rest (mixture_parts)."""
    steps = np.asarray(logits, np.int64) >> (LOGIT_BITS - LOGIT_TABLE_BITS)
    return _sigmoid()[steps + logistic.Z_MAX] >> (logistic.CDF_BITS - SPLIT_BITS)


class NeighbourCounts:
    """One chain chunk's counts, with the geometry to find each subpixel's neighbours. With more
    than one table (v7 on), a prediction is [tables, n]: the taps' (or rings' mean), the rings'
    median and (v9 on) the snap."""

    def __init__(self, params: CountsParams, x: np.ndarray, grid: np.ndarray, position: np.ndarray,
                 shapes: np.ndarray, phase_of: np.ndarray):
        """x: the chain's units [n, PIXELS, 3] uint8 (the decoder fills them as it goes); grid,
        position: ChainOrder's; shapes: the units' valid rows, columns, channels."""
        self.params = params
        self.x, self.grid, self.position, self.shapes = x, grid, position, shapes
        self.phase_of = np.ascontiguousarray(phase_of, np.int64)
        self.tables = np.zeros((params.tables, CONTEXTS, SPAN), np.int32) if params.prior is None \
            else params.prior.copy()
        self.totals = self.tables.sum(axis=2, dtype=np.int64)
        # v7 on: the mixer's logits, one per split (tables - 1) and mixer context
        self.logits = np.zeros((params.tables - 1, MIXER_CONTEXTS), np.int64)
        # each decoded subpixel's |value - prediction| (v6's activity reads the neighbours'); units
        # outside this chain chunk stay 0 on both sides
        self.errors = np.zeros(x.shape, np.uint8) if params.activity else None
        self._halved = {}  # step -> [(table, context, its counts and total before halving)], when kept
        self._logits = {}  # step -> the mixer's logits before it, when kept
        # the decoder's last rows' (contexts, predictions, the tables' totals per subpixel, the mixer's
        # splits): learning the same step reads them instead of computing them again
        self._row_totals = None

    def predict(self, c: int, phase: int, units: np.ndarray, pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contexts [n], predictions [n], or [tables, n] with more than one table) of channel c at
        the chain's subpixels (units, pix) of one step."""
        ctx = np.empty(len(units), np.int64)
        pred = np.empty((self.params.tables, len(units)), np.int64)
        _k.predict(self.x, self.grid, self.position, self.shapes, self.phase_of, c, phase,
                   np.ascontiguousarray(units, np.int64), np.ascontiguousarray(pix, np.int64), ctx, pred[0],
                   *self.params.linear, self.errors, pred[1] if self.params.median else None,
                   pred[2] if self.params.snap else None)
        return ctx, pred if self.params.tables > 1 else pred[0]

    def record(self, c: int, units: np.ndarray, pix: np.ndarray, pred: np.ndarray) -> None:
        """Keep the errors of a decoded step (channel c at the chain's subpixels (units, pix),
        predicted pred): later steps' activity reads them (the first prediction's). Nothing to
        keep before v6."""
        if self.errors is not None:
            err = np.abs(self.x[units, pix, c].astype(np.int64) - _first(pred))
            self.errors[units, pix, c] = np.minimum(err, 255)

    def _splits(self, ctx) -> np.ndarray:
        """The mixer's splits [tables - 1, n] at the subpixels' contexts."""
        return np.ascontiguousarray(splits_of(self.logits[:, ctx // PREV_CLASSES]))

    def rows(self, c, phase, ctx, pred, vae_preds, vae_rows) -> np.ndarray:
        """The vae's rows of channel c at `phase` mixed with the counts' pmf (same buckets)."""
        totals = None
        splits = self._splits(ctx)
        if self.params.tables > 1:
            totals = np.empty((self.params.tables, len(ctx)), np.int64)
            self._row_totals = (ctx, pred, totals, splits)
        return _k.mixed_rows(self.tables, ctx, per_table(pred), np.ascontiguousarray(vae_preds, np.int64),
                             np.ascontiguousarray(vae_rows, np.float64), self.params.shares[c, phase],
                             self.params.scale, thread_blocks(len(ctx), L.STEP_BLOCK), splits, totals)

    def low_groups(self, c, phase, ctx, pred, vae_preds, vae_rows, sym) -> list[tuple[np.ndarray, np.ndarray]]:
        """The low bits' rows of the subpixels whose buckets `sym` have any, grouped by how many:
        [(their indices, rows)], fewest bits first (the decoder's order; the encoder pushes them
        the other way round). With them, bucket and low bits code the mixture value by value."""
        sym = np.asarray(sym, np.int64)
        nlow = buckets.low_bit_counts(sym)
        groups = []
        for bits in np.unique(nlow[nlow > 0]):
            idx = np.flatnonzero(nlow == bits)
            groups.append((idx, _k.low_rows(self.tables, ctx[idx], np.ascontiguousarray(per_table(pred)[:, idx]),
                                            np.ascontiguousarray(vae_preds[idx], np.int64),
                                            np.ascontiguousarray(vae_rows[idx], np.float64), sym[idx],
                                            self.params.shares[c, phase], self.params.scale,
                                            self._splits(ctx[idx]))))
        return groups

    def probabilities(self, ctx, pred, values) -> np.ndarray:
        """The counts' probability of each value (the float model's mixture reads it)."""
        values = np.ascontiguousarray(values, np.int64)
        parts = _k.mixture_parts(self._splits(ctx), self.params.tables) / (1 << SPLIT_BITS)
        out = np.zeros(len(ctx), np.float64)
        one = np.empty(len(ctx), np.float64)
        for t, p in enumerate(per_table(pred)):
            _k.value_probabilities(self.tables[t], ctx, np.ascontiguousarray(p), values, self.params.scale, one)
            out += parts[t] * one
        return out

    def learn(self, ctx, pred, values, step: int | None = None) -> None:
        """Count one step's values (with more than one table, first the mixer learns from them);
        `step` keeps what halving and the mixer overwrite, so unlearn can undo it."""
        values = np.ascontiguousarray(values, np.int64)
        preds = np.ascontiguousarray(per_table(pred))
        if self.params.tables > 1:
            if step is not None:
                self._logits[step] = self.logits.copy()
            grads = np.zeros_like(self.logits)
            same_step = self._row_totals is not None and self._row_totals[0] is ctx and self._row_totals[1] is pred
            totals, splits = self._row_totals[2:] if same_step else (None, self._splits(ctx))
            _k.mixer_gradients(self.tables, ctx, preds, splits, values, self.params.scale, ctx // PREV_CLASSES, grads,
                               totals)
            self.logits = np.clip(self.logits + grads // MIXER_RATE, -LOGIT_LIMIT, LOGIT_LIMIT)
        self._row_totals = None
        halved = []
        for t in range(self.params.tables):
            _k.learn(self.tables[t], self.totals[t], ctx, preds[t], values, 1)
            full = np.flatnonzero(self.totals[t] > self.params.limit)
            if len(full) and step is not None:
                halved += [(t, j, self.tables[t, j].copy(), int(self.totals[t, j])) for j in full]
            if len(full):
                _k.halve_full(self.tables[t], self.totals[t], self.params.limit)
        if halved:
            self._halved[step] = halved

    def unlearn(self, ctx, pred, values, step: int) -> None:
        """Undo learn(ctx, pred, values, step), the last step learned and not yet undone."""
        for t, j, counts, total in reversed(self._halved.pop(step, [])):
            self.tables[t, j] = counts
            self.totals[t, j] = total
        preds = np.ascontiguousarray(per_table(pred))
        for t in range(self.params.tables):
            _k.learn(self.tables[t], self.totals[t], ctx, preds[t], np.ascontiguousarray(values, np.int64), -1)
        if self.params.tables > 1:
            self.logits = self._logits.pop(step)


def per_table(pred: np.ndarray) -> np.ndarray:
    """A step's predictions as predict gives them ([n], or [2, n] with the median's table) as
    [tables, n]."""
    return pred if pred.ndim == 2 else pred[None]


def _first(pred: np.ndarray) -> np.ndarray:
    """The first table's predictions (the taps', or the rings' mean where a tap is missing)."""
    return per_table(pred)[0]
