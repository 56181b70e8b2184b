"""The VAE's fixed layout, shared by the codec and its training: patch shape,
latent discretization and output units. Pure numpy (no torch, no compiled code).

Latents: each of LATENTS dimensions per patch takes one of N_BINS bins, cut
with equal mass under a logistic(0, 1); the prior over the bins is learned per
dimension (shipped integer counts). The posterior q(z|x) is a logistic
(mean, scale) whose mass per bin is a difference of its CDF at the bin
boundaries, read from integer tables (neuralzip.exact.logistic). The decoder
network reads a bin as the integer ZIN[bin], its median on a fixed grid.

Context (weights v3 on): the encoder and decoder also read CONTEXT_OFFSETS, the
two rows above the patch and the two columns to its left (CONTEXT_PIXELS pixels,
already decoded), and two flags saying whether the patch has a row above and a
column to the left in its plane (missing pixels read MISSING). Patches are then
decoded in waves, the anti-diagonals of the patch grid (wave r + c), so those
neighbours are decoded first; the bits-back chain runs in reverse.
"""

import numpy as np

PATCH = 8  # patches of PATCH x PATCH pixels, 3 channels
CHANNELS = 3
PIXELS = PATCH * PATCH
DIMS = PIXELS * CHANNELS
LATENTS = 32
BIN_BITS = 6
N_BINS = 1 << BIN_BITS
Z_UNITS = 256  # posterior means and bin boundaries in 1/256 of a prior unit
ENC_INPUT_SCALE = 1 / 64  # the float encoder reads pixel values / 64
ZIN_SCALE = 26  # the decoder reads round(z * 26) + 128: bin medians up to +-4.85
Q_LOG_SCALE_MIN = -6.0  # posterior scale index i: log(scale) = -6 + i / 16
Q_SCALE_STEPS = 16
Q_N_SCALES = 128
# decoder output units, per pixel: 3 means, 3 log-scales, 3 channel couplings
# (G|R, B|R, B|G), 4 spatial couplings (to the neighbours of NEIGHBOURS) and the
# gain of the activity (how far the decoded neighbours were from their means)
# on the log-scale
MEAN_UNITS = 16  # means in 1/16 of a level
MEAN_OFFSET, MEAN_GAIN = 127.5, 64.0  # the float decoder's mean output m stands for 127.5 + 64 m
COUPLING_UNITS = 64  # coupling coefficients in 1/64
COUPLING_MAX = 2.0
N_NEIGHBOURS = 4
OUT_KINDS = 3 + 3 + 3 + N_NEIGHBOURS + 1
ACT_KIND = OUT_KINDS - 1
ACT_TABLE = 1 << 15  # activity in 1/16 levels, capped
OUTPUTS = PIXELS * OUT_KINDS
N_PHASES = 7
MAX_GROUP = 256  # patches per group of the bits-back chain (see group_spans)
# a coding step's subpixels per thread block: most steps (a phase of a channel of a group, at most
# 4096 subpixels) then run on one thread, which decodes faster than waking a thread team per step
STEP_BLOCK = 2048
# a pop under a pmf of 24-bit precision takes at most 24 bits: a group borrows (pops z) only when
# the stack holds that much for every latent of the group, else it is "seeded" (z is q's most
# probable bin, paid in full: initial bits)
POP_BITS_MAX = 24


# the context: (dy, dx) from the patch's top-left pixel; above (with the corner) then left
CONTEXT_ROWS = CONTEXT_COLS = 2
CONTEXT_OFFSETS = np.array([(dy, dx) for dy in range(-CONTEXT_ROWS, 0) for dx in range(-CONTEXT_COLS, PATCH)]
                           + [(dy, dx) for dy in range(PATCH) for dx in range(-CONTEXT_COLS, 0)], np.int64)
CONTEXT_PIXELS = len(CONTEXT_OFFSETS)
CONTEXT_INPUTS = CONTEXT_PIXELS * CHANNELS + 2  # the values, then the flags (0 or FLAG_ON)
MISSING = 128  # a context pixel outside the plane
FLAG_ON = 255


def _phase_of(y: int, x: int) -> int:
    if y % 2 or x % 2:  # the stride-1 grid: next to decoded even pixels
        return 4 + (x % 2) + 2 * (y % 2) - 1
    if y % 4 == 0 and x % 4 == 0:
        return 0
    if y % 4 == 2 and x % 4 == 2:
        return 1
    return 2 if y % 4 == 0 else 3


