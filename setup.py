"""Builds the compiled kernels (neuralzip/kernels/*.pyx) when the package is installed.

Cython, not hand-written C: the kernels are typed loops over numpy arrays, and Cython
compiles exactly those to C ahead of time with bounds checks where we ask for them
(every index that can come from a stream), releases the GIL for OpenMP lanes, and keeps
the loops readable next to the Python that orchestrates them.

The shipped build is portable: -O2 (NEURALZIP_OPT overrides it, e.g. -O0 for the build
check), no -march=native, no fast-math, and no floating-point contraction, so a file
made on one machine decodes on any x86-64 or ARM64 machine. One kernel also gets an AVX
twin on x86-64 (ARCH_FLAGS below), chosen at run time and computing the same bits.
"""

import os
import platform
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

OPT = os.environ.get("NEURALZIP_OPT", "-O2")
PORTABLE = [OPT, "-fno-fast-math", "-ffp-contract=off", "-fno-strict-aliasing", "-fwrapv"]
OPENMP = [] if sys.platform in ("darwin", "win32") else ["-fopenmp"]
# POSIX threads for the kernels' own worker threads (job_worker.pxd; none on Windows)
PTHREAD = [] if sys.platform == "win32" else ["-pthread"]

# Network kernels whose inner products gcc vectorizes (int16 x int16 -> int32) only with its
# dynamic cost model at -O2: 2.5x faster, and no result can change (integer arithmetic, -fwrapv;
# context_mlp's double loops, never reassociated without fast-math, do lane by lane what the scalar
# code does; the -O0 build check compiles them unvectorized and compares the bytes).
VECTORIZED = {"context_mlp", "gated_pixelcnn", "row_lstm", "wavenet"}

# Modules built a second time for x86-64 CPUs with AVX, from the same code (`include`): each
# *_avx.pyx compiles its twin with -mavx, and neuralzip/kernels/dispatch.py picks it at run time
# where the CPU has AVX. AVX adds wider vectors and no fused multiply-add (that is -mfma, never
# given), so every double operation rounds as in the generic build: the same bits.
X86_64 = platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32"
ARCH_FLAGS = {"ols_audio_avx": ["-mavx"]}

# NEURALZIP_KERNELS=a,b builds only those modules (quicker while working on one family)
ONLY = {n for n in os.environ.get("NEURALZIP_KERNELS", "").split(",") if n}

extensions = [
    Extension(f"neuralzip.kernels.{pyx.stem}", [str(pyx)],
              extra_compile_args=PORTABLE + OPENMP + PTHREAD + ARCH_FLAGS.get(pyx.stem, [])
              + (["-fvect-cost-model=dynamic"] if pyx.stem in VECTORIZED else []),
              extra_link_args=OPENMP + PTHREAD,
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
    for pyx in sorted(Path("neuralzip/kernels").glob("*.pyx"))
    if (not ONLY or pyx.stem in ONLY) and (X86_64 or pyx.stem not in ARCH_FLAGS)
]

# Translated and compiled on every core, up to 8 jobs (NEURALZIP_BUILD_JOBS overrides): a kernel's
# flags, and so its machine code, do not depend on the job count. On 2 cores the build takes half
# the time (1 min 50 s against 3 min 34 s here), and so does every fresh install and build check.
JOBS = int(os.environ.get("NEURALZIP_BUILD_JOBS", 0)) or min(os.cpu_count() or 1, 8)

setup(ext_modules=cythonize(extensions, nthreads=JOBS if JOBS > 1 else 0, language_level=3, compiler_directives={
    "boundscheck": True, "wraparound": False, "initializedcheck": False, "cdivision": False,
    "embedsignature": True}), options={"build_ext": {"parallel": JOBS}})
