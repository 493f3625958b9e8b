"""Pooling of a channels-first feature map (n, c, h, w) to a vector per image.

The extraction reads layers through :mod:`layergain.features.readouts`, which also knows
channels-last maps and tokens and the other readouts (``gem``, ``grid``, ``cov``, ``cls`` …); for a
channels-first map its ``avg``, ``max`` and ``avgmax`` give the same numbers as :func:`pool`.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["POOLINGS", "Pooling", "pool"]

Pooling = Literal["avg", "max", "avgmax"]
POOLINGS: tuple[str, ...] = ("avg", "max", "avgmax")


def pool(x: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Pool over every dimension after the channels; float32 output of shape (n, c) or (n, 2c)."""
    if x.ndim == 2:
        return x.float() if how != "avgmax" else torch.cat([x.float(), x.float()], dim=1)
    dims = tuple(range(2, x.ndim))
    if how == "avg":
        return x.mean(dim=dims, dtype=torch.float32)
    if how == "max":
        return x.amax(dim=dims).float()
    return torch.cat([x.mean(dim=dims, dtype=torch.float32), x.amax(dim=dims).float()], dim=1)
