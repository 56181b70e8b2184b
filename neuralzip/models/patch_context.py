"""Patches with their decoded surroundings: the fixed layout of the patch-autoregressive image
models (made), shared by the codec and its training. Pure numpy (no torch, no compiled code).

An image's channels are taken in threes (grey, LA and RGBA planes repeat their last channel),
each plane is padded to a multiple of PATCH by repeating its last row and column, and cut into
PATCH x PATCH patches. A patch's DIMS values are ordered pixel by pixel in raster order, the
channels inside each pixel. A patch is modelled given its context: the two decoded rows above
it (from two columns left of it to two columns right of it) and the two decoded columns to its
left, CONTEXT_PIXELS pixels in all. Patch (i, j) therefore needs patches (i-1, j-1..j+1) and
(i, j-1): the patches are decoded in wavefronts t = 2i + j, every patch of a wavefront at once.

The network reads every value relative to the patch's reference, per channel the floor of the
mean of its available context pixels (128 when none is): value - ref + 128, clipped to 0..255.
Context that is not there (above the first row of patches, left of the first column) reads as
128, with a flag input saying so. Values that are not coded (the padding, the repeated
channels) are copies of values before them in the same patch (`sources`).
"""

import numpy as np

PATCH = 4
CHANNELS = 3
PIXELS = PATCH * PATCH
DIMS = PIXELS * CHANNELS
_ABOVE = [(dy, dx) for dy in (-2, -1) for dx in range(-2, PATCH + 2)]  # two rows, PATCH + 4 wide
_LEFT = [(dy, dx) for dy in range(PATCH) for dx in (-2, -1)]
CONTEXT_PIXELS = len(_ABOVE) + len(_LEFT)
N_FLAGS = 2  # 255 where the rows above / the columns to the left exist
CONTEXT = CONTEXT_PIXELS * CHANNELS + N_FLAGS  # network inputs before the patch's own values
INPUTS = CONTEXT + DIMS
FLOAT_INPUT_SCALE = 1 / 64  # the float network reads (input - 128) / 64


