"""Structure-aware fuzzer for the decoder (.nz files) and the readers (image and audio files).

    python benchmarks/fuzz.py --cases N --seed S [--jobs 2] [--readers M] [--chunked] [--out FILE]

Decoder: a seed corpus of small files coded by every model (a 32x24 PNG in RGB, one whose
colours repeat (classic's colour table), grey and 16-bit, a 3,000-frame stereo WAV, a mono
8-bit one and a stereo one whose values lie on a lattice, and archives: a mixed one and a vae chain over two images), each in container
version 1 and the version written (3, with version 2's records: the `.v2.nz` files and `Nz2`;
plus archives with a file stored by LZMA and with an ols-cascade pack of three short clips),
is mutated, case by case, from (seed, case number); version-3 files are taken apart by the
reader and put back by the writer (records, CRCs and the member table or brief trailer
consistent), so the same header mutations reach its checks:
  * raw byte flips anywhere;
  * one chunk damaged (bits flipped, a range overwritten, cut short, extended, swapped
    with or replaced by another chunk) and its CRC fixed (and the header's chunk
    length and CRC, when its length changed);
  * one or two values of the JSON header changed (interesting integers, scaled values,
    wrong types, edited lists and objects, deleted keys) and the header CRC fixed;
  * truncation; and mixes of these.
Readers: PNG, TIFF, BMP, PNM, WAV, FLAC and AIFF files damaged the same way (chunks
with fixed CRCs for PNG, header fields such as sizes and channel counts, truncation,
byte flips) and sent through the compress path (read, code with the histogram model,
decode and compare).

--chunked sends every case through files instead (a .nz extracted into files; an input
compressed from a file with the default model and restored into one) with chunked.py's
threshold at 0, so every member whose model and format allow it is coded and decoded chunk by
chunk: the block readers and writers (media/audiostream, media/imagestream) and the chunked
decoder meet the same damage.

Every case runs in its own process, forked from a server that has imported
everything, under an address-space limit (--limit-as, 2 GiB) and a time limit
(--timeout, 10 s); decoding is asked to refuse what would need more than --max-memory
(1 GiB). Each case is tallied as: crash (killed by a signal), hang (over the time
limit), uncaught (a Python exception that is not neuralzip's one-line error: its
traceback is kept), panic (the coder printed a Rust panic, even if it was caught),
noisy (anything else printed to stderr besides the error), multiline (a neuralzip
error whose message is not one line), wrong (decoded to something other than the
original: must never happen), clean (a one-line error), harmless (decoded to
exactly the original). Peak resident memory
and the slowest case are recorded. The tally goes to benchmarks/results/ as JSON,
with every failing case's file under benchmarks/results/fuzz-failures/ for a
regression test (tests/regressions/).
"""

import argparse
import io
import json
import os
import random
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

# one thread per case (cases run in parallel), set before numpy or the kernels load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # media_factory

MAGIC = b"\x89NZIP\r\n\x1a"
GiB = 1 << 30



# ------------------------------------------------------------------ seed corpus

def seed_media() -> dict:
    """Small media files: name -> bytes."""
    import numpy as np
    from media_factory import image_file, jpeg_decoded, png_bytes, repeating_colours, sparse_tone, tone, wav_file

    return {
        "rgb.png": image_file("png", "RGB", 24, 32),
        # colours that repeat: classic and its kin code them with the colour table (a chunk byte 1)
        "repeating.png": png_bytes(repeating_colours(24, 32), "RGB"),
        "jpeg.png": png_bytes(jpeg_decoded(24, 32), "RGB"),  # classic and its kin code it in YCbCr
        # full-resolution chroma: jpeg-coefficients codes it as DCT coefficients (cut blocks included)
        "jpeg444.png": png_bytes(jpeg_decoded(21, 30, quality=90, subsampling=0), "RGB"),
        # half-resolution chroma (4:2:0; 4:2:2): jpeg-coefficients codes it with the chroma upsampled
        "jpeg420.png": png_bytes(jpeg_decoded(21, 30, quality=90, subsampling=2), "RGB"),
        "jpeg422.png": png_bytes(jpeg_decoded(21, 30, quality=90, subsampling=1), "RGB"),
        # a 4:2:0 decode turned a quarter turn after decoding: coded turned back (params.rotation)
        "jpeg-turned.png": png_bytes(np.rot90(jpeg_decoded(21, 30, quality=90, subsampling=2), -1), "RGB"),
        "grey.png": image_file("png", "L", 20, 28),
        "rgb16.png": image_file("png", "RGB16", 16, 20),
        "stereo.wav": wav_file(tone(3000, 2, 16), 16),
        "mono8.wav": wav_file(tone(1500, 1, 8, seed=7), 8, rate=8000),
        "sparse.wav": wav_file(sparse_tone(4000, 2, 16), 16),  # ols-cascade codes it with a value map
    }


