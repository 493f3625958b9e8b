"""Names of dimensions, coordinates and variables of layergain results.

Every stage uses these constants, so a name is spelled in one place. The full schema is
documented in ``docs/results-schema.md``... see the README section "Results schema".
"""

from __future__ import annotations

# Dimensions
DATASET = "dataset"
INIT = "init"
LAYER = "layer"
IMAGE = "image"
FOLD = "fold"
REPEAT = "repeat"
BOUND = "bound"
BOOT = "boot"
CLASS = "class"
PAIR = "pair"  # a pair of random seeds (random-vs-random reference)
LAYER_PRETRAINED = "layer_pretrained"
LAYER_OTHER = "layer_other"

# Values along dimensions
PRETRAINED = "pretrained"
RANDOM_PREFIX = "random-"
LOWER = "lower"
UPPER = "upper"
BOUNDS = (LOWER, UPPER)


def random_init_name(seed: int) -> str:
    """Name of the random network with ``seed`` along the ``init`` dimension."""
    return f"{RANDOM_PREFIX}{seed}"
