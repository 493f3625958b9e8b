"""The cross-set comparison as a labelled Dataset (``comparison.nc``).

Dimensions: ``dataset`` (image sets, in the order given), ``layer``, ``init``, ``bound``,
``set_pair`` (pairs of sets ``"a|b"``, differences are a minus b).

Variables
---------
Stacked from the runs (layer-level variables of each results.nc, concatenated along ``dataset``):
``accuracy(dataset, init, layer)``, ``balanced_accuracy``, ``macro_f1``, ``gain(dataset, layer)``
and ``relative_gain`` of each run, its own ``gain_ci``, ``gain_p``, ``gain_p_holm``,
``cka_linear(dataset, init, layer)``, ``cka_debiased``, ``svcca``, ``pwcca`` … where present.

From the joint comparison (:func:`layergain.stats.compare_sets`):

- ``joint_gain_ci(dataset, layer, bound)``: gain interval from the joint design (variance
  components of each set's images or groups and of the shared random seeds);
- ``joint_gain_p(dataset, layer)``: two-sided test of gain = 0; ``joint_gain_p_maxt`` (minP
  step-down over the layers of each set, primary), ``joint_gain_p_holm`` (secondary);
- ``significant(dataset, layer)``: positive gain with ``joint_gain_p_maxt <= alpha``;
- ``deep(layer)``: the layers counted as deepest; ``keeps_gain(dataset)``: significant at every
  deep layer;
- ``slope(dataset)``, ``slope_ci(dataset, bound)``: OLS slope of gain on relative depth;
- ``difference(set_pair, layer)``, ``difference_ci(set_pair, layer, bound)``, ``difference_p``,
  ``difference_p_maxt`` (minP step-down over all pairs and layers, primary), ``difference_p_holm``
  (secondary): gain of set a minus set b;
- ``slope_difference(set_pair)``, ``slope_difference_ci(set_pair, bound)``, ``slope_difference_p``,
  ``slope_difference_p_holm(set_pair)``;
- ``interaction_wald(layer)``, ``interaction_wald_p(layer)`` (primary: Wald test of equal gains in
  every set with a generalised pivotal reference), ``interaction_wald_p_maxt`` (over layers),
  ``interaction_wald_p_holm``, ``interaction_df``, ``interaction_failure(layer)`` (why a layer
  has no calibrated test, else "").

Where the runs hold transferability estimators and their tau table (results written before them
have neither, and their comparison.nc has none of these), dims ``estimator`` and ``dataset``:

- ``tau_accuracy(dataset, estimator)``, ``tau_accuracy_ci(dataset, estimator, bound)``,
  ``tau_gain``, ``tau_gain_ci``, ``tau_n_layers``: each run's own tau table, copied (NaN for a
  run without one; ``nan_reason`` says why, per set);
- ``tau_accuracy_pooled(estimator)``, ``tau_accuracy_pooled_ci(estimator, bound)``,
  ``tau_gain_pooled``, ``tau_gain_pooled_ci``: stratified Kendall's tau over the sets with its
  bootstrap interval (:func:`layergain.stats.compare.pooled_tau`), ``tau_pooled_n_sets``: the
  sets in it;
- ``tau_accuracy_sets_above(estimator)``, ``tau_accuracy_sets_below``, ``tau_accuracy_sets``,
  ``tau_gain_sets_above``, ``tau_gain_sets_below``, ``tau_gain_sets``: how many sets have their
  own tau CI above 0, below 0, and a finite tau with its CI at all.

Attributes: the comparison settings (interval, draws, confidence, alpha, corrections), the
backbone, the seeds, each run's file and data card (JSON), package versions, created (UTC).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.results.io import decode_attr

__all__ = ["LAYER_LEVEL_VARIABLES", "TAU_VARIABLES", "build_comparison", "comparison_dataset", "has_tau",
           "stack_runs", "stack_tau", "tau_across_sets"]

LAYER_LEVEL_VARIABLES = (
    "accuracy", "balanced_accuracy", "macro_f1", "accuracy_random_mean", "gain", "relative_gain", "gain_ci",
    "gain_p", "gain_p_maxt", "gain_p_holm", "gain_effect_size", "cka_linear", "cka_debiased", "cka_rbf", "svcca", "pwcca",
    "cka_linear_rr", "cka_debiased_rr", "svcca_rr", "pwcca_rr",
)
#: A run's tau table (:func:`layergain.transferability.tau_table`), as its results.nc holds it.
TAU_VARIABLES = ("tau_accuracy", "tau_accuracy_ci", "tau_gain", "tau_gain_ci", "tau_n_layers")
TRANSFER_PREFIX = "transfer_"
_NO_TAU = "no tau table in this run's results (written before the transferability estimators)"


def stack_runs(runs: list[xr.Dataset]) -> xr.Dataset:
    """Layer-level variables of several runs, concatenated along ``dataset``."""
    parts = []
    for ds in runs:
        keep = [v for v in LAYER_LEVEL_VARIABLES if v in ds.data_vars]
        parts.append(ds[keep].expand_dims({S.DATASET: [ds.attrs["dataset"]]}))  # image coords drop out
    stacked = xr.concat(parts, dim=S.DATASET, join="outer", combine_attrs="drop_conflicts")
    for name in stacked.data_vars:  # keep each run's reasons for NaN measures (a dict; saving encodes it)
        reasons = {ds.attrs["dataset"]: decode_attr(ds[name].attrs["nan_reason"])
                   for ds in runs if name in ds and "nan_reason" in ds[name].attrs}
        if reasons:
            stacked[name].attrs["nan_reason"] = reasons
    stacked.attrs = {}
    return stacked


def comparison_dataset(names: list[str], layer_names: list[str], comparison) -> xr.Dataset:
    """The joint comparison's arrays with labelled dimensions (see the module docstring)."""
    c = comparison
    pairs = [f"{names[i]}|{names[j]}" for i, j in c.pairs]
    inter = c.interaction
    data = {
        "joint_gain_ci": ((S.DATASET, S.LAYER, S.BOUND), c.gain_ci),
        "joint_gain_p": ((S.DATASET, S.LAYER), c.gain_pvalue),
        "joint_gain_p_maxt": ((S.DATASET, S.LAYER), c.gain_pvalue_maxt),
        "joint_gain_p_holm": ((S.DATASET, S.LAYER), c.gain_pvalue_holm),
        "significant": ((S.DATASET, S.LAYER), c.significant.astype(np.int8)),
        "keeps_gain": ((S.DATASET,), c.keeps_gain.astype(np.int8)),
        "deep": ((S.LAYER,), np.isin(np.arange(len(layer_names)), c.deep_layers).astype(np.int8)),
        "slope": ((S.DATASET,), c.slope),
        "slope_ci": ((S.DATASET, S.BOUND), c.slope_ci),
        "difference": ((S.SET_PAIR, S.LAYER), c.difference),
        "difference_ci": ((S.SET_PAIR, S.LAYER, S.BOUND), c.difference_ci),
        "difference_p": ((S.SET_PAIR, S.LAYER), c.difference_pvalue),
        "difference_p_maxt": ((S.SET_PAIR, S.LAYER), c.difference_pvalue_maxt),
        "difference_p_holm": ((S.SET_PAIR, S.LAYER), c.difference_pvalue_holm),
        "slope_difference": ((S.SET_PAIR,), c.slope_difference),
        "slope_difference_ci": ((S.SET_PAIR, S.BOUND), c.slope_difference_ci),
        "slope_difference_p": ((S.SET_PAIR,), c.slope_difference_pvalue),
        "slope_difference_p_holm": ((S.SET_PAIR,), c.slope_difference_pvalue_holm),
        "interaction_wald": ((S.LAYER,), inter.statistic),
        "interaction_wald_p": ((S.LAYER,), inter.pvalue),
        "interaction_wald_p_maxt": ((S.LAYER,), inter.pvalue_maxt),
        "interaction_wald_p_holm": ((S.LAYER,), inter.pvalue_holm),
        "interaction_failure": ((S.LAYER,), np.asarray(inter.failure, dtype=str)),
    }
    coords = {
        S.DATASET: names,
        S.LAYER: layer_names,
        S.BOUND: list(S.BOUNDS),
        S.SET_PAIR: pairs,
        "first": (S.SET_PAIR, [names[i] for i, _ in c.pairs]),
        "second": (S.SET_PAIR, [names[j] for _, j in c.pairs]),
    }
    ds = xr.Dataset(data, coords=coords)
    ds["interaction_df"] = xr.DataArray(int(inter.df))
    ds.attrs = c.attrs()
    return ds


