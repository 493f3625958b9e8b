r"""Hierarchical bootstrap of the knowledge gain: images (or groups) and random seeds.

Why hand-written: :func:`scipy.stats.bootstrap` resamples observations of one or more samples
independently, but not stratified (by class), clustered (by patient) and crossed with a second
resampled factor (the random seeds) at once, and it cannot share the seed resample between layers
or image sets. Here one resample is a pair (unit counts, seed counts) used for every layer, so
quantities across layers (a depth trend) and across image sets (differences of gain) get draws
that respect the same resampling.

The statistic. With :math:`p_i = \frac1R \sum_r c^{pre}_{ri}` and
:math:`q_{si} = \frac1R \sum_r c^{rand}_{sri}`,

.. math::

    \mathrm{acc}_{pre} = \frac1N \sum_i p_i,\qquad
    \mathrm{acc}_{rand} = \frac1S \sum_s \frac1N \sum_i q_{si},\qquad
    g = \mathrm{acc}_{pre} - \mathrm{acc}_{rand},\qquad
    g_{rel} = \frac{g}{1 - \mathrm{acc}_{rand}}.

A resample draws unit counts :math:`f_u` (units: images, or groups where groups exist; stratified)
and seed counts :math:`h_s` (multinomial, :math:`\sum_s h_s = S`), and evaluates

.. math::

    \mathrm{acc}^*_{pre} = \frac{\sum_u f_u P_u}{\sum_u f_u n_u},\qquad
    \mathrm{acc}^*_{rand} = \frac1S \sum_s h_s \frac{\sum_u f_u Q_{su}}{\sum_u f_u n_u}

with :math:`P_u, Q_{su}` the sums of :math:`p_i, q_{si}` over the :math:`n_u` images of unit
:math:`u`. All layers and all draws are matrix products of the count matrices with these sums.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats._inputs import Outcomes, check_groups, check_labels, check_outcomes
from layergain.stats._random import SeedLike, spawn_generators
from layergain.validation import check_choice, check_int, check_probability

__all__ = [
    "BootstrapMethod",
    "GainBootstrap",
    "Influence",
    "bootstrap_gain",
    "bootstrap_interval",
    "bootstrap_pvalue",
]

BootstrapMethod = Literal["bca", "percentile"]
_METHODS = ("bca", "percentile")
# Counts of at most this many (draw, unit) cells are held at once; the draws do not depend on it
# being reached, only on the number of units.
_CELLS_PER_CHUNK = 1 << 20
# Bootstrap values this close (relative) to the estimate count as ties in the BCa bias correction.
_TIE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Influence:
    """Empirical influence values of a statistic, for the BCa acceleration.

    ``units`` has shape (n_units, n_layers), ``seeds`` shape (n_seeds, n_layers); each is centred
    within its resampling stratum, so that the linear approximation of a bootstrap value is
    :math:`T^* - \\hat T \\approx \\sum_u f^*_u U_u + \\sum_s h^*_s V_s`.
    """

    units: np.ndarray
    seeds: np.ndarray

    def combined(self) -> np.ndarray:
        """Units and seeds stacked along axis 0 (independent resampling, cumulants add)."""
        return np.concatenate([self.units, self.seeds], axis=0)


@dataclass(frozen=True)
class GainBootstrap:
    """Point estimates, bootstrap draws and intervals of accuracies and gain, per layer.

    Arrays are per layer (length n_layers, also for a single layer); draws have shape
    (n_boot, n_layers); intervals have shape (n_layers, 2) with columns (lower, upper).
    ``method``, ``n_boot``, ``confidence`` and the resampling scheme say how they were made
    (:meth:`attrs` gives them as netCDF-safe attributes).
    """

    accuracy_pre: np.ndarray
    accuracy_rand: np.ndarray
    gain: np.ndarray
    relative_gain: np.ndarray
    accuracy_pre_ci: np.ndarray
    accuracy_rand_ci: np.ndarray
    gain_ci: np.ndarray
    relative_gain_ci: np.ndarray
    accuracy_pre_draws: np.ndarray
    accuracy_rand_draws: np.ndarray
    gain_draws: np.ndarray
    relative_gain_draws: np.ndarray
    gain_influence: Influence
    relative_gain_influence: Influence
    method: str
    n_boot: int
    confidence: float
    resampling_unit: str
    stratified_by: str
    n_units: int
    n_seeds: int

    def attrs(self) -> dict[str, str | int | float]:
        """Bootstrap settings as attributes that survive a netCDF round trip."""
        return {
            "bootstrap": "hierarchical: units stratified, random seeds with replacement",
            "bootstrap_interval": self.method,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "resampling_unit": self.resampling_unit,
            "stratified_by": self.stratified_by,
            "n_units": self.n_units,
            "n_seeds": self.n_seeds,
        }


# --------------------------------------------------------------------------- resampling units


@dataclass(frozen=True)
class _Units:
    """Which unit each image belongs to and the strata units are resampled within."""

    of_image: np.ndarray  # (n_images,) unit index
    size: np.ndarray  # (n_units,) images per unit, float
    strata: tuple[np.ndarray, ...]  # unit indices per stratum
    kind: str  # "image" or "group"
    stratified_by: str


def _resampling_units(labels: np.ndarray, groups: np.ndarray | None, stratify: bool) -> _Units:
    """Units and strata of the image resampling.

    Without groups the units are images, stratified by class. With groups the units are whole
    groups (all images of a patient, whatever their classes, stay together: images of one patient
    are not independent, and splitting a patient across classes would break that dependence);
    a group is stratified by its dominant class (the most frequent label among its images, the
    smallest label code on a tie), so class proportions are kept approximately, exactly where
    every group holds one class.
    """
    n_images = labels.shape[0]
    if groups is None:
        of_image = np.arange(n_images)
        unit_label = labels
        kind, by = "image", "class"
    else:
        of_image = groups
        n_groups = int(groups.max()) + 1
        table = np.zeros((n_groups, int(labels.max()) + 1), dtype=np.int64)
        np.add.at(table, (groups, labels), 1)
        unit_label = table.argmax(axis=1)
        kind, by = "group", "dominant class of group"
    n_units = int(of_image.max()) + 1
    size = np.bincount(of_image, minlength=n_units).astype(np.float64)
    if not stratify:
        return _Units(of_image, size, (np.arange(n_units),), kind, "none")
    strata = tuple(np.flatnonzero(unit_label == c) for c in np.unique(unit_label))
    small = [int(unit_label[s[0]]) for s in strata if s.size < 2]
    if small:
        raise NotEnoughDataError(
            f"Stratified resampling needs at least 2 {kind}s per class, but the class(es) at "
            f"position(s) {small} of the sorted class labels have 1 {kind}; such a class would never "
            "vary between resamples. Pass "
            "stratify=False to resample without stratification, or merge the rare classes."
        )
    return _Units(of_image, size, strata, kind, by)


def _unit_sums(values: np.ndarray, units: _Units) -> np.ndarray:
    """Sum ``values`` (..., n_images) over the images of each unit -> (..., n_units)."""
    if units.kind == "image":
        return values
    flat = values.reshape(-1, values.shape[-1])
    out = np.zeros((flat.shape[0], units.size.shape[0]))
    for row, out_row in zip(flat, out):
        out_row[:] = np.bincount(units.of_image, weights=row, minlength=units.size.shape[0])
    return out.reshape(values.shape[:-1] + (units.size.shape[0],))


def _unit_counts(rng: np.random.Generator, units: _Units, n_draws: int) -> Iterator[np.ndarray]:
    """Yield stratified resampling counts in chunks of shape (chunk, n_units), rows summing per stratum."""
    n_units = units.size.shape[0]
    chunk = max(1, _CELLS_PER_CHUNK // n_units)
    for start in range(0, n_draws, chunk):
        b = min(chunk, n_draws - start)
        counts = np.zeros((b, n_units))
        rows = np.arange(b)[:, None]
        for stratum in units.strata:
            picks = stratum[rng.integers(0, stratum.size, size=(b, stratum.size))]
            flat = np.bincount((rows * n_units + picks).ravel(), minlength=b * n_units)
            counts += flat.reshape(b, n_units)
        yield counts


# --------------------------------------------------------------------------- intervals


def _acceleration(influence: np.ndarray) -> np.ndarray:
    r"""BCa acceleration :math:`a = \sum U^3 / (6 (\sum U^2)^{3/2})` along axis 0 (0 if all U = 0)."""
    u2 = np.sum(influence**2, axis=0)
    u3 = np.sum(influence**3, axis=0)
    out = np.zeros_like(u2)
    np.divide(u3, 6.0 * u2**1.5, out=out, where=u2 > 0)
    return out


def _proportion_below(draws: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Share of draws below ``value`` along axis 0, ties (within tolerance) counted half."""
    tol = _TIE_TOLERANCE * np.maximum(1.0, np.abs(value))
    below = np.sum(draws < value - tol, axis=0)
    ties = np.sum(np.abs(draws - value) <= tol, axis=0)
    return (below + 0.5 * ties) / draws.shape[0]


