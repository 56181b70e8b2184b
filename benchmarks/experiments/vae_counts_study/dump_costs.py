"""float: per-context accumulated cost of the mixture at each share, z-free contexts."""
import sys, json, numpy as np
from paths import WORK
from PIL import Image
from counts_exp import zfree_step, RINGS, R, FLOOR, LIMIT
from neuralzip.models import vae_layout as L
WS = np.arange(1, 16) / 16.0
NCL = 6
def run(s, vbits, cfg):
    h, w = s.shape[:2]; img = s.astype(np.int64)
    ph, pw = -(-h // 8), -(-w // 8)
    done = np.zeros((h, w, 3), bool)
    tables = np.zeros((3, len(RINGS) + 1, 8, 4, 2 * R + 1))
    py, px = np.divmod(np.arange(L.PIXELS), L.PATCH)
    cost = np.zeros((3, 7, len(RINGS) + 1, 8, NCL, len(WS)))
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
                tot = t.sum(1)
                pc = (t[np.arange(len(r)), r + R] + FLOOR) / (tot + FLOOR * (2 * R + 1))
                pv = np.exp2(-vbits[ys, xs, c].astype(np.float64))
                ncl = np.minimum(np.floor(np.log2(1 + tot / 16)).astype(np.int64) // 2, NCL - 1)
                allc = -np.log2(WS[None, :] * pv[:, None] + (1 - WS[None, :]) * pc[:, None])
                np.add.at(cost, (c, phase, ring, spread, ncl), allc)
                np.add.at(tables, (c, ring, spread, prev, r + R), 1.0)
                full = tables[c].sum(-1) > LIMIT
                tables[c][full] /= 2
                done[ys, xs, c] = True
    return cost
if __name__ == '__main__':
    cfg = json.loads(sys.argv[1]); tag = sys.argv[2]
    for path in sys.argv[3:]:
        s = np.asarray(Image.open(path).convert('RGB'))
        vb = np.load(WORK + path.split('/')[-1] + '.vae.npy')
        cost = run(s, vb, cfg)
        np.save(f'{WORK}cost.{tag}.{path.split("/")[-1]}.npy', cost)
        print(path, s.size, flush=True)
