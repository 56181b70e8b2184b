"""Quantizing float networks into exact layers (train.quantize.quantize_layers), and the vae's
requantization (train.vae.requantize, how its weights v2 were made from v1): without torch."""

import json

import numpy as np

from media_factory import image_file
from neuralzip import weightstore
from neuralzip.exact.mlp import WIDE_ACT_MAX, QuantizedMLP
from neuralzip.models import vae
from neuralzip.models.neighbour_counts import DEFAULT, CountsParams
from neuralzip.train import vae as train_vae
from neuralzip.train.image import image_split, load_rgb8
from neuralzip.train.quantize import quantize_layers


def _mlp(seed=0, n_in=12, hidden=16, n_out=3):
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 0.5, (n_in, hidden)), rng.normal(0, 0.1, hidden)),
            (rng.normal(0, 0.5, (hidden, n_out)), rng.normal(0, 0.1, n_out))]


def _float_forward(layers, x):
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


def _hidden_and_out(arrays, x):
    net = QuantizedMLP(arrays, "q")
    (w, _, _, _), rescale = net.layers[0], net.rescales[0]
    hidden = np.empty((len(x), w.shape[1]), np.float64)
    rescale(x.astype(np.float64) @ w, hidden)
    return hidden, net.forward(x.astype(np.float32))


def test_headroom_clips_nothing_seen_in_calibration_and_the_percentile_rule_does():
    """With headroom, no hidden activation of the calibration inputs reaches the 16-bit ceiling and
    the exact outputs follow the float network to within its rounding; the 99.99th-percentile rule
    (how vae v1 was made, the negative control) clips the largest ones and is further off there."""
    layers = _mlp()
    x = np.random.default_rng(1).integers(0, 256, (20000, 12))
    scale = np.full(3, 256.0)
    want = _float_forward(layers, x / 64.0) * 256.0
    errors = {}
    for headroom in (1.5, None):
        arrays = quantize_layers(layers, "q", "f", x, 1 / 64.0, 0.0, scale, np.zeros(3), headroom)
        hidden, out = _hidden_and_out(arrays, x)
        clipped = np.mean(hidden >= WIDE_ACT_MAX)
        errors[headroom] = np.abs(out - want).max()
        if headroom is None:
            assert clipped > 0
        else:
            assert clipped == 0 and hidden.max() < WIDE_ACT_MAX / 1.4
    assert errors[1.5] < 2.0 < errors[None]


def test_requantize_changes_the_encoder_and_nothing_else(tmp_path, monkeypatch):
    data = tmp_path / "images"
    data.mkdir()
    for k in range(3):
        (data / f"img{k}.png").write_bytes(image_file("png", "RGB", 24 + 8 * k, 40))
    monkeypatch.setattr(train_vae, "CALIBRATION", 500)
    v1 = weightstore.shipped_dir() / "vae-image-v1-5abb9a4764865410.npz"
    path = train_vae.requantize(v1, data, tmp_path / "out", log=lambda m: None)
    old, new = weightstore.load(v1), weightstore.load(path)
    assert path.name.startswith("vae-image-v2-") and set(old) == set(new)
    changed = sorted(k for k in old if k != "recipe" and not np.array_equal(old[k], new[k]))
    assert changed and all(k.startswith("enc.") for k in changed)
    # int16 weights are scaled per output channel, so a layer's activation range moves its bias and
    # its rescale (multiplier, shift), not its weights
    assert not any(k.startswith("enc.w") for k in changed) and {"enc.m0", "enc.b1", "enc.m1"} <= set(changed)
    recipe = json.loads(str(new["recipe"]))
    assert recipe["requantized_from"] == "5abb9a4764865410" and recipe["encoder_headroom"] == train_vae.HEADROOM


def test_requantize_with_context_redoes_every_network_and_nothing_else(tmp_path, monkeypatch):
    """Weights with context (v3 on): encoder, decoder and prior are quantized again from their own
    float layers; the float layers, the tables and the layout stay; the file is v9: the same with
    the neighbour counts' parameters and prior."""
    data = tmp_path / "images"
    data.mkdir()
    for k in range(3):
        (data / f"img{k}.png").write_bytes(image_file("png", "RGB", 24 + 8 * k, 40))
    monkeypatch.setattr(train_vae, "CALIBRATION", 500)
    [v3] = weightstore.shipped_dir().glob("vae-image-v3-*.npz")
    path = train_vae.requantize(v3, data, tmp_path / "out", log=lambda m: None)
    old, new = weightstore.load(v3), weightstore.load(path)
    assert path.name.startswith(f"vae-image-v{train_vae.VERSION}-") and train_vae.VERSION == 9 and set(old) <= set(new)
    assert set(new) - set(old) == set(CountsParams.arrays(DEFAULT)) | {"counts.prior"}
    changed = {k for k in old if k != "recipe" and not np.array_equal(old[k], new[k])}
    assert changed and all(k.split(".")[0] in ("enc", "dec", "pri") for k in changed)
    assert {"enc.m0", "dec.m0", "pri.m0"} <= changed


def test_add_counts_fits_the_shares_on_the_training_files(tmp_path):
    """`train vae --add-counts` on the shipped v3 keeps its networks and adds the neighbour counts:
    the default scale (v8: 32) and limit, the activity context (v6), the median's table (v7), the
    snap's (v9), the prior made of the residuals counted over the training files (v7), and per channel and phase the
    share with the fewest float-model bits summed over the training files (vae.share_costs). The
    recipe names v3 and the fit. (The shipped v9 was made so from images/train, on networks
    trained further; weights/RECIPES.md has the commands.)"""
    data = tmp_path / "images"
    data.mkdir()
    for k in range(2):
        (data / f"img{k}.png").write_bytes(image_file("png", "RGB", 24 + 16 * k, 40))
    [v3] = weightstore.shipped_dir().glob("vae-image-v3-*.npz")
    path = train_vae.add_counts(v3, data, tmp_path / "out", log=lambda m: None)
    old, new = weightstore.load(v3), weightstore.load(path)
    assert path.name.startswith("vae-image-v9-")
    assert all(np.array_equal(old[k], new[k]) for k in old if k != "recipe")
    assert set(new) - set(old) == set(CountsParams.arrays(DEFAULT)) | {"counts.prior"}
    assert (int(new["counts.scale"]), int(new["counts.limit"])) == (DEFAULT.scale, DEFAULT.limit) == (32, 1 << 16)
    assert int(new["counts.activity"]) == int(new["counts.median"]) == int(new["counts.snap"]) == 1
    net = vae.VAECodec(path).net
    assert net.counts.activity and net.counts.median and net.counts.snap and new["counts.prior"].shape[0] == 3
    train_files, _ = image_split(data)
    residuals = sum(vae.counts_residuals(net, load_rgb8(f)) for f in train_files)
    assert np.array_equal(new["counts.prior"], train_vae.counts_prior(residuals, DEFAULT.limit))
    assert new["counts.prior"].sum() > 0
    costs = sum(vae.share_costs(net, load_rgb8(f)) for f in train_files)
    assert np.array_equal(new["counts.shares"], np.argmin(costs, axis=-1))
    assert len(np.unique(new["counts.shares"])) > 1, "the fit chose different shares for different steps"
    recipe = json.loads(str(new["recipe"]))
    assert recipe["counts_added_to"] == weightstore.file_hash(v3)
    assert recipe["neighbour_counts"]["shares"] == new["counts.shares"].tolist()
