"""The study's ring predictor (models/neighbour_counts.py's v4 prediction in floats), with the
gradient-weighted pairs variant (cfg "pairs": p), and the counts' constants."""
import numpy as np
import paths  # noqa: F401 (the repository on sys.path)
from vae_adaptive_mixture import FLOOR, LIMIT, R, RINGS, ring_values  # noqa: F401 (lin_dump reads them here)

def zfree_step(img, done, ys, xs, c, cfg):
    n = len(ys)
    pred = np.full(n, 128.0); ring_of = np.full(n, len(RINGS), np.int64)
    spread = np.zeros(n); prev_res = np.zeros(n); left = np.ones(n, bool)
    for k, ring in enumerate(RINGS):
        ok, v, pv = ring_values(img, done, ys, xs, c, ring)
        cnt = ok.sum(1); use = left & (cnt > 0)
        if use.any():
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