def build_comparison(runs: list[xr.Dataset], comparison, *, seed=0) -> xr.Dataset:
    """``comparison.nc``'s variables: the runs' layer-level variables, the joint comparison and,
    where the runs have them, their taus and the pooled taus.

    ``runs`` are the compared runs' results, ``comparison`` the
    :class:`~layergain.stats.SetComparison` of their outcomes, ``seed`` (int, Generator or None)
    that of the pooled taus' bootstrap; attrs are left to
    :func:`layergain.results.provenance.comparison_attrs`.
    """
    names = [ds.attrs["dataset"] for ds in runs]
    layer_names = [str(n) for n in runs[0][S.LAYER].values]
    parts = [stack_runs(runs), comparison_dataset(names, layer_names, comparison)]
    if any(has_tau(ds) for ds in runs):
        parts.append(tau_across_sets(runs, confidence=comparison.confidence, seed=seed))
    return xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="override")


# --------------------------------------------------------------------------- transferability


def has_tau(ds: xr.Dataset) -> bool:
    """Whether a run's results hold a tau table (results written before it do not)."""
    return "tau_gain" in ds.data_vars and S.ESTIMATOR in ds.dims


def _estimators(runs: list[xr.Dataset]) -> list[str]:
    """Every run's estimators, in the order they first appear."""
    names: list[str] = []
    for ds in runs:
        if has_tau(ds):
            names += [str(e) for e in ds[S.ESTIMATOR].values if str(e) not in names]
    return names


