"""What a .nz header (and an input file) may declare, and the decompression-bomb policy.

A .nz file is untrusted input. Every value of its header is checked against these
bounds before anything is allocated or decoded (container.py, api.py, and each
codec's ``check_params``), and a member whose decoding would need more memory than
``--max-memory`` (estimated from the header alone) is refused before it starts.

The default limit is large enough for a 100-megapixel 16-bit RGBA photo (about
2.9 GiB estimated with any image model) and a two-hour 24-bit stereo recording at
96 kHz (about 16 GiB estimated: 1.38 billion samples held as 32-bit integers, the
restored file and one working copy); anything larger needs ``--max-memory`` raised
(0: no limit).
"""

import re

from neuralzip.errors import InputError

GiB = 1 << 30
DEFAULT_MAX_MEMORY = 20 * GiB

# what the media layer reads and writes
IMAGE_BITS = (1, 16)  # PNG 1/2/4/8/16, PNM up to maxval 65535, BMP 1/4/8, TIFF 1/8/16
AUDIO_BITS = (1, 32)  # WAV/FLAC/AIFF 8/16/24/32; raw arrays any depth up to 32
IMAGE_CHANNELS = (1, 4)  # grey, grey+alpha, RGB/BGR, RGBA/BGRA
AUDIO_CHANNELS = (1, 1024)  # libsndfile's limit
MAX_SIDE = (1 << 31) - 1  # PNG's limit on a side; BMP and TIFF are within it
MAX_FRAMES = 1 << 48
MAX_RATE = (1 << 32) - 1  # WAV stores the rate in 32 bits
# Restored-file and working copies counted on top of the decoded samples (see api.member_memory).
COPIES = 3

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text, option: str = "--max-memory") -> int:
    """'4G', '512M', '1.5GiB', '100000' (bytes), '0' (no limit) -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise InputError(f"{option} {text!r}: expected a size such as 512M, 4G or 2.5GiB"
                         + (" (0: no limit)" if option == "--max-memory" else ""))
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def sample_bytes(kind: str, bits: int) -> int:
    """Bytes per decoded sample (the canonical array's dtype)."""
    if kind == "audio":
        return 4
    return 2 if bits > 8 else 1


def check_declared(what: str, samples: int, itemsize: int) -> None:
    """Readers: refuse a file whose header declares more samples than the default decompression
    limit could ever restore (a pixel bomb), before any pixel or sample is decoded (exit 2)."""
    need = COPIES * samples * itemsize
    if need > DEFAULT_MAX_MEMORY:
        raise InputError(f"{what} is too large: its {samples:,} samples would need about {format_size(need)} "
                         f"to restore (the limit is {format_size(DEFAULT_MAX_MEMORY)})")
