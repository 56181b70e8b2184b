# The kernels' range decoder as an object that Python code and other kernels share: a chunk whose
# steps are partly decoded inside a kernel (the colour table's, colour_table.pyx) and partly through
# Python calls reads one stream through one decoder state.
from neuralzip.kernels.range_decoder cimport RangeDecoder


cdef int check_count_row(const double* row, Py_ssize_t n) except -1


cdef class KernelRangeDecoder:
    cdef RangeDecoder d
    cdef object words  # keeps the stream's words alive: d reads them in place
