"""The model registry (neuralzip/models/__init__.py) builds each codec when first asked for: every
entry builds the codec it names, and compressing a photo in a fresh process loads the modules of
the models it uses and none of the others (nor torch)."""

import subprocess
import sys

from neuralzip import models


def test_every_entry_builds_the_codec_it_names():
    for (name, kind) in models._MODELS:
        codec = models.get_codec(name, kind)
        assert (codec.name, codec.kind) == (name, kind)
    # (every shipped model; tests may have registered more)
    assert {(c.name, c.kind) for c in models.all_codecs()} >= set(models._MODELS)
    assert models.handles("classic", "audio") and not models.handles("vae", "audio")


def test_a_photo_loads_only_the_models_it_uses(tmp_path):
    """Negative control in the same process: asking for the vae afterwards loads it."""
    from media_factory import image_file

    photo = tmp_path / "photo.png"
    photo.write_bytes(image_file("png", "RGB", 40, 30))
    code = (
        "import sys\n"
        "from neuralzip.cli import main\n"
        f"sys.argv = ['neuralzip', 'compress', '-q', {str(photo)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code\n"
        "loaded = lambda m: m in sys.modules\n"
        "print(loaded('neuralzip.models.classic_image'), loaded('neuralzip.models.vae'),"
        " loaded('neuralzip.models.ols_audio'), loaded('neuralzip.models.context_mlp'), loaded('torch'))\n"
        "from neuralzip.models import get_codec\n"
        "get_codec('vae', 'image')\n"
        "print(loaded('neuralzip.models.vae'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "True False False False False"
    assert out[1] == "True"
    assert (tmp_path / "photo.png.nz").exists()
