"""jpeg-coefficients' prior trainer (neuralzip/train/jpeg_prior.py): the resaved copies it counts
besides a folder's own decoded JPEGs, and the weights file it writes."""

from collections import Counter

import numpy as np

from media_factory import jpeg_decoded, png_bytes, smooth_image
from neuralzip import weightstore
from neuralzip.kernels import jpeg_blocks as _k
from neuralzip.models.jpeg_coefficients import found, recognises
from neuralzip.train import jpeg_prior


def test_every_quality_meets_every_sampling_equally_often():
    plans = [jpeg_prior.resave_plan(i) for i in range(3)]
    assert all([q for q, _ in plan] == list(jpeg_prior.RESAVE_QUALITIES) for plan in plans)
    pairs = Counter(pair for plan in plans for pair in plan)
    assert len(pairs) == len(jpeg_prior.RESAVE_QUALITIES) * len(jpeg_prior.RESAVE_SAMPLINGS)
    assert set(pairs.values()) == {1}


def test_a_resaved_copy_is_a_decoded_jpeg_of_that_sampling():
    photo = smooth_image(64, 80, 3)
    assert not recognises(photo, 8)  # the negative control: the photo itself is no decoded JPEG
    for sampling, canvas_sampling in (("4:4:4", "4:4:4"), ("4:2:0", "4:2:0"), ("4:2:2", "4:2:2")):
        copy = jpeg_prior.resaved(photo, 90, sampling)
        assert copy.shape == photo.shape and copy.dtype == np.uint8
        assert recognises(copy, 8) and found(copy, 8).canvas.sampling == canvas_sampling
    grey = jpeg_prior.resaved(photo[:, :, :1], 80, "4:2:0")
    assert grey.shape == (64, 80, 1) and recognises(grey, 8)
    assert jpeg_prior.resaved(smooth_image(16, 16, 4), 80, "4:4:4") is None  # RGBA: not resaved


def test_training_counts_resaved_copies_only_when_asked(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "decoded.png").write_bytes(png_bytes(jpeg_decoded(48, 64, quality=90, subsampling=0), "RGB"))
    (folder / "photo.png").write_bytes(png_bytes(smooth_image(48, 64, 3, seed=3), "RGB"))
    files = jpeg_prior.training_files(folder, "image")
    stored_only = jpeg_prior.tally(files, resave=False, progress=lambda m: None)
    with_copies = jpeg_prior.tally(files, resave=True, progress=lambda m: None)
    decoded_only = jpeg_prior.tally(files[:1], resave=False, progress=lambda m: None)
    assert stored_only.shape == (_k.CONTEXTS, _k.ROW_WIDTH)
    # without copies the photo that never was a JPEG adds nothing; with them both images add counts
    assert np.array_equal(stored_only, decoded_only) and stored_only.sum() > 0
    assert with_copies.sum() > 2 * stored_only.sum() and np.all(with_copies >= stored_only)

    jpeg_prior.main([str(folder), "-o", str(tmp_path / "out"), "--jobs", "1"])
    [written] = (tmp_path / "out").glob(f"jpeg-coefficients-image-v{jpeg_prior.VERSION}-*.npz")
    counts = weightstore.load(written)["counts"]
    assert counts.shape == (_k.CONTEXTS, _k.ROW_WIDTH) and counts.min() >= 1
    assert written.name.endswith(f"-{weightstore.file_hash(written)}.npz")
