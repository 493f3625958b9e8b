r"""Hidden structure in the file order: probe accuracy of folds that follow an order vs shuffled folds.

A set without patient or slide ids may still carry them in its file order (a scanner's numbering,
one case after another). Folds cut as contiguous blocks of that order (within each class) then
keep neighbouring images together, as grouped folds would, while shuffled folds spread them over
training and test folds. If neighbours share more than their class (the same case, slide or
batch), the ordered folds' accuracy is lower.

The test is a Monte Carlo permutation test. Under the null hypothesis that the order carries
nothing (images exchangeable within class), the ordered folds are distributed as block folds of
a random within-class permutation, so with :math:`R` such shuffles

.. math::

    p = \frac{1 + \#\{r : \mathrm{acc}_r \le \mathrm{acc}_\mathrm{ordered}\}}{R + 1}

is a valid one-sided p-value (ties count against the flag). The check flags when
:math:`p \le \alpha` *and* the gap (mean shuffled accuracy minus ordered accuracy) is at least
``min_gap``: the size of a gap worth a sentence in a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from layergain.errors import InputValueError
from layergain.probes import ProbeSettings, check_foldable, cross_val_probe
from layergain.validation import as_float_matrix, check_int, check_probability

__all__ = ["DEFAULT_MIN_GAP", "OrderCheck", "block_folds", "order_check"]

#: Smallest accuracy gap (shuffled minus ordered) that is flagged, with p <= alpha.
DEFAULT_MIN_GAP = 0.02

MEANING = (
    "images that lie close together in {order} resemble each other beyond their class (likely the "
    "same case, slide, scanning batch or augmentation family); shuffled folds put such neighbours "
    "in both training and test folds, so shuffled-fold accuracy overstates accuracy on new cases. "
    "Find the case or slide ids and group by them, or group by blocks of {order}."
)


@dataclass(frozen=True)
class OrderCheck:
    """What :func:`order_check` measured.

    Attributes
    ----------
    ordered_accuracy : float
        Probe accuracy with folds that are contiguous blocks of the order within each class.
    shuffled_accuracy : ndarray of float of shape (n_shuffles,)
        The same with the order shuffled within each class, once per shuffle.
    gap : float
        ``shuffled_accuracy.mean() - ordered_accuracy``.
    p_value : float
        One-sided Monte Carlo permutation p-value of the ordered accuracy being this low.
    flagged : bool
        ``p_value <= alpha and gap >= min_gap``.
    alpha, min_gap : float
    folds, n_shuffles : int
    order : str
        What the order is (``"file order"`` or the caller's description).
    """

    ordered_accuracy: float
    shuffled_accuracy: np.ndarray
    gap: float
    p_value: float
    flagged: bool
    alpha: float
    min_gap: float
    folds: int
    n_shuffles: int
    order: str

    @property
    def meaning(self) -> str:
        """What a flag likely means, and what to do."""
        return MEANING.format(order=self.order)

    def attrs(self, prefix: str = "order_check_") -> dict:
        """netCDF-safe attributes."""
        return {
            f"{prefix}order": self.order,
            f"{prefix}ordered_accuracy": float(self.ordered_accuracy),
            f"{prefix}shuffled_accuracy": json.dumps([float(a) for a in self.shuffled_accuracy]),
            f"{prefix}gap": float(self.gap),
            f"{prefix}p_value": float(self.p_value),
            f"{prefix}flagged": int(self.flagged),
            f"{prefix}alpha": float(self.alpha),
            f"{prefix}min_gap": float(self.min_gap),
            f"{prefix}folds": int(self.folds),
            f"{prefix}n_shuffles": int(self.n_shuffles),
        }

    def summary(self) -> str:
        """One or two sentences for a report's Data section."""
        head = (
            f"Folds that follow the {self.order} give probe accuracy {self.ordered_accuracy:.3f}, shuffled "
            f"folds {self.shuffled_accuracy.mean():.3f} (gap {self.gap:+.3f}, permutation p = {self.p_value:.3g}, "
            f"{self.n_shuffles} shuffles)"
        )
        if self.flagged:
            return f"{head}: the order carries hidden structure — {self.meaning}"
        return f"{head}: no sign that the {self.order} carries structure beyond the classes."


def block_folds(labels, order=None, *, folds: int = 5) -> np.ndarray:
    """Folds that are contiguous blocks of ``order`` within each class.

    Parameters
    ----------
    labels : array-like of int of shape (n_images,)
    order : array-like of shape (n_images,), default=None
        Sort keys (file position, acquisition date ...); ``None``: the images' positions.
        Ties keep the images' positions.
    folds : int, default=5

    Returns
    -------
    ndarray of int of shape (n_images,)
        The ``k``-th of ``folds`` nearly equal blocks of each class's images, in order, is fold ``k``.
    """
    labels = np.asarray(labels)
    check_int(folds, "folds", minimum=2)
    keys = np.arange(labels.size) if order is None else np.asarray(order)
    if keys.shape != labels.shape:
        raise InputValueError(
            f"`order` must give one sort key per image: it has shape {keys.shape}, `labels` {labels.shape}."
        )
    out = np.empty(labels.size, dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(keys[idx], kind="stable")]
        for k, block in enumerate(np.array_split(idx, folds)):
            out[block] = k
    return out


def _shuffled_orders(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random sort keys that permute the images within each class."""
    return np.stack([rng.permutation(labels.size) for _ in range(n)])


def order_check(
    features,
    labels,
    *,
    order=None,
    order_name: str = "file order",
    folds: int = 5,
    n_shuffles: int = 19,
    alpha: float = 0.05,
    min_gap: float = DEFAULT_MIN_GAP,
    seed: int | np.random.Generator | None = None,
    settings: ProbeSettings = ProbeSettings(),
) -> OrderCheck:
    """Does the order of the images carry structure beyond their classes?

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
        One layer's features of the pretrained network (a middle layer is a good choice).
    labels : array-like of int of shape (n_images,)
    order : array-like of shape (n_images,), default=None
        Sort keys; ``None``: the images' order (file order for a folder or manifest).
    order_name : str, default="file order"
        How the report names the order.
    folds : int, default=5
    n_shuffles : int, default=19
        Shuffled orders; the smallest possible p-value is ``1 / (n_shuffles + 1)``.
    alpha : float, default=0.05
    min_gap : float, default=0.02
    seed : int or numpy.random.Generator or None
        Seed of the shuffles.
    settings : ProbeSettings

    Returns
    -------
    OrderCheck

    Notes
    -----
    Costs ``n_shuffles + 1`` cross-validated probes of one layer. Under exchangeable order the
    check flags with probability at most ``alpha`` (exact, see the module docstring); measured
    with ``min_gap=0.02`` on real features in bench/leakage.py --order.
    """
    x = as_float_matrix(features, "features")
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise InputValueError(f"`labels` must have one entry per row of `features` ({x.shape[0]}), got shape {labels.shape}.")
    check_foldable(labels, None, folds)
    check_int(n_shuffles, "n_shuffles", minimum=1)
    alpha = check_probability(alpha, "alpha")
    if 1.0 / (n_shuffles + 1) > alpha:
        raise InputValueError(
            f"with `n_shuffles`={n_shuffles} the smallest p-value is {1 / (n_shuffles + 1):.3g}, above "
            f"`alpha`={alpha}: the check could never flag. Use `n_shuffles` >= {int(np.ceil(1 / alpha)) - 1}."
        )
    rng = np.random.default_rng(seed)
    fold_rows = [block_folds(labels, order, folds=folds)]
    fold_rows += [block_folds(labels, keys, folds=folds) for keys in _shuffled_orders(labels, n_shuffles, rng)]
    result = cross_val_probe(x, labels, np.stack(fold_rows), settings=settings)
    accuracy = (result.prediction == labels[None, :]).mean(axis=1)
    ordered, shuffled = float(accuracy[0]), accuracy[1:]
    p = float((1 + np.sum(shuffled <= ordered)) / (n_shuffles + 1))
    gap = float(shuffled.mean() - ordered)
    return OrderCheck(
        ordered_accuracy=ordered,
        shuffled_accuracy=shuffled,
        gap=gap,
        p_value=p,
        flagged=bool(p <= alpha and gap >= min_gap),
        alpha=float(alpha),
        min_gap=float(min_gap),
        folds=int(folds),
        n_shuffles=int(n_shuffles),
        order=order_name,
    )
