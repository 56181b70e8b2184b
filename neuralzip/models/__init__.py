"""The model registry: every codec the CLI can name, per medium, and the decoder of every
member this neuralzip can read (decoder_for), including those of files written by 0.1.0
under model names that have since been renamed."""

import importlib

from neuralzip.errors import ContainerError, InputError
from neuralzip.models.base import Codec

# Every model's (name, medium) -> its module under neuralzip.models, class and arguments. A codec is
# built (its module imported, with its compiled kernels) when it is first asked for, so a run loads
# only the models it uses (importing all sixteen took 0.02 s of the 0.18 s a small photo's compress took).
_MODELS = {
    ("classic", "image"): ("classic_image", "ClassicImageCodec", ()),
    ("context-mlp", "image"): ("context_mlp", "ContextMLPCodec", ()),
    ("gated-pixelcnn", "image"): ("gated_pixelcnn", "GatedPixelCnnCodec", ()),
    ("histogram", "image"): ("histogram", "HistogramCodec", ("image",)),
    ("jpeg-coefficients", "image"): ("jpeg_coefficients", "JpegCoefficientsCodec", ()),
    ("local-ls", "image"): ("local_ls_image", "LocalLsImageCodec", ()),
    ("local-ls-mlp", "image"): ("local_ls_mlp", "LocalLsMlpCodec", ()),
    ("made", "image"): ("made", "MadeCodec", ()),
    ("nade", "image"): ("nade", "NadeCodec", ()),
    ("pixelrnn", "image"): ("pixelrnn", "PixelRnnCodec", ()),
    ("vae", "image"): ("vae", "VAECodec", ()),
    ("classic", "audio"): ("classic_audio", "ClassicAudioCodec", ()),
    ("histogram", "audio"): ("histogram", "HistogramCodec", ("audio",)),
    ("lpc-nlms-mlp", "audio"): ("lpc_nlms_mlp", "LpcNlmsMlpCodec", ()),
    ("ols-cascade", "audio"): ("ols_audio", "OlsCascadeCodec", ()),
    ("wavenet", "audio"): ("wavenet", "WaveNetCodec", ()),
}
_REGISTRY: dict[tuple[str, str], Codec] = {}  # the codecs built so far, and any registered


def register(codec: Codec) -> None:
    _REGISTRY[(codec.name, codec.kind)] = codec


def _registered(name: str, kind: str) -> Codec | None:
    """The codec of that name for the medium (built on first use), or None."""
    codec = _REGISTRY.get((name, kind))
    if codec is None and (name, kind) in _MODELS:
        module, cls, args = _MODELS[(name, kind)]
        codec = getattr(importlib.import_module(f"neuralzip.models.{module}"), cls)(*args)
        _REGISTRY[(name, kind)] = codec
    return codec


def _names() -> set[tuple[str, str]]:
    return set(_MODELS) | set(_REGISTRY)


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
    if kind == "image":
        from neuralzip.models.jpeg_coefficients import recognises

        if recognises(samples, bits):
            return DECODED_JPEG
    return None


def all_codecs() -> list[Codec]:
    """Every codec (this builds them all)."""
    return [_registered(name, kind) for name, kind in sorted(_names())]


def model_names() -> list[str]:
    return sorted({name for name, _ in _names()} | {"auto"})


def handles(name: str, kind: str) -> bool:
    """Whether model `name` codes this medium (auto codes both)."""
    return name == "auto" or (name, kind) in _names()


def get_codec(name: str, kind: str, weights: str | None = None, level: int = 1) -> Codec:
    """The codec `name` for this medium at compression `level`, with a user's weights file if one is
    given. `auto` takes the medium's AUTO model (from level 2 up its STRONG model, where it has one) at
    the strongest level it has up to `level`."""
    auto = name == "auto"
    if auto:
        name = STRONG[kind] if level >= 2 and kind in STRONG else AUTO[kind]
    codec = _registered(name, kind)
    if codec is None:
        known = ", ".join(sorted(n for n, k in _names() if k == kind))
        if any(n == name for n, _ in _names()):
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
    codec = _registered(name, kind)  # not get_codec: "auto" is no model a member can record
    if codec is None:
        legacy = any(model == old for old, _, _ in LEGACY_DECODERS)  # an old name: the weights are what failed
        raise ContainerError(f"model {model!r} ({kind}){f' with weights {weights_hash}' if legacy else ''} "
                             "is unknown to this neuralzip")
    if weights_hash != codec.weights_hash:
        if weights_hash is None or codec.weights_hash is None:
            raise ContainerError(f"weights {weights_hash} do not fit model {model!r}")
        codec = codec.with_weights(str(weightstore.locate(weights_hash, user_weights)))
    return codec
