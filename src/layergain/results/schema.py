"""Former home of the schema constants, kept so that old imports work: see :mod:`layergain.schema`."""

from __future__ import annotations

from layergain.schema import *  # noqa: F403
from layergain.schema import __all__  # noqa: F401
