"""neuralzip: lossless image and audio compression driven by generative models."""

__version__ = "0.1.0"
FORMAT_VERSION = 1


def _single_threaded_blas() -> None:
    """The learned models multiply small integer-valued matrices once per wavefront
    step; OpenBLAS's threads cost more than they save there and fight the kernels'
    OpenMP threads for the cores (15 s instead of 2 s for a 768x512 photo on 2 cores).
    Read by OpenBLAS when numpy loads, so it must be set before numpy is imported;
    results are exact either way, only speed depends on it."""
    import os

    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


_single_threaded_blas()
