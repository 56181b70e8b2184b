"""float study: z-free predictor variants and an online-chosen share, on cached vae bits."""
import sys, json, numpy as np
from paths import WORK
from PIL import Image
from neuralzip.models import vae_layout as L

RINGS = [[(0, -1), (0, 1), (-1, 0), (1, 0)],
         [(0, -2), (0, 2), (-2, 0), (2, 0), (-2, -2), (2, 2), (-2, 2), (2, -2)],
         [(0, -4), (0, 4), (-4, 0), (4, 0)]]
R = 255; FLOOR = 0.3; LIMIT = 1 << 16
WS = np.array([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875])

def zfree_step(img, done, ys, xs, c, cfg):
    h, w = img.shape[:2]; n = len(ys)
    pred = np.full(n, 128.0); ring_of = np.full(n, len(RINGS), np.int64)
    spread = np.zeros(n); prev_res = np.zeros(n); left = np.ones(n, bool)
    for k, ring in enumerate(RINGS):
        vals, okm, prev_vals = [], [], []
        for dy, dx in ring:
            y, x = ys + dy, xs + dx
            inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            yc, xc = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
            same = (yc // 8 == ys // 8) & (xc // 8 == xs // 8)
            earlier = yc // 8 + xc // 8 < ys // 8 + xs // 8
            okm.append(inside & done[yc, xc, c] & (same | earlier))
            vals.append(img[yc, xc, c].astype(np.float64))
            prev_vals.append(img[yc, xc, max(c - 1, 0)].astype(np.float64))
        ok = np.stack(okm, 1); cnt = ok.sum(1); use = left & (cnt > 0)
        if use.any():
            v = np.stack(vals, 1); pv = np.stack(prev_vals, 1)
            wt = ok.astype(np.float64)
            if cfg.get('pairs'):
                # complete opposite pairs weighted by 1/(1+|a-b|)^p
                pw = np.zeros_like(wt); anyp = np.zeros(n, bool)
                for j in range(0, ok.shape[1], 2):
                    both = ok[:, j] & ok[:, j + 1]
                    g = np.abs(v[:, j] - v[:, j + 1])
                    if cfg.get('pairs_prev') and c > 0:
                        g = g + np.abs(pv[:, j] - pv[:, j + 1])
                    ww = both / (1.0 + g) ** cfg['pairs']
                    pw[:, j] += ww; pw[:, j + 1] += ww; anyp |= both
                wt = np.where(anyp[:, None], pw, wt)
            sw = wt.sum(1)
            mean = (v * wt).sum(1) / np.maximum(sw, 1e-9)
            dev = (np.abs(v - mean[:, None]) * ok).sum(1) / np.maximum(cnt, 1)
            pred[use], spread[use], ring_of[use] = mean[use], dev[use], k
            if c > 0:
                pmean = (pv * wt).sum(1) / np.maximum(sw, 1e-9)
                res = img[ys, xs, c - 1] - pmean
                pred[use] += cfg.get('prev_gain', 1.0) * res[use]
                prev_res[use] = res[use]
        left &= cnt == 0
    spread_class = np.minimum(np.floor(np.log2(1 + 2 * spread)).astype(np.int64), 7)
    prev_class = np.minimum(np.floor(np.log2(1 + np.abs(prev_res))).astype(np.int64), 3)
    return np.clip(np.rint(pred), 0, 255).astype(np.int64), ring_of, spread_class, prev_class

def run(s, vbits, cfg):
    h, w = s.shape[:2]; img = s.astype(np.int64)
    ph, pw = -(-h // 8), -(-w // 8)
    done = np.zeros((h, w, 3), bool)
    tables = np.zeros((3, len(RINGS) + 1, 8, 4, 2 * R + 1))
    py, px = np.divmod(np.arange(L.PIXELS), L.PATCH)
    fixed = cfg.get('share', 0.5)
    cost = np.zeros((3, len(RINGS) + 1, 8, len(WS)))  # adaptive share: accumulated cost per context
    total = 0.0; tot_cnt = 0.0
    for wave in range(ph + pw - 1):
        rows = np.arange(max(0, wave - pw + 1), min(ph, wave + 1)); cols = wave - rows
        for phase in range(L.N_PHASES):
            sel = L.PHASE == phase
            ys = (rows[:, None] * 8 + py[sel][None, :]).ravel(); xs = (cols[:, None] * 8 + px[sel][None, :]).ravel()
            keep = (ys < h) & (xs < w); ys, xs = ys[keep], xs[keep]
            for c in range(3):
                pred, ring, spread, prev = zfree_step(img, done, ys, xs, c, cfg)
                t = tables[c, ring, spread, prev]
                r = img[ys, xs, c] - pred
                pc = (t[np.arange(len(r)), r + R] + FLOOR) / (t.sum(1) + FLOOR * (2 * R + 1))
                pv = np.exp2(-vbits[ys, xs, c].astype(np.float64))
                tot_cnt += -np.log2(pc).sum()
                if cfg.get('adaptive'):
                    cc = cost[c, ring, spread]  # [n, len(WS)]
                    wi = np.argmin(cc, 1) if True else None
                    # no history -> the fixed share
                    wv = np.where(cc.sum(1) > 0, WS[wi], fixed)
                    pm = wv * pv + (1 - wv) * pc
                    allc = -np.log2(WS[None, :] * pv[:, None] + (1 - WS[None, :]) * pc[:, None])
                    np.add.at(cost, (c, ring, spread), allc)
                    if cfg.get('decay'):
                        cost[c] *= cfg['decay']
                else:
                    pm = fixed * pv + (1 - fixed) * pc
                total += -np.log2(pm).sum()
                np.add.at(tables, (c, ring, spread, prev, r + R), 1.0)
                full = tables[c].sum(-1) > LIMIT
                tables[c][full] /= 2
                done[ys, xs, c] = True
    return total, tot_cnt

if __name__ == '__main__':
    cfg = json.loads(sys.argv[1])
    dims = 0; T = 0; C = 0; V = 0
    for path in sys.argv[2:]:
        s = np.asarray(Image.open(path).convert('RGB'))
        vb = np.load(WORK + path.split('/')[-1] + '.vae.npy')
        t, c = run(s, vb, cfg)
        print(path.split('/')[-1], round(t / s.size, 4), 'counts alone', round(c / s.size, 4), 'vae', round(float(vb.astype(np.float64).sum()) / s.size, 4), flush=True)
        dims += s.size; T += t; C += c; V += vb.astype(np.float64).sum()
    print('TOTAL', cfg, round(T / dims, 4), 'counts', round(C / dims, 4), 'vae', round(V / dims, 4))
