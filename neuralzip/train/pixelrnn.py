"""Train the PixelRNN (Row LSTM) image model: `neuralzip train pixelrnn DIR -o weights`
(neuralzip.train.pixel has the data, the loop and the recipe).

The network is the one neuralzip.models.pixelrnn runs exactly: Row LSTM layers run row by row
over the crop (a 1x2 input-to-state convolution masked to the left, a 1x3 state-to-state
convolution over the row above) and the shared per-pixel head. Quantization: each layer's two
convolutions as one int16 layer per gate (within the bound that keeps the compiled sums in an
int32) over inputs in 1/4096, rescaled to pre-activations in 1/4096; the head as wide exact
layers. The float network is kept for the report's nll_float_bits.
"""

import numpy as np

from neuralzip.models import pixelrnn as model
from neuralzip.models.pixel_codec import ACT_ONE, PRE_ONE
from neuralzip.train.image import _torch
from neuralzip.train.pixel import build_head, quantize_head
from neuralzip.train.quantize import int16_layer

NAME = "pixelrnn"
VERSION = 1
CODEC = model.PixelRnnCodec


def build_net(k_mix: int, channels: int, layers: int, head: int):
    torch = _torch()
    nn = torch.nn
    F = nn.functional

    class RowLstmNet(nn.Module):
        """x: (value - 128) / 128, [batch, 3, H, W] -> [batch, outputs(k_mix), H, W] per pixel."""

        def __init__(self):
            super().__init__()
            c = channels
            self.channels = c
            self.is_ = nn.ModuleList(nn.Conv1d(3 if i == 0 else c, 4 * c, 2) for i in range(layers))
            self.ss = nn.ModuleList(nn.Conv1d(c, 4 * c, 3, bias=False) for _ in range(layers))
            self.head = build_head(c, head, k_mix)

        def features(self, x):
            """The last layer's hidden state [batch, C, H, W], row by row."""
            b, _, height, width = x.shape
            h = [x.new_zeros(b, self.channels, width) for _ in self.ss]
            c = [x.new_zeros(b, self.channels, width) for _ in self.ss]
            rows = []
            for i in range(height):
                below = F.pad(x[:, :, i], (1, 0))[:, :, :-1]  # the pixel to the left
                for l in range(len(self.ss)):
                    pre = self.is_[l](F.pad(below, (1, 0))) + self.ss[l](F.pad(h[l], (1, 1)))
                    gi, gf, go, gg = pre.chunk(4, dim=1)
                    c[l] = (torch.sigmoid(gf) * c[l] + torch.sigmoid(gi) * torch.tanh(gg)).clamp(
                        -model.CELL_LIMIT, model.CELL_LIMIT)
                    h[l] = torch.sigmoid(go) * torch.tanh(c[l])
                    below = h[l]
                rows.append(h[-1])
            return torch.stack(rows, 2)

        def forward(self, x):
            return self.head(self.features(x))

    return RowLstmNet()


def quantize(net, pool: np.ndarray, k_mix: int, seed: int) -> dict:
    """The exact network's arrays (prefix "prnn") and the float copy ("fprnn"; the input-to-state
    convolutions under "is"). Every layer reads integers in 1/ACT_ONE (pixels included)."""
    torch = _torch()
    arr = {f"fprnn.{name.replace('is_.', 'is.')}": t.detach().numpy().astype(np.float32)
           for name, t in net.state_dict().items()}
    for i in range(len(net.ss)):
        wi = net.is_[i].weight.detach().double().numpy()  # [4C, Cin, 2]
        ws = net.ss[i].weight.detach().double().numpy()  # [4C, C, 3]
        # one accumulation per gate: [below(j-1), below(j), above(j-1), above(j), above(j+1)], channels minor
        w = np.concatenate([wi.transpose(0, 2, 1).reshape(len(wi), -1), ws.transpose(0, 2, 1).reshape(len(ws), -1)],
                           axis=1) / ACT_ONE
        int16_layer(w, net.is_[i].bias.detach().double().numpy(), PRE_ONE, model.WEIGHT_MAX, f"prnn.l{i}", arr)
    rng = np.random.default_rng(seed)
    sample = torch.as_tensor(pool[rng.integers(0, len(pool), 64)]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        feats = net.features((sample - 128) / 128).permute(0, 2, 3, 1).reshape(-1, net.channels)
    arr.update(quantize_head(net.head, feats.double().numpy(), k_mix, "prnn"))
    arr["prnn.layers"] = np.array(len(net.ss))
    return arr
