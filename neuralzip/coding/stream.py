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

CONSTRICTION_VERSION = "0.5.0"
PIECE_BITS = 16

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_UNIFORM = constriction.stream.model.Uniform()


def _pieces(nbits: np.ndarray):
    """Split each low-bit count into pieces of at most PIECE_BITS bits.
    -> (owner index of each piece, shift of each piece, size in bits of each)."""
    nbits = np.asarray(nbits, dtype=np.int64)
    npieces = (nbits + PIECE_BITS - 1) // PIECE_BITS
    owner = np.repeat(np.arange(len(nbits)), npieces)
    first = np.cumsum(npieces) - npieces
    k = np.arange(len(owner)) - np.repeat(first, npieces)
    shift = k * PIECE_BITS
    size = np.minimum(nbits[owner] - shift, PIECE_BITS)
    return owner, shift, size


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
        owner, shift, size = _pieces(nbits)
        if len(owner):
            vals = (np.asarray(values, dtype=np.int64)[owner] >> shift) & ((1 << size) - 1)
            self._enc.encode(vals.astype(np.int32), _UNIFORM, (1 << size).astype(np.int32))

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

    def low_bits(self, nbits: np.ndarray) -> np.ndarray:
        out = np.zeros(len(nbits), dtype=np.int64)
        owner, shift, size = _pieces(nbits)
        if len(owner):
            pieces = self._dec.decode(_UNIFORM, (1 << size).astype(np.int32)).astype(np.int64)
            np.add.at(out, owner, pieces << shift)
        return out


class CostCoder:
    """Stands in for an encoder; adds up -log2 p under the exact integer model."""

    def __init__(self):
        self.bits = 0.0

    def symbols(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        if len(symbols):
            counts = np.asarray(counts, dtype=np.float64)
            picked = counts[np.arange(len(symbols)), symbols]
            self.bits -= float(np.sum(np.log2(picked / counts.sum(axis=1))))

    def symbols_iid(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        p = np.asarray(counts, dtype=np.float64)
        self.bits -= float(np.sum(np.log2(p[symbols] / p.sum())))

    def low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        self.bits += float(np.sum(nbits))

    def finish(self) -> bytes:
        return b""


class TeeCoder:
    """Encodes and measures the exact model's information content in one pass."""

    def __init__(self):
        self.stream = RangeEncoderStream()
        self.cost = CostCoder()

    def symbols(self, symbols, counts):
        self.stream.symbols(symbols, counts)
        self.cost.symbols(symbols, counts)

    def symbols_iid(self, symbols, counts):
        self.stream.symbols_iid(symbols, counts)
        self.cost.symbols_iid(symbols, counts)

    def low_bits(self, values, nbits):
        self.stream.low_bits(values, nbits)
        self.cost.low_bits(values, nbits)

    def finish(self) -> bytes:
        return self.stream.finish()

