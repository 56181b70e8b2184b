"""What the raster-order autoregressive image models decoded along wavefronts share
(gated-pixelcnn, pixelrnn): the per-pixel head, the coding of a plane wavefront by wavefront,
and the Codec the CLI sees.

An image is coded in planes of three channels (grey, LA and RGBA repeat their last channel; the
copies are not coded). A network (a PixelNetwork) computes, for the pixels of wavefront t, from
the pixels of earlier wavefronts only, integer features (`stacks(h, w)`: the compiled state with
`predict(i, j)` and `update(i, j, values)`); a shared head (two exact 1x1 layers) turns them into,
per channel, a discretized logistic mixture whose means read the pixel's earlier channels
linearly (PixelCNN++'s coefficients: G's means move with R, B's with R and G). The mixture is
per channel, not PixelCNN++'s one joint mixture per pixel: coding G under a joint mixture would
need each component's posterior weight given R, a division the integer rows avoid. The
wavefront's slope is the network's: pixel (i, j) is in wavefront slope * i + j.

The encoder runs the same wavefronts with the values known, so both sides compute the same
integers in the same order. Images that are not 8-bit are coded by the classic model.
"""

import numpy as np

from neuralzip import progress
from neuralzip.coding import buckets
from neuralzip.coding.stream import CostCoder, RangeDecoderStream, RangeEncoderStream, symbol_bits
from neuralzip.errors import ContainerError
from neuralzip.exact import logistic
from neuralzip.exact.mlp import QuantizedMLP
from neuralzip.models.base import Encoded
from neuralzip.models.learned_image import LearnedImageCodec
from neuralzip.models.mixture_network import MAXV, MixtureNetwork, mixture_probs

ACT_ONE = 4096  # an activation of 1.0; pixels enter the networks as (value - 128) * 32, i.e. (value - 128) / 128
PRE_ONE = 4096  # a gate's pre-activation of 1.0 (kernels/gates.pxd reads the CDF table between its 1/64 steps)
MEAN_SCALE = 32  # the head's mean outputs are in units of 32 levels
CHANNELS = 3
BASE16 = 16 * 128  # means are relative to the middle value


def outputs(k_mix: int) -> int:
    """Per pixel: for each channel (mean, log-scale, logit) x k_mix, then the k_mix coefficients of
    G on R, of B on R and of B on G."""
    return 12 * k_mix


def head_units(k_mix: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per head output into the exact head's units: round((output + offset) *
    scale) is a mean in 1/16 level, a log-scale index, a logit in 1/16 nat, a coefficient's
    tanh argument in the CDF table's 1/64 steps."""
    per_channel_scale = np.repeat([16.0 * MEAN_SCALE, logistic.LOG_SCALE_STEPS, 16.0], k_mix)
    per_channel_offset = np.repeat([0.0, -logistic.LOG_SCALE_MIN, 0.0], k_mix)
    scale = np.concatenate([np.tile(per_channel_scale, CHANNELS), np.full(3 * k_mix, float(logistic.Z_STEPS))])
    offset = np.concatenate([np.tile(per_channel_offset, CHANNELS), np.zeros(3 * k_mix)])
    return scale, offset


def float_heads(xp, out, v, k_mix: int):
    """The float network's heads [n, 3, 3 * k_mix] (mean in levels relative to 128, log-scale,
    logit) from its outputs [n, outputs] and the pixels' values [n, 3]; xp is numpy or torch."""
    k = k_mix
    coef = xp.tanh(out[:, 9 * k:])
    moved = [0.0, coef[:, :k] * (v[:, :1] - 128), coef[:, k:2 * k] * (v[:, :1] - 128) + coef[:, 2 * k:] * (v[:, 1:2] - 128)]
    heads = []
    for c in range(CHANNELS):
        o = out[:, 3 * k * c:3 * k * (c + 1)]
        mean = o[:, :k] * MEAN_SCALE + moved[c]
        heads.append(xp.concatenate([mean, o[:, k:]], 1) if xp is np else xp.cat([mean, o[:, k:]], 1))
    return np.stack(heads, 1) if xp is np else xp.stack(heads, 1)


