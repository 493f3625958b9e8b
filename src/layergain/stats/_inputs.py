"""Validation of the probe outcomes that every statistic of :mod:`layergain.stats` takes.

The contract with the probes stage (names as in the public functions):

- ``correct_pre``: bool array of shape (n_repeats, n_images), or (n_layers, n_repeats, n_images)
  for several layers at once: whether the pretrained network's out-of-fold prediction of image
  ``i`` in CV repeat ``r`` is correct.
- ``correct_rand``: bool array of shape (n_seeds, n_repeats, n_images), or
  (n_layers, n_seeds, n_repeats, n_images): the same for each random seed.
- ``labels``: (n_images,) class labels; ``groups``: (n_images,) patient / slide ids or None;
  ``folds``: (n_repeats, n_images) the CV fold of each image in each repeat.

0/1 numbers are accepted for booleans. Messages say which argument, what is allowed, what was
received and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError

__all__ = [
    "Outcomes",
    "check_folds",
    "check_groups",
    "check_labels",
    "check_outcomes",
    "check_pretrained",
    "check_vector",
]

_PRE_SHAPE = "(n_repeats, n_images) or (n_layers, n_repeats, n_images)"
_RAND_SHAPE = "(n_seeds, n_repeats, n_images) or (n_layers, n_seeds, n_repeats, n_images)"


@dataclass(frozen=True)
class Outcomes:
    """Validated correctness arrays, always with a leading layer axis."""

    pre: np.ndarray  # (n_layers, n_repeats, n_images), bool
    rand: np.ndarray  # (n_layers, n_seeds, n_repeats, n_images), bool

    @property
    def n_layers(self) -> int:
        return self.pre.shape[0]

    @property
    def n_repeats(self) -> int:
        return self.pre.shape[1]

    @property
    def n_images(self) -> int:
        return self.pre.shape[2]

    @property
    def n_seeds(self) -> int:
        return self.rand.shape[1]

    def per_image_pre(self) -> np.ndarray:
        """Pretrained correctness averaged over repeats, shape (n_layers, n_images)."""
        return self.pre.mean(axis=1)

    def per_image_rand(self) -> np.ndarray:
        """Random correctness averaged over repeats, shape (n_layers, n_seeds, n_images)."""
        return self.rand.mean(axis=2)

    def scaled_differences(self) -> np.ndarray:
        r"""Per-image differences times ``n_seeds * n_repeats``, exact integers as float64.

        .. math:: S R \, d_i = S \sum_r c^{pre}_{ri} - \sum_{s, r} c^{rand}_{sri}

        Shape (n_layers, n_images). Integers make sums and sign flips exact, so ties in
        permutation tests are counted without floating-point tolerance.
        """
        pre = self.pre.sum(axis=1, dtype=np.int64) * self.n_seeds
        rand = self.rand.sum(axis=(1, 2), dtype=np.int64)
        return (pre - rand).astype(np.float64)


def _as_bool_array(x: Any, name: str, ndims: tuple[int, ...], shape_doc: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputTypeError(
            f"`{name}` must be a boolean array (True where the prediction is correct), "
            f"got dtype {arr.dtype}."
        )
    if arr.ndim not in ndims:
        raise InputValueError(f"`{name}` must have shape {shape_doc}, got shape {arr.shape}.")
    if arr.size == 0:
        raise NotEnoughDataError(f"`{name}` is empty (shape={arr.shape}); it needs images and repeats.")
    if arr.dtype != np.bool_:
        finite = np.isfinite(arr)
        if not np.all(finite):
            raise InputValueError(
                f"`{name}` contains {int(arr.size - np.count_nonzero(finite))} NaN or infinite "
                "value(s); every image needs an out-of-fold prediction in every repeat. Drop the "
                "images without one from every array before computing."
            )
        bad = (arr != 0) & (arr != 1)
        if np.any(bad):
            raise InputValueError(
                f"`{name}` must hold booleans or 0/1 (correct / wrong), got {int(bad.sum())} "
                f"value(s) outside {{0, 1}}, e.g. {arr[bad].flat[0].item()!r}. Pass "
                "`prediction == label`, not accuracies or probabilities."
            )
        arr = arr.astype(bool)
    return arr


def check_outcomes(correct_pre: Any, correct_rand: Any) -> Outcomes:
    """Validate the two correctness arrays and give them a leading layer axis.

    Raises
    ------
    InputTypeError
        If an array is not boolean or numeric.
    InputValueError
        If the shapes are not those of the contract or do not match, or values are not 0/1.
    NotEnoughDataError
        If there are fewer than 2 images.
    """
    pre = _as_bool_array(correct_pre, "correct_pre", (2, 3), _PRE_SHAPE)
    rand = _as_bool_array(correct_rand, "correct_rand", (3, 4), _RAND_SHAPE)
    if rand.ndim != pre.ndim + 1:
        raise InputValueError(
            f"`correct_rand` must have one axis more than `correct_pre` (the seed axis): "
            f"`correct_pre` has shape {pre.shape}, so `correct_rand` needs "
            f"{_RAND_SHAPE.split(' or ')[pre.ndim - 2]}"
            f", got shape {rand.shape}."
        )
    if pre.ndim == 2:
        pre, rand = pre[None], rand[None]
    expected = (pre.shape[0], rand.shape[1], pre.shape[1], pre.shape[2])
    if rand.shape != expected:
        raise InputValueError(
            "`correct_pre` and `correct_rand` must describe the same layers, repeats and images: "
            f"`correct_pre` has (n_layers, n_repeats, n_images) = {pre.shape}, so `correct_rand` "
            f"needs shape (n_layers, n_seeds, n_repeats, n_images) = (..., {rand.shape[1]}, ...) "
            f"{expected}, got {rand.shape}."
        )
    if pre.shape[2] < 2:
        raise NotEnoughDataError(
            f"`correct_pre` has {pre.shape[2]} image(s) while a minimum of 2 is required."
        )
    return Outcomes(pre=pre, rand=rand)


def check_pretrained(correct_pre: Any, *, min_layers: int = 2) -> np.ndarray:
    """Validate pretrained correctness of several layers, shape (n_layers, n_repeats, n_images)."""
    pre = _as_bool_array(correct_pre, "correct_pre", (3,), "(n_layers, n_repeats, n_images)")
    if pre.shape[0] < min_layers:
        raise NotEnoughDataError(
            f"`correct_pre` has {pre.shape[0]} layer(s) (shape={pre.shape}) while a minimum of "
            f"{min_layers} is required."
        )
    if pre.shape[2] < 2:
        raise NotEnoughDataError(
            f"`correct_pre` has {pre.shape[2]} image(s) while a minimum of 2 is required."
        )
    return pre


def _codes(x: Any, name: str, n_images: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] != n_images:
        raise InputValueError(
            f"`{name}` must have shape (n_images,) = ({n_images},), one {what} per image in the "
            f"order of the correctness arrays, got shape {arr.shape}."
        )
    codes, uniques = pd.factorize(arr, sort=True)
    if np.any(codes < 0):
        raise InputValueError(
            f"`{name}` contains {int(np.sum(codes < 0))} missing value(s) (NaN or None); give "
            f"every image a {what}."
        )
    return codes.astype(np.intp), np.asarray(uniques)


def _show(value: Any) -> Any:
    """A numpy scalar as its Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def check_labels(labels: Any, n_images: int) -> np.ndarray:
    """Return class codes 0..n_classes-1 of shape (n_images,); at least 2 classes."""
    codes, uniques = _codes(labels, "labels", n_images, "class label")
    if uniques.size < 2:
        raise NotEnoughDataError(
            f"`labels` has a single class ({_show(uniques[0])!r}); a classification probe needs at least "
            "2 classes."
        )
    return codes


