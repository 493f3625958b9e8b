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
  keep a significant gain at the deepest layers, and the depth slopes and their differences;
- :func:`pooled_tau`: do the transferability estimators rank the layers like the probe and the
  gain across the sets? Kendall's tau stratified by set (:func:`stratified_tau`), with a bootstrap
  that resamples within each set as its run's tau table does.
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
from layergain.stats._random import SeedLike, as_generator, spawn_generators
from layergain.stats.multiple import adjust_pvalues
from layergain.validation import check_int, check_probability

__all__ = [
    "InteractionTest",
    "PooledTau",
    "ProbeOutcomes",
    "SetComparison",
    "TauInputs",
    "compare_sets",
    "interaction_test",
    "pooled_tau",
    "stratified_tau",
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


# --------------------------------------------------------------------------- transferability across sets


@dataclass(frozen=True)
class TauInputs:
    """What one image set's run gave its tau table (:func:`layergain.transferability.tau_table`).

    ``estimates``: (n_estimators, n_inits, n_layers), NaN where an estimator has no value;
    ``accuracy``: (n_inits, n_layers), the probe accuracy; ``gain``: (n_layers,), the run's gain;
    ``correct``: (n_inits, n_layers, n_images), per-image out-of-fold correctness (mean over CV
    repeats). The pretrained network first, then the random inits in the same order in every set.
    """

    estimates: Any
    accuracy: Any
    gain: Any
    correct: Any
    name: str | None = None


@dataclass(frozen=True)
class PooledTau:
    """Kendall's tau of every estimator pooled over the sets, shape (n_estimators,) unless said.

    ``tau_accuracy`` and ``tau_gain``: stratified tau-b (:func:`stratified_tau`);
    ``tau_accuracy_ci`` and ``tau_gain_ci`` (n_estimators, 2): percentile bootstrap intervals;
    ``n_sets``: the sets that enter (3 or more layers with finite values); ``failure``: "" or
    why an estimator has no pooled tau; ``left_out``: per estimator, the sets left out and why.
    """

    tau_accuracy: np.ndarray
    tau_accuracy_ci: np.ndarray
    tau_gain: np.ndarray
    tau_gain_ci: np.ndarray
    n_sets: np.ndarray
    failure: tuple[str, ...]
    left_out: tuple[dict[str, str], ...]
    n_boot: int
    confidence: float

    def attrs(self) -> dict[str, str | int | float]:
        """How the pooled taus were made, as netCDF-safe attributes."""
        return {
            "method": "stratified Kendall's tau-b across layers: concordant minus discordant layer pairs "
                      "summed within image sets (pairs of layers of different sets are never compared), over "
                      "the root of the summed untied pairs of each side; percentile bootstrap",
            "resampled": "random inits (one draw for every set: the same networks) and each set's images "
                         "independently, as each run's tau table; sets and layers are not resampled",
            "conditional_on": "the estimators' full-sample values, the pretrained network and these sets",
            "n_boot": self.n_boot,
            "confidence": self.confidence,
        }


def stratified_tau(x: Sequence[Any], y: Sequence[Any]) -> float:
    r"""Kendall's tau-b pooled over strata: pairs are formed within each stratum only.

    Parameters
    ----------
    x, y : sequence of array-like of shape (n_k,)
        One pair of vectors per stratum (image set); NaN entries are not allowed.

    Returns
    -------
    float
        .. math::

            \tau_\mathrm{strat} = \frac{\sum_k (C_k - D_k)}
            {\sqrt{\sum_k (P_k - X_k)\,\sum_k (P_k - Y_k)}}

        with :math:`C_k, D_k` the concordant and discordant pairs of stratum :math:`k`,
        :math:`P_k = n_k (n_k - 1) / 2` its pairs and :math:`X_k, Y_k` the pairs tied in
        :math:`x` or :math:`y`. A stratum in which :math:`x` or :math:`y` is constant has no
        tau-b of its own and is left out; NaN when no stratum is left. With one stratum it is
        Kendall's tau-b, without ties the pair-weighted mean of the strata's taus.

    References
    ----------
    Kendall, M. G. (1945). The treatment of ties in ranking problems. *Biometrika*, 33(3), 239-251.
    """
    if len(x) != len(y):
        raise InputValueError(f"`x` and `y` must hold as many strata, got {len(x)} and {len(y)}.")
    score = untied_x = untied_y = 0.0
    for k, (a, b) in enumerate(zip(x, y)):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.shape != b.shape or a.ndim != 1:
            raise InputValueError(f"stratum {k}: `x` and `y` must be vectors of one length, got shapes "
                                  f"{a.shape} and {b.shape}.")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise InputValueError(f"stratum {k} holds NaN or infinite values; drop those entries first.")
        s, ux, uy = _pair_counts(a, b)
        if ux > 0 and uy > 0:
            score, untied_x, untied_y = score + s, untied_x + ux, untied_y + uy
    return float(score / np.sqrt(untied_x * untied_y)) if untied_x > 0 else np.nan


def _pair_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the last axis: concordant minus discordant pairs, untied pairs of ``a``, of ``b``."""
    i, j = np.triu_indices(a.shape[-1], 1)
    sa, sb = np.sign(a[..., j] - a[..., i]), np.sign(b[..., j] - b[..., i])
    return (sa * sb).sum(axis=-1), (sa != 0).sum(axis=-1), (sb != 0).sum(axis=-1)


def _check_tau_inputs(sets: Any) -> list[TauInputs]:
    if isinstance(sets, TauInputs) or not isinstance(sets, Sequence) or not sets:
        raise InputTypeError(f"`sets` must be a non-empty sequence of TauInputs (one per image set), got "
                             f"{type(sets).__name__}.")
    shapes = []
    for k, s in enumerate(sets):
        if not isinstance(s, TauInputs):
            raise InputTypeError(f"`sets[{k}]` must be a TauInputs, got {type(s).__name__}.")
        e, acc, g, corr = (np.asarray(v, dtype=float) for v in (s.estimates, s.accuracy, s.gain, s.correct))
        if e.ndim != 3 or acc.shape != e.shape[1:] or g.shape != e.shape[2:] or corr.shape[:2] != e.shape[1:]:
            raise InputValueError(
                f"`sets[{k}]`: estimates (n_estimators, n_inits, n_layers), accuracy (n_inits, n_layers), "
                f"gain (n_layers,) and correct (n_inits, n_layers, n_images) must agree, got {e.shape}, "
                f"{acc.shape}, {g.shape} and {corr.shape}."
            )
        shapes.append(e.shape[:2])
    if len(set(shapes)) > 1:
        raise InputValueError(f"Every set must have the same estimators and networks (pretrained first, the "
                              f"same random inits); got (n_estimators, n_inits) = {shapes}.")
    if shapes[0][1] < 2:
        raise NotEnoughDataError("The gain's tau needs a random init besides the pretrained network; got "
                                 "n_inits = 1.")
    return list(sets)


def pooled_tau(
    sets: Sequence[TauInputs],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: SeedLike = 0,
) -> PooledTau:
    r"""Do the estimators track the probe and the gain across image sets? Stratified Kendall's tau.

    Per estimator, the layers of each set are ranked as in that set's run
    (:func:`layergain.transferability.tau_table`): the estimator on the pretrained network against
    its probe accuracy (``tau_accuracy``), its pretrained-minus-mean-random difference against the
    gain (``tau_gain``); the concordant and discordant layer pairs of every set are summed
    (:func:`stratified_tau`), so a layer is only ever compared with a layer of its own set.

    Parameters
    ----------
    sets : sequence of TauInputs
        One per image set, the same estimators and networks in each.
    n_boot : int, default=2000
    confidence : float, default=0.95
    seed : int, numpy.random.Generator or None, default=0

    Returns
    -------
    PooledTau

    Notes
    -----
    Why not the mean of the sets' taus with an interval from resampling the sets: with four sets,
    a bootstrap over sets has 35 distinct resamples and its percentile interval is too narrow;
    the sets are not a sample of a population of sets either. Here the sets are strata
    and are held fixed: the question is whether the estimator ranks layers like the gain *in
    these sets*. The bootstrap resamples what each run's tau table resamples — the random inits
    and the images of the probe side — with one draw of the random inits for every set (the
    random network with seed s is the same network in every set, as in the joint comparison of
    the gains) and each set's images drawn independently, in the order of the tau table's draws:
    one set and its tau table's seed give its tau table's taus and intervals. The
    estimators are not recomputed per draw: the interval is conditional on their values on these
    images and on the pretrained network, and it is not calibrated by simulation. A set enters
    an estimator's pooled tau when it has 3 or more layers with finite values (``left_out`` says
    why one did not); a draw in which a set's values are constant leaves that set out of the
    draw, as its own tau would be NaN. The tau is NaN where no set enters.

    References
    ----------
    Kendall, M. G. (1945). The treatment of ties in ranking problems. *Biometrika*, 33(3), 239-251.

    Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
    """
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    confidence = check_probability(confidence, "confidence")
    checked = _check_tau_inputs(sets)
    names = [s.name if s.name is not None else f"set-{k}" for k, s in enumerate(checked)]
    n_est, n_inits = np.asarray(checked[0].estimates).shape[:2]
    rng = as_generator(seed)
    picks = rng.integers(0, n_inits - 1, size=(n_boot, n_inits - 1)) + 1  # as tau_table: inits, then images
    per_set = [_set_scores(s, picks, rng) for s in checked]
    alpha = (1 - confidence) / 2
    out = {k: np.full(n_est, np.nan) for k in ("tau_accuracy", "tau_gain")}
    ci = {k: np.full((n_est, 2), np.nan) for k in ("tau_accuracy_ci", "tau_gain_ci")}
    n_sets = np.zeros(n_est, dtype=int)
    failure, left_out = [], []
    for e in range(n_est):
        enter = [k for k, scores in enumerate(per_set) if scores[e] is not None]
        left_out.append({names[k]: _too_few(checked[k], e) for k in range(len(names)) if k not in enter})
        n_sets[e] = len(enter)
        failure.append("" if enter else "no set has 3 or more layers with finite values (Kendall's tau "
                       "needs 3)")
        if not enter:
            continue
        for what in ("accuracy", "gain"):
            point = [per_set[k][e][what] for k in enter]
            out[f"tau_{what}"][e] = _pooled(*(np.array([p[0][i] for p in point]) for i in range(3)))
            draws = _pooled(*(np.stack([p[1][i] for p in point]) for i in range(3)))
            if np.isfinite(draws).any():
                ci[f"tau_{what}_ci"][e] = np.nanquantile(draws, [alpha, 1 - alpha])
    return PooledTau(
        tau_accuracy=out["tau_accuracy"], tau_accuracy_ci=ci["tau_accuracy_ci"], tau_gain=out["tau_gain"],
        tau_gain_ci=ci["tau_gain_ci"], n_sets=n_sets, failure=tuple(failure), left_out=tuple(left_out),
        n_boot=n_boot, confidence=confidence,
    )


def _too_few(s: TauInputs, e: int) -> str:
    return f"{int(_finite_layers(s, e).sum())} layer(s) with finite values; Kendall's tau needs 3"


def _finite_layers(s: TauInputs, e: int) -> np.ndarray:
    est = np.asarray(s.estimates, dtype=float)[e]
    acc, g = np.asarray(s.accuracy, dtype=float), np.asarray(s.gain, dtype=float)
    return np.isfinite(est).all(axis=0) & np.isfinite(acc).all(axis=0) & np.isfinite(g)


def _set_scores(s: TauInputs, picks: np.ndarray, rng: np.random.Generator) -> list[dict | None]:
    """Per estimator, ``{"accuracy": (point, draws), "gain": ...}`` with each of point and draws the
    :func:`_pair_counts` of the set; None with fewer than 3 finite layers. The images are drawn
    here, after the inits (tau_table's order)."""
    est, acc = np.asarray(s.estimates, dtype=float), np.asarray(s.accuracy, dtype=float)
    g, corr = np.asarray(s.gain, dtype=float), np.asarray(s.correct, dtype=float)
    n_img = corr.shape[2]
    images = rng.integers(0, n_img, size=(picks.shape[0], n_img))
    acc_b = np.stack([corr[:, :, idx].mean(axis=2) for idx in images])  # (n_boot, n_inits, n_layers)
    rows = np.arange(picks.shape[0])[:, None]
    gain_b = g + (acc_b[:, 0] - acc_b[rows, picks].mean(axis=1)) - (acc[0] - acc[1:].mean(axis=0))
    out: list[dict | None] = []
    for e in range(est.shape[0]):
        ok = _finite_layers(s, e)
        if ok.sum() < 3:
            out.append(None)
            continue
        x = est[e][:, ok]
        pre_b = np.broadcast_to(x[0], acc_b[:, 0, ok].shape)  # the estimator is not resampled
        diff, diff_b = x[0] - x[1:].mean(axis=0), x[0] - x[picks].mean(axis=1)
        out.append({
            "accuracy": (_pair_counts(x[0], acc[0, ok]), _pair_counts(pre_b, acc_b[:, 0, ok])),
            "gain": (_pair_counts(diff, g[ok]), _pair_counts(diff_b, gain_b[:, ok])),
        })
    return out


def _pooled(score: np.ndarray, untied_a: np.ndarray, untied_b: np.ndarray) -> np.ndarray:
    """Stratified tau-b from per-set counts along the first axis (a set without a tau-b left out)."""
    enter = (untied_a > 0) & (untied_b > 0)
    num = np.where(enter, score, 0).sum(axis=0)
    den = np.sqrt(np.where(enter, untied_a, 0).sum(axis=0) * np.where(enter, untied_b, 0).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
