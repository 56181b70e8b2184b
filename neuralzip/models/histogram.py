"""Order-0 baseline: one static histogram per channel and chunk, sent with it.

Shows what prediction and context modelling add. Values are coded exactly
when the alphabet is small (up to 8 bits) and as bucket + low bits otherwise;
the histogram itself is sent as bucket symbols under a flat pmf.
"""

import numpy as np

from neuralzip.coding import buckets
from neuralzip.coding.stream import RangeDecoderStream
from neuralzip.models.base import RunCodec, Signal, decode_batch_limit, row_chunks, sub_batches
from neuralzip.coding.buckets import buckets_of, values_of, zigzag_array, unzigzag_array

CHUNK_VALUES = 1 << 20


class HistogramCodec(RunCodec):
    name = "histogram"
    summary = "order-0 histogram per channel (baseline, no prediction)"

    def __init__(self, kind: str):
        self.kind = kind

    def _spans(self, signal: Signal):
        rows = signal.shape[0]
        return row_chunks(rows, int(np.prod(signal.shape[1:])), CHUNK_VALUES)

    def _to_unsigned(self, x: np.ndarray, signal: Signal) -> np.ndarray:
        return zigzag_array(x) if signal.signed else x.astype(np.int64)

    @staticmethod
    def _exact(signal: Signal) -> bool:
        """Up to 8 bits every value has its own symbol; above, bucket + low bits."""
        return signal.bits <= 8

    def _alphabet(self, signal: Signal) -> int:
        if self._exact(signal):
            return 1 << (signal.bits + (1 if signal.signed else 0))
        return buckets.alphabet_size((1 << (signal.bits + 1)) - 1)

    def _symbols(self, values: np.ndarray, signal: Signal):
        if self._exact(signal):
            zeros = np.zeros(len(values), np.int64)
            return values, zeros, zeros
        return buckets_of(values)

    def _code_chunk(self, coder, block: np.ndarray, signal: Signal) -> None:
        channels = block.reshape(-1, block.shape[-1]).T
        for values in self._to_unsigned(channels, signal):
            sym, nlow, low = self._symbols(values, signal)
            hist = np.bincount(sym, minlength=self._alphabet(signal))
            _send_table(coder, hist)
            coder.symbols_iid(sym, hist)
            coder.low_bits(low, nlow)

    def _run(self, coder_factory, samples, signal, observe=None):
        chunks, bits = [], 0.0
        for a, b in self._spans(signal):
            coder = coder_factory()
            self._code_chunk(coder, samples[a:b], signal)
            chunks.append(coder.finish())
            bits += coder.bits
        return {}, chunks, bits

    def bits_per_dim(self, samples, signal):
        out = np.zeros(signal.shape, np.float64)
        for a, b in self._spans(signal):
            block = samples[a:b]
            flat = out[a:b].reshape(-1, signal.shape[-1])
            for c, values in enumerate(self._to_unsigned(block.reshape(-1, block.shape[-1]).T, signal)):
                sym, nlow, _ = self._symbols(values, signal)
                hist = np.bincount(sym, minlength=self._alphabet(signal)).astype(np.float64)
                flat[:, c] = -np.log2(hist[sym] / hist.sum()) + nlow
            out[a:b] = flat.reshape(block.shape)
        return out

    def check_params(self, params, signal, nchunks):
        """No parameters; one chunk per CHUNK_VALUES values' worth of whole rows."""
        from neuralzip.models.base import check_chunk_count

        rows, size = signal.shape[0], int(np.prod(signal.shape[1:], dtype=object))
        per = max(1, CHUNK_VALUES // max(1, size))
        check_chunk_count(-(-rows // per) if rows else 1, nchunks)

    def decode_memory(self, params, signal):
        """One chunk's symbols, low bits and values (a few int64 arrays) at a time."""
        size = int(np.prod(signal.shape[1:], dtype=object))
        return 96 * min(signal.shape[0], max(1, CHUNK_VALUES // max(1, size))) * size + (1 << 20)

    def decode(self, params, chunks, signal):
        dtype = np.int32 if signal.signed else (np.uint16 if signal.bits > 8 else np.uint8)
        out = np.zeros(signal.shape, dtype=dtype)
        spans = self._spans(signal)
        if len(spans) != len(chunks):
            raise ValueError("chunk count does not match the image/recording size")
        for (a, b), data in zip(spans, chunks):
            dec = RangeDecoderStream(data)
            view = out[a:b].reshape(-1, signal.shape[-1])
            n = view.shape[0]
            for c in range(view.shape[1]):
                sym = _decode_iid(dec, _receive_table(dec, self._alphabet(signal)), n)
                vals = sym.astype(np.int64) if self._exact(signal) else values_of(sym, dec)
                view[:, c] = unzigzag_array(vals) if signal.signed else vals
        return out


def _decode_iid(dec: RangeDecoderStream, counts: np.ndarray, n: int) -> np.ndarray:
    parts = sub_batches(n, decode_batch_limit())
    return np.concatenate([dec.symbols_iid(counts, b - a) for a, b in parts] or [np.zeros(0, np.int32)])


_TABLE_ALPHABET = buckets.alphabet_size((1 << 32) - 1)
_FLAT = np.ones(_TABLE_ALPHABET)


def _send_table(coder, hist: np.ndarray) -> None:
    sym, nlow, low = buckets_of(hist.astype(np.int64))
    coder.symbols_iid(sym, _FLAT)
    coder.low_bits(low, nlow)


def _receive_table(dec: RangeDecoderStream, alphabet: int) -> np.ndarray:
    return values_of(dec.symbols_iid(_FLAT, alphabet), dec)
