"""neuralzip: lossless image and audio compression driven by generative models."""

__version__ = "0.1.0"
FORMAT_VERSION = 1
