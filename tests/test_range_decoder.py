"""The kernels' range decoder (neuralzip/kernels/range_decoder.pxd, through KernelRangeDecoder)
against constriction's.

A stream is written by RangeEncoderStream (the words constriction's encoder writes:
test_range_encoder.py); the kernel must decode from it exactly the symbols constriction's
RangeDecoder decodes, under the right rows and under wrong ones, from whole, damaged and truncated
streams alike; the same for raw low-bit fields (uniform pieces) and uniform values of any size, and
for all three interleaved in one stream."""

import numpy as np
import pytest

from neuralzip.coding.stream import RangeDecoderStream, RangeEncoderStream
from neuralzip.kernels.coding import KernelRangeDecoder


def range_decode_rows(words, rows):
    return KernelRangeDecoder(np.ascontiguousarray(words, np.uint32).tobytes()).symbols(rows)


def range_decode_low_bit_fields(words, nbits):
    return KernelRangeDecoder(np.ascontiguousarray(words, np.uint32).tobytes()).low_bits(nbits)


def random_rows(rng, n, width, peaked_share=0.2, peak=2.0 ** 36):
    """Integer counts as the models make them: small and huge, some zero (every symbol keeps a
    slot anyway), a share of the rows dominated by one symbol (by `peak`)."""
    rows = rng.integers(0, 50, (n, width)).astype(np.float64)
    rows[rng.random(n) < 0.2] *= 2.0 ** 30
    peaked = rng.random(n) < peaked_share
    rows[peaked, rng.integers(0, width, peaked.sum())] += peak
    rows[rows.sum(axis=1) == 0, 0] = 1
    return rows


def draw(rng, rows):
    p = rows + 1e-3
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) < rng.random((len(rows), 1))).sum(axis=1).clip(0, rows.shape[1] - 1).astype(np.int32)


def encode(symbols, rows):
    enc = RangeEncoderStream()
    enc.symbols(symbols, rows)
    return np.frombuffer(enc.finish(), np.uint32)


def constriction_decode(words, rows):
    """constriction's answer, or None where it refuses the stream."""
    try:
        return RangeDecoderStream(words.tobytes()).symbols(rows)
    except Exception:  # constriction's own error types: only "refused" matters here
        return None


def kernel_decode(words, rows):
    try:
        return range_decode_rows(np.ascontiguousarray(words, np.uint32), rows)
    except ValueError:
        return None


@pytest.mark.parametrize("n,width", [(0, 4), (1, 2), (2, 3), (7, 40), (300, 2), (5000, 25), (20000, 58)])
def test_decodes_what_constriction_encoded(n, width):
    rng = np.random.default_rng(n * 131 + width)
    rows = random_rows(rng, n, width)
    symbols = draw(rng, rows)
    words = encode(symbols, rows)
    got = range_decode_rows(words, rows)
    assert np.array_equal(got, symbols)
    assert np.array_equal(got, RangeDecoderStream(words.tobytes()).symbols(rows))


def test_wrong_rows_decode_as_constriction_decodes_them():
    """Negative control: with one count changed early on, the symbols come out wrong or the stream is
    refused (so the test above can fail), and both decoders still agree symbol for symbol."""
    rng = np.random.default_rng(7)
    rows = random_rows(rng, 4000, 20)
    symbols = draw(rng, rows)
    words = encode(symbols, rows)
    wrong = rows.copy()
    wrong[3, symbols[3]] += 1000 + rows[3].sum()
    for n in (300, 4000):  # (the whole stream is refused at some point; its first 300 symbols are not)
        ours, theirs = kernel_decode(words, wrong[:n]), constriction_decode(words, wrong[:n])
        assert (ours is None) == (theirs is None)
        assert ours is None or (np.array_equal(ours, theirs) and not np.array_equal(ours, symbols[:n]))
    assert kernel_decode(words, wrong[:300]) is not None


