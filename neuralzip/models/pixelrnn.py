"""PixelRNN (Row LSTM) as an exact image codec.

The network (trained by neuralzip.train.pixelrnn) reads the image in planes of three channels
and has L Row LSTM layers. Layer l at pixel (i, j) computes its four gates (input, forget,
output: sigmoid; candidate: tanh) from
- the layer below at (i, j - 1) and (i, j) (a 1x2 convolution masked to the left; for the first
  layer the pixels (i, j - 2) and (i, j - 1), so it never sees the pixel it predicts), and
- its own hidden state in the row above at j - 1, j and j + 1 (the state-to-state 1x3
  convolution),
then c = f * c(row above, j) + i * g and h = o * tanh(c). The last layer's h goes through the
per-pixel head shared with gated-pixelcnn (neuralzip.models.pixel_codec).

Why Row LSTM and not the Diagonal BiLSTM: a Row LSTM pixel needs only the row above up to
column j + 1, so decoding goes along wavefronts t = 2 i + j and each layer's state is computed
once per pixel (neuralzip/kernels/row_lstm.pyx), keeping two rows of state. The Diagonal
BiLSTM's right-to-left direction must be shifted down a row to stay causal and costs a second
LSTM per layer. What the Row LSTM gives up is its triangular receptive field: it sees row
i - k out to column j + k - 1 (and the pixels to the left), not the whole upper half-plane.

Every activation is an integer: int16 weights, gates and hidden state in 1/4096, the cell
state in 1/4096 clipped to +-8, sigmoid and tanh from the logistic CDF table every model
ships. The encoder runs the same wavefronts with the values known.
"""

import numpy as np

from neuralzip.kernels.coding import max_threads
from neuralzip.kernels.row_lstm import RowLstm
from neuralzip.models.pixel_codec import PixelCodec, PixelNetwork

WEIGHT_MAX = 1023  # int16 weights within +-1023: every sum fits an int32 (checked at load)
CELL_LIMIT = 8  # the cell state is clipped to +-8.0


class RowLstmNetwork(PixelNetwork):
    """The exact Row LSTM (`prnn.*`, run by the compiled RowLstm), the exact head, and the float
    copy (`fprnn.*`) for the report's nll_float_bits."""

    model = "pixelrnn"
    slope = 2  # a pixel reads the row above up to column j + 1

    def load(self, z: dict) -> None:
        self.layers = int(z["prnn.layers"])
        if not 1 <= self.layers <= 16:
            raise ValueError("layer count out of range")
        self.lstm_arrays = [(z[f"prnn.l{i}.w"], z[f"prnn.l{i}.b"].astype(np.int64), z[f"prnn.l{i}.m"].astype(np.int64),
                             z[f"prnn.l{i}.s"].astype(np.int64)) for i in range(self.layers)]
        self.load_head(z, "prnn", self.lstm_arrays[0][0].shape[0] // 4)
        self.float_weights = {k[6:]: z[k].astype(np.float64) for k in z if k.startswith("fprnn.")}
        # checks every shape and bound the compiled layers rely on (raises ValueError)
        RowLstm(self.lstm_arrays, self.cdf, 1, 1)

    def stacks(self, height: int, width: int, blocks: int | None = None) -> RowLstm:
        return RowLstm(self.lstm_arrays, self.cdf, height, width, max_threads() if blocks is None else blocks)

    def state_bytes(self, height: int, width: int) -> int:
        """Two rows of pixel inputs, hidden (int16) and cell (int32) states."""
        return 2 * width * (2 * 3 + 6 * self.layers * self.channels)

    def float_outputs(self, plane: np.ndarray) -> np.ndarray:
        return float_forward(self.float_weights, self.layers, plane)


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _row_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """1-D convolution along a row (torch's Conv1d, valid) of x [W, Cin] with w [Cout, Cin, k]."""
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2], axis=0)  # [W', Cin, k]
    out = np.tensordot(win, w, axes=([1, 2], [1, 2]))
    return out + b if b is not None else out


def float_forward(fw: dict, layers: int, plane: np.ndarray) -> np.ndarray:
    """The float network on a plane [H, W, 3] of values -> outputs [H * W, outputs] (numpy)."""
    x = (plane.astype(np.float64) - 128) / 128
    height, width = x.shape[:2]
    ch = fw["ss.0.weight"].shape[1]
    h = np.zeros((layers, width, ch))
    c = np.zeros((layers, width, ch))
    last = np.zeros((height, width, ch))
    for i in range(height):
        below = np.pad(x[i], ((1, 0), (0, 0)))[:-1]  # the pixel to the left
        for l in range(layers):
            pre = (_row_conv(np.pad(below, ((1, 0), (0, 0))), fw[f"is.{l}.weight"], fw[f"is.{l}.bias"])
                   + _row_conv(np.pad(h[l], ((1, 1), (0, 0))), fw[f"ss.{l}.weight"], None))
            gi, gf, go, gg = np.split(pre, 4, axis=1)
            c[l] = np.clip(_sigmoid(gf) * c[l] + _sigmoid(gi) * np.tanh(gg), -CELL_LIMIT, CELL_LIMIT)
            h[l] = _sigmoid(go) * np.tanh(c[l])
            below = h[l]
        last[i] = h[-1]
    f = np.maximum(last.reshape(-1, ch), 0)
    f = np.maximum(f @ fw["head.1.weight"][:, :, 0, 0].T + fw["head.1.bias"], 0)
    return f @ fw["head.3.weight"][:, :, 0, 0].T + fw["head.3.bias"]


class PixelRnnCodec(PixelCodec):
    name = "pixelrnn"
    summary = "PixelRNN: Row LSTM layers over the image, decoded along wavefronts (logistic mixture); 8-bit"
    weights_prefix = "pixelrnn-image"
    network = RowLstmNetwork
