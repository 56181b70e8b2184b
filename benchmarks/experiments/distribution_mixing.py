"""Does mixing the model's distribution with the distributions of many simple predictors, each
centred on its own prediction, learned online, code smaller? (stop 49; a measurement)

    PYTHONPATH=. python benchmarks/experiments/distribution_mixing.py MODEL LEVEL PHOTO...

The paq-family image coders turn every prediction into a distribution of its own (a context per
prediction) and mix the distributions, not the predictions. classic blends predictions into one
mean; this measures, in floating point, what a mixture over values would gain on top of it.
Per wavefront step and channel (the model's rows hook, as rows_refinement.py):
  * the model's own pmf over the value (its count rows spread over each bucket's values, the sign
    flip undone, renormalised to 0..255: "model, over values" isolates that renormalisation);
  * K experts: W, N, NW, NE, W+N-NW, MED, W+NE-N, (W+N)/2, and for later channels the same pixel's
    earlier channel plus the N, W and gradient differences; each a discretized logistic around its
    prediction with a scale from its own recent errors at W, N, NW, NE;
  * linear mixtures, the weights per channel and activity class stepped toward the parts that gave
    the value more probability (w += rate * w * (p_k / p_mix - 1), renormalised).
Centre crops of 384 x 512. Prints each variant's bits against the model's coded bits (1.0).
"""
import sys

import numpy as np
from rows_hook import centre_crop, report, run_with_hook

from neuralzip.coding import buckets

RATE = 0.02
VALUES = np.arange(256)


def value_pmf(rows, pred, flip):
    """The rows (over buckets of the zigzagged, maybe flipped residual) as pmfs over values 0..255."""
    r = VALUES[None, :] - pred[:, None]
    r = np.where(flip[:, None] != 0, -r, r)
    sym, nlow, _ = buckets.buckets_of(buckets.zigzag_array(r.ravel()))
    mass = rows[np.repeat(np.arange(len(pred)), 256), sym] / np.exp2(nlow)
    p = mass.reshape(len(pred), 256)
    return p / p.sum(1, keepdims=True)


def logistic_pmf(mu, s):
    edges = np.arange(-0.5, 256.5)[None, :]
    cdf = 1 / (1 + np.exp(-(edges - mu[:, None]) / s[:, None]))
    p = np.diff(cdf, axis=1) + 1e-9
    return p / p.sum(1, keepdims=True)


def experts(im, c, ys, xs):
    h, w = im.shape[:2]

    def at(ch, dy, dx):
        y, x = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
        return im[y, x, ch].astype(np.float64)
    W, N, NW, NE = at(c, 0, -1), at(c, -1, 0), at(c, -1, -1), at(c, -1, 1)
    out = {"W": W, "N": N, "NW": NW, "NE": NE, "grad": W + N - NW,
           "MED": np.where(NW >= np.maximum(W, N), np.minimum(W, N),
                           np.where(NW <= np.minimum(W, N), np.maximum(W, N), W + N - NW)),
           "W+NE-N": W + NE - N, "avg": (W + N) / 2}
    if c > 0:
        P, PN, PW, PNW = at(c - 1, 0, 0), at(c - 1, -1, 0), at(c - 1, 0, -1), at(c - 1, -1, -1)
        out.update({"P+dN": P + N - PN, "P+dW": P + W - PW, "P+dgrad": P + (W + N - NW) - (PW + PN - PNW)})
    return {k: np.clip(v, 0, 255) for k, v in out.items()}


def measure(model, level, img):
    totals = {}

    def add(k, bits):
        totals[k] = totals.get(k, 0.0) + float(bits)

    def on_step(view, sym, rows):
        st = view.model_state.setdefault("dm", {})
        n, c, ys, xs = view.n, view.c, view.ys, view.xs
        im = img[view.row0:].astype(np.int64)
        if not st:
            st["err"] = {}
            st["w"] = {}
        pred, flip = view.preds[:n], view.flip[:n]
        v = im[ys, xs, c]
        idx = np.arange(n)
        add("model", (-np.log2(rows[idx, sym] / rows.sum(1)) + buckets.low_bit_counts(sym)).sum())
        base = value_pmf(rows, pred, flip)
        add("model, over values", -np.log2(base[idx, v]).sum())
        ex = experts(im, c, ys, xs)
        parts = {"model": base}
        h, w = im.shape[:2]
        for k, mu in ex.items():
            E = st["err"].setdefault((k, c), np.full((h, w), 4.0))
            near = [E[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)]
                    for dy, dx in ((0, -1), (-1, 0), (-1, -1), (-1, 1))]
            s = np.maximum(0.3 + 0.45 * np.mean(near, 0), 0.4)
            parts[k] = logistic_pmf(mu, s)
            E[ys, xs] = np.abs(v - mu)
        cls = np.minimum(view.classes[:n] >> 2, 7)
        for name, keys in (("model+experts", list(parts)),
                           ("model+W,N,grad,MED", ["model", "W", "N", "grad", "MED"]),
                           ("model+inter-channel", ["model"] + [k for k in parts if k.startswith("P+")])):
            if len(keys) == 1:  # the first channel has no inter-channel experts
                add(name, -np.log2(base[idx, v]).sum())
                continue
            Wt = st["w"].setdefault((name, c), np.tile(np.r_[0.9, np.full(len(keys) - 1, 0.1 / (len(keys) - 1))],
                                                      (8, 1)))
            pk = np.stack([parts[k][idx, v] for k in keys], 1)  # [n, K]
            wt = Wt[cls]
            pm = (wt * pk).sum(1)
            add(name, -np.log2(pm).sum())
            step = RATE * wt * (pk / pm[:, None] - 1)
            np.add.at(Wt, cls, step)
            np.clip(Wt, 1e-4, None, out=Wt)
            Wt /= Wt.sum(1, keepdims=True)

    run_with_hook(model, level, img, on_step)
    return totals


def main():
    model, level, photos = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    report(photos, lambda path: measure(model, level, centre_crop(path)), "model")


if __name__ == "__main__":
    main()
