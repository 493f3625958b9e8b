"""Effect sizes of the gain: Cohen's h for the two accuracies and paired effect sizes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pingouin
from statsmodels.stats.proportion import proportion_effectsize

from layergain.errors import InputTypeError, InputValueError
from layergain.stats._inputs import check_outcomes

__all__ = ["GainEffectSizes", "cohen_h", "gain_effect_sizes"]


def cohen_h(p1: Any, p2: Any) -> np.ndarray:
    r"""Cohen's h between two proportions (e.g. pretrained and mean random accuracy).

    .. math:: h = 2 \arcsin\sqrt{p_1} - 2 \arcsin\sqrt{p_2}

    Computed by :func:`statsmodels.stats.proportion.proportion_effectsize`. Cohen's benchmarks:
    0.2 small, 0.5 medium, 0.8 large. The arcsine makes a difference near 0 or 1 count more than
    the same difference near 0.5, as the sampling variance of a proportion is smaller there.

    Parameters
    ----------
    p1, p2 : array-like of float in [0, 1]
        Broadcastable proportions.

    Returns
    -------
    numpy.ndarray
        h, positive where ``p1 > p2``.

    References
    ----------
    Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences* (2nd ed.),
    ch. 6. Lawrence Erlbaum.
    """
    arrays = []
    for name, value in (("p1", p1), ("p2", p2)):
        arr = np.asarray(value)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise InputTypeError(f"`{name}` must be numeric, got dtype {arr.dtype}.")
        arr = arr.astype(np.float64)
        if np.any(np.isnan(arr)) or np.any((arr < 0) | (arr > 1)):
            raise InputValueError(
                f"`{name}` must hold proportions in [0, 1] without NaN, got {arr.tolist()!r}."
            )
        arrays.append(arr)
    return np.asarray(proportion_effectsize(arrays[0], arrays[1]), dtype=np.float64)


@dataclass(frozen=True)
class GainEffectSizes:
    """Effect sizes per layer, each of shape (n_layers,).

    ``cohen_h``: Cohen's h of the two accuracies (the headline effect size);
    ``cohen_dz``: Cohen's :math:`d_z` of the per-image differences (the paired effect size);
    ``cohen_dav``: Cohen's :math:`d_{av}` (mean difference over the average SD of the two
    per-image correctness series).
    """

    cohen_h: np.ndarray
    cohen_dz: np.ndarray
    cohen_dav: np.ndarray


def gain_effect_sizes(correct_pre: Any, correct_rand: Any) -> GainEffectSizes:
    r"""Cohen's h and paired Cohen's d (:math:`d_z`, :math:`d_{av}`) of the gain per layer.

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.gain_statistics`.

    Returns
    -------
    GainEffectSizes

    Notes
    -----
    With per-image correctness :math:`x_i = \bar c^{pre}_i` and :math:`y_i = \bar c^{rand}_i`
    (means over repeats, and seeds), :math:`d_i = x_i - y_i`:

    .. math::

        h = 2\arcsin\sqrt{\bar x} - 2\arcsin\sqrt{\bar y},\qquad
        d_z = \frac{\bar d}{s_d},\qquad
        d_{av} = \frac{\bar x - \bar y}{\sqrt{(s_x^2 + s_y^2)/2}}.

    :math:`d_z` is the paired effect size stored as the gain's paired effect size: it is the
    standardised mean of exactly the differences the primary sign-flip test uses
    (:math:`d_z \sqrt{N}` is that test's studentised statistic), so it says how clearly the
    per-image data separate pretrained from random. It depends on how often the two networks
    disagree, so it is not comparable with an unpaired d; :math:`d_{av}` is (Lakens 2013) and is
    given beside it. Both come from :func:`pingouin.compute_effsize` (``paired=True``,
    ``eftype="cohen_dz"`` / ``"cohen"``). Where the differences have no spread, :math:`d_z` is
    :math:`\pm\infty` (or NaN when the gain is 0).

    References
    ----------
    Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences* (2nd ed.).
    Lawrence Erlbaum.

    Lakens, D. (2013). Calculating and reporting effect sizes to facilitate cumulative science:
    a practical primer for t-tests and ANOVAs. *Frontiers in Psychology*, 4, 863.
    """
    outcomes = check_outcomes(correct_pre, correct_rand)
    x = outcomes.per_image_pre()
    y = outcomes.per_image_rand().mean(axis=1)
    dz = np.empty(outcomes.n_layers)
    dav = np.empty(outcomes.n_layers)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for layer in range(outcomes.n_layers):
            dz[layer] = pingouin.compute_effsize(x[layer], y[layer], paired=True, eftype="cohen_dz")
            dav[layer] = pingouin.compute_effsize(x[layer], y[layer], paired=True, eftype="cohen")
    return GainEffectSizes(cohen_h=cohen_h(x.mean(axis=1), y.mean(axis=1)), cohen_dz=dz, cohen_dav=dav)