def _phases_and_neighbours():
    """Pixels are coded coarse to fine in N_PHASES phases: the stride-4 grid from z alone, then its
    centres (diagonal neighbours at distance 2), the two other stride-2 positions (horizontal /
    vertical neighbours at distance 2), then the odd pixels next to decoded ones: (even, odd) between
    left/right, (odd, even) between up/down, (odd, odd) among all four. A pixel's mean is
    corrected by the residuals (value - mean) of those neighbours inside the patch, with
    coefficients the decoder outputs."""
    phase = np.zeros(PIXELS, np.int64)
    nbr = np.full((PIXELS, N_NEIGHBOURS), -1, np.int64)
    offsets = {0: [], 1: [(-2, -2), (-2, 2), (2, -2), (2, 2)], 2: [(0, -2), (0, 2), (-2, 0), (2, 0)],
               3: [(-2, 0), (2, 0), (0, -2), (0, 2)], 4: [(0, -1), (0, 1)], 5: [(-1, 0), (1, 0)],
               6: [(0, -1), (0, 1), (-1, 0), (1, 0)]}
    for y in range(PATCH):
        for x in range(PATCH):
            p = y * PATCH + x
            phase[p] = _phase_of(y, x)
            for k, (dy, dx) in enumerate(offsets[int(phase[p])]):
                if 0 <= y + dy < PATCH and 0 <= x + dx < PATCH:
                    nbr[p, k] = (y + dy) * PATCH + x + dx
    return phase, nbr


PHASE, NEIGHBOURS = _phases_and_neighbours()


def _logit(p):
    return np.log(p) - np.log1p(-p)


def bin_edges() -> np.ndarray:
    """Inner bin boundaries (N_BINS - 1) in prior units, float."""
    return _logit(np.arange(1, N_BINS) / N_BINS)


def bin_medians() -> np.ndarray:
    return _logit((np.arange(N_BINS) + 0.5) / N_BINS)


def tables() -> dict:
    """Integer tables shipped in the weights file (built once with floats, read exactly)."""
    bounds = np.round(bin_edges() * Z_UNITS).astype(np.int64)
    zin = np.clip(np.round(bin_medians() * ZIN_SCALE) + 128, 0, 255).astype(np.int64)
    scales = np.exp(Q_LOG_SCALE_MIN + np.arange(Q_N_SCALES) / Q_SCALE_STEPS)
    # CDF table index = (boundary - mean) * QINV >> 16, the table having 64 steps per scale unit
    qinv = np.round((1 << 16) * 64 / Z_UNITS / scales).astype(np.int64)
    # the activity feature: round(16 * log2(1 + a / 16)) for an activity a in 1/16 levels
    act = np.round(16 * np.log2(1 + np.arange(ACT_TABLE) / 16)).astype(np.int64)
    return {"lut.zbounds": bounds, "lut.zin": zin, "lut.qinv": qinv, "lut.act": act}


def group_spans(n: int, waves: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The chain's groups of patches, in the encoder's order: sizes 1, 1, 1, 2, 2, 4, 4, ... (doubling
    every other group) up to MAX_GROUP, so the stack usually holds several times what the next group
    may borrow. With `waves` (each unit's wave, in the same order), a group also ends where the wave
    changes: its patches must not depend on each other."""
    ends = np.flatnonzero(np.diff(waves)) + 1 if waves is not None and len(waves) else np.zeros(0, np.int64)
    spans, start, k, cut = [], 0, 0, 0
    while start < n:
        stop = min(n, start + min(MAX_GROUP, 1 << max(0, (k - 1) // 2)))
        while cut < len(ends) and ends[cut] <= start:
            cut += 1
        if cut < len(ends):
            stop = min(stop, int(ends[cut]))
        spans.append((start, stop))
        start = stop
        k += 1
    return spans


def context_inputs(values: np.ndarray, has_above: np.ndarray, has_left: np.ndarray) -> np.ndarray:
    """The networks' context inputs, int64 [n, CONTEXT_INPUTS], from the pixels at CONTEXT_OFFSETS
    (values [n, CONTEXT_PIXELS, CHANNELS]; those of a missing row or column are replaced by MISSING)
    and each patch's two flags."""
    v = values.astype(np.int64).copy()
    missing = ((~has_above[:, None]) & (CONTEXT_OFFSETS[None, :, 0] < 0)) | (
        (~has_left[:, None]) & (CONTEXT_OFFSETS[None, :, 1] < 0))
    v[missing] = MISSING
    flags = np.stack([has_above, has_left], axis=1).astype(np.int64) * FLAG_ON
    return np.concatenate([v.reshape(len(v), -1), flags], axis=1)
