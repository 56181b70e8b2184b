"""Every registered model decodes bit-exactly elsewhere; a float model does not."""

import pytest

import float_control  # noqa: F401 - registers the negative control in this process
from exactness import compress_case, decode_elsewhere
from media_factory import image_file, sparse_tone, tone, wav_file
from neuralzip.models import all_codecs

CASES = {
    "image": [("png", "RGB", 70, 90), ("png", "L", 33, 47), ("png", "RGBA", 21, 17), ("png", "RGBA16", 9, 13)],
    "audio": [(16, 2, 20000, 44100), (24, 1, 9000, 48000), (8, 3, 3000, 8000)],
}


def _inputs(kind):
    if kind == "image":
        return [image_file(*c) for c in CASES["image"]]
    return ([wav_file(tone(frames, ch, bits), bits, rate) for bits, ch, frames, rate in CASES["audio"]]
            + [wav_file(sparse_tone(12000, 2, 16), 16, 44100)])  # values on a lattice: a value map


def shipped_codecs():
    return [c for c in all_codecs() if c.name != "float-control"]


def test_every_model_is_registered_here():
    names = {(c.name, c.kind) for c in shipped_codecs()}
    assert {("context-mlp", "image"), ("vae", "image"), ("classic", "image"), ("made", "image"), ("nade", "image"),
            ("gated-pixelcnn", "image"), ("pixelrnn", "image"), ("wavenet", "audio"),
            ("lpc-nlms-mlp", "audio"),
            ("ols-cascade", "audio"), ("classic", "audio"),
            ("histogram", "image"), ("histogram", "audio")} <= names


@pytest.fixture(scope="module")
def decoded_elsewhere(tmp_path_factory):
    """Compress every (model, input) once; decode all of them in two hostile subprocesses."""
    tmp = tmp_path_factory.mktemp("exact")
    expected, paths = {}, []
    control = float_control.FloatControlCodec()
    for codec in shipped_codecs() + [control]:
        inputs = [image_file("png", "L", 40, 300)] if codec is control else _inputs(codec.kind)
        for i, data in enumerate(inputs):
            path = tmp / f"{codec.name}-{codec.kind}-{i}.nz"
            expected[str(path)] = compress_case(data, codec.name, path)
            paths.append(path)
    results = [decode_elsewhere(paths, batch) for batch in (7, 64)]
    return expected, results


@pytest.mark.parametrize("codec", shipped_codecs(), ids=lambda c: f"{c.name}-{c.kind}")
def test_model_decodes_identically_in_a_hostile_environment(codec, decoded_elsewhere):
    expected, results = decoded_elsewhere
    mine = [p for p in expected if f"/{codec.name}-{codec.kind}-" in p]
    assert mine
    for result in results:
        for p in mine:
            assert result[p] == expected[p], f"{p}: {result[p]}"


def test_negative_control_float_model_fails(decoded_elsewhere):
    expected, results = decoded_elsewhere
    mine = [p for p in expected if "/float-control-" in p]
    failures = [p for result in results for p in mine if result[p] != expected[p]]
    assert failures, "the float-path control decoded exactly: the check cannot tell exact from inexact"
