"""Assemble labelled results (xarray) from the stages' arrays."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from layergain import schema as S

__all__ = ["displayable", "per_image_correct", "probe_dataset", "run_dataset", "with_statistics"]

#: Variables of a run that the statistics do not make (the probes', the similarity's, the
#: transferability estimators' and their tau table's).
#: What the leakage guard stores per image (kept by :func:`with_statistics`).
GUARD_VARIABLES = ("duplicate_cluster",)
PROBE_VARIABLES = ("prediction", "probability", "fold", "accuracy", "balanced_accuracy", "macro_f1")
SIMILARITY_PREFIXES = ("cka_", "svcca", "pwcca", "mutual_knn_", "angular_shape_", "rsa_")
TRANSFERABILITY_PREFIXES = ("transfer_", "tau_")


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
    readout: str | None = None,
) -> xr.Dataset:
    """Predictions, folds and accuracies with the coordinates of the README's "Results schema".

    ``prediction`` has shape (init, layer, repeat, image), ``probability`` (init, layer, repeat,
    image, class), each metric (init, layer). ``width`` is each layer's width under ``readout``
    (None: the layer's default readout).
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
        "width": (S.LAYER, np.array([layer.width if readout is None else layer.width_for(readout)
                                     for layer in layers], dtype=np.int64)),
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


def run_dataset(
    probes: xr.Dataset,
    statistics: xr.Dataset,
    similarity: xr.Dataset,
    inits: list[str],
    *,
    similarity_inference: xr.Dataset | None = None,
    transferability: xr.Dataset | None = None,
    tau: xr.Dataset | None = None,
) -> xr.Dataset:
    """A run's results: its probes, statistics, similarity (with its inference) and transferability
    estimators with their tau table in one Dataset, ``init`` in run order.

    The transferability estimators become ``transfer_<name>(init, layer)`` and the tau table's
    variables ``tau_*(estimator[, bound])``. What a stage's Dataset attrs say of how it was made
    moves onto its variables (``method``, ``n_boot``, ``confidence``, ``seed``, …), so that it
    travels with them through ``layergain stats``. The run's attrs are left empty
    (:func:`layergain.results.provenance.run_attrs` gives them).

    Raises
    ------
    ValueError
        Two stages name a variable alike (a programming error: no stage may overwrite another's).
    """
    parts = [probes, statistics, similarity]
    if similarity_inference is not None:
        parts.append(_attrs_onto_variables(similarity_inference, "similarity_inference_"))
    if transferability is not None:
        parts.append(_transferability(transferability))
    if tau is not None:
        parts.append(_tau(tau))
    _check_disjoint(parts)
    results = xr.merge(parts, combine_attrs="drop_conflicts", join="outer")
    results = results.reindex({S.INIT: inits})
    results.attrs = {}
    return results


def per_image_correct(probes: xr.Dataset) -> xr.DataArray:
    """Whether each out-of-fold prediction was right, mean over CV repeats: dims (init, layer, image)."""
    correct = (probes["prediction"] == probes["label"]).astype(np.float64)
    return correct.mean(S.REPEAT).transpose(S.INIT, S.LAYER, S.IMAGE)


def _check_disjoint(parts: list[xr.Dataset]) -> None:
    seen: dict[str, int] = {}
    for k, ds in enumerate(parts):
        for name in ds.data_vars:
            if name in seen:
                raise ValueError(f"variable {name!r} is made by two stages of a run (parts {seen[name]} and {k}); "
                                 "rename one of them.")
            seen[str(name)] = k


def _attrs_onto_variables(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    """``ds`` with its attrs (``prefix`` taken off their names) added to every variable's attrs."""
    ds = ds.copy()
    shared = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in ds.attrs.items()}
    for name in ds.data_vars:
        ds[name].attrs = {**shared, **ds[name].attrs}
    ds.attrs = {}
    return ds


def _transferability(estimates: xr.Dataset) -> xr.Dataset:
    """The estimators as ``transfer_<name>``, with the seed and the list of estimators on each."""
    ds = _attrs_onto_variables(estimates, "transferability_")
    return ds.rename({name: TRANSFERABILITY_PREFIXES[0] + str(name) for name in ds.data_vars})


def _tau(tau: xr.Dataset) -> xr.Dataset:
    """The tau table as ``tau_*``; its attrs (method, draws, level, what is resampled) on every variable."""
    ds = _attrs_onto_variables(tau, "")
    return ds.rename({name: name if str(name).startswith("tau_") else f"tau_{name}" for name in ds.data_vars})


def with_statistics(results: xr.Dataset, statistics: xr.Dataset) -> xr.Dataset:
    """A run's results with its statistics replaced by ``statistics`` (probes, similarity,
    transferability and the leakage guard's variables kept).

    Every variable the statistics made, by this or an earlier version (e.g. the former bootstrap
    draws and their ``boot`` coordinate), is dropped first. The attrs are the run's.
    """
    kept = [v for v in results.data_vars
            if v in PROBE_VARIABLES + GUARD_VARIABLES
            or str(v).startswith(SIMILARITY_PREFIXES + TRANSFERABILITY_PREFIXES)]
    base = results[kept].drop_vars(S.BOOT, errors="ignore")
    merged = xr.merge([base, statistics], combine_attrs="override", join="outer")
    return merged.reindex({S.INIT: [str(i) for i in results[S.INIT].values]})
