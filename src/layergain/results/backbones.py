"""Backbones side by side on one image set as a labelled Dataset (``backbones.nc``).

Runs on the same images with different backbones have different layers, so their layers are
indexed per backbone: dimension ``layer_index`` (0 .. the deepest backbone's last layer; shorter
backbones are padded: NaN, "" for names, ``n_layers(configuration)`` says where each ends).
Dimensions: ``configuration``, ``layer_index``, ``init_kind`` (``pretrained``, ``random_mean``),
``bound``, ``backbone_pair`` (``"smaller|larger"``), ``conclusion``.

Variables
---------
Per configuration and layer, from its run: ``layer_name``, ``relative_depth``,
``params_to_layer`` (parameters of the network up to and including the layer),
``accuracy_pretrained`` with ``accuracy_pretrained_ci(…, bound)``, ``accuracy_random_mean``,
``gain`` with ``gain_ci``, ``significant`` (max-T in its run). Per configuration:
``n_layers``, ``n_params`` (the whole backbone), ``sweet_spot``, ``best_layer``, ``backbone``,
``readout``, ``baseline``.

Per (smaller, larger) pair (:func:`layergain.stats.compare_backbones`): ``best_of_larger`` and
``sweet_of_smaller`` (layer names), ``params_best`` and ``params_sweet``, ``difference`` =
accuracy(larger, best) - accuracy(smaller, sweet spot) with ``difference_ci(…, bound)``
(pointwise), ``p_best`` (one-sided, conditional on the best layer), ``p_any`` (one-sided minP over
every layer of the larger: the primary test), ``difference_by_layer(backbone_pair, layer_index)``
and ``reason``. The robustness table ``holds(conclusion, configuration)`` as in
:mod:`layergain.results.configurations`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.results.configurations import CONCLUSIONS, robustness

__all__ = ["build_backbones", "network_size"]

CONFIGURATION = "configuration"
LAYER_INDEX = "layer_index"
PAIR = "backbone_pair"


def network_size(ds: xr.Dataset) -> int:
    """Parameters of a run's whole backbone: those up to its last (deepest) probe layer."""
    return int(np.max(ds["params_to_layer"].values))


def _padded(values: list[np.ndarray], width: int, fill) -> np.ndarray:
    out = np.full((len(values), width, *values[0].shape[1:]), fill, dtype=np.asarray(values[0]).dtype
                  if fill == "" else float)
    for k, v in enumerate(values):
        out[k, : len(v)] = v
    return out


