"""Random number generators for the statistics.

Every random function of :mod:`layergain.stats` takes ``seed: int | numpy.random.Generator | None``
and converts it once, here, with :func:`numpy.random.default_rng`; independent streams (images,
random seeds, sign flips) come from ``Generator.spawn``, which spawns the generator's
:class:`numpy.random.SeedSequence`. The global numpy state is never used.
"""

from __future__ import annotations

import numbers

import numpy as np

from layergain.errors import InputTypeError, InputValueError

__all__ = ["SeedLike", "as_generator", "spawn_generators"]

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed`` (an int, a Generator or None)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        if seed is not None and int(seed) < 0:
            raise InputValueError(f"`seed` must be a non-negative integer, got {seed}.")
        return np.random.default_rng(None if seed is None else int(seed))
    raise InputTypeError(
        f"`seed` must be an int, a numpy.random.Generator or None, got {type(seed).__name__} {seed!r}."
    )


def spawn_generators(seed: SeedLike, n: int) -> list[np.random.Generator]:
    """Return ``n`` independent generators spawned from ``seed`` (converted once)."""
    return as_generator(seed).spawn(n)
