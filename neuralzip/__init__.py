"""neuralzip: lossless image and audio compression driven by generative models."""

__version__ = "0.1.0"
FORMAT_VERSION = 3  # the container format written (1 and 2 are still read)


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


def open(path, weights=None, max_memory="20G"):  # noqa: A001 (neuralzip.open, as gzip.open and tarfile.open)
    """A .nz archive as a dataset: random access by name or position, len, iteration as numpy arrays
    with their metadata; picklable (see neuralzip.dataset). `max_memory` as for decompress (None or
    0: no limit)."""
    from neuralzip.dataset import Dataset

    return Dataset(path, weights, max_memory)
