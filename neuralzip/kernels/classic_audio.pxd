# The per-block plans of the audio models (declared here so lpc_nlms_mlp.pyx can take them typed).

cdef class BlockPlans:
    cdef readonly Py_ssize_t nblocks, nch
    cdef readonly object modes, shifts, orders, qshifts, coefs
