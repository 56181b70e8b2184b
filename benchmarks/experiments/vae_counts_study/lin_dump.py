"""The counts in the vae's decode order on cached vae bits: each context's bits of the mixture at
shares 1/16..15/16 -> WORK/cost.TAG.PHOTO.npy (analyze.py, summ.py read them).
usage: lin_dump.py CFG TAG PHOTOS...   cfg: pairs (p: ring_predictor's pairs), coef (a lin_fit.py
file, {name} for the photo's own; without it the ring predictor alone), ctx ('l' | 'f'),
lin_phases (the phases that use the taps), check (1: assert the taps are decoded)"""
import sys, json, numpy as np
from paths import WORK
from PIL import Image
from ring_predictor import zfree_step, RINGS, R, FLOOR, LIMIT
from neuralzip.models import vae_layout as L
from linpred import features, valid, target_base
WS = np.arange(1, 16) / 16.0
NCL = 6
DIAG = None

def run(s, vbits, cfg, co):
    h, w = s.shape[:2]; img = s.astype(np.int64)
    ph, pw = -(-h // 8), -(-w // 8)
    done = np.zeros((h, w, 3), bool)
    tables = np.zeros((3, len(RINGS) + 1, 8, 4, 2 * R + 1))
    py, px = np.divmod(np.arange(L.PIXELS), L.PATCH)
    cost = np.zeros((3, 7, len(RINGS) + 1, 8, NCL, len(WS)))
    cnt = np.zeros((3, 7)); nfb = np.zeros((3, 7)); npx = np.zeros((3, 7))
    offs, W = co['offs'], co['W']
    for wave in range(ph + pw - 1):
        rows = np.arange(max(0, wave - pw + 1), min(ph, wave + 1)); cols = wave - rows
        for phase in range(L.N_PHASES):
            sel = L.PHASE == phase
            ys = (rows[:, None] * 8 + py[sel][None, :]).ravel(); xs = (cols[:, None] * 8 + px[sel][None, :]).ravel()
            keep = (ys < h) & (xs < w); ys, xs = ys[keep], xs[keep]
            pys, pxs = ys % 8, xs % 8
            lres_prev = None
            for c in range(3):
                pred, ring, spread, prev = zfree_step(img, done, ys, xs, c, cfg)
                lp = np.full(len(ys), np.nan)
                for (a, b) in (set(zip(pys.tolist(), pxs.tolist())) if offs else ()):
                    m = np.flatnonzero((pys == a) & (pxs == b))
                    o = offs[(a, b)]
                    ok = valid(h, w, ys[m], xs[m], o); m = m[ok]
                    if not len(m): continue
                    if cfg.get('check'):
                        assert done[ys[m][:, None] + o[:, 0], xs[m][:, None] + o[:, 1], c].all()
                    lp[m] = features(img, ys[m], xs[m], c, o, co['mode']) @ W[(a, b, c)] + target_base(img, ys[m], xs[m], c, co['mode'])
                if 'lin_phases' in cfg and phase not in cfg['lin_phases']: lp[:] = np.nan
                use = ~np.isnan(lp)
                if DIAG is not None:
                    DIAG.append((c, phase, img[ys, xs, c] - pred, img[ys, xs, c] - np.clip(np.rint(np.nan_to_num(lp)), 0, 255), use))
                pred = np.where(use, np.clip(np.rint(np.nan_to_num(lp)), 0, 255), pred).astype(np.int64)
                lres = img[ys, xs, c] - np.nan_to_num(lp)
                if cfg.get('ctx') == 'l' and c > 0:
                    usep = use & ~np.isnan(lres_prev)
                    pc_ = np.minimum(np.floor(np.log2(1 + np.abs(np.nan_to_num(lres_prev)))).astype(np.int64), 3)
                    prev = np.where(usep, pc_, prev)
                if cfg.get('ctx') == 'f' and c > 0:  # prev class from c-1's final residual, any predictor
                    prev = np.minimum(np.floor(np.log2(1 + np.abs(fres_prev))).astype(np.int64), 3)
                lres_prev = np.where(use, lres, np.nan)
                fres_prev = img[ys, xs, c] - pred
                nfb[c, phase] += (~use).sum(); npx[c, phase] += len(ys)
                t = tables[c, ring, spread, prev]
                r = img[ys, xs, c] - pred
                tot = t.sum(1)
                pc = (t[np.arange(len(r)), r + R] + FLOOR) / (tot + FLOOR * (2 * R + 1))
                cnt[c, phase] += -np.log2(pc).sum()
                pv = np.exp2(-vbits[ys, xs, c].astype(np.float64))
                ncl = np.minimum(np.floor(np.log2(1 + tot / 16)).astype(np.int64) // 2, NCL - 1)
                allc = -np.log2(WS[None, :] * pv[:, None] + (1 - WS[None, :]) * pc[:, None])
                np.add.at(cost, (c, phase, ring, spread, ncl), allc)
                np.add.at(tables, (c, ring, spread, prev, r + R), 1.0)
                full = tables[c].sum(-1) > LIMIT
                tables[c][full] /= 2
                done[ys, xs, c] = True
    return cost, cnt, nfb, npx

if __name__ == '__main__':
    cfg = json.loads(sys.argv[1]); tag = sys.argv[2]
    for path in sys.argv[3:]:
        name = path.split('/')[-1]
        co = np.load(cfg['coef'].replace('{name}', name), allow_pickle=True).item() if 'coef' in cfg else {'offs': {}, 'W': {}, 'mode': 'full'}
        s = np.asarray(Image.open(path).convert('RGB'))
        vb = np.load(WORK + name + '.vae.npy')
        cost, cnt, nfb, npx = run(s, vb, cfg, co)
        np.save(f'{WORK}cost.{tag}.{name}.npy', cost)
        np.save(f'{WORK}side.{tag}.{name}.npy', np.stack([cnt, nfb, npx]))
        print(name, s.size, 'counts', round(cnt.sum() / s.size, 4), 'fallback', round(nfb.sum() / npx.sum(), 4), flush=True)