def check_groups(groups: Any, n_images: int) -> np.ndarray | None:
    """Return group codes 0..n_groups-1 of shape (n_images,), or None; at least 2 groups."""
    if groups is None:
        return None
    codes, uniques = _codes(groups, "groups", n_images, "group (patient / slide id)")
    if uniques.size < 2:
        raise NotEnoughDataError(
            f"`groups` has a single group ({_show(uniques[0])!r}); resampling needs at least 2 groups. "
            "Pass groups=None if the images are independent."
        )
    return codes


def check_folds(folds: Any, n_repeats: int, n_images: int) -> np.ndarray:
    """Return fold codes of shape (n_repeats, n_images), 0..k_r-1 per repeat, k_r >= 2."""
    arr = np.asarray(folds)
    if arr.ndim == 1 and n_repeats == 1:
        arr = arr[None]
    if arr.shape != (n_repeats, n_images):
        raise InputValueError(
            f"`folds` must have shape (n_repeats, n_images) = ({n_repeats}, {n_images}), the CV "
            f"fold of each image in each repeat, got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(
            arr != np.round(arr)
        ):
            raise InputValueError(
                f"`folds` must hold integer fold indices, got dtype {arr.dtype} with "
                "non-integer or missing values."
            )
    out = np.empty(arr.shape, dtype=np.intp)
    for r in range(n_repeats):
        uniques, out[r] = np.unique(arr[r], return_inverse=True)
        if uniques.size < 2:
            raise NotEnoughDataError(
                f"`folds` has a single fold in repeat {r}; cross-validation needs at least 2 folds."
            )
    return out


def check_vector(x: Any, name: str, n: int, what: str) -> np.ndarray:
    """Return a finite float vector of shape (n,)."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InputTypeError(f"`{name}` must be numeric, got dtype {arr.dtype}.")
    if arr.shape != (n,):
        raise InputValueError(f"`{name}` must have shape ({n},), one {what}, got shape {arr.shape}.")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputValueError(f"`{name}` contains NaN or infinite values; every {what} must be finite.")
    return arr
