r"""Across image sets: does the gain differ between sets, per layer, and which sets keep it deep?

Image sets differ in images and share the backbone, its probe layers and the random seeds (the
random network with seed s is the same network for every set). Every number here comes from one
crossed design of all sets (:mod:`layergain.stats.components`): the images (or groups) of each
set are independent samples, the random seeds — and under the default target the pretrained
network's own spread — are shared, so a difference of gain between two sets carries the seeds'
spread of that difference, not of each gain.

- :func:`interaction_test`: per layer, a Wald test that the gain is the same in every set, with
  the variance components' small-sample reference (a generalised pivotal quantity: the chi-squares
  of each set's units and of the seeds at their own degrees of freedom);
- :func:`compare_sets`: the whole comparison: per-set gains (max-T over the layers of each set),
  pairwise differences of gain (max-T over all pairs and layers, Holm secondary), the sets that
  keep a significant gain at the deepest layers, and the depth slopes and their differences.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats import components as C
from layergain.stats._inputs import Outcomes, check_groups, check_labels, check_outcomes, check_vector
from layergain.stats._random import SeedLike, spawn_generators
from layergain.stats.multiple import adjust_pvalues
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


# --------------------------------------------------------------------------- interaction


@dataclass(frozen=True)
class InteractionTest:
    """Tests that the gain is the same in every set, per layer; arrays of shape (n_layers,).

    ``statistic``: Wald statistic of the K - 1 differences of gain from the first set;
    ``pvalue``: its p-value from the small-sample reference (primary); ``pvalue_maxt``: minP
    step-down over layers; ``pvalue_holm``: Holm over layers (secondary); ``df`` = K - 1;
    ``failure``: "" or why a layer has no calibrated test (its statistics are then NaN).
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    pvalue_maxt: np.ndarray
    pvalue_holm: np.ndarray
    df: int
    failure: np.ndarray


def _model(sets: list[_Set]) -> C.CrossedDesign:
    return C.design([(s.outcomes, s.labels, s.groups) for s in sets])


def _gain_coefficients(n_sets: int, n_layers: int, cells: list[list[tuple[int, int, float]]]) -> np.ndarray:
    """alpha of contrasts given as lists of (set, layer, weight) of gains (beta = -alpha)."""
    alpha = np.zeros((len(cells), n_sets, n_layers))
    for k, terms in enumerate(cells):
        for j, l, w in terms:
            alpha[k, j, l] += w
    return alpha


def _interaction(
    model: C.CrossedDesign, n_draws: int, rng: np.random.Generator, spread: bool
) -> InteractionTest:
    n_sets, n_layers = model.acc_pre.shape
    q = n_sets - 1
    cells = [[(j, l, 1.0), (0, l, -1.0)] for l in range(n_layers) for j in range(1, n_sets)]
    alpha = _gain_coefficients(n_sets, n_layers, cells)
    contrasts = C.evaluate(model, alpha, -alpha, pretrained_spread=spread)
    ok = contrasts.ok
    statistic = np.full(n_layers, np.nan)
    pvalue = np.full(n_layers, np.nan)
    failure = np.full(n_layers, "", dtype=object)
    null = np.full((n_draws, n_layers), np.nan)
    draws = C.pivot_draws(contrasts, n_draws, rng) if ok.size else np.zeros((n_draws, 0))
    cov = C.covariance(contrasts)
    position = {int(c): i for i, c in enumerate(ok)}
    for l in range(n_layers):
        idx = np.arange(l * q, (l + 1) * q)
        if contrasts.reason[idx[0]]:
            failure[l] = str(contrasts.reason[idx[0]])
            continue
        inv = np.linalg.pinv(cov[np.ix_(idx, idx)])
        d = contrasts.estimate[idx]
        statistic[l] = float(d @ inv @ d)
        dd = draws[:, [position[int(i)] for i in idx]]
        null[:, l] = np.einsum("bi,ij,bj->b", dd, inv, dd)
        pvalue[l] = max(np.mean(null[:, l] >= statistic[l]), 1.0 / n_draws)
    fine = np.flatnonzero(failure == "")
    maxt = np.full(n_layers, np.nan)
    if fine.size:
        maxt[fine] = C.step_down(null[:, fine], pvalue[fine])[0]
    return InteractionTest(
        statistic=statistic,
        pvalue=pvalue,
        pvalue_maxt=maxt,
        pvalue_holm=adjust_pvalues(pvalue, "holm"),
        df=q,
        failure=failure.astype(str),
    )


