import sys, numpy as np
from paths import WORK
from PIL import Image
from vae_adaptive_mixture import vae_bits_image
from neuralzip.models import get_codec
net = get_codec("vae", "image").net
for path in sys.argv[1:]:
    s = np.asarray(Image.open(path).convert("RGB"))
    b = vae_bits_image(net, s)
    np.save(WORK + path.split('/')[-1] + '.vae.npy', b.astype(np.float32))
    print(path, s.shape, b.mean(), flush=True)
