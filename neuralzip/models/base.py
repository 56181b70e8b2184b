"""The one codec interface every model family implements.

A codec turns the canonical samples of one medium into independently
decodable chunks plus JSON-able parameters, and back. It also reports the
likelihood: ``nll_float_bits`` under the float (training) model and
``nll_bits`` under the exact integer model that drives the coder. The CLI and
the container only ever talk to this interface.
"""

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from neuralzip import progress
from neuralzip.coding.stream import CostCoder, TeeCoder


@dataclass
class Signal:
    """What a codec needs to know about the samples besides their values."""

    kind: str  # "image" (unsigned, (H, W, C)) or "audio" (signed, (frames, C))
    shape: tuple
    bits: int
    rate: int = 0  # audio sample rate (models use it to pick block sizes)

    @property
    def signed(self) -> bool:
        return self.kind == "audio"


@dataclass
class Encoded:
    params: dict
    chunks: list
    nll_bits: float  # -log2 p(x) under the exact model that codes
    nll_float_bits: float  # -log2 p(x) under the float model
    initial_bits: float | None = None  # bits-back only: what starting the chain cost (0 past its start)


class Codec(ABC):
    name: str = ""
    kind: str = ""  # the medium this codec handles
    summary: str = ""
    weights_hash: str | None = None  # None: the model has no learned weights
    # Compression levels (--level): 1 is the default; a model with a stronger, slower variant
    # lists 2 as well, returns it from at_level and records the level it used as params["level"]
    # (so decoding needs no option).
    levels: tuple[int, ...] = (1,)

    def at_level(self, level: int) -> "Codec":
        """This model at compression level `level`."""
        from neuralzip.errors import InputError

        if level == 1:
            return self
        raise InputError(f"model {self.name!r} ({self.kind}) has no level {level} (levels: "
                         f"{', '.join(map(str, self.levels))})")

    def with_weights(self, path) -> "Codec":
        """The same model with a user-trained weights file (--weights)."""
        from neuralzip.errors import InputError

        raise InputError(f"model {self.name!r} ({self.kind}) takes no weights file")

    @abstractmethod
    def encode(self, samples: np.ndarray, signal: Signal) -> Encoded:
        ...

    @abstractmethod
    def decode(self, params: dict, chunks: list, signal: Signal) -> np.ndarray:
        ...

    # an archive's input file of at most this many bytes joins a group with its neighbours, where the
    # codec codes members together (encode_set); None: any size that fits a group
    chain_member_bytes: int | None = None

    def encode_set(self, items: list[tuple[np.ndarray, Signal]]) -> list[Encoded]:
        """Code the media of one archive. Codecs whose members share a stream (one bits-back chain
        over an archive) override this and decode_set; the rest code each member on its own."""
        out = []
        for i, (samples, signal) in enumerate(items):
            with progress.within(i, i + 1, len(items)):
                out.append(self.encode(samples, signal))
        return out

    def decode_set(self, items: list[tuple[dict, list, Signal]]) -> list[np.ndarray]:
        out = []
        for i, (params, chunks, signal) in enumerate(items):
            with progress.within(i, i + 1, len(items)):
                out.append(self.decode(params, chunks, signal))
        return out

    # -- what a decoder may be asked to do: checked before anything is allocated or decoded
    def check_params(self, params: dict, signal: Signal, nchunks: int) -> None:
        """Refuse (ParamError naming the field) codec parameters that this codec's decoder could not
        decode within bounds: values out of range, or a layout that does not fit the shape and the
        member's chunk count (`nchunks`). The container has already checked the kind, shape (positive,
        bounded, 1..4 image channels) and bit depth; `signal` holds them. Must take time and memory
        independent of the shape (no per-chunk lists: arithmetic). Codecs override it; this default
        accepts any params (a codec that has none ignores them)."""

    def decode_memory(self, params: dict, signal: Signal) -> int:
        """Bytes of working memory the decoder needs besides the decoded samples themselves (an
        upper estimate from the header alone; params already checked). Default: a tenth of the output."""
        return int(np.prod(signal.shape, dtype=object)) * 8 // 10

    # -- chunk by chunk: a long recording or a large image in bounded memory (neuralzip/chunked.py) ----
    def chunk_params(self, signal: Signal) -> dict | None:
        """The params `encode` records for a signal of this shape, when the codec cuts the frames into
        consecutive spans coded as independent chunks and can take them one span at a time
        (encode_chunks, decode_chunks: the same chunks and params as encode); None (this default)
        when it cannot."""
        return None

    def encode_chunks(self, params: dict, read, signal: Signal):
        """Yield (chunk bytes, exact-model bits) chunk by chunk, in order; `read(n)` gives the next n
        frames (audio: an (n, channels) array) or rows (image: (n, width, channels)). The chunks and
        the sum of the bits are encode's; the generator's value when it ends is the float model's
        bits (None: they are the exact model's). drain_chunks runs one to its end."""
        raise NotImplementedError(f"model {self.name!r} codes a recording whole")

    def decode_chunks(self, params: dict, chunk, signal: Signal, write) -> None:
        """Decode the chunks, `chunk(j)` giving chunk j's bytes (asked for in order, each once), and
        hand the samples to `write(block)` in order, as arrays of whole frames or rows (as `read` gives
        them to encode_chunks). params are checked."""
        raise NotImplementedError(f"model {self.name!r} decodes a recording whole")

    def decodes_in_chunks(self, params: dict) -> bool:
        """Whether decode_chunks takes a member with these params (not yet checked: read them
        defensively); this default: every member of a codec that has decode_chunks."""
        return True

    def chunk_decode_memory(self, params: dict, signal: Signal) -> int:
        """Bytes decode_chunks needs (working memory and its blocks of samples; params checked)."""
        return self.decode_memory(params, signal)

    @abstractmethod
    def likelihood(self, samples: np.ndarray, signal: Signal) -> tuple[float, float]:
        """-> (nll_float_bits, nll_bits) without producing a stream."""

    @abstractmethod
    def bits_per_dim(self, samples: np.ndarray, signal: Signal) -> np.ndarray:
        """Bits the exact model spends on each value (same shape as samples): where the bits go.
        Side information (model parameters sent with a chunk) is not attributed."""