def stack_tau(runs: list[xr.Dataset]) -> xr.Dataset:
    """Each run's tau table along ``dataset``, on every run's estimators (NaN for a run without one).

    A variable's ``nan_reason`` is ``{dataset: reasons}``: the run's own (``{estimator: reason}``)
    or why the run has no tau table.
    """
    estimators = _estimators(runs)
    template = next(ds for ds in runs if has_tau(ds))
    keep = [v for v in TAU_VARIABLES if v in template.data_vars]
    empty = xr.full_like(template[keep].reindex({S.ESTIMATOR: estimators}), np.nan, dtype=float)
    for name in keep:
        empty[name].attrs = {}
    parts = [(ds[keep].reindex({S.ESTIMATOR: estimators}) if has_tau(ds) else empty)
             .expand_dims({S.DATASET: [ds.attrs["dataset"]]}) for ds in runs]
    stacked = xr.concat(parts, dim=S.DATASET, join="outer", combine_attrs="drop_conflicts")
    for name in keep:
        stacked[name].attrs["nan_reason"] = {
            ds.attrs["dataset"]: decode_attr(ds[name].attrs.get("nan_reason", "{}"), {}) if has_tau(ds)
            else _NO_TAU for ds in runs
        }
    stacked.attrs = {}
    return stacked


def _tau_inputs(ds: xr.Dataset, estimators: list[str]):
    """What the run gave its tau table, on ``estimators`` (NaN for one it lacks), pretrained first."""
    from layergain.results.build import per_image_correct
    from layergain.stats.compare import TauInputs

    inits = [str(i) for i in ds[S.INIT].values]
    order = {S.INIT: [S.PRETRAINED, *(i for i in inits if i != S.PRETRAINED)]}
    missing = np.full((len(inits), ds.sizes[S.LAYER]), np.nan)
    estimates = np.stack([
        ds[TRANSFER_PREFIX + e].sel(order).transpose(S.INIT, S.LAYER).values.astype(float)
        if TRANSFER_PREFIX + e in ds else missing
        for e in estimators
    ])
    return TauInputs(
        estimates=estimates,
        accuracy=ds["accuracy"].sel(order).transpose(S.INIT, S.LAYER).values.astype(float),
        gain=ds["gain"].transpose(S.LAYER).values.astype(float),
        correct=per_image_correct(ds).sel(order).values,
        name=str(ds.attrs["dataset"]),
    )