def make_corpus(out_dir: Path) -> None:
    """Code every seed medium with every model for its kind, plus archives (run in a child
    process, so the fork server itself never runs a parallel kernel)."""
    from media_factory import tone, wav_file
    from neuralzip import api, container
    from neuralzip.models import all_codecs

    media = seed_media()
    out_dir.mkdir(parents=True, exist_ok=True)
    # every seed in both container versions: version 1 (still read) and version 3 (written)
    for name, data in media.items():
        kind = "image" if name.endswith(".png") else "audio"
        for model in sorted({c.name for c in all_codecs() if c.kind == kind}):  # every registered model
            members = api.encode_members([(api.read_media(data, name), name)], model)
            (out_dir / f"{model}-{name}.nz").write_bytes(container.dumps_v1(members))
            (out_dir / f"{model}-{name}.v2.nz").write_bytes(container.dumps(members))
    for name in ("stereo.wav", "mono8.wav"):  # ols-cascade's level 2 (its own model: a second least-squares fit)
        members = api.encode_members([(api.read_media(media[name], name), name)], "ols-cascade", level=2)
        (out_dir / f"ols-cascade-level2-{name}.v2.nz").write_bytes(container.dumps(members))
    mixed = [(api.read_media(media[n], n), n) for n in ("rgb.png", "grey.png", "stereo.wav")]
    chain = [(api.read_media(media[n], n), f"dir/{n}") for n in ("rgb.png", "grey.png")]
    audio = [(api.read_media(media[n], n), n) for n in ("stereo.wav", "mono8.wav")]
    others = [(api.file_media(b"labels,1\n" * 40), "labels.csv"), (api.read_media(media["mono8.wav"]), "m.wav")]
    clips = [(api.read_media(wav_file(tone(n, 1, 16, seed=i), 16, rate=8000)), f"c{i}.wav")
             for i, n in enumerate((900, 1500, 700))]  # short recordings of one shape: an ols-cascade pack
    for tag, members in (("mixed", api.encode_members(mixed, "auto")), ("vae-chain", api.encode_members(chain, "vae")),
                         ("ols-pack", api.encode_members(clips, "ols-cascade")),
                         ("classic-audio", api.encode_members(audio, "classic")),
                         ("files", api.encode_members(others, "auto"))):
        if tag not in ("files", "ols-pack"):  # version 1 has no packs
            (out_dir / f"archive-{tag}.nz").write_bytes(container.dumps_v1(members, archive=True))
        (out_dir / f"archive-{tag}.v2.nz").write_bytes(container.dumps(members, archive=True))


def reader_seeds() -> dict:
    """Small input files in every format the readers take: name -> bytes."""
    from media_factory import image_file, sf_file, tone, wav_file

    seeds = {
        "rgb.png": image_file("png", "RGB", 12, 16), "pal.png": image_file("png", "P", 10, 12),
        "bw.png": image_file("png", "1", 9, 17), "la16.png": image_file("png", "LA16", 8, 10),
        "rgba.png": image_file("png", "RGBA", 8, 9),
        "rgb.tiff": image_file("tiff", "RGB", 10, 12), "grey16.tiff": image_file("tiff", "I;16", 9, 11),
        "rgb.bmp": image_file("bmp", "RGB", 10, 13), "pal.bmp": image_file("bmp", "P", 9, 10),
        "bw.bmp": image_file("bmp", "1", 8, 21),
        "rgb.ppm": image_file("ppm", "RGB", 9, 11), "grey.ppm": image_file("ppm", "L", 7, 9),
        "s16.wav": wav_file(tone(400, 2, 16), 16), "s24.wav": wav_file(tone(300, 1, 24), 24),
        "u8.wav": wav_file(tone(300, 1, 8), 8),
        "s16.flac": sf_file(tone(500, 2, 16), 16, "FLAC"), "s24.flac": sf_file(tone(300, 1, 24), 24, "FLAC"),
        "s16.aiff": sf_file(tone(300, 2, 16), 16, "AIFF"),
    }
    seeds["rgb-lzw.tiff"] = _tiff_lzw()
    seeds["bw.pbm"] = _pbm()
    seeds["grey16.pgm"] = b"P5 6 5 65535\n" + bytes(range(60))
    return seeds


def _tiff_lzw() -> bytes:
    from PIL import Image

    from media_factory import smooth_image

    buf = io.BytesIO()
    Image.fromarray(smooth_image(10, 14, 3)).save(buf, "TIFF", compression="tiff_lzw")
    return buf.getvalue()


