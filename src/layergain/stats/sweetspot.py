"""The sweet spot: the shallowest layer shown as good as the best, within a margin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.errors import InputValueError
from layergain.stats import components as C
from layergain.stats._inputs import Outcomes, check_groups, check_labels, check_pretrained
from layergain.stats._random import SeedLike, as_generator
from layergain.validation import check_int, check_probability

__all__ = ["SweetSpot", "sweet_spot"]


@dataclass(frozen=True)
class SweetSpot:
    """The sweet spot and the simultaneous bounds behind it.

    ``layer`` and ``best_layer`` are layer indices (shallow to deep; ``layer`` is -1 where
    undetermined, with ``reason``). Arrays have shape (n_layers,): pretrained ``accuracy``,
    ``difference`` = accuracy - best accuracy, ``lower`` = each layer's simultaneous lower bound
    against its strongest rival, ``lower_to_best`` = against the best-scoring layer.
    """

    layer: int
    best_layer: int
    accuracy: np.ndarray
    difference: np.ndarray
    lower: np.ndarray
    lower_to_best: np.ndarray
    critical_value: float
    margin: float
    confidence: float
    reason: str

    def attrs(self) -> dict[str, str | float]:
        """Settings as netCDF-safe attributes."""
        return {
            "method": "shallowest layer whose simultaneous lower bound against every other layer exceeds -margin",
            "margin": self.margin,
            "confidence": self.confidence,
            "critical_value": self.critical_value,
        }


def sweet_spot_of(
    model: C.CrossedDesign,
    *,
    margin: float,
    confidence: float,
    n_draws: int,
    rng: np.random.Generator,
) -> SweetSpot:
    r"""Shallowest layer shown within ``margin`` of the best layer, with the choice of the best accounted for.

    For every ordered pair of layers (l, m) the simultaneous lower bound
    :math:`L_{lm} = (\hat a_l - \hat a_m) - c\,\mathrm{se}_{lm}` of the pretrained accuracy
    difference is formed, with c the ``confidence`` quantile of
    :math:`\max_{l \ne m} |D_{lm}| / \mathrm{se}_{lm}` over joint draws (the pairs share images).
    Layer l is *within the margin of the best* if :math:`L_{lm} > -\delta` for every other m:
    then, with probability ``confidence`` for all layers at once,
    :math:`a_l - \max_m a_m > -\delta` whichever layer is truly best — the choice of the best
    layer on the same data is inside the simultaneous statement (cf. Hsu 1996, multiple
    comparisons with the best). The sweet spot is the shallowest such layer; none may qualify
    ("undetermined"). This is about the pretrained network on these images (its own accuracy
    profile): the random networks do not enter.

    References
    ----------
    Hsu, J. C. (1996). *Multiple Comparisons: Theory and Methods*. Chapman & Hall (ch. 4).

    Wellek, S. (2010). *Testing Statistical Hypotheses of Equivalence and Noninferiority* (2nd ed.).
    Chapman & Hall/CRC.
    """
    n_layers = model.n_layers
    pairs = [(l, m) for l in range(n_layers) for m in range(l + 1, n_layers)]
    alpha = np.zeros((len(pairs), 1, n_layers))
    for k, (l, m) in enumerate(pairs):
        alpha[k, 0, l], alpha[k, 0, m] = 1.0, -1.0
    contrasts = C.evaluate(model, alpha, np.zeros_like(alpha), pretrained_spread=False)
    accuracy = model.acc_pre[0]
    best = int(np.argmax(accuracy))
    diff = np.full((n_layers, n_layers), 0.0)
    lower = np.full((n_layers, n_layers), np.inf)
    ok = contrasts.ok
    crit = np.nan
    if ok.size:
        draws = C.pivot_draws(contrasts, n_draws, rng)
        crit = float(np.quantile(np.max(np.abs(draws) / contrasts.se[ok][None, :], axis=1), confidence))
    low_df = C.too_few_units(model.samples)
    for k, (l, m) in enumerate(pairs):
        est = contrasts.estimate[k]
        half = crit * contrasts.se[k] if contrasts.reason[k] == "" else 0.0
        diff[l, m], diff[m, l] = est, -est
        lower[l, m], lower[m, l] = est - half, -est - half
    np.fill_diagonal(lower, np.inf)
    worst = lower.min(axis=1)  # each layer's lower bound against its strongest rival
    qualifies = worst > -margin
    if low_df:
        qualifies[:] = False
    to_best = np.array([lower[l, best] if l != best else 0.0 for l in range(n_layers)])
    layer = int(np.flatnonzero(qualifies)[0]) if qualifies.any() else -1
    if layer >= 0:
        reason = ""
    elif low_df:
        reason = (
            f"{low_df[0].n_units} {low_df[0].kind}s are too few for a calibrated comparison of layers"
        )
    else:
        reason = (
            f"no layer's accuracy is shown within {margin:g} of the best layer's at "
            f"{confidence:.0%} simultaneous confidence (the tightest layer's lower bound is "
            f"{float(worst.max()):+.3f}); more images or groups, or a wider margin, would be needed"
        )
    return SweetSpot(
        layer=layer, best_layer=best, accuracy=accuracy, difference=accuracy - accuracy[best], lower=worst,
        lower_to_best=to_best, critical_value=crit, margin=margin, confidence=confidence, reason=reason,
    )


def sweet_spot(
    correct_pre: Any,
    labels: Any,
    groups: Any | None = None,
    *,
    margin: float = 0.02,
    confidence: float = 0.95,
    n_draws: int = 20000,
    seed: SeedLike = None,
) -> SweetSpot:
    r"""The shallowest layer whose pretrained accuracy is shown within ``margin`` of the best layer's.

    Parameters
    ----------
    correct_pre : array-like of bool of shape (n_layers, n_repeats, n_images)
        Pretrained out-of-fold correctness of every layer, shallow to deep (at least 2 layers).
    labels : array-like of shape (n_images,)
        Class labels (strata of the images when there are no groups).
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids: the units where given.
    margin : float, default=0.02
        Non-inferiority margin in accuracy.
    confidence : float, default=0.95
        Simultaneous confidence of the bounds.
    n_draws : int, default=20000
        Draws of the joint reference distribution.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    SweetSpot

    Notes
    -----
    See :func:`sweet_spot_of`. "Not significantly below the best" (the former rule) is not "as
    good as the best": with few groups nothing is significant and the stem became the sweet spot;
    here few groups give wide bounds and an undetermined sweet spot instead.
    """
    pre = check_pretrained(correct_pre)
    confidence = check_probability(confidence, "confidence")
    n_draws = check_int(n_draws, "n_draws", minimum=1000)
    if not 0 < float(margin) < 1:
        raise InputValueError(f"`margin` must lie in (0, 1) (an accuracy difference), got {margin!r}.")
    n_images = pre.shape[2]
    label_codes = check_labels(labels, n_images)
    group_codes = check_groups(groups, n_images)
    outcomes = Outcomes(pre=pre, rand=np.zeros((pre.shape[0], 1) + pre.shape[1:], dtype=bool))
    model = C.design([(outcomes, label_codes, group_codes)])
    return sweet_spot_of(model, margin=float(margin), confidence=confidence, n_draws=n_draws, rng=as_generator(seed))
