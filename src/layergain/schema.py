"""Names of dimensions, coordinates and variables of layergain results (the ground floor).

Every stage uses these constants, so a name is spelled in one place; this module imports nothing
of layergain, so any stage may import it. The variables of a run are
listed in the README ("Results schema"); those of a comparison in :mod:`layergain.results.comparison`.
"""

from __future__ import annotations

__all__ = [
    "BOOT",
    "BOUND",
    "BOUNDS",
    "CLASS",
    "DATASET",
    "ESTIMATOR",
    "IMAGE",
    "INIT",
    "LAYER",
    "LAYER_OTHER",
    "LAYER_PRETRAINED",
    "LOWER",
    "PAIR",
    "PRETRAINED",
    "RANDOM_PREFIX",
    "REPEAT",
    "SET_PAIR",
    "UPPER",
    "random_init_name",
]

# Dimensions
DATASET = "dataset"
INIT = "init"
LAYER = "layer"
IMAGE = "image"
REPEAT = "repeat"
BOUND = "bound"
BOOT = "boot"
CLASS = "class"
PAIR = "pair"  # a pair of random seeds (random-vs-random reference)
SET_PAIR = "set_pair"  # a pair of image sets in a comparison
LAYER_PRETRAINED = "layer_pretrained"
LAYER_OTHER = "layer_other"
ESTIMATOR = "estimator"  # a transferability estimator (tau table)

# Values along dimensions
PRETRAINED = "pretrained"
RANDOM_PREFIX = "random-"
LOWER = "lower"
UPPER = "upper"
BOUNDS = (LOWER, UPPER)


def random_init_name(seed: int) -> str:
    """Name of the random network with ``seed`` along the ``init`` dimension."""
    return f"{RANDOM_PREFIX}{seed}"
