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
* mixes that pmf, folded onto the vae's residual buckets, with the vae's row. The vae's share, in
  sixteenths, is one per channel and phase (v5, fitted in training: the vae leads in the sparse
  early phases, the counts in the dense late ones; v4 had one share, 8). A bucket's low bits are
  then coded with the same mixture within the bucket (the vae's part uniform there, the counts'
  value by value), so that the two together code the value-by-value mixture the float model
  prices (neuralzip/kernels/neighbour_counts.pyx, in integers).

The counts start empty in every chain chunk. The decoder learns each step after it decodes it;
the encoder, which pushes the steps in the other order, first learns every step of the chunk,
then unlearns them backwards (restoring a context's counts where a step halved it), so each
step is coded with the counts it will be decoded with.
"""

import numpy as np

from neuralzip.coding import buckets
from neuralzip.kernels import neighbour_counts as _k
from neuralzip.models import vae_layout as L
from neuralzip.models.classic_image import thread_blocks

if (_k.LAYOUT["PATCH"], _k.LAYOUT["MAXV"]) != (L.PATCH, 255):
    raise ImportError("neuralzip.kernels.neighbour_counts was built for another patch layout: rebuild the package")

CONTEXTS = _k.LAYOUT["CONTEXTS"]
PREV_CLASSES = _k.LAYOUT["PREV_CLASSES"]  # a context's classes of the earlier channel's residual (v6; v4, v5 use 4)
SPAN = 2 * _k.LAYOUT["MAXV"] + 1
SHARES = 1 << _k.LAYOUT["SHARE_BITS"]


MAX_TAPS = _k.LAYOUT["MAX_TAPS"]
COEF_BITS = _k.LAYOUT["COEF_BITS"]
NO_TAPS = (np.zeros((0, MAX_TAPS, 2), np.int64), np.zeros(0, np.int64), np.zeros((0, 0, MAX_TAPS + 1), np.int64))


class CountsParams:
    """The part's integers, from a weights file (keys counts.*), checked: the vae's share of the
    mixture per channel and phase [3, N_PHASES] in 1/SHARES, the counts' scale and halving limit,
    (weights v5 on) the linear taps per position in the patch: taps [PIXELS, MAX_TAPS, 2]
    (dy, dx), ntaps [PIXELS] (how many are used), coefs [3, PIXELS, MAX_TAPS + 1] (the kernel's
    predict explains them), and (v6 on: `activity`) the context's activity from the neighbours'
    errors and G's and B's differences."""

    def __init__(self, shares, scale: int, limit: int, linear=NO_TAPS, activity: bool = False):
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
        self.shares, self.scale, self.limit = shares, int(scale), int(limit)
        self.linear = taps, ntaps, coefs
        self.activity = bool(activity)

    @classmethod
    def from_weights(cls, z: dict) -> "CountsParams | None":
        """Weights v6 on: counts.activity 1; v5 on: a share per channel and phase (counts.shares)
        and linear taps; v4: one share (counts.share), the rings' prediction alone."""
        if "counts.scale" not in z:
            return None
        scale, limit = (int(np.asarray(z[k]).reshape(())) for k in ("counts.scale", "counts.limit"))
        activity = int(np.asarray(z.get("counts.activity", 0)).reshape(()))
        if activity not in (0, 1):
            raise ValueError(f"neighbour counts' activity flag out of range: {activity}")
        if "counts.shares" in z:
            return cls(z["counts.shares"], scale, limit, (z["counts.taps"], z["counts.ntaps"], z["counts.coefs"]),
                       bool(activity))
        return cls(np.full((3, L.N_PHASES), int(np.asarray(z["counts.share"]).reshape(()))), scale, limit)

    def arrays(self) -> dict:
        taps, ntaps, coefs = self.linear
        return {"counts.shares": self.shares.copy(), "counts.scale": np.int64(self.scale),
                "counts.limit": np.int64(self.limit), "counts.taps": taps.copy(), "counts.ntaps": ntaps.copy(),
                "counts.coefs": coefs.copy(), "counts.activity": np.int64(self.activity)}

    def with_shares(self, shares) -> "CountsParams":
        return CountsParams(shares, self.scale, self.limit, self.linear, self.activity)


# what training starts from before it fits the shares and taps (v4 was made from v3 so, without the
# activity): half the vae's, counts + 1/3, halved past 2**16 (the float study
# benchmarks/experiments/vae_adaptive_mixture.py chose w = 0.5, a floor of 0.3), no taps
DEFAULT = CountsParams(np.full((3, L.N_PHASES), 8), 3, 1 << 16, activity=True)


class NeighbourCounts:
    """One chain chunk's counts, with the geometry to find each subpixel's neighbours."""

    def __init__(self, params: CountsParams, x: np.ndarray, grid: np.ndarray, position: np.ndarray,
                 shapes: np.ndarray, phase_of: np.ndarray):
        """x: the chain's units [n, PIXELS, 3] uint8 (the decoder fills them as it goes); grid,
        position: ChainOrder's; shapes: the units' valid rows, columns, channels."""
        self.params = params
        self.x, self.grid, self.position, self.shapes = x, grid, position, shapes
        self.phase_of = np.ascontiguousarray(phase_of, np.int64)
        self.counts = np.zeros((CONTEXTS, SPAN), np.int32)
        self.totals = np.zeros(CONTEXTS, np.int64)
        # each decoded subpixel's |value - prediction| (v6's activity reads the neighbours'); units
        # outside this chain chunk stay 0 on both sides
        self.errors = np.zeros(x.shape, np.uint8) if params.activity else None
        self._halved = {}  # step -> [(context, its counts and total before halving)], when kept

    def predict(self, c: int, phase: int, units: np.ndarray, pix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(contexts, predictions) of channel c at the chain's subpixels (units, pix) of one step."""
        ctx = np.empty(len(units), np.int64)
        pred = np.empty(len(units), np.int64)
        _k.predict(self.x, self.grid, self.position, self.shapes, self.phase_of, c, phase,
                   np.ascontiguousarray(units, np.int64), np.ascontiguousarray(pix, np.int64), ctx, pred,
                   *self.params.linear, self.errors)
        return ctx, pred

    def record(self, c: int, units: np.ndarray, pix: np.ndarray, pred: np.ndarray) -> None:
        """Keep the errors of a decoded step (channel c at the chain's subpixels (units, pix),
        predicted pred): later steps' activity reads them. Nothing to keep before v6."""
        if self.errors is not None:
            err = np.abs(self.x[units, pix, c].astype(np.int64) - pred)
            self.errors[units, pix, c] = np.minimum(err, 255)

    def rows(self, c, phase, ctx, pred, vae_preds, vae_rows) -> np.ndarray:
        """The vae's rows of channel c at `phase` mixed with the counts' pmf (same buckets)."""
        return _k.mixed_rows(self.counts, ctx, pred, np.ascontiguousarray(vae_preds, np.int64),
                             np.ascontiguousarray(vae_rows, np.float64), self.params.shares[c, phase],
                             self.params.scale,
                             thread_blocks(len(ctx), L.STEP_BLOCK))

    def low_groups(self, c, phase, ctx, pred, vae_preds, vae_rows, sym) -> list[tuple[np.ndarray, np.ndarray]]:
        """The low bits' rows of the subpixels whose buckets `sym` have any, grouped by how many:
        [(their indices, rows)], fewest bits first (the decoder's order; the encoder pushes them
        the other way round). With them, bucket and low bits code the mixture value by value."""
        sym = np.asarray(sym, np.int64)
        nlow = buckets.low_bit_counts(sym)
        groups = []
        for bits in np.unique(nlow[nlow > 0]):
            idx = np.flatnonzero(nlow == bits)
            groups.append((idx, _k.low_rows(self.counts, ctx[idx], pred[idx],
                                            np.ascontiguousarray(vae_preds[idx], np.int64),
                                            np.ascontiguousarray(vae_rows[idx], np.float64), sym[idx],
                                            self.params.shares[c, phase], self.params.scale)))
        return groups

    def probabilities(self, ctx, pred, values) -> np.ndarray:
        """The counts' probability of each value (the float model's mixture reads it)."""
        out = np.empty(len(ctx), np.float64)
        _k.value_probabilities(self.counts, ctx, pred, np.ascontiguousarray(values, np.int64),
                               self.params.scale, out)
        return out

    def learn(self, ctx, pred, values, step: int | None = None) -> None:
        """Count one step's values; `step` keeps what halving overwrites, so unlearn can undo it."""
        _k.learn(self.counts, self.totals, ctx, pred, np.ascontiguousarray(values, np.int64), 1)
        full = np.flatnonzero(self.totals > self.params.limit)
        if len(full) and step is not None:
            self._halved[step] = [(j, self.counts[j].copy(), int(self.totals[j])) for j in full]
        if len(full):
            _k.halve_full(self.counts, self.totals, self.params.limit)

    def unlearn(self, ctx, pred, values, step: int) -> None:
        """Undo learn(ctx, pred, values, step), the last step learned and not yet undone."""
        for j, counts, total in reversed(self._halved.pop(step, [])):
            self.counts[j] = counts
            self.totals[j] = total
        _k.learn(self.counts, self.totals, ctx, pred, np.ascontiguousarray(values, np.int64), -1)
