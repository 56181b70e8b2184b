"""Glue between integer pmfs and constriction's coders.

Models hand over integer-valued count tables (exact in any float format) and
the coder uses ``Categorical(perfect=False)`` on both sides, so both rebuild the
very same quantized distribution. Raw low bits go through ``Uniform`` in
pieces of at most 16 bits. The range coder keeps symbol order, so encoder and
decoder run the same loop in the same order.

``CostCoder`` runs a model without producing a stream and only adds up the
exact model's information content: that is the ``likelihood`` path.
"""

import constriction
import numpy as np

from neuralzip.kernels.coding import information, join_pieces, split_pieces

CONSTRICTION_VERSION = "0.5.0"
PIECE_BITS = 16  # the kernels cut low-bit fields into pieces of this many bits

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_UNIFORM = constriction.stream.model.Uniform()


def _encode_low_bits(encode, values: np.ndarray, nbits: np.ndarray) -> None:
    """Low-bit fields as uniform pieces through a coder's encode(symbols, model, sizes)."""
    vals, sizes, _, _ = split_pieces(np.asarray(values, np.int64), np.asarray(nbits, np.int64), True)
    if len(vals):
        encode(vals, _UNIFORM, sizes)


def _decode_low_bits(decode, nbits: np.ndarray) -> np.ndarray:
    nbits = np.asarray(nbits, np.int64)
    _, sizes, owner, shift = split_pieces(nbits, nbits, False)
    if len(sizes) == 0:
        return np.zeros(len(nbits), np.int64)
    return join_pieces(decode(_UNIFORM, sizes), owner, shift, len(nbits))


class RangeEncoderStream:
    def __init__(self):
        self._enc = constriction.stream.queue.RangeEncoder()

    def symbols(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        if len(symbols):
            self._enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), _CATEGORICAL,
                             np.ascontiguousarray(counts, dtype=np.float64))

    def symbols_iid(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        """Symbols that all share one pmf (order-0 models): one concrete model, one call."""
        if len(symbols):
            model = constriction.stream.model.Categorical(np.asarray(counts, np.float64), perfect=False)
            self._enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), model)

    def low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        _encode_low_bits(self._enc.encode, values, nbits)

    def uniform(self, values: np.ndarray, sizes: np.ndarray) -> None:
        """Values each under a uniform distribution over sizes[i] values (sizes <= 2^PIECE_BITS)."""
        if len(values):
            self._enc.encode(np.ascontiguousarray(values, dtype=np.int32), _UNIFORM,
                             np.ascontiguousarray(sizes, dtype=np.int32))

    def finish(self) -> bytes:
        return self._enc.get_compressed().tobytes()


class RangeDecoderStream:
    def __init__(self, data: bytes):
        if len(data) % 4:
            raise ValueError("payload length is not a multiple of 4")
        self._dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())

    def symbols(self, counts: np.ndarray) -> np.ndarray:
        if len(counts) == 0:
            return np.zeros(0, dtype=np.int32)
        return self._dec.decode(_CATEGORICAL, np.ascontiguousarray(counts, dtype=np.float64))

    def symbols_iid(self, counts: np.ndarray, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        model = constriction.stream.model.Categorical(np.asarray(counts, np.float64), perfect=False)
        return self._dec.decode(model, n)

    def uniform(self, sizes: np.ndarray) -> np.ndarray:
        """Raw pieces, each under a uniform distribution over sizes[i] values (sizes <= 2^PIECE_BITS)."""
        if not len(sizes):
            return np.zeros(0, np.int32)
        return self._dec.decode(_UNIFORM, np.ascontiguousarray(sizes, dtype=np.int32))

    def low_bits(self, nbits: np.ndarray) -> np.ndarray:
        return _decode_low_bits(self._dec.decode, nbits)


def symbol_bits(symbols: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """-log2 p of each symbol under its row of integer counts (the exact model)."""
    counts = np.asarray(counts, dtype=np.float64)
    picked = counts[np.arange(len(symbols)), symbols]
    return -np.log2(picked / counts.sum(axis=1))


class CostCoder:
    """Stands in for an encoder; adds up -log2 p under the exact integer model."""

    def __init__(self):
        self.bits = 0.0

    def symbols(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        if len(symbols):
            self.bits += information(np.asarray(symbols, np.int32), np.asarray(counts, np.float64))

    def symbols_iid(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        p = np.asarray(counts, dtype=np.float64)
        self.bits -= float(np.sum(np.log2(p[symbols] / p.sum())))

    def low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        self.bits += float(np.sum(nbits))

    def uniform(self, values: np.ndarray, sizes: np.ndarray) -> None:
        self.bits += float(np.sum(np.log2(np.asarray(sizes, np.float64))))

    def finish(self) -> bytes:
        return b""


class TeeCoder:
    """Encodes and measures the exact model's information content in one pass."""

    def __init__(self):
        self.stream = RangeEncoderStream()
        self.cost = CostCoder()

    @property
    def bits(self) -> float:
        return self.cost.bits

    def symbols(self, symbols, counts):
        self.stream.symbols(symbols, counts)
        self.cost.symbols(symbols, counts)

    def symbols_iid(self, symbols, counts):
        self.stream.symbols_iid(symbols, counts)
        self.cost.symbols_iid(symbols, counts)

    def low_bits(self, values, nbits):
        self.stream.low_bits(values, nbits)
        self.cost.low_bits(values, nbits)

    def uniform(self, values, sizes):
        self.stream.uniform(values, sizes)
        self.cost.uniform(values, sizes)

    def finish(self) -> bytes:
        return self.stream.finish()



class AnsStack:
    """constriction's ANS stack (last in, first out) for bits-back chains: symbols
    under integer count rows and raw low bits can be pushed (encoded) and popped
    (decoded) in any interleaving. Popping what was never pushed (borrowing bits)
    is only done by a bits-back encoder that checks `valid_bits` first."""

    def __init__(self, data: bytes = b""):
        if len(data) % 4:
            raise ValueError("payload length is not a multiple of 4")
        words = np.frombuffer(data, dtype=np.uint32).copy()
        self._coder = constriction.stream.stack.AnsCoder(words) if len(words) else constriction.stream.stack.AnsCoder()

    def push(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        """Symbols pushed so that `pop(counts)` returns them in this order."""
        if len(symbols):
            self._coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _CATEGORICAL,
                                       np.ascontiguousarray(counts, dtype=np.float64))

    def pop(self, counts: np.ndarray) -> np.ndarray:
        """The symbols last pushed under these rows. (A stack that looks empty may still give back
        symbols pushed at almost no cost: pops are exact inverses of pushes either way.)"""
        if len(counts) == 0:
            return np.zeros(0, dtype=np.int32)
        return self._coder.decode(_CATEGORICAL, np.ascontiguousarray(counts, dtype=np.float64))

    def push_low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        _encode_low_bits(self._coder.encode_reverse, values, nbits)

    def pop_low_bits(self, nbits: np.ndarray) -> np.ndarray:
        return _decode_low_bits(self._coder.decode, nbits)

    @property
    def valid_bits(self) -> int:
        """Bits of information on the stack (what pops can take back)."""
        return int(self._coder.num_valid_bits())

    def is_empty(self) -> bool:
        return bool(self._coder.is_empty())

    def finish(self) -> bytes:
        return self._coder.get_compressed().tobytes()
