"""Assemble labelled results (xarray) from the stages' arrays."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from layergain import schema as S

__all__ = ["displayable", "probe_dataset", "run_dataset", "with_statistics"]

#: Variables of a run that the statistics do not make (the probes' and the similarity's).
PROBE_VARIABLES = ("prediction", "probability", "fold", "accuracy", "balanced_accuracy", "macro_f1")
SIMILARITY_PREFIXES = ("cka_", "svcca", "pwcca")


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


def run_dataset(probes: xr.Dataset, statistics: xr.Dataset, similarity: xr.Dataset, inits: list[str]) -> xr.Dataset:
    """A run's results: its probes, statistics and similarity in one Dataset, ``init`` in run order.

    The attrs are left empty (:func:`layergain.results.provenance.run_attrs` gives them).
    """
    results = xr.merge([probes, statistics, similarity], combine_attrs="drop_conflicts", join="outer")
    results = results.reindex({S.INIT: inits})
    results.attrs = {}
    return results


def with_statistics(results: xr.Dataset, statistics: xr.Dataset) -> xr.Dataset:
    """A run's results with its statistics replaced by ``statistics`` (probes and similarity kept).

    Every variable the statistics made, by this or an earlier version (e.g. the former bootstrap
    draws and their ``boot`` coordinate), is dropped first. The attrs are the run's.
    """
    kept = [v for v in results.data_vars if v in PROBE_VARIABLES or v.startswith(SIMILARITY_PREFIXES)]
    base = results[kept].drop_vars(S.BOOT, errors="ignore")
    merged = xr.merge([base, statistics], combine_attrs="override", join="outer")
    return merged.reindex({S.INIT: [str(i) for i in results[S.INIT].values]})
