"""A float study (not an exact coder) for issue 13: the hidden biases of `hidden-biases.patch`
stepped as Adam steps (a running mean of each unit's summed gradient over the root of a running
mean of its square), so that a unit's step no longer scales with its gradient's size. Needs the
patch (apply it with `git apply` against commit 01946f5 and rebuild the kernels); the coder's own
step is replaced in this process only, and only exact-model bits are measured (likelihood: the
encoder side alone, so the float arithmetic need not match a decoder's).

    PYTHONPATH=. python benchmarks/experiments/hidden_bias_adaptive_step.py PHOTO [--crop N]
        [--network shipped|FILE.npz] [--configs ETA:BETA1:BETA2 ...] [--data DIR]

PHOTO: a file name in images/train (use the tuning photos: urban_img_001, urban_img_027,
wiki_001, wiki_015, wiki_028). ETA in activation units a step; each bias kept within +-16 units.
Printed: bits against params "head": 3 (the biases not learned).
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from head_rate import with_head  # noqa: E402
from hidden_bias_curvature import DATA, bias_entries, local_ls_mlp, require_patch, train_photo, unit_gradients  # noqa: E402
from neuralzip.models import context_mlp  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photo")
    ap.add_argument("--crop", type=int, default=0, help="the top-left N x N only (0: the whole photo)")
    ap.add_argument("--network", default="shipped")
    ap.add_argument("--configs", nargs="+", default=["0.003:0.9:0.999", "0.01:0.9:0.999"])
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    require_patch()
    img, sig = train_photo(a.data, a.photo, a.crop)
    codec = local_ls_mlp(None if a.network == "shipped" else a.network)
    config = [None]

    def learn(self, c, net, grads, out_table):
        eta, beta1, beta2 = config[0]
        state = self.__dict__.setdefault("adaptive", {})
        g = unit_gradients(self, c, net, grads, out_table).sum(axis=0).astype(np.float64)
        m, v, b = state.get(c, (np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        b = np.clip(b - eta * m / (np.sqrt(v) + 1e-9), -16, 16)
        state[c] = (m, v, b)
        self.tables[c][:, 0] = bias_entries(b)

    context_mlp._HiddenBiases.learn = learn
    base = with_head(codec, context_mlp.HEAD_POSITIONS).likelihood(img, sig)[1]
    out = []
    for text in a.configs:
        config[0] = tuple(float(v) for v in text.split(":"))
        bits = with_head(codec, context_mlp.HEAD_HIDDEN).likelihood(img, sig)[1]
        out.append(f"{text} {bits / base - 1:+.4%}")
    print(a.photo, a.crop or "whole", Path(a.network).name, "  ".join(out), flush=True)


if __name__ == "__main__":
    main()
