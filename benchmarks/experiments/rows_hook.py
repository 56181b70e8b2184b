"""What the rows experiments share: a classic-family model run over a photo with a hook that sees
every wavefront step's count rows and coded symbols (models/classic_image.py, `_model_rows`), and
the crops they run on. Likelihood only; nothing here is written to a file."""

import copy

import numpy as np
from PIL import Image

from neuralzip.models import get_codec
from neuralzip.models.base import Signal


def run_with_hook(model: str, level: int, img: np.ndarray, on_step, weights=None) -> None:
    """Price img with MODEL at LEVEL (with its shipped weights, or `weights`); after each step and
    channel, before the model learns from the step, on_step(view, sym, rows) sees the StepView, the
    coded bucket symbols and the rows they were coded with (float64 [n, buckets]). What on_step
    keeps per chunk belongs in view.model_state (a chunk has its own view)."""
    codec = get_codec(model, "image", level=level)
    # a copy: get_codec hands out the registry's instance, and a hook left on it would run again,
    # nested, inside the next photo's
    codec = copy.copy(codec if weights is None else codec.with_weights(weights))
    model_hook = codec._model_rows

    def hook(params, bits):
        inner = model_hook(params, bits)

        def model_rows(view):
            rows = view.rows[:view.n] if inner is None else inner(view)
            for k in ("view", "x"):  # what the context-mlp family's float-model observer reads
                if hasattr(inner, k):
                    setattr(model_rows, k, getattr(inner, k))
            model_rows.rows = np.array(rows, dtype=np.float64)
            return rows

        def learn(view, sym):
            on_step(view, sym, model_rows.rows)
            if getattr(inner, "learn", None):
                inner.learn(view, sym)

        model_rows.learn = learn
        return model_rows

    codec._model_rows = hook
    codec.likelihood(img, Signal("image", img.shape, 8))


def centre_crop(path, height: int = 384, width: int = 512) -> np.ndarray:
    """The photo's RGB centre crop."""
    a = np.asarray(Image.open(path).convert("RGB"))
    h, w = a.shape[:2]
    return np.ascontiguousarray(a[h // 2 - height // 2:h // 2 + height // 2, w // 2 - width // 2:w // 2 + width // 2])


def whole(path) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))


def report(photos, measure, reference: str) -> None:
    """measure(path) -> {variant: bits}; prints each photo's and the total's variants against `reference`."""
    grand = {}
    for path in photos:
        t = measure(path)
        print(str(path).split("/")[-1], {k: round(float(v / t[reference]), 4) for k, v in t.items()}, flush=True)
        for k, v in t.items():
            grand[k] = grand.get(k, 0.0) + v
    print("total", {k: round(float(v / grand[reference]), 4) for k, v in grand.items()})
