"""How much would a classic-family model gain by coding its bucket symbols without the buckets that
no value in 0..255 can fill? (stop 49; a measurement)

    PYTHONPATH=. python benchmarks/experiments/range_exclusion.py MODEL LEVEL PHOTO...

Given the prediction and the sign flip, the residuals that land outside 0..255 are impossible, yet
the count rows give their buckets mass. This wraps the model's rows hook (as rows_refinement.py),
zeroes the rows of the buckets that hold no possible residual and prices each step's symbols under
the renormalised rows (low bits as coded). Whole photos. Prints bits against the model's own (1.0).
"""
import sys

import numpy as np
from rows_hook import report, run_with_hook, whole

from neuralzip.coding import buckets

MAXV = 255
_U = np.arange(2 * (MAXV + 1))  # every zigzagged residual of |r| <= 255
_SYM = buckets.buckets_of(_U)[0]
LO = np.array([_U[_SYM == b].min() for b in range(_SYM.max() + 1)])  # each bucket's zigzag span
HI = np.array([_U[_SYM == b].max() for b in range(_SYM.max() + 1)])


def possible(pred, flip):
    """[n, buckets] True where the bucket holds a residual whose value lies in 0..MAXV."""
    pos = np.where(flip != 0, pred, MAXV - pred)[:, None]  # the largest r >= 0 allowed (u = 2r)
    neg = np.where(flip != 0, MAXV - pred, pred)[:, None]  # the largest -r allowed (u = -2r - 1)
    even, odd = LO + (LO & 1), LO + 1 - (LO & 1)  # each bucket's first even and odd zigzag value
    return ((even <= HI) & (even <= 2 * pos)) | ((odd <= HI) & (odd <= 2 * neg - 1))


def measure(model, level, img):
    t = {"model": 0.0, "excluded": 0.0}

    def on_step(view, sym, rows):
        n = view.n
        idx = np.arange(n)
        mask = possible(view.preds[:n], view.flip[:n])[:, :rows.shape[1]]
        if not mask[idx, sym].all():
            raise AssertionError("a coded bucket was called impossible")
        kept = rows * mask
        low = buckets.low_bit_counts(sym).sum()  # as coded, in both
        t["model"] += -np.log2(rows[idx, sym] / rows.sum(1)).sum() + low
        t["excluded"] += -np.log2(kept[idx, sym] / kept.sum(1)).sum() + low

    run_with_hook(model, level, img, on_step)
    return t


def main():
    model, level, photos = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    report(photos, lambda path: measure(model, level, whole(path)), "model")


if __name__ == "__main__":
    main()