def _pbm() -> bytes:
    return b"P4\n16 4\n" + bytes([0xF0, 0x0F, 0xAA, 0x55, 0x00, 0xFF, 0x81, 0x18])


# ------------------------------------------------------------------ container surgery

class Nz:
    """A .nz file taken apart: its header object and its chunks (per member)."""

    def __init__(self, data: bytes):
        hlen = struct.unpack_from("<I", data, 10)[0]
        self.top = json.loads(zlib.decompress(data[14:14 + hlen]))
        pos = 14 + hlen + 4
        self.chunks = []
        for m in self.top["members"]:
            mine = []
            for n in m["chunks"]:
                mine.append(data[pos:pos + n])
                pos += n + 4
            self.chunks.append(mine)

    def dumps(self, fix_lengths: bool = True) -> bytes:
        if fix_lengths:
            for m, mine in zip(self.top["members"], self.chunks):
                if isinstance(m, dict) and "chunks" in m:
                    m["chunks"] = [len(c) for c in mine]
        header = zlib.compress(json.dumps(self.top, separators=(",", ":")).encode(), 9)
        parts = [MAGIC, struct.pack("<HI", 1, len(header)), header, struct.pack("<I", zlib.crc32(header))]
        for mine in self.chunks:
            for c in mine:
                parts += [c, struct.pack("<I", zlib.crc32(c))]
        return b"".join(parts)


class Nz2(Nz):
    """A version-3 .nz (version 2's records) taken apart the same way (through the reader, so it must be intact), and put
    back together by the writer: records, CRCs and the table consistent with whatever values were set
    (a value the binary format cannot hold makes the case unwritable)."""

    def __init__(self, data: bytes):
        from neuralzip import container

        top, members = container.loads(data, None)
        self.top = {"archive": top["archive"],
                    "members": [dict(m.header(), sha256=m.sha256, mtime=m.mtime, mode=m.mode) for m in members]}
        self.chunks = [list(m.chunks) for m in members]

    def dumps(self, fix_lengths: bool = True) -> bytes:
        from neuralzip import container

        members = []
        for h, mine in zip(self.top["members"], self.chunks):
            h = dict(h)
            members.append(container.Member(h["name"], h["kind"], h["model"], h["weights"], tuple(h["shape"]),
                                            h["bits"], h["meta"], h["params"], h["sha256"], list(mine),
                                            h.get("stats") or {}, h.get("mtime"), h.get("mode")))
        return container.dumps(members, archive=self.top["archive"])


def take_apart(data: bytes) -> Nz:
    return Nz(data) if data[8:10] == b"\x01\x00" else Nz2(data)


INTERESTING = [0, 1, -1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024,
               4096, 16384, 65535, 65536, 1 << 20, 1 << 24, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 40, 1 << 48,
               (1 << 63) - 1, 1 << 63, 1 << 64, -(1 << 31), -(1 << 63), 0.5, 1.5, -0.0, 1e308, "", "x", "8",
               "../../etc/passwd", "/etc/passwd", "C:\\x", "a\x00b", None, True, False, [], {}, [0], [[0]],
               [1, 2, 3], {"a": 1}]


