"""Value maps: the set of sample values a chunk of a recording uses, for recordings that use only
some of the values their bit depth allows (a gain applied after quantisation leaves every value
k * g rounded, and the values in between never occur).

With a map, ols-cascade codes each residual as a difference of ranks among the used values
(kernels/ols_audio.pyx, LaneState.set_value_map), so it pays nothing for values that never occur.
The map itself is the bitmap of the bit depth's values (bit j: value vmin + j is used), deflated;
a chunk carries one only where it pays for itself (`worth_mapping`).
"""

import zlib

import numpy as np

from neuralzip.kernels.ols_audio import HIST, MAP_MAX_BITS


def histogram(samples: np.ndarray, bits: int) -> np.ndarray:
    """How often each value of `bits`-bit samples occurs (index: value + 2^(bits-1))."""
    return np.bincount(np.asarray(samples, np.int64).reshape(-1) + (1 << (bits - 1)), minlength=1 << bits)


def used_values(counts: np.ndarray) -> np.ndarray:
    """The values a histogram has, increasing (int32)."""
    return (np.flatnonzero(counts) - len(counts) // 2).astype(np.int32)


def pack(used: np.ndarray, bits: int) -> bytes:
    """The deflated bitmap of `used` over the values of `bits`-bit samples."""
    vmin = -(1 << (bits - 1))
    bitmap = np.zeros(1 << bits, bool)
    bitmap[used.astype(np.int64) - vmin] = True
    return zlib.compress(np.packbits(bitmap, bitorder="little").tobytes(), 9)


def unpack(data: bytes, bits: int) -> np.ndarray:
    """pack's inverse, for untrusted bytes: ValueError unless they inflate to exactly one bitmap
    of the bit depth with at least one value set."""
    if not 1 <= bits <= MAP_MAX_BITS:
        raise ValueError(f"corrupt chunk: a value map for {bits}-bit samples")
    size = max(1, (1 << bits) // 8)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, size + 1)
    except zlib.error:
        raise ValueError("corrupt chunk: the value map does not inflate") from None
    if len(raw) != size or not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise ValueError("corrupt chunk: the value map has the wrong size")
    bitmap = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:1 << bits].astype(bool)
    used = (np.flatnonzero(bitmap) - (1 << (bits - 1))).astype(np.int32)
    if not len(used):
        raise ValueError("corrupt chunk: an empty value map")
    return used


def saving_bits(counts: np.ndarray) -> float:
    """A rough count of the bits a map saves: each sample's log2 of the spacing of used values
    around it (a value whose neighbours on either side are both used saves nothing)."""
    v = np.flatnonzero(counts)
    if len(v) < 3:
        return 0.0
    counts = counts[v]
    spacing = np.empty(len(v), np.float64)
    spacing[1:-1] = (v[2:] - v[:-2]) / 2.0
    spacing[0], spacing[-1] = v[1] - v[0], v[-1] - v[-2]
    return float((counts * np.log2(np.maximum(spacing, 1.0))).sum())


MARGIN = 1.25  # chosen on audio/train: maps with an estimate of 1.1-2x their size saved 0.6-3.6%,
# one at 1.03x saved nothing, one at 0.7x cost 2.8%


def worth_mapping(counts: np.ndarray, bits: int, packed: bytes) -> bool:
    """A map pays where the estimated saving exceeds its own size by MARGIN (the estimate is rough
    both ways: a residual smaller than the spacing saves less than log2 of it, while a few samples
    of a short recording leave gaps that are chance, not a gain)."""
    return bits <= MAP_MAX_BITS and saving_bits(counts) > MARGIN * 8 * len(packed) + 256


def chunk_section(st, lengths) -> bytes:
    """The encoder's map section of a chunk whose samples are loaded into lane state `st`: b"\\0"
    (no map), or b"\\1", the packed map's length (u32, little endian) and the packed map, in which
    case the map is set on `st`."""
    if st.bits > MAP_MAX_BITS:
        return b"\0"
    parts = [st.s[k, :, HIST:HIST + int(n)] for k, n in enumerate(lengths) if n]
    lo, hi = -(1 << (st.bits - 1)), (1 << (st.bits - 1)) - 1
    if not parts or any(p.min() < lo or p.max() > hi for p in parts):
        return b"\0"  # nothing to map, or samples the kernel refuses with its own message
    counts = sum(histogram(p, st.bits) for p in parts)
    used = used_values(counts)
    packed = pack(used, st.bits)
    if not worth_mapping(counts, st.bits, packed):
        return b"\0"
    st.set_value_map(used)
    return b"\1" + len(packed).to_bytes(4, "little") + packed


def read_section(data: bytes, bits: int) -> tuple[np.ndarray | None, int]:
    """chunk_section's inverse, for untrusted bytes: (the used values or None, the bytes it took)."""
    if not data or data[0] not in (0, 1):
        raise ValueError("corrupt chunk: no value-map flag")
    if data[0] == 0:
        return None, 1
    if len(data) < 5:
        raise ValueError("corrupt chunk: the value map is cut short")
    n = int.from_bytes(data[1:5], "little")
    if 5 + n > len(data):
        raise ValueError("corrupt chunk: the value map is cut short")
    return unpack(data[5:5 + n], bits), 5 + n
