"""Weights files: shipped ones (the package neuralzip.weights) and user-trained ones.

A weights file is an .npz named <model>-<kind>-v<N>-<hash>.npz; its identity is
the first 16 hex digits of the SHA-256 of its bytes, recorded in every member
coded with it. Nothing is ever downloaded.
"""

import hashlib
import re
from importlib import resources
from pathlib import Path

import numpy as np

from neuralzip.errors import ContainerError, InputError

HASH_DIGITS = 16


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:HASH_DIGITS]


def shipped_dir() -> Path:
    """Installed: the package neuralzip.weights; in a source checkout: the top-level weights/."""
    try:
        return Path(str(resources.files("neuralzip.weights")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "weights"


def shipped(prefix: str) -> Path:
    """The shipped weights file of the highest version for `prefix` (<prefix>-v<N>-<hash>.npz)."""
    versions = {}
    for path in shipped_dir().glob(f"{prefix}-v*-*.npz"):
        match = re.fullmatch(rf"{re.escape(prefix)}-v(\d+)-[0-9a-f]+\.npz", path.name)
        if match:
            versions.setdefault(int(match.group(1)), []).append(path)
    if not versions:
        raise InputError(f"no shipped weights for {prefix} in {shipped_dir()} (is the package installed completely?)")
    newest = versions[max(versions)]
    if len(newest) > 1:
        raise InputError(f"several shipped weights files for {prefix} v{max(versions)}: {', '.join(p.name for p in newest)}")
    return newest[0]


def save(arrays: dict, out_dir: Path, prefix: str, version: int) -> Path:
    """Write a trained weights file as <prefix>-v<version>-<hash>.npz in out_dir; -> its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{prefix}.tmp.npz"
    np.savez(tmp, **arrays)
    final = out_dir / f"{prefix}-v{version}-{file_hash(tmp)}.npz"
    tmp.replace(final)
    return final


def load(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a neuralzip weights file ({exc})") from None


def locate(wanted: str, user_file: str | None) -> Path:
    """The weights file with hash `wanted`: the user's --weights file or a shipped one."""
    if user_file is not None:
        if file_hash(Path(user_file)) == wanted:
            return Path(user_file)
        raise ContainerError(f"--weights {user_file} is not the weights file this .nz was made with ({wanted})")
    for path in shipped_dir().glob("*.npz"):
        if wanted in path.name and file_hash(path) == wanted:
            return path
    raise ContainerError(f"weights {wanted} are not available: pass the file it was made with as --weights FILE")