def planes(samples: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """An image (H, W, C) -> (planes [G, Hp, Wp, 3] uint8, padded by edge repetition, missing
    channels repeated; the real channel count of each plane)."""
    h, w, c = samples.shape
    hp, wp = -(-h // PATCH) * PATCH, -(-w // PATCH) * PATCH
    out, counts = [], []
    for g in range(0, c, CHANNELS):
        idx = [min(g + k, c - 1) for k in range(CHANNELS)]
        out.append(np.pad(samples[:, :, idx], ((0, hp - h), (0, wp - w), (0, 0)), mode="edge"))
        counts.append(min(CHANNELS, c - g))
    return np.stack(out).astype(np.uint8), counts


def join_planes(x: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of planes for an image of `shape` (H, W, C) (any dtype: also per-value figures)."""
    h, w, c = shape
    out = np.empty((h, w, c), x.dtype)
    for gi, g in enumerate(range(0, c, CHANNELS)):
        nc = min(CHANNELS, c - g)
        out[:, :, g:g + nc] = x[gi, :h, :w, :nc]
    return out


class Grid:
    """The patches of an image of shape (H, W, C): their plane, row and column, wavefront, which
    of their values are coded, and where the others are copied from."""

    def __init__(self, shape: tuple):
        h, w, c = (int(v) for v in shape)
        self.shape = (h, w, c)
        self.n_planes = -(-c // CHANNELS)
        self.rows, self.cols = -(-h // PATCH), -(-w // PATCH)
        per = self.rows * self.cols
        self.plane = np.repeat(np.arange(self.n_planes), per)
        self.i = np.tile(np.repeat(np.arange(self.rows), self.cols), self.n_planes)
        self.j = np.tile(np.tile(np.arange(self.cols), self.rows), self.n_planes)
        self.wave = 2 * self.i + self.j
        self.n_waves = 2 * (self.rows - 1) + self.cols
        # per patch and value: the index (in the patch) of the value it is a copy of, itself if coded
        vh = np.minimum(h - self.i * PATCH, PATCH)
        vw = np.minimum(w - self.j * PATCH, PATCH)
        nc = np.minimum(c - self.plane * CHANNELS, CHANNELS)
        d = np.arange(DIMS)
        p, ch = np.divmod(d, CHANNELS)
        py, px = np.divmod(p, PATCH)
        sy = np.minimum(py[None, :], vh[:, None] - 1)
        sx = np.minimum(px[None, :], vw[:, None] - 1)
        sc = np.minimum(ch[None, :], nc[:, None] - 1)
        self.sources = (sy * PATCH + sx) * CHANNELS + sc  # [n, DIMS]
        self.coded = self.sources == d[None, :]
        self._order = np.argsort(self.wave, kind="stable")
        self._wave_starts = np.searchsorted(self.wave[self._order], np.arange(self.n_waves + 1))

    def __len__(self) -> int:
        return len(self.plane)

    def empty_planes(self, dtype=np.uint8) -> np.ndarray:
        """Zeroed planes [G, Hp, Wp, 3] of this image, for the decoder (or per-value figures) to fill."""
        return np.zeros((self.n_planes, self.rows * PATCH, self.cols * PATCH, CHANNELS), dtype)

    def wave_patches(self, t: int) -> np.ndarray:
        """The patches of wavefront t, in patch order."""
        return self._order[self._wave_starts[t]:self._wave_starts[t + 1]]

    def context(self, x: np.ndarray, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (network context inputs [n, CONTEXT] int64, refs [n, 3] int64) of these patches, read
        from the planes x [G, Hp, Wp, 3] (only their decoded surroundings are read)."""
        g, y0, x0 = self.plane[patches], self.i[patches] * PATCH, self.j[patches] * PATCH
        wp = self.cols * PATCH
        has_above, has_left = self.i[patches] > 0, self.j[patches] > 0
        offs = np.array(_ABOVE + _LEFT)
        ys = np.maximum(y0[:, None] + offs[None, :, 0], 0)
        xs = np.clip(x0[:, None] + offs[None, :, 1], 0, wp - 1)
        pix = x[g[:, None], ys, xs].astype(np.int64)  # [n, CONTEXT_PIXELS, 3]
        n_above = len(_ABOVE)
        avail = np.concatenate([np.repeat(has_above[:, None], n_above, 1),
                                np.repeat(has_left[:, None], len(_LEFT), 1)], axis=1)
        count = avail.sum(axis=1)
        sums = (pix * avail[:, :, None]).sum(axis=1)
        refs = np.where(count[:, None] > 0, sums // np.maximum(count, 1)[:, None], 128)
        rel = np.where(avail[:, :, None], np.clip(pix - refs[:, None, :] + 128, 0, 255), 128)
        flags = np.stack([has_above, has_left], axis=1) * 255
        return np.concatenate([rel.reshape(len(patches), CONTEXT_PIXELS * CHANNELS), flags], axis=1), refs

    def values(self, x: np.ndarray, patches: np.ndarray) -> np.ndarray:
        """The patches' own values [n, DIMS] (pixel-major, channels inside) from the planes."""
        g, i, j = self.plane[patches], self.i[patches], self.j[patches]
        d = np.arange(PATCH)
        blocks = x[g[:, None, None], i[:, None, None] * PATCH + d[None, :, None], j[:, None, None] * PATCH + d[None, None, :]]
        return blocks.reshape(len(patches), DIMS).astype(np.int64)

    def store(self, x: np.ndarray, patches: np.ndarray, values: np.ndarray) -> None:
        """Write decoded patch values [n, DIMS] into the planes."""
        g, i, j = self.plane[patches], self.i[patches], self.j[patches]
        d = np.arange(PATCH)
        x[g[:, None, None], i[:, None, None] * PATCH + d[None, :, None], j[:, None, None] * PATCH + d[None, None, :]] = \
            values.reshape(len(patches), PATCH, PATCH, CHANNELS)


def relative_column(values: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Values as the network reads them: value - ref of its channel + 128, clipped to 0..255."""
    return np.clip(values - refs + 128, 0, 255)


def relative(values: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """A patch's values [n, DIMS] as the network reads them (relative_column, channel by channel)."""
    return relative_column(values, np.tile(refs, PIXELS))


def inputs(grid: Grid, x: np.ndarray, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Everything the encoder (and training) reads of these patches of a fully known image:
    -> (network inputs [n, INPUTS] int64, refs [n, 3], values [n, DIMS])."""
    ctx, refs = grid.context(x, patches)
    values = grid.values(x, patches)
    return np.concatenate([ctx, relative(values, refs)], axis=1), refs, values


def degrees(hidden: int) -> np.ndarray:
    """A masked hidden layer's units' degrees, in order: unit k sees the context and the patch
    values 0..degree (degree -1: the context alone), DIMS - 1 degrees spread evenly."""
    return (np.arange(hidden) * DIMS // hidden - 1).astype(np.int64)


def masks(hidden: int, layers: int) -> list[np.ndarray]:
    """MADE's connectivity as 0/1 matrices [in, out] for `layers` hidden layers of `hidden` units and
    an output layer of DIMS groups: input value d reaches hidden units of degree >= d, a hidden unit
    reaches units of the next layer of at least its degree, and the output of value d reads the
    last hidden layer's units of degree < d. The context inputs reach every hidden unit."""
    deg = degrees(hidden)
    in_deg = np.concatenate([np.full(CONTEXT, -1), np.arange(DIMS)])
    out = [in_deg[:, None] <= deg[None, :]]
    for _ in range(layers - 1):
        out.append(deg[:, None] <= deg[None, :])
    out.append(deg[:, None] < np.arange(DIMS)[None, :])
    return [m.astype(np.float32) for m in out]
