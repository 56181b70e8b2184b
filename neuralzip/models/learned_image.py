"""What the learned 8-bit image codecs (vae, made, nade) share: a network read lazily from a
weights file (shipped, or the user's --weights), and the classic model for every image that is
not 8-bit, its member's params marked {"fallback": "classic"}."""

from pathlib import Path

from neuralzip.models.base import Codec, Encoded, ParamError, check_chunk_count
from neuralzip.models.classic_image import ClassicImageCodec
from neuralzip.models.prior import Prior


class LearnedImageCodec(Codec):
    """Subclasses name their `weights_prefix` and `network` (a class built from the weights path)."""

    kind = "image"
    weights_prefix = ""
    network = None

    def __init__(self, weights: str | Path | None = None):
        self.weights = Prior(self.weights_prefix, (), weights)  # the file (shipped or the user's) and its hash
        self._net = None
        self._fallback = ClassicImageCodec()

    @property
    def path(self) -> Path:
        return self.weights.path

    @property
    def weights_hash(self) -> str:
        return self.weights.hash

    @property
    def net(self):
        if self._net is None:
            self._net = self.network(self.path)
        return self._net

    def check_params(self, params, signal, nchunks):
        """A classic fallback, or a member of the model itself: no params and one chunk (the vae,
        which chains members, checks its own)."""
        if self.check_fallback(params, signal, nchunks):
            return None
        if params:
            raise ParamError(f"unexpected params {sorted(params)}")
        check_chunk_count(1, nchunks)
        return None

    def with_weights(self, path):
        return type(self)(path)

    def likelihood(self, samples, signal):
        """(float, exact) bits, as the encoder reports them."""
        enc = self.encode(samples, signal)
        return enc.nll_float_bits, enc.nll_bits

    # ---- the classic fallback for images that are not 8-bit

    def encode_fallback(self, samples, signal) -> Encoded:
        enc = self._fallback.encode(samples, signal)
        return Encoded({"fallback": "classic", **enc.params}, enc.chunks, enc.nll_bits, enc.nll_float_bits)

    @staticmethod
    def fallback_params(params: dict) -> dict | None:
        """The classic model's params of a fallback member, None for a member of the model itself."""
        if "fallback" not in params:
            return None
        if params["fallback"] != "classic":
            raise ParamError(f"params.fallback {params['fallback']!r} is not a model this neuralzip has")
        return {k: v for k, v in params.items() if k != "fallback"}

    def check_fallback(self, params, signal, nchunks) -> bool:
        """Check a fallback member's params; -> whether it was one."""
        rest = self.fallback_params(params)
        if rest is None:
            if signal.bits != 8:
                raise ParamError(f"bits {signal.bits}: {self.name} codes 8-bit images only")
            return False
        self._fallback.check_params(rest, signal, nchunks)
        return True