def _n_boot(runs: list[xr.Dataset]) -> int:
    """The runs' tau draws (the most where they differ; tau_table's default 2000 if unrecorded)."""
    return max(int(decode_attr(ds["tau_gain"].attrs.get("n_boot", 2000), 2000)) for ds in runs)


def _set_counts(stacked: xr.Dataset) -> xr.Dataset:
    """Per estimator, the sets whose own tau CI lies above 0, below 0, and those with a tau and CI."""
    out = xr.Dataset()
    for what in ("accuracy", "gain"):
        tau = stacked[f"tau_{what}"].transpose(S.DATASET, S.ESTIMATOR).values
        ci = stacked[f"tau_{what}_ci"].transpose(S.DATASET, S.ESTIMATOR, S.BOUND)
        ci = ci.sel({S.BOUND: list(S.BOUNDS)}).values
        finite = np.isfinite(tau) & np.isfinite(ci).all(axis=-1)
        for suffix, mask, where in (("_above", finite & (ci[..., 0] > 0), "lies above 0"),
                                    ("_below", finite & (ci[..., 1] < 0), "lies below 0"),
                                    ("", finite, "and tau are finite")):
            out[f"tau_{what}_sets{suffix}"] = xr.DataArray(
                mask.sum(axis=0).astype(np.int64), dims=(S.ESTIMATOR,),
                attrs={"description": f"image sets whose own tau_{what} CI (their run's tau table) {where}"})
    return out.assign_coords({S.ESTIMATOR: stacked[S.ESTIMATOR].values})


def tau_across_sets(runs: list[xr.Dataset], *, confidence: float, seed=0) -> xr.Dataset:
    """Each run's taus (:func:`stack_tau`), how many sets' own CI lies above or below 0, and per
    estimator Kendall's tau pooled over the sets with a tau table
    (:func:`layergain.stats.compare.pooled_tau`, which says why the sets are strata and are not
    resampled); see the module docstring.

    The pooled bootstrap draws as often as the runs' tau tables did, at ``confidence``; ``seed``:
    int, Generator or None.
    """
    from layergain.stats.compare import pooled_tau

    estimators = _estimators(runs)
    with_tau = [ds for ds in runs if has_tau(ds)]
    pooled = pooled_tau([_tau_inputs(ds, estimators) for ds in with_tau], n_boot=_n_boot(with_tau),
                        confidence=confidence, seed=seed)
    attrs = {**pooled.attrs(), "sets": [str(ds.attrs["dataset"]) for ds in with_tau]}
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        attrs["seed"] = int(seed)
    else:
        attrs["seed_stream"] = ("spawned from the comparison's generator (Dataset attr `seed`) after the "
                                "joint comparison's streams")
    without = {str(ds.attrs["dataset"]): _NO_TAU for ds in runs if not has_tau(ds)}
    left_out = {e: {**without, **pooled.left_out[k]} for k, e in enumerate(estimators)}
    attrs["left_out"] = {e: sets for e, sets in left_out.items() if sets}
    attrs["nan_reason"] = {e: reason for e, reason in zip(estimators, pooled.failure) if reason}
    data = {"tau_pooled_n_sets": ((S.ESTIMATOR,), pooled.n_sets.astype(np.int64))}
    for what in ("accuracy", "gain"):
        data[f"tau_{what}_pooled"] = ((S.ESTIMATOR,), getattr(pooled, f"tau_{what}"))
        data[f"tau_{what}_pooled_ci"] = ((S.ESTIMATOR, S.BOUND), getattr(pooled, f"tau_{what}_ci"))
    ds = xr.Dataset(data, coords={S.ESTIMATOR: estimators, S.BOUND: list(S.BOUNDS)})
    for name in ds.data_vars:
        ds[name].attrs = dict(attrs)
    stacked = stack_tau(runs)
    out = xr.merge([stacked, _set_counts(stacked), ds], join="exact", combine_attrs="override")
    out.attrs = {}
    return out