def _paths(obj, prefix=()):
    """Every (path) inside a JSON value, containers included."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:64]):
            yield from _paths(v, prefix + (i,))


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _new_value(rng: random.Random, old):
    r = rng.random()
    if isinstance(old, bool) or old is None:
        return rng.choice(INTERESTING)
    if isinstance(old, int) and r < 0.6:
        return rng.choice([old + 1, old - 1, old * 2, old // 2, -old, old * 1000, old + rng.randint(-64, 64),
                           old << rng.randint(1, 40), 0, 1])
    if isinstance(old, float) and r < 0.5:
        return rng.choice([old * 2, -old, float("nan") if rng.random() < 0.2 else 0.0, old + 1e9])
    if isinstance(old, str) and r < 0.5:
        return rng.choice([old + "x", old[: len(old) // 2], old.upper(), old * 3, "../" + old])
    if isinstance(old, list) and r < 0.6 and old:
        new = list(old)
        op = rng.randrange(4)
        if op == 0:
            del new[rng.randrange(len(new))]
        elif op == 1:
            new.insert(rng.randrange(len(new) + 1), rng.choice(new))
        elif op == 2:
            rng.shuffle(new)
        else:
            new.append(rng.choice(INTERESTING))
        return new
    if isinstance(old, dict) and r < 0.6 and old:
        new = dict(old)
        if rng.random() < 0.6:
            del new[rng.choice(list(new))]
        else:
            new[rng.choice(["x", "chain", "fallback", "tile_w", "lanes", "block", "units"])] = rng.choice(INTERESTING)
        return new
    return rng.choice(INTERESTING)


def mutate_header(rng: random.Random, nz: Nz, count: int) -> list:
    """Change `count` values of the header (the lengths of chunks included); -> what was done."""
    done = []
    for _ in range(count):
        paths = [p for p in _paths(nz.top) if p]
        # mostly inside the members (shape, bits, params...), sometimes anywhere
        inner = [p for p in paths if len(p) >= 3 and p[0] == "members"]
        path = rng.choice(inner if inner and rng.random() < 0.85 else paths)
        parent = _get(nz.top, path[:-1])
        new = _new_value(rng, parent[path[-1]])
        parent[path[-1]] = new
        done.append(f"header {'.'.join(map(str, path))} = {json.dumps(new)[:60]}")
    return done


def grow(rng: random.Random, nz: Nz) -> str:
    """Declare a larger image or recording that every header check accepts (same chunk layout,
    a vae member's unit count to match): the decoder then runs over data that cannot back it."""
    members = [m for m in nz.top["members"] if isinstance(m, dict)]
    m = rng.choice(members)
    factor = rng.choice([2, 3, 4, 8, 16])
    axis = 0 if m["kind"] != "image" or rng.random() < 0.5 else 1  # audio and other files: one length
    m["shape"][axis] *= factor
    if "units" in m.get("params", {}):
        h, w, c = m["shape"]
        before = m["params"]["units"]
        m["params"]["units"] = -(-h // 8) * -(-w // 8) * -(-c // 3)
        head = next((x for x in members if "chain_units" in x.get("params", {})), None)
        if head is not None and head["params"]["chain_units"]:  # the chain's first chunk takes the growth
            head["params"]["chain_units"][0] += m["params"]["units"] - before
    return f"member {m['name']} shape x{factor} on axis {axis} (layout kept)"


def damage_chunk(rng: random.Random, nz: Nz, others: list) -> str:
    """Damage one chunk (CRC fixed by dumps); -> what was done."""
    where = [(i, j) for i, mine in enumerate(nz.chunks) for j in range(len(mine))]
    if not where:
        return "no chunk to damage"
    i, j = rng.choice(where)
    c = bytearray(nz.chunks[i][j])
    op = rng.randrange(8)
    if op == 0 and c:
        for _ in range(rng.randint(1, 4)):
            c[rng.randrange(len(c))] ^= 1 << rng.randrange(8)
        what = "bits flipped"
    elif op == 1 and c:
        a = rng.randrange(len(c))
        b = min(len(c), a + rng.randint(1, 64))
        c[a:b] = bytes([rng.choice([0, 0xFF, rng.randrange(256)])]) * (b - a)
        what = f"bytes {a}:{b} overwritten"
    elif op == 2:
        cut = rng.randrange(len(c) + 1)
        if rng.random() < 0.5:
            cut -= cut % 4
        c = c[:cut]
        what = f"cut to {cut} bytes"
    elif op == 3:
        n = rng.choice([1, 4, 8, rng.randint(1, 256)])
        c += bytes(rng.randrange(256) for _ in range(n))
        what = f"extended by {n} bytes"
    elif op == 4 and len(where) > 1:
        k, l = rng.choice(where)
        nz.chunks[i][j], nz.chunks[k][l] = nz.chunks[k][l], nz.chunks[i][j]
        return f"chunks {i}.{j} and {k}.{l} swapped"
    elif op == 5 and others:
        c = bytearray(rng.choice(others))
        what = "replaced by another file's chunk"
    elif op == 6 and len(c) >= 8:
        # the first words often hold lengths (side information, layouts): make them lie
        k = rng.randrange(0, min(len(c) - 3, 16))
        struct.pack_into("<I", c, k, rng.choice([0, 1, 0xFFFFFFFF, len(c), len(c) + 1, 1 << 20, rng.randrange(1 << 32)]))
        what = f"word at {k} overwritten"
    else:
        c = bytearray(rng.randrange(256) for _ in range(len(c)))
        what = "randomised"
    nz.chunks[i][j] = bytes(c)
    return f"chunk {i}.{j} {what} (CRC fixed)"


def flip_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    n = rng.randint(1, 8)
    for _ in range(n):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    return bytes(b), f"{n} raw byte flips"


def mutate_nz(rng: random.Random, data: bytes, others: list) -> tuple[bytes, list]:
    """One case from one seed file."""
    op = rng.random()
    if op < 0.12:
        out, what = flip_bytes(rng, data)
        return out, [what]
    if op < 0.20:
        cut = rng.randrange(len(data))
        return data[:cut], [f"truncated to {cut} bytes"]
    nz = take_apart(data)
    done = []
    if op < 0.50:
        done.append(damage_chunk(rng, nz, others))
    elif op < 0.80:
        done += mutate_header(rng, nz, rng.choice([1, 1, 2]))
    elif op < 0.90:
        done.append(grow(rng, nz))
    else:
        done += mutate_header(rng, nz, 1)
        done.append(damage_chunk(rng, nz, others))
    fix = not any(".chunks" in d for d in done)  # a changed chunk length is left as the mutation made it
    try:
        out = nz.dumps(fix_lengths=fix)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, struct.error) as exc:
        # a value JSON (version 1) or the binary records (versions 2 and 3) cannot hold
        return data, done + [f"unwritable ({type(exc).__name__})"]
    except Exception as exc:  # noqa: BLE001 (the writer's own refusal, e.g. a name it will not store)
        return data, done + [f"unwritable ({type(exc).__name__})"]
    return out, done


# ------------------------------------------------------------------ reader mutations

def _png_chunks(data: bytes):
    pos, out = 8, []
    while pos + 8 <= len(data):
        n, t = struct.unpack_from(">I4s", data, pos)
        out.append([t, data[pos + 8:pos + 8 + n]])
        pos += 12 + n
    return out


def _png_join(chunks) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n"]
    for t, body in chunks:
        out.append(struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body)))
    return b"".join(out)


