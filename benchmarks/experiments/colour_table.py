"""Do a photo's colours repeat exactly? A table of the values each later channel took at every
earlier combination of the channels before it, learned while coding, mixed into the model's pmf.
(a measurement, floating point, likelihood only)

    PYTHONPATH=.:benchmarks/experiments python benchmarks/experiments/colour_table.py MODEL LEVEL PHOTO...
        [--whole] [--stand-ins]

Per wavefront step and channel c > 0 (the model's rows hook, as distribution_mixing.py): the model's
pmf over the value (value_pmf, over the values as the model codes them: a decoded JPEG's YCbCr),
and a table keyed by the exact values of channels 0..c-1 at the pixel (G: R; B: R and G) counting
the values channel c took there so far. Three ways of using it, each against "model, over values":
  * "G and B tables, fixed": the table's counts with the model's pmf as their prior, (n_key(v) +
    ALPHA p_model(v)) / (n_key + ALPHA), in place of the model's pmf (an unseen key codes with the
    model alone);
  * "B table" / "G and B tables": the table's pmf p_t(v) = (n_key(v) + BETA p_model(v)) / (n_key +
    BETA) mixed linearly with the model's, a weight learned online per channel and class of n_key
    (0, 1, 2-3, 4-7, ... 128+), stepped toward the part that gave the value more probability (as
    distribution_mixing.py's mixer);
  * "flags": where the key was seen, a flag "the value is the key's most frequent one", then the
    model with that value excluded (what the codec ships, with one candidate).
--stand-ins: also each photo's film-scan stand-in (parity_taps.py's "centred": chroma kept at one
value per 2x2 cell and brought back 3/4 from the near cell, 1/4 from the far one).
"""
import sys

import numpy as np
from distribution_mixing import value_pmf
from rows_hook import centre_crop, report, run_with_hook, whole

from neuralzip.models.classic_image import COLOUR_FLAGGED, ClassicImageCodec

ALPHA = 2
BETA = 0.5
RATE = 0.02
N_CLASSES = 9


def measure(model, level, img):
    totals = {}
    # the values as the model codes them (a decoded JPEG in its YCbCr; a crop is one chunk)
    coded = ClassicImageCodec.as_coded(img.astype(np.int64), {"colour": COLOUR_FLAGGED})[1]

    def add(k, bits):
        totals[k] = totals.get(k, 0.0) + float(bits)

    def flagged(st, c, key, table, v, pm, base, idx, view):
        """The flag form: where the key was seen, a binary flag says whether the value is the key's most
        frequent one m (adaptive counts per context: the key's count class, m's share of it, the model's
        probability of m); otherwise the model codes the value with m excluded."""
        n = len(v)
        bits = np.zeros(n)
        m = np.full(n, -1)
        ctx = np.zeros(n, np.int64)
        for j in range(n):
            row = table.get(int(key[j]))
            if row is None:
                continue
            vals = [(cnt, -val) for val, cnt in row.items() if val != "n"]
            cnt, negval = max(vals)
            m[j] = -negval
            ncls = min(int(np.log2(row["n"])), 7)
            share = min(cnt * 4 // row["n"], 3)
            pmm = base[j, m[j]]
            pcls = min(int(-np.log2(max(pmm, 1e-9))), 7)
            ctx[j] = (c * 8 + ncls) * 32 + share * 8 + pcls
        counts = st.setdefault("flags", np.ones((3 * 8 * 32, 2)) * 0.4)
        has = m >= 0
        pmm = base[idx, np.maximum(m, 0)]
        hit = has & (v == m)
        p_hit = counts[ctx, 1] / counts[ctx].sum(1)
        bits[~has] = -np.log2(pm[~has])
        bits[hit] = -np.log2(p_hit[hit])
        miss = has & ~hit
        bits[miss] = -np.log2(1 - p_hit[miss]) - np.log2(pm[miss] / (1 - pmm[miss]))
        add("flags", bits.sum())
        np.add.at(counts, (ctx[has], hit[has].astype(np.int64)), 1)

    def on_step(view, sym, rows):
        st = view.model_state.setdefault("ct", {})
        n, c, ys, xs = view.n, view.c, view.ys, view.xs
        im = coded[view.row0:]
        v = im[ys, xs, c]
        idx = np.arange(n)
        base = value_pmf(rows, view.preds[:n], view.flip[:n])
        pm = base[idx, v]
        add("model, over values", -np.log2(pm).sum())
        add(f"channel {c} model", -np.log2(pm).sum())
        if c == 0:
            add("flags", -np.log2(pm).sum())
        if c == 0:
            add("G and B tables, fixed", -np.log2(pm).sum())
        else:
            table = st.setdefault(("fixed", c), {})
            key = im[ys, xs, 0] if c == 1 else im[ys, xs, 0] * 256 + im[ys, xs, 1]
            nv, nk = np.zeros(n), np.zeros(n)
            for j in range(n):
                row = table.get(int(key[j]))
                if row is not None:
                    nv[j], nk[j] = row.get(int(v[j]), 0), row["n"]
            add("G and B tables, fixed", -np.log2((nv + ALPHA * pm) / (nk + ALPHA)).sum())
            for j in range(n):  # after the step, as the decoder would learn it
                row = table.setdefault(int(key[j]), {"n": 0})
                row[int(v[j])] = row.get(int(v[j]), 0) + 1
                row["n"] += 1
        for name, keyed in (("B table", (2,)), ("G and B tables", (1, 2))):
            if c not in keyed:
                add(name, -np.log2(pm).sum())
                continue
            key = im[ys, xs, 0] if c == 1 else im[ys, xs, 0] * 256 + im[ys, xs, 1]
            table = st.setdefault((name, c), {})
            nv, nk = np.zeros(n), np.zeros(n)
            for j in range(n):
                row = table.get(int(key[j]))
                if row is not None:
                    nv[j], nk[j] = row.get(int(v[j]), 0), row["n"]
            pt = (nv + BETA * pm) / (nk + BETA)
            cls = np.minimum(np.floor(np.log2(nk + 1)).astype(np.int64), N_CLASSES - 1)
            w = st.setdefault(("w", name, c), np.full(N_CLASSES, 0.05))
            wt = w[cls]
            p = (1 - wt) * pm + wt * pt
            add(name, -np.log2(p).sum())
            if name == "G and B tables":
                add(f"channel {c} with its table", -np.log2(p).sum())
            np.add.at(w, cls, RATE * wt * (pt / p - 1))  # d/dw of ln p, scaled by w as the experts' mixer
            np.clip(w, 0.001, 0.999, out=w)
            if name == "G and B tables":  # the same tables as flags: is the value the key's most frequent one?
                flagged(st, c, key, table, v, pm, base, idx, view)
            for j in range(n):
                row = table.setdefault(int(key[j]), {"n": 0})
                row[int(v[j])] = row.get(int(v[j]), 0) + 1
                row["n"] += 1

    run_with_hook(model, level, img, on_step)
    return totals


def main():
    args = [a for a in sys.argv[1:] if a not in ("--whole", "--stand-ins")]
    model, level, photos = args[0], int(args[1]), args[2:]
    crop = whole if "--whole" in sys.argv else centre_crop
    report(photos, lambda path: measure(model, level, crop(path)), "model, over values")
    if "--stand-ins" in sys.argv:
        from parity_taps import stand_in

        report([f"{p} (centred stand-in)" for p in photos],
               lambda name: measure(model, level, stand_in(crop(name.split(" (")[0]), "centred")), "model, over values")


if __name__ == "__main__":
    main()
