"""Linear z-free predictor per (position in patch, channel): offsets = the K nearest decoded
(interior) neighbours; G/B also read earlier channels at the pixel and at the same offsets."""
import sys, numpy as np
from paths import TRAIN_DIR, TUNE  # noqa: F401
from neuralzip.models import vae_layout as L
P = L.PHASE.reshape(8, 8)

def decoded(py, px, dy, dx):
    ty, tx = py + dy, px + dx
    pr, pc = ty // 8, tx // 8
    if pr == 0 and pc == 0:
        return P[ty, tx] < P[py, px]
    return pr + pc < 0

def offsets_for(py, px, K, rad=9):
    cand = [(dy, dx) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1)
            if (dy, dx) != (0, 0) and decoded(py, px, dy, dx)]
    cand.sort(key=lambda o: (o[0] ** 2 + o[1] ** 2, o))
    d = cand[K - 1][0] ** 2 + cand[K - 1][1] ** 2
    return np.array([o for o in cand if o[0] ** 2 + o[1] ** 2 <= d])

def features(img, ys, xs, c, offs, mode):
    """img int array; returns [n, F] float64 (last column = 1)."""
    if mode == 'diff' and c > 0:  # predict x_c - x_{c-1} from the same difference at the offsets
        d = img[..., c] - img[..., c - 1]
        return np.concatenate([d[ys[:, None] + offs[:, 0], xs[:, None] + offs[:, 1]], np.ones((len(ys), 1))], 1).astype(np.float64)
    cols = [img[ys[:, None] + offs[:, 0], xs[:, None] + offs[:, 1], c]]
    if c > 0 and mode == 'full':
        for cc in range(c):
            cols.append(img[ys, xs, cc][:, None])
            cols.append(img[ys[:, None] + offs[:, 0], xs[:, None] + offs[:, 1], cc])
    elif c > 0 and mode == 'self':  # earlier channels only at the pixel itself
        for cc in range(c):
            cols.append(img[ys, xs, cc][:, None])
    cols.append(np.ones((len(ys), 1)))
    return np.concatenate(cols, 1).astype(np.float64)

def valid(h, w, ys, xs, offs):
    y = ys[:, None] + offs[:, 0]; x = xs[:, None] + offs[:, 1]
    return ((y >= 0) & (y < h) & (x >= 0) & (x < w)).all(1) & (ys < h) & (xs < w)

def positions_of(h, w, py, px):
    ph, pw = -(-h // 8), -(-w // 8)
    ys = (np.arange(ph) * 8 + py)[:, None].repeat(pw, 1).ravel()
    xs = (np.arange(pw) * 8 + px)[None, :].repeat(ph, 0).ravel()
    return ys, xs

def target_base(img, ys, xs, c, mode):
    return img[ys, xs, c - 1].astype(np.float64) if (mode == 'diff' and c > 0) else 0.0
