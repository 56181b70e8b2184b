"""The model registry: every codec the CLI can name, per medium, and the decoder of every
member this neuralzip can read (decoder_for), including those of files written by 0.1.0
under model names that have since been renamed."""

from neuralzip.errors import ContainerError, InputError
from neuralzip.models.base import Codec
from neuralzip.models.classic_audio import ClassicAudioCodec
from neuralzip.models.classic_image import ClassicImageCodec
from neuralzip.models.histogram import HistogramCodec
from neuralzip.models.jpeg_coefficients import JpegCoefficientsCodec, recognises as recognises_decoded_jpeg
from neuralzip.models.context_mlp import ContextMLPCodec
from neuralzip.models.gated_pixelcnn import GatedPixelCnnCodec
from neuralzip.models.local_ls_image import LocalLsImageCodec
from neuralzip.models.local_ls_mlp import LocalLsMlpCodec
from neuralzip.models.lpc_nlms_mlp import LpcNlmsMlpCodec
from neuralzip.models.made import MadeCodec
from neuralzip.models.nade import NadeCodec
from neuralzip.models.ols_audio import OlsCascadeCodec
from neuralzip.models.pixelrnn import PixelRnnCodec
from neuralzip.models.vae import VAECodec
from neuralzip.models.wavenet import WaveNetCodec

_REGISTRY: dict[tuple[str, str], Codec] = {}


def register(codec: Codec) -> None:
    _REGISTRY[(codec.name, codec.kind)] = codec


for _codec in (ContextMLPCodec(), VAECodec(), ClassicImageCodec(), LocalLsImageCodec(), LocalLsMlpCodec(), MadeCodec(), NadeCodec(),
               GatedPixelCnnCodec(), PixelRnnCodec(),
               LpcNlmsMlpCodec(), OlsCascadeCodec(), WaveNetCodec(),
               ClassicAudioCodec(), HistogramCodec("image"), HistogramCodec("audio"), JpegCoefficientsCodec()):
    register(_codec)

# Members written by neuralzip 0.1.0 under the models' old names: (model, kind, weights hash) ->
# the model that decodes them. Recognised by the shipped weights' hash, never by the name alone:
# `pixelcnn` and `wavenet` are kept free for real models of those families, and a member naming
# them with any other weights is unknown to this version.
LEGACY_DECODERS = {
    ("pixelcnn", "image", "ce1c4fdce63f11d6"): "context-mlp",  # weights/context-mlp-image-v1-*
    ("pixelcnn", "image", "bae704e7646af782"): "context-mlp",  # weights/context-mlp-image-v2-*
    ("wavenet", "audio", "1a8e1f34ceaf2c9f"): "lpc-nlms-mlp",  # weights/lpc-nlms-mlp-audio-v1-*
}

# What --model auto picks per medium: the best shipped model that meets its speed target.
# context-mlp codes images smaller than classic but takes 2-3x the time of `cjxl -e 7` (the target
# is 1.5x), so images get classic. ols-cascade codes audio smaller than lpc-nlms-mlp, FLAC and
# WavPack on every source of audio/valid and runs above 20x real time both ways
# (benchmarks/ols_audio.py).
# --model auto --level N takes that model at its strongest level up to N, except where STRONG names
# a model for the medium: from level 2 up auto takes that one. local-ls-mlp (the context MLP's
# distribution centred on least squares fitted around every pixel) codes photos smallest, but takes
# several times `cjxl -e 7`'s time, so it is image's strong choice, within the time of `cjxl -e 9`
# (benchmarks/local_ls.py).
AUTO = {"image": "classic", "audio": "ols-cascade"}
STRONG = {"image": "local-ls-mlp"}
# ...except that an image which is a decoded JPEG gets jpeg-coefficients at every level: its
# coefficients take far fewer bits than any pixel model spends (benchmarks/jpeg_coefficients.py).
DECODED_JPEG = "jpeg-coefficients"


def auto_model(kind: str, samples, bits: int) -> str | None:
    """The model --model auto takes for these samples when their content decides it (None: the
    medium's AUTO or STRONG model, by level)."""
    if kind == "image" and recognises_decoded_jpeg(samples, bits):
        return DECODED_JPEG
    return None


def all_codecs() -> list[Codec]:
    return list(_REGISTRY.values())


def model_names() -> list[str]:
    return sorted({name for name, _ in _REGISTRY} | {"auto"})


def handles(name: str, kind: str) -> bool:
    """Whether model `name` codes this medium (auto codes both)."""
    return name == "auto" or (name, kind) in _REGISTRY


def get_codec(name: str, kind: str, weights: str | None = None, level: int = 1) -> Codec:
    """The codec `name` for this medium at compression `level`, with a user's weights file if one is
    given. `auto` takes the medium's AUTO model (from level 2 up its STRONG model, where it has one) at
    the strongest level it has up to `level`."""
    auto = name == "auto"
    if auto:
        name = STRONG[kind] if level >= 2 and kind in STRONG else AUTO[kind]
    codec = _REGISTRY.get((name, kind))
    if codec is None:
        known = ", ".join(sorted(n for n, k in _REGISTRY if k == kind))
        if any(n == name for n, _ in _REGISTRY):
            raise InputError(f"model {name!r} does not handle {kind} (models for {kind}: {known}, auto)")
        renamed = {old: new for (old, k, _), new in LEGACY_DECODERS.items() if k == kind}.get(name)
        hint = f"; 0.1.0's {name!r} is {renamed!r} now" if renamed else ""
        raise InputError(f"unknown model {name!r} (models for {kind}: {known}, auto{hint})")
    if weights is not None:
        codec = codec.with_weights(weights)
    if auto:
        level = max(v for v in codec.levels if v <= level)
    return codec.at_level(level)


def decoder_for(model: str, kind: str, weights_hash: str | None, user_weights: str | None = None) -> Codec:
    """The codec that decodes a member recording `model`, `kind` and `weights_hash`, holding those
    weights: the shipped file with that hash, or `user_weights` (the user's --weights file), which
    must have it. A legacy 0.1.0 name counts only with the weights it shipped with (LEGACY_DECODERS).
    Anything else is a ContainerError (the member cannot be decoded here)."""
    from neuralzip import weightstore

    name = LEGACY_DECODERS.get((model, kind, weights_hash), model)
    codec = _REGISTRY.get((name, kind))  # not get_codec: "auto" is no model a member can record
    if codec is None:
        legacy = any(model == old for old, _, _ in LEGACY_DECODERS)  # an old name: the weights are what failed
        raise ContainerError(f"model {model!r} ({kind}){f' with weights {weights_hash}' if legacy else ''} "
                             "is unknown to this neuralzip")
    if weights_hash != codec.weights_hash:
        if weights_hash is None or codec.weights_hash is None:
            raise ContainerError(f"weights {weights_hash} do not fit model {model!r}")
        codec = codec.with_weights(str(weightstore.locate(weights_hash, user_weights)))
    return codec