@pytest.mark.parametrize("seed", range(12))
def test_damaged_and_truncated_streams_as_constriction(seed):
    """Flipped bits, cut and lengthened streams: the same symbols as constriction, or both refuse."""
    rng = np.random.default_rng(100 + seed)
    rows = random_rows(rng, 3000, int(rng.integers(2, 40)))
    words = encode(draw(rng, rows), rows).copy()
    if seed % 3 == 0:
        words[rng.integers(0, len(words))] ^= np.uint32(1) << np.uint32(rng.integers(0, 32))
    elif seed % 3 == 1:
        words = words[:int(rng.integers(0, len(words)))]
    else:
        words = np.concatenate([words, rng.integers(0, 2 ** 32, 5, dtype=np.uint64).astype(np.uint32)])
    ours, theirs = kernel_decode(words, rows), constriction_decode(words, rows)
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert np.array_equal(ours, theirs)


def test_refuses_rows_that_are_no_distribution():
    words = encode(np.array([1], np.int32), np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError):
        range_decode_rows(words, np.zeros((1, 3)))
    with pytest.raises(ValueError):
        range_decode_rows(words, np.ones((1, 1)))


def low_bit_fields(rng, n):
    nbits = rng.integers(0, 61, n)
    nbits[rng.random(n) < 0.3] = 0
    values = np.array([int(rng.integers(0, 2 ** int(b))) if b else 0 for b in nbits], np.int64)
    return values, nbits.astype(np.int64)


def encode_low_bits(values, nbits):
    enc = RangeEncoderStream()
    enc.low_bits(values, nbits)
    return np.frombuffer(enc.finish(), np.uint32)


@pytest.mark.parametrize("n", [0, 1, 7, 3000])
def test_low_bit_fields_decode_as_constriction_encoded_them(n):
    """Fields of 0 to 60 bits, cut into uniform pieces of at most 16 bits (the last one narrower)."""
    rng = np.random.default_rng(500 + n)
    values, nbits = low_bit_fields(rng, n)
    words = encode_low_bits(values, nbits)
    got = range_decode_low_bit_fields(words, nbits)
    assert np.array_equal(got, values)
    assert np.array_equal(got, RangeDecoderStream(words.tobytes()).low_bits(nbits))


@pytest.mark.parametrize("seed", range(6))
def test_damaged_low_bit_streams_and_wrong_widths_as_constriction(seed):
    """Negative control and damage: fields read at the wrong widths, flipped bits, cut streams: the
    same values as constriction or both refuse, and never the original values where widths differ."""
    rng = np.random.default_rng(600 + seed)
    values, nbits = low_bit_fields(rng, 2000)
    words = encode_low_bits(values, nbits).copy()
    widths = nbits
    if seed % 3 == 0:
        widths = nbits.copy()
        widths[np.flatnonzero(nbits)[0]] += 1
    elif seed % 3 == 1:
        words[rng.integers(0, len(words))] ^= np.uint32(1) << np.uint32(rng.integers(0, 32))
    else:
        words = words[:int(rng.integers(0, len(words)))]
    try:
        ours = range_decode_low_bit_fields(words, widths)
    except ValueError:
        ours = None
    try:
        theirs = RangeDecoderStream(words.tobytes()).low_bits(widths)
    except Exception:  # constriction's own error types
        theirs = None
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert np.array_equal(ours, theirs)
        if seed % 3 == 0:
            assert not np.array_equal(ours, values)


def test_refuses_counts_that_are_not_integers():
    """The kernel's sums are exact only for integer counts (constriction's may round otherwise)."""
    words = encode(np.array([1], np.int32), np.array([[1.0, 1.0]]))
    for row in ([1.5, 1.0], [-1.0, 3.0], [2.0 ** 53, 1.0], [2.0 ** 52, 2.0 ** 52], [np.nan, 1.0], [np.inf, 1.0]):
        with pytest.raises(ValueError, match="counts"):
            range_decode_rows(words, np.array([row]))


