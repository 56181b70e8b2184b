"""Compiled kernels (Cython, built when the package is installed; see setup.py).

Each module holds the hot loops of one family and knows nothing of files, the
container or the CLI; the models call them through small typed faces.
primitives.pxd holds what every family shares (buckets, adaptive counts).
"""

# OpenMP threads: OMP_NUM_THREADS (default: every core). libgomp's own wait policy (spin a
# little, then sleep) is kept: on an idle 2-core machine it decodes the lpc-nlms-mlp lanes of a
# 2-minute recording in 6.5-7.9 s where OMP_WAIT_POLICY=PASSIVE took 12-14 s; PASSIVE only
# wins when the cores are oversubscribed (several neuralzip processes: give each a share of
# OMP_NUM_THREADS instead, as bench --jobs does).
