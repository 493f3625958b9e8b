"""A run's results (results.nc, or the probes' Dataset) -> the inputs of the statistics.

:func:`run_outcomes` reads what :mod:`layergain.stats` needs from a run's Dataset: which
out-of-fold prediction was correct, labels, groups, folds, layer names and depths, the networks.
:func:`run_statistics` gives a run's statistics from them, :func:`check_comparable` says whether
runs can be compared. ``layergain run``, ``layergain stats`` and ``layergain compare`` all read
their statistics' inputs here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.errors import InputValueError

__all__ = ["RunOutcomes", "backbones_differ", "check_comparable", "check_same_images", "run_outcomes",
           "run_statistics", "same_images"]


@dataclass(frozen=True)
class RunOutcomes:
    """The probe outcomes of one run, all networks and layers.

    ``correct``: bool of shape (n_inits, n_layers, n_repeats, n_images), the pretrained network
    first; ``labels`` and ``groups`` (None without groups): (n_images,); ``folds``: (n_repeats,
    n_images); ``layers`` and ``relative_depth``: (n_layers,); ``inits``: the networks' names.
    """

    correct: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None
    folds: np.ndarray
    layers: list[str]
    relative_depth: np.ndarray
    inits: list[str]
    name: str = ""

    @property
    def correct_pre(self) -> np.ndarray:
        """(n_layers, n_repeats, n_images): the pretrained network."""
        return self.correct[0]

    @property
    def correct_rand(self) -> np.ndarray:
        """(n_layers, n_seeds, n_repeats, n_images): the random networks."""
        return np.moveaxis(self.correct[1:], 0, 1)

    def probe_outcomes(self):
        """As :class:`layergain.stats.ProbeOutcomes`, the input of :func:`layergain.stats.compare_sets`."""
        from layergain.stats import ProbeOutcomes

        return ProbeOutcomes(
            correct_pre=self.correct_pre, correct_rand=self.correct_rand, labels=self.labels, groups=self.groups,
            name=self.name,
        )


def run_outcomes(ds: xr.Dataset) -> RunOutcomes:
    """The statistics' inputs of a run, from its results (loaded or as the probes built them).

    Parameters
    ----------
    ds : xarray.Dataset
        With ``prediction`` (init, layer, repeat, image), ``label``, ``group`` ("" everywhere
        without groups), ``fold``, ``kind`` and ``relative_depth``; the pretrained network first.
    """
    kinds = [str(k) for k in ds["kind"].values]
    if kinds[:1] != [S.PRETRAINED] or S.PRETRAINED in kinds[1:]:
        raise InputValueError(f"a run's results hold the pretrained network first and once, got kinds {kinds}.")
    labels = ds["label"].values
    groups = ds["group"].values
    return RunOutcomes(
        correct=ds["prediction"].transpose(S.INIT, S.LAYER, S.REPEAT, S.IMAGE).values == labels,
        labels=labels,
        groups=groups if (groups != "").all() else None,
        folds=ds["fold"].values,
        layers=[str(n) for n in ds[S.LAYER].values],
        relative_depth=ds["relative_depth"].values,
        inits=[str(i) for i in ds[S.INIT].values],
        name=str(ds.attrs.get("dataset", "")),
    )


def run_statistics(
    outcomes: RunOutcomes, *, confidence: float, margin: float, draws: int, target: str, seed: Any
) -> xr.Dataset:
    """:func:`layergain.stats.gain_statistics` of a run, labelled with its random networks' names.

    ``seed`` is the run's "statistics" stream (:func:`layergain.config.streams`); the Dataset's own
    attrs are dropped (the run's attrs record the settings).
    """
    from layergain import stats

    ds = stats.gain_statistics(
        outcomes.correct_pre, outcomes.correct_rand, outcomes.labels, outcomes.groups, outcomes.folds,
        layers=outcomes.layers, relative_depth=outcomes.relative_depth, confidence=confidence, margin=margin,
        n_draws=draws, pretrained=target, seed=np.random.default_rng(seed),
    )
    ds = ds.assign_coords({S.INIT: outcomes.inits[1:]}) if S.INIT in ds.dims else ds
    ds.attrs = {}
    return ds


def check_comparable(datasets: Sequence[xr.Dataset], runs: Sequence[Any]) -> None:
    """Raise unless the runs are of different image sets with one backbone, weights, layers and seeds.

    ``runs`` name the runs in messages (their paths), in the order of ``datasets``.
    """
    first = datasets[0]
    names = [ds.attrs.get("dataset") for ds in datasets]
    if len(set(names)) < len(names):
        raise InputValueError(f"two runs are of the same image set ({names}); compare different sets.")
    for ds, path in zip(datasets[1:], runs[1:]):
        for key in ("backbone", "weights_sha256"):
            if ds.attrs.get(key) != first.attrs.get(key):
                raise InputValueError(
                    f"run {path} has {key}={ds.attrs.get(key)!r} but the first run has {first.attrs.get(key)!r}; "
                    "compare runs of the same backbone and weights."
                )
        if list(ds[S.LAYER].values) != list(first[S.LAYER].values) or list(ds[S.INIT].values) != list(first[S.INIT].values):
            raise InputValueError(
                f"run {path} has other layers or random seeds than the first run; rerun with the same `model`, "
                "`layers` and `seeds`."
            )


def same_images(datasets: Sequence[xr.Dataset]) -> bool:
    """Whether every run is of the same images (the same ``data_content_sha256``: checksums, labels,
    groups, in order): their comparison is paired (configurations), not across sets."""
    digests = {ds.attrs.get("data_content_sha256") for ds in datasets}
    return len(digests) == 1 and None not in digests and "" not in digests


def configuration_label(ds: xr.Dataset) -> str:
    """A run's configuration as a name: ``<backbone>/<readout>_<baseline>`` (backbone left out by
    :func:`check_same_images` where all share it)."""
    readout = str(ds.attrs.get("readout", ds.attrs.get("pooling", "avg"))).replace(":", "-")
    return f"{ds.attrs.get('backbone', '')}/{readout}_{ds.attrs.get('baseline', 'default')}"


def _run_name(run: Any) -> str:
    path = Path(run)
    return path.parent.name if path.suffix == ".nc" else path.name


def backbones_differ(datasets: Sequence[xr.Dataset]) -> bool:
    """Whether the runs are of more than one backbone (architecture or pretrained weights)."""
    return len({(ds.attrs.get("backbone", ""), ds.attrs.get("weights_sha256", "")) for ds in datasets}) > 1


def check_same_images(datasets: Sequence[xr.Dataset], runs: Sequence[Any], *, same_layers: bool = True) -> list[str]:
    """Raise unless the runs are configurations of one image set: the same images, folds and seeds
    (and, with ``same_layers``, number of layers), and distinct configurations. Returns their names
    (see :func:`configuration_label`)."""
    first = datasets[0]
    if not same_images(datasets):
        raise InputValueError(
            "runs compared as configurations must be of the same images (data_content_sha256 differs); "
            "runs of different image sets are compared with `layergain compare` across sets."
        )
    for ds, path in zip(datasets[1:], runs[1:]):
        if ds.sizes.get(S.INIT) != first.sizes.get(S.INIT) or (
                same_layers and ds.sizes.get(S.LAYER) != first.sizes.get(S.LAYER)):
            raise InputValueError(
                f"run {path} has {ds.sizes.get(S.LAYER)} layers and {ds.sizes.get(S.INIT)} networks, the first run "
                f"{first.sizes.get(S.LAYER)} and {first.sizes.get(S.INIT)}; configurations need as many layers "
                "and seeds."
            )
        if not np.array_equal(ds["fold"].values, first["fold"].values):
            raise InputValueError(
                f"run {path} used other folds than the first run; rerun with the same `seed`, `folds` and `repeats`."
            )
    labels = [configuration_label(ds) for ds in datasets]
    if len({lab.split("/", 1)[0] for lab in labels}) == 1:
        labels = [lab.split("/", 1)[1] for lab in labels]
    if len(set(labels)) < len(labels) and backbones_differ(datasets):
        # one architecture with other weights (or other constructor arguments): the run folders name them
        labels = [_run_name(r) for r in runs]
    if len(set(labels)) < len(labels):
        raise InputValueError(f"two runs have the same configuration ({labels}); compare different configurations.")
    return labels