@pytest.mark.parametrize("seed", range(4))
def test_symbols_low_bits_and_uniform_values_interleaved(seed):
    """One stream of batches of symbols, low-bit fields and uniform values of any size (2..2^16, as
    the colour table's inner low bits): one KernelRangeDecoder decodes it batch by batch as
    constriction does; a batch read as the wrong kind (negative control) no longer gives it back."""
    rng = np.random.default_rng(700 + seed)
    enc = RangeEncoderStream()
    batches = []
    for _ in range(30):
        kind, n = int(rng.integers(0, 3)), int(rng.integers(0, 40))
        if kind == 0:
            rows = random_rows(rng, n, int(rng.integers(2, 30)))
            values = draw(rng, rows)
            enc.symbols(values, rows)
            batches.append((kind, values, rows))
        elif kind == 1:
            values, nbits = low_bit_fields(rng, n)
            enc.low_bits(values, nbits)
            batches.append((kind, values, nbits))
        else:
            sizes = rng.integers(2, 2 ** 16 + 1, n).astype(np.int32)
            values = (rng.random(n) * sizes).astype(np.int32)
            enc.uniform(values, sizes)
            batches.append((kind, values, sizes))
    data = enc.finish()

    def decode_all(dec, swap=None):
        out = []
        for j, (kind, values, arg) in enumerate(batches):
            if j == swap:  # read a uniform batch's values as low-bit fields of 16 bits
                out.append(dec.low_bits(np.full(len(arg), 16, np.int64)))
            else:
                out.append([dec.symbols, dec.low_bits, dec.uniform][kind](arg))
        return out

    ours, theirs = decode_all(KernelRangeDecoder(data)), decode_all(RangeDecoderStream(data))
    for (kind, values, _), a, b in zip(batches, ours, theirs):
        assert np.array_equal(a, values) and np.array_equal(a, b)
    swap = next((j for j, (kind, values, _) in enumerate(batches) if kind == 2 and len(values) > 3), None)
    if swap is not None:
        try:
            wrong = decode_all(KernelRangeDecoder(data), swap)
        except ValueError:  # refused later on: also not the values
            return
        assert not all(np.array_equal(a, values) for (_, values, _), a in zip(batches, wrong))


@pytest.mark.parametrize("seed", range(3))
def test_residuals_in_one_call_as_symbols_then_low_bits(seed):
    """KernelRangeDecoder.residuals (classic's step: bucket symbols, then their low bits) decodes
    what constriction decodes with symbols and then low_bits at the buckets' widths; a damaged
    stream is refused by both, or gives the same values."""
    from neuralzip.coding.buckets import buckets_of, low_bit_counts

    rng = np.random.default_rng(900 + seed)
    enc = RangeEncoderStream()
    steps = []
    for _ in range(20):
        n = int(rng.integers(0, 60))
        values = rng.integers(0, 2 ** int(rng.integers(1, 17)), n).astype(np.int64)
        sym, nlow, low = buckets_of(values)
        rows = random_rows(rng, n, max(int(sym.max()) + 1 if n else 2, 2) + int(rng.integers(0, 5)))
        enc.symbols(sym, rows)
        enc.low_bits(low, nlow)
        steps.append((sym, nlow, low, rows))
    words = np.frombuffer(enc.finish(), np.uint32).copy()
    if seed == 2:  # damaged
        words[len(words) // 2] ^= np.uint32(1 << 7)

    def kernel_steps():
        dec = KernelRangeDecoder(words.tobytes())
        out = []
        for sym, _, _, rows in steps:
            n = len(sym)
            got = np.zeros(n, np.int32), np.zeros(n, np.int64), np.zeros(n, np.int64)
            dec.residuals(rows, *got)
            out.append(got)
        return out

    def constriction_steps():
        dec = RangeDecoderStream(words.tobytes())
        out = []
        for _, _, _, rows in steps:
            sym = dec.symbols(rows)
            nlow = low_bit_counts(sym)
            out.append((sym, nlow, dec.low_bits(nlow)))
        return out

    try:
        ours = kernel_steps()
    except ValueError:
        ours = None
    try:
        theirs = constriction_steps()
    except Exception:  # constriction's own error types
        theirs = None
    assert (ours is None) == (theirs is None)
    if ours is None:
        return
    for (sym, nlow, low, _), got, want in zip(steps, ours, theirs):
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        if seed < 2:
            assert np.array_equal(got[0], sym) and np.array_equal(got[1], nlow) and np.array_equal(got[2], low)
    if seed == 2:  # negative control: the damage shows
        assert not all(np.array_equal(got[2], low) and np.array_equal(got[0], sym)
                       for (sym, _, low, _), got in zip(steps, ours))
