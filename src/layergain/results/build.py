"""Assemble labelled results (xarray) from the stages' arrays."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from layergain import schema as S

__all__ = ["displayable", "gain_dataset", "probe_dataset"]


def displayable(path: str) -> str:
    """A file name as valid UTF-8: bytes that are not (surrogate-escaped by Python) become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def probe_dataset(
    *,
    inits: list[str],
    seeds: list[int],
    layers: list,
    relpaths: tuple[str, ...],
    labels: np.ndarray,
    class_names: tuple[str, ...],
    groups: np.ndarray | None,
    sha256: tuple[str, ...],
    folds: np.ndarray,
    prediction: np.ndarray,
    probability: np.ndarray,
    metrics: dict[str, np.ndarray],
) -> xr.Dataset:
    """Predictions, folds and accuracies with the coordinates of the README's "Results schema".

    ``prediction`` has shape (init, layer, repeat, image), ``probability`` (init, layer, repeat,
    image, class), each metric (init, layer).
    """
    n_images = len(relpaths)
    coords = {
        S.INIT: (S.INIT, inits),
        "kind": (S.INIT, [S.PRETRAINED if i == S.PRETRAINED else "random" for i in inits]),
        "seed": (S.INIT, np.array(seeds, dtype=np.int64)),
        S.LAYER: (S.LAYER, [layer.name for layer in layers]),
        "module": (S.LAYER, [layer.module for layer in layers]),
        "depth": (S.LAYER, np.array([layer.depth for layer in layers], dtype=np.int64)),
        "relative_depth": (S.LAYER, np.array([layer.relative_depth for layer in layers])),
        "width": (S.LAYER, np.array([layer.width for layer in layers], dtype=np.int64)),
        "params_to_layer": (S.LAYER, np.array([layer.params_to_layer for layer in layers], dtype=np.int64)),
        S.IMAGE: (S.IMAGE, np.arange(n_images, dtype=np.int64)),
        "label": (S.IMAGE, np.asarray(labels, dtype=np.int64)),
        "path": (S.IMAGE, [displayable(p) for p in relpaths]),
        "group": (S.IMAGE, list(groups) if groups is not None else [""] * n_images),
        "sha256": (S.IMAGE, list(sha256)),
        S.CLASS: (S.CLASS, list(class_names)),
        S.REPEAT: (S.REPEAT, np.arange(folds.shape[0], dtype=np.int64)),
    }
    dims4 = (S.INIT, S.LAYER, S.REPEAT, S.IMAGE)
    data = {
        "prediction": (dims4, prediction.astype(np.int16), {"description": "out-of-fold predicted class index"}),
        "probability": (
            (*dims4, S.CLASS),
            probability.astype(np.float32),
            {"description": "out-of-fold class probabilities of the probe"},
        ),
        "fold": ((S.REPEAT, S.IMAGE), folds.astype(np.int16), {"description": "CV fold of each image"}),
    }
    descriptions = {
        "accuracy": "out-of-fold probe accuracy, mean over CV repeats",
        "balanced_accuracy": "mean recall over classes, mean over CV repeats",
        "macro_f1": "mean F1 over classes, mean over CV repeats",
    }
    for name, values in metrics.items():
        data[name] = ((S.INIT, S.LAYER), values, {"description": descriptions[name]})
    return xr.Dataset(data, coords=coords)


