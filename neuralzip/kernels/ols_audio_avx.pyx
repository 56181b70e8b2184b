# The ols-cascade kernels compiled with AVX (setup.py adds -mavx on x86-64): ols_audio.pyx's
# vector helpers then use four-lane vectors, with the same order of operations and so the same
# bits. neuralzip/kernels/dispatch.py picks this module where the CPU has AVX.
include "ols_audio.pyx"
