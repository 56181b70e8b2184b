"""The context-mlp image model: exact roundtrips for every mode and odd shape, its
exact integer pieces, and honest likelihood figures."""

import numpy as np
import pytest

from media_factory import image_file
from neuralzip import api, container
from neuralzip.errors import ContainerError
from neuralzip.exact import logistic
from neuralzip.media.detect import read_media
from neuralzip.models import get_codec
from neuralzip.models.base import Signal
from neuralzip.kernels import context_mlp as kernel
from neuralzip.models import context_mlp
from neuralzip.models.classic_image import NCLS as N_CLASSES, ClassicImageCodec, StepView
from test_images import assert_same_image, roundtrip

NETWORK_MODES = ("L", "LA", "P", "RGB", "RGBA")  # 8-bit: coded with the network
COUNTS_MODES = ("1", "I;16", "LA16", "RGB16", "RGBA16")  # other depths: the adaptive counts alone
SHAPES = [(1, 1), (1, 17), (17, 1), (13, 7), (2, 301), (67, 31), (1, 3001), (2003, 1)]


@pytest.mark.parametrize("mode", NETWORK_MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_roundtrip_every_8bit_mode_and_odd_shape(mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


@pytest.mark.parametrize("mode", COUNTS_MODES)
@pytest.mark.parametrize("shape", [(1, 1), (13, 7)])
def test_roundtrip_other_depths(mode, shape):
    data = image_file("png", mode, *shape)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


def test_tile_and_chunk_boundaries_are_exact():
    data = image_file("png", "RGB", 150, 1100)
    assert_same_image(data, roundtrip(data, "context-mlp"), "png")


def test_bucket_masses_partition_the_valid_values():
    """Every valid value's mass lies in exactly one bucket and nothing is lost at the edges."""
    tables = logistic.tables()
    bounds, spans = logistic.bucket_intervals(48)
    row = np.zeros(48, np.int64)
    cj = np.zeros(len(bounds), np.int64)
    for pred in (0, 1, 17, 128, 254, 255):
        head = np.array([37, -5, 80, 10, 50, 140, 0, 3, -20], np.int64)  # 3 components
        total = logistic.mixture_row(pred, 255, head, 3, tables["lut.cdf"], tables["lut.inv"], tables["lut.exp"],
                                     bounds, spans, cj, row)
        assert row.min() >= 0 and row.sum() == total
        for b in range(48):  # buckets holding no valid value get nothing
            vals = [r for r in range(-pred, 256 - pred)
                    if bounds[spans[b, 0]] <= r < bounds[spans[b, 1]] or bounds[spans[b, 2]] <= r < bounds[spans[b, 3]]]
            if not vals:
                assert row[b] == 0


def test_report_shows_float_and_exact_likelihood_and_coded_size_is_close(tmp_path):
    """On a real photo the coded size is within 1% of the exact model's likelihood and the
    float model's likelihood is reported apart (quantization cost small but not zero)."""
    data = open("examples/swallowtail.png", "rb").read()
    media = read_media(data)
    codec = get_codec("context-mlp", "image")
    enc = codec.encode(media.samples, Signal("image", media.samples.shape, 8))
    coded_bits = 8 * sum(len(c) for c in enc.chunks)
    assert enc.nll_bits <= coded_bits <= 1.01 * enc.nll_bits
    assert enc.nll_float_bits != enc.nll_bits
    assert abs(enc.nll_float_bits / enc.nll_bits - 1) < 0.02
    # and the network earns its place over the counts on the blend it reads, classic's
    classic = ClassicImageCodec().likelihood(media.samples, Signal("image", media.samples.shape, 8))[1]
    assert enc.nll_bits < classic


def _with_trained_weight(model: str, mix_w: int, tmp_path):
    """The model with its shipped network but a trained weight against the counts of mix_w/16."""
    codec = get_codec(model, "image")
    z = dict(np.load(codec.weights.path))
    path = tmp_path / f"{model}-mix{mix_w}.npz"
    np.savez(path, **dict(z, mix_w=np.array(mix_w)))
    return codec.with_weights(path)


def _fixed(codec, *keys):
    """The same model and weights, writing files that do not learn what `keys` record: the
    network's weight against the counts ("mix") or its output layer ("head") stays the trained one."""
    class Fixed(type(codec)):
        def _recorded(self, signal):
            return {k: v for k, v in super()._recorded(signal).items() if k not in keys}

    return Fixed(codec.weights.path)


@pytest.mark.parametrize("model", ["context-mlp", "local-ls-mlp"])
@pytest.mark.parametrize("mix_w", [0, 16])
def test_the_learned_weight_recovers_from_a_wrong_trained_one(model, mix_w, tmp_path):
    """The network's weight against the counts, learned per channel and class as the photo is
    coded ("mix": 2), moves away from a trained weight that is wrong for the photo: counts alone
    (0/16) or the network alone (16/16). Kept fixed (the control), the same weight codes larger.
    Both roundtrip exactly. (Both keep the trained output layer: learned, it takes up part of
    what the weight learns.)"""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    crop = np.ascontiguousarray(media.samples[:96, :128])
    sig = Signal("image", crop.shape, 8)
    learned = _fixed(_with_trained_weight(model, mix_w, tmp_path), "head")
    fixed = _fixed(learned, "mix")
    assert learned._recorded(sig)["mix"] == 2 and "mix" not in fixed._recorded(sig)
    assert "head" not in learned._recorded(sig) and "head" not in fixed._recorded(sig)
    bits_learned, bits_fixed = learned.likelihood(crop, sig)[1], fixed.likelihood(crop, sig)[1]
    assert bits_learned < 0.995 * bits_fixed
    for codec in (learned, fixed):
        enc = codec.encode(crop, sig)
        assert np.array_equal(codec.decode(enc.params, enc.chunks, sig), crop)


def test_context_mlp_is_chosen_by_name_and_recorded():
    blob = api.compress_bytes(image_file("png", "RGB", 9, 11), "x.png", "context-mlp")
    _, [member] = container.loads(blob)
    assert member.model == "context-mlp" and member.weights == get_codec("context-mlp", "image").weights_hash


# ---------------------------------------------------------------- the output layer learned online

K_MIX, N_BUCKETS, WIDTH = 2, 48, 8


def _tables():
    t = logistic.tables()
    bounds, spans = logistic.bucket_intervals(N_BUCKETS)
    return kernel.MixtureTables(cdf=t["lut.cdf"], inv=t["lut.inv"], expt=t["lut.exp"], bounds=bounds, spans=spans,
                                k_mix=K_MIX, log_scale_min=logistic.LOG_SCALE_MIN,
                                log_scale_max=context_mlp.LOG_SCALE_MAX)


def _step(n, flip):
    counts = np.ones((1, N_CLASSES, N_BUCKETS), np.int64)
    view = StepView(n, 1, 12, N_BUCKETS, 255, counts, counts.sum(axis=2))
    view.n = n
    view.preds[:n] = 100
    view.flip[:n] = flip
    return view


def _bucket_mass(head, flip, b):
    """The mass the step's mixture gives bucket b (mirrored where flipped, as step_rows does)."""
    bounds, spans = logistic.bucket_intervals(N_BUCKETS)
    t = logistic.tables()
    head = head.copy()
    if flip:
        head[:K_MIX] = -head[:K_MIX]
    row = np.zeros(N_BUCKETS, np.int64)
    total = logistic.mixture_row(255 - 100 if flip else 100, 255, head, K_MIX, t["lut.cdf"], t["lut.inv"],
                                 t["lut.exp"], bounds, spans, np.zeros(len(bounds), np.int64), row)
    return row[b] / total


@pytest.mark.parametrize("flip", [0, 1])
def test_a_learning_step_moves_the_heads_toward_the_coded_bucket(flip):
    """Pixels predicted with a mixture centred on 0 all code the bucket of residual +3: after one
    learning step the corrected heads give that bucket more mass, and the mean moves toward +3
    (where the residual's sign is flipped the network's own mean moves the other way). Before any
    step the correction is zero and the heads are the network's (control)."""
    n, tab = 64, _tables()
    hidden = np.random.default_rng(1).integers(0, 256, (n, WIDTH)).astype(np.float32)
    base = np.tile(np.array([0, 8, 40, 48, 0, -16], np.int64), (n, 1))  # means, scale indices, logits
    head = context_mlp._OutputCorrection(1, [WIDTH], 3 * K_MIX, n, context_mlp.HEAD_ONLINE)
    view = _step(n, flip)
    marks = head.marks_of(view)
    heads = base.copy()
    head.apply(0, heads, hidden, marks)
    assert np.array_equal(heads, base)
    sym = np.full(n, 6, np.int32)  # bucket 6: residual +3
    head.learn(tab, view, 0, heads, hidden, marks, sym)
    assert head.tables[0].any()
    moved = base.copy()
    head.apply(0, moved, hidden, marks)
    for i in range(n):
        assert _bucket_mass(moved[i], flip, 6) > _bucket_mass(base[i], flip, 6)
    mean_moved = (moved[:, :K_MIX] - base[:, :K_MIX]).mean()
    assert (mean_moved > 0) if not flip else (mean_moved < 0)


def test_the_learning_kernels_refuse_what_cannot_be_a_decoder_state():
    n, tab = 4, _tables()
    hidden = np.zeros((n, WIDTH), np.float32)
    heads = np.zeros((n, 3 * K_MIX), np.int64)
    shift = np.empty((n, 3 * K_MIX), np.int64)
    table = np.zeros((3 * K_MIX, WIDTH + 2 + 1))  # two indicator inputs
    marks = np.zeros((n, 1), np.int64)
    view, sym = _step(n, 0), np.zeros(n, np.int32)

    def learn(n=n, hidden=hidden, marks=marks, indicators=2, value=128, sym=sym, table=table, rate=1024):
        kernel.learn_heads(tab, view.buffers, n, heads, hidden, marks, indicators, value, sym, table, rate)

    def correct(hidden=hidden, marks=marks, indicators=2, value=128, table=table):
        kernel.correct_heads(heads.copy(), hidden, marks, indicators, value, table, n, shift)

    with pytest.raises(ValueError, match="symbol out of range"):
        learn(sym=np.full(n, N_BUCKETS, np.int32))
    with pytest.raises(ValueError, match="rate"):
        learn(rate=-1)
    with pytest.raises(ValueError, match="do not fit"):
        learn(n=n + 1)
    with pytest.raises(ValueError, match="does not match"):
        learn(table=table[:, :-1].copy())
    for bad in (-1, np.nan, 65536):
        odd = hidden.copy()
        odd[1, 2] = bad
        with pytest.raises(ValueError, match="hidden activation"):
            correct(hidden=odd)
        with pytest.raises(ValueError, match="hidden activation"):
            learn(hidden=odd)
    for bad in (kernel.CORRECTION_LIMIT + 1, 0.5, np.nan):
        odd = table.copy()
        odd[0, 0] = bad
        with pytest.raises(ValueError, match="correction"):
            correct(table=odd)
    for odd, match in ((np.full((n, 1), 2), "out of range"), (np.full((n, 1), -1), "out of range"),
                       (np.zeros((n, 2), np.int64), "repeat"), (np.zeros((n - 1, 1), np.int64), "do not fit")):
        for call in (correct, learn):
            with pytest.raises(ValueError, match=f"indicator inputs {match}"):
                call(marks=np.ascontiguousarray(odd, np.int64))
    for call in (correct, learn):
        with pytest.raises(ValueError, match="indicator inputs out of range"):
            call(value=65536)


def test_indicator_inputs_give_what_they_give_written_out():
    """The kernels take the position inputs as the few indicators that are set (marks); the same
    inputs written out in full as hidden activations (the dense form, no marks) give the same
    corrected heads and the same learned table, bit for bit."""
    n, tab, rng = 48, _tables(), np.random.default_rng(3)
    hidden = rng.integers(0, 256, (n, WIDTH)).astype(np.float32)
    marks = np.stack([rng.integers(0, 4, n), rng.integers(4, 12, n)], axis=1).astype(np.int64)
    dense = np.zeros((n, WIDTH + 12), np.float32)
    dense[:, :WIDTH] = hidden
    dense[np.arange(n)[:, None], WIDTH + marks] = 128
    none = np.zeros((n, 0), np.int64)
    base = np.tile(np.array([0, 8, 40, 48, 0, -16], np.int64), (n, 1))
    sym = rng.integers(2, 10, n).astype(np.int32)
    view = _step(n, 0)
    table = rng.integers(-1 << 20, 1 << 20, (3 * K_MIX, WIDTH + 12 + 1)).astype(np.float64)
    tables = [table.copy(), table.copy()]
    heads = [base.copy(), base.copy()]
    shifts = [np.zeros_like(base), np.zeros_like(base)]
    kernel.correct_heads(heads[0], hidden, marks, 12, 128, tables[0], n, shifts[0])
    kernel.correct_heads(heads[1], dense, none, 0, 128, tables[1], n, shifts[1])
    assert np.array_equal(heads[0], heads[1]) and shifts[0].any()
    kernel.learn_heads(tab, view.buffers, n, heads[0], hidden, marks, 12, 128, sym, tables[0], 1024)
    kernel.learn_heads(tab, view.buffers, n, heads[1], dense, none, 0, 128, sym, tables[1], 1024)
    assert np.array_equal(tables[0], tables[1])
    # the control: the same marks with another value move the heads differently
    other = base.copy()
    kernel.correct_heads(other, hidden, marks, 12, 64, tables[0], n, shifts[0])
    assert not np.array_equal(other, heads[0])


@pytest.mark.parametrize("model", ["context-mlp", "local-ls-mlp"])
def test_the_output_layer_learned_while_coding_codes_smaller(model):
    """New 8-bit files learn a correction of the network's output layer while coding ("head": 3).
    On a photo it codes smaller than the trained output layer (the control, a file without
    "head", as files before it were written); both roundtrip exactly, and the float model of
    the report carries the same correction (it stays within 2% of the exact one)."""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    crop = np.ascontiguousarray(media.samples[:192, :192])
    sig = Signal("image", crop.shape, 8)
    learned = get_codec(model, "image")
    fixed = _fixed(learned, "head")
    assert learned._recorded(sig)["head"] == context_mlp.HEAD_POSITIONS and "head" not in fixed._recorded(sig)
    float_learned, bits_learned = learned.likelihood(crop, sig)
    bits_fixed = fixed.likelihood(crop, sig)[1]
    assert bits_learned < 0.998 * bits_fixed
    assert abs(float_learned / bits_learned - 1) < 0.02
    # the negative control: read as if its output layer were the trained one, the file fails its checksum
    _roundtrips_and_misread_fails(model, crop, (learned, fixed),
                                  lambda params: {k: v for k, v in params.items() if k != "head"})


def _roundtrips_and_misread_fails(model, crop, codecs, misread):
    """Each codec codes the crop and decodes it exactly; today's file of the model records
    "head": 3 and decodes, and with its params misread(params) it fails its checksum."""
    sig = Signal("image", crop.shape, 8)
    for codec in codecs:
        enc = codec.encode(crop, sig)
        assert np.array_equal(codec.decode(enc.params, enc.chunks, sig), crop)
    blob = api.compress_bytes(_ppm(crop), "crop.ppm", model)
    _, [member] = container.loads(blob)
    assert member.params["head"] == context_mlp.HEAD_POSITIONS
    assert api.decompress_bytes(blob) == [("crop.ppm", _ppm(crop))]
    member.params = misread(member.params)
    with pytest.raises(ContainerError):
        api.decompress_bytes(container.dumps([member]))


def test_position_marks_name_the_pixels_phases():
    """Each pixel's set position inputs are its 2x2 phase, its column and its row in an 8-pixel period."""
    ys, xs = np.array([0, 1, 7, 9, 16]), np.array([0, 3, 5, 8, 15])
    out = np.full((len(ys), context_mlp.POSITION_MARKS), -1, np.int64)
    context_mlp.position_marks(ys, xs, out)
    for i, (y, x) in enumerate(zip(ys, xs)):
        assert list(out[i]) == [(y % 2) * 2 + x % 2, 4 + x % 8, 12 + y % 8]
    assert out.max() < context_mlp.POSITION_INPUTS


def _phase_noisy_photo():
    """A photo crop whose pixels at odd rows and columns carry strong extra noise: statistics that
    change with the 2x2 phase, as in a photo once subsampled in chroma."""
    media = read_media(open("examples/swallowtail.png", "rb").read())
    crop = media.samples[:160, :160].astype(np.int64)
    noise = np.random.default_rng(5).integers(-12, 13, crop.shape)
    crop[1::2, 1::2] += noise[1::2, 1::2]
    return np.ascontiguousarray(np.clip(crop, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("model", ["context-mlp", "local-ls-mlp"])
def test_the_learned_layer_reads_the_pixels_position(model):
    """New files ("head": 3) learn the output layer from the pixel's position inputs too: on a
    photo whose noise depends on the 2x2 phase they code smaller than the learned layer without
    them ("head": 2, the control), and roundtrip exactly. A "head": 3 file read as "head": 2 (the
    negative control) fails its checksum."""
    crop = _phase_noisy_photo()
    sig = Signal("image", crop.shape, 8)
    positions = get_codec(model, "image")

    class Hidden(type(positions)):
        def _recorded(self, signal):
            return dict(super()._recorded(signal), head=context_mlp.HEAD_ONLINE)

    hidden = Hidden(positions.weights.path)
    assert positions._recorded(sig)["head"] == context_mlp.HEAD_POSITIONS
    assert positions.likelihood(crop, sig)[1] < 0.99 * hidden.likelihood(crop, sig)[1]
    _roundtrips_and_misread_fails(model, crop, (positions, hidden),
                                  lambda params: dict(params, head=context_mlp.HEAD_ONLINE))


def test_position_inputs_read_image_rows_in_every_chunk(monkeypatch):
    """Chunks of 13 rows (not a multiple of 8): every chunk gives its pixels' rows in the image,
    not in the chunk, to the position inputs (the rows seen reach the image's last row; counted
    from each chunk's start they would stay below 13), and the member decodes exactly."""
    from neuralzip.models import classic_image

    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 40 * 13)
    media = read_media(open("examples/swallowtail.png", "rb").read())
    crop = np.ascontiguousarray(media.samples[:45, :40])
    seen = []
    real = context_mlp.position_marks
    monkeypatch.setattr(context_mlp, "position_marks", lambda ys, xs, out: (seen.append(ys.max()), real(ys, xs, out)))
    blob = api.compress_bytes(_ppm(crop), "crop.ppm", "context-mlp")
    _, [member] = container.loads(blob)
    assert len(member.chunks) == 4 and member.params["head"] == context_mlp.HEAD_POSITIONS
    assert max(seen) == 44
    assert api.decompress_bytes(blob) == [("crop.ppm", _ppm(crop))]


def _ppm(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    return b"P6\n%d %d\n255\n" % (w, h) + rgb.astype(np.uint8).tobytes()
