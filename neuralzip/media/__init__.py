"""Readers and writers: files <-> canonical arrays plus the metadata to restore them.

Every reader returns a ``Media`` whose ``samples`` array and ``meta`` dict are
the canonical content: what the checksum covers and what the writer needs to
rebuild the file (byte-identical for WAV, PPM/PGM/PBM and BMP; identical
pixels/samples plus the metadata that matters for PNG, TIFF, FLAC and AIFF).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Media:
    kind: str  # "image" or "audio"
    samples: np.ndarray  # image: (H, W, C) unsigned; audio: (frames, C) signed int
    bits: int  # significant bits per sample
    meta: dict = field(default_factory=dict)  # JSON-able restore info

    @property
    def dims(self) -> int:
        return int(self.samples.size)
