"""The probes of a study: every layer of every network, cross-validated, as work units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.parallel import in_order
from layergain.probes.linear import ProbeSettings, cross_val_probe

__all__ = ["StudyProbes", "probe_study"]


@dataclass(frozen=True)
class StudyProbes:
    """Out-of-fold predictions of every network and layer.

    ``prediction``: int64 of shape (n_inits, n_layers, n_repeats, n_images); ``probability``:
    float32 (..., n_classes); ``not_converged``: fits that hit the iteration limit.
    """

    prediction: np.ndarray
    probability: np.ndarray
    not_converged: int
    settings: ProbeSettings


def _probe_unit(unit: tuple):
    """One work unit: read one layer of one network from the store and probe it."""
    store, init, layer, labels, folds, n_classes, settings = unit
    return cross_val_probe(store.layer(init, layer), labels, folds, n_classes=n_classes, settings=settings)


def probe_study(
    store: Any,
    inits: Sequence[str],
    layers: Sequence[str],
    labels: np.ndarray,
    folds: np.ndarray,
    n_classes: int,
    *,
    settings: ProbeSettings,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> StudyProbes:
    """Cross-validated linear probes of every layer of every network, one work unit per (init, layer).

    Parameters
    ----------
    store : FeatureStore
        Gives ``store.layer(init, layer)``, the features of shape (n_images, n_units).
    inits, layers : sequence of str
        The networks and layer names to probe.
    labels : array-like of int of shape (n_images,)
    folds : array-like of int of shape (n_repeats, n_images)
        The same folds for every network.
    n_classes : int
    settings : ProbeSettings
    n_jobs : int, default=1
        joblib processes (or the Dask backend's workers); results are identical to a serial run.
    progress : bool, default=False
        Show a progress bar.
    """
    from tqdm.auto import tqdm

    shape = (len(inits), len(layers), folds.shape[0], len(labels))
    prediction = np.empty(shape, dtype=np.int64)
    probability = np.empty((*shape, n_classes), dtype=np.float32)
    tasks = [(i, j) for i in range(len(inits)) for j in range(len(layers))]
    # Each fit is small and single-threaded; processes use the cores.
    jobs = in_order(_probe_unit, [(store, inits[i], layers[j], labels, folds, n_classes, settings) for i, j in tasks],
                    n_jobs)
    not_converged = 0
    for (i, j), result in tqdm(zip(tasks, jobs), total=len(tasks), desc="probes", unit="layer",
                               disable=not progress, leave=False):
        prediction[i, j], probability[i, j] = result.prediction, result.probability
        not_converged += result.not_converged
    return StudyProbes(prediction, probability, not_converged, settings)