def interaction_test(
    sets: Sequence[ProbeOutcomes], *, n_draws: int = 20000, pretrained: str = "draw", seed: SeedLike = None
) -> InteractionTest:
    r"""Is the gain the same in every image set? A Wald test per layer.

    Parameters
    ----------
    sets : sequence of ProbeOutcomes
        At least 2 image sets with the same layers and seeds.
    n_draws : int, default=20000
        Draws of the reference distribution.
    pretrained : {"draw", "fixed"}, default="draw"
        Target, as in :func:`~layergain.stats.study.gain_statistics`.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    InteractionTest

    Notes
    -----
    At layer l, with :math:`d = (\hat g_{2l} - \hat g_{1l}, \dots, \hat g_{Kl} - \hat g_{1l})` and
    :math:`\hat\Sigma` its covariance from the variance components (each set's images or groups,
    the shared seeds), :math:`W = d^\top \hat\Sigma^{-1} d`. Its reference is not
    :math:`\chi^2_{K-1}` (which assumes :math:`\hat\Sigma` known, and is liberal with 10 clusters
    per set) but the distribution of :math:`D^\top \hat\Sigma^{-1} D` over the generalised
    pivotal draws D of :func:`~layergain.stats.components.pivot_draws`, in which every variance
    part carries the chi-square of its own degrees of freedom (G - 1 for groups, S - 1
    for seeds) — the small-sample analogue of Hotelling's :math:`T^2`. With two sets it is the
    two-sided test of their pairwise difference. The question is asked on the accuracy scale,
    where the gain is defined; the former logistic-model interaction (log-odds scale, cluster-
    robust Wald with a :math:`\chi^2` reference) was liberal with few clusters.

    References
    ----------
    Weerahandi, S. (1993). Generalized confidence intervals. *Journal of the American
    Statistical Association*, 88(423), 899-905.

    Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
    regression with multi-stage samples. *Survey Methodology*, 28(2), 169-181.
    """
    n_draws = check_int(n_draws, "n_draws", minimum=1000)
    checked = _check_sets(sets)
    return _interaction(_model(checked), n_draws, spawn_generators(seed, 1)[0], pretrained == "draw")


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class SetComparison:
    """Comparison of K image sets over L layers; P = K (K - 1) / 2 pairs.

    Per set: ``gain`` (K, L), ``gain_ci`` (K, L, 2), ``gain_pvalue``, ``gain_pvalue_maxt``
    (minP step-down over the layers of each set, primary) and ``gain_pvalue_holm``
    (secondary), ``slope`` (K,) and ``slope_ci`` (K, 2). Per pair (``pairs`` (P, 2) holds set
    indices i < j; differences are set i minus set j): ``difference`` (P, L),
    ``difference_ci`` (P, L, 2), ``difference_pvalue`` (P, L), ``difference_pvalue_maxt``
    (over all pairs and layers, primary), ``difference_pvalue_holm`` (secondary), and the same
    for the slope (P,). ``deep_layers``: indices of the layers counted as deepest;
    ``significant`` (K, L): positive gain with max-T p <= alpha; ``keeps_gain`` (K,): significant
    at every deep layer. ``units`` (K,) and ``unit_kind`` (K,) name each set's resampling unit.
    """

    names: tuple[str, ...]
    pairs: np.ndarray
    gain: np.ndarray
    gain_ci: np.ndarray
    gain_pvalue: np.ndarray
    gain_pvalue_maxt: np.ndarray
    gain_pvalue_holm: np.ndarray
    difference: np.ndarray
    difference_ci: np.ndarray
    difference_pvalue: np.ndarray
    difference_pvalue_maxt: np.ndarray
    difference_pvalue_holm: np.ndarray
    interaction: InteractionTest
    deep_layers: np.ndarray
    significant: np.ndarray
    keeps_gain: np.ndarray
    slope: np.ndarray
    slope_ci: np.ndarray
    slope_difference: np.ndarray
    slope_difference_ci: np.ndarray
    slope_difference_pvalue: np.ndarray
    slope_difference_pvalue_holm: np.ndarray
    units: tuple[int, ...]
    unit_kind: tuple[str, ...]
    n_draws: int
    confidence: float
    alpha: float
    target: str

    def attrs(self) -> dict[str, str | int | float]:
        """Settings as netCDF-safe attributes."""
        return {
            "datasets": ",".join(self.names),
            "interval": "variance components (each set's images or groups; random seeds shared), "
            "generalised pivotal quantity",
            "statistics_target": self.target,
            "n_draws": self.n_draws,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "gain_correction": "minP step-down over the layers of each set (primary); holm secondary",
            "difference_correction": "minP step-down over all pairs and layers (primary); holm secondary",
            "interaction_test": "Wald test of equal gains, generalised pivotal reference (primary); "
            "minP step-down over layers",
        }


