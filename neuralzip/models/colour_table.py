"""The colour table: a photo's colours repeat, and the coder learns which.

In some photos a pixel's first two channels nearly fix its third. The Kodak film scans (decoded
from a photo-CD, measured outside the repository) hold 13,000 to 72,000 distinct colours in 0.4
megapixels, and given a pixel's exact R and G its B has 0.7-1.9 bits of entropy over the photo;
the Wikipedia photos of images/train we counted have 2.9-4.0 bits, though some (wiki_015,
wiki_016) repeat their colours too. No prediction from neighbours sees that: it is a table, not a
trend.

So for the second and third channel of an 8-bit image, each chunk keeps a table (the kernel,
neuralzip/kernels/colour_table.pyx) of how often each value came with each combination of the
earlier channels' values at the pixel (the key: R for G, R and G for B). Where the pixel's key was
seen before, binary flags first say whether the value is the key's most frequent one, m1, and if
not, whether it is the next most frequent, m2 (on a crop of wiki_015 of images/train, m1 is right
for 56% of the pixels' B, m2 for 13% more). Each flag has adaptive counts per context: its rank,
how often the key was seen, the candidate's share of that, and the model's own price of the
candidate, so that where the table knows no more than the model the flag learns the model's odds.
A hit codes nothing more; a value that missed both codes with the model's rows, the missed
candidates' mass taken out of them (each candidate's bucket less its share, and in such a bucket
the low bits uniform over its other values). Photos whose colours do not repeat lose only what
the flags learn (benchmarks/experiments/colour_table.py), and their time: so the encoder uses the
table only in chunks whose colours repeat (`repeats`).

Members record params "colour_table": 1 (8-bit images of 3 or more channels), and then each chunk
a byte: 1 where the encoder chose the table for it (`repeats`), 0 where not. Files without the
param decode without the table.
"""

import numpy as np

from neuralzip.coding import buckets
from neuralzip.coding.stream import symbol_bits
from neuralzip.kernels import colour_table as _k
from neuralzip.models.base import sub_batches

FLAGGED = 1  # params "colour_table"
CHANNELS = (1, 2)  # the channels it codes (their keys: the channels before them)


# The encoder's choice per chunk (a byte of the chunk says it): the table codes a chunk whose
# colours repeat, where so many of its pixels' third channel (or second) were already the key's
# most frequent value when they came, in raster order (`_k.repeats`, no model: tens of milliseconds
# a megapixel). Elsewhere what the flags gain is small and their time is not (about a third more
# to code and decode, timed in process on a crop of wiki_004 with one candidate, the table forced on). The thresholds were set on crops of images/train photos, between those that
# gained and those that did not; on the whole photos (benchmarks/colour_table.py) six Wikipedia
# photos of images/train take it, at 26-37% of their third channel repeating: wiki_015 -2.0%,
# wiki_016 -1.8%, wiki_006 -1.0%, wiki_001 -0.3%, wiki_009 -0.1%, wiki_030 +0.2%. A chunk coded
# in YCbCr (a decoded JPEG) never takes it: its colours repeat as the JPEG's chroma made them, and
# on a crop of urban_img_027 the table lost 0.35%.
THIRD_HITS_MIN = (1, 4)  # a quarter of the pixels
SECOND_HITS_MIN = (9, 20)


def applies(bits: int, channels: int) -> bool:
    """Whether images of this depth and channel count have a colour table."""
    return bits == 8 and channels >= 3


def decode_memory(step: int, nbk: int) -> int:
    """A chunk's table (its counts at most: zero pages until a key is met; each key's total and
    candidates) and a step's arrays (the rows less the missed candidates, 20 numbers a pixel)."""
    return _k.KEY_COUNT * ((_k.MAX_VALUE + 1) * 2 + (1 + _k.CANDIDATES) * 8) + step * (nbk + 20) * 8


def repeats(img: np.ndarray) -> bool:
    """Whether a chunk's colours repeat enough for the table (the encoder's choice)."""
    second, third = _k.repeats(np.ascontiguousarray(img, np.int64))
    n = img.shape[0] * img.shape[1]
    return third * THIRD_HITS_MIN[1] >= THIRD_HITS_MIN[0] * n or second * SECOND_HITS_MIN[1] >= SECOND_HITS_MIN[0] * n