def _as_draws(draws: Any, estimate: Any, influence: Any | None) -> tuple[np.ndarray, ...]:
    draws = np.asarray(draws, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if draws.ndim < 1 or draws.shape[1:] != estimate.shape:
        raise InputValueError(
            f"`draws` must have shape (n_boot,) + estimate.shape = (n_boot,) + {estimate.shape}, "
            f"got {draws.shape}."
        )
    if influence is not None:
        influence = np.asarray(influence, dtype=np.float64)
        if influence.shape[1:] != estimate.shape:
            raise InputValueError(
                f"`influence` must have shape (n_units,) + {estimate.shape}, got {influence.shape}."
            )
    return draws, estimate, influence


def bootstrap_interval(
    draws: Any,
    estimate: Any,
    *,
    confidence: float = 0.95,
    method: BootstrapMethod = "bca",
    influence: Any | None = None,
) -> np.ndarray:
    r"""Two-sided percentile or BCa interval from bootstrap draws.

    Parameters
    ----------
    draws : array-like of shape (n_boot, ...)
        Bootstrap values of the statistic.
    estimate : array-like of shape (...)
        The statistic on the original data.
    confidence : float, default=0.95
        Confidence level in (0, 1).
    method : {"bca", "percentile"}, default="bca"
        ``"percentile"``: the :math:`\alpha/2` and :math:`1-\alpha/2` quantiles of the draws.
        ``"bca"``: bias-corrected and accelerated quantiles (needs ``influence``).
    influence : array-like of shape (n_units, ...), optional
        Empirical influence values of the statistic over every resampled unit (all strata and all
        independently resampled factors stacked), for the acceleration.

    Returns
    -------
    numpy.ndarray of shape (..., 2)
        Lower and upper bounds; NaN where a draw or the estimate is NaN, or where BCa is undefined
        (every draw on one side of the estimate).

    Notes
    -----
    BCa (Efron & Tibshirani 1993, ch. 14) uses the quantiles

    .. math::

        \alpha_{1,2} = \Phi\left(z_0 + \frac{z_0 + z_{\alpha/2,\,1-\alpha/2}}
                                 {1 - a (z_0 + z_{\alpha/2,\,1-\alpha/2})}\right),\qquad
        z_0 = \Phi^{-1}\left(\frac{\#\{T^* < \hat T\} + \tfrac12 \#\{T^* = \hat T\}}{B}\right),

    with ties counted half because accuracy differences are discrete. The acceleration is the
    skewness of the linear approximation of :math:`T^*` (Davison & Hinkley 1997, sec. 5.3):
    :math:`a = \sum_j U_j^3 / \bigl(6 (\sum_j U_j^2)^{3/2}\bigr)` over the empirical influence
    values of all independently resampled units; for one unstratified sample and the jackknife
    influence values it is the familiar jackknife formula.

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.

    Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*.
    Cambridge University Press.
    """
    confidence = check_probability(confidence, "confidence")
    method = check_choice(method, "method", _METHODS)
    draws, estimate, influence = _as_draws(draws, estimate, influence)
    alpha = 1.0 - confidence
    shape = estimate.shape
    d2 = draws.reshape(draws.shape[0], -1)
    est = estimate.reshape(-1)
    if method == "percentile":
        levels = np.broadcast_to(np.array([alpha / 2, 1 - alpha / 2])[:, None], (2, est.size))
    else:
        if influence is None:
            raise InputValueError("`influence` is required for method='bca'.")
        a = _acceleration(influence.reshape(influence.shape[0], -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            z0 = ndtri(_proportion_below(d2, est))
            z = ndtri(np.array([alpha / 2, 1 - alpha / 2]))[:, None]
            num = z0 + z
            den = 1.0 - a * num
            levels = np.where(den > 0, ndtr(z0 + num / den), np.nan)
    out = np.full((est.size, 2), np.nan)
    bad = np.isnan(d2).any(axis=0) | np.isnan(est) | ~np.all(np.isfinite(levels), axis=0)
    for k in np.flatnonzero(~bad):
        out[k] = np.quantile(d2[:, k], levels[:, k])
    return out.reshape(shape + (2,))


def bootstrap_pvalue(
    draws: Any,
    estimate: Any,
    *,
    null: float = 0.0,
    method: BootstrapMethod = "bca",
    influence: Any | None = None,
) -> np.ndarray:
    r"""Two-sided p-value of ``statistic = null`` by inverting the bootstrap interval.

    The p-value is the largest :math:`1 - \text{confidence}` at which the two-sided interval of
    :func:`bootstrap_interval` (same ``method``) still contains ``null``, so the two agree:
    the interval at level :math:`1-\alpha` excludes ``null`` exactly when :math:`p < \alpha`
    (up to the resolution of the draws).

    .. math::

        G = \frac{\#\{T^* < \theta_0\} + \tfrac12\#\{T^* = \theta_0\} + \tfrac12}{B + 1},\quad
        w = \Phi^{-1}(G) - z_0,\quad
        \alpha' = \Phi\!\left(\frac{w}{1 + a w} - z_0\right),\quad
        p = 2 \min(\alpha', 1 - \alpha'),

    with :math:`z_0 = a = 0` for the percentile method (then :math:`\alpha' = G`). The
    :math:`\tfrac12` in :math:`G` keeps it inside (0, 1); p-values below :math:`1/(B+1)` are not
    resolved and are reported as :math:`1/(B+1)`. Efron & Tibshirani (1993), sec. 15.4
    (achieved significance level from a confidence interval).

    Returns
    -------
    numpy.ndarray of shape (...)
        NaN where a draw or the estimate is NaN.
    """
    method = check_choice(method, "method", _METHODS)
    draws, estimate, influence = _as_draws(draws, estimate, influence)
    n_boot = draws.shape[0]
    tol = _TIE_TOLERANCE * max(1.0, abs(null))
    below = np.sum(draws < null - tol, axis=0)
    ties = np.sum(np.abs(draws - null) <= tol, axis=0)
    g = (below + 0.5 * ties + 0.5) / (n_boot + 1)
    w = ndtri(g)
    if method == "bca":
        if influence is None:
            raise InputValueError("`influence` is required for method='bca'.")
        a = _acceleration(influence)
        with np.errstate(divide="ignore", invalid="ignore"):
            z0 = ndtri(_proportion_below(draws, estimate))
            w = w - z0
            den = 1.0 + a * w
            alpha1 = np.where(den > 0, ndtr(w / den - z0), np.where(w > 0, 1.0, 0.0))
    else:
        alpha1 = g
    p = np.clip(2.0 * np.minimum(alpha1, 1.0 - alpha1), 1.0 / (n_boot + 1), 1.0)
    bad = np.isnan(draws).any(axis=0) | np.isnan(estimate) | ~np.isfinite(p)
    return np.where(bad, np.nan, p)


# --------------------------------------------------------------------------- the gain


@dataclass(frozen=True)
class _Prepared:
    """One image set ready for resampling: unit sums and the resampling units."""

    units: _Units
    pre: np.ndarray  # (n_layers, n_units) sum of per-image mean pretrained correctness
    rand: np.ndarray  # (n_layers, n_seeds, n_units)

    @property
    def n_seeds(self) -> int:
        return self.rand.shape[1]


def _prepare(outcomes: Outcomes, labels: np.ndarray, groups: np.ndarray | None, stratify: bool) -> _Prepared:
    units = _resampling_units(labels, groups, stratify)
    pre = _unit_sums(outcomes.per_image_pre(), units)
    rand = _unit_sums(outcomes.per_image_rand(), units)
    return _Prepared(units, pre, rand)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den == 0 (a random baseline with no errors has no relative gain)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _evaluate(prep: _Prepared, counts: np.ndarray, seed_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies (pretrained, mean random) of resamples given by unit counts (b, n_units) and
    seed counts (b, n_seeds); each of shape (b, n_layers)."""
    n_layers, n_seeds, n_units = prep.rand.shape
    b = counts.shape[0]
    total = counts @ prep.units.size  # images in each resample
    acc_pre = (counts @ prep.pre.T) / total[:, None]
    per_seed = (counts @ prep.rand.reshape(n_layers * n_seeds, n_units).T).reshape(b, n_layers, n_seeds)
    acc_rand = np.einsum("bls,bs->bl", per_seed / total[:, None, None], seed_counts / n_seeds)
    return acc_pre, acc_rand


def _draws(
    prep: _Prepared, rng: np.random.Generator, seed_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap accuracies (pretrained, mean random), each of shape (n_boot, n_layers)."""
    acc_pre, acc_rand = [], []
    start = 0
    for counts in _unit_counts(rng, prep.units, seed_counts.shape[0]):
        b = counts.shape[0]
        pre, rand = _evaluate(prep, counts, seed_counts[start : start + b])
        acc_pre.append(pre)
        acc_rand.append(rand)
        start += b
    return np.concatenate(acc_pre), np.concatenate(acc_rand)


def _estimates(prep: _Prepared) -> dict[str, Any]:
    """Point estimates and empirical influence values (infinitesimal jackknife) per layer.

    With unit counts f and seed counts h, the derivatives at f = h = 1 are
    d acc_pre / d f_u = (P_u - acc_pre n_u) / N,
    d acc_rand / d f_u = (mean_s Q_su - acc_rand n_u) / N,
    d acc_rand / d h_s = (acc_rand_s - acc_rand) / S,
    centred within each stratum (the counts of a stratum have a fixed sum).
    """
    units = prep.units
    n = units.size.sum()
    n_seeds = prep.n_seeds
    acc_pre = prep.pre.sum(axis=1) / n
    acc_rand_s = prep.rand.sum(axis=2) / n
    acc_rand = acc_rand_s.mean(axis=1)
    gain = acc_pre - acc_rand
    error_rand = 1.0 - acc_rand
    relative = _ratio(gain, error_rand)

    d_pre = (prep.pre - acc_pre[:, None] * units.size) / n
    d_rand = (prep.rand.mean(axis=1) - acc_rand[:, None] * units.size) / n
    for stratum in units.strata:
        d_pre[:, stratum] -= d_pre[:, stratum].mean(axis=1, keepdims=True)
        d_rand[:, stratum] -= d_rand[:, stratum].mean(axis=1, keepdims=True)
    s_rand = (acc_rand_s - acc_rand[:, None]) / n_seeds
    s_pre = np.zeros_like(s_rand)

    def relative_of(d_p: np.ndarray, d_r: np.ndarray) -> np.ndarray:
        return _ratio(d_p - d_r, error_rand[:, None]) + _ratio(gain * 1.0, error_rand**2)[:, None] * d_r

    return {
        "accuracy_pre": (acc_pre, Influence(d_pre.T, s_pre.T)),
        "accuracy_rand": (acc_rand, Influence(d_rand.T, s_rand.T)),
        "gain": (gain, Influence((d_pre - d_rand).T, (s_pre - s_rand).T)),
        "relative_gain": (
            relative,
            Influence(relative_of(d_pre, d_rand).T, relative_of(s_pre, s_rand).T),
        ),
    }


def _check_settings(n_boot: Any, confidence: Any, method: Any) -> tuple[int, float, str]:
    return (
        check_int(n_boot, "n_boot", minimum=1),
        check_probability(confidence, "confidence"),
        check_choice(method, "method", _METHODS),
    )


def _bootstrap_prepared(
    sets: Sequence[_Prepared],
    *,
    n_boot: int,
    confidence: float,
    method: str,
    seed: SeedLike,
) -> list[GainBootstrap]:
    """Bootstrap several image sets with one shared resample of the random seeds.

    The random network with seed s is the same network in every image set, so the seed counts of
    a draw are shared; the images of each set are resampled independently. Stream 0 of ``seed``
    draws the seed counts, stream k + 1 the units of set k (so set 0 alone reproduces
    :func:`bootstrap_gain` with the same seed).
    """
    rngs = spawn_generators(seed, len(sets) + 1)
    n_seeds = sets[0].n_seeds
    seed_counts = rngs[0].multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(float)
    results = []
    for prep, rng in zip(sets, rngs[1:]):
        acc_pre_draws, acc_rand_draws = _draws(prep, rng, seed_counts)
        draws = {
            "accuracy_pre": acc_pre_draws,
            "accuracy_rand": acc_rand_draws,
            "gain": acc_pre_draws - acc_rand_draws,
            "relative_gain": _ratio(acc_pre_draws - acc_rand_draws, 1.0 - acc_rand_draws),
        }
        est = _estimates(prep)
        fields: dict[str, Any] = {}
        for name, (value, infl) in est.items():
            fields[name] = value
            fields[f"{name}_draws"] = draws[name]
            fields[f"{name}_ci"] = bootstrap_interval(
                draws[name], value, confidence=confidence, method=method, influence=infl.combined()
            )
        results.append(
            GainBootstrap(
                **fields,
                gain_influence=est["gain"][1],
                relative_gain_influence=est["relative_gain"][1],
                method=method,
                n_boot=n_boot,
                confidence=confidence,
                resampling_unit=prep.units.kind,
                stratified_by=prep.units.stratified_by,
                n_units=int(prep.units.size.shape[0]),
                n_seeds=n_seeds,
            )
        )
    return results


def bootstrap_gain(
    correct_pre: Any,
    correct_rand: Any,
    labels: Any,
    groups: Any | None = None,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    method: BootstrapMethod = "bca",
    stratify: bool = True,
    seed: SeedLike = None,
) -> GainBootstrap:
    r"""Hierarchical bootstrap of gain and relative gain (images or groups, and random seeds).

    Parameters
    ----------
    correct_pre : array-like of bool of shape (n_repeats, n_images)
        Whether the pretrained network's out-of-fold prediction is correct; a leading layer axis
        (n_layers, n_repeats, n_images) treats several layers at once.
    correct_rand : array-like of bool of shape (n_seeds, n_repeats, n_images)
        The same for each random seed (with the layer axis: (n_layers, n_seeds, n_repeats, n_images)).
    labels : array-like of shape (n_images,)
        Class labels (strata of the image resampling).
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids. Where given, whole groups are resampled (stratified by their
        dominant class) instead of images.
    n_boot : int, default=2000
        Number of bootstrap draws B (>= 1; use B >= 2000 for reports).
    confidence : float, default=0.95
        Level of the two-sided intervals, in (0, 1).
    method : {"bca", "percentile"}, default="bca"
        Interval method (see :func:`bootstrap_interval`).
    stratify : bool, default=True
        Resample within classes (within dominant classes for groups). Each stratum needs at
        least 2 units.
    seed : int, numpy.random.Generator or None, default=None
        Randomness; the images and the random seeds get independent spawned streams.

    Returns
    -------
    GainBootstrap
        Estimates, draws of shape (n_boot, n_layers), intervals of shape (n_layers, 2), the
        influence values used for BCa, and the settings. All layers share the same draws of
        images and seeds.

    Raises
    ------
    InputValueError
        On shapes that do not match, NaN or non-0/1 correctness, one class, ``n_boot < 1``,
        ``confidence`` outside (0, 1), or an unknown ``method``.
    NotEnoughDataError
        If a stratum has fewer than 2 units.

    Notes
    -----
    One draw resamples the units within each stratum with replacement (multinomial counts
    :math:`f_u`) and, independently, the S random seeds with replacement (counts :math:`h_s`),
    and recomputes (see the module docstring)

    .. math::

        g^* = \frac{\sum_u f_u P_u}{\sum_u f_u n_u}
              - \frac1S \sum_s h_s \frac{\sum_u f_u Q_{su}}{\sum_u f_u n_u},\qquad
        g^*_{rel} = \frac{g^*}{1 - \mathrm{acc}^*_{rand}}.

    Resampling the seeds makes the interval account for the spread between random
    initialisations (the baseline is a distribution, not one network). With few seeds the
    bootstrap under-states that spread by the factor :math:`(S-1)/S` of the plug-in variance;
    with S = 1 it is ignored. Repeats are averaged per image before resampling: they share the
    images and are not independent replications. Where groups span classes, a group keeps all its
    images (the dependence between a patient's images is what group resampling is for) and is
    stratified by its dominant class.

    The relative gain is NaN where the random baseline makes no error (in the estimate, or in a
    draw: then its interval is NaN).

    The BCa acceleration uses exact (infinitesimal-jackknife) influence values of these ratio
    statistics, stacked over units and seeds (Davison & Hinkley 1997, sec. 3.2 and 5.3).

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.

    Davison, A. C. and Hinkley, D. V. (1997). *Bootstrap Methods and their Application*.
    Cambridge University Press (sec. 3.8, hierarchical data).

    Field, C. A. and Welsh, A. H. (2007). Bootstrapping clustered data. *Journal of the Royal
    Statistical Society B*, 69(3), 369-390.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> pre = rng.random((1, 100)) < 0.8
    >>> rand = rng.random((3, 1, 100)) < 0.6
    >>> res = bootstrap_gain(pre, rand, labels, n_boot=500, seed=0)
    >>> res.gain_ci.shape
    (1, 2)
    """
    n_boot, confidence, method = _check_settings(n_boot, confidence, method)
    outcomes = check_outcomes(correct_pre, correct_rand)
    label_codes = check_labels(labels, outcomes.n_images)
    group_codes = check_groups(groups, outcomes.n_images)
    prep = _prepare(outcomes, label_codes, group_codes, bool(stratify))
    return _bootstrap_prepared([prep], n_boot=n_boot, confidence=confidence, method=method, seed=seed)[0]
