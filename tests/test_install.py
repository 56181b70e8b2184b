"""A non-editable install in a fresh virtual environment finds its weights and works."""

import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tracked_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def test_fresh_venv_install_finds_weights_and_cli_works(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # neuralzip is built from the repo as a wheel and installed (non-editable) into the
    # fresh environment, with no dependencies: those come from this one (no downloads).
    src = _tracked_copy(tmp_path / "src")  # what a fresh clone has: no stale build/ folder
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                        str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("neuralzip-*.whl")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # Only now (pip would otherwise see this environment's neuralzip and skip the install):
    # the dependencies, from this environment, are appended to the fresh one's path.
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()]
    Path(purelib, "_deps_from_test_env.pth").write_text("\n".join(deps) + "\n")

    where = subprocess.run([str(py), "-c", "import neuralzip, neuralzip.weightstore as w; "
                            "print(neuralzip.__file__); print(w.shipped('classic-image'))"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    module, weights = where.stdout.split()
    assert module.startswith(str(env_dir)) and weights.startswith(str(env_dir)), where.stdout
    assert Path(weights).stat().st_size > 0

    cli = env_dir / "bin" / "neuralzip"
    photo = tmp_path / "photo.png"
    photo.write_bytes((REPO / "examples" / "swallowtail.png").read_bytes())
    r = subprocess.run([str(cli), "compress", str(photo), "--verify", "--json"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '"weights": "' in r.stdout  # the shipped weights' hash is recorded
    photo.unlink()
    r = subprocess.run([str(cli), "decompress", str(photo) + ".nz"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert photo.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
