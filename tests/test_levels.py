"""compress --level: the strong level where a model has one, recorded per member, decoded without options."""

import json

import pytest

from media_factory import image_file, tone, wav_file
from neuralzip import api, container


@pytest.fixture
def files(tmp_path):
    (tmp_path / "photo.png").write_bytes(image_file("png", "RGB", 24, 33))
    (tmp_path / "clip.wav").write_bytes(wav_file(tone(6000, 2, 16), 16))
    return tmp_path


def test_auto_level_2_takes_the_strong_audio_model_and_decode_needs_no_option(run_cli, files):
    src = files / "clip.wav"
    r = run_cli("compress", src, "--level", "2", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["model"] == "ols-cascade" and rep["level"] == 2
    info = run_cli("info", files / "clip.wav.nz")
    assert "model ols-cascade level 2" in info.stdout
    src_bytes = src.read_bytes()
    src.unlink()
    r = run_cli("decompress", files / "clip.wav.nz")
    assert r.returncode == 0, r.stderr
    assert src.read_bytes() == src_bytes


def test_level_1_is_the_default_and_is_reported(run_cli, files):
    r = run_cli("compress", files / "clip.wav", files / "photo.png", "--json")
    assert r.returncode == 0, r.stderr
    reps = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["model"], d["level"]) for d in reps] == [("ols-cascade", 1), ("classic", 1)]


def test_auto_level_2_takes_the_strong_image_model(run_cli, files):
    r = run_cli("compress", files / "photo.png", "--level", "2", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["model"], rep["level"]) == ("local-ls-mlp", 2)
    assert run_cli("models").stdout.split("(auto --level 2)")[0].splitlines()[-1].startswith("local-ls-mlp ")


def test_auto_level_2_keeps_the_auto_model_where_a_medium_has_no_strong_one():
    from neuralzip.models import STRONG, get_codec

    assert "audio" not in STRONG
    codec = get_codec("auto", "audio", level=2)
    assert (codec.name, codec.level) == ("ols-cascade", 2)


def test_a_model_without_the_level_is_a_usage_error(run_cli, files):
    r = run_cli("compress", files / "photo.png", "--model", "classic", "--level", "2")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no level 2" in r.stderr
    assert not (files / "photo.png.nz").exists()
    r = run_cli("compress", files / "photo.png", "--level", "3")
    assert r.returncode == 2


def test_the_levels_write_different_streams_that_both_decode_exactly():
    data = wav_file(tone(9000, 2, 24), 24, rate=48000)
    blobs = {lv: api.compress_bytes(data, "a.wav", "ols-cascade", level=lv) for lv in (1, 2)}
    for lv, blob in blobs.items():
        _, [member] = container.loads(blob)
        assert member.params["level"] == lv
        assert api.decompress_bytes(blob) == [("a.wav", data)]
    assert container.loads(blobs[1])[1][0].chunks != container.loads(blobs[2])[1][0].chunks
