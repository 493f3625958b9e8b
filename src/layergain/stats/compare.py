r"""Across image sets: does the gain differ between sets, per layer, and which sets keep it deep?

Image sets differ in images and share the backbone, its probe layers and the random seeds (the
random network with seed s is the same network for every set).

- :func:`interaction_test`: binomial GLM ``correct ~ network * dataset`` per layer
  (statsmodels), with a likelihood-ratio test and a cluster-robust Wald test of the interaction.
- :func:`compare_sets`: the whole comparison: a joint hierarchical bootstrap of every set (seed
  resample shared), per-set gains and tests, pairwise differences of gain with bootstrap CIs and
  Holm, the sets that keep a significant gain at the deepest layers, and the depth slopes.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats._inputs import Outcomes, check_groups, check_labels, check_outcomes, check_vector
from layergain.stats._random import SeedLike, spawn_generators
from layergain.stats.bootstrap import (
    GainBootstrap,
    _bootstrap_prepared,
    _check_settings,
    _prepare,
    bootstrap_interval,
    bootstrap_pvalue,
)
from layergain.stats.multiple import adjust_pvalues
from layergain.stats.tests import group_sums, sign_flip_pvalues
from layergain.stats.trend import depth_trend, slope_weights
from layergain.validation import check_int, check_probability

__all__ = [
    "InteractionTest",
    "ProbeOutcomes",
    "SetComparison",
    "compare_sets",
    "interaction_test",
]


@dataclass(frozen=True)
class ProbeOutcomes:
    """The probe outcomes of one image set, all layers (the probes stage's contract).

    ``correct_pre``: (n_layers, n_repeats, n_images); ``correct_rand``: (n_layers, n_seeds,
    n_repeats, n_images); ``labels`` and ``groups`` (or None): (n_images,). Sets may differ in
    images and repeats; they must share layers and seeds.
    """

    correct_pre: Any
    correct_rand: Any
    labels: Any
    groups: Any | None = None
    name: str | None = None


@dataclass(frozen=True)
class _Set:
    outcomes: Outcomes
    labels: np.ndarray
    groups: np.ndarray | None
    name: str


def _check_sets(sets: Any) -> list[_Set]:
    if isinstance(sets, ProbeOutcomes) or not isinstance(sets, Sequence):
        raise InputTypeError(
            f"`sets` must be a sequence of ProbeOutcomes (one per image set), got {type(sets).__name__}."
        )
    if len(sets) < 2:
        raise NotEnoughDataError(f"Comparing image sets needs at least 2 sets, got {len(sets)}.")
    out = []
    for k, s in enumerate(sets):
        if not isinstance(s, ProbeOutcomes):
            raise InputTypeError(f"`sets[{k}]` must be a ProbeOutcomes, got {type(s).__name__}.")
        outcomes = check_outcomes(s.correct_pre, s.correct_rand)
        out.append(
            _Set(
                outcomes,
                check_labels(s.labels, outcomes.n_images),
                check_groups(s.groups, outcomes.n_images),
                s.name if s.name is not None else f"set-{k}",
            )
        )
    shapes = [(s.outcomes.n_layers, s.outcomes.n_seeds) for s in out]
    if len(set(shapes)) > 1:
        raise InputValueError(
            "Every image set must have the same layers and random seeds (same backbone, same "
            f"seeds); got (n_layers, n_seeds) = {shapes}."
        )
    names = [s.name for s in out]
    if len(set(names)) < len(names):
        raise InputValueError(f"Image set names must be distinct, got {names}.")
    return out


# --------------------------------------------------------------------------- GLM interaction


@dataclass(frozen=True)
class InteractionTest:
    """Tests of the network x dataset interaction per layer, arrays of shape (n_layers,).

    ``wald_*``: cluster-robust Wald test (clusters: images, or groups where given), the primary;
    ``lrt_*``: likelihood-ratio test of the fractional binomial GLM. ``failure`` holds "" or why a
    layer could not be fitted (its statistics are then NaN).
    """

    wald_statistic: np.ndarray
    wald_pvalue: np.ndarray
    lrt_statistic: np.ndarray
    lrt_pvalue: np.ndarray
    df: int
    failure: np.ndarray


def _design(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Design of ``network * dataset`` (pretrained rows then random rows, per set) and the
    indices of the interaction columns."""
    n_sets = len(sizes)
    blocks = []
    for k, n in enumerate(sizes):
        for network in (1.0, 0.0):
            dummies = np.zeros((n, n_sets - 1))
            if k > 0:
                dummies[:, k - 1] = 1.0
            blocks.append(np.column_stack([np.ones(n), np.full(n, network), dummies, network * dummies]))
    x = np.vstack(blocks)
    return x, np.arange(2 + (n_sets - 1), 2 + 2 * (n_sets - 1))


def _fit_layer(
    y: np.ndarray, x: np.ndarray, inter: np.ndarray, clusters: np.ndarray
) -> tuple[float, float, str]:
    """(Wald statistic, LRT statistic, failure) of one layer."""
    reduced = np.delete(x, inter, axis=1)
    family = sm.families.Binomial()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            full = sm.GLM(y, x, family=family).fit(cov_type="cluster", cov_kwds={"groups": clusters})
            small = sm.GLM(y, reduced, family=family).fit()
        except (np.linalg.LinAlgError, ValueError) as exc:  # singular design, failed fit
            return np.nan, np.nan, f"GLM fit failed: {exc}"
    trouble = [w for w in caught if issubclass(w.category, (PerfectSeparationWarning, ConvergenceWarning))]
    if trouble:
        return np.nan, np.nan, f"GLM fit unreliable: {trouble[0].message}"
    r = np.zeros((inter.size, x.shape[1]))
    r[np.arange(inter.size), inter] = 1.0
    wald = full.wald_test(r, use_f=False, scalar=True)
    lrt = max(0.0, float(small.deviance - full.deviance))
    return float(np.squeeze(wald.statistic)), lrt, ""


def interaction_test(sets: Sequence[ProbeOutcomes]) -> InteractionTest:
    r"""Does pretraining help more in one image set than another? GLM interaction per layer.

    Parameters
    ----------
    sets : sequence of ProbeOutcomes
        At least 2 image sets with the same layers and seeds.

    Returns
    -------
    InteractionTest

    Notes
    -----
    Per layer, a binomial GLM with logit link (:class:`statsmodels.genmod.generalized_linear_model.GLM`)

    .. math::

        \operatorname{logit} \mathrm{E}[y] = \beta_0 + \beta_1\,\mathrm{pretrained}
          + \sum_{k \ge 2} \gamma_k\,[\mathrm{set} = k]
          + \sum_{k \ge 2} \delta_k\,\mathrm{pretrained}\,[\mathrm{set} = k]

    is fitted and :math:`H_0: \delta = 0` (the pretrained-vs-random log odds ratio is the same in
    every set) is tested with :math:`K - 1` degrees of freedom.

    The repeated measures, and the form chosen: each image is predicted in every repeat by the
    pretrained network and by each random seed. Stacking all of them as Bernoulli rows would count
    one image :math:`R(1+S)` times as if independent. Here each image gives two rows with a
    fractional response, :math:`y = \bar c^{pre}_i` and :math:`y = \bar c^{rand}_i` (means over
    repeats and seeds): the aggregated form, one observation per image and network. The two rows
    of an image are still paired (and images of one patient are dependent), so the primary test is
    the cluster-robust (sandwich) Wald test with clusters = images, or groups where given
    (Liang & Zeger 1986; Papke & Wooldridge 1996 for fractional responses). The likelihood-ratio
    test (deviance difference, :math:`\chi^2_{K-1}`) is reported beside it; it ignores the
    pairing, which for positively correlated pairs makes it conservative, and ignores groups,
    which makes it liberal.

    The interaction is on the log-odds scale; a difference of gain (probability scale) between
    sets is tested by the bootstrap in :func:`compare_sets`. The two can disagree when the random
    baselines differ a lot between sets.

    References
    ----------
    Liang, K.-Y. and Zeger, S. L. (1986). Longitudinal data analysis using generalized linear
    models. *Biometrika*, 73(1), 13-22.

    Papke, L. E. and Wooldridge, J. M. (1996). Econometric methods for fractional response
    variables. *Journal of Applied Econometrics*, 11(6), 619-632.

    McCullagh, P. and Nelder, J. A. (1989). *Generalized Linear Models* (2nd ed.). Chapman & Hall.
    """
    checked = _check_sets(sets)
    return _interaction(checked)


def _interaction(sets: list[_Set]) -> InteractionTest:
    n_layers = sets[0].outcomes.n_layers
    x, inter = _design([s.outcomes.n_images for s in sets])
    clusters, offset = [], 0
    for s in sets:
        ids = s.groups if s.groups is not None else np.arange(s.outcomes.n_images)
        clusters.append(np.tile(ids + offset, 2))
        offset += int(ids.max()) + 1
    cluster_ids = np.concatenate(clusters)
    pre = [s.outcomes.per_image_pre() for s in sets]
    rand = [s.outcomes.per_image_rand().mean(axis=1) for s in sets]
    wald = np.full(n_layers, np.nan)
    lrt = np.full(n_layers, np.nan)
    failure = np.full(n_layers, "", dtype=object)
    for layer in range(n_layers):
        extreme = [
            f"{kind} accuracy {cell[layer].mean():g} in {s.name}"
            for s, p, r in zip(sets, pre, rand)
            for kind, cell in (("pretrained", p), ("random", r))
            if cell[layer].mean() in (0.0, 1.0)
        ]
        if extreme:
            # The model is saturated in the (network, set) cells: a cell mean of 0 or 1 puts its
            # log odds at infinity (perfect separation), and no finite estimate exists.
            failure[layer] = "GLM fit impossible (perfect separation): " + "; ".join(extreme)
            continue
        y = np.concatenate([np.concatenate([p[layer], r[layer]]) for p, r in zip(pre, rand)])
        wald[layer], lrt[layer], failure[layer] = _fit_layer(y, x, inter, cluster_ids)
    df = len(sets) - 1
    return InteractionTest(
        wald_statistic=wald,
        wald_pvalue=sps.chi2.sf(wald, df),
        lrt_statistic=lrt,
        lrt_pvalue=sps.chi2.sf(lrt, df),
        df=df,
        failure=failure.astype(str),
    )


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class SetComparison:
    """Comparison of K image sets over L layers; P = K (K - 1) / 2 pairs.

    Per set: ``gain`` (K, L), ``gain_ci`` (K, L, 2), ``gain_pvalue`` (two-sided sign-flip) and
    ``gain_pvalue_holm`` (Holm across layers within the set), ``slope`` (K,) and ``slope_ci``
    (K, 2). Per pair (``pairs`` (P, 2) holds set indices i < j; differences are set i minus set
    j): ``difference`` (P, L), ``difference_ci`` (P, L, 2), ``difference_pvalue`` (P, L),
    ``difference_pvalue_holm`` (P, L, Holm across all pairs and layers), and the same for the
    slope (P,). ``deep_layers``: indices of the layers counted as deepest; ``significant``
    (K, L): Holm-significant positive gain; ``keeps_gain`` (K,): significant at every deep layer.
    ``bootstraps`` holds each set's :class:`GainBootstrap` (shared seed resample).
    """

    names: tuple[str, ...]
    pairs: np.ndarray
    gain: np.ndarray
    gain_ci: np.ndarray
    gain_pvalue: np.ndarray
    gain_pvalue_holm: np.ndarray
    difference: np.ndarray
    difference_ci: np.ndarray
    difference_pvalue: np.ndarray
    difference_pvalue_holm: np.ndarray
    interaction: InteractionTest
    deep_layers: np.ndarray
    significant: np.ndarray
    keeps_gain: np.ndarray
    slope: np.ndarray
    slope_ci: np.ndarray
    slope_difference: np.ndarray
    slope_difference_ci: np.ndarray
    slope_difference_pvalue_holm: np.ndarray
    bootstraps: tuple[GainBootstrap, ...]
    method: str
    n_boot: int
    confidence: float
    alpha: float

    def attrs(self) -> dict[str, str | int | float]:
        """Settings as netCDF-safe attributes."""
        return {
            "datasets": ",".join(self.names),
            "bootstrap": "joint hierarchical: images per set, random seeds shared",
            "bootstrap_interval": self.method,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "difference_correction": "holm over all pairs and layers",
            "gain_correction": "holm over layers within each set",
            "interaction_test": "binomial GLM network*dataset, cluster-robust Wald (primary) and LRT",
        }


def _pair_influence(a: GainBootstrap, b: GainBootstrap, weights: np.ndarray | None = None) -> np.ndarray:
    """Influence values of (statistic of a) - (statistic of b): images differ, seeds are shared."""
    ua, ub = a.gain_influence.units, b.gain_influence.units
    seeds = a.gain_influence.seeds - b.gain_influence.seeds
    stacked = np.concatenate([ua, -ub, seeds], axis=0)
    return stacked if weights is None else stacked @ weights


def compare_sets(
    sets: Sequence[ProbeOutcomes],
    relative_depth: Any,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    method: Literal["bca", "percentile"] = "bca",
    alpha: float = 0.05,
    deep_min_relative_depth: float = 0.75,
    n_resamples: int = 9999,
    stratify: bool = True,
    seed: SeedLike = None,
) -> SetComparison:
    r"""Compare the gain of several image sets per layer.

    Parameters
    ----------
    sets : sequence of ProbeOutcomes
        At least 2 image sets with the same layers and random seeds.
    relative_depth : array-like of shape (n_layers,)
        Relative depth of each layer in [0, 1].
    n_boot, confidence, method, stratify
        As in :func:`~layergain.stats.bootstrap.bootstrap_gain`.
    alpha : float, default=0.05
        Level of "significant" (Holm-adjusted).
    deep_min_relative_depth : float, default=0.75
        Layers with at least this relative depth are the "deepest layers".
    n_resamples : int, default=9999
        Sign vectors of each set's permutation test; permutations of the Spearman tests.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    SetComparison

    Notes
    -----
    One joint bootstrap draws the seed counts once per draw for all sets (the random networks are
    shared) and the images of each set independently; the difference of gain between sets i and j
    has draws :math:`g^*_{i,b} - g^*_{j,b}`, its interval by the chosen method, and a two-sided
    p-value by inverting that interval (:func:`~layergain.stats.bootstrap.bootstrap_pvalue`).
    Holm runs over all pairs and layers (the family of "gain differs" claims). Slopes on depth
    (see :func:`~layergain.stats.trend.depth_trend`) and their pairwise differences use the same
    draws, so "how the depth profiles differ" has intervals too.

    A set keeps a significant gain at the deepest layers if, at every layer with relative depth
    at least ``deep_min_relative_depth``, its gain is positive and its two-sided sign-flip p-value,
    Holm-adjusted across the layers of that set, is at most ``alpha``.

    The GLM interaction test (:func:`interaction_test`) asks the question on the log-odds
    scale; see there for the repeated-measures treatment.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
    Journal of Statistics*, 6(2), 65-70.

    Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
    """
    n_boot, confidence, method = _check_settings(n_boot, confidence, method)
    alpha = check_probability(alpha, "alpha")
    deep_min = check_probability(deep_min_relative_depth, "deep_min_relative_depth", open_interval=False)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    checked = _check_sets(sets)
    n_layers = checked[0].outcomes.n_layers
    depth = check_vector(relative_depth, "relative_depth", n_layers, "relative depth per layer")
    deep = np.flatnonzero(depth >= deep_min)
    if deep.size == 0:
        raise InputValueError(
            f"No layer has relative depth >= deep_min_relative_depth = {deep_min} (max is "
            f"{depth.max()}); lower `deep_min_relative_depth`."
        )
    boot_rng, flip_rng, trend_rng = spawn_generators(seed, 3)
    prepared = [_prepare(s.outcomes, s.labels, s.groups, bool(stratify)) for s in checked]
    boots = _bootstrap_prepared(prepared, n_boot=n_boot, confidence=confidence, method=method, seed=boot_rng)

    gain = np.stack([b.gain for b in boots])
    p_gain = np.stack(
        [
            sign_flip_pvalues(
                group_sums(s.outcomes.scaled_differences(), s.groups), "two-sided", n_resamples, flip_rng
            )[0]
            for s in checked
        ]
    )
    p_gain_holm = adjust_pvalues(p_gain, "holm", axis=-1)
    significant = (p_gain_holm <= alpha) & (gain > 0)

    trends = []
    if n_layers >= 3:
        trends = [depth_trend(b, depth, n_resamples=n_resamples, seed=trend_rng) for b in boots]
    pairs = np.array(list(itertools.combinations(range(len(checked)), 2)))
    diff, diff_ci, diff_p = [], [], []
    sdiff, sdiff_ci, sdiff_p = [], [], []
    for i, j in pairs:
        a, b = boots[i], boots[j]
        draws, est, infl = a.gain_draws - b.gain_draws, a.gain - b.gain, _pair_influence(a, b)
        diff.append(est)
        diff_ci.append(bootstrap_interval(draws, est, confidence=confidence, method=method, influence=infl))
        diff_p.append(bootstrap_pvalue(draws, est, method=method, influence=infl))
        if trends:
            ta, tb = trends[i], trends[j]
            s_draws, s_est = ta.slope_draws - tb.slope_draws, ta.slope - tb.slope
            w = slope_weights(depth)
            s_infl = _pair_influence(a, b, w)
            sdiff.append(s_est)
            sdiff_ci.append(
                bootstrap_interval(s_draws, s_est, confidence=confidence, method=method, influence=s_infl)
            )
            sdiff_p.append(bootstrap_pvalue(s_draws, s_est, method=method, influence=s_infl))
    nan_pairs = np.full(len(pairs), np.nan)
    return SetComparison(
        names=tuple(s.name for s in checked),
        pairs=pairs,
        gain=gain,
        gain_ci=np.stack([b.gain_ci for b in boots]),
        gain_pvalue=p_gain,
        gain_pvalue_holm=p_gain_holm,
        difference=np.stack(diff),
        difference_ci=np.stack(diff_ci),
        difference_pvalue=np.stack(diff_p),
        difference_pvalue_holm=adjust_pvalues(np.stack(diff_p), "holm", axis=None),
        interaction=_interaction(checked),
        deep_layers=deep,
        significant=significant,
        keeps_gain=significant[:, deep].all(axis=1),
        slope=np.array([t.slope for t in trends]) if trends else np.full(len(checked), np.nan),
        slope_ci=np.stack([t.slope_ci for t in trends]) if trends else np.full((len(checked), 2), np.nan),
        slope_difference=np.array(sdiff) if trends else nan_pairs,
        slope_difference_ci=np.stack(sdiff_ci) if trends else np.full((len(pairs), 2), np.nan),
        slope_difference_pvalue_holm=adjust_pvalues(np.array(sdiff_p), "holm") if trends else nan_pairs,
        bootstraps=tuple(boots),
        method=method,
        n_boot=n_boot,
        confidence=confidence,
        alpha=alpha,
    )
