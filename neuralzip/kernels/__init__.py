"""Compiled kernels (Cython, built when the package is installed; see setup.py).

Each module holds the hot loops of one family and knows nothing of files, the
container or the CLI; the models call them through small typed faces.
primitives.pxd holds what every family shares (buckets, adaptive counts).
"""
