"""The paired comparison of configurations of one image set as a labelled Dataset (``configurations.nc``).

Configurations are runs on the same images that differ in readout, random baseline or backbone
(:func:`layergain.stats.compare_configurations`). Dimensions: ``configuration`` (in the order
given), ``layer``, ``init``, ``bound``, ``config_pair`` (``"a|b"``, differences are a minus b),
``conclusion`` (the robustness table's rows).

Variables
---------
Stacked from the runs: ``accuracy(configuration, init, layer)``, ``gain(configuration, layer)``,
each run's own ``gain_ci``, ``gain_p_maxt``, ``significant``, ``sweet_spot(configuration)``,
``readout(configuration)``, ``baseline(configuration)``, ``backbone(configuration)``.

From the paired comparison:

- ``paired_gain_ci(configuration, layer, bound)``, ``paired_gain_p``: each configuration's gain
  from the joint design;
- ``difference(config_pair, layer)``, ``difference_ci(config_pair, layer, bound)``,
  ``difference_p`` (two-sided), ``difference_p_maxt`` (minP step-down over all pairs and layers,
  primary), ``difference_p_holm``, ``difference_se``, ``difference_var_images``,
  ``difference_var_seeds``, ``difference_reason`` ("" or why a cell has no calibrated test);
  ``shared_pretrained(config_pair)``: the pair reads the same pretrained features (its term
  cancels);
- the robustness table ``holds(conclusion, configuration)`` (1, 0, or -1 where undetermined) and
  ``flips_at(conclusion)`` (the layers where the per-layer verdict is not the same in every
  configuration, comma-separated): for each claim-level conclusion of a run — a significant
  positive gain at the first layers (``early_gain``: relative depth <= 0.25), at the deepest
  layers (``deep_gain``: relative depth >= 0.75), a negative depth slope (``trend_negative``),
  a determined sweet spot (``sweet_spot``) — whether it holds under each configuration.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from layergain import schema as S

__all__ = ["CONCLUSIONS", "ROBUSTNESS_VARIABLES", "build_configurations", "robustness", "robustness_of_run"]

CONFIGURATION = "configuration"
CONFIG_PAIR = "config_pair"
CONCLUSION = "conclusion"
EARLY, DEEP = 0.25, 0.75
#: The robustness table's conclusions, with what each says.
CONCLUSIONS = {
    "early_gain": f"significant positive gain (max-T) at every layer of relative depth <= {EARLY}",
    "deep_gain": f"significant positive gain (max-T) at every layer of relative depth >= {DEEP}",
    "trend_negative": "the gain falls with depth: depth slope's interval below 0",
    "sweet_spot": "a sweet spot is determined (simultaneous non-inferiority within the margin)",
}
_STACKED = ("accuracy", "gain", "gain_ci", "gain_p_maxt", "significant")


def _significant(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["significant"].values, dtype=bool)


def robustness(runs: list[xr.Dataset]) -> tuple[np.ndarray, list[str]]:
    """(holds (n_conclusions, n_configurations) of 1/0/-1, flips_at per conclusion).

    Each run's conclusions are read at its own relative depths, so runs of backbones with other
    numbers of layers have a verdict too; the layers where the verdict flips are named only where
    every run has the same layers (else "").
    """
    holds = np.full((len(CONCLUSIONS), len(runs)), -1, dtype=np.int8)
    for c, ds in enumerate(runs):
        depth = np.asarray(ds["relative_depth"].values, dtype=float)
        sig = _significant(ds)
        holds[0, c] = int(sig[depth <= EARLY + 1e-9].all())
        holds[1, c] = int(sig[depth >= DEEP - 1e-9].all())
        if "gain_trend_slope_ci" in ds:
            lo, hi = (float(v) for v in ds["gain_trend_slope_ci"].values)
            holds[2, c] = -1 if not np.isfinite(hi) else int(hi < 0)
        if "sweet_spot" in ds:
            holds[3, c] = int(str(ds["sweet_spot"].values) != "")
    layers = [str(v) for v in runs[0][S.LAYER].values]
    if any([str(v) for v in ds[S.LAYER].values] != layers for ds in runs[1:]):
        return holds, [""] * len(CONCLUSIONS)
    depth = np.asarray(runs[0]["relative_depth"].values, dtype=float)
    early, deep = depth <= EARLY + 1e-9, depth >= DEEP - 1e-9
    per_layer = np.stack([_significant(ds) for ds in runs])  # (C, L)
    differs = per_layer.any(axis=0) & ~per_layer.all(axis=0)
    flips = [
        ", ".join(layers[k] for k in np.flatnonzero(differs & early)),
        ", ".join(layers[k] for k in np.flatnonzero(differs & deep)),
        "",
        "",
    ]
    return holds, flips


def build_configurations(runs: list[xr.Dataset], names: list[str], comparison) -> xr.Dataset:
    """``configurations.nc``'s variables: the runs' layer-level variables, the paired comparison and
    the robustness table (attrs are left to :func:`layergain.results.provenance.configurations_attrs`)."""
    c = comparison
    layers = [str(v) for v in runs[0][S.LAYER].values]
    parts = []
    for name, ds in zip(names, runs):
        keep = [v for v in _STACKED if v in ds.data_vars]
        parts.append(ds[keep].expand_dims({CONFIGURATION: [name]}))
    stacked = xr.concat(parts, dim=CONFIGURATION, join="outer", coords="minimal", compat="override",
                        combine_attrs="drop_conflicts")
    stacked.attrs = {}
    for v in stacked.variables.values():
        v.attrs.pop("nan_reason", None)
    holds, flips = robustness(runs)
    pairs = [f"{names[a]}|{names[b]}" for a, b in c.pairs]
    data = {
        "paired_gain_ci": ((CONFIGURATION, S.LAYER, S.BOUND), c.gain_ci),
        "paired_gain_p": ((CONFIGURATION, S.LAYER), c.gain_p),
        "difference": ((CONFIG_PAIR, S.LAYER), c.difference),
        "difference_ci": ((CONFIG_PAIR, S.LAYER, S.BOUND), c.difference_ci),
        "difference_p": ((CONFIG_PAIR, S.LAYER), c.difference_p),
        "difference_p_maxt": ((CONFIG_PAIR, S.LAYER), c.difference_p_maxt),
        "difference_p_holm": ((CONFIG_PAIR, S.LAYER), c.difference_p_holm),
        "difference_se": ((CONFIG_PAIR, S.LAYER), c.difference_se),
        "difference_var_images": ((CONFIG_PAIR, S.LAYER), c.difference_var_images),
        "difference_var_seeds": ((CONFIG_PAIR, S.LAYER), c.difference_var_seeds),
        "difference_reason": ((CONFIG_PAIR, S.LAYER), np.asarray(c.reason, dtype=str)),
        "shared_pretrained": ((CONFIG_PAIR,), c.shared_pretrained.astype(np.int8)),
        "holds": ((CONCLUSION, CONFIGURATION), holds),
        "flips_at": ((CONCLUSION,), np.asarray(flips, dtype=str)),
        "sweet_spot": ((CONFIGURATION,), np.asarray([str(ds["sweet_spot"].values) if "sweet_spot" in ds else ""
                                                      for ds in runs], dtype=str)),
        "readout": ((CONFIGURATION,), np.asarray([str(ds.attrs.get("readout", ds.attrs.get("pooling", "")))
                                                  for ds in runs], dtype=str)),
        "baseline": ((CONFIGURATION,), np.asarray([str(ds.attrs.get("baseline", "default")) for ds in runs],
                                                  dtype=str)),
        "backbone": ((CONFIGURATION,), np.asarray([str(ds.attrs.get("backbone", "")) for ds in runs], dtype=str)),
    }
    coords = {
        CONFIGURATION: names, S.LAYER: layers, S.BOUND: list(S.BOUNDS), CONFIG_PAIR: pairs,
        "first": (CONFIG_PAIR, [names[a] for a, _ in c.pairs]),
        "second": (CONFIG_PAIR, [names[b] for _, b in c.pairs]),
        CONCLUSION: list(CONCLUSIONS),
        "conclusion_text": (CONCLUSION, list(CONCLUSIONS.values())),
        "relative_depth": (S.LAYER, np.asarray(runs[0]["relative_depth"].values, dtype=float)),
    }
    ds = xr.Dataset(data, coords=coords)
    ds["difference_p"].attrs["test"] = ("two-sided, paired over images (same images under every configuration), "
                                        "generalised pivotal reference; seeds paired by index")
    ds["holds"].attrs["description"] = "1: holds, 0: does not, -1: undetermined (no calibrated statement)"
    return xr.merge([stacked, ds], join="outer", compat="no_conflicts", combine_attrs="override")


#: A run's own copy of the robustness table of the configurations it was run with (dims
#: ``conclusion``, ``sibling``: not ``configuration``, which marks a configurations.nc).
SIBLING = "sibling"
ROBUSTNESS_VARIABLES = ("robustness_holds", "robustness_flips_at")


def robustness_of_run(paired: xr.Dataset, name: str) -> xr.Dataset:
    """The robustness table of ``paired`` (a configurations.nc) for the results of its configuration
    ``name``: ``robustness_holds(conclusion, sibling)`` and ``robustness_flips_at(conclusion)``,
    with attr ``configuration`` on the first."""
    holds = paired["holds"].transpose(CONCLUSION, CONFIGURATION).values
    ds = xr.Dataset(
        {
            "robustness_holds": ((CONCLUSION, SIBLING), holds.astype(np.int8),
                                 {"description": "the run's configurations' robustness table (configurations/): 1 "
                                                 "holds, 0 does not, -1 undetermined", "configuration": name}),
            "robustness_flips_at": ((CONCLUSION,), np.asarray(paired["flips_at"].values, dtype=str)),
        },
        coords={CONCLUSION: paired[CONCLUSION].values, SIBLING: paired[CONFIGURATION].values,
                "conclusion_text": (CONCLUSION, paired["conclusion_text"].values)},
    )
    return ds
