"""Exceptions raised by layergain.

Every error a user can cause is a :class:`LayergainError`; the CLI turns it into one line on
stderr and exit code 2. Subclasses also derive from the matching built-in exception, so code
that catches ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "InputTypeError",
    "InputValueError",
    "LayergainError",
    "ModelError",
    "NotEnoughDataError",
    "OutputError",
]


class LayergainError(Exception):
    """Base class of every error layergain raises on purpose."""


class InputValueError(LayergainError, ValueError):
    """An argument has a value that is not allowed (shape, range, option)."""


class InputTypeError(LayergainError, TypeError):
    """An argument has a type that is not allowed."""


class DataError(LayergainError, ValueError):
    """An image set cannot be used: missing files, unreadable images, bad manifest."""


class NotEnoughDataError(InputValueError):
    """Too few images, classes, groups or directions for the requested computation."""


class ModelError(LayergainError, ValueError):
    """A backbone or its weights cannot be loaded."""


class OutputError(LayergainError, OSError):
    """An output path cannot be written."""
