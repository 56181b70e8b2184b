"""Large images coded and restored chunk by chunk (neuralzip/chunked.py), tested on small ones: the
threshold is lowered so that every image here takes that path, and the models' chunks are made
small, so an image is several chunks. The .nz must be byte for byte the one the whole-member path
writes, and the restored file the one the whole-member path restores."""

import io
import os
import zlib

import numpy as np
import png as pypng
import pytest
from PIL import Image

from conftest import count_chunked_calls, whole_member_path
from media_factory import image_file, jpeg_decoded, smooth_image
from neuralzip import api, chunked, streaming
from neuralzip.errors import ContainerError, InputError
from neuralzip.media import imagestream, png, rawimage
from neuralzip.models import classic_image, local_ls_image

H, W = 300, 61  # five chunks of classic (65 rows of 61 at the patched sizes) and four of local-ls


def _pnm(magic: bytes, arr: np.ndarray, maxval: int = 255, comment: bytes = b"") -> bytes:
    h, w = arr.shape[:2]
    head = magic + b"\n" + comment + b"%d %d\n" % (w, h) + (b"" if magic == b"P4" else b"%d\n" % maxval)
    if magic == b"P4":
        return head + np.packbits(arr[:, :, 0], axis=1).tobytes()
    return head + arr.astype(">u2" if maxval > 255 else np.uint8).tobytes()


def _grey(depth: int) -> bytes:
    arr = smooth_image(H, W, 1) >> (8 - depth)
    buf = io.BytesIO()
    pypng.Writer(W, H, greyscale=True, bitdepth=depth).write_array(buf, arr.reshape(-1))
    return buf.getvalue()


