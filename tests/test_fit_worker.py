"""The least-squares mixer's fits learned on a worker thread (kernels/job_worker.pxd), which also
predicts the first channel of the next step while the caller codes the later channels of this one
(predict_ahead): a chunk coded with the worker writes the same bytes as one coded without it, and
each decodes the other's file exactly, for every mode whose chunks use the mixer (grey, colour,
colour with alpha, 16-bit, and a film scan whose sets split by parity)."""

import numpy as np
import pytest

from neuralzip import api, container
from neuralzip.errors import NeuralzipError
from neuralzip.kernels import classic_image as _k
from neuralzip.models import classic_image

from test_golden import _rewrite
from test_parity_taps import _film_scan


def _photo(h, w, channels, bits=8, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 0.5 + 0.3 * np.sin(xx / 9 + yy / 13)[..., None] + 0.1 * np.cos(np.arange(channels) + yy[..., None] / 7)
    noisy = base * ((1 << bits) - 1) + rng.normal(0, 2 ** (bits - 6), (h, w, channels))
    img = np.clip(np.rint(noisy), 0, (1 << bits) - 1).astype(np.uint16 if bits > 8 else np.uint8)
    return img[..., 0] if channels == 1 else img


def _coded(monkeypatch, img, threads, ahead=None):
    """The .nz bytes and the chunk states' worker flags with max_threads() saying `threads`
    (ahead: a list that counts the steps whose first channel the worker predicted)."""
    monkeypatch.setattr(classic_image, "max_threads", lambda: threads)
    if ahead is not None:
        predicted = _k.predicted
        monkeypatch.setattr(_k, "predicted", lambda st: (ahead.append(1), predicted(st))[1])
    made = []
    original = classic_image._ChunkState

    class Recorded(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.kernel.fit_thread)

    monkeypatch.setattr(classic_image, "_ChunkState", Recorded)
    return api.compress_array(img, "image", model="classic"), made


@pytest.mark.parametrize("img", [
    _photo(40, 56, 1), _photo(48, 40, 3, seed=1), _photo(33, 47, 4, seed=2), _photo(36, 44, 3, bits=16, seed=3),
    _film_scan(64, 96)], ids=["grey", "rgb", "rgba", "rgb16", "film-scan"])
def test_the_worker_writes_the_same_bytes_and_each_decodes_the_other(monkeypatch, img):
    ahead, ahead_alone = [], []
    with_worker, states = _coded(monkeypatch, img, 2, ahead)
    assert states and all(states), "the worker thread was not used"
    # every wavefront step but the first (one chunk, one tile: width + 2 * height - 2 steps), where
    # there are later channels to code meanwhile
    steps = img.shape[1] + 2 * img.shape[0] - 2
    assert len(ahead) == (steps - 1 if img.ndim == 3 else 0), "the worker predicted ahead or did not"
    alone, states_alone = _coded(monkeypatch, img, 1, ahead_alone)
    assert states_alone and not any(states_alone) and not ahead_alone
    assert with_worker == alone
    for threads in (1, 2):
        monkeypatch.setattr(classic_image, "max_threads", lambda: threads)
        assert np.array_equal(api.decompress_array(with_worker).reshape(img.shape), img)


def test_a_chunk_abandoned_while_its_fits_learn_is_refused_or_decodes_elsewhere(monkeypatch):
    """A chunk damaged past its CRC (made to match, as a hostile file would) stops mid-way or decodes
    to other pixels with the fits' jobs posted to the worker: the one-line error or other pixels,
    the same on every try, with the worker or without (its state goes away after its last job)."""
    img = _photo(64, 64, 3, seed=4)
    data, _ = _coded(monkeypatch, img, 2)
    _, [member] = container.loads(data)
    [chunk] = member.chunks
    rng = np.random.default_rng(5)
    outcomes = set()
    for _ in range(4):
        p = bytearray(chunk)
        at = int(rng.integers(len(p) // 4, len(p) - 16))
        p[at:at + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        hostile = _rewrite(data, chunks=[bytes(p)])
        results = []
        for threads in (2, 1, 2):
            monkeypatch.setattr(classic_image, "max_threads", lambda: threads)
            try:
                results.append(api.decompress_array(hostile).tobytes())
            except NeuralzipError as e:
                assert "\n" not in str(e)
                results.append("refused")
        assert results[0] == results[1] == results[2]
        outcomes.add(results[0] == img.tobytes())
    assert outcomes == {False}


def test_a_state_without_a_longest_step_is_refused():
    h, w, c = 4, 4, 3
    nsub = 2 * _k.BASE
    with pytest.raises(ValueError, match="longest step"):
        _k.ImageChunkState(img=np.zeros((h, w, c), np.int64), counts=np.ones((c, _k.NCLS, 8), np.int64),
                           totals=np.full((c, _k.NCLS), 8, np.int64), bias_sum=np.zeros((c, _k.N_BIAS_CONTEXTS),
                                                                                          np.int64),
                           bias_cnt=np.zeros((c, _k.N_BIAS_CONTEXTS), np.int64), maxv=255, shift=0, nsub=nsub,
                           tile_h=4, tile_w=4, fine=True, mixer=_k.MIXER_OLS)
