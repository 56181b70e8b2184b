"""Negative control for the exact-decode test: a deliberately float-path model.

A small float32 MLP (context of the row above -> softmax over 256 values)
whose probabilities go straight to the coder. A float matmul rounds
differently with the number of rows it is run on, so decoding with another
batch size rebuilds slightly different pmfs: the exact-decode test must catch
it. Registered only by the tests, never shipped.
"""

import numpy as np

from neuralzip.coding.stream import CostCoder, RangeDecoderStream, TeeCoder
from neuralzip.models import register
from neuralzip.models.base import Codec, Encoded, decode_batch_limit, sub_batches

_rng = np.random.default_rng(42)
W1 = _rng.normal(0, 0.02, (3, 48)).astype(np.float32)
B1 = _rng.normal(0, 0.5, 48).astype(np.float32)
W2 = _rng.normal(0, 0.5, (48, 256)).astype(np.float32)


def _pmfs(above: np.ndarray) -> np.ndarray:
    ctx = np.stack([above, np.roll(above, 1), np.roll(above, -1)], axis=1).astype(np.float32)
    h = np.tanh(ctx @ W1 + B1)
    logits = h @ W2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float64)


class FloatControlCodec(Codec):
    name = "float-control"
    kind = "image"
    summary = "test-only float model (must fail the exact-decode test)"

    def _rows(self, img, coder, decoder):
        h, w = img.shape[:2]
        limit = decode_batch_limit() if decoder is not None else 0
        for y in range(h):
            above = img[y - 1, :, 0] if y else np.zeros(w, np.int64)
            for a, b in sub_batches(w, limit):
                pmf = _pmfs(above)[a:b] if limit == 0 else _pmfs(above[a:b])
                if decoder is None:
                    coder.symbols(img[y, a:b, 0].astype(np.int32), pmf)
                else:
                    img[y, a:b, 0] = decoder.symbols(pmf)

    def encode(self, samples, signal):
        coder = TeeCoder()
        self._rows(samples.astype(np.int64), coder, None)
        return Encoded({}, [coder.finish()], coder.bits, coder.bits)

    def likelihood(self, samples, signal):
        coder = CostCoder()
        self._rows(samples.astype(np.int64), coder, None)
        return coder.bits, coder.bits

    def bits_per_dim(self, samples, signal):
        raise NotImplementedError("the negative control does not explain itself")

    def decode(self, params, chunks, signal):
        img = np.zeros(signal.shape, np.int64)
        self._rows(img, None, RangeDecoderStream(chunks[0]))
        return img.astype(np.uint8)


register(FloatControlCodec())
