"""The image networks' trainer with --augment: each crop also as a decoded JPEG and a region
shrunk 2x (neuralzip/train/image.py). No torch is needed for the features."""

import numpy as np
from PIL import Image

from neuralzip.models import jpeg_colour
from neuralzip.train import image as trainer


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour photo with some noise (no decoded JPEG: most colours unreachable)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([96 + 60 * np.sin(xx / 9.0), 128 + 50 * np.cos(yy / 7.0), 100 + 0.4 * (xx + yy)], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def test_without_augment_a_crop_is_the_only_form():
    forms = trainer._crop_forms(_photo(40, 50), 32, np.random.default_rng(0), augment=False)
    assert len(forms) == 1 and forms[0].shape == (32, 32, 3)


def test_the_forms_are_the_crop_a_decoded_jpeg_of_it_and_a_shrunk_region():
    """The photo's sides are even and under twice the crop's, so the shrunk region is the whole
    photo: its 2x2 means, rounded, exactly. The JPEG form is recognised as a decoded JPEG (coded in
    YCbCr); negative control: the plain crop is not."""
    img = _photo(48, 60)
    crop, jpeg, half = trainer._crop_forms(img, 32, np.random.default_rng(1), augment=True)
    assert crop.shape == jpeg.shape == (32, 32, 3) and crop.dtype == jpeg.dtype == half.dtype == np.uint8
    sums = img.astype(np.int64).reshape(24, 2, 30, 2, 3).sum(axis=(1, 3))
    assert np.array_equal(half, (sums + 2) // 4)
    assert jpeg_colour.encode_chunk(jpeg.astype(np.int64)) is not None
    assert jpeg_colour.encode_chunk(crop.astype(np.int64)) is None
    assert not np.array_equal(jpeg, crop)


def test_extract_learns_every_form(tmp_path):
    """With --augment the features hold the crop's values, the decoded JPEG's (in YCbCr, as coded)
    and the shrunk region's: three times as many as without."""
    Image.fromarray(_photo(48, 60)).save(tmp_path / "photo.png")
    quiet = dict(crops=1, size=24, seed=0, log=lambda *_: None, model="local-ls-mlp")
    plain = trainer.extract([tmp_path / "photo.png"], **quiet)
    augmented = trainer.extract([tmp_path / "photo.png"], augment=True, **quiet)
    for g in range(2):
        assert len(augmented[g]["v"]) == 3 * len(plain[g]["v"]) > 0
        # the crop comes first, drawn as without --augment
        assert np.array_equal(augmented[g]["v"][:len(plain[g]["v"])], plain[g]["v"])
