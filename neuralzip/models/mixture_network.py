"""What every learned image network with a discretized logistic mixture head shares (made,
nade, gated-pixelcnn): a weights file holding the mixture's size and the logistic tables, the
compiled step from integer heads to pmf rows over residual buckets, and the float mixture's
bits for the report's nll_float_bits."""

from pathlib import Path

import numpy as np

from neuralzip import weightstore
from neuralzip.coding import buckets
from neuralzip.errors import InputError
from neuralzip.exact import logistic
from neuralzip.kernels.exact import mixture_rows
from neuralzip.models.classic_image import thread_blocks

MAXV = 255
N_BUCKETS = buckets.alphabet_size(2 * MAXV)  # zigzagged residuals -255..255
LOG_SCALE_MAX = logistic.LOG_SCALE_MIN + (logistic.N_SCALES - 1) / logistic.LOG_SCALE_STEPS


class MixtureNetwork:
    """A network read from a weights file: `{model}.k_mix`, the `lut.*` tables, and whatever the
    subclass's `load` reads."""

    model = ""  # the codec's name, for error messages

    def __init__(self, path: Path):
        self.path = path
        z = weightstore.load(path)
        try:
            self.k_mix = int(z[f"{self.model}.k_mix"])
            self.cdf, self.inv, self.exp = (z[k].astype(np.int64) for k in ("lut.cdf", "lut.inv", "lut.exp"))
            self.load(z)
        except (KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a weights file for the {self.model} model ({exc})") from None
        if not 1 <= self.k_mix <= 8:
            raise InputError(f"{path}: the {self.model} network has the wrong shape for this version of neuralzip")
        self.bounds, self.spans = logistic.bucket_intervals(N_BUCKETS)

    def load(self, z: dict) -> None:
        raise NotImplementedError

    def rows(self, heads: np.ndarray, base16: np.ndarray):
        """-> (integer pmf rows over residual buckets, predicted values) of values with these heads
        (means in 1/16 level relative to base16, scale indices, logits in 1/16 nat)."""
        return mixture_rows(np.ascontiguousarray(base16, np.int64), np.ascontiguousarray(heads, np.int64), self.k_mix,
                            MAXV, self.cdf, self.inv, self.exp, self.bounds, self.spans, thread_blocks(len(heads)))


def mixture_probs(mu: np.ndarray, log_s: np.ndarray, logits: np.ndarray, v: np.ndarray) -> np.ndarray:
    """p(v) under float discretized logistic mixtures (means mu in levels, [..., k_mix] each; v
    [...]), the mass beyond 0..MAXV folded onto the ends: the report's float likelihood."""
    log_s = np.clip(log_s, logistic.LOG_SCALE_MIN, LOG_SCALE_MAX)
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    x = v[..., None].astype(np.float64)
    inv = np.exp(-log_s)
    hi = np.where(x >= MAXV, 1.0, _sigmoid((x + 0.5 - mu) * inv))
    lo = np.where(x <= 0, 0.0, _sigmoid((x - 0.5 - mu) * inv))
    return np.sum(w * (hi - lo), axis=-1)


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))
