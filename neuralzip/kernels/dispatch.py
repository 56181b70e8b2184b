"""Picks the build of a kernel module that suits this CPU.

`ols_audio` is built twice on x86-64 (setup.py): generic (SSE2, two-lane vectors), and with
AVX as `ols_audio_avx` (four-lane vectors, about 10% faster). Both compute the same bits in
the same order, so a file coded by either decodes with the other; the tests compare them.
NEURALZIP_GENERIC_KERNELS=1 forces the generic build (for checks and for comparison).
"""

import os


def ols_audio():
    from neuralzip.kernels import ols_audio as generic
    if os.environ.get("NEURALZIP_GENERIC_KERNELS") == "1" or not generic.cpu_has_avx():
        return generic
    try:
        from neuralzip.kernels import ols_audio_avx
    except ImportError:  # not built: a machine that is not x86-64, or a build without it
        return generic
    return ols_audio_avx