def image_planes(samples: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """An image (H, W, C) -> planes of three channels (missing ones repeat the last), and how many
    of each plane's channels are real (coded)."""
    c = samples.shape[2]
    planes, counts = [], []
    for g in range(0, c, CHANNELS):
        planes.append(np.ascontiguousarray(samples[:, :, [min(g + k, c - 1) for k in range(CHANNELS)]], np.int64))
        counts.append(min(CHANNELS, c - g))
    return planes, counts


class PixelNetwork(MixtureNetwork):
    """A per-pixel network: subclasses load their layers (`load`, calling `load_head`), give
    `slope`, `stacks(height, width, blocks=None)` (the compiled state of a plane, on `blocks`
    thread blocks, by default one per thread: the integers are the same for any count),
    `state_bytes(height, width)` and the float network's outputs (`float_outputs(plane)`)."""

    slope = 1  # pixel (i, j) is in wavefront slope * i + j

    def load_head(self, z: dict, prefix: str, channels: int) -> None:
        self.channels = channels
        self.head = QuantizedMLP(z, f"{prefix}.head")
        if (self.head.inputs, self.head.outputs) != (channels, outputs(self.k_mix)):
            raise ValueError("the head has the wrong shape")

    def n_waves(self, height: int, width: int) -> int:
        return self.slope * (height - 1) + width

    def wave_pixels(self, t: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The pixels (i, j) of wavefront t = slope * i + j."""
        i = np.arange(max(0, -(-(t - width + 1) // self.slope)), min(height - 1, t // self.slope) + 1)
        return i, t - self.slope * i

    def pixel_heads(self, feats: np.ndarray) -> np.ndarray:
        """The exact head of pixels whose features are feats [n, C] -> [n, outputs]."""
        return self.head.forward(np.maximum(feats, 0).astype(np.float64))

    def channel_heads(self, heads: np.ndarray, c: int, values: np.ndarray) -> np.ndarray:
        """Channel c's mixture heads [n, 3 * k_mix] (means relative to BASE16), its means moved by
        the pixel's decoded earlier channels values[:, :c]."""
        k = self.k_mix
        out = heads[:, 3 * k * c:3 * k * (c + 1)].copy()
        coef = heads[:, 9 * k:]
        for prev, col in {1: [(0, 0)], 2: [(0, 1), (1, 2)]}.get(c, []):
            t = self._tanh(coef[:, col * k:(col + 1) * k])  # 1/4096
            out[:, :k] += (t * (16 * (values[:, prev:prev + 1] - 128)) + ACT_ONE // 2) >> 12
        return out

    def _tanh(self, z: np.ndarray) -> np.ndarray:
        """tanh(z / 64) in 1/4096: 2 sigma(2x) - 1 from the CDF table."""
        idx = np.clip(2 * z, -logistic.Z_MAX, logistic.Z_MAX) + logistic.Z_MAX
        return (2 * self.cdf[idx] - logistic.CDF_ONE) >> 12

    def state_bytes(self, height: int, width: int) -> int:
        """Memory of stacks(height, width)."""
        raise NotImplementedError

    def float_bits(self, plane: np.ndarray, n_coded: int) -> float:
        """-log2 p of a plane's coded values under the float (training) network (report only)."""
        v = plane.reshape(-1, CHANNELS).astype(np.float64)
        heads = float_heads(np, self.float_outputs(plane), v, self.k_mix)
        k = self.k_mix
        p = mixture_probs(heads[:, :n_coded, :k] + 128, heads[:, :n_coded, k:2 * k], heads[:, :n_coded, 2 * k:],
                          v[:, :n_coded])
        return float(-np.sum(np.log2(np.maximum(p, 1e-300))))


def code_plane(net: PixelNetwork, plane: np.ndarray, n_coded: int, coder, decoding: bool,
               per_value: np.ndarray | None = None) -> float:
    """Code one plane [H, W, 3] wavefront by wavefront, or decode it into `plane` when `decoding`;
    -> the exact bits coded (the encoder's; per_value [H, W, 3], if given, gets each value's).
    The encoder and the decoder run the same steps, the encoder with the values known."""
    height, width = plane.shape[:2]
    stacks = net.stacks(height, width)
    n_waves = net.n_waves(height, width)
    base16 = np.full(height, BASE16, np.int64)
    exact = 0.0
    for t in range(n_waves):
        i, j = net.wave_pixels(t, height, width)
        heads = net.pixel_heads(stacks.predict(i, j))
        values = np.zeros((len(i), CHANNELS), np.int64) if decoding else plane[i, j]
        for c in range(n_coded):
            rows, preds = net.rows(net.channel_heads(heads, c, values), base16[:len(i)])
            if decoding:
                vals = preds + buckets.unzigzag_array(buckets.values_of(coder.symbols(rows), coder))
                if len(vals) and (vals.min() < 0 or vals.max() > MAXV):
                    raise ContainerError("corrupt payload: a decoded value is out of range")
                values[:, c] = vals
            else:
                sym, nlow, low = buckets.buckets_of(buckets.zigzag_array(values[:, c] - preds))
                coder.symbols(sym, rows)
                coder.low_bits(low, nlow)
                bits = symbol_bits(sym, rows) + nlow
                exact += float(np.sum(bits))
                if per_value is not None:
                    per_value[i, j, c] = bits
        if decoding:
            values[:, n_coded:] = values[:, n_coded - 1:n_coded]  # the repeated channels are copies
            plane[i, j] = values
        stacks.update(i, j, values)
        progress.step((t + 1) / n_waves)
    return exact


class PixelCodec(LearnedImageCodec):
    """A per-pixel image model as a codec: `network` is its PixelNetwork class."""

    network = PixelNetwork

    def _code(self, samples, coder, per_value: np.ndarray | None = None) -> tuple[float, float]:
        """Code every plane; -> (exact, float network's) bits. With per_value (shaped like samples),
        each value's exact bits go there and the float network is not run."""
        exact = floats = 0.0
        for p, (plane, n) in enumerate(zip(*image_planes(samples))):
            part = None if per_value is None else np.zeros(plane.shape)
            exact += code_plane(self.net, plane, n, coder, False, part)
            if per_value is None:
                floats += self.net.float_bits(plane, n)
            else:
                per_value[:, :, 3 * p:3 * p + n] = part[:, :, :n]
        return exact, floats

    def encode(self, samples, signal):
        if signal.bits != 8:
            return self.encode_fallback(samples, signal)
        enc = RangeEncoderStream()
        exact, floats = self._code(samples, enc)
        return Encoded({}, [enc.finish()], exact, floats)

    def decode_memory(self, params, signal):
        """The planes (int64), the network's state along the wavefronts, the network itself."""
        rest = self.fallback_params(params)
        if rest is not None:
            return self._fallback.decode_memory(rest, signal)
        h, w, c = signal.shape
        planes = h * w * 3 * -(-c // 3)
        return 8 * planes + self.net.state_bytes(h, w) + (64 << 20)

    def decode(self, params, chunks, signal):
        rest = self.fallback_params(params)
        if rest is not None:
            return self._fallback.decode(rest, chunks, signal)
        h, w, c = signal.shape
        dec = RangeDecoderStream(chunks[0])
        out = np.empty((h, w, c), np.uint8)
        for g in range(0, c, CHANNELS):
            n = min(CHANNELS, c - g)
            plane = np.zeros((h, w, CHANNELS), np.int64)
            code_plane(self.net, plane, n, dec, True)
            out[:, :, g:g + n] = plane[:, :, :n]
        return out

    def bits_per_dim(self, samples, signal):
        if signal.bits != 8:
            return self._fallback.bits_per_dim(samples, signal)
        per_value = np.zeros(samples.shape)
        self._code(samples, CostCoder(), per_value)
        return per_value
