"""Classical codecs measured on the fly for --compare: PNG for images, FLAC for audio."""

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from neuralzip.media import Media


def png_bytes(media: Media, original: bytes) -> int:
    """Pillow PNG, optimize=True (pypng for 16-bit colour, which Pillow cannot hold)."""
    if media.bits == 16 and media.samples.shape[2] > 1:
        import png

        h, w, c = media.samples.shape
        buf = io.BytesIO()
        png.Writer(w, h, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16, compression=9).write_array(
            buf, media.samples.reshape(-1))
        return len(buf.getvalue())
    from PIL import Image

    with Image.open(io.BytesIO(original)) as im:
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
    return len(buf.getvalue())


def flac_bytes(media: Media) -> int | None:
    """FLAC at its strongest setting, without padding; None where FLAC cannot hold the samples."""
    import soundfile as sf

    if media.bits > 24:
        return None
    subtype = {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24"}[media.bits]
    rate = int(media.meta.get("rate") or 44100)
    left = (media.samples.astype(np.int64) << (32 - media.bits)).astype(np.int32)
    if shutil.which("flac"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "in.wav"
            sf.write(wav, left, rate, subtype=subtype)
            subprocess.run(["flac", "-8", "--no-padding", "--no-seektable", "-s", "-f", "-o",
                            str(wav) + ".flac", str(wav)], check=True, capture_output=True)
            return (Path(tmp) / "in.wav.flac").stat().st_size
    buf = io.BytesIO()
    sf.write(buf, left, rate, format="FLAC", subtype={8: "PCM_S8", 16: "PCM_16", 24: "PCM_24"}[media.bits],
             compression_level=1.0)
    return len(buf.getvalue())


def compare(media: Media, original: bytes) -> dict:
    """-> {peer name: {"bytes": n, "bpd": b}} (bytes None where not applicable)."""
    dims = media.samples.size
    if media.kind == "image":
        sizes = {"png": png_bytes(media, original)}
    else:
        sizes = {"flac": flac_bytes(media)}
    return {k: {"bytes": v, "bpd": None if v is None else round(8 * v / dims, 6)} for k, v in sizes.items()}
