"""Compiled kernels (Cython, built when the package is installed; see setup.py).

Each module holds the hot loops of one family and knows nothing of files, the
container or the CLI; the models call them through small typed faces.
primitives.pxd holds what every family shares (buckets, adaptive counts).
"""

import os

# Threads waiting for the next parallel loop sleep instead of spinning: the parallel loops
# alternate with serial work (the range coder, step by step), and spinning threads take the
# cores that work needs (on a busy 2-core machine, wavenet's decoder ran 13x slower spinning).
# Set before any compiled module loads OpenMP; OMP_WAIT_POLICY in the environment still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
