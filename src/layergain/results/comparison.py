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

Attributes: the comparison settings (interval, draws, confidence, alpha, corrections), the
backbone, the seeds, each run's file and data card (JSON), package versions, created (UTC).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.results.io import decode_attr

__all__ = ["LAYER_LEVEL_VARIABLES", "build_comparison", "comparison_dataset", "stack_runs"]

LAYER_LEVEL_VARIABLES = (
    "accuracy", "balanced_accuracy", "macro_f1", "accuracy_random_mean", "gain", "relative_gain", "gain_ci",
    "gain_p", "gain_p_maxt", "gain_p_holm", "gain_effect_size", "cka_linear", "cka_debiased", "cka_rbf", "svcca", "pwcca",
    "cka_linear_rr", "cka_debiased_rr", "svcca_rr", "pwcca_rr",
)


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


def build_comparison(runs: list[xr.Dataset], comparison) -> xr.Dataset:
    """``comparison.nc``'s variables: the runs' layer-level variables and the joint comparison.

    ``runs`` are the compared runs' results, ``comparison`` the
    :class:`~layergain.stats.SetComparison` of their outcomes; attrs are left to
    :func:`layergain.results.provenance.comparison_attrs`.
    """
    names = [ds.attrs["dataset"] for ds in runs]
    layer_names = [str(n) for n in runs[0][S.LAYER].values]
    return xr.merge(
        [stack_runs(runs), comparison_dataset(names, layer_names, comparison)],
        join="outer", compat="no_conflicts", combine_attrs="override",
    )
