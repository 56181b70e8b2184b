import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


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
