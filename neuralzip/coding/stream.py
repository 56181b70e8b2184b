"""Glue between integer pmfs and the entropy coders.

Models hand over integer-valued count tables (exact in any float format) and
both sides quantize them as constriction's ``Categorical(perfect=False)`` does,
so both rebuild the very same distribution. Raw low bits go through ``Uniform``
in pieces of at most 16 bits. The range coder keeps symbol order, so encoder and
decoder run the same loop in the same order. Range streams are written by the
kernels' encoder (the words constriction's RangeEncoder writes) and read by
constriction's RangeDecoder or the kernels' decoder; bits-back chains use
constriction's ANS stack.

``CostCoder`` runs a model without producing a stream and only adds up the
exact model's information content: that is the ``likelihood`` path.
"""

import constriction
import numpy as np

from neuralzip.kernels.coding import KernelRangeEncoder, information, join_pieces, split_pieces, uniform_information

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
    """Range-codes symbols under rows of counts, low-bit fields and uniform values into 32-bit
    words: the kernels' encoder (kernels/range_encoder.pxd), which writes the words constriction's
    RangeEncoder writes for the same calls, in fewer and cheaper calls. With `tally` it also adds
    up the exact model's information content of what it codes into `bits`, as CostCoder does.
    `kernel` is the encoder itself, for kernels that code a step's values in one call."""

    def __init__(self, tally: bool = False):
        self.kernel = KernelRangeEncoder(tally)

    @property
    def bits(self) -> float:
        return self.kernel.bits

    def symbols(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        if len(symbols):
            self.kernel.symbols(np.ascontiguousarray(symbols, dtype=np.int32),
                                np.ascontiguousarray(counts, dtype=np.float64))

    def symbols_iid(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        """Symbols that all share one pmf (order-0 models)."""
        if len(symbols):
            self.kernel.symbols_iid(np.ascontiguousarray(symbols, dtype=np.int32),
                                    np.ascontiguousarray(counts, dtype=np.float64))
            if self.kernel.tally:
                self.kernel.bits += _iid_bits(symbols, counts)

    def low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        self.kernel.low_bits(np.ascontiguousarray(values, dtype=np.int64), np.ascontiguousarray(nbits, dtype=np.int64))

    def uniform(self, values: np.ndarray, sizes: np.ndarray) -> None:
        """Values each under a uniform distribution over sizes[i] values (2 <= sizes <= 2^PIECE_BITS)."""
        self.kernel.uniform(np.ascontiguousarray(values, dtype=np.int64), np.ascontiguousarray(sizes, dtype=np.int32))

    def finish(self) -> bytes:
        return self.kernel.finish()


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


def _iid_bits(symbols: np.ndarray, counts: np.ndarray) -> float:
    p = np.asarray(counts, dtype=np.float64)
    return -float(np.sum(np.log2(p[symbols] / p.sum())))


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
        self.bits += _iid_bits(symbols, counts)

    def low_bits(self, values: np.ndarray, nbits: np.ndarray) -> None:
        self.bits += float(np.sum(nbits))

    def uniform(self, values: np.ndarray, sizes: np.ndarray) -> None:
        self.bits += uniform_information(np.ascontiguousarray(sizes, dtype=np.int32))

    def finish(self) -> bytes:
        return b""


class TeeCoder(RangeEncoderStream):
    """Encodes and measures the exact model's information content in one pass."""

    def __init__(self):
        super().__init__(tally=True)


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
