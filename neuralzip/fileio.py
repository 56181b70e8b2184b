"""Opening inputs with a one-line error; atomic, refuse-to-overwrite file output; safe member names."""

import os
import tempfile
from pathlib import Path, PurePosixPath

from neuralzip.errors import ContainerError, InputError


def open_input(path):
    """The file at `path` opened for binary reading, or a one-line InputError."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path} already exists (use --force to overwrite)")
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a directory")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_member_name(name: str) -> PurePosixPath:
    """A stored name must be a relative path without '..': anything else is refused."""
    p = PurePosixPath(name)
    if (not name or "\\" in name or "\x00" in name or p.is_absolute() or ".." in p.parts
            or name.startswith("/") or (len(name) > 1 and name[1] == ":")):
        raise ContainerError(f"unsafe member name {name!r} in the archive; refusing to extract")
    return p
