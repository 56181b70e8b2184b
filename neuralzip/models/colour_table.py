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

from neuralzip.coding.stream import symbol_bits
from neuralzip.kernels import colour_table as _k

FLAGGED = 1  # params "colour_table"
CHANNELS = (1, 2)  # the channels it codes (their keys: the channels before them)


# The encoder's choice per chunk (a byte of the chunk says it): the table codes a chunk whose
# colours repeat, where so many of its pixels' third channel (or second) were already the key's
# most frequent value when they came, in raster order (`_k.repeats`, no model: tens of milliseconds
# a megapixel). Elsewhere what the flags gain is small and their time is not: forced on a 768x512
# crop of wiki_004 (images/valid), 0.03% fewer bytes for 24% more time to code and 15% more to
# decode (in process, one thread, median of 5; stop 58's steps in Python cost about a third more
# to each). The thresholds were set on crops of images/train photos, between those that
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
    """A chunk's table (its counts at most: zero pages until a key is met; each key's row, total
    and candidates) and a step's arrays (the kernel's TableStep: the rows less the missed candidates and
    WORK_PER_PIXEL numbers a pixel)."""
    return _k.KEY_COUNT * ((_k.MAX_VALUE + 1) * 2 + 4 + (1 + _k.CANDIDATES) * 8) + step * (nbk + _k.WORK_PER_PIXEL) * 8


def repeats(img: np.ndarray) -> bool:
    """Whether a chunk's colours repeat enough for the table (the encoder's choice)."""
    second, third = _k.repeats(np.ascontiguousarray(img, np.int64))
    n = img.shape[0] * img.shape[1]
    return third * THIRD_HITS_MIN[1] >= THIRD_HITS_MIN[0] * n or second * SECOND_HITS_MIN[1] >= SECOND_HITS_MIN[0] * n


class ColourTableStep:
    """One chunk's table, coding the steps of its channels 1 and 2 (with rows over nbk buckets): the
    kernel works out each step (_k.encode_step, _k.decode_step, which decodes inside the kernel and
    so needs the kernels' range decoder for the chunk, KernelRangeDecoder)."""

    def __init__(self, n_max: int, nbk: int):
        self.table = _k.ColourTable()
        self.work = _k.TableStep(n_max, nbk)
        w = self.work  # numpy views of the kernel's arrays, for the coder calls
        self.has, self.hits, self.flag_rows = np.asarray(w.has), np.asarray(w.hits), np.asarray(w.flag_rows)
        self.rest, self.rest_symbols, self.used = np.asarray(w.rest), np.asarray(w.rest_symbols), np.asarray(w.used)
        self.plain, self.plain_low, self.plain_nlow = np.asarray(w.plain), np.asarray(w.plain_low), np.asarray(w.plain_nlow)
        self.inner, self.index, self.sizes = np.asarray(w.inner), np.asarray(w.index), np.asarray(w.sizes)

    def encode(self, coder, img, c, sy, sx, rows, view, fine, sym, nlow, low, price=False):
        """Code the step's values of channel c (their symbols sym, nlow, low as residual_symbols gives
        them): the flags rank by rank, then the model's symbols, plain low bits and inner indices.
        With price, -> each pixel's bits less what the rows alone would have cost it."""
        kernel = getattr(coder, "kernel", None)  # a range encoder's: the step is coded in the kernel's call
        flagged, nr, npl, ni = _k.encode_step(self.table, self.work, img, c, sy, sx, rows, view.preds, view.flip,
                                              fine, sym, nlow, low, kernel)
        if kernel is None:
            for rank, nh in enumerate(flagged):
                coder.symbols(self.hits[rank, :nh], self.flag_rows[rank, :nh])
            coder.symbols(self.rest_symbols[:nr], self.used[:nr])
            coder.low_bits(self.plain_low[:npl], self.plain_nlow[:npl])
            coder.uniform(self.index[:ni], self.sizes[:ni])
        if not price:
            return None
        n = len(sy)
        bits = np.zeros(n)
        for rank, nh in enumerate(flagged):
            bits[self.has[rank, :nh]] += symbol_bits(self.hits[rank, :nh], self.flag_rows[rank, :nh])
        bits[self.rest[:nr]] += symbol_bits(self.rest_symbols[:nr], self.used[:nr])
        bits[self.plain[:npl]] += self.plain_nlow[:npl]
        bits[self.inner[:ni]] += np.log2(self.sizes[:ni])
        return bits - (symbol_bits(sym[:n], rows) + nlow[:n])

    def decode(self, decoder, img, c, sy, sx, rows, view, fine, sym, nlow, low):
        """Decode the step's symbols of channel c into sym, nlow, low (as the encoder's)."""
        _k.decode_step(self.table, self.work, decoder, img, c, sy, sx, rows, view.preds, view.flip, fine, sym, nlow,
                       low)

    def learn(self, img, c, sy, sx):
        """After the step's values of channel c are in img."""
        _k.learn(self.table, img, c, sy, sx, self.work.m, self.work.ctx)
