"""What `train vae --for-mixture` trains on (train.vae.aligned_pool, vae.counts_probabilities): the
neighbour counts' probability of each subpixel, as the codec mixes it in, at the patches of the
codec's grid. Without torch (the training step itself needs it)."""

import numpy as np
import pytest

from media_factory import smooth_image
from neuralzip import weightstore
from neuralzip.models import vae
from neuralzip.models import vae_layout as L
from neuralzip.train import vae as train_vae


def _net():
    return vae.VAECodec(weightstore.shipped("vae-image")).net


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = smooth_image(h, w, 3, 255).astype(np.int64) + rng.integers(-6, 7, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_counts_probabilities_are_what_the_mixture_prices():
    """At share 0 (the counts alone) share_costs, the float model's bits as the codec mixes them, is
    -log2 of counts_probabilities summed per channel and phase; on an odd shape (partial patches)."""
    net, img = _net(), _image(37, 45)
    p = vae.counts_probabilities(net, img)
    assert p.shape == img.shape and p.dtype == np.float32
    assert np.all((p > 0) & (p <= 1))
    costs = vae.share_costs(net, img)
    phase = L.PHASE.reshape(L.PATCH, L.PATCH)[np.arange(37)[:, None] % L.PATCH, np.arange(45)[None, :] % L.PATCH]
    for c in range(3):
        for k in range(L.N_PHASES):
            want = -np.log2(p[:, :, c][phase == k].astype(np.float64)).sum()
            assert np.isclose(costs[c, k, 0], want, rtol=1e-6), (c, k)
    # negative control: the map read one pixel off its place no longer matches
    shifted = -np.log2(np.roll(p[:, :, 0], 1, axis=1)[phase == 3].astype(np.float64)).sum()
    assert not np.isclose(costs[0, 3, 0], shifted, rtol=1e-6)


def test_counts_probabilities_depend_on_the_image_only(tmp_path):
    """The counts read decoded values only: the same map with other networks (the shipped decoder's
    weights scrambled, its counts kept), while a changed subpixel changes the map from there on and
    not before (negative control)."""
    shipped = weightstore.shipped("vae-image")
    img = _image(24, 32, 1)
    arrays = weightstore.load(shipped)
    arrays["dec.w0"] = np.random.default_rng(0).permutation(arrays["dec.w0"].ravel()).reshape(arrays["dec.w0"].shape)
    scrambled = vae.VAECodec(weightstore.save(arrays, tmp_path, "vae-image", 6)).net
    p = vae.counts_probabilities(vae.VAECodec(shipped).net, img)
    assert np.array_equal(p, vae.counts_probabilities(scrambled, img))
    other = img.copy()
    other[20, 30, 1] ^= 0x40  # in the last patch the decoder meets (wave 5 of a 3 x 4 grid)
    q = vae.counts_probabilities(scrambled, other)
    assert not np.array_equal(p, q)
    assert np.array_equal(p[:16], q[:16])


def test_aligned_pool_takes_the_grid_patches_with_their_counts(tmp_path):
    """Every patch on the codec's grid with a full context (not the top patch row or left column, nor
    a partial patch at the bottom or right), its window holding the context, its counts the map's."""
    from PIL import Image

    net = _net()
    files = []
    for k, (h, w) in enumerate([(35, 42), (24, 24)]):
        files.append(tmp_path / f"img{k}.png")
        Image.fromarray(_image(h, w, k)).save(files[-1])
    windows, counts = train_vae.aligned_pool(files, net, log=lambda m: None)
    assert windows.shape == (3 * 4 + 2 * 2, L.PATCH + train_vae.MARGIN, L.PATCH + train_vae.MARGIN, 3)
    assert counts.shape == (len(windows), 3, L.PIXELS)
    img = np.asarray(Image.open(files[0]))
    p = vae.counts_probabilities(net, img)
    m = train_vae.MARGIN
    for n, (i, j) in enumerate([(i, j) for i in range(1, 4) for j in range(1, 5)]):
        y, x = i * L.PATCH, j * L.PATCH
        assert np.array_equal(windows[n], img[y - m:y + L.PATCH, x - m:x + L.PATCH])
        assert np.array_equal(counts[n], p[y:y + L.PATCH, x:x + L.PATCH].reshape(L.PIXELS, 3).T)
    # the windows split as training reads them: the patch, and its context rows and columns
    patches, _ = train_vae.split_windows(windows[:1])
    assert np.array_equal(patches[0], img[8:16, 8:16].reshape(L.PIXELS, 3))


@pytest.mark.parametrize("option, name, message", [
    ("--for-mixture", "vae-image-v3-", "needs weights with neighbour counts"),
    ("--add-counts", "vae-image-v1-", "need weights whose networks read the patch context")])
def test_train_vae_refuses_weights_without_what_the_job_needs(run_cli, tmp_path, option, name, message):
    """One line and exit code 2 before any work (and before torch is needed), no traceback, no file."""
    [weights] = weightstore.shipped_dir().glob(f"{name}*.npz")
    data = tmp_path / "images"
    data.mkdir()
    out = tmp_path / "out"
    res = run_cli("train", "vae", data, "-o", out, option, weights)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())
