"""Train the Gated PixelCNN image model: `neuralzip train gated-pixelcnn DIR -o weights`
(neuralzip.train.pixel has the data, the loop and the recipe).

The network is the one neuralzip.models.gated_pixelcnn runs exactly: a vertical and a horizontal
stack of gated (tanh x sigmoid) masked convolutions and the shared per-pixel head. Quantization:
int16 convolution weights per output channel (within the bound that keeps the compiled sums in
an int32), activations in 1/4096, integer rescales of the gates' pre-activations to 1/4096; the head
as wide exact layers. The float network is kept for the report's nll_float_bits.
"""

import numpy as np

from neuralzip.models import gated_pixelcnn as model
from neuralzip.models.pixel_codec import ACT_ONE, PRE_ONE
from neuralzip.train.image import _torch
from neuralzip.train.pixel import build_head, quantize_head
from neuralzip.train.quantize import int16_layer

NAME = "gated-pixelcnn"
VERSION = 1
CODEC = model.GatedPixelCnnCodec


def build_net(k_mix: int, channels: int, layers: int, head: int):
    torch = _torch()
    nn = torch.nn
    F = nn.functional

    def gate(pre):
        a, b = pre.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    class GatedPixelCnn(nn.Module):
        """x: (value - 128) / 128, [batch, 3, H, W] -> [batch, OUTPUTS(k_mix), H, W] per pixel."""

        def __init__(self):
            super().__init__()
            c = channels
            self.v = nn.ModuleList(nn.Conv2d(3 if i == 0 else c, 2 * c, (2, 3)) for i in range(layers))
            self.h = nn.ModuleList(nn.Conv2d(3 if i == 0 else c, 2 * c, (1, 2)) for i in range(layers))
            self.vh = nn.ModuleList(nn.Conv2d(c, 2 * c, 1, bias=False) for _ in range(layers))
            self.o = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(layers))
            self.head = build_head(c, head, k_mix)

        def features(self, x):
            """The last horizontal stack, clipped as the exact one is."""
            v = F.pad(x, (0, 0, 1, 0))[:, :, :-1]  # the pixel above: rows < i only
            h = F.pad(x, (1, 0))[:, :, :, :-1]  # the pixel to the left: columns < j only
            for i in range(layers):
                v = gate(self.v[i](F.pad(v, (1, 1, 1, 0))))  # rows i-1..i of the (shifted) input
                g = gate(self.h[i](F.pad(h, (1, 0))) + self.vh[i](v))
                h = self.o[i](g) + (h if i else 0)
                h = h.clamp(-model.H_LIMIT, model.H_LIMIT)
            return h

        def forward(self, x):
            return self.head(self.features(x))

    return GatedPixelCnn()


def quantize(net, pool: np.ndarray, k_mix: int, seed: int) -> dict:
    """The exact network's arrays (prefix "gpc") and the float copy ("fgpc"). Every layer reads
    integers in 1/ACT_ONE (pixels included); a gate's pre-activations come out in 1/PRE_ONE, the
    residual layer's outputs in 1/ACT_ONE."""
    torch = _torch()
    arr = {f"fgpc.{name}": t.detach().numpy().astype(np.float32) for name, t in net.state_dict().items()}

    def weights(conv):  # [out, in] with the window position major, the channel minor; per input integer
        w = conv.weight.detach().double().numpy()
        return w.transpose(0, 2, 3, 1).reshape(len(w), -1) / ACT_ONE

    def bias(conv):
        return conv.bias.detach().double().numpy()

    for i in range(len(net.v)):
        int16_layer(weights(net.v[i]), bias(net.v[i]), PRE_ONE, model.WEIGHT_MAX, f"gpc.v{i}", arr)
        # the horizontal gate reads [h(j-1), h(j), v(j)]: one accumulation, one scale per output
        int16_layer(np.concatenate([weights(net.h[i]), weights(net.vh[i])], axis=1), bias(net.h[i]), PRE_ONE,
                    model.WEIGHT_MAX, f"gpc.h{i}", arr)
        int16_layer(weights(net.o[i]), bias(net.o[i]), ACT_ONE, model.WEIGHT_MAX, f"gpc.o{i}", arr)
    rng = np.random.default_rng(seed)
    sample = torch.as_tensor(pool[rng.integers(0, len(pool), 64)]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        feats = net.features((sample - 128) / 128).permute(0, 2, 3, 1).reshape(-1, net.o[0].out_channels)
    arr.update(quantize_head(net.head, feats.double().numpy(), k_mix, "gpc"))
    arr["gpc.layers"] = np.array(len(net.v))
    return arr
