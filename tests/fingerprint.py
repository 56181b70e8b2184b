"""Fingerprint of every shipped model's output: SHA-256 of the .nz bytes each model writes
for a fixed set of small media (every mode the exact-decode test covers, plus a larger image
and recording so multi-chunk and multi-threaded paths run).

One figure is left out: each member's `nll_float_bits`, the likelihood under the float
(training) model, reported for comparison only. It is computed with floating-point matrix
products whose last digits depend on the BLAS kernel and its thread count, so it may differ
between machines; the coded payload and everything the decoder reads may not.

    python tests/fingerprint.py > prints.json

Two builds of the compiled kernels (-O0 and -O2, or any two machines) must print the same
JSON: test_kernel_build.py runs this under a second build and compares.
"""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from media_factory import image_file, jpeg_decoded, png_bytes, repeating_colours, sparse_tone, tone, wav_file  # noqa: E402
from neuralzip import api, container  # noqa: E402
from neuralzip.models import all_codecs  # noqa: E402

IMAGES = [("png", "RGB", 70, 90), ("png", "L", 33, 47), ("png", "RGBA", 21, 17), ("png", "RGBA16", 9, 13),
          ("png", "RGB", 300, 260)]
AUDIO = [(16, 2, 20000, 44100), (24, 1, 9000, 48000), (8, 3, 3000, 8000), (16, 2, 70000, 22050)]


def inputs(kind: str) -> list[bytes]:
    if kind == "image":
        # then decoded JPEGs, with full-resolution, 4:2:0 and 4:2:2 chroma (jpeg-coefficients
        # codes them as coefficients, the models of pixels in YCbCr)
        # and (last, so that the earlier cases keep their numbers) colours that repeat: the colour table
        return ([image_file(*c) for c in IMAGES] + [png_bytes(jpeg_decoded(40, 56, quality=90, subsampling=s), "RGB")
                                                    for s in (0, 2, 1)]
                + [png_bytes(repeating_colours(48, 64), "RGB")])
    return ([wav_file(tone(frames, ch, bits), bits, rate) for bits, ch, frames, rate in AUDIO]
            + [wav_file(sparse_tone(12000, 2, 16), 16, 44100)])  # values on a lattice: a value map


def format_digest(blob: bytes) -> str:
    """SHA-256 of a .nz with every member's float-model figure taken out."""
    top, members = container.loads(blob)
    for m in members:
        m.stats.pop("nll_float_bits", None)
    return hashlib.sha256(container.dumps(members, archive=top["archive"])).hexdigest()


def fingerprints(names=None) -> dict[str, str]:
    out = {}
    for codec in all_codecs():
        if codec.name == "float-control" or (names and codec.name not in names):
            continue
        for level in codec.levels:
            tag = "" if level == 1 else f"-level{level}"
            for i, data in enumerate(inputs(codec.kind)):
                blob = api.compress_bytes(data, f"case{i}", codec.name, level=level)
                out[f"{codec.name}-{codec.kind}{tag}-{i}"] = format_digest(blob)
    return out


if __name__ == "__main__":
    print(json.dumps(fingerprints(set(sys.argv[1:])), indent=1, sort_keys=True))
