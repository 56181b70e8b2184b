"""4:2:0 chroma: a JPEG that keeps its two chroma planes at half resolution in both directions,
as cameras, phones and most encoders' defaults do.

The decoder (libjpeg-turbo, as Pillow, browsers and most tools use it) brings such a plane to full
resolution with its "fancy" h2v2 upsampling, exact integer arithmetic: each output sample is
(9 near + 3 side + 3 side + 1 diagonal) / 16 of the four nearest half-resolution samples, first down
the columns (3 near + 1 far, kept unrounded), then along the rows, with rounding biases that
alternate 8 and 7 between even and odd output columns. At the plane's edges the nearest sample
stands in for the missing one. `upsample` is that filter, on a band of rows with the rows just
above and below it from the neighbouring bands, so that bands decode apart and join exactly.

The encoder goes the other way (`estimate_half`): from the full-resolution chroma it recovers the
half-resolution plane by a few rounds of correcting an estimate by the mean of what its
upsampling gets wrong over each 2x2 cell. The estimate need not be exact: the blocks' search for
coefficients (models/jpeg_coefficients.py) lands on the decoder's own samples from it.
"""

import numpy as np

from neuralzip.kernels import jpeg_blocks as _k

# the fewest corrections of 4, 5, 6, 8 and 10 rounds, on 768x512 crops of four images/train photos
# saved as 4:2:0 JPEGs and decoded
ESTIMATE_ROUNDS = 10
ESTIMATE_GAIN = 0.7  # of each round's correction (1.0 overshoots at sharp edges)


def extent(top: int, left: int, height: int, width: int) -> tuple[int, int]:
    """The half-resolution plane's rows and columns that the decoder upsamples, in canvas
    coordinates (an image `top` rows and `left` columns into its first blocks): beyond them it
    repeats the last one, as libjpeg does at the image's edges."""
    return -(-(top + height) // 2), -(-(left + width) // 2)


def upsample(rows: np.ndarray, above: np.ndarray | None, below: np.ndarray | None,
             biases: tuple[int, int] = (8, 7)) -> np.ndarray:
    """libjpeg-turbo's h2v2 fancy upsampling of a band of half-resolution rows (n, w, channels)
    (samples 0..255; its last column the plane's last), with the plane's rows just above and below
    the band ((w, channels), None at the plane's edges) -> (2n, 2w, channels) int64. `biases`:
    the rounding of even and odd output columns (libjpeg-turbo's; tests change them for a
    negative control)."""
    rows = np.ascontiguousarray(rows, np.int64)
    out = np.empty((2 * rows.shape[0], 2 * rows.shape[1], rows.shape[2]), np.int64)
    _k.upsample(rows, above, below, out, *biases)
    return out


def estimate_half(full: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A half-resolution plane (h, w, channels) whose upsampling comes near `full` (2h, 2w,
    channels) where `valid` (2h, 2w) is set -> float64. Rows and columns are the whole plane's, its
    edges the plane's edges (kernels/jpeg_blocks.pyx: the rounds in compiled loops)."""
    return _k.estimate_half(np.ascontiguousarray(full, np.int64), np.ascontiguousarray(valid, np.uint8),
                            ESTIMATE_ROUNDS, ESTIMATE_GAIN)
