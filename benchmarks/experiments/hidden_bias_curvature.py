"""Why learning the last hidden layer's biases while coding was not shipped (issue 13): is the
gradient wrong, or the step? Needs `hidden-biases.patch` (params "head": 4; apply it with
`git apply` against commit 01946f5 and rebuild the kernels).

    PYTHONPATH=. python benchmarks/experiments/hidden_bias_curvature.py [--crop 192] [--data DIR] [--out FILE.json]

On a centre-left crop of urban_img_027 (a tuning photo of images/train), for the shipped
local-ls-mlp network and the one of the source split trained on the urban photos alone: the
biases are held fixed (not learned) at a vector along the summed gradient of the whole crop
(hidden_gradients, as the coder computes it with the biases at zero), scaled so that its largest
entry is 1, 2 or 4 activation units, in either direction; printed: the exact-model bits against
the biases at zero. If the gradient is right, the direction against it codes smaller at a small
enough distance; the distance at which it turns worse says how large a safe step is for that
network.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from head_rate import with_head  # noqa: E402
from neuralzip.media.detect import read_media  # noqa: E402
from neuralzip.models import context_mlp, get_codec  # noqa: E402
from neuralzip.models.base import Signal  # noqa: E402

DATA = HERE.parents[3] / "shared" / "data"
URBAN_NETWORK = HERE.parent / "split_networks" / "urban" / "local-ls-mlp-image-v3-a83c39b2752a8b6a.npz"


# -- shared with hidden_bias_adaptive_step.py --------------------------------------------------------
def require_patch() -> None:
    if getattr(context_mlp, "HEAD_HIDDEN", None) is None:
        raise SystemExit("apply benchmarks/experiments/hidden-biases.patch first (params \"head\": 4)")


def train_photo(data: Path, name: str, crop: int) -> tuple[np.ndarray, Signal]:
    """A photo of images/train, its top-left crop x crop (0: whole), and its signal."""
    path = data / "images" / "train" / name
    img = read_media(path.read_bytes(), str(path)).samples
    if crop:
        img = np.ascontiguousarray(img[:crop, :crop])
    return img, Signal("image", img.shape, 8)


def local_ls_mlp(network: str | Path | None):
    """local-ls-mlp with the shipped network (None) or the one in `network`."""
    codec = get_codec("local-ls-mlp", "image")
    return codec if network is None else type(codec)(str(network))


def unit_gradients(biases, c: int, net, grads, out_table) -> np.ndarray:
    """The step's gradients by channel c's hidden units [pixels, units], as the coder's
    _HiddenBiases.learn computes them."""
    back = biases.back[c][:len(biases.z)]
    context_mlp._k.hidden_gradients(grads, biases.slopes[min(c, 1)], out_table, biases.z, net.act_max, back,
                                    biases.unit_powers[c])
    return back


def bias_entries(units: np.ndarray) -> np.ndarray:
    """The bias table's entries that move each unit by `units` activation units (entry * 255 / 2**16)."""
    return np.round(units * 65536 / 255)


NETWORKS = {"shipped": None, "urban split": URBAN_NETWORK}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    require_patch()
    img, sig = train_photo(a.data, "urban_img_027.png", a.crop)
    gradient, fixed = {}, [None]

    def learn(self, c, net, grads, out_table):  # sums the gradient, and holds the biases at `fixed`
        gradient[c] = gradient.get(c, 0) + unit_gradients(self, c, net, grads, out_table).sum(axis=0)
        if fixed[0] is not None:
            self.tables[c][:, 0] = fixed[0][c]

    context_mlp._HiddenBiases.learn = learn
    out = {"photo": "urban_img_027.png", "crop": a.crop, "networks": {}}
    for name, weights in NETWORKS.items():
        codec = local_ls_mlp(weights)
        gradient.clear()
        fixed[0] = None
        base = with_head(codec, context_mlp.HEAD_HIDDEN).likelihood(img, sig)[1]
        g = {c: v.astype(np.float64) for c, v in gradient.items()}
        rows = {}
        for units in (1, 2, 4):
            for direction, sign in (("against", 1), ("along", -1)):
                fixed[0] = {c: bias_entries(-sign * v / np.abs(v).max() * units) for c, v in g.items()}
                bits = with_head(codec, context_mlp.HEAD_HIDDEN).likelihood(img, sig)[1]
                rows[f"{direction} the gradient, {units} units"] = round(bits / base - 1, 5)
                print(name, direction, units, f"{bits / base - 1:+.4%}", flush=True)
        out["networks"][name] = {"bits_at_zero": base, "change": rows}
    if a.out:
        a.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
