"""Leakage guard: near-duplicate images and hidden structure in the file order.

- :func:`find_duplicates` finds clusters of the same tissue up to flips, 90° rotations, small
  crops, rescaling, JPEG and colour jitter; :func:`group_duplicates` turns them into groups so
  no cluster spans two folds.
- :func:`order_check` compares probe accuracy under shuffled folds with folds that follow the
  file order (or another declared order), for sets without patient or slide ids.
"""

from layergain.leakage.descriptors import Descriptors, describe_images
from layergain.leakage.duplicates import (
    DuplicateReport,
    clusters_across_folds,
    find_duplicates,
    group_duplicates,
    match_descriptors,
)
from layergain.leakage.order import OrderCheck, block_folds, order_check
from layergain.leakage.planting import plant_copy, plant_duplicates

__all__ = [
    "Descriptors",
    "DuplicateReport",
    "OrderCheck",
    "block_folds",
    "clusters_across_folds",
    "describe_images",
    "find_duplicates",
    "group_duplicates",
    "match_descriptors",
    "order_check",
    "plant_copy",
    "plant_duplicates",
]