class ColourTableStep:
    """One chunk's table, coding the steps of its channels 1 and 2 (with rows over nbk buckets)."""

    def __init__(self, n_max: int, nbk: int):
        self.table = _k.ColourTable()
        # the rows are scaled by 2^shift before a candidate's share is taken out of its bucket
        # (integers stay integers)
        self.shift = int(buckets.low_bits_of_bucket(nbk - 1))
        self.m, self.ctx, self.sym_m, self.nlow_m, self.low_m = np.empty((5, _k.CANDIDATES, n_max), np.int64)
        self.state, self.excluded, self.has, self.rest, self.plain, self.inner, self.sizes, self.index = \
            np.empty((8, n_max), np.int64)
        self.flag_rows = np.empty((n_max, 2), np.float64)
        self.used = np.empty((n_max, nbk), np.float64)

    def _flags(self, code, img, c, sy, sx, rows, view, fine):
        """Each rank's flags in turn, `code(rank, pixels, flag rows)` coding them -> their hits."""
        n = len(sy)
        _k.lookup(self.table, img, c, sy, sx, rows, view.preds, view.flip, fine, self.m, self.ctx, self.sym_m,
                  self.nlow_m, self.low_m, self.state, self.excluded)
        for rank in range(_k.CANDIDATES):
            nh = _k.flags(self.table, rank, n, self.m, self.ctx, self.state, self.has, self.flag_rows)
            hits = np.ascontiguousarray(code(rank, self.has[:nh], self.flag_rows[:nh]), np.int32)
            _k.settle(rank, self.has, hits, self.state, self.excluded)
        return _k.split(rows, n, self.state, self.excluded, self.sym_m, self.nlow_m, self.shift, self.rest, self.used)

    def _low_sets(self, sym, nr):
        npl, ni = _k.low_sets(sym, self.rest[:nr], self.excluded, self.sym_m, self.nlow_m, self.plain, self.inner,
                              self.sizes)
        return self.plain[:npl], self.inner[:ni], self.sizes[:ni]

    def encode(self, coder, img, c, sy, sx, rows, view, fine, sym, nlow, low, price=False):
        """Code the step's values of channel c (their symbols sym, nlow, low as residual_symbols gives
        them). With price, -> each pixel's bits less what the rows alone would have cost it."""
        n = len(sy)
        flag_bits = np.zeros(n) if price else None

        def code(rank, has, flag_rows):
            hits = (sym[has] == self.sym_m[rank, has]) & (low[has] == self.low_m[rank, has])
            coder.symbols(hits.astype(np.int32), flag_rows)
            if price:
                flag_bits[has] -= np.log2(flag_rows[np.arange(len(has)), hits.astype(np.int64)] / flag_rows.sum(1))
            return hits

        nr = self._flags(code, img, c, sy, sx, rows, view, fine)
        rest, used = self.rest[:nr], self.used[:nr]
        coder.symbols(sym[rest], used)
        plain, inner, sizes = self._low_sets(sym, nr)
        coder.low_bits(low[plain], nlow[plain])
        index = self.index[:len(inner)]
        _k.inner_index(inner, sym, low, self.excluded, self.sym_m, self.low_m, index)
        coder.uniform(index, sizes)
        if not price:
            return None
        bits = flag_bits
        bits[rest] += symbol_bits(sym[rest], used)
        bits[plain] += nlow[plain]
        bits[inner] += np.log2(sizes)
        return bits - (symbol_bits(sym[:n], rows) + nlow[:n])

    def decode(self, decoder, img, c, sy, sx, rows, view, fine, sym, nlow, low, limit):
        """Decode the step's symbols of channel c into sym, nlow, low (as the encoder's)."""
        n = len(sy)
        nr = self._flags(lambda rank, has, flag_rows: decoder.symbols(flag_rows) == 1, img, c, sy, sx, rows, view,
                         fine)
        rest = self.rest[:nr]
        for p, q in sub_batches(nr, limit):
            sym[rest[p:q]] = decoder.symbols(self.used[p:q])
        state = self.state[:n]
        for rank in range(_k.CANDIDATES):
            hit = np.flatnonzero(state == rank)
            sym[hit], low[hit] = self.sym_m[rank, hit], self.low_m[rank, hit]
        buckets.low_bit_counts(sym[:n], nlow)
        plain, inner, sizes = self._low_sets(sym, nr)
        for p, q in sub_batches(len(plain), limit):
            low[plain[p:q]] = decoder.low_bits(nlow[plain[p:q]])
        _k.inner_low(inner, sym, np.ascontiguousarray(decoder.uniform(sizes), np.int64), self.excluded, self.sym_m,
                     self.low_m, low)

    def learn(self, img, c, sy, sx):
        """After the step's values of channel c are in img."""
        _k.learn(self.table, img, c, sy, sx, self.m, self.ctx)
