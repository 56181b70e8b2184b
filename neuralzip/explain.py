"""`neuralzip explain`: where the bits go, as a picture.

Images: the picture beside a heatmap of the bits each pixel costs under the
model (all channels together), with a colour scale in bits. Audio: the
waveform above the bits per sample over time, with FLAC's bits per frame for
comparison when the flac tool is installed.
"""

import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from neuralzip.media import Media
from neuralzip.models import auto_model, get_codec
from neuralzip.models.base import Signal

MIN_PANEL_H = 256  # small images are enlarged (nearest neighbour) to at least this height
MAX_PANEL_W = 1200  # large ones are shrunk to at most this width
AUDIO_SIZE = (1400, 700)


def image_layout(width: int, height: int) -> tuple[int, int, int, int]:
    """-> (panel width, panel height, figure width, figure height) in pixels."""
    scale = max(1, math.ceil(MIN_PANEL_H / height))
    if width * scale > MAX_PANEL_W:
        scale = MAX_PANEL_W / width
    pw, ph = max(1, round(width * scale)), max(1, round(height * scale))
    return pw, ph, 2 * pw + 136, ph + 60


def explain(media: Media, name: str, out: Path, model: str = "auto", original: bytes | None = None) -> dict:
    if model == "auto":  # the model compress takes for this medium (a decoded JPEG's: jpeg-coefficients)
        model = auto_model(media.kind, media.samples, media.bits) or model
    codec = get_codec(model, media.kind)
    signal = Signal(media.kind, media.samples.shape, media.bits, int(media.meta.get("rate", 0)))
    bits = codec.bits_per_dim(media.samples, signal)
    import matplotlib

    matplotlib.use("Agg")
    title = f"{name}: model {codec.name}, {bits.sum() / bits.size:.3f} bits per dimension"
    if media.kind == "image":
        _image_figure(media, bits, out, title, original)
    else:
        _audio_figure(media, bits, out, title)
    return {"file": name, "model": codec.name, "bits": float(bits.sum()), "dims": int(bits.size)}


def _display(media: Media, original: bytes | None) -> np.ndarray:
    """An 8-bit RGB or grey picture of the image for display."""
    if media.meta.get("mode") == "P" and original is not None:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(original)) as im:
            return np.asarray(im.convert("RGB"))
    px = media.samples.astype(np.int64)
    px = px >> (media.bits - 8) if media.bits > 8 else px * 255 // ((1 << media.bits) - 1)
    if media.meta.get("mode", "").startswith("BGR"):
        px = px[:, :, [2, 1, 0] + list(range(3, px.shape[2]))]
    px = px[:, :, :3] if px.shape[2] >= 3 else px[:, :, 0]
    return px.astype(np.uint8)


def _image_figure(media: Media, bits: np.ndarray, out: Path, title: str, original: bytes | None) -> None:
    import matplotlib.pyplot as plt

    h, w = media.samples.shape[:2]
    pw, ph, fw, fh = image_layout(w, h)
    fig = plt.figure(figsize=(fw / 100, fh / 100), dpi=100)
    box = lambda x, width: [x / fw, 20 / fh, width / fw, ph / fh]  # noqa: E731 - pixel boxes
    ax_img, ax_map = fig.add_axes(box(20, pw)), fig.add_axes(box(40 + pw, pw))
    ax_bar = fig.add_axes(box(60 + 2 * pw, 16))
    picture = _display(media, original)
    ax_img.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest",
                  aspect="auto")
    per_pixel = bits.sum(axis=2)
    top = float(np.percentile(per_pixel, 99.5)) or None  # a few outliers must not wash the map out
    heat = ax_map.imshow(per_pixel, cmap="inferno", interpolation="nearest", aspect="auto", vmin=0, vmax=top)
    for ax in (ax_img, ax_map):
        ax.set_axis_off()
    cbar = fig.colorbar(heat, cax=ax_bar)
    cbar.set_label("bits per pixel", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    fig.text(20 / fw, 1 - 12 / fh, title, fontsize=9, va="top")
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _audio_figure(media: Media, bits: np.ndarray, out: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    frames, channels = media.samples.shape
    rate = int(media.meta.get("rate") or 44100)
    t = np.arange(frames) / rate
    fig, (ax_wave, ax_bits) = plt.subplots(2, 1, figsize=(AUDIO_SIZE[0] / 100, AUDIO_SIZE[1] / 100), dpi=100,
                                           sharex=True)
    full_scale = float(1 << (media.bits - 1))
    for c in range(min(channels, 2)):
        ax_wave.plot(t, media.samples[:, c] / full_scale, linewidth=0.5, label=f"channel {c + 1}")
    ax_wave.set_ylabel("amplitude")
    ax_wave.set_ylim(-1, 1)
    ax_wave.set_title(title, fontsize=10)
    window = max(1, frames // 1000)
    n = frames // window
    if n:
        per_window = bits[: n * window].reshape(n, window, channels).mean(axis=(1, 2))
        ax_bits.step(t[: n * window : window], per_window, where="post", linewidth=0.8, label="neuralzip")
    flac = _flac_frames(media)
    if flac is not None:
        starts, per_sample = flac
        ax_bits.step(starts / rate, per_sample, where="post", linewidth=0.8, label="FLAC -8 (per frame)")
    ax_bits.set_ylabel("bits per sample")
    ax_bits.set_xlabel("time (s)")
    ax_bits.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _flac_frames(media: Media):
    """FLAC's bits per sample in each of its frames, from `flac -a` (None without the tool)."""
    if shutil.which("flac") is None or media.bits > 24:
        return None
    from neuralzip.peers import encode_flac

    with tempfile.TemporaryDirectory() as tmp:
        fl = encode_flac(media, Path(tmp))
        subprocess.run(["flac", "-a", "-s", "-f", "-o", str(Path(tmp) / "a.ana"), str(fl)], check=True,
                       capture_output=True)
        text = (Path(tmp) / "a.ana").read_text()
    found = re.findall(r"^frame=\d+\s+offset=\d+\s+bits=(\d+)\s+blocksize=(\d+)", text, re.M)
    if not found:
        return None
    bits, sizes = np.array(found, dtype=np.int64).T
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return starts, bits / (sizes * media.samples.shape[1])
