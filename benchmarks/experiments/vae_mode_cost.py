"""What would coding the vae's latents at their posterior's mode cost, in the exact model? (stop 49)

    PYTHONPATH=. python benchmarks/experiments/vae_mode_cost.py PHOTO...

Bits-back pops each latent from the posterior q(z|x, c) and gets -log2 q back when the decoder
pushes it again. If instead the encoder took q's most probable bin and coded it under the prior
(no bits-back), the file would grow by -log2 q(mode|x, c), summed over every latent. This codes
each photo with the shipped weights (one chain) and prices that sum with the exact integer
posterior rows the codec uses, beside the chain's coded size and exact -ELBO.
"""
import sys

import numpy as np
from PIL import Image
from vae_phases import chain_units

from neuralzip.coding.stream import symbol_bits
from neuralzip.models import get_codec
from neuralzip.models import vae as V


def main():
    net = get_codec("vae", "image").net
    mode_total = elbo_total = dims = 0
    for path in sys.argv[1:]:
        s = np.asarray(Image.open(path).convert("RGB"))
        plan, x, shapes = chain_units(net, s)
        data, tally, _ = V.encode_chain(net, x, shapes, plan, 0, len(x))
        mode_bits = 0.0
        for a, e in plan.spans(0, len(x)):
            q = net.q_rows(x[a:e], plan.context(x, a, e))
            mode_bits += float(np.sum(symbol_bits(np.argmax(q, axis=1), q)))
        elbo = float(tally.units.sum() + tally.initial)
        mode_total, elbo_total, dims = mode_total + mode_bits, elbo_total + elbo, dims + s.size
        print(f"{path.split('/')[-1]}: coded {8 * len(data) / s.size:.4f}, exact -ELBO {elbo / s.size:.4f}, "
              f"-log2 q(mode) {mode_bits / s.size:.6f} bits per subpixel", flush=True)
    print(f"total: exact -ELBO {elbo_total / dims:.5f}, -log2 q(mode) {mode_total / dims:.6f} bits per subpixel "
          f"({mode_total:.1f} bits in all)")


if __name__ == "__main__":
    main()
