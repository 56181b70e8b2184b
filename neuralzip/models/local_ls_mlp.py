"""local-ls-mlp: the context MLP's distribution over local-ls's prediction.

local-ls (neuralzip/models/local_ls_image.py) fits least squares around every pixel and joins
that prediction to the classic blend; context-mlp (neuralzip/models/context_mlp.py) turns the
blend and its sub-predictions into a mixture of logistics over the residual, mixed with the
adaptive counts (the network's weight against them and its output layer learned while coding,
as context-mlp learns them). This model is the two together: the network reads the blend that includes the
least-squares fit (and the activity that its distance from the blend raised), so the pretrained
network supplies the distribution's shape and the fit, learned from the photo itself, its centre.

The blend stays in whole units here (no 1/16 units and no sign flip: the network's mixture is
over the residual itself). Levels, window and chunks are local-ls's; the network is context-mlp's
architecture trained on features recorded from local-ls's blend (`neuralzip train local-ls-mlp`,
weights/RECIPES.md). 8-bit images get the network; other depths are coded as local-ls codes them
without the 1/16 units.
"""

from neuralzip.models.classic_image import BLEND_INTEGER, OLS_BLENDS
from neuralzip.models.context_mlp import ContextMLPCodec
from neuralzip.models.local_ls_image import LocalLsImageCodec


# Method resolution: local-ls's layout (params, chunks as one wavefront, the fit, levels) first,
# then context-mlp's network (weights, count-row hook, float-model tally), then classic's loop.
class LocalLsMlpCodec(LocalLsImageCodec, ContextMLPCodec):
    name = "local-ls-mlp"
    kind = "image"
    summary = "context MLP's logistic mixture centred on local-ls's least-squares blend (8-bit)"
    # the network reads the blend it was trained on: weights v1 the integer blend (files without
    # "blend"), v2 and v3 (twice as wide) local-ls's blend with the least-squares mixer ("blend": 4;
    # "blend": 5, the same with classic's parity byte per chunk, which the network reads alike; new
    # files "blend": 6, the same with four count rows per activity class to mix the network with)
    blend_unrecorded, blends_recorded = BLEND_INTEGER, OLS_BLENDS
    weights_prefix = "local-ls-mlp-image"  # the network trained over local-ls's blend (weights/RECIPES.md)
