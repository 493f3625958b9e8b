"""The sweet spot: the shallowest layer whose accuracy is not significantly below the best's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.stats._inputs import check_groups, check_pretrained, check_vector
from layergain.stats._random import SeedLike, as_generator
from layergain.stats.multiple import adjust_pvalues
from layergain.stats.tests import group_sums, sign_flip_pvalues
from layergain.validation import check_int, check_probability

__all__ = ["SweetSpot", "sweet_spot"]


@dataclass(frozen=True)
class SweetSpot:
    """The sweet spot and the comparisons behind it.

    ``layer`` and ``best_layer`` are layer indices (shallow to deep). Arrays have shape
    (n_layers,): ``accuracy`` of the pretrained probe, ``difference`` = accuracy - best accuracy,
    ``pvalue`` of the one-sided paired test "layer below best" (NaN at the best layer) and
    ``pvalue_holm`` (Holm across the n_layers - 1 comparisons). ``params_to_layer`` and
    ``params_fraction`` (sweet spot's parameters over the best layer's) are None when no
    parameter counts were given.
    """

    layer: int
    best_layer: int
    accuracy: np.ndarray
    difference: np.ndarray
    pvalue: np.ndarray
    pvalue_holm: np.ndarray
    params_to_layer: float | None
    params_fraction: float | None
    alpha: float
    n_resamples: int
    exact: bool
    resampling_unit: str

    def attrs(self) -> dict[str, str | int | float]:
        """Settings as netCDF-safe attributes."""
        return {
            "sweet_spot_layer": self.layer,
            "sweet_spot_best_layer": self.best_layer,
            "sweet_spot_test": "one-sided paired sign-flip vs best layer, Holm",
            "sweet_spot_alpha": self.alpha,
            "sweet_spot_n_resamples": self.n_resamples,
            "sweet_spot_resampling_unit": self.resampling_unit,
        }


def sweet_spot(
    correct_pre: Any,
    groups: Any | None = None,
    params_to_layer: Any | None = None,
    *,
    alpha: float = 0.05,
    n_resamples: int = 9999,
    seed: SeedLike = None,
) -> SweetSpot:
    r"""The shallowest layer whose pretrained accuracy is not significantly below the best layer's.

    Parameters
    ----------
    correct_pre : array-like of bool of shape (n_layers, n_repeats, n_images)
        Pretrained out-of-fold correctness of every layer, shallow to deep (at least 2 layers).
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids; signs are then flipped per group.
    params_to_layer : array-like of shape (n_layers,), default=None
        Parameters of the network up to and including each layer, to report the sweet spot's.
    alpha : float, default=0.05
        Family-wise level of the comparisons with the best layer.
    n_resamples : int, default=9999
        Sign vectors of each permutation test.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    SweetSpot

    Notes
    -----
    The best layer :math:`b` maximises the pretrained accuracy (the shallowest on a tie). For each
    other layer :math:`l`, the per-image differences
    :math:`e_i = \bar c^{pre}_{li} - \bar c^{pre}_{bi}` (means over repeats) are tested with the
    paired sign-flip permutation test (as in :func:`~layergain.stats.tests.sign_flip_test`),
    one-sided, :math:`H_0: \mathrm{acc}_l \ge \mathrm{acc}_b` against
    :math:`H_1: \mathrm{acc}_l < \mathrm{acc}_b`; Holm's procedure runs across the
    :math:`L - 1` comparisons. The sweet spot is the shallowest layer :math:`l` with
    :math:`\tilde p_l > \alpha` (the best layer qualifies, so there always is one).

    Caveats the report should carry: "not significantly below" is not equivalence; with few
    images every layer qualifies and the sweet spot moves shallow. The best layer is chosen on the
    same data, so its accuracy is biased upwards (winner's curse), which makes the other layers
    look worse and moves the sweet spot deeper, i.e. the choice errs towards the deeper, larger
    cut.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
    Journal of Statistics*, 6(2), 65-70.

    Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero.
    *Statistical Applications in Genetics and Molecular Biology*, 9(1), article 39.
    """
    pre = check_pretrained(correct_pre)
    alpha = check_probability(alpha, "alpha")
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    n_layers, n_repeats, n_images = pre.shape
    group_codes = check_groups(groups, n_images)
    params = None if params_to_layer is None else check_vector(
        params_to_layer, "params_to_layer", n_layers, "parameter count per layer"
    )
    counts = pre.sum(axis=1, dtype=np.int64)  # (L, N) correct repeats per image
    accuracy = counts.mean(axis=1) / n_repeats
    best = int(np.argmax(accuracy))
    others = np.array([l for l in range(n_layers) if l != best])
    scaled = (counts[others] - counts[best]).astype(np.float64)
    p_others, exact, n_used = sign_flip_pvalues(
        group_sums(scaled, group_codes), "less", n_resamples, as_generator(seed)
    )
    pvalue = np.full(n_layers, np.nan)
    pvalue[others] = p_others
    pvalue_holm = adjust_pvalues(pvalue, "holm")
    qualifies = (pvalue_holm > alpha) | (np.arange(n_layers) == best)
    layer = int(np.flatnonzero(qualifies)[0])
    fraction = None
    if params is not None and params[best] != 0:
        fraction = float(params[layer] / params[best])
    return SweetSpot(
        layer=layer,
        best_layer=best,
        accuracy=accuracy,
        difference=accuracy - accuracy[best],
        pvalue=pvalue,
        pvalue_holm=pvalue_holm,
        params_to_layer=None if params is None else float(params[layer]),
        params_fraction=fraction,
        alpha=alpha,
        n_resamples=n_used,
        exact=exact,
        resampling_unit="image" if group_codes is None else "group",
    )
