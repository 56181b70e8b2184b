import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def count_chunked_calls(monkeypatch) -> dict:
    """Count the members coded ("encode") and decoded ("decode") chunk by chunk (neuralzip/chunked.py)."""
    from neuralzip import chunked

    calls = {"encode": 0, "decode": 0}
    for key, name in (("encode", "encode_file"), ("decode", "decode_to")):
        def counted(*a, _fn=getattr(chunked, name), _key=key, **k):
            calls[_key] += 1
            return _fn(*a, **k)

        monkeypatch.setattr(chunked, name, counted)
    return calls


def whole_member_path(monkeypatch, fn):
    """fn() with the chunk-by-chunk path switched off (every member coded and decoded whole)."""
    from neuralzip import chunked

    with monkeypatch.context() as m:
        m.setattr(chunked, "STREAM_BYTES", 1 << 62)
        return fn()


def _entry_point() -> list[str]:
    script = Path(sys.executable).with_name("neuralzip")
    if script.exists():
        return [str(script)]
    found = shutil.which("neuralzip")
    return [found] if found else [sys.executable, "-m", "neuralzip"]


@pytest.fixture
def run_cli():
    """Run the installed `neuralzip` command; -> CompletedProcess (text)."""

    def run(*args, cwd=None, env=None):
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run(_entry_point() + [str(a) for a in args], cwd=cwd, env=full_env,
                              capture_output=True, text=True, timeout=300)

    return run
