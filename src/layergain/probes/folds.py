"""Cross-validation folds shared by every network (the paired design)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from layergain.errors import NotEnoughDataError
from layergain.validation import check_int

__all__ = ["check_foldable", "make_folds"]


def check_foldable(labels: np.ndarray, groups: np.ndarray | None, folds: int, class_names=None) -> None:
    """Raise a clear error when ``folds``-fold CV cannot be done on these labels and groups."""
    check_int(folds, "folds", minimum=2)
    names = class_names if class_names is not None else [str(c) for c in range(int(labels.max()) + 1)]
    counts = np.bincount(labels, minlength=len(names))
    present = counts > 0
    if present.sum() < 2:
        raise NotEnoughDataError("a probe needs images of at least 2 classes; add images of another class.")
    small = [(names[c], int(counts[c])) for c in np.flatnonzero(present) if counts[c] < folds]
    if small:
        name, count = min(small, key=lambda t: t[1])
        raise NotEnoughDataError(
            f"class {name!r} has {count} image(s), fewer than the {folds} folds; every fold needs one "
            f"test image per class. Use `folds={max(2, count)}` or fewer, or add images."
        )
    if groups is not None:
        n_groups = np.unique(groups).size
        if n_groups < folds:
            raise NotEnoughDataError(
                f"the image set has {n_groups} group(s), fewer than the {folds} folds; grouped CV keeps a "
                f"group in one fold. Use `folds={max(2, n_groups)}` or fewer, or another `group_column=NAME`."
            )


def make_folds(
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Fold of every image in each repeat of stratified (group-aware) k-fold CV.

    Parameters
    ----------
    labels : array-like of int of shape (n_images,)
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids; all images of a group land in one fold
        (``sklearn.model_selection.StratifiedGroupKFold``), else ``StratifiedKFold``.
    folds : int, default=5
    repeats : int, default=1
        Independent reshuffles of the folds.
    seed : int or numpy.random.Generator or None, default=0

    Returns
    -------
    ndarray of int of shape (repeats, n_images)
        Fold index in ``0..folds-1``.
    """
    labels = np.asarray(labels)
    check_foldable(labels, groups, folds)
    check_int(repeats, "repeats", minimum=1)
    rng = np.random.default_rng(seed)
    out = np.empty((repeats, labels.size), dtype=np.int64)
    for r in range(repeats):
        state = int(rng.integers(2**31 - 1))
        if groups is None:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=state)
            split = splitter.split(np.zeros(labels.size), labels)
        else:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=state)
            split = splitter.split(np.zeros(labels.size), labels, groups)
        for f, (_, test) in enumerate(split):
            out[r, test] = f
    return out
