"""Would two networks code smaller than one? (stop 62; a measurement, nothing shipped)

    PYTHONPATH=. python benchmarks/experiments/network_pair.py WEIGHTS_A WEIGHTS_B LEVEL PHOTO...

local-ls-mlp's rows come from one network's mixture of K logistics (then mixed with the adaptive
counts). Here the two networks, both reading the same features, make one mixture of 2K
components: A's means, scales and weights as they are, B's weights moved so that B's likeliest
component weighs what A's does. The output layer learned while coding reads both networks' last
hidden layers (its table simply has both widths), and the mixture's weight against the counts is
learned as for one network. Exact and float model, 384 x 512 centre crops; prints each photo's bits
with B alone and with the pair, against A alone (1.0).
"""
import sys

import numpy as np
from rows_hook import centre_crop

from neuralzip.models import get_codec
from neuralzip.models.base import Signal


def joined_heads(ha: np.ndarray, hb: np.ndarray, k: int) -> np.ndarray:
    """[n, 3k] heads (means, scales, weights) of two networks -> [n, 6k]: A's then B's of each part,
    B's weights shifted so that their largest equals A's largest (integers stay integers)."""
    wa, wb = ha[:, 2 * k:], hb[:, 2 * k:]
    wb = wb - wb.max(1, keepdims=True) + wa.max(1, keepdims=True)
    return np.concatenate([ha[:, :k], hb[:, :k], ha[:, k:2 * k], hb[:, k:2 * k], wa, wb], axis=1)


class _JoinedLayer:
    """The two networks of one channel group as one (exact: forward_hidden; float: forward)."""

    def __init__(self, a, b, k: int):
        self.a, self.b, self.k = a, b, k

    def forward_hidden(self, x):
        (ha, hid_a), (hb, hid_b) = self.a.forward_hidden(x), self.b.forward_hidden(x)
        return joined_heads(ha, hb, self.k), np.ascontiguousarray(np.concatenate([hid_a, hid_b], axis=1))

    def forward(self, x):
        return joined_heads(self.a.forward(x), self.b.forward(x), self.k)


class JoinedNetwork:
    """What context_mlp's _Network gives the codec, for two networks at once."""

    def __init__(self, a, b):
        for table in ("cdf", "inv", "exp"):
            if not np.array_equal(getattr(a, table), getattr(b, table)):
                raise SystemExit(f"the two weights files have different {table} tables")
        self.k_mix, self.mix_w = 2 * a.k_mix, a.mix_w
        self.cdf, self.inv, self.exp = a.cdf, a.inv, a.exp
        self.nets = [_JoinedLayer(a.nets[g], b.nets[g], a.k_mix) for g in range(2)]
        self.float_nets = [_JoinedLayer(a.float_nets[g], b.float_nets[g], a.k_mix) for g in range(2)]
        self.hidden = [a.hidden[g] + b.hidden[g] for g in range(2)]


def main():
    wa, wb, level, photos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    codec = get_codec("local-ls-mlp", "image", level=level)
    for path in photos:
        img = centre_crop(path)
        sig = Signal("image", img.shape, 8)
        a, b, pair = codec.with_weights(wa), codec.with_weights(wb), codec.with_weights(wa)
        pair._net = JoinedNetwork(a.net, b.net)
        (fa, ea), (_, eb), (fp, ep) = (m.likelihood(img, sig) for m in (a, b, pair))
        print(f"{path.split('/')[-1]}: exact B {eb / ea:.4f}, pair {ep / ea:.4f}; float pair {fp / fa:.4f}", flush=True)


if __name__ == "__main__":
    main()