def _optimized_png() -> bytes:
    buf = io.BytesIO()  # Pillow's adaptive filters (every filter type) and IDAT chunks of 64 KiB
    Image.fromarray(smooth_image(H, W, 3)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _bmp(mode: str, top_down: bool = False) -> bytes:
    arr = smooth_image(H, W, 4 if mode == "RGBA" else 3)
    im = Image.fromarray(arr[:, :, 0] > 127) if mode == "1" else (
        Image.fromarray(arr[:, :, 0], "L").quantize(16) if mode == "P" else Image.fromarray(arr, mode))
    buf = io.BytesIO()
    im.save(buf, "BMP")
    data = bytearray(buf.getvalue())
    if top_down:  # the same rows stored top row first: a negative height
        lay = rawimage.BmpLayout(bytes(data[:rawimage.BMP_HEAD]))
        rows = np.frombuffer(bytes(data[lay.offset:lay.offset + lay.size]), np.uint8).reshape(H, -1)
        data[lay.offset:lay.offset + lay.size] = rows[::-1].tobytes()
        data[22:26] = (-H).to_bytes(4, "little", signed=True)
    return bytes(data)


def _jpeg_mixed() -> bytes:
    """A decoded JPEG with one pixel no JPEG decoder makes: its chunk is coded as stored, the
    others in YCbCr."""
    arr = jpeg_decoded(H, W)
    arr[150, 30] = (100, 100, 101)
    return _pnm(b"P6", arr)


IMAGES = {
    "rgb.png": image_file("png", "RGB", H, W),
    "jpeg.ppm": _pnm(b"P6", jpeg_decoded(H, W)),
    "jpeg-mixed.ppm": _jpeg_mixed(),
    "rgba16.png": image_file("png", "RGBA16", H, W),
    "palette.png": image_file("png", "P", H, W),
    "bits.png": image_file("png", "1", H, W),
    "grey4.png": _grey(4),
    "la.png": image_file("png", "LA", H, W),
    "optimized.png": _optimized_png(),
    "rgb.ppm": _pnm(b"P6", smooth_image(H, W, 3), comment=b"# a comment\n"),
    "grey16.pgm": _pnm(b"P5", smooth_image(H, W, 1, 1000), 1000),
    "bits.pbm": _pnm(b"P4", (smooth_image(H, W, 1) > 127).astype(np.uint8)),
    "rgb.bmp": _bmp("RGB"),
    "rgba.bmp": _bmp("RGBA"),
    "palette.bmp": _bmp("P"),
    "bits.bmp": _bmp("1"),
    "topdown.bmp": _bmp("RGB", top_down=True),
}


@pytest.fixture
def large_path(monkeypatch):
    """Every image takes the chunked path, in small chunks; -> the calls made to it."""
    monkeypatch.setattr(chunked, "STREAM_BYTES", 1000)
    monkeypatch.setattr(classic_image, "CHUNK_PIXELS", 4000)
    monkeypatch.setattr(local_ls_image, "CHUNK_PIXELS", 5000)
    return count_chunked_calls(monkeypatch)


def test_auto_codes_a_large_decoded_jpeg_whole_as_coefficients(tmp_path, large_path):
    """Above the streaming threshold --model auto still takes jpeg-coefficients for a decoded JPEG
    (read whole to see; coded whole), and streams classic for anything else."""
    src = tmp_path / "jpeg.ppm"
    src.write_bytes(IMAGES["jpeg.ppm"])
    out = api.compress_file(src, tmp_path / "jpeg.nz")
    [m] = api.container.loads(out.read_bytes())[1]
    assert m.model == "jpeg-coefficients" and "fallback" not in m.params and large_path["encode"] == 0
    [(_, restored)] = api.decompress_bytes(out.read_bytes())
    assert restored == IMAGES["jpeg.ppm"]
    other = tmp_path / "rgb.png"
    other.write_bytes(IMAGES["rgb.png"])
    [m] = api.container.loads(api.compress_file(other, tmp_path / "rgb.nz").read_bytes())[1]
    assert m.model == "classic" and large_path["encode"] == 1


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_chunked_path_writes_the_same_bytes_and_restores_exactly(name, tmp_path, monkeypatch, large_path):
    src = tmp_path / name
    src.write_bytes(IMAGES[name])
    # classic named: --model auto would code jpeg.ppm (a 4:2:0 decode) whole as jpeg-coefficients
    whole = whole_member_path(monkeypatch, lambda: api.compress_file(src, tmp_path / "whole.nz", model="classic"))
    assert large_path["encode"] == 0
    chunky = api.compress_file(src, tmp_path / "chunked.nz", model="classic")
    assert large_path["encode"] == 1
    assert chunky.read_bytes() == whole.read_bytes()
    [m] = api.container.loads(chunky.read_bytes())[1]
    assert len(m.chunks) == 5  # really several chunks
    out = tmp_path / "out" / name
    api.decompress_file(chunky, out)
    assert large_path["decode"] == 1
    expected = whole_member_path(monkeypatch, lambda: dict(api.decompress_bytes(chunky.read_bytes()))[name])
    assert out.read_bytes() == expected
    if not name.endswith(".png"):  # PNM and BMP are restored byte for byte; PNG's pixels and chunks
        assert expected == IMAGES[name]
    else:
        assert np.array_equal(png.read(expected).samples, png.read(IMAGES[name]).samples)


@pytest.mark.parametrize("model", ["local-ls-mlp", "context-mlp"])
def test_models_with_a_float_network_record_the_same_likelihoods(model, tmp_path, monkeypatch, large_path):
    src = tmp_path / "rgb.png"
    src.write_bytes(IMAGES["rgb.png"])
    whole = whole_member_path(monkeypatch, lambda: api.compress_file(src, tmp_path / "whole.nz", model=model))
    chunky = api.compress_file(src, tmp_path / "chunked.nz", model=model)
    assert chunky.read_bytes() == whole.read_bytes() and large_path["encode"] == 1
    [m] = api.container.loads(chunky.read_bytes())[1]
    assert m.stats["nll_float_bits"] != m.stats["nll_bits"]  # the network's float bits, not the exact ones
    api.decompress_file(chunky, tmp_path / "out.png")
    assert large_path["decode"] == 1
    assert np.array_equal(png.read((tmp_path / "out.png").read_bytes()).samples, png.read(IMAGES["rgb.png"]).samples)


def test_models_that_code_an_image_whole_still_do(tmp_path, monkeypatch, large_path):
    src = tmp_path / "rgb.png"
    src.write_bytes(IMAGES["rgb.png"])
    nz = api.compress_file(src, tmp_path / "a.nz", model="histogram")
    api.decompress_file(nz, tmp_path / "out.png")
    assert large_path == {"encode": 0, "decode": 0}
    assert np.array_equal(png.read((tmp_path / "out.png").read_bytes()).samples, png.read(IMAGES["rgb.png"]).samples)


def test_interlaced_png_and_tiff_are_read_whole(tmp_path, large_path):
    buf = io.BytesIO()
    arr = smooth_image(H, W, 3)
    pypng.Writer(W, H, greyscale=False, interlace=True).write_array(buf, arr.reshape(-1))
    tif = io.BytesIO()
    Image.fromarray(arr).save(tif, "TIFF")
    for name, data in (("i.png", buf.getvalue()), ("t.tiff", tif.getvalue())):
        (tmp_path / name).write_bytes(data)
        assert imagestream.probe(tmp_path / name) is None
        nz = api.compress_file(tmp_path / name, tmp_path / f"{name}.nz")
        api.decompress_file(nz, tmp_path / f"out-{name}")
    # read whole; the PNG is written back non-interlaced (as png.write does), so a block at a time
    assert large_path == {"encode": 0, "decode": 1}
    assert np.array_equal(png.read((tmp_path / "out-i.png").read_bytes()).samples, arr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out-t.tiff")), arr)


def test_archive_pipe_and_one_member(tmp_path, monkeypatch, large_path):
    monkeypatch.setattr(chunked, "STREAM_BYTES", 100_000)  # the RGB ones (300 x 61 x 3 samples as int32)
    d = tmp_path / "set"
    d.mkdir()
    for name in ("rgb.png", "grey4.png", "rgb.ppm"):
        (d / name).write_bytes(IMAGES[name])
    whole = whole_member_path(monkeypatch, lambda: (api.compress_paths([d], tmp_path / "whole.nz", jobs=1), tmp_path / "whole.nz")[1])
    api.compress_paths([d], tmp_path / "chunked.nz", jobs=1, verify=True)
    assert large_path == {"encode": 2, "decode": 2}  # rgb.png and rgb.ppm; --verify decodes from the spool
    assert (tmp_path / "chunked.nz").read_bytes() == whole.read_bytes()
    expected = whole_member_path(monkeypatch, lambda: dict(api.decompress_bytes(whole.read_bytes())))
    with open(tmp_path / "chunked.nz", "rb") as f:
        streaming.extract_stream(f, tmp_path / "piped")
    assert large_path["decode"] == 4
    for name in ("rgb.png", "grey4.png", "rgb.ppm"):
        assert (tmp_path / "piped" / name).read_bytes() == expected[name]
    buf = io.BytesIO()
    streaming.extract(tmp_path / "chunked.nz", None, ["rgb.png"], to_stream=buf)
    assert buf.getvalue() == expected["rgb.png"] and large_path["decode"] == 5


@pytest.mark.parametrize("damage", ["filter type", "deflate stream", "truncated", "pnm padding", "bmp padding"])
def test_a_damaged_input_is_refused_in_one_line_and_leaves_nothing(damage, tmp_path, large_path):
    if damage == "pnm padding":  # a PBM row's last byte with a padding bit set: not restorable byte for byte
        data = bytearray(IMAGES["bits.pbm"])
        data[-1 - (W + 7) // 8 * 100] |= 0x01
    elif damage == "bmp padding":  # the padding byte of a stored row (61 x 3 bytes, padded to 184)
        data = bytearray(IMAGES["rgb.bmp"])
        data[rawimage.BmpLayout(bytes(data[:rawimage.BMP_HEAD])).offset + 150 * 184 + 183] = 7
    else:
        raw = np.concatenate([np.zeros((H, 1), np.uint8), smooth_image(H, W, 3).reshape(H, -1)], axis=1)
        if damage == "filter type":
            raw[200, 0] = 9
        idat = zlib.compress(raw.tobytes())
        if damage == "deflate stream":
            idat = idat[:len(idat) // 2] + bytes(64) + idat[len(idat) // 2 + 64:]
        elif damage == "truncated":
            idat = idat[:len(idat) * 3 // 4]
        head = png._chunk("IHDR", np.array([W, H], ">u4").tobytes() + bytes([8, 2, 0, 0, 0]))
        data = png.SIGNATURE + head + png._chunk("IDAT", idat) + png._chunk("IEND", b"")
    src = tmp_path / {"pnm padding": "bad.pbm", "bmp padding": "bad.bmp"}.get(damage, "bad.png")
    src.write_bytes(bytes(data))
    with pytest.raises(InputError):  # the whole-file path refuses it too
        api.read_media(bytes(data))
    with pytest.raises(InputError) as err:
        api.compress_file(src, tmp_path / "bad.nz")
    assert large_path["encode"] == 1 and len(str(err.value).splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_a_damaged_payload_is_refused_and_leaves_nothing(tmp_path, large_path):
    src = tmp_path / "in.png"
    src.write_bytes(IMAGES["rgb.png"])
    blob = bytearray(api.compress_file(src, tmp_path / "a.nz").read_bytes())
    good = api.container.loads(bytes(blob))[1][0]
    blob[len(blob) // 2] ^= 0x04  # inside the payload: the record's chunks make up most of the file
    (tmp_path / "bad.nz").write_bytes(bytes(blob))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ContainerError):
        api.decompress_file(tmp_path / "bad.nz", out / "x.png")
    assert list(out.iterdir()) == [] and large_path["decode"] == 1
    assert sum(len(c) for c in good.chunks) > len(blob) // 2  # the flipped byte was payload


def test_row_reader_and_writer_agree_with_the_whole_file_ones(tmp_path):
    for name, data in IMAGES.items():
        whole = api.read_media(data)
        path = tmp_path / name
        path.write_bytes(data)
        fmt = {"png": "png", "bmp": "bmp"}.get(name.rsplit(".", 1)[1], "pnm")
        reader = imagestream.open_reader(path, fmt)
        rows = [reader.read(n) for n in (1, 99, 200)]
        reader.close()
        assert reader.meta == whole.meta and reader.bits == whole.bits and reader.shape == whole.samples.shape
        assert np.array_equal(np.concatenate(rows), whole.samples) and rows[0].dtype == whole.samples.dtype
        out = io.BytesIO()
        writer = imagestream.open_writer(out, whole.meta, whole.samples.shape, whole.bits)
        for a in range(0, H, 77):
            writer.write(whole.samples[a:a + 77])
        writer.close()
        assert out.getvalue() == api.write_media(whole), name
    assert np.array_equal(rawimage.PnmLayout(IMAGES["grey16.pgm"]).rows(IMAGES["grey16.pgm"][-2 * W:]),
                          api.read_media(IMAGES["grey16.pgm"]).samples[-1:])


def test_check_decodes_chunk_by_chunk_and_writes_nothing(tmp_path, large_path):
    src = tmp_path / "in.ppm"
    src.write_bytes(IMAGES["rgb.ppm"])
    nz = api.compress_file(src, tmp_path / "a.nz")
    assert api.test_file(nz) == 1 and large_path["decode"] == 1
    blob = bytearray(nz.read_bytes())
    blob[len(blob) // 2] ^= 0x04
    (tmp_path / "bad.nz").write_bytes(bytes(blob))
    with pytest.raises(ContainerError):
        api.test_file(tmp_path / "bad.nz")
    assert large_path["decode"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["a.nz", "bad.nz", "in.ppm"]


def test_stdin_is_spooled_and_coded_chunk_by_chunk(tmp_path, monkeypatch, large_path):
    from neuralzip import cli

    class Stdin:
        buffer = io.BytesIO(IMAGES["rgb.png"])

    monkeypatch.setattr("sys.stdin", Stdin)
    [(target, [source], is_archive)] = cli._plan_jobs(("-",), str(tmp_path / "a.nz"), "x.png")
    assert source.spooled and source.path.read_bytes() == IMAGES["rgb.png"] and not is_archive
    streaming.compress_sources([source], target, False)
    source.path.unlink()
    assert large_path["encode"] == 1
    (tmp_path / "x.png").write_bytes(IMAGES["rgb.png"])
    whole = api.compress_file(tmp_path / "x.png", tmp_path / "b.nz")
    [a], [b] = api.container.loads(target.read_bytes())[1], api.container.loads(whole.read_bytes())[1]
    assert a.mtime is None and b.mtime is not None  # a pipe has no time or permission bits to keep
    assert a.chunks == b.chunks and a.sha256 == b.sha256


def test_cli_stdin_leaves_no_temporary_file(tmp_path):
    import subprocess

    from conftest import _entry_point

    spool = tmp_path / "tmp"
    spool.mkdir()
    env = dict(os.environ, TMPDIR=str(spool), NEURALZIP_STREAM_BYTES="1000")
    r = subprocess.run(_entry_point() + ["compress", "-", "-q"], input=IMAGES["rgb.ppm"], capture_output=True, env=env)
    assert r.returncode == 0 and r.stdout.startswith(b"\x89NZIP")
    r2 = subprocess.run(_entry_point() + ["compress", "-", "-q"], input=b"not an image", capture_output=True, env=env)
    assert r2.returncode != 0 and len(r2.stderr.splitlines()) == 1
    assert list(spool.iterdir()) == []
    r3 = subprocess.run(_entry_point() + ["decompress", "-"], input=r.stdout, capture_output=True, env=env)
    assert r3.returncode == 0 and r3.stdout == IMAGES["rgb.ppm"]


def test_a_header_chunk_with_a_wrong_crc_is_refused_as_the_whole_file_reader_refuses_it(tmp_path, large_path):
    data = bytearray(IMAGES["rgb.png"])
    at = data.find(b"IHDR") + 4 + 13  # the IHDR's CRC
    data[at] ^= 1
    (tmp_path / "bad.png").write_bytes(bytes(data))
    assert imagestream.probe(tmp_path / "bad.png") is None  # so the whole-file path reads it, and says why
    with pytest.raises(InputError):
        png.RowReader(tmp_path / "bad.png")
    with pytest.raises(InputError):
        api.compress_file(tmp_path / "bad.png", tmp_path / "bad.nz")
    assert large_path["encode"] == 0 and not (tmp_path / "bad.nz").exists()
    data[at] ^= 1
    idat_crc = data.find(b"IDAT") + 4 + int.from_bytes(data[data.find(b"IDAT") - 4:data.find(b"IDAT")], "big")
    data[idat_crc] ^= 1  # Pillow does not check the image data's CRC, and neither does the block reader
    (tmp_path / "odd.png").write_bytes(bytes(data))
    api.compress_file(tmp_path / "odd.png", tmp_path / "odd.nz")
    assert large_path["encode"] == 1
