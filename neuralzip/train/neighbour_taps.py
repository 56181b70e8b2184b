"""Fit the vae neighbour counts' linear taps (weights v5 on): for each position in the 8x8 patch,
the nearest neighbours the decoder surely has there, and per channel the least-squares weights of
a linear prediction from them (the kernel neighbour_counts.predict applies them, in integers).

The taps of a position are its TAPS nearest offsets (and any as near as the last) that lie in the
pixel's own patch at an earlier phase or in an earlier wave of patches (a patch up or to the left:
patch row + column smaller); which of them a pixel has also depends on the image's edges, and the
kernel falls back to the rings' mean where one is missing. R is predicted from R's values at the
taps, G and B as the earlier channel's value at the pixel plus a prediction of their difference
from it from the same difference at the taps. The weights are fitted on every pixel of the
training photos whose taps lie inside the photo, robustly (iteratively reweighted least squares,
each residual r weighing 1 / (ROBUST_SCALE^2 + r^2)), then rounded to 1/2**COEF_BITS.
"""

from pathlib import Path

import numpy as np

from neuralzip.models import vae_layout as L
from neuralzip.models.neighbour_counts import COEF_BITS, MAX_TAPS
from neuralzip.train.image import load_rgb8

TAPS = 6  # nearest decoded neighbours per position (more gave no gain in the float study)
ROBUST_ITERATIONS = 2
ROBUST_SCALE = 2.0
RIDGE = 1e-7  # of the normal matrix's trace


def _decoded(py: int, px: int, dy: int, dx: int) -> bool:
    """Whether the decoder surely has offset (dy, dx) of patch position (py, px) (edges aside)."""
    y, x = py + dy, px + dx
    pr, pc = y // L.PATCH, x // L.PATCH
    if pr == 0 and pc == 0:
        return L.PHASE[y * L.PATCH + x] < L.PHASE[py * L.PATCH + px]
    return pr + pc < 0


def position_taps(taps: int = TAPS, reach: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(offsets [PIXELS, MAX_TAPS, 2] (dy, dx), counts [PIXELS]): per position, its `taps` nearest
    decoded offsets and any as near as the last, at most MAX_TAPS."""
    offsets = np.zeros((L.PIXELS, MAX_TAPS, 2), np.int64)
    counts = np.zeros(L.PIXELS, np.int64)
    for p in range(L.PIXELS):
        py, px = divmod(p, L.PATCH)
        near = sorted(((dy * dy + dx * dx, dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
                       if (dy, dx) != (0, 0) and _decoded(py, px, dy, dx)))
        if not near:  # the patch's first pixel in a photo's first patch: nothing decoded
            continue
        last = near[min(taps, len(near)) - 1][0]
        chosen = [(dy, dx) for d, dy, dx in near if d <= last][:MAX_TAPS]
        offsets[p, :len(chosen)] = chosen
        counts[p] = len(chosen)
    return offsets, counts


def _samples(img: np.ndarray, p: int, c: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, taps + 1], targets [n]) at every pixel of position p whose taps lie inside."""
    h, w = img.shape[:2]
    py, px = divmod(p, L.PATCH)
    ys, xs = np.meshgrid(np.arange(py, h, L.PATCH), np.arange(px, w, L.PATCH), indexing="ij")
    ys, xs = ys.ravel(), xs.ravel()
    ty, tx = ys[:, None] + offsets[:, 0], xs[:, None] + offsets[:, 1]
    inside = np.all((ty >= 0) & (ty < h) & (tx >= 0) & (tx < w), axis=1)
    ys, xs, ty, tx = ys[inside], xs[inside], ty[inside], tx[inside]
    plane = img[..., c].astype(np.float64)
    if c > 0:
        plane = plane - img[..., c - 1]
    return np.concatenate([plane[ty, tx], np.ones((len(ys), 1))], axis=1), plane[ys, xs]


def fit_taps(files: list[Path], log=print) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, counts, coefficients [3, PIXELS, MAX_TAPS + 1] in 1/2**COEF_BITS, the last the
    constant) fitted on the 8-bit RGB photos `files`."""
    offsets, counts = position_taps()
    weights = None
    for it in range(ROBUST_ITERATIONS + 1):
        normal = {}
        for i, f in enumerate(files):
            img = load_rgb8(f)
            if img is None:
                continue
            for p in np.flatnonzero(counts):
                for c in range(3):
                    x, y = _samples(img, p, c, offsets[p, :counts[p]])
                    wt = np.ones(len(y)) if weights is None else 1.0 / (ROBUST_SCALE ** 2 + (y - x @ weights[c, p]) ** 2)
                    g, b = normal.get((c, p), (0.0, 0.0))
                    normal[(c, p)] = (g + (x * wt[:, None]).T @ x, b + (x * wt[:, None]).T @ y)
            log(f"fitting the neighbour counts' taps: pass {it + 1}/{ROBUST_ITERATIONS + 1}, {i + 1}/{len(files)} files")
        weights = {}
        for (c, p), (g, b) in normal.items():
            weights[c, p] = np.linalg.solve(g + RIDGE * np.trace(g) * np.eye(len(g)), b)
    coefs = np.zeros((3, L.PIXELS, MAX_TAPS + 1), np.int64)
    for (c, p), wv in weights.items():
        coefs[c, p, :counts[p]] = np.rint(wv[:-1] * (1 << COEF_BITS))
        coefs[c, p, MAX_TAPS] = np.rint(wv[-1] * (1 << COEF_BITS))
    return offsets, counts, coefs
