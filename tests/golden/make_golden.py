"""Regenerate the golden .nz files (only when the format changes on purpose).

    python tests/golden/make_golden.py [MODEL ...]   # all models, or only these

Each model codes a small deterministic input; expected.json records the
SHA-256 of the restored file, which CI checks by decoding the committed .nz
files (test_golden.py), so an accidental format change is noticed.

The legacy-<version>-*.nz files were written by released versions under model
names that have since changed, the older-*.nz files by earlier versions of a model's
own coding; both are kept as they are and never regenerated.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from media_factory import image_file, jpeg_decoded, tone, wav_file  # noqa: E402
from neuralzip import api  # noqa: E402
from neuralzip.models import all_codecs  # noqa: E402
from neuralzip.models.classic_image import ClassicImageCodec  # noqa: E402
from neuralzip.models.jpeg_coefficients import JpegCoefficientsCodec  # noqa: E402

INPUTS = {"image": ("photo.ppm", lambda: image_file("ppm", "RGB", 24, 32)),
          "audio": ("clip.wav", lambda: wav_file(tone(2000, 2, 16), 16, rate=22050))}
# the models that code a decoded JPEG in its YCbCr (models/jpeg_colour.py) also code one of those
# as <model>-jpeg-image.nz
JPEG_INPUT = ("photo-from-jpeg.ppm", lambda: _ppm(jpeg_decoded(24, 32)))
# jpeg-coefficients codes decoded JPEGs with full-resolution chroma (4:4:4): one of those, cut by
# the right and bottom edges inside a block
JPEG444_INPUT = ("photo-from-jpeg-444.ppm", lambda: _ppm(jpeg_decoded(21, 30, quality=92, subsampling=0)))
# and with half-resolution chroma (4:2:0; 4:2:2: half across only), its chroma upsampled as
# libjpeg-turbo does
JPEG420_INPUT = ("photo-from-jpeg-420.ppm", lambda: _ppm(jpeg_decoded(21, 30, quality=92, subsampling=2)))
JPEG422_INPUT = ("photo-from-jpeg-422.ppm", lambda: _ppm(jpeg_decoded(21, 30, quality=92, subsampling=1)))
# and a 4:2:0 decode turned a quarter turn clockwise after decoding (an orientation tag applied)
JPEG_TURNED_INPUT = ("photo-from-jpeg-turned.ppm",
                     lambda: _ppm(np.rot90(jpeg_decoded(21, 30, quality=92, subsampling=2), -1)))


def _ppm(rgb) -> bytes:
    return b"P6 %d %d 255\n" % (rgb.shape[1], rgb.shape[0]) + rgb.astype("uint8").tobytes()


def main():
    only = set(sys.argv[1:])
    path = HERE / "expected.json"
    expected = json.loads(path.read_text())
    if not only:  # every current model's file is made again; the legacy and older files stay
        expected = {k: v for k, v in expected.items() if k.startswith(("legacy-", "older-"))}
    for codec in all_codecs():
        if only and codec.name not in only:
            continue
        inputs = {f"{codec.name}-{codec.kind}.nz": INPUTS[codec.kind]}
        if isinstance(codec, ClassicImageCodec):
            inputs[f"{codec.name}-jpeg-{codec.kind}.nz"] = JPEG_INPUT
        if isinstance(codec, JpegCoefficientsCodec):
            inputs[f"{codec.name}-jpeg-{codec.kind}.nz"] = JPEG444_INPUT
            inputs[f"{codec.name}-jpeg420-{codec.kind}.nz"] = JPEG420_INPUT
            inputs[f"{codec.name}-jpeg422-{codec.kind}.nz"] = JPEG422_INPUT
            inputs[f"{codec.name}-jpeg-turned-{codec.kind}.nz"] = JPEG_TURNED_INPUT
        for file, (name, make) in inputs.items():
            data = make()
            (HERE / file).write_bytes(api.compress_bytes(data, name, codec.name))
            expected[file] = {"restores": name, "sha256": hashlib.sha256(data).hexdigest()}
    path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
