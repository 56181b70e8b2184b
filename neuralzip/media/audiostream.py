"""Long recordings read and written a block of frames at a time, so that a member coded chunk by
chunk (neuralzip/chunked.py) never holds the whole recording: WAV by its data offset (prefix and
suffix kept verbatim, as media/wav.py keeps them), FLAC and AIFF through libsndfile. A reader gives
the same samples and `meta` as the whole-file reader (media/detect.read_media) would."""

import os
import warnings

import numpy as np

from neuralzip.errors import InputError
from neuralzip.fileio import open_input
from neuralzip.media import audio, sndfile, wav
from neuralzip.media.blob import unpack


class WavReader:
    """`frames`, `channels`, `bits`, `meta`, then `read(n)`: the next n frames as (n, channels) int32."""

    def __init__(self, path):
        self.f = open_input(path)
        try:
            size = os.fstat(self.f.fileno()).st_size
            lay = wav.layout(self._read_at, size)
            self.frames, self.channels, self.bits, self.width = lay.frames, lay.channels, 8 * lay.width, lay.width
            self.meta = wav.meta_of(lay, self._read_at(0, lay.start), self._read_at(lay.end, size - lay.end))
            self.f.seek(lay.start)
        except BaseException:
            self.f.close()
            raise

    def _read_at(self, pos: int, n: int) -> bytes:
        self.f.seek(pos)
        return self.f.read(n)

    def read(self, n: int) -> np.ndarray:
        body = self.f.read(n * self.channels * self.width)
        if len(body) != n * self.channels * self.width:
            raise InputError("unreadable WAV audio: the file changed while it was read")
        return wav.samples_of(body, self.width, self.channels)

    def close(self) -> None:
        self.f.close()


def open_reader(path, fmt: str):
    """A block reader of the audio file at `path` (fmt: wav, flac or aiff, as sniffed)."""
    with warnings.catch_warnings():  # a damaged file is one line of error, not library warnings
        warnings.simplefilter("ignore")
        if fmt == "wav":
            try:
                return WavReader(path)
            except InputError:
                raise
            except Exception as exc:
                raise InputError(f"unreadable WAV audio: {exc}") from None
        return sndfile.BlockReader(path, fmt)


def probe(path, min_bytes: int = 0) -> tuple[int, int] | None:
    """(frames, channels) that an audio file declares, from its header alone (None: not audio, not
    readable, in which case the whole-file path will say why, or an uncompressed file of fewer
    than `min_bytes` bytes, which cannot declare min_bytes samples). Only decides which path codes it."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
        fmt = audio.sniff(head)
        if fmt in ("wav", "aiff") and size < min_bytes:  # uncompressed: at least a byte a sample
            return None
        if fmt == "wav":
            r = WavReader(path)
            r.close()
            return r.frames, r.channels
        if fmt in ("flac", "aiff"):
            import soundfile as sf

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                info = sf.info(str(path))
            return max(int(info.frames), 0), int(info.channels)
    except Exception:  # noqa: BLE001 - a damaged file goes the usual way, which names the problem
        return None
    return None


class WavWriter:
    """A WAV file written into the open binary file `out`: its prefix, the samples block by block, its suffix."""

    def __init__(self, out, meta: dict, channels: int, bits: int):
        self.out, self.width = out, meta["width"]
        self.suffix = unpack(meta["suffix"])
        out.write(unpack(meta["prefix"]))

    def write(self, samples: np.ndarray) -> None:
        self.out.write(wav.body_of(samples, self.width))

    def close(self) -> None:
        self.out.write(self.suffix)


def open_writer(out, meta: dict, shape, bits: int):
    """A writer of the restored file (meta: the member's; shape: (frames, channels)) into the open,
    seekable binary file `out`: write(samples) block by block in order, then close()."""
    channels = shape[1]
    fmt = meta.get("format")
    if fmt == "wav":
        return WavWriter(out, meta, channels, bits)
    if fmt in ("flac", "aiff"):
        return sndfile.BlockWriter(out, meta, channels, bits)
    raise ValueError(f"no block writer for format {fmt!r}")