def gain_dataset(layer_names: list[str], random_inits: list[str], boot, tests: dict, effects, trend, sweet) -> xr.Dataset:
    """Gain, its interval, tests, corrections, effect sizes, depth trend and sweet spot.

    Arguments are the outputs of :mod:`layergain.stats` for all layers at once.
    """
    bound = {S.BOUND: list(S.BOUNDS)}
    lay = (S.LAYER,)
    ci = (S.LAYER, S.BOUND)
    boot_attrs = boot.attrs()
    data = {
        "accuracy_random_mean": (lay, boot.accuracy_rand, {"description": "mean accuracy of the random seeds"}),
        "accuracy_pretrained_ci": (ci, boot.accuracy_pre_ci, boot_attrs),
        "accuracy_random_mean_ci": (ci, boot.accuracy_rand_ci, boot_attrs),
        "gain": (lay, boot.gain, {"description": "accuracy(pretrained) - mean_s accuracy(random_s)"}),
        "gain_ci": (ci, boot.gain_ci, boot_attrs),
        "relative_gain": (
            lay,
            boot.relative_gain,
            {"description": "gain / (1 - mean random accuracy): share of the random error removed"},
        ),
        "relative_gain_ci": (ci, boot.relative_gain_ci, boot_attrs),
        "gain_boot": ((S.BOOT, S.LAYER), boot.gain_draws.astype(np.float32), boot_attrs),
        "gain_p": (lay, tests["signflip"].pvalue, tests["signflip_attrs"]),
        "gain_p_holm": (lay, tests["p_holm"], {"correction": "holm", "of": "gain_p"}),
        "gain_p_bh": (lay, tests["p_bh"], {"correction": "fdr_bh", "of": "gain_p"}),
        "gain_ttest_p": (lay, tests["ttest"].pvalue, {"test": "Nadeau-Bengio corrected resampled t-test over CV folds"}),
        "gain_ttest_p_holm": (lay, tests["ttest_p_holm"], {"correction": "holm", "of": "gain_ttest_p"}),
        "mcnemar_p": (
            (S.LAYER, S.INIT, S.REPEAT),
            tests["mcnemar"].pvalue,
            {"test": "exact McNemar, pretrained vs each random seed (statsmodels)"},
        ),
        "gain_effect_size": (lay, effects.cohen_h, {"effect_size": "Cohen's h of the two accuracies"}),
        "gain_effect_size_paired": (lay, effects.cohen_dz, {"effect_size": "Cohen's d_z of per-image differences"}),
        "gain_effect_size_dav": (lay, effects.cohen_dav, {"effect_size": "Cohen's d_av"}),
    }
    if sweet is not None:
        data["sweet_spot_p"] = (lay, sweet.pvalue, {"test": "one-sided paired sign-flip, layer below best"})
        data["sweet_spot_p_holm"] = (lay, sweet.pvalue_holm, {"correction": "holm", "of": "sweet_spot_p"})
    coords = {S.LAYER: layer_names, S.INIT: random_inits, **bound, S.BOOT: np.arange(boot.n_boot)}
    ds = xr.Dataset(data, coords=coords)
    if trend is not None:
        ds["gain_trend_slope"] = xr.DataArray(trend.slope, attrs=trend.attrs())
        ds["gain_trend_slope_ci"] = xr.DataArray(trend.slope_ci, dims=(S.BOUND,), attrs=trend.attrs())
        ds["gain_trend_slope_p"] = xr.DataArray(trend.slope_pvalue)
        ds["gain_trend_spearman_rho"] = xr.DataArray(trend.spearman_rho)
        ds["gain_trend_spearman_p"] = xr.DataArray(trend.spearman_pvalue)
    else:
        why = {"nan_reason": f"a depth trend needs at least 3 layers, the run has {len(layer_names)}"}
        ds["gain_trend_slope"] = xr.DataArray(np.nan, attrs=why)
        ds["gain_trend_slope_ci"] = xr.DataArray(np.full(2, np.nan), dims=(S.BOUND,), attrs=why)
        for name in ("gain_trend_slope_p", "gain_trend_spearman_rho", "gain_trend_spearman_p"):
            ds[name] = xr.DataArray(np.nan, attrs=why)
    if sweet is None:  # a single layer is its own best layer and sweet spot
        ds["sweet_spot"] = xr.DataArray(layer_names[0], attrs={"note": "one layer: nothing to compare"})
        ds["best_layer"] = xr.DataArray(layer_names[0])
        return ds
    ds["sweet_spot"] = xr.DataArray(layer_names[sweet.layer], attrs=sweet.attrs())
    ds["best_layer"] = xr.DataArray(layer_names[sweet.best_layer])
    return ds
