# The range encoder whose words range_decoder.pxd reads: constriction's RangeEncoder (32-bit words,
# a 64-bit state, 24-bit probabilities) written out in C, so that a chunk's symbols are coded in
# calls that take a whole step at a time with no per-call model building, and can be coded from
# inside a kernel. It writes the very words constriction's encoder writes for the same symbols and
# rows (tests/test_range_encoder.py holds it to that); docs/FORMAT.md, "Range-coded symbols",
# spells the arithmetic out.
#
# Carries: the interval's lower end may pass 2^64 after a word has been written. So a word whose
# value a later carry could still change is held back: while lower + range wraps (the interval
# straddles a multiple of 2^64), each word shifted out is counted, not written ("inverted"), and
# once the interval falls on one side, the first held word is written as it was or plus one and
# the others as all ones or all zeros.

from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport realloc

cdef enum:
    ENCODER_PRECISION = 24  # bits of a quantized probability (range_decoder.pxd's RANGE_PRECISION)


ctypedef struct RangeEncoder:
    uint64_t lower           # the interval's lower end (wrapping)
    uint64_t range           # its width; 2^64 - 1 before the first symbol, else at least 2^32
    Py_ssize_t held          # words held back while the interval wraps (0: none)
    uint32_t first_held      # the first of them as it stands
    uint32_t* words          # what is written so far (malloc'd; grows)
    Py_ssize_t nwords
    Py_ssize_t capacity


cdef inline void range_encoder_init(RangeEncoder* e) noexcept nogil:
    e.lower = 0
    e.range = <uint64_t>0xFFFFFFFFFFFFFFFF
    e.held = 0
    e.first_held = 0
    e.words = NULL
    e.nwords = 0
    e.capacity = 0


cdef inline int put_word(RangeEncoder* e, uint32_t w) noexcept nogil:
    """Append a word; -1 where memory runs out."""
    cdef uint32_t* grown
    cdef Py_ssize_t cap
    if e.nwords == e.capacity:
        cap = 2 * e.capacity if e.capacity else 1024
        grown = <uint32_t*>realloc(e.words, cap * sizeof(uint32_t))
        if grown == NULL:
            return -1
        e.words = grown
        e.capacity = cap
    e.words[e.nwords] = w
    e.nwords += 1
    return 0


cdef inline int put_held(RangeEncoder* e, bint carried) noexcept nogil:
    """Write the held words, the carry (or none) resolved."""
    cdef Py_ssize_t i
    if put_word(e, e.first_held + 1 if carried else e.first_held) < 0:
        return -1
    for i in range(1, e.held):
        if put_word(e, 0 if carried else 0xFFFFFFFF) < 0:
            return -1
    e.held = 0
    return 0


cdef inline int range_encode(RangeEncoder* e, uint64_t left, uint64_t prob) noexcept nogil:
    """Narrow the interval onto the slots [left, left + prob) of 2^24 (prob >= 1, left + prob <=
    2^24) and shift out a word where it has grown too narrow. -1 where memory runs out."""
    cdef uint64_t scale = e.range >> ENCODER_PRECISION
    cdef uint64_t new_lower = e.lower + scale * left
    cdef uint32_t w
    e.range = scale * prob
    if e.held and new_lower + e.range > new_lower:
        # the interval no longer wraps: the held words are settled (a carry where lower wrapped)
        if put_held(e, new_lower < e.lower) < 0:
            return -1
    e.lower = new_lower
    if e.range < (<uint64_t>1 << 32):
        e.range = e.range << 32
        w = <uint32_t>(e.lower >> 32)
        e.lower = e.lower << 32
        if e.held:
            e.held += 1
        elif e.lower + e.range > e.lower:
            return put_word(e, w)
        else:
            e.held = 1
            e.first_held = w
    return 0


cdef inline int range_encoder_seal(RangeEncoder* e) noexcept nogil:
    """Write the words that pin the interval down for a decoder that reads zeros past the end:
    the held words, the point lower + 2^32 - 1's top word, and a zero word where the interval's
    upper end shares that word. No symbols: no words. -1 where memory runs out."""
    cdef uint64_t point
    cdef uint32_t point_word
    if e.range == <uint64_t>0xFFFFFFFFFFFFFFFF:
        return 0
    point = e.lower + <uint64_t>0xFFFFFFFF
    if e.held and put_held(e, point < e.lower) < 0:
        return -1
    point_word = <uint32_t>(point >> 32)
    if put_word(e, point_word) < 0:
        return -1
    if <uint32_t>((e.lower + e.range) >> 32) == point_word:
        return put_word(e, 0)
    return 0
