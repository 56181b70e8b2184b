"""Gated PixelCNN as an exact image codec.

The network (trained by neuralzip.train.gated_pixelcnn) reads the image in planes of three
channels (grey, LA and RGBA repeat their last channel; the copies are not coded) and has two
stacks of gated layers, out = tanh(a) * sigmoid(b):
- the vertical stack: layer l at pixel (i, j) is a 2x3 convolution over layer l - 1 at rows
  i - 1 and i, columns j - 1..j + 1; its input is the image shifted down one row, so it sees
  only rows above the pixel, and widens by one column a layer;
- the horizontal stack: layer l at (i, j) is a 1x2 convolution over layer l - 1 at (i, j - 1)
  and (i, j), plus a 1x1 convolution of the vertical stack at (i, j), gated, then a 1x1
  convolution added to its input (a residual); its input is the image shifted right one
  column, so it sees only the pixels to the left.
Together they see every pixel above and to the left within the receptive field (no blind
spot). A per-pixel head (two 1x1 layers) gives, for each channel, a discretized logistic
mixture whose means read the pixel's earlier channels (PixelCNN++'s coefficients: G's means
move with R, B's with R and G).

Decoding goes along wavefronts t = (L + 1) i + j (L layers): the vertical stack of (i, j) needs
row i - 1 up to column j + L. Each layer's activations are computed once per pixel, when what
they read is known (neuralzip/kernels/gated_pixelcnn.pyx: the vertical stack of row i + 1 is
computed diagonal by diagonal as row i is decoded, kept in a ring of rows), every activation
an integer: int16 weights, activations in 1/4096, tanh and sigmoid from the logistic CDF table
every model ships. The encoder runs the same wavefronts with the values known.
"""

import numpy as np

from neuralzip.kernels.coding import max_threads
from neuralzip.kernels.gated_pixelcnn import GatedStacks
from neuralzip.models.pixel_codec import PixelCodec, PixelNetwork

WEIGHT_MAX = 1023  # int16 weights within +-1023: every sum fits an int32 (checked at load)
H_LIMIT = 4  # the horizontal stack is clipped to +-4.0


class GatedPixelCnnNetwork(PixelNetwork):
    """The exact stacks (`gpc.*`, run by the compiled GatedStacks), the exact head, and the float
    copy (`fgpc.*`) for the report's nll_float_bits."""

    model = "gated-pixelcnn"

    def load(self, z: dict) -> None:
        self.layers = int(z["gpc.layers"])
        if not 1 <= self.layers <= 16:
            raise ValueError("layer count out of range")
        self.slope = self.layers + 1  # the vertical stack of (i, j) reads row i - 1 up to column j + layers
        names = [f"{part}{i}" for i in range(self.layers) for part in ("v", "h", "o")]
        self.stack_arrays = [(z[f"gpc.{n}.w"], z[f"gpc.{n}.b"].astype(np.int64), z[f"gpc.{n}.m"].astype(np.int64),
                              z[f"gpc.{n}.s"].astype(np.int64)) for n in names]
        self.load_head(z, "gpc", self.stack_arrays[0][0].shape[0] // 2)
        self.float_weights = {k[5:]: z[k].astype(np.float64) for k in z if k.startswith("fgpc.")}
        # checks every shape and bound the compiled stacks rely on (raises ValueError)
        GatedStacks(self.stack_arrays, self.cdf, 1, 1)

    def stacks(self, height: int, width: int, blocks: int | None = None) -> GatedStacks:
        return GatedStacks(self.stack_arrays, self.cdf, height, width, max_threads() if blocks is None else blocks)

    def state_bytes(self, height: int, width: int) -> int:
        """int16: pixel inputs and vertical stack in a ring of rows x columns, the horizontal stack per row."""
        cells = ((width - 1) // self.slope + 4) * (2 * self.slope + 8)
        return 2 * (3 * cells + self.layers * self.channels * (cells + height))

    def float_outputs(self, plane: np.ndarray) -> np.ndarray:
        return float_forward(self.float_weights, self.layers, plane)


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Valid 2-D convolution (cross-correlation, torch's Conv2d) of x [H, W, Cin] with w [Cout, Cin, kh, kw]."""
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))  # [H', W', Cin, kh, kw]
    out = np.tensordot(win, w, axes=([2, 3, 4], [1, 2, 3]))
    return out + b if b is not None else out


def _gate(pre: np.ndarray) -> np.ndarray:
    a, b = np.split(pre, 2, axis=-1)
    return np.tanh(a) * _sigmoid(b)


FLOAT_STRIP = 64  # rows of the float network run at once (the report's likelihood of a large image)


def float_forward(fw: dict, layers: int, plane: np.ndarray) -> np.ndarray:
    """The float network on a plane [H, W, 3] of values -> outputs [H * W, outputs] (numpy), in strips
    of FLOAT_STRIP rows: a row's outputs read at most `layers` + 1 rows above it, so each strip is run
    with that many rows above it and those rows' outputs are dropped."""
    parts = []
    for a in range(0, plane.shape[0], FLOAT_STRIP):
        top = max(0, a - layers - 1)
        parts.append(_float_rows(fw, layers, plane[top:a + FLOAT_STRIP])[(a - top) * plane.shape[1]:])
    return np.concatenate(parts)


def _float_rows(fw: dict, layers: int, plane: np.ndarray) -> np.ndarray:
    """The float network on the rows of `plane` as if nothing were above them."""
    x = (plane.astype(np.float64) - 128) / 128
    v = np.pad(x, ((1, 0), (0, 0), (0, 0)))[:-1]
    h = np.pad(x, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    for i in range(layers):
        v = _gate(_conv(np.pad(v, ((1, 0), (1, 1), (0, 0))), fw[f"v.{i}.weight"], fw[f"v.{i}.bias"]))
        g = _gate(_conv(np.pad(h, ((0, 0), (1, 0), (0, 0))), fw[f"h.{i}.weight"], fw[f"h.{i}.bias"])
                  + _conv(v, fw[f"vh.{i}.weight"], None))
        h = np.clip(_conv(g, fw[f"o.{i}.weight"], fw[f"o.{i}.bias"]) + (h if i else 0), -H_LIMIT, H_LIMIT)
    f = np.maximum(h, 0).reshape(-1, h.shape[-1])
    f = np.maximum(f @ fw["head.1.weight"][:, :, 0, 0].T + fw["head.1.bias"], 0)
    return f @ fw["head.3.weight"][:, :, 0, 0].T + fw["head.3.bias"]


class GatedPixelCnnCodec(PixelCodec):
    name = "gated-pixelcnn"
    summary = "Gated PixelCNN (vertical and horizontal stacks of gated masked convolutions, logistic mixture); 8-bit"
    weights_prefix = "gated-pixelcnn-image"
    network = GatedPixelCnnNetwork
