"""A .nz archive as a dataset for training code: `neuralzip.open(PATH)`.

Random access by name or position, `len`, and iteration, each member as a numpy array with its
metadata. Only the member table is read on opening; a member's group is decoded when the member
is asked for (the last group decoded is kept, so iterating decodes each group once). The object
pickles as its path and options, so a PyTorch DataLoader's worker processes reopen the file
themselves; nothing here imports torch.

    ds = neuralzip.open("speech.nz")
    class Clips(torch.utils.data.Dataset):
        def __len__(self): return len(ds)
        def __getitem__(self, i): return torch.from_numpy(ds[i].array)
"""

from __future__ import annotations

from dataclasses import dataclass

from neuralzip import limits
from neuralzip.errors import InputError


@dataclass
class Sample:
    """One member: `array` is the canonical content (image: (height, width, channels) uint8 or uint16;
    audio: (frames, channels) int32; another file: its bytes as uint8), `bits` the significant bits
    per value, `rate` the sample rate (audio; 0 otherwise), `meta` the restore metadata."""

    name: str
    kind: str
    array: object
    bits: int
    rate: int
    meta: dict
    mtime: int | None = None
    mode: int | None = None

    def file_bytes(self) -> bytes:
        """The restored file (a raw array comes back as .npy)."""
        from neuralzip import api
        from neuralzip.container import Member
        from neuralzip.media import Media

        stub = Member(self.name, self.kind, "", None, self.array.shape, self.bits, self.meta, {}, "")
        return api.restore(stub, Media(self.kind, self.array, self.bits, self.meta))


class Dataset:
    """See the module's note (a .nz archive or a shard set's directory). `weights`: the weights file the archive was made with, if a user's;
    `max_memory`: as for decompress."""

    def __init__(self, path, weights: str | None = None, max_memory=limits.DEFAULT_MAX_MEMORY):
        self.path = str(path)
        self.weights = weights
        self.max_memory = max_memory
        self._open()

    # ---- pickling: the path and the options; the file is reopened where it is unpickled
    def __getstate__(self):
        return {"path": self.path, "weights": self.weights, "max_memory": self.max_memory}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._open()

    def _open(self) -> None:
        from neuralzip import api, container, streaming

        self._cache = (None, [])  # ((part, first member of the group), its samples)
        self._files = {}
        self._closed = False
        self._parts, _ = streaming.open_parts(self.path, api._max_memory(self.max_memory))
        if self._parts is None:  # version 1: the members are in the header, the file is read whole
            _, self._members = container.loads(api.read_file(self.path), api._max_memory(self.max_memory))
            self.names = [m.name for m in self._members]
        else:
            self._members = None
            self.names = streaming.part_names(self._parts)
            self._bases = [p.base for p in self._parts]
        self._index = {n: i for i, n in enumerate(self.names)}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name) -> bool:
        return name in self._index

    def index(self, key) -> int:
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(key)
            return self._index[key]
        i = int(key)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"member {key} of {len(self)}")
        return i

    def __getitem__(self, key) -> Sample:
        """A member by name or position."""
        i = self.index(key)
        k, local = self._locate(i)
        first, end = self._span(k, local)
        if self._cache[0] != (k, first):
            self._cache = ((k, first), self._decode(k, first, end))
        return self._cache[1][local - first]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _locate(self, i: int) -> tuple[int, int]:
        """-> (part, the member's number within it)."""
        if self._parts is None:
            return 0, i
        import bisect

        k = bisect.bisect_right(self._bases, i) - 1
        return k, i - self._bases[k]

    def _span(self, k: int, i: int) -> tuple[int, int]:
        if self._parts is not None:
            return self._parts[k].table.group_span(i)
        chained = any(isinstance(m.params.get("chain"), int) and m.params["chain"] > 1 for m in self._members)
        return (0, len(self._members)) if chained else (i, i + 1)  # a version-1 chain spans the file

    def _decode(self, k: int, first: int, end: int) -> list[Sample]:
        from neuralzip import api, container

        if self._parts is not None:
            if self._closed:
                raise InputError(f"{self.path}: the dataset is closed")
            part = self._parts[k]
            if k not in self._files:
                self._files[k] = open(part.path, "rb")
            members = list(container.read_members(self._files[k], part.table, first, end))
        else:
            members = self._members[first:end]
        media = api.decode_members(members, self.weights, self.max_memory)
        return [Sample(m.name, m.kind, md.samples, m.bits, int(m.meta.get("rate", 0)), m.meta, m.mtime, m.mode)
                for m, md in zip(members, media)]
