"""Classical codecs: sizes on the fly for --compare (PNG, FLAC), and the full
set of peers for `neuralzip bench`, run as whole processes at their strongest
common settings (the yardsticks every benchmark uses)."""

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from neuralzip.media import Media

FLAC_ARGS = ["-8", "--no-padding", "--no-seektable", "-s", "-f"]


def png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG through pypng (Pillow cannot hold 16-bit colour)."""
    import png

    h, w, c = samples.shape
    buf = io.BytesIO()
    png.Writer(w, h, greyscale=c < 3, alpha=c in (2, 4), bitdepth=16, compression=9).write_array(
        buf, samples.reshape(-1))
    return buf.getvalue()


def write_pcm_wav(media: Media, path: Path) -> Path:
    """The samples as a plain PCM WAV (what the audio peers read)."""
    import soundfile as sf

    subtype = {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}[media.bits]
    sf.write(path, (media.samples.astype(np.int64) << (32 - media.bits)).astype(np.int32),
             int(media.meta.get("rate") or 44100), subtype=subtype)
    return path


def encode_flac(media: Media, tmp: Path) -> Path:
    """`flac -8 --no-padding --no-seektable` of the samples (needs the flac tool; <= 24 bits)."""
    wav = write_pcm_wav(media, tmp / "flac_input.wav")
    out = tmp / "flac_input.flac"
    subprocess.run(["flac", *FLAC_ARGS, "-o", str(out), str(wav)], check=True, capture_output=True)
    return out


def png_bytes(media: Media, original: bytes) -> int:
    """Pillow PNG, optimize=True (pypng for 16-bit colour, which Pillow cannot hold)."""
    if media.bits == 16 and media.samples.shape[2] > 1:
        return len(png16(media.samples))
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
    if shutil.which("flac"):
        with tempfile.TemporaryDirectory() as tmp:
            return encode_flac(media, Path(tmp)).stat().st_size
    buf = io.BytesIO()
    sf.write(buf, (media.samples.astype(np.int64) << (32 - media.bits)).astype(np.int32),
             int(media.meta.get("rate") or 44100), format="FLAC",
             subtype={8: "PCM_S8", 16: "PCM_16", 24: "PCM_24"}[media.bits], compression_level=1.0)
    return len(buf.getvalue())


def compare(media: Media, original: bytes) -> dict:
    """-> {peer name: {"bytes": n, "bpd": b}} (bytes None where not applicable)."""
    dims = media.samples.size
    if media.kind == "image":
        sizes = {"png": png_bytes(media, original)}
    else:
        sizes = {"flac": flac_bytes(media)}
    return {k: {"bytes": v, "bpd": None if v is None else round(8 * v / dims, 6)} for k, v in sizes.items()}


# --- the peers of `neuralzip bench` ----------------------------------------------------

_PIL_PNG = ("import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], optimize=True)")
_PIL_DECODE = "import sys; from PIL import Image; Image.open(sys.argv[1]).load()"


class Peer:
    """A classical codec run as whole processes: encode src -> out, decode out -> back."""

    def __init__(self, name, kind, tool, ext, encode, decode, max_bits=32):
        self.name, self.kind, self.tool, self.ext = name, kind, tool, ext
        self._encode, self._decode, self.max_bits = encode, decode, max_bits

    def missing(self) -> str | None:
        """Why this peer cannot run here (None: it can)."""
        if self.tool and shutil.which(self.tool) is None:
            return f"{self.tool} is not installed"
        return None

    def encode_cmd(self, src: Path, out: Path) -> list[str]:
        return self._encode(str(src), str(out))

    def decode_cmd(self, out: Path, back: Path) -> list[str]:
        return self._decode(str(out), str(back))


def _py(code, *args):
    import sys

    return [sys.executable, "-c", code, *args]


# optipng runs at its default level -o2: on a valid photo -o7 gave the same bytes at 30x the time.
PEERS = [
    Peer("png", "image", None, ".png", lambda s, o: _py(_PIL_PNG, s, o), lambda o, b: _py(_PIL_DECODE, o)),
    Peer("optipng", "image", "optipng", ".png", lambda s, o: ["optipng", "-quiet", "-o2", "-out", o, s],
         lambda o, b: _py(_PIL_DECODE, o)),
    Peer("webp", "image", "cwebp", ".webp", lambda s, o: ["cwebp", "-quiet", "-lossless", "-z", "9", "-exact", s, "-o", o],
         lambda o, b: ["dwebp", "-quiet", o, "-o", b], max_bits=8),
    Peer("jxl-e7", "image", "cjxl", ".jxl", lambda s, o: ["cjxl", "--quiet", "-d", "0", "-e", "7", s, o],
         lambda o, b: ["djxl", "--quiet", o, b]),
    Peer("jxl-e9", "image", "cjxl", ".jxl", lambda s, o: ["cjxl", "--quiet", "-d", "0", "-e", "9", s, o],
         lambda o, b: ["djxl", "--quiet", o, b]),
    Peer("flac", "audio", "flac", ".flac", lambda s, o: ["flac", *FLAC_ARGS, "-o", o, s],
         lambda o, b: ["flac", "-d", "-s", "-f", "-o", b, o], max_bits=24),
    Peer("wavpack", "audio", "wavpack", ".wv", lambda s, o: ["wavpack", "-q", "-y", "-hh", "-x3", s, "-o", o],
         lambda o, b: ["wvunpack", "-q", "-y", o, "-o", b]),
]


def peers_for(kind: str) -> list[Peer]:
    return [p for p in PEERS if p.kind == kind]
