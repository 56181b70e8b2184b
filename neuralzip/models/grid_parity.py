"""Whether a chunk's colours follow the 2x2 pixel grid: the encoder's switch for classic's
least-squares mixer with weight sets by parity ("blend": 5 and later, models/classic_image.py).

A photo whose chroma was once subsampled 2x2 and interpolated back (a film scan kept as subsampled
YCC, a 4:2:0 image upsampled) has colour differences that are, at some positions of each 2x2 cell,
a fixed blend of their neighbours' and at others free. Fits split by (row % 2, column % 2) then
predict the later channels far better; on a photo without that structure they only see a quarter
of the pixels each, and code a little larger (0.1-0.2% on the tuning photos of images/train). So
the encoder measures it per chunk and records its choice in the chunk's leading byte; the decoder
reads the byte and never runs this.

The measure: on a sample of the chunk's rows (one pair of rows in five, so both row parities,
and a stride of 10 rows, which meets a decoded JPEG's 8-row blocks at every even offset), each later
channel's difference from the one before (as the mixer's inter-channel predictors see them) is
predicted from 6 causal neighbours of the same difference plane by least squares, once
for all pixels and once per parity class; the residuals' empirical entropy (one histogram, or one
per class) is compared. A static global model, so it only ranks chunks; floating point, so on
another machine a chunk measured within rounding of MIN_GAIN might switch the other way (the file
records the choice: any decoder reads it).
"""

import numpy as np

# causal neighbours (dy, dx) of the same plane in raster order: W, WW, N, NN, NW, NE (12, with the
# next ring, measured alike at twice the time)
TAPS = ((0, -1), (0, -2), (-1, 0), (-2, 0), (-1, -1), (-1, 1))
MARGIN = 3
# split where the parity fits price the differences at least this much smaller: about four times
# the largest gain any photo of images/train and images/valid measures (0.0052, urban_img_020, a
# decoded JPEG; benchmarks/results/grid_parity.json), so none of them switches
MIN_GAIN = 0.02
# fewer sampled pixels (a chunk under about 290 x 290) keep the joint fits: too few pixels per class
# to tell, and to fill four times the weight sets
MIN_SAMPLES = 16384


def parity_gain(chunk: np.ndarray) -> float:
    """1 - (bits with fits and histograms per parity class) / (bits with one of each), over the
    chunk's difference planes (rows, width, channels as coded; 0 for fewer than 2 channels or too
    few pixels)."""
    h, w = chunk.shape[:2]
    if chunk.ndim != 3 or chunk.shape[2] < 2 or h < 2 * MARGIN + 4 or w < 2 * MARGIN + 2:
        return 0.0
    rows = np.arange(MARGIN, h - MARGIN)
    rows = rows[(rows // 2) % 5 == 0]  # one pair of rows in five: both row parities
    cols = np.arange(MARGIN, w - MARGIN)
    if len(rows) * len(cols) < MIN_SAMPLES:
        return 0.0
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    classes = ((yy % 2) * 2 + xx % 2).ravel()
    joint = split = 0.0
    for c in range(1, min(chunk.shape[2], 3)):
        plane = chunk[..., c].astype(np.int64) - chunk[..., c - 1]
        taps = [plane[yy + dy, xx + dx].ravel() for dy, dx in TAPS]
        x = np.stack(taps + [np.ones(len(taps[0]), np.int64)], axis=1).astype(np.float64)
        y = plane[yy, xx].ravel().astype(np.float64)
        joint += _fitted_bits(x, y, np.zeros(len(y), np.int64))
        split += _fitted_bits(x, y, classes)
    return 1.0 - split / joint if joint > 0 else 0.0


def splits_by_parity(chunk: np.ndarray) -> bool:
    """The encoder's choice for a chunk (as coded): weight sets by parity where it pays."""
    return parity_gain(chunk) >= MIN_GAIN


def _fitted_bits(x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> float:
    """Bits of the rounded least-squares residuals under their own histogram, one fit and one
    histogram per class (the normal equations with a tiny ridge; residuals clipped to +-1023),
    with the histograms' small-sample bias corrected."""
    total = 0.0
    for k in np.flatnonzero(np.bincount(classes)):  # (np.unique would import numpy.ma: 5 ms a process)
        m = classes == k
        xm, ym = x[m], y[m]
        coef = np.linalg.solve(xm.T @ xm + 1e-6 * np.eye(xm.shape[1]), xm.T @ ym)
        residuals = np.clip(np.rint(ym - xm @ coef).astype(np.int64), -1023, 1023) + 1023
        counts = np.bincount(residuals)
        counts = counts[counts > 0]
        # the histogram's own bits, plus Miller and Madow's correction for the bins it was fitted
        # on ((bins - 1) / 2 nats): more classes, fewer pixels each, would otherwise look cheaper
        total += float(-(counts * np.log2(counts / counts.sum())).sum() + (len(counts) - 1) / (2 * np.log(2)))
    return total
