"""Where an image model's time goes on the 768x512 centre crop of the first valid photo.

    python benchmarks/profile_image.py [MODEL]   # context-mlp (default), vae, ... -> results/profile_MODEL.txt

In-process encode and decode under cProfile (start-up not included: see
image_model.py for whole processes); the top functions by own time.
"""

import cProfile
import io
import pstats
import sys
from pathlib import Path

import neuralzip  # noqa: F401 - sets the BLAS threads before numpy loads
import numpy as np
from PIL import Image

from neuralzip.models.base import Signal
from neuralzip.models import get_codec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "valid"


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "context-mlp"
    src = sorted(DATA.glob("*.png"))[0]
    img = np.asarray(Image.open(src).convert("RGB"))
    h, w = img.shape[:2]
    img = np.ascontiguousarray(img[(h - 512) // 2:(h - 512) // 2 + 512, (w - 768) // 2:(w - 768) // 2 + 768])
    signal = Signal("image", img.shape, 8)
    codec = get_codec(model, "image")
    enc = codec.encode(img, signal)  # compiles or loads the kernels
    out = io.StringIO()
    out.write(f"{model}: 768x512 centre crop of {src.name}, {' '.join(sys.argv)}\n")
    for label, call in (("encode", lambda: codec.encode(img, signal)),
                        ("decode", lambda: codec.decode(enc.params, enc.chunks, signal))):
        prof = cProfile.Profile()
        prof.runcall(call)
        out.write(f"\n## {label}\n")
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    text = out.getvalue()
    (Path(__file__).parent / "results" / f"profile_{model}.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
