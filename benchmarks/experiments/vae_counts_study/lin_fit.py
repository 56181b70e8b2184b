import sys, os, json, numpy as np
from paths import TRAIN_DIR, TUNE
from PIL import Image
from linpred import *
K = int(sys.argv[1]); mode = sys.argv[2]; out = sys.argv[3]
files = sys.argv[4:] if len(sys.argv) > 4 else [f for f in sorted(os.listdir(TRAIN_DIR)) if f not in TUNE]
paths = [f if '/' in f else os.path.join(TRAIN_DIR, f) for f in files]
OFFS = {(py, px): offsets_for(py, px, K) for py in range(8) for px in range(8)}
IRLS = int(os.environ.get('IRLS', 0)); SC = float(os.environ.get('S', 2.0)); STRIDE = int(os.environ.get('STRIDE', 1))
W = None
imgs = [np.asarray(Image.open(p).convert('RGB')).astype(np.int64) for p in paths] if len(paths) < 8 else None
for it in range(IRLS + 1):
    G = {}; B = {}
    for i, p in enumerate(paths):
        img = imgs[i] if imgs else np.asarray(Image.open(p).convert('RGB')).astype(np.int64); h, w = img.shape[:2]
        for (py, px), offs in OFFS.items():
            ys, xs = positions_of(h, w, py, px); ok = valid(h, w, ys, xs, offs); ys, xs = ys[ok][::STRIDE], xs[ok][::STRIDE]
            for c in range(3):
                X = features(img, ys, xs, c, offs, mode); y = img[ys, xs, c].astype(np.float64) - target_base(img, ys, xs, c, mode)
                k = (py, px, c)
                if W is None: wt = np.ones(len(y))
                else: r = y - X @ W[k]; wt = 1.0 / (SC * SC + r * r)
                Xw = X * wt[:, None]
                G[k] = G.get(k, 0) + Xw.T @ X; B[k] = B.get(k, 0) + Xw.T @ y
    W = {}
    for k in G:
        g = G[k]; lam = 1e-7 * np.trace(g)
        W[k] = np.linalg.solve(g + lam * np.eye(len(g)), B[k])
    print('iter', it, flush=True)
np.save(out, {'K': K, 'mode': mode, 'offs': OFFS, 'W': W}, allow_pickle=True)
print('saved', out, len(files), 'photos')
