"""The compiled kernels give the same bytes however they are built.

The installed build (-O2, the shipped flags) and a second build of the same
sources at -O0 must both reproduce tests/golden/fingerprints.json: the SHA-256 of
the .nz every shipped model writes for a fixed set of media (less the float model's
reported likelihood, see fingerprint.py), recorded with the numba kernels these
compiled ones replaced. One kernel has a run-time CPU dispatch: ols_audio is also built
with AVX (ols_audio_avx, picked where the CPU has it), so the ols-cascade fingerprints
are checked with the generic build too (NEURALZIP_GENERIC_KERNELS=1), at -O2 and -O0:
every path there is. A negative control shows the comparison can fail: a one-bit
change to a recorded fingerprint is caught.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fingerprint import fingerprints

TESTS = Path(__file__).parent
REPO = TESTS.parent
RECORDED = json.loads((TESTS / "golden" / "fingerprints.json").read_text())


def _differ(prints: dict, names=None) -> list:
    return sorted(k for k in RECORDED if (not names or k.startswith(names)) and prints.get(k) != RECORDED[k])


@pytest.fixture(scope="module")
def installed_prints():
    return fingerprints()


def test_installed_build_reproduces_the_recorded_bytes(installed_prints):
    assert set(installed_prints) == set(RECORDED)
    assert not _differ(installed_prints), \
        f"these models write other bytes than the recorded format: {_differ(installed_prints)}"


def test_negative_control_a_changed_fingerprint_is_caught(installed_prints):
    key = sorted(RECORDED)[0]
    tampered = dict(RECORDED, **{key: ("0" if RECORDED[key][0] != "0" else "1") + RECORDED[key][1:]})
    assert [k for k in tampered if installed_prints[k] != tampered[k]] == [key]


# Runs a script with the rebuilt copy first on the path. An editable install adds an import
# hook that would find the installed package before any path entry: it is taken out.
_RUN_WITH_COPY = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
root, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
sys.argv = [script] + sys.argv[3:]
if script == "probe":
    import neuralzip.kernels.coding as k
    print(k.__file__)
else:
    runpy.run_path(script, run_name="__main__")
"""


def _run_with_copy(root: Path, script: str, cwd: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _RUN_WITH_COPY, str(root), script, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=1200, env=env)


GENERIC = dict(os.environ, NEURALZIP_GENERIC_KERNELS="1")
DISPATCHED = "ols-cascade"  # the models whose kernels have a second, AVX build


def test_generic_build_of_the_dispatched_kernel_reproduces_the_recorded_bytes():
    r = subprocess.run([sys.executable, str(TESTS / "fingerprint.py"), DISPATCHED], env=GENERIC, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    prints = json.loads(r.stdout)
    assert len(prints) == 10 and not _differ(prints, DISPATCHED + "-")


def test_the_generic_switch_picks_the_generic_build(monkeypatch):
    from neuralzip.kernels import dispatch, ols_audio
    monkeypatch.setenv("NEURALZIP_GENERIC_KERNELS", "1")
    assert dispatch.ols_audio() is ols_audio
    monkeypatch.delenv("NEURALZIP_GENERIC_KERNELS")
    assert (dispatch.ols_audio() is ols_audio) == (not ols_audio.cpu_has_avx())


def _build_at(opt: str, dest: Path) -> Path:
    """The package sources with kernels rebuilt at `opt` under dest; -> the import root."""
    src = dest / "src"
    shutil.copytree(REPO / "neuralzip", src / "neuralzip",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "*.html", "__pycache__"))
    shutil.copytree(REPO / "weights", src / "weights", ignore=shutil.ignore_patterns("checkpoints"))
    shutil.copy(REPO / "setup.py", src / "setup.py")
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=src,
                       env=dict(os.environ, NEURALZIP_OPT=opt), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((src / "neuralzip" / "kernels").glob("*.so")), "no kernel was built"
    return src


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_kernels_built_at_O0_give_the_same_bytes(tmp_path):
    root = _build_at("-O0", tmp_path)
    probe = _run_with_copy(root, "probe", tmp_path)
    assert probe.stdout.startswith(str(root)), f"the -O0 build was not the one imported: {probe.stdout}{probe.stderr}"
    r = _run_with_copy(root, str(TESTS / "fingerprint.py"), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    prints = json.loads(r.stdout)
    assert not _differ(prints), f"-O0 build writes other bytes for {_differ(prints)}"
    r = _run_with_copy(root, str(TESTS / "fingerprint.py"), tmp_path, DISPATCHED, env=GENERIC)
    assert r.returncode == 0, r.stderr[-3000:]
    prints = json.loads(r.stdout)
    assert len(prints) == 10 and not _differ(prints, DISPATCHED + "-"), "-O0 generic build writes other bytes"
