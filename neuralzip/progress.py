"""Progress of long coding work, reported by codecs and shown by the CLI.

A codec wraps each piece of work (a chunk) in ``within(start, end, total)``
and, inside it, reports how far it got with ``step(fraction)``; whoever wants
to show progress wraps the whole job in ``reporting(callback)``, which then
receives the overall fraction done. Nothing is shown unless someone listens.
"""

import contextvars
from contextlib import contextmanager

_listener = contextvars.ContextVar("neuralzip_progress", default=None)
_span = contextvars.ContextVar("neuralzip_progress_span", default=(0.0, 1.0))


@contextmanager
def reporting(callback):
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def within(start: float, end: float, total: float):
    """The work inside covers [start, end) of `total` units of the job."""
    token = _span.set((start / total, end / total) if total else (0.0, 1.0))
    try:
        step(0.0)
        yield
    finally:
        _span.reset(token)


def step(fraction: float) -> None:
    """The work of the current span is `fraction` done."""
    callback = _listener.get()
    if callback is not None:
        lo, hi = _span.get()
        callback(lo + fraction * (hi - lo))
