"""Progress of long coding work, reported by codecs and shown by the CLI.

Codecs call ``advance(done, total)`` (e.g. after each chunk); whoever wants
to show progress wraps the work in ``reporting(callback)``. Nothing is shown
unless someone listens.
"""

import contextvars
from contextlib import contextmanager

_listener = contextvars.ContextVar("neuralzip_progress", default=None)


@contextmanager
def reporting(callback):
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


def advance(done: float, total: float) -> None:
    callback = _listener.get()
    if callback is not None and total:
        callback(done / total)
