"""Learned initial statistics ("weights") shared by the classic codecs.

A codec that starts its adaptive counts from a prior holds a ``Prior``: the
shipped weights file for its prefix (found lazily, so importing stays cheap)
or a user's file given with --weights. The file's hash is what every member
coded with it records.
"""

from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.errors import InputError


class Prior:
    def __init__(self, prefix: str, shape: tuple, path: str | Path | None = None):
        self.prefix, self.shape = prefix, shape
        self._path = Path(path) if path is not None else None
        self._counts = None
        self._hash = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = weightstore.shipped(self.prefix)
        return self._path

    @property
    def hash(self) -> str:
        if self._hash is None:  # asked for every member coded or decoded: hash the file once
            self._hash = weightstore.file_hash(self.path)
        return self._hash

    @property
    def counts(self) -> np.ndarray:
        """Integer counts, every entry >= 1, of the expected shape."""
        if self._counts is None:
            counts = weightstore.load(self.path).get("counts")
            if counts is None or counts.shape != self.shape or counts.min() < 1:
                raise InputError(f"{self.path}: not a weights file for {self.prefix}")
            self._counts = counts.astype(np.int64)
        return self._counts

    def flat_file(self, path: Path) -> Path:
        """Write a flat (uninformative) prior of this shape: the starting point of training."""
        np.savez(path, counts=np.ones(self.shape, np.int32))
        return path