def mutate_png(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    chunks = _png_chunks(data)
    op = rng.randrange(5)
    if op == 0:  # the header: a pixel bomb, an odd depth or colour type
        ihdr = bytearray(chunks[0][1])
        field = rng.choice(["w", "h", "depth", "ctype", "interlace", "both"])
        big = rng.choice([0, 1, 2, 1000, 65535, 100000, 1 << 20, (1 << 31) - 1, 1 << 31, 0xFFFFFFFF])
        if field in ("w", "both"):
            struct.pack_into(">I", ihdr, 0, big)
        if field in ("h", "both"):
            struct.pack_into(">I", ihdr, 4, big)
        if field == "depth":
            ihdr[8] = rng.choice([0, 1, 2, 3, 4, 8, 16, 32, 255])
        if field == "ctype":
            ihdr[9] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 255])
        if field == "interlace":
            ihdr[12] = rng.choice([1, 2, 255])
        chunks[0][1] = bytes(ihdr)
        return _png_join(chunks), f"IHDR {field} (CRC fixed)"
    k = rng.randrange(len(chunks))
    body = bytearray(chunks[k][1])
    if op == 1 and body:
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        what = "bits flipped"
    elif op == 2:
        body = body[:rng.randrange(len(body) + 1)]
        what = "cut short"
    elif op == 3:
        idat = zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT")) if rng.random() < 0.5 else b""
        body = bytearray(zlib.compress(idat[:len(idat) // 2] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))))
        k = next((i for i, (t, _) in enumerate(chunks) if t == b"IDAT"), k)
        what = "IDAT re-deflated with wrong data"
    else:
        del chunks[k]
        return _png_join(chunks), f"chunk {k} removed"
    chunks[k][1] = bytes(body)
    return _png_join(chunks), f"chunk {chunks[k][0].decode('latin-1')} {what} (CRC fixed)"


def mutate_fields(rng: random.Random, data: bytes, name: str) -> tuple[bytes, str]:
    """Overwrite a header field of a BMP/WAV/AIFF/FLAC/TIFF/PNM with an interesting value."""
    b = bytearray(data)
    if name.endswith(".bmp"):
        off, fmt = rng.choice([(2, "<I"), (10, "<I"), (18, "<i"), (22, "<i"), (28, "<H"), (30, "<I"), (46, "<I")])
    elif name.endswith(".wav"):
        off, fmt = rng.choice([(4, "<I"), (16, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (32, "<H"), (34, "<H"),
                               (40, "<I")])
    elif name.endswith(".aiff"):
        off, fmt = rng.choice([(4, ">I"), (16, ">I"), (20, ">H"), (22, ">I"), (26, ">H"), (38, ">I")])
    elif name.endswith(".flac"):
        off, fmt = rng.choice([(8, ">H"), (10, ">H"), (18, ">I"), (21, ">I"), (22, ">I")])
    elif name.endswith((".ppm", ".pgm", ".pbm")):
        head = data[:20].split(b"\n")[0] if data[:2] == b"P4" else data[:20]
        text = rng.choice([b"P6 100000 100000 255\n", b"P5 0 7 255\n", b"P5 3 3 70000\n", b"P6 2147483647 2 255\n",
                           b"P4\n99999999 99999999\n", b"P5 4 4 0\n"])
        return text + data[len(head) + 1:], "PNM header replaced"
    else:  # TIFF: somewhere in the first IFD
        off, fmt = rng.randrange(4, max(5, min(len(data) - 4, 200))), rng.choice(["<H", "<I"])
    size = struct.calcsize(fmt)
    if off + size > len(b):
        return data[:rng.randrange(len(data))], "truncated"
    hi = (1 << (8 * size)) - 1
    value = rng.choice([0, 1, 2, 3, 7, 8, 24, 32, 255, 1000, 65535, hi, hi >> 1, rng.randrange(hi + 1)])
    if fmt[-1].islower():  # signed
        value = value - (1 << (8 * size)) if value > hi >> 1 else value
    struct.pack_into(fmt, b, off, value)
    return bytes(b), f"field at {off} ({fmt}) = {value}"


def mutate_input(rng: random.Random, data: bytes, name: str) -> tuple[bytes, str]:
    op = rng.random()
    if op < 0.2:
        return flip_bytes(rng, data)
    if op < 0.35:
        cut = rng.randrange(len(data))
        return data[:cut], f"truncated to {cut} bytes"
    if name.endswith(".png"):
        return mutate_png(rng, data)
    return mutate_fields(rng, data, name)


# ------------------------------------------------------------------ running one case

def _decode_case(blob: bytes, expected: list, max_memory: int) -> dict:
    from neuralzip import api, container
    from neuralzip.errors import ContainerError

    try:  # what `neuralzip info` shows must not fail on any header that loads
        _, members = container.loads(blob, max_memory)
    except ContainerError:
        pass
    else:
        for m, share in zip(members, api.payload_shares(members)):
            api.member_report(m, m.name, share, 0.0).as_dict()
            api.chain_note(m)

    out = api.decompress_bytes(blob, max_memory=max_memory)
    same = [data for _, data in out] == expected
    return {"outcome": "harmless" if same else "wrong"}


def _reader_case(data: bytes, max_memory: int) -> dict:
    from neuralzip import api

    blob = api.compress_bytes(data, "input", "histogram")
    media = api.read_media(data, "input")
    [(_, restored)] = api.decompress_bytes(blob, max_memory=max_memory)
    # the restored file must read back to the same content (byte-identity holds for WAV/PNM/BMP)
    again = api.read_media(restored, "restored")
    same = (again.samples.shape == media.samples.shape and (again.samples == media.samples).all())
    return {"outcome": "harmless" if same else "wrong"}


def _decode_file_case(blob: bytes, expected: list, max_memory: int) -> dict:
    """--chunked: the .nz decoded from a file into files (every long-enough member chunk by chunk)."""
    from neuralzip import streaming

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.nz"
        src.write_bytes(blob)
        targets = streaming.extract(src, Path(tmp) / "out", force=True, jobs=1, max_memory=max_memory)
        same = [t.read_bytes() for t in targets] == expected
    return {"outcome": "harmless" if same else "wrong"}


def _reader_file_case(data: bytes, max_memory: int) -> dict:
    """--chunked: the input compressed from a file with the default model and restored into a file
    (chunk by chunk where the model and the format can), then read back and compared."""
    from neuralzip import api

    with tempfile.TemporaryDirectory() as tmp:
        src, nz, back = Path(tmp) / "input", Path(tmp) / "input.nz", Path(tmp) / "restored"
        src.write_bytes(data)
        api.compress_file(src, nz)
        api.decompress_file(nz, back, max_memory=max_memory, jobs=1)
        media, again = api.read_media(data, "input"), api.read_media(back.read_bytes(), "restored")
    same = (again.samples.shape == media.samples.shape and (again.samples == media.samples).all())
    return {"outcome": "harmless" if same else "wrong"}


def run_child(job, limit_as: int, max_memory: int, wfd: int) -> None:
    """In the forked child: limit the address space, run the case, report one JSON line, exit."""
    from neuralzip.errors import NeuralzipError

    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    except (ValueError, OSError):
        pass
    # whatever the case prints (a Rust panic message, a library's warning) is a finding too:
    # a user would see it around the one-line error
    err = tempfile.TemporaryFile()
    os.dup2(err.fileno(), 2)
    import warnings

    warnings.simplefilter("ignore")  # as the CLI does: what is left on stderr came from compiled code
    result = {}
    try:
        if job["kind"] == "decode":
            result = (_decode_file_case if job.get("files") else _decode_case)(job["data"], job["expected"], max_memory)
        else:
            result = (_reader_file_case if job.get("files") else _reader_case)(job["data"], max_memory)
    except NeuralzipError as exc:
        msg = str(exc)
        result = {"outcome": "clean" if "\n" not in msg and msg else "multiline", "error": msg[:300],
                  "type": type(exc).__name__}
    except BaseException as exc:  # noqa: BLE001 (everything else is a finding)
        result = {"outcome": "uncaught", "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                  "traceback": traceback.format_exc()[-3000:]}
    import gc

    gc.collect()  # free what the case built, so a damaged heap shows up here rather than never
    sys.stderr.flush()
    err.seek(0)
    printed = err.read().decode(errors="replace")
    if printed.strip():
        result["stderr"] = printed[-1000:]
        if result["outcome"] in ("clean", "harmless"):
            result["outcome"] = "panic" if "panicked" in printed else "noisy"
    os.write(wfd, (json.dumps(result) + "\n").encode())
    os._exit(0)


class Runner:
    """Forks one child per case, at most `jobs` at a time, and collects their results."""

    def __init__(self, jobs: int, timeout: float, limit_as: int, max_memory: int):
        self.jobs, self.timeout, self.limit_as, self.max_memory = jobs, timeout, limit_as, max_memory
        self.running = {}  # pid -> (job, read fd, start, buffer)

    def _start(self, job) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                run_child(job, self.limit_as, self.max_memory, w)
            finally:
                os._exit(70)
        os.close(w)
        self.running[pid] = (job, r, time.monotonic(), bytearray())

    def run(self, jobs_iter, on_result) -> None:
        pending = iter(jobs_iter)
        exhausted = False
        while True:
            while not exhausted and len(self.running) < self.jobs:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                self._start(job)
            if not self.running:
                return
            fds = {v[1]: pid for pid, v in self.running.items()}
            ready, _, _ = select.select(list(fds), [], [], 0.05)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if chunk:
                    self.running[fds[fd]][3].extend(chunk)
            now = time.monotonic()
            for pid in list(self.running):
                job, fd, start, buf = self.running[pid]
                done, status, usage = _try_wait(pid)
                timed_out = not done and now - start > self.timeout
                if timed_out:
                    os.kill(pid, signal.SIGKILL)
                    _, status, usage = os.wait4(pid, 0)
                    done = True
                if not done:
                    continue
                seconds = time.monotonic() - start
                while True:  # whatever is left in the pipe
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    buf.extend(chunk)
                os.close(fd)
                del self.running[pid]
                on_result(job, _classify(buf, status, timed_out), seconds, usage.ru_maxrss * 1024)


def _try_wait(pid):
    wpid, status, usage = os.wait4(pid, os.WNOHANG)
    return (wpid == pid), status, usage


def _classify(buf: bytes, status: int, timed_out: bool) -> dict:
    if timed_out:
        return {"outcome": "hang"}
    if os.WIFSIGNALED(status):
        return {"outcome": "crash", "signal": os.WTERMSIG(status)}
    try:
        return json.loads(bytes(buf).decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"outcome": "crash", "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "error": bytes(buf[-300:]).decode(errors="replace")}


# ------------------------------------------------------------------ the run

FAILURES = ("crash", "hang", "uncaught", "panic", "noisy", "multiline", "wrong")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000, help="decoder cases (.nz files)")
    ap.add_argument("--readers", type=int, default=None, help="reader cases (damaged inputs; default: cases // 4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    ap.add_argument("--limit-as", type=float, default=2.0, help="address-space limit per case, GiB")
    ap.add_argument("--max-memory", type=float, default=1.0, help="the decoder's --max-memory per case, GiB")
    ap.add_argument("--corpus", type=Path, help="folder for the seed corpus (made when empty; default: temporary)")
    ap.add_argument("--out", type=Path, help="tally JSON (default: benchmarks/results/fuzz-seedS-N.json)")
    ap.add_argument("--failures", type=Path, default=HERE / "results" / "fuzz-failures",
                    help="where failing cases are written")
    ap.add_argument("--chunked", action="store_true",
                    help="cases through files with every long-enough member coded chunk by chunk (chunked.py's "
                         "threshold at 0; readers coded with the default model)")
    ap.add_argument("--only", metavar="TEXT", help="decoder cases only from the seed files whose name holds TEXT "
                    "(e.g. a model's name: a new decoder fuzzed on its own)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--make-corpus", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make_corpus:
        make_corpus(args.make_corpus)
        return 0
    readers = args.cases // 4 if args.readers is None else args.readers

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp) / "corpus"
        if not corpus.exists() or not any(corpus.glob("*.nz")):
            t = time.monotonic()
            subprocess.run([sys.executable, __file__, "--make-corpus", str(corpus)], check=True)
            if not args.quiet:
                print(f"seed corpus: {len(list(corpus.glob('*.nz')))} files in {time.monotonic() - t:.1f} s",
                      file=sys.stderr)
        seeds = {p.name: p.read_bytes() for p in sorted(corpus.glob("*.nz"))}
        return run(args, seeds, readers)


def _expected_outputs(seeds: dict) -> dict:
    """What each seed restores to (computed in a child: the server never runs a kernel)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        from neuralzip import api

        out = {name: [d.hex() for _, d in api.decompress_bytes(blob)] for name, blob in seeds.items()}
        data = json.dumps(out).encode()
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return {k: [bytes.fromhex(x) for x in v] for k, v in json.loads(data).items()}


def run(args, seeds: dict, readers: int) -> int:
    from neuralzip import api  # noqa: F401 (imported once here: every forked case starts warm)
    import neuralzip.models  # noqa: F401
    import neuralzip.media.detect  # noqa: F401

    if args.chunked:
        from neuralzip import chunked

        chunked.STREAM_BYTES = 0  # inherited by every forked case
    expected = _expected_outputs(seeds)
    names = sorted(n for n in seeds if not args.only or args.only in n)
    if not names:
        sys.exit(f"no seed file's name holds {args.only!r}")
    all_chunks = [c for blob in seeds.values() for mine in take_apart(blob).chunks for c in mine]
    rseeds = reader_seeds()
    rnames = sorted(rseeds)

    def jobs():
        for i in range(args.cases):
            rng = random.Random(f"{args.seed}:nz:{i}")
            name = rng.choice(names)
            data, what = mutate_nz(rng, seeds[name], all_chunks)
            yield {"kind": "decode", "case": i, "seed_file": name, "data": data, "what": what,
                   "expected": expected[name], "files": args.chunked}
        for i in range(readers):
            rng = random.Random(f"{args.seed}:reader:{i}")
            name = rng.choice(rnames)
            data, what = mutate_input(rng, rseeds[name], name)
            yield {"kind": "reader", "case": i, "seed_file": name, "data": data, "what": [what], "files": args.chunked}

    tally = {k: {o: 0 for o in ("clean", "harmless") + FAILURES} for k in ("decode", "reader")}
    messages = {"decode": {}, "reader": {}}
    per_seed = {}
    found = []
    peak = {"decode": 0, "reader": 0}
    slowest = {"decode": (0.0, None), "reader": (0.0, None)}
    started = time.monotonic()
    done = [0]

    def on_result(job, res, seconds, maxrss):
        kind = job["kind"]
        outcome = res.get("outcome", "crash")
        tally[kind][outcome] = tally[kind].get(outcome, 0) + 1
        per_seed.setdefault(job["seed_file"], {}).setdefault(outcome, 0)
        per_seed[job["seed_file"]][outcome] += 1
        peak[kind] = max(peak[kind], maxrss)
        if outcome == "clean":
            key = re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'...'", res.get("error", "")))[:90]
            messages[kind][key] = messages[kind].get(key, 0) + 1
        if seconds > slowest[kind][0]:
            slowest[kind] = (seconds, f"{kind} case {job['case']} ({job['seed_file']}: {'; '.join(job['what'])})")
        if outcome in FAILURES:
            args.failures.mkdir(parents=True, exist_ok=True)
            ext = ".nz" if kind == "decode" else "-" + job["seed_file"]
            path = args.failures / f"{outcome}-s{args.seed}-{kind}{job['case']}{ext}"
            path.write_bytes(job["data"])
            found.append({"case": job["case"], "kind": kind, "seed_file": job["seed_file"], "what": job["what"],
                          "outcome": outcome, "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT)
                          else str(path), **{k: v for k, v in res.items() if k != "outcome"}})
            if not args.quiet:
                print(f"FOUND {outcome}: {kind} case {job['case']} {job['seed_file']} {job['what']} "
                      f"{res.get('error', res.get('signal', ''))}", file=sys.stderr)
        done[0] += 1
        if not args.quiet and done[0] % 500 == 0:
            print(f"{done[0]} cases, {time.monotonic() - started:.0f} s", file=sys.stderr)

    Runner(args.jobs, args.timeout, int(args.limit_as * GiB), int(args.max_memory * GiB)).run(jobs(), on_result)

    report = {
        "command": "python benchmarks/fuzz.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "cases": args.cases, "reader_cases": readers, "jobs": args.jobs,
        "timeout_s": args.timeout, "limit_as_gib": args.limit_as, "max_memory_gib": args.max_memory,
        "seconds": round(time.monotonic() - started, 1),
        "seed_files": names, "reader_seed_files": rnames,
        "tally": tally, "per_seed_file": per_seed,
        "clean_errors": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])[:40]) for k, v in messages.items()},
        "peak_rss_mib": {k: round(v / 2 ** 20, 1) for k, v in peak.items()},
        "slowest": {k: {"seconds": round(v[0], 2), "case": v[1]} for k, v in slowest.items()},
        "failures": found,
    }
    out = args.out or HERE / "results" / f"fuzz-seed{args.seed}-{args.cases}{'-chunked' if args.chunked else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    if not args.quiet:
        print(json.dumps({k: report[k] for k in ("tally", "peak_rss_mib", "slowest", "seconds")}, indent=1))
        print(f"wrote {out}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
