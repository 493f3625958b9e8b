"""Depth trend of the gain: OLS slope on relative depth with a bootstrap CI, and Spearman's rho."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats._inputs import check_vector
from layergain.stats._random import SeedLike, as_generator
from layergain.stats.bootstrap import GainBootstrap, bootstrap_interval, bootstrap_pvalue
from layergain.validation import check_choice, check_int, check_probability

__all__ = ["DepthTrend", "depth_trend", "slope_weights"]


@dataclass(frozen=True)
class DepthTrend:
    """Trend of the gain (or relative gain) over relative depth.

    ``slope_ci`` has shape (2,) (lower, upper); ``slope_draws`` shape (n_boot,).
    ``slope_pvalue`` is the two-sided bootstrap p-value of slope = 0 (the interval inverted);
    ``spearman_pvalue`` is scipy's (t approximation), ``spearman_pvalue_permutation`` the
    permutation p-value (exact for few layers).
    """

    statistic: str
    slope: float
    intercept: float
    slope_ci: np.ndarray
    slope_pvalue: float
    slope_draws: np.ndarray
    spearman_rho: float
    spearman_pvalue: float
    spearman_pvalue_permutation: float
    method: str
    n_boot: int
    confidence: float

    def attrs(self) -> dict[str, str | int | float]:
        """Settings as netCDF-safe attributes."""
        return {
            "trend_statistic": self.statistic,
            "trend_slope": "OLS on relative depth",
            "bootstrap_interval": self.method,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
        }


def slope_weights(relative_depth: np.ndarray) -> np.ndarray:
    r"""Weights :math:`c_l = (x_l - \bar x) / \sum_k (x_k - \bar x)^2`, so that slope = c @ y."""
    centred = relative_depth - relative_depth.mean()
    return centred / np.sum(centred**2)


def _spearman_permutation_p(
    x: np.ndarray, y: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> float:
    """Permutation p-value of Spearman's rho: ``y`` permuted against fixed ``x`` (n! orderings)."""
    rx = sps.rankdata(x)
    rx = rx - rx.mean()

    def rho(b: np.ndarray, axis: int) -> np.ndarray:
        rb = sps.rankdata(b, axis=axis)
        rb = rb - rb.mean(axis=axis, keepdims=True)
        rb = np.moveaxis(rb, axis, -1)
        return (rb @ rx) / np.sqrt(np.sum(rb**2, axis=-1) * np.sum(rx**2))

    res = sps.permutation_test(
        (y,), rho, permutation_type="pairings", vectorized=True, n_resamples=n_resamples, rng=rng
    )
    return float(res.pvalue)


def depth_trend(
    bootstrap: GainBootstrap,
    relative_depth: Any,
    *,
    statistic: Literal["gain", "relative_gain"] = "gain",
    confidence: float | None = None,
    method: Literal["bca", "percentile"] | None = None,
    n_resamples: int = 9999,
    seed: SeedLike = None,
) -> DepthTrend:
    r"""Does the gain change with depth? OLS slope with a bootstrap CI, and Spearman's rho.

    Parameters
    ----------
    bootstrap : GainBootstrap
        Result of :func:`~layergain.stats.bootstrap.bootstrap_gain` over all layers (the same
        draws of images and seeds for every layer).
    relative_depth : array-like of shape (n_layers,)
        Relative depth of each layer in [0, 1] (at least 3 layers, not all at one depth).
    statistic : {"gain", "relative_gain"}, default="gain"
    confidence : float, optional
        Level of the interval; default: that of ``bootstrap``.
    method : {"bca", "percentile"}, optional
        Interval method; default: that of ``bootstrap``.
    n_resamples : int, default=9999
        Permutations for Spearman's permutation p-value (all :math:`n!` are enumerated when
        there are no more than this).
    seed : int, numpy.random.Generator or None, default=None
        Randomness of the permutations.

    Returns
    -------
    DepthTrend

    Notes
    -----
    The slope is the OLS slope of the per-layer gain :math:`g_l` on relative depth :math:`x_l`,

    .. math:: \hat\beta = \sum_l c_l g_l,\qquad c_l = \frac{x_l - \bar x}{\sum_k (x_k - \bar x)^2},

    and its bootstrap draws are :math:`\hat\beta^*_b = \sum_l c_l g^*_{bl}` over the shared draws
    of the hierarchical bootstrap, so the interval accounts for the resampling of images and seeds
    and for the dependence between layers (the same images feed every layer); BCa uses the
    influence values :math:`\sum_l c_l U_{l}`, exact because the slope is linear in the gains.
    A negative slope says the gain falls with depth.

    Spearman's rho (:func:`scipy.stats.spearmanr`) is a rank summary of the same curve; its
    p-values treat layers as exchangeable observations and ignore the estimation noise of each
    gain, so the slope interval is the primary evidence. The permutation p-value uses
    :func:`scipy.stats.permutation_test` (exact for up to 7 layers at the default).

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.

    Spearman, C. (1904). The proof and measurement of association between two things.
    *American Journal of Psychology*, 15(1), 72-101.
    """
    if not isinstance(bootstrap, GainBootstrap):
        raise InputTypeError(
            f"`bootstrap` must be a GainBootstrap (from bootstrap_gain), got {type(bootstrap).__name__}."
        )
    statistic = check_choice(statistic, "statistic", ("gain", "relative_gain"))
    confidence = bootstrap.confidence if confidence is None else check_probability(confidence, "confidence")
    method = bootstrap.method if method is None else check_choice(method, "method", ("bca", "percentile"))
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    values: np.ndarray = getattr(bootstrap, statistic)
    n_layers = values.shape[0]
    if n_layers < 3:
        raise NotEnoughDataError(
            f"A depth trend needs at least 3 layers, got {n_layers}. Bootstrap all layers at once."
        )
    depth = check_vector(relative_depth, "relative_depth", n_layers, "relative depth per layer")
    if np.ptp(depth) == 0:
        raise InputValueError(
            "`relative_depth` is the same for every layer; a slope on depth is undefined."
        )
    weights = slope_weights(depth)
    draws = getattr(bootstrap, f"{statistic}_draws") @ weights
    influence = getattr(bootstrap, f"{statistic}_influence").combined() @ weights
    if np.all(np.isfinite(values)):
        fit = sps.linregress(depth, values)
        slope, intercept = float(fit.slope), float(fit.intercept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant gains: scipy warns and returns NaN
            spearman = sps.spearmanr(depth, values)
            rho, p_rho = float(spearman.statistic), float(spearman.pvalue)
        p_perm = (
            _spearman_permutation_p(depth, values, n_resamples, as_generator(seed))
            if np.isfinite(rho)
            else np.nan
        )
    else:
        slope = intercept = rho = p_rho = p_perm = np.nan
    ci = bootstrap_interval(draws, slope, confidence=confidence, method=method, influence=influence)
    p = bootstrap_pvalue(draws, slope, method=method, influence=influence)
    return DepthTrend(
        statistic=statistic,
        slope=slope,
        intercept=intercept,
        slope_ci=ci,
        slope_pvalue=float(p),
        slope_draws=draws,
        spearman_rho=rho,
        spearman_pvalue=p_rho,
        spearman_pvalue_permutation=p_perm,
        method=method,
        n_boot=bootstrap.n_boot,
        confidence=confidence,
    )
