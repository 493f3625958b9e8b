"""Atomic file writes, shared by the feature cache and the results writer (ground every stage may use)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_target", "default_file_mode"]


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_target(path: Path, suffix: str = ".partial") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary name starts with a dot and ends with ``suffix`` so that readers globbing for
    finished files never see it; it is removed on any error or interruption. The final file gets
    the ordinary mode (``mkstemp`` would leave it 0600).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
