"""The colour table: a photo's colours repeat, and the coder learns which.

In some photos a pixel's first two channels nearly fix its third: film scans decoded from a
photo-CD's (Y, C1, C2) hold a few tens of thousands of distinct colours in 0.4 megapixels, and
given a pixel's exact R and G its B has 0.7-1.9 bits of entropy over the photo (3-4 bits in the
photos of images/train). No prediction from neighbours sees that: it is a table, not a trend.

So for the second and third channel of an 8-bit image, each chunk keeps a table (the kernel,
neuralzip/kernels/colour_table.pyx) of how often each value came with each combination of the
earlier channels' values at the pixel (the key: R for G, R and G for B, or Y and Cb for Cr in a
chunk coded in YCbCr). Where the pixel's key was seen before, a binary flag first says whether
the value is the key's most frequent one, m: the flag has adaptive counts per context (how often
the key was seen, m's share of that, and the model's own price of m, so that where the table
knows no more than the model the flag learns the model's odds). A hit codes nothing more; a miss
codes the value with the model's rows, m's mass taken out of them (its bucket scaled down by its
share, and in m's bucket the low bits uniform over the others). Photos whose colours do not
repeat lose only what the flags learn (benchmarks/experiments/colour_table.py).

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
# to code and decode); see benchmarks/experiments/colour_table.py.
THIRD_HITS_MIN = (1, 4)  # a quarter of the pixels
SECOND_HITS_MIN = (9, 20)


def applies(bits: int, channels: int) -> bool:
    """Whether images of this depth and channel count have a colour table."""
    return bits == 8 and channels >= 3


def decode_memory(step: int, nbk: int) -> int:
    """A chunk's table (its counts at most: zero pages until a key is met) and a step's arrays."""
    return _k.KEY_COUNT * ((_k.MAX_VALUE + 1) * 2 + 3 * 8) + step * (nbk * 8 + 12 * 8)


def repeats(img: np.ndarray) -> bool:
    """Whether a chunk's colours repeat enough for the table (the encoder's choice)."""
    second, third = _k.repeats(np.ascontiguousarray(img, np.int64))
    n = img.shape[0] * img.shape[1]
    return third * THIRD_HITS_MIN[1] >= THIRD_HITS_MIN[0] * n or second * SECOND_HITS_MIN[1] >= SECOND_HITS_MIN[0] * n


class ColourTableStep:
    """One chunk's table, coding the steps of its channels 1 and 2 (with rows over nbk buckets)."""

    def __init__(self, n_max: int, nbk: int):
        self.table = _k.ColourTable()
        # the rows are scaled by 2^shift before m's share is taken out of its bucket (integers stay integers)
        self.shift = int(buckets.low_bits_of_bucket(nbk - 1))
        self.m, self.ctx, self.sym_m, self.nlow_m, self.low_m, self.has, self.rest, self.plain, self.inner = \
            np.empty((9, n_max), np.int64)
        self.hit = np.empty(n_max, np.uint8)
        self.flag_rows = np.empty((n_max, 2), np.float64)
        self.used = np.empty((n_max, nbk), np.float64)

    def _flags(self, img, c, sy, sx, rows, view, fine) -> int:
        return _k.lookup(self.table, img, c, sy, sx, rows, view.preds, view.flip, fine, self.m, self.ctx, self.sym_m,
                         self.nlow_m, self.low_m, self.has, self.flag_rows)

    def _split(self, rows, n, nh, hits) -> int:
        return _k.split(rows, n, self.has, np.ascontiguousarray(hits, np.int32), self.sym_m, self.nlow_m, self.shift,
                        self.hit, self.rest, self.used)

    def encode(self, coder, img, c, sy, sx, rows, view, fine, sym, nlow, low, price=False):
        """Code the step's values of channel c (their symbols sym, nlow, low as residual_symbols gives
        them). With price, -> each pixel's bits less what the rows alone would have cost it."""
        n = len(sy)
        nh = self._flags(img, c, sy, sx, rows, view, fine)
        has = self.has[:nh]
        hits = (sym[has] == self.sym_m[has]) & (low[has] == self.low_m[has])
        coder.symbols(hits.astype(np.int32), self.flag_rows[:nh])
        nr = self._split(rows, n, nh, hits)
        rest, used = self.rest[:nr], self.used[:nr]
        coder.symbols(sym[rest], used)
        npl, ni = _k.low_sets(sym, n, self.hit, self.sym_m, self.nlow_m, self.plain, self.inner)
        plain, inner = self.plain[:npl], self.inner[:ni]
        coder.low_bits(low[plain], nlow[plain])
        sizes = (1 << self.nlow_m[inner]) - 1
        coder.uniform(low[inner] - (low[inner] > self.low_m[inner]), sizes)
        if not price:
            return None
        bits = np.zeros(n)
        flags = self.flag_rows[:nh]
        bits[has] = -np.log2(flags[np.arange(nh), hits.astype(np.int64)] / flags.sum(1))
        bits[rest] += symbol_bits(sym[rest], used)
        bits[plain] += nlow[plain]
        bits[inner] += np.log2(sizes)
        return bits - (symbol_bits(sym[:n], rows) + nlow[:n])

    def decode(self, decoder, img, c, sy, sx, rows, view, fine, sym, nlow, low, limit):
        """Decode the step's symbols of channel c into sym, nlow, low (as the encoder's)."""
        n = len(sy)
        nh = self._flags(img, c, sy, sx, rows, view, fine)
        nr = self._split(rows, n, nh, decoder.symbols(self.flag_rows[:nh]))
        rest = self.rest[:nr]
        for p, q in sub_batches(nr, limit):
            sym[rest[p:q]] = decoder.symbols(self.used[p:q])
        hit = self.hit[:n] == 1
        sym[:n][hit] = self.sym_m[:n][hit]
        buckets.low_bit_counts(sym[:n], nlow)
        npl, ni = _k.low_sets(sym, n, self.hit, self.sym_m, self.nlow_m, self.plain, self.inner)
        plain, inner = self.plain[:npl], self.inner[:ni]
        for p, q in sub_batches(npl, limit):
            low[plain[p:q]] = decoder.low_bits(nlow[plain[p:q]])
        j = decoder.uniform((1 << self.nlow_m[inner]) - 1)
        low[inner] = j + (j >= self.low_m[inner])
        low[:n][hit] = self.low_m[:n][hit]

    def learn(self, img, c, sy, sx):
        """After the step's values of channel c are in img."""
        _k.learn(self.table, img, c, sy, sx, self.m, self.ctx)
