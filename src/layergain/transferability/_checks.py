"""Validation shared by the transferability estimators (private)."""

from __future__ import annotations

from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.validation import as_float_matrix

__all__ = ["check_folds", "check_features_labels"]


def check_features_labels(
    features: Any, labels: Any, estimator: str, *, min_per_class: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features as float64, labels as 0..C-1 codes, and the images per class.

    Raises a clear error for NaN features, mismatched lengths, fewer than 2 classes, or a class
    with fewer than ``min_per_class`` images.
    """
    x = as_float_matrix(features, "features", min_rows=2, dtype=np.float64)
    y = np.asarray(labels)
    if y.ndim != 1:
        raise InputValueError(f"`labels` must be 1-D of shape (n_images,), got shape {y.shape}.")
    if y.dtype.kind not in "iub":
        raise InputTypeError(
            f"`labels` must be integer class codes, got dtype {y.dtype}. Encode class names first "
            "(e.g. numpy.unique(names, return_inverse=True)[1])."
        )
    if y.size != x.shape[0]:
        raise InputValueError(
            f"`features` has {x.shape[0]} images (rows) but `labels` has {y.size}; pass the labels of the "
            "same images in the same order."
        )
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise NotEnoughDataError(
            f"`{estimator}` needs images of at least 2 classes; `labels` has only class {classes.tolist()}."
        )
    small = counts < min_per_class
    if small.any():
        c = int(np.argmin(counts))
        raise NotEnoughDataError(
            f"class {classes[c].item()!r} has {int(counts[c])} image(s), while `{estimator}` needs at least "
            f"{min_per_class} per class. Add images of that class or leave the class out."
        )
    return x, codes.astype(np.int64), counts


def check_folds(folds: Any, n_images: int) -> np.ndarray:
    """Folds of shape (n_repeats, n_images), as from :func:`layergain.probes.make_folds`."""
    f = np.atleast_2d(np.asarray(folds))
    if f.ndim != 2 or f.dtype.kind not in "iu":
        raise InputValueError(
            f"`folds` must be integers of shape (n_repeats, n_images) (layergain.probes.make_folds), got "
            f"shape {np.shape(folds)} and dtype {f.dtype}."
        )
    if f.shape[1] != n_images:
        raise InputValueError(
            f"`folds` has {f.shape[1]} columns but `features` has {n_images} images; pass the run's folds of "
            "the same images."
        )
    for r in range(f.shape[0]):
        if np.unique(f[r]).size < 2:
            raise NotEnoughDataError(f"repeat {r} of `folds` has a single fold: nothing to train on.")
    return f
