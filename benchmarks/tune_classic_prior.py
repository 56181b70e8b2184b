"""Choose the classic image prior's strength on a tuning split of images/train.

    python benchmarks/tune_classic_prior.py ../shared/data/images/train

Every 5th training image (sorted) is held out; the prior is learned on the
rest and the held-out bits per subpixel are reported for several strengths
(and for a flat start). Output: benchmarks/results/tune_classic_prior.json.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from neuralzip.media.detect import read_media
from neuralzip.models.base import Signal
from neuralzip.models.classic_image import ClassicImageCodec
from neuralzip.train.classic_prior import flat_prior_file, learn, save


def held_out_bpsp(codec, files):
    bits = dims = 0
    for f in files:
        m = read_media(f.read_bytes())
        _, nll = codec.likelihood(m.samples, Signal("image", m.samples.shape, m.bits))
        bits, dims = bits + nll, dims + m.samples.size
    return bits / dims


def main():
    data = Path(sys.argv[1])
    files = sorted(data.glob("*.png"))
    tune = files[4::5]
    train = [f for f in files if f not in tune]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["flat"] = held_out_bpsp(ClassicImageCodec(flat_prior_file(Path(tmp) / "flat.npz")), tune)
        print("flat", results["flat"], flush=True)
        hist_counts = {}
        for total in (256, 1024, 4096):
            counts = learn(train, total, progress=lambda m: None)
            path = save(counts, Path(tmp) / str(total), {"total": total})
            results[str(total)] = held_out_bpsp(ClassicImageCodec(path), tune)
            print(total, results[str(total)], flush=True)
    out = Path(__file__).parent / "results" / "tune_classic_prior.json"
    out.write_text(json.dumps({"tune_files": [f.name for f in tune], "bpsp": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