def _contrast_inference(model, alpha, spread, n_draws, confidence, rng):
    """Inference on contrasts of gains (beta = -alpha)."""
    return C.contrast_inference(
        model, alpha, -alpha, pretrained_spread=spread, n_draws=n_draws, confidence=confidence, rng=rng
    )


def _family_maxt(contrasts, draws, p, members: np.ndarray) -> np.ndarray:
    """minP step-down within ``members`` (indices of contrasts); NaN outside and where n/a."""
    out = np.full(p.shape, np.nan)
    ok = contrasts.ok
    position = {int(c): i for i, c in enumerate(ok)}
    keep = np.array([m for m in members if int(m) in position], dtype=int)
    if keep.size:
        cols = [position[int(m)] for m in keep]
        out[keep] = C.step_down(np.abs(draws[:, cols]), p[keep])[0]
    return out


def compare_sets(
    sets: Sequence[ProbeOutcomes],
    relative_depth: Any,
    *,
    n_draws: int = 20000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    deep_min_relative_depth: float = 0.75,
    pretrained: str = "draw",
    seed: SeedLike = None,
) -> SetComparison:
    r"""Compare the gain of several image sets per layer.

    Parameters
    ----------
    sets : sequence of ProbeOutcomes
        At least 2 image sets with the same layers and random seeds.
    relative_depth : array-like of shape (n_layers,)
        Relative depth of each layer in [0, 1].
    n_draws : int, default=20000
        Draws of the reference distributions.
    confidence : float, default=0.95
    alpha : float, default=0.05
        Level of "significant" (max-T adjusted).
    deep_min_relative_depth : float, default=0.75
        Layers with at least this relative depth are the "deepest layers".
    pretrained : {"draw", "fixed"}, default="draw"
        Target, as in :func:`~layergain.stats.study.gain_statistics`.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    SetComparison

    Notes
    -----
    One crossed design holds every set: gains, their differences between sets and the depth
    slopes (OLS slope of the gains on relative depth) are contrasts of it, each with its variance
    components and the generalised pivotal reference of
    :func:`~layergain.stats.components.pivot_draws`. A set's images are independent of another
    set's; the seeds are shared, so the network part of a difference is the spread, over seeds,
    of that difference. A set keeps a significant gain at the deepest layers if, at every layer
    with relative depth at least ``deep_min_relative_depth``, its gain is positive with max-T
    p-value (over the layers of that set) at most ``alpha``.
    """
    n_draws = check_int(n_draws, "n_draws", minimum=1000)
    confidence = check_probability(confidence, "confidence")
    alpha = check_probability(alpha, "alpha")
    deep_min = check_probability(deep_min_relative_depth, "deep_min_relative_depth", open_interval=False)
    checked = _check_sets(sets)
    n_sets, n_layers = len(checked), checked[0].outcomes.n_layers
    depth = check_vector(relative_depth, "relative_depth", n_layers, "relative depth per layer")
    deep = np.flatnonzero(depth >= deep_min)
    if deep.size == 0:
        raise InputValueError(
            f"No layer has relative depth >= deep_min_relative_depth = {deep_min} (max is "
            f"{depth.max()}); lower `deep_min_relative_depth`."
        )
    spread = pretrained == "draw"
    rngs = spawn_generators(seed, 5)
    model = _model(checked)

    cells = [[(j, l, 1.0)] for j in range(n_sets) for l in range(n_layers)]
    gc, gd, gp, gci = _contrast_inference(model, _gain_coefficients(n_sets, n_layers, cells), spread, n_draws,
                                          confidence, rngs[0])
    gain_maxt = np.full(n_sets * n_layers, np.nan)
    for j in range(n_sets):
        members = np.arange(j * n_layers, (j + 1) * n_layers)
        gain_maxt[members] = _family_maxt(gc, gd, gp, members)[members]
    shape = (n_sets, n_layers)
    gain = gc.estimate.reshape(shape)
    gain_maxt = gain_maxt.reshape(shape)
    significant = (gain_maxt <= alpha) & (gain > 0)

    pairs = np.array(list(itertools.combinations(range(n_sets), 2)))
    cells = [[(i, l, 1.0), (j, l, -1.0)] for i, j in pairs for l in range(n_layers)]
    dc, dd, dp, dci = _contrast_inference(model, _gain_coefficients(n_sets, n_layers, cells), spread, n_draws,
                                          confidence, rngs[1])
    pshape = (len(pairs), n_layers)

    slope_c = slope_ci = sdiff = sdiff_ci = sdiff_p = None
    if n_layers >= 3 and np.ptp(depth) > 0:
        centred = depth - depth.mean()
        w = centred / np.sum(centred**2)
        cells = [[(j, l, w[l]) for l in range(n_layers)] for j in range(n_sets)]
        sc, _, _, slope_ci = _contrast_inference(model, _gain_coefficients(n_sets, n_layers, cells), spread,
                                                 n_draws, confidence, rngs[2])
        slope_c = sc.estimate
        cells = [[(i, l, w[l]) for l in range(n_layers)] + [(j, l, -w[l]) for l in range(n_layers)] for i, j in pairs]
        sdc, _, sdiff_p, sdiff_ci = _contrast_inference(model, _gain_coefficients(n_sets, n_layers, cells), spread,
                                                        n_draws, confidence, rngs[3])
        sdiff = sdc.estimate
    nan_k, nan_p = np.full(n_sets, np.nan), np.full(len(pairs), np.nan)
    return SetComparison(
        names=tuple(s.name for s in checked),
        pairs=pairs,
        gain=gain,
        gain_ci=gci.reshape(shape + (2,)),
        gain_pvalue=gp.reshape(shape),
        gain_pvalue_maxt=gain_maxt,
        gain_pvalue_holm=adjust_pvalues(gp.reshape(shape), "holm", axis=-1),
        difference=dc.estimate.reshape(pshape),
        difference_ci=dci.reshape(pshape + (2,)),
        difference_pvalue=dp.reshape(pshape),
        difference_pvalue_maxt=_family_maxt(dc, dd, dp, np.arange(dp.size)).reshape(pshape),
        difference_pvalue_holm=adjust_pvalues(dp.reshape(pshape), "holm", axis=None),
        interaction=_interaction(model, n_draws, rngs[4], spread),
        deep_layers=deep,
        significant=significant,
        keeps_gain=significant[:, deep].all(axis=1),
        slope=nan_k if slope_c is None else slope_c,
        slope_ci=np.full((n_sets, 2), np.nan) if slope_ci is None else slope_ci,
        slope_difference=nan_p if sdiff is None else sdiff,
        slope_difference_ci=np.full((len(pairs), 2), np.nan) if sdiff_ci is None else sdiff_ci,
        slope_difference_pvalue=nan_p if sdiff_p is None else sdiff_p,
        slope_difference_pvalue_holm=nan_p if sdiff_p is None else adjust_pvalues(sdiff_p, "holm"),
        units=tuple(s.n_units for s in model.samples),
        unit_kind=tuple(s.kind for s in model.samples),
        n_draws=n_draws,
        confidence=confidence,
        alpha=alpha,
        target=pretrained,
    )