def build_backbones(runs: list[xr.Dataset], names: list[str], comparison) -> xr.Dataset:
    """``backbones.nc``'s variables (attrs are left to
    :func:`layergain.results.provenance.backbones_attrs`)."""
    c = comparison
    width = max(ds.sizes[S.LAYER] for ds in runs)

    def per_layer(name: str, fill=np.nan) -> np.ndarray:
        return _padded([np.asarray(ds[name].values) for ds in runs], width, fill)

    layer_names = [[str(v) for v in ds[S.LAYER].values] for ds in runs]
    names_arr = np.full((len(runs), width), "", dtype=object)
    for k, ln in enumerate(layer_names):
        names_arr[k, : len(ln)] = ln
    pre_ci = _padded([ds["accuracy_pretrained_ci"].transpose(S.LAYER, S.BOUND).values for ds in runs], width, np.nan)
    gain_ci = _padded([ds["gain_ci"].transpose(S.LAYER, S.BOUND).values for ds in runs], width, np.nan)
    holds, _ = robustness(runs)

    def name_of(k: int, index: int) -> str:
        return layer_names[k][index] if index >= 0 else ""

    pairs = [f"{names[a]}|{names[b]}" for a, b in c.pairs]
    by_layer = np.full((len(c.pairs), width), np.nan)
    for i, d in enumerate(c.differences):
        by_layer[i, : len(d)] = d
    params = [np.asarray(ds["params_to_layer"].values, dtype=float) for ds in runs]
    data = {
        "layer_name": ((CONFIGURATION, LAYER_INDEX), names_arr.astype(str)),
        "relative_depth": ((CONFIGURATION, LAYER_INDEX), per_layer("relative_depth")),
        "params_to_layer": ((CONFIGURATION, LAYER_INDEX), per_layer("params_to_layer")),
        "accuracy_pretrained": ((CONFIGURATION, LAYER_INDEX), per_layer("accuracy_pretrained")),
        "accuracy_pretrained_ci": ((CONFIGURATION, LAYER_INDEX, S.BOUND), pre_ci),
        "accuracy_random_mean": ((CONFIGURATION, LAYER_INDEX), per_layer("accuracy_random_mean")),
        "gain": ((CONFIGURATION, LAYER_INDEX), per_layer("gain")),
        "gain_ci": ((CONFIGURATION, LAYER_INDEX, S.BOUND), gain_ci),
        "significant": ((CONFIGURATION, LAYER_INDEX), per_layer("significant", np.nan)),
        "n_layers": ((CONFIGURATION,), np.array([ds.sizes[S.LAYER] for ds in runs], dtype=np.int64)),
        "n_params": ((CONFIGURATION,), np.array([network_size(ds) for ds in runs], dtype=np.int64)),
        "sweet_spot": ((CONFIGURATION,), np.array([str(ds["sweet_spot"].values) for ds in runs], dtype=str)),
        "best_layer": ((CONFIGURATION,), np.array([str(ds["best_layer"].values) for ds in runs], dtype=str)),
        "backbone": ((CONFIGURATION,), np.array([str(ds.attrs.get("backbone", "")) for ds in runs], dtype=str)),
        "readout": ((CONFIGURATION,), np.array([str(ds.attrs.get("readout", ds.attrs.get("pooling", "")))
                                                for ds in runs], dtype=str)),
        "baseline": ((CONFIGURATION,), np.array([str(ds.attrs.get("baseline", "default")) for ds in runs],
                                                dtype=str)),
        "best_of_larger": ((PAIR,), np.array([name_of(b, int(c.best[i])) for i, (_, b) in enumerate(c.pairs)],
                                              dtype=str)),
        "sweet_of_smaller": ((PAIR,), np.array([name_of(a, int(c.sweet[i])) for i, (a, _) in enumerate(c.pairs)],
                                               dtype=str)),
        "params_best": ((PAIR,), np.array([params[b][c.best[i]] for i, (_, b) in enumerate(c.pairs)], dtype=float)),
        "params_sweet": ((PAIR,), np.array([params[a][c.sweet[i]] if c.sweet[i] >= 0 else np.nan
                                            for i, (a, _) in enumerate(c.pairs)], dtype=float)),
        "difference": ((PAIR,), np.asarray(c.difference, dtype=float)),
        "difference_ci": ((PAIR, S.BOUND), np.asarray(c.difference_ci, dtype=float).reshape(len(c.pairs), 2)),
        "p_best": ((PAIR,), np.asarray(c.p_best, dtype=float)),
        "p_any": ((PAIR,), np.asarray(c.p_any, dtype=float)),
        "difference_by_layer": ((PAIR, LAYER_INDEX), by_layer),
        "reason": ((PAIR,), np.asarray(c.reason, dtype=str)),
        "holds": (("conclusion", CONFIGURATION), holds),
    }
    coords = {
        CONFIGURATION: names, LAYER_INDEX: np.arange(width), S.BOUND: list(S.BOUNDS), PAIR: pairs,
        "smaller": (PAIR, [names[a] for a, _ in c.pairs]), "larger": (PAIR, [names[b] for _, b in c.pairs]),
        "conclusion": list(CONCLUSIONS), "conclusion_text": ("conclusion", list(CONCLUSIONS.values())),
    }
    ds = xr.Dataset(data, coords=coords)
    ds["difference"].attrs["description"] = ("pretrained probe accuracy of the larger backbone's most accurate layer "
                                             "minus that of the smaller backbone's sweet spot")
    ds["p_any"].attrs["test"] = ("one-sided (the larger is more accurate), single-step minP over every layer of the "
                                 "larger backbone: the choice of its best layer is accounted for")
    ds["p_best"].attrs["test"] = "one-sided, at the larger backbone's best layer, conditional on choosing it"
    ds["holds"].attrs["description"] = "1: holds, 0: does not, -1: undetermined (no calibrated statement)"
    return ds
