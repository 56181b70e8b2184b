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

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from media_factory import image_file, tone, wav_file  # noqa: E402
from neuralzip import api  # noqa: E402
from neuralzip.models import all_codecs  # noqa: E402

INPUTS = {"image": ("photo.ppm", lambda: image_file("ppm", "RGB", 24, 32)),
          "audio": ("clip.wav", lambda: wav_file(tone(2000, 2, 16), 16, rate=22050))}


def main():
    only = set(sys.argv[1:])
    path = HERE / "expected.json"
    expected = json.loads(path.read_text())
    if not only:  # every current model's file is made again; the legacy and older files stay
        expected = {k: v for k, v in expected.items() if k.startswith(("legacy-", "older-"))}
    for codec in all_codecs():
        if only and codec.name not in only:
            continue
        name, make = INPUTS[codec.kind]
        data = make()
        nz = HERE / f"{codec.name}-{codec.kind}.nz"
        nz.write_bytes(api.compress_bytes(data, name, codec.name))
        expected[nz.name] = {"restores": name, "sha256": hashlib.sha256(data).hexdigest()}
    path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
