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
    (int64; its last column the plane's last), with the plane's rows just above and below the band
    ((w, channels), None at the plane's edges) -> (2n, 2w, channels). `biases`: the rounding of
    even and odd output columns (libjpeg-turbo's; tests change them for a negative control)."""
    up = rows[:1] if above is None else above[None]
    down = rows[-1:] if below is None else below[None]
    n, w = rows.shape[:2]
    # down the columns: 3 near + 1 far, per output row
    sums = np.empty((2 * n,) + rows.shape[1:], np.int64)
    sums[0::2] = 3 * rows + np.concatenate([up, rows[:-1]])
    sums[1::2] = 3 * rows + np.concatenate([rows[1:], down])
    # along the rows: 3 near + 1 far, rounded with the biases 8 (even columns) and 7 (odd)
    left = np.concatenate([sums[:, :1], sums[:, :-1]], axis=1)
    right = np.concatenate([sums[:, 1:], sums[:, -1:]], axis=1)
    out = np.empty((2 * n, 2 * w) + rows.shape[2:], np.int64)
    out[:, 0::2] = (3 * sums + left + biases[0]) >> 4
    out[:, 1::2] = (3 * sums + right + biases[1]) >> 4
    return out


def estimate_half(full: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A half-resolution plane (h, w, channels) whose upsampling comes near `full` (2h, 2w,
    channels) where `valid` (2h, 2w) is set -> float64. Rows and columns are the whole plane's, its
    edges the plane's edges."""
    h, w = full.shape[0] // 2, full.shape[1] // 2

    def cells(a):  # (2h, 2w, c) -> per 2x2 cell sum (h, w, c)
        return a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]

    mask = valid[..., None].astype(np.int64)
    weight = cells(mask).astype(np.float64)

    cell_mean = np.where(weight > 0, cells(full * mask) / np.maximum(weight, 1), cells(full) / 4.0)
    half = cell_mean.copy()
    for _ in range(ESTIMATE_ROUNDS):
        err = cells((full - upsample(np.clip(np.round(half), 0, 255).astype(np.int64), None, None)) * mask)
        half += ESTIMATE_GAIN * err / np.maximum(weight, 1)
    return half
