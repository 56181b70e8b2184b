"""Files that are neither images nor audio (labels.csv, README, JSON in a dataset folder), stored
with the standard library's LZMA2 so that a folder comes back whole.

The file is cut into pieces of `piece` bytes, each an independent raw LZMA2 stream (no .xz
framing: the container already has lengths and checksums), so decoding holds one piece at a time
besides the output, and a damaged piece cannot inflate past its declared length.
"""

import lzma

import numpy as np

from neuralzip.errors import ContainerError
from neuralzip.models.base import Encoded, ParamError, check_chunk_count, param_int

PIECE = 8 << 20  # bytes per independent stream: the encoder needs about 11x its dictionary
MAX_PIECE = 64 << 20
MIN_DICT = 1 << 12


def _filters(dict_size: int, encode: bool) -> list:
    f = {"id": lzma.FILTER_LZMA2, "dict_size": dict_size}
    if encode:
        f["preset"] = 9 | lzma.PRESET_EXTREME
    return [f]


def dict_size_for(piece: int) -> int:
    """The smallest power of two holding a piece (decoders allocate the dictionary in full)."""
    return max(MIN_DICT, 1 << max(0, piece - 1).bit_length())


class FileCodec:
    """The `lzma` codec of members of kind "file" (shape (bytes,), bits 8)."""

    name = "lzma"
    kind = "file"
    weights_hash = None
    summary = "other files in a folder: LZMA2 from the standard library"

    def encode(self, samples: np.ndarray, signal=None) -> Encoded:
        data = np.ascontiguousarray(samples, np.uint8).tobytes()
        piece = min(PIECE, max(1, len(data)))
        dsize = dict_size_for(piece)
        chunks = [lzma.compress(data[a:a + piece], lzma.FORMAT_RAW, filters=_filters(dsize, True))
                  for a in range(0, len(data), piece)]
        bits = 8.0 * sum(len(c) for c in chunks)
        return Encoded({"piece": piece, "dict": dsize}, chunks, bits, bits)

    def encode_set(self, items):
        return [self.encode(s, sig) for s, sig in items]

    def check_params(self, params: dict, signal, nchunks: int) -> None:
        piece = param_int(params, "piece", 1, MAX_PIECE)
        dsize = param_int(params, "dict", MIN_DICT, MAX_PIECE)
        if dsize != dict_size_for(piece):
            raise ParamError(f"params.dict {dsize} is not the dictionary a piece of {piece} bytes takes")
        n = signal.shape[0]
        check_chunk_count(-(-n // piece), nchunks)

    def decode_memory(self, params: dict, signal) -> int:
        return 2 * int(params["dict"]) + int(params["piece"])

    def decode(self, params: dict, chunks: list, signal) -> np.ndarray:
        n, piece = signal.shape[0], int(params["piece"])
        out = bytearray()
        for i, c in enumerate(chunks):
            want = min(piece, n - i * piece)
            d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_filters(int(params["dict"]), False))
            try:
                part = d.decompress(c, want + 1)
            except lzma.LZMAError:
                raise ContainerError("corrupt payload: an LZMA piece does not decode") from None
            if len(part) != want or not d.eof or d.unused_data:
                raise ContainerError("corrupt payload: an LZMA piece does not decode to its length")
            out += part
        return np.frombuffer(bytes(out), np.uint8).copy()

    def decode_set(self, items):
        return [self.decode(p, c, sig) for p, c, sig in items]


CODEC = FileCodec()
