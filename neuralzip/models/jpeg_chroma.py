"""Chroma at half resolution: a JPEG that keeps its two chroma planes at half resolution across
and down (4:2:0, the default of phones, cameras and most encoders) or across only (4:2:2, many
cameras' own JPEGs).

The decoder (libjpeg-turbo, as Pillow, browsers and most tools use it) brings such a plane to full
resolution with its "fancy" upsampling, exact integer arithmetic. 4:2:2 ("h2v1"): each output
sample is 3/4 of the nearer half-resolution sample and 1/4 of the farther one, rounded with the
biases 1 (even output columns) and 2 (odd ones) over 4. 4:2:0 ("h2v2"): first down the columns,
3 x the nearer row + 1 x the farther, kept unrounded, then the same along the rows over 16, with the
biases 8 and 7. At the plane's edges the nearest sample stands in for the missing one. `upsample`
is that filter (kernels/jpeg_blocks.pyx), on a band of rows with the rows just above and below it
from the neighbouring bands, so that bands decode apart and join exactly.

The encoder goes the other way (`estimate_half`): from the full-resolution chroma it recovers the
half-resolution plane by a few rounds of correcting an estimate by the mean of what its
upsampling gets wrong over each cell of 2x2 (2x1) samples. The estimate need not be exact: the
blocks' search for coefficients (models/jpeg_coefficients.py) lands on the decoder's own samples
from it.
"""

import numpy as np

from neuralzip.kernels import jpeg_blocks as _k

# the fewest corrections of 4, 5, 6, 8 and 10 rounds, on 768x512 crops of four images/train photos
# saved as 4:2:0 JPEGs and decoded
ESTIMATE_ROUNDS = 10
ESTIMATE_GAIN = 0.7  # of each round's correction (1.0 overshoots at sharp edges)


# libjpeg-turbo's rounding biases of even and odd output columns, in upsample's sixteenths (4:2:2
# rounds over 4: its biases 1 and 2 are 4 and 8 sixteenths of the rows' sums, which are 4 x a sample)
BIASES = {2: (8, 7), 1: (4, 8)}


def extent(top: int, left: int, height: int, width: int, vertical: int) -> tuple[int, int]:
    """The half-resolution plane's rows and columns that the decoder upsamples, in canvas
    coordinates (an image `top` rows and `left` columns into its first blocks; `vertical` 2 where
    the plane has half the rows too): beyond them it repeats the last one, as libjpeg does at the
    image's edges."""
    return -(-(top + height) // vertical), -(-(left + width) // 2)


def upsample(rows: np.ndarray, above: np.ndarray | None, below: np.ndarray | None, vertical: int,
             biases: tuple[int, int] | None = None) -> np.ndarray:
    """libjpeg-turbo's fancy upsampling of a band of half-resolution rows (n, w, channels) (samples
    0..255; its last column the plane's last), with the plane's rows just above and below the band
    ((w, channels), None at the plane's edges; read only when `vertical` is 2) -> (vertical n, 2w,
    channels) int64. `biases`: the rounding of even and odd output columns (libjpeg-turbo's,
    BIASES; tests change them for a negative control)."""
    rows = np.ascontiguousarray(rows, np.int64)
    out = np.empty((vertical * rows.shape[0], 2 * rows.shape[1], rows.shape[2]), np.int64)
    _k.upsample(rows, above, below, out, vertical, *(biases or BIASES[vertical]))
    return out


def estimate_half(full: np.ndarray, valid: np.ndarray, vertical: int) -> np.ndarray:
    """A half-resolution plane (h, w, channels) whose upsampling comes near `full` (vertical h, 2w,
    channels) where `valid` is set -> float64. Rows and columns are the whole plane's, its edges the
    plane's edges (kernels/jpeg_blocks.pyx: the rounds in compiled loops)."""
    return _k.estimate_half(np.ascontiguousarray(full, np.int64), np.ascontiguousarray(valid, np.uint8),
                            vertical, *BIASES[vertical], ESTIMATE_ROUNDS, ESTIMATE_GAIN)
