"""Choose the strength of a classic model's learned prior on a tuning split.

    python benchmarks/tune_classic_prior.py image ../shared/data/images/train
    python benchmarks/tune_classic_prior.py audio ../shared/data/audio/train

Every 5th training file (sorted) is held out; the prior is learned on the
rest and the held-out bits per dimension are reported for several strengths
and for a flat start. Output: benchmarks/results/tune_classic_prior_<kind>.json.
"""

import json
import sys
import tempfile
from pathlib import Path

from neuralzip.media.detect import read_media
from neuralzip.models.base import Signal
from neuralzip.train.classic_prior import CODECS, learn, save, training_files


def held_out_bpd(codec, files):
    bits = dims = 0
    for f in files:
        m = read_media(f.read_bytes())
        signal = Signal(m.kind, m.samples.shape, m.bits, int(m.meta.get("rate", 0)))
        bits, dims = bits + codec.likelihood(m.samples, signal)[1], dims + m.samples.size
    return bits / dims


def main():
    kind, data = sys.argv[1], Path(sys.argv[2])
    files = training_files(data, kind)
    tune = files[4::5]
    train = [f for f in files if f not in tune]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        flat = CODECS[kind]()
        results["flat"] = held_out_bpd(flat.with_weights(flat.weights.flat_file(Path(tmp) / "flat.npz")), tune)
        print("flat", results["flat"], flush=True)
        for total in (256, 1024, 4096, 16384):
            path = save(kind, learn(kind, train, total, progress=lambda m: None), Path(tmp) / str(total), {})
            results[str(total)] = held_out_bpd(CODECS[kind](path), tune)
            print(total, results[str(total)], flush=True)
    out = Path(__file__).parent / "results" / f"tune_classic_prior_{kind}.json"
    out.write_text(json.dumps({"tune_files": [str(f.relative_to(data)) for f in tune], "bpd": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
