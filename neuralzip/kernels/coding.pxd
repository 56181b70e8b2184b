# The kernels' range decoder as an object that Python code and other kernels share: a chunk whose
# steps are partly decoded inside a kernel (the colour table's, colour_table.pyx) and partly through
# Python calls reads one stream through one decoder state.
from neuralzip.kernels.range_decoder cimport RangeDecoder
from libc.stdint cimport int32_t, int64_t
from neuralzip.kernels.range_encoder cimport RangeEncoder


cdef int check_count_row(const double* row, Py_ssize_t n) except -1


cdef class KernelRangeDecoder:
    cdef RangeDecoder d
    cdef object words  # keeps the stream's words alive: d reads them in place
    cdef int decode_rows(self, const double[:, ::1] rows, int32_t* sym) except -1
    cdef int decode_low_bits(self, const int64_t* nbits, int64_t* low, Py_ssize_t n) except -1


# The kernels' range encoder as an object: Python calls and kernels (the colour table's steps,
# colour_table.pyx) code into one stream through one state.
cdef class KernelRangeEncoder:
    cdef RangeEncoder e
    cdef readonly bint tally  # whether it adds up the information content of what it codes
    cdef public double bits  # the information content coded so far (with tally)
    cdef object sealed  # the finished stream's bytes (None while open)
    cdef int check_open(self) except -1
    cdef int encode_counts(self, const int32_t* symbols, Py_ssize_t n, const double* rows, Py_ssize_t row_step,
                           Py_ssize_t m) except -1
    cdef int code_counts(self, const int32_t* symbols, Py_ssize_t n, const double* rows, Py_ssize_t row_step,
                         Py_ssize_t m, bint tally) except -1
    cdef int encode_low_bits(self, const int64_t* values, const int64_t* nbits, Py_ssize_t n) except -1
    cdef int encode_uniform(self, const int64_t* values, const int32_t* sizes, Py_ssize_t n) except -1
