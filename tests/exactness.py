"""The reusable exact-decode check: a file decodes to the same content on any machine.

Compress in this process; decompress in a fresh subprocess with one thread
(the compiled kernels' OpenMP lanes), numpy's AVX2/FMA kernels disabled,
torch's default ATen kernels, the generic build of any kernel that also has an
AVX build (NEURALZIP_GENERIC_KERNELS: this process runs the AVX one where the
CPU has it), and another decode batch size (NEURALZIP_DECODE_BATCH); require the
very same content. (Other builds of the kernels are checked by
test_kernel_build.py.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from neuralzip import api, container

TESTS = Path(__file__).parent

HOSTILE_ENV = {
    "OMP_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "default",
    "NPY_DISABLE_CPU_FEATURES": "AVX2,FMA3",
    "NEURALZIP_GENERIC_KERNELS": "1",
}

_DECODER = """
import json, sys
sys.path.insert(0, {tests!r})
import float_control  # registers the negative control
from neuralzip import api, container
from neuralzip.errors import NeuralzipError
out = {{}}
for path in sys.argv[1:]:
    try:
        _, members = container.loads(open(path, 'rb').read())
        media = api.decode_member(members[0])
        digest = container.canonical_digest(media.kind, media.samples, media.bits, media.meta)
        out[path] = digest[:len(members[0].sha256)]  # format 2 stores the digest's first 8 bytes
    except NeuralzipError as exc:
        out[path] = 'error: ' + str(exc)
print(json.dumps(out))
"""


def compress_case(data: bytes, model: str, path: Path) -> str:
    """Compress `data` with `model` into `path`; -> the encoder's content digest."""
    blob = api.compress_bytes(data, path.stem, model)
    path.write_bytes(blob)
    _, members = container.loads(blob)
    return members[0].sha256


def decode_elsewhere(paths: list[Path], batch: int) -> dict[str, str]:
    """Decode each .nz in a hostile subprocess; -> {path: digest or 'error: ...'}."""
    env = dict(os.environ, **HOSTILE_ENV, NEURALZIP_DECODE_BATCH=str(batch))
    r = subprocess.run([sys.executable, "-c", _DECODER.format(tests=str(TESTS))] + [str(p) for p in paths],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
