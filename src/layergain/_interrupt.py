"""A Ctrl-C that cannot be lost on its way out.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when the signal is
handled; inside a ``__del__`` method or a weakref callback (garbage collection of tensors, pools,
progress bars) such an exception is printed as "Exception ignored" and dropped, and the run goes
on. The CLI's handler therefore also records the request, and the pipeline checks the record
before it publishes anything (:func:`check`), so an interrupted run never ends with results.
"""

from __future__ import annotations

import threading

__all__ = ["check", "clear", "request", "requested"]

_requested = threading.Event()


def request() -> None:
    """Record that the user asked to stop (called from the signal handler)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was requested, even if its first exception was lost."""
    if _requested.is_set():
        raise KeyboardInterrupt


def clear() -> None:
    _requested.clear()
