r"""The statistics of one run, from correctness arrays: what a run stores in results.nc.

:func:`gain_statistics` is the one entry point the pipeline calls; a user with out-of-fold
correctness arrays (from layergain or from elsewhere) gets exactly the statistics variables of a
run. Every interval and test is about two populations at once — the images of the set (or its
groups: patients, slides) and the random initialisations of the architecture — through the
variance components of :mod:`layergain.stats.components`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr
from scipy import stats as sps

from layergain import schema as S
from layergain.errors import InputValueError
from layergain.stats import components as C
from layergain.stats._inputs import check_folds, check_groups, check_labels, check_outcomes, check_vector
from layergain.stats._random import SeedLike, spawn_generators
from layergain.stats.effect import gain_effect_sizes
from layergain.stats.multiple import adjust_pvalues
from layergain.stats.sweetspot import SweetSpot, sweet_spot_of
from layergain.stats.tests import corrected_resampled_ttest, mcnemar_tests
from layergain.validation import check_choice, check_int, check_probability

__all__ = ["PretrainedTarget", "gain_statistics"]

PretrainedTarget = Literal["draw", "fixed"]

_TARGETS = {
    "draw": (
        "gain of pretraining over the distribution of random initialisations; the pretrained network "
        "counted as one draw with the random twins' network-to-network spread"
    ),
    "fixed": "gain of this pretrained network over the distribution of random initialisations",
}


def _unit_eye(n_layers: int) -> np.ndarray:
    """Coefficients (k = n_layers, 1 set, n_layers) selecting each layer."""
    return np.eye(n_layers)[:, None, :]


def _inference(model, alpha, beta, spread, n_draws, confidence, rng, joint=False):
    contrasts, draws, p, ci = C.contrast_inference(
        model, alpha, beta, pretrained_spread=spread, n_draws=n_draws, confidence=confidence, rng=rng
    )
    out = {"c": contrasts, "p": p, "ci": ci}
    if joint:
        out["p_maxt"], out["band"] = C.joint(contrasts, draws, p, confidence=confidence)
    return out


def _reasons(contrasts: C.Contrasts, names: list[str]) -> dict[str, str]:
    return {name: str(r) for name, r in zip(names, contrasts.reason) if r}


def _trend(model, depth, spread, n_draws, confidence, rng) -> dict[str, Any]:
    centred = depth - depth.mean()
    w = centred / np.sum(centred**2)
    alpha = w[None, None, :]
    res = _inference(model, alpha, -alpha, spread, n_draws, confidence, rng)
    gain = model.acc_pre[0] - model.acc_rand.mean(axis=0)[0]
    rho = float(sps.spearmanr(depth, gain).statistic) if np.ptp(gain) > 0 else np.nan
    return {"slope": float(res["c"].estimate[0]), "ci": res["ci"][0], "p": float(res["p"][0]),
            "df": float(res["c"].df[0]), "reason": str(res["c"].reason[0]), "rho": rho}


def gain_statistics(
    correct_pre: Any,
    correct_rand: Any,
    labels: Any,
    groups: Any | None = None,
    folds: Any | None = None,
    *,
    layers: Any | None = None,
    relative_depth: Any | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    margin: float = 0.02,
    n_draws: int = 20000,
    pretrained: PretrainedTarget = "draw",
    seed: SeedLike = None,
) -> xr.Dataset:
    r"""Knowledge gain per layer with calibrated intervals and tests: the statistics of a run.

    Parameters
    ----------
    correct_pre : array-like of bool of shape (n_layers, n_repeats, n_images)
        Whether the pretrained network's out-of-fold prediction is correct (a 2-D array is one
        layer).
    correct_rand : array-like of bool of shape (n_layers, n_seeds, n_repeats, n_images)
        The same for each random seed (at least 2 seeds for calibrated inference).
    labels : array-like of shape (n_images,)
        Class labels (strata of the images when there are no groups).
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids: the units of the image population where given.
    folds : array-like of int of shape (n_repeats, n_images), default=None
        CV folds; adds the Nadeau–Bengio corrected t-test (a secondary test).
    layers : sequence of str, default=None
        Layer names, shallow to deep (default "0", "1", ...).
    relative_depth : array-like of shape (n_layers,), default=None
        Relative depth in [0, 1] of each layer, for the depth trend (default: evenly spaced).
    confidence : float, default=0.95
        Level of every interval (pointwise, simultaneous band, sweet spot).
    alpha : float, default=0.05
        Level of "significant" in the stored flags.
    margin : float, default=0.02
        Non-inferiority margin of the sweet spot, in accuracy (0.02 = 2 percentage points).
    n_draws : int, default=20000
        Monte Carlo draws of the reference distributions (p-values resolve down to 1/n_draws).
    pretrained : {"draw", "fixed"}, default="draw"
        The inferential target. ``"draw"``: the gain of pretraining over the distribution of
        random initialisations, with the pretrained network counted as one draw whose
        network-to-network spread is that of its random twins (under "pretraining gives
        nothing" the pretrained network is one more random draw, so the test keeps its level
        there). ``"fixed"``: the gain of this pretrained network, conditional on it.
    seed : int, numpy.random.Generator or None, default=None

    Returns
    -------
    xarray.Dataset
        Dims ``layer`` and ``bound``. Per layer: ``accuracy_pretrained``,
        ``accuracy_pretrained_ci``, ``accuracy_random_mean``, ``accuracy_random_mean_ci``,
        ``gain``, ``gain_ci`` (pointwise), ``gain_band`` (simultaneous over layers), ``gain_se``,
        ``gain_df``, ``gain_var_images``, ``gain_var_seeds``, ``gain_p`` (primary, unadjusted),
        ``gain_p_maxt`` (primary family-wise adjustment, minP step-down over the layers),
        ``gain_p_holm``, ``gain_p_bh``, ``relative_gain`` and ``relative_gain_ci``, the
        secondary tests (``mcnemar_p`` per seed, unadjusted; ``gain_ttest_p`` with folds),
        effect sizes, ``sweet_spot_lower`` (each layer's simultaneous lower bound against its
        strongest rival); scalars ``gain_trend_slope`` (with ``_ci``, ``_p``),
        ``gain_trend_spearman_rho`` (descriptive), ``sweet_spot`` ("" where undetermined) and
        ``best_layer``. A quantity that cannot be calibrated is NaN, with ``nan_reason`` in its
        attrs (a dict, ``{layer: reason}`` or ``{"all layers": reason}``). Attrs hold Python
        values (dicts among them), which netCDF cannot store as they are: write the Dataset with
        :func:`layergain.results.io.save_results` (it encodes them as JSON text, and
        :func:`~layergain.results.io.decode_attr` reads them back), not ``ds.to_netcdf``.

    Notes
    -----
    Estimates: :math:`\hat g_l = A_{pre,l} - \frac1S\sum_s A_{s,l}`. Variance: the spread
    between images (or groups; CR2 leverage-corrected, stratified by class for images) plus
    the spread between networks (from the S random seeds, less its network-by-image share,
    which the image part already counts; counted :math:`1 + 1/S` times for ``"draw"``,
    :math:`1/S` for ``"fixed"``). Reference distribution: a generalised pivotal quantity with
    the chi-square of each part at its own degrees of freedom (G - 1 for groups,
    S - 1 for seeds) — Student's t when one part dominates, heavier-tailed with 2 seeds. The
    pointwise interval and ``gain_p`` read the same draws, so 0 lies outside ``gain_ci``
    exactly when ``gain_p < 1 - confidence``. ``gain_p_maxt`` and ``gain_band`` use the
    joint draws of all layers (the same images and networks feed every layer), which keeps
    the family-wise error with far less loss than Holm over correlated layers (Westfall &
    Young 1993). The depth slope is the OLS slope of the gains on relative depth, a contrast
    of the same model. See :mod:`layergain.stats.components`.

    References
    ----------
    Westfall, P. H. and Young, S. S. (1993). *Resampling-Based Multiple Testing*. Wiley.

    Weerahandi, S. (1993). Generalized confidence intervals. *Journal of the American
    Statistical Association*, 88(423), 899-905.

    Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
    regression with multi-stage samples. *Survey Methodology*, 28(2), 169-181.
    """
    confidence = check_probability(confidence, "confidence")
    alpha_level = check_probability(alpha, "alpha")
    pretrained = check_choice(pretrained, "pretrained", tuple(_TARGETS))
    n_draws = check_int(n_draws, "n_draws", minimum=1000)
    margin = float(margin)
    if not 0 < margin < 1:
        raise InputValueError(
            f"`margin` must lie in (0, 1) (an accuracy difference, e.g. 0.02 for 2 points), got {margin!r}."
        )
    outcomes = check_outcomes(correct_pre, correct_rand)
    n_layers = outcomes.n_layers
    label_codes = check_labels(labels, outcomes.n_images)
    group_codes = check_groups(groups, outcomes.n_images)
    names = [str(i) for i in range(n_layers)] if layers is None else [str(x) for x in layers]
    if len(names) != n_layers:
        raise InputValueError(f"`layers` must name the {n_layers} layers, got {len(names)} names.")
    depth = (
        np.linspace(0.0, 1.0, n_layers)
        if relative_depth is None
        else check_vector(relative_depth, "relative_depth", n_layers, "relative depth per layer")
    )
    spread = pretrained == "draw"
    rngs = spawn_generators(seed, 6)
    model = C.design([(outcomes, label_codes, group_codes)])
    eye = _unit_eye(n_layers)
    zero = np.zeros_like(eye)

    gain = _inference(model, eye, -eye, spread, n_draws, confidence, rngs[0], joint=True)
    acc_pre = _inference(model, eye, zero, False, n_draws, confidence, rngs[1])
    acc_rand = _inference(model, zero, eye, False, n_draws, confidence, rngs[2])
    mean_rand = model.acc_rand.mean(axis=0)[0]
    g = gain["c"].estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        err = 1.0 - mean_rand
        a_rel = np.where(err > 0, 1.0 / err, 0.0)
        b_rel = np.where(err > 0, -1.0 / err + g / err**2, 0.0)
    rel = _inference(model, eye * a_rel[:, None, None], eye * b_rel[:, None, None], spread, n_draws, confidence,
                     rngs[3])
    relative = np.where(err > 0, g / np.where(err > 0, err, 1.0), np.nan)
    # the linearised contrast gives the half-width; the interval is centred on the ratio itself
    half = (rel["ci"][:, 1] - rel["ci"][:, 0]) / 2.0
    rel_ci = np.where((err > 0)[:, None], relative[:, None] + np.stack([-half, half], axis=-1), np.nan)

    # an interval cut to the values the quantity can take keeps its coverage (few seeds can make
    # the pivot's tail reach past them)
    acc_pre["ci"] = np.clip(acc_pre["ci"], 0.0, 1.0)
    acc_rand["ci"] = np.clip(acc_rand["ci"], 0.0, 1.0)
    gain["ci"] = np.clip(gain["ci"], -1.0, 1.0)
    gain["band"] = np.clip(gain["band"], -1.0, 1.0)
    rel_ci = np.minimum(rel_ci, 1.0)
    lay, ci_dims = (S.LAYER,), (S.LAYER, S.BOUND)
    target = _TARGETS[pretrained]
    c = gain["c"]
    unit_text = f"{c.df_sets[0]:.1f} df from {model.samples[0].n_units} {model.samples[0].kind}s"
    common = {
        "target": target,
        "interval": "generalised pivotal quantity, variance components of images/groups and random seeds",
        "resampling_unit": model.samples[0].kind,
        "n_units": model.samples[0].n_units,
        "stratified_by": model.samples[0].stratified_by,
        "n_seeds": model.n_seeds,
        "n_draws": n_draws,
        "confidence": confidence,
        "units_df": unit_text,
    }
    gain_reason = _reasons(c, names)
    nan_attr = {"nan_reason": dict(sorted(gain_reason.items()))} if gain_reason else {}
    data = {
        "accuracy_pretrained_ci": (ci_dims, acc_pre["ci"], {**common, "target": "accuracy of this pretrained network"}),
        "accuracy_random_mean": (lay, mean_rand, {"description": "mean accuracy of the random seeds"}),
        "accuracy_random_mean_ci": (ci_dims, acc_rand["ci"], {
            **common, "target": "mean accuracy of the random-initialisation distribution"}),
        "gain": (lay, g, {"description": "accuracy(pretrained) - mean_s accuracy(random_s)"}),
        "gain_ci": (ci_dims, gain["ci"], {**common, "coverage": "pointwise", **nan_attr}),
        "gain_band": (ci_dims, gain["band"], {**common, "coverage": "simultaneous over layers", **nan_attr}),
        "gain_se": (lay, c.se, {"description": "standard error (images/groups and seeds)", **nan_attr}),
        "gain_df": (lay, c.df, {"description": "Welch-Satterthwaite degrees of freedom of gain_se"}),
        "gain_var_images": (lay, c.var_units, {"description": f"variance part from the {model.samples[0].kind}s"}),
        "gain_var_seeds": (lay, c.var_networks, {
            "description": "variance part from the random initialisations (network-by-image share removed)"}),
        "gain_p": (lay, gain["p"], {
            "test": "two-sided, variance components (images/groups and random seeds), generalised pivotal quantity",
            **common, **nan_attr}),
        "gain_p_maxt": (lay, gain["p_maxt"], {"correction": "minP step-down over layers (Westfall-Young), joint draws",
                                              "of": "gain_p"}),
        "gain_p_holm": (lay, adjust_pvalues(gain["p"], "holm"), {"correction": "holm", "of": "gain_p"}),
        "gain_p_bh": (lay, adjust_pvalues(gain["p"], "fdr_bh"), {"correction": "fdr_bh", "of": "gain_p"}),
        "relative_gain": (lay, relative, {
            "description": "gain / (1 - mean random accuracy): share of the random error removed"}),
        "relative_gain_ci": (ci_dims, rel_ci, {**common, "coverage": "pointwise, delta method"}),
    }
    data["accuracy_pretrained"] = xr.DataArray(model.acc_pre[0], dims=lay,
                                             attrs={"description": "pretrained probe accuracy"})
    data["significant"] = xr.DataArray((gain["p_maxt"] <= alpha_level) & (g > 0), dims=lay,
                                     attrs={"description": f"positive gain with gain_p_maxt <= {alpha_level:g}"})

    pre, rand = outcomes.pre, outcomes.rand
    mc = mcnemar_tests(pre, rand)
    seeds = [S.random_init_name(s) for s in range(outcomes.n_seeds)]
    data["mcnemar_p"] = xr.DataArray(
        mc.pvalue, dims=(S.LAYER, S.INIT, S.REPEAT),
        coords={S.INIT: seeds, S.REPEAT: np.arange(outcomes.n_repeats)},
        attrs={"test": "exact McNemar, pretrained vs each random seed (statsmodels); unadjusted, "
                       "conditional on that seed"},
    )
    if folds is not None:
        tt = corrected_resampled_ttest(pre, rand, check_folds(folds, outcomes.n_repeats, outcomes.n_images))
        data["gain_ttest_p"] = xr.DataArray(tt.pvalue, dims=lay, attrs={
            "test": "Nadeau-Bengio corrected resampled t-test over CV folds (conditional on the seeds)"})
        data["gain_ttest_p_holm"] = xr.DataArray(adjust_pvalues(tt.pvalue, "holm"), dims=lay,
                                               attrs={"correction": "holm", "of": "gain_ttest_p"})
    eff = gain_effect_sizes(pre, rand)
    data["gain_effect_size"] = xr.DataArray(eff.cohen_h, dims=lay, attrs={"effect_size": "Cohen's h of the two accuracies"})
    data["gain_effect_size_paired"] = xr.DataArray(eff.cohen_dz, dims=lay,
                                                 attrs={"effect_size": "Cohen's d_z of per-image differences"})
    data["gain_effect_size_dav"] = xr.DataArray(eff.cohen_dav, dims=lay, attrs={"effect_size": "Cohen's d_av"})

    if n_layers >= 3 and np.ptp(depth) > 0:
        tr = _trend(model, depth, spread, n_draws, confidence, rngs[4])
        why = {"nan_reason": {"all layers": tr["reason"]}} if tr["reason"] else {}
        t_attrs = {"trend_slope": "OLS slope of the gains on relative depth, a contrast of the gains",
                   **common, **why}
        data["gain_trend_slope"] = xr.DataArray(tr["slope"], attrs=t_attrs)
        data["gain_trend_slope_ci"] = xr.DataArray(tr["ci"], dims=(S.BOUND,), attrs=t_attrs)
        data["gain_trend_slope_p"] = xr.DataArray(tr["p"], attrs=t_attrs)
        data["gain_trend_spearman_rho"] = xr.DataArray(tr["rho"], attrs={
            "description": "Spearman's rho of gain and depth: descriptive (layers are not independent observations)"})
    else:
        why = {"nan_reason": (
            {"all layers": f"a depth trend needs at least 3 layers at different depths, the run has {n_layers}"})}
        data["gain_trend_slope"] = xr.DataArray(np.nan, attrs=why)
        data["gain_trend_slope_ci"] = xr.DataArray(np.full(2, np.nan), dims=(S.BOUND,), attrs=why)
        data["gain_trend_slope_p"] = xr.DataArray(np.nan, attrs=why)
        data["gain_trend_spearman_rho"] = xr.DataArray(np.nan, attrs=why)

    if n_layers >= 2:
        sw: SweetSpot = sweet_spot_of(model, margin=margin, confidence=confidence, n_draws=n_draws, rng=rngs[5])
        sw_attrs = {**sw.attrs(), **({"undetermined": sw.reason} if sw.reason else {})}
        data["sweet_spot_lower"] = xr.DataArray(sw.lower, dims=lay, attrs={
            "description": "simultaneous lower bound of accuracy(layer) - accuracy(strongest other layer)",
            "margin": margin})
        data["sweet_spot_lower_to_best"] = xr.DataArray(sw.lower_to_best, dims=lay, attrs={
            "description": "simultaneous lower bound of accuracy(layer) - accuracy(best layer)"})
        data["sweet_spot"] = xr.DataArray(names[sw.layer] if sw.layer >= 0 else "", attrs=sw_attrs)
        data["best_layer"] = xr.DataArray(names[sw.best_layer])
    else:
        data["sweet_spot"] = xr.DataArray(names[0], attrs={"note": "one layer: nothing to compare"})
        data["best_layer"] = xr.DataArray(names[0])
    ds = xr.Dataset(data, coords={S.LAYER: names, S.BOUND: list(S.BOUNDS)})  # built once: assignments cost
    ds.attrs = {"statistics_target": target, "margin": margin, "n_draws": n_draws, "confidence": confidence,
                "alpha": alpha_level}
    return ds

