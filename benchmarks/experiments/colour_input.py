"""Does the later channels' network code photos from another source better when it is told how the
chunk is coded, in YCbCr (a decoded JPEG) or as stored? (stop 62; an experiment, nothing shipped)

    PYTHONPATH=. python benchmarks/experiments/colour_input.py train FOLDER OUT
    PYTHONPATH=. python benchmarks/experiments/colour_input.py split URBAN.npz WIKI.npz [--jobs 2]

The urban photos of images/train are decoded JPEGs, which the codec codes in the YCbCr they were
decoded from, so the second channel a network trained on them learns is Cb given Y; on the
Wikipedia photos, coded in RGB, it is G given R (`split_where.py`: the urban network's loss there is
largest in the later channels). Here the later channels' network gets one more input, 32 where the
chunk is coded in YCbCr, else 0 (the decoder reads that from each chunk's colour byte). Patched
into the package at run time (N_FEATURES and features), nothing else changed:
`train` is `neuralzip train local-ls-mlp FOLDER -o OUT --steps 40000 --batch 8192 --crops 2
--crop-size 256 --hidden 64 --mixtures 2 --augment` (the split networks' recipe) with the input;
`split` codes images/valid at level 2 with the two networks, exact-model bits against the -e 9
bytes of results/local_ls.json, as `benchmarks/local_ls.py --split` does.
"""
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import local_ls  # noqa: E402  (its import sets one kernel thread a process, as the recorded runs had)

from neuralzip.models import context_mlp, jpeg_colour  # noqa: E402
from neuralzip.models.classic_image import ClassicImageCodec  # noqa: E402

COLOUR_INPUT = 32  # the input's value for a chunk coded in YCbCr (the float network reads 1.0)
_chunk_in_ycbcr = [False]  # set as each chunk is put in the colour it is coded in
_features = context_mlp.features
_as_coded = ClassicImageCodec.as_coded
_widths = context_mlp.N_FEATURES


def features(view, x):
    """The network's inputs, and for the later channels the chunk's colour space last."""
    if view.c == 0:
        _features(view, x)
        return
    inner = np.empty((x.shape[0], _widths[1]), np.float32)
    _features(view, inner)
    x[:, :_widths[1]] = inner
    x[:, _widths[1]] = COLOUR_INPUT if _chunk_in_ycbcr[0] else 0


def as_coded(img, params):
    colour, values = _as_coded(img, params)
    _chunk_in_ycbcr[0] = colour == jpeg_colour.YCBCR
    return colour, values


def patch():
    context_mlp.N_FEATURES = (_widths[0], _widths[1] + 1)
    context_mlp.features = features
    ClassicImageCodec.as_coded = staticmethod(as_coded)


def train(folder: str, out: str):
    from neuralzip.train import image
    path = image.run(Path(folder), Path(out), 40000, 64, 2, 2, 256, 8192, 0.003, 0, 500, False,
                     model="local-ls-mlp", augment=True)
    print("wrote", path)


def split(urban: str, wiki: str, jobs: int):
    """local_ls.py's --split at level 2, with the input patched in (the workers are forked, so
    they code with it too)."""
    out = local_ls.split(HERE.parents[2] / "shared" / "data", {"urban": urban, "wiki": wiki}, jobs,
                         HERE.parent / "results" / "local_ls.json", "local-ls-mlp", None, 2)
    out["command"] = f"PYTHONPATH=. python benchmarks/experiments/colour_input.py split {urban} {wiki}"
    out["level"] = 2
    print(json.dumps(out["vs jxl-e9 (exact-model bits / -e 9 bits)"], indent=1))
    (HERE.parent / "results" / "colour_input_split.json").write_text(json.dumps(out, indent=1) + "\n")


def main():
    patch()
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "split":
        jobs = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else 2
        split(sys.argv[2], sys.argv[3], jobs)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
