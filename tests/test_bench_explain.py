"""`neuralzip bench` and `neuralzip explain` through the real entry point."""

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from media_factory import image_file, tone, wav_file

PEERS = {"image": {"png", "optipng", "webp", "jxl-e7", "jxl-e9"}, "audio": {"flac", "wavpack"}}


@pytest.fixture
def bench_set(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    (d / "a.png").write_bytes(image_file("png", "RGB", 12, 17))
    (d / "b.pgm").write_bytes(image_file("ppm", "L", 9, 8))
    (d / "c.wav").write_bytes(wav_file(tone(2000, 2, 16), 16, rate=16000))
    (d / "notes.txt").write_text("ignored")
    return d


def _only_python_on_path() -> dict:
    """A PATH with this Python and neuralzip but none of the peer codecs' tools."""
    return {"PATH": str(Path(sys.executable).parent)}


def test_bench_writes_results_report_and_charts(run_cli, bench_set, tmp_path):
    out = tmp_path / "out"
    r = run_cli("bench", bench_set, "--out", out, "--jobs", "2", "--models", "classic,histogram")
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    by_file = {}
    for row in rows:
        by_file.setdefault(Path(row["file"]).name, set()).add(row["codec"])
    assert set(by_file) == {"a.png", "b.pgm", "c.wav"}
    ours = {"neuralzip:classic", "neuralzip:histogram"}
    assert by_file["a.png"] == ours | PEERS["image"] and by_file["c.wav"] == ours | PEERS["audio"]
    for row in rows:
        if row["neuralzip"]:
            assert row["verified"] is True
            assert (row["weights"] is not None) == (row["codec"] == "neuralzip:classic")
            assert row["bpd"] == pytest.approx(8 * row["bytes"] / row["dims"])
        if "skipped" not in row:
            assert row["bytes"] > 0 and row["compress_s"] > 0 and row["decompress_s"] > 0
    png_row = next(r for r in rows if r["codec"] == "png" and r["file"].endswith("a.png"))
    assert "skipped" not in png_row  # Pillow is always there
    report = (out / "report.md").read_text()
    assert "| a.png |" in report and "| c.wav |" in report and "ratio to png" in report and "ratio to flac" in report
    for chart in ("image_bpd.png", "image_size_time.png", "audio_bpd.png", "audio_size_time.png"):
        with Image.open(out / chart) as im:
            assert im.size == (800, 450)


def test_bench_reports_missing_peers_as_skipped(run_cli, bench_set, tmp_path):
    out = tmp_path / "out"
    r = run_cli("bench", bench_set, "--out", out, "--models", "classic", env=_only_python_on_path())
    assert r.returncode == 0, r.stderr
    rows = json.loads((out / "results.json").read_text())["rows"]
    for peer in ("optipng", "webp", "jxl-e9", "flac", "wavpack"):
        skipped = [row for row in rows if row["codec"] == peer]
        assert skipped and all("not installed" in row["skipped"] for row in skipped)
    assert "skipped wavpack: wavpack is not installed" in r.stderr
    assert "wavpack` skipped" in (out / "report.md").read_text()


def test_bench_rejects_unknown_model(run_cli, bench_set, tmp_path):
    r = run_cli("bench", bench_set, "--out", tmp_path / "o", "--models", "nope")
    assert r.returncode == 2 and "nope" in r.stderr


def test_bench_runs_a_model_at_another_level(run_cli, tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    (d / "a.png").write_bytes(image_file("png", "RGB", 13, 11))
    out = tmp_path / "out"
    r = run_cli("bench", d, "--out", out, "--models", "local-ls,local-ls@2,auto@2")
    assert r.returncode == 0, r.stderr
    rows = {row["codec"]: row for row in json.loads((out / "results.json").read_text())["rows"] if row["neuralzip"]}
    assert set(rows) == {"neuralzip:local-ls", "neuralzip:local-ls@2", "neuralzip:auto@2"}
    assert all(row["verified"] for row in rows.values())
    # the level is what the file records: auto@2 took the strong image model at level 2
    assert [rows[c]["level"] for c in ("neuralzip:local-ls", "neuralzip:local-ls@2", "neuralzip:auto@2")] == [1, 2, 2]
    assert rows["neuralzip:auto@2"]["model"] == "local-ls-mlp"
    assert "| neuralzip:local-ls@2 |" in (out / "report.md").read_text()


@pytest.mark.parametrize("spec, why", [("classic@2", "has no level '2'"), ("local-ls@3", "has no level '3'"),
                                       ("local-ls@x", "has no level 'x'"), ("nope@2", "unknown model 'nope'")])
def test_bench_rejects_a_level_the_model_lacks(run_cli, bench_set, tmp_path, spec, why):
    r = run_cli("bench", bench_set, "--out", tmp_path / "o", "--models", f"classic,{spec}")
    assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_explain_image_map_has_the_documented_size(run_cli, tmp_path):
    src = tmp_path / "small.png"
    src.write_bytes(image_file("png", "RGB", 30, 40))
    out = tmp_path / "map.png"
    r = run_cli("explain", src, "-o", out)
    assert r.returncode == 0, r.stderr
    # 40x30 is enlarged 9x to 360x270 per panel: 2*360 + 136 wide, 270 + 60 high
    with Image.open(out) as im:
        assert im.size == (856, 330)
    assert run_cli("explain", src, "-o", out).returncode == 2  # no overwrite without --force


def test_explain_audio(run_cli, tmp_path):
    src = tmp_path / "clip.wav"
    src.write_bytes(wav_file(tone(5000, 2, 16), 16))
    out = tmp_path / "bits.png"
    r = run_cli("explain", src, "-o", out, "--model", "histogram")
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (1400, 700)


def test_bits_per_dim_adds_up_to_the_likelihood():
    import numpy as np

    from media_factory import smooth_image
    from neuralzip.models import get_codec
    from neuralzip.models.base import Signal

    img = smooth_image(20, 30, 3)
    codec = get_codec("classic", "image")
    signal = Signal("image", img.shape, 8)
    bits = codec.bits_per_dim(img, signal)
    assert bits.shape == img.shape and np.all(bits > 0)
    assert bits.sum() == pytest.approx(codec.likelihood(img, signal)[1], rel=1e-9)