class RunCodec(Codec):
    """A codec whose encoder, likelihood and bit map are one loop, ``_run``, over
    a coder: the range encoder (encode) or a cost counter (likelihood)."""

    @abstractmethod
    def _run(self, coder_factory, samples: np.ndarray, signal: Signal, observe=None) -> tuple[dict, list, float]:
        """-> (params, chunks, exact-model bits); `observe` sees the model's symbols (model-specific)."""

    def encode(self, samples, signal):
        params, chunks, bits = self._run(TeeCoder, samples, signal)
        return Encoded(params, chunks, bits, bits)  # no float model: both likelihoods are the exact one

    def likelihood(self, samples, signal):
        _, _, bits = self._run(CostCoder, samples, signal)
        return bits, bits


def drain_chunks(chunk_gen, put=None) -> tuple[list, float, float | None]:
    """Run an encode_chunks-style generator to its end -> (its chunks, or [] when `put(chunk)` takes
    each as it comes; the exact-model bits summed in chunk order; the generator's value: the float
    model's bits or None)."""
    chunks, bits = [], 0.0
    put = put or chunks.append
    while True:
        try:
            data, b = next(chunk_gen)
        except StopIteration as end:
            return chunks, bits, end.value
        put(data)
        bits += b


class ParamError(ValueError):
    """A codec parameter out of range (api reports it as a corrupt header, naming the member)."""


def param_int(params: dict, key: str, lo: int, hi: int) -> int:
    """params[key], which must be a JSON integer in lo..hi."""
    v = params.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        raise ParamError(f"params.{key} {shown} is not an integer in {lo}..{hi}" if key in params
                         else f"params has no {key!r}")
    return v


def param_ints(params: dict, key: str, lo: int, hi: int, max_len: int) -> list:
    """params[key], which must be a list of at most max_len JSON integers in lo..hi."""
    v = params.get(key)
    if (not isinstance(v, list) or len(v) > max_len
            or not all(isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi for x in v)):
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
        raise ParamError(f"params.{key} {shown} is not a list of at most {max_len} integers in {lo}..{hi}"
                         if key in params else f"params has no {key!r}")
    return v


def check_chunk_count(expected: int, nchunks: int, what: str = "the shape") -> None:
    if expected != nchunks:
        raise ParamError(f"chunks: {nchunks} chunk(s) stored where {what} needs {expected}")


def row_chunks(n_rows: int, row_size: int, target: int) -> list[tuple[int, int]]:
    """Cut n_rows rows of row_size values into spans of about `target` values."""
    per = max(1, target // max(1, row_size))
    return [(a, min(a + per, n_rows)) for a in range(0, n_rows, per)] or [(0, 0)]


def decode_batch_limit() -> int:
    """Largest number of positions handed to one decoder call (0: no limit).

    Decoding must not depend on it: the exact-decode test sets
    NEURALZIP_DECODE_BATCH to prove that (exact decode on any machine)."""
    return int(os.environ.get("NEURALZIP_DECODE_BATCH", "0") or 0)


def sub_batches(n: int, limit: int):
    """(start, end) spans that cover range(n) in pieces of at most `limit` (0: one piece)."""
    if n <= 0:
        return ()
    if limit <= 0 or n <= limit:
        return ((0, n),)
    step = limit
    return [(a, min(a + step, n)) for a in range(0, n, step)]
