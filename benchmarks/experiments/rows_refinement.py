"""Do the coder's rows gain from paq-style refinements of the distribution alone? (stop 47; not shipped)

    PYTHONPATH=. python benchmarks/experiments/rows_refinement.py {mix|sse} MODEL LEVEL PHOTO...

Wraps a classic-family model's rows hook (its `_model_rows`, see models/classic_image.py) and,
after every wavefront step, measures in floating point what the coded symbols would have cost:
  * mix: the rows linearly mixed with one more table of adaptive counts (increment 32, halved above
    2^16, as classic's) chosen by another context than the activity class, the two weights learned
    per channel and class (a Bayesian-mixture step toward the part that gave the symbol more
    probability); and all tables at once;
  * sse: secondary estimation as paq's adaptive probability maps: the bucket symbol coded as unary
    decisions "symbol == k, given >= k" (k < 8), each decision's probability from the rows refined
    by an interpolated map (33 nodes over the stretched probability, per context and k, rate 0.02)
    and averaged half and half with the rows' own, the rows' tail beyond.
Contexts: the texture (bias) context, quantised bucket symbols of W and N (and of the previous
channel at the pixel), the activity class. Centre crops of 384 x 512. Prints each variant's bits
against the rows' own (1.0); nothing here is exact or written to a file.
"""
import sys

import numpy as np
from rows_hook import centre_crop, report, run_with_hook

INC, LIMIT = 32, 1 << 16
MIX_RATE = 0.002
SSE_K, SSE_NODES, SSE_RATE, SSE_SHARE = 8, 33, 0.02, 0.5


def q6(s):
    """A bucket symbol in 6 classes: 0, 1, 2, 3-4, 5-8, 9+."""
    return np.select([s < 3, s < 5, s < 9], [s, 3, 4], 5)


CONTEXTS = {
    "texture": lambda f: f["bctx"],
    "W,N": lambda f: q6(f["sw"]) * 6 + q6(f["sn"]),
    "W,N,previous channel": lambda f: (q6(f["sw"]) * 6 + q6(f["sn"])) * 6 + q6(f["sp"]),
    "class,W,N": lambda f: (f["cls"] // 3) * 36 + q6(f["sw"]) * 6 + q6(f["sn"]),
}


class CountMix:
    """One more count table per context, mixed with the rows; and every table at once ("all")."""

    def __init__(self, nch, nbk):
        self.tab = {k: np.ones((nch, 4096, nbk)) for k in CONTEXTS}
        self.w2 = {k: np.array([0.9, 0.1]) * np.ones((nch, 64, 2)) for k in CONTEXTS}
        self.w = np.full((nch, 64, len(CONTEXTS) + 1), 1.0 / (len(CONTEXTS) + 1))

    def bits(self, c, rows, sym, feats):
        idx, cls = np.arange(len(sym)), feats["cls"]
        pb = rows[idx, sym] / rows.sum(1)
        out, ps = {}, [pb]
        for k, fn in CONTEXTS.items():
            ctx, table = fn(feats), self.tab[k][c]
            r = table[ctx]
            p = r[idx, sym] / r.sum(1)
            ps.append(p)
            w = self.w2[k][c, cls]
            pm = w[:, 0] * pb + w[:, 1] * p
            out[k] = -np.log2(pm).sum()
            np.add.at(self.w2[k][c], cls, MIX_RATE * (w * np.stack([pb / pm, p / pm], 1) - w))
            np.add.at(table, (ctx, sym), INC)
            for full in np.unique(ctx[table[ctx].sum(1) > LIMIT]):
                table[full] = np.maximum(1, table[full] // 2)
        P, W = np.stack(ps, 1), self.w[c, cls]
        pm = (W * P).sum(1)
        out["all"] = -np.log2(pm).sum()
        np.add.at(self.w[c], cls, MIX_RATE * (W * P / pm[:, None] - W))
        return out


class SecondaryEstimation:
    """An adaptive probability map per context over the unary decisions of the bucket symbol."""

    def __init__(self, nch, nbk):
        nodes = 1 / (1 + np.exp(-np.linspace(-8, 8, SSE_NODES)))
        self.maps = {k: np.tile(nodes, (nch, 4096 * SSE_K, 1)) for k in ("none", *CONTEXTS)}

    def bits(self, c, rows, sym, feats):
        tail = np.cumsum(rows[:, ::-1], 1)[:, ::-1]
        out = {}
        for k, m in self.maps.items():
            ctx0 = np.zeros(len(sym), np.int64) if k == "none" else CONTEXTS[k](feats)
            bits, alive = np.zeros(len(sym)), np.ones(len(sym), bool)
            for d in range(SSE_K):
                p = np.clip(rows[:, d] / tail[:, d], 1e-6, 1 - 1e-6)
                pos = (np.clip(np.log(p / (1 - p)), -8, 8 - 1e-9) + 8) * (SSE_NODES - 1) / 16
                j = np.floor(pos).astype(np.int64)
                f, ctx = pos - j, ctx0 * SSE_K + d
                refined = (1 - f) * m[c, ctx, j] + f * m[c, ctx, j + 1]
                pf = np.clip((1 - SSE_SHARE) * p + SSE_SHARE * refined, 1e-6, 1 - 1e-6)
                hit = (sym == d).astype(np.float64)
                bits += np.where(alive, -np.log2(np.where(hit > 0, pf, 1 - pf)), 0)
                a = alive
                for jj, ww in ((j[a], 1 - f[a]), (j[a] + 1, f[a])):
                    np.add.at(m[c], (ctx[a], jj), SSE_RATE * ww * (hit[a] - m[c, ctx[a], jj]))
                alive &= sym != d
            bits[alive] += -np.log2(rows[alive, sym[alive]] / tail[alive, SSE_K])
            out[k] = bits.sum()
        return out


def measure(refinement, model, level, img):
    totals = {}

    def on_step(view, sym, rows):
        st = view.model_state.setdefault("refinement", {})
        n, c, ys, xs = view.n, view.c, view.ys, view.xs
        if not st:  # a new chunk
            st["sym"] = np.zeros((view.resid.shape[1],) + img.shape[:2], np.int64)  # bucket symbols coded
            st["r"] = refinement(view.resid.shape[1], view.rows.shape[1])
        S = st["sym"]
        feats = dict(sw=np.where(xs > 0, S[c, ys, np.maximum(xs - 1, 0)], 0),
                     sn=np.where(ys > 0, S[c, np.maximum(ys - 1, 0), xs], 0),
                     sp=S[c - 1, ys, xs] if c > 0 else np.zeros(n, np.int64),
                     cls=view.classes[:n], bctx=view.bctx[:n])
        totals["rows"] = totals.get("rows", 0.0) - np.log2(rows[np.arange(n), sym] / rows.sum(1)).sum()
        for k, v in st["r"].bits(c, rows, sym, feats).items():
            totals[k] = totals.get(k, 0.0) + v
        S[c, ys, xs] = sym

    run_with_hook(model, level, img, on_step)
    return totals


def main():
    kind, model, level, photos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    refinement = {"mix": CountMix, "sse": SecondaryEstimation}[kind]
    report(photos, lambda path: measure(refinement, model, level, centre_crop(path)), "rows")


if __name__ == "__main__":
    main()
