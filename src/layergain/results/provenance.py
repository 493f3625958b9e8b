"""How a run was made: the attrs of its results (data, networks, settings, software, time).

Every value survives a netCDF round trip (str, numbers, 1-D numeric lists; JSON text written by
:func:`layergain.results.io.encode_attr` for the rest), so a results file says by itself where its
numbers came from.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from layergain import __version__
from layergain.results.io import decode_attr, encode_attr

__all__ = ["PACKAGES", "backbones_attrs", "comparison_attrs", "package_versions", "restatistics_attrs", "run_attrs"]

#: Distributions whose versions a results file records (beside Python and layergain).
PACKAGES: tuple[str, ...] = (
    "torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "statsmodels", "pingouin", "xarray", "netCDF4",
)


def package_versions() -> dict[str, str]:
    """Versions of Python, layergain and every distribution of :data:`PACKAGES` ("" where not installed)."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "layergain": __version__}
    for dist in PACKAGES:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = ""
    return out


def describe_readout(readout: str) -> str:
    """One phrase of what ``readout`` computes (for the attrs and the report's Methods)."""
    from layergain.models.readouts import describe_readout as describe

    return describe(readout)


def describe_baseline(baseline: str) -> str:
    """One phrase of what the random networks of ``baseline`` are (for the attrs and the Methods)."""
    from layergain.config import BASELINE_METHODS

    return BASELINE_METHODS.get(baseline, f"random baseline {baseline!r} (as the features' metadata names it)")


def _engine_attr(engines: Mapping[str, str]) -> str:
    """The extraction engine that ran: one name, or per network where a faster one fell back to eager."""
    names = set(engines.values())
    return names.pop() if len(names) == 1 else encode_attr(dict(engines))


def run_attrs(
    config: Any,
    image_set: Any,
    card: Any,
    *,
    weights_source: str,
    weights_sha256: str,
    mean: Sequence[float],
    std: Sequence[float],
    engines: Mapping[str, str],
    extraction_threads: int,
    probe: Any,
    not_converged: int,
    seeds: Sequence[int],
    timings: Mapping[str, float],
    readout: str = "avg",
    baseline: str = "default",
    external: Any = None,
) -> dict[str, Any]:
    """The attrs of one run's results (one configuration: one readout, one random baseline).

    With ``external`` (the :class:`~layergain.features.external.ExternalFeatures` of a run from
    features computed elsewhere) the backbone, image size and readout are those its metadata
    names (else ``"unknown"``/0), and ``features_source`` / ``features_meta`` record the file.

    Parameters
    ----------
    config : RunConfig
        The run's settings (a dataclass; ``quiet`` and ``progress`` are left out of ``config``).
    image_set : ImageSet
        The image set the run used.
    card : DataCard or None
        Its data card, if one was found.
    weights_source, weights_sha256 : str
        Where the pretrained weights came from and their checksum.
    mean, std : sequence of float
        Input normalisation of the backbone.
    engines : mapping of str to str
        The extraction engine that ran, per network (init name -> engine).
    extraction_threads : int
        Torch threads of the extraction.
    probe : ProbeSettings
        Settings of the linear probes.
    not_converged : int
        Probe fits that did not converge.
    seeds : sequence of int
        Seeds of the random networks.
    timings : mapping of str to float
        Seconds per stage.

    Returns
    -------
    dict
        Attribute name -> value, each netCDF-safe.
    """
    attrs = {
        "title": f"layergain run: {image_set.name}",
        "dataset": image_set.name,
        "data_source": image_set.source,
        "data_card": card.id if card else "",
        "data_card_summary": card.summary if card else "",
        "data_content_sha256": image_set.content_sha256,
        "n_images": len(image_set),
        "class_names": encode_attr(list(image_set.class_names)),
        "class_counts": encode_attr(image_set.counts),
        "group_column": image_set.group_column or "",
        "n_groups": int(np.unique(image_set.groups).size) if image_set.groups is not None else 0,
        "skipped_images": encode_attr(list(image_set.skipped)),
        "image_formats": encode_attr(image_set.formats),
        "max_per_class": config.max_per_class or 0,
        "backbone": config.model,
        "weights_source": weights_source,
        "weights_sha256": weights_sha256,
        "input_mean": list(mean),
        "input_std": list(std),
        "image_size": config.image_size,
        "resize": "whole image, bicubic, antialiased; any mode converted to RGB",
        "readout": readout,
        "readout_description": describe_readout(readout) if external is None else "",
        "feature_engine": _engine_attr(engines),
        "extraction_threads": extraction_threads,
        "probe": probe.describe(),
        "probe_C": probe.C,
        "probe_not_converged": not_converged,
        "folds": config.folds,
        "repeats": config.repeats,
        "cv": ("StratifiedGroupKFold" if image_set.groups is not None else "StratifiedKFold") + ", shuffled",
        "seeds": list(seeds),
        "baseline": baseline,
        "random_init": describe_baseline(baseline),
        "seed": config.seed,
        "n_draws": config.draws,
        "margin": config.margin,
        "statistics_target": config.target,
        "confidence": config.confidence,
        "versions": encode_attr(package_versions()),
        "command": config.command or " ".join(sys.argv),
        "config": encode_attr({k: v for k, v in asdict(config).items() if k not in ("quiet", "progress")}),
        "timings_s": encode_attr({k: round(v, 2) for k, v in timings.items()}),
        "created": _now(),
    }
    if external is not None:
        meta = external.meta
        attrs.update({
            "features_source": external.source,
            "features_meta": encode_attr(meta),
            "backbone": str(meta.get("model") or "unknown"),
            "image_size": int(meta.get("image_size") or 0),
            "resize": str(meta.get("resize") or "not recorded (features computed elsewhere)"),
            "readout_description": (describe_readout(readout) if meta.get("readout") and readout != "external"
                                    else "a readout not recorded with the features"),
            "feature_engine": "features computed elsewhere",
        })
        if meta.get("weights_source"):
            attrs["weights_source"], attrs["weights_sha256"] = meta["weights_source"], meta.get("weights_sha256", "")
        if meta.get("input_mean"):
            attrs["input_mean"], attrs["input_std"] = list(meta["input_mean"]), list(meta["input_std"])
    return attrs


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def restatistics_attrs(
    attrs: Mapping[str, Any], settings: Mapping[str, Any], seconds: float, command: str | None = None
) -> dict[str, Any]:
    """The attrs of a run whose statistics were recomputed (``layergain stats``).

    Parameters
    ----------
    attrs : mapping
        The run's attrs as read from its results.nc.
    settings : mapping
        The statistics' ``draws``, ``margin``, ``confidence`` and ``target``.
    seconds : float
        How long the statistics took (replaces ``statistics`` in ``timings_s``).
    command : str, default=None
        The command line recorded (None: ``sys.argv``).

    Returns
    -------
    dict
        The run's attrs with the statistics settings, ``statistics_recomputed`` (by which version and
        command) and the timings updated; the former bootstrap counts dropped.
    """
    timings = decode_attr(attrs.get("timings_s", ""), {})
    timings["statistics"] = round(seconds, 2)
    command = " ".join(sys.argv) if command is None else command
    return {
        **{k: v for k, v in attrs.items() if k not in ("n_boot", "n_permutations")},
        "n_draws": settings["draws"], "margin": settings["margin"], "confidence": settings["confidence"],
        "statistics_target": settings["target"],
        "statistics_recomputed": f"from the stored predictions by layergain {__version__} "
        f"({command or 'restatistics'})",
        "timings_s": encode_attr(timings),
    }


def comparison_attrs(runs: Sequence[Any], comparison: Any, *, deep_from: float, seed: int) -> dict[str, Any]:
    """The attrs of a comparison of runs (``comparison.nc``).

    Parameters
    ----------
    runs : sequence of xarray.Dataset
        The compared runs' results, as read from their files.
    comparison : SetComparison
        The result of :func:`layergain.stats.compare_sets` (its own attrs come first).
    deep_from : float
        Relative depth from which layers count as deep.
    seed : int
        Seed of the Monte Carlo draws.

    Returns
    -------
    dict
        The comparison's settings, backbone, seeds, each run's data, package versions, command and time.
    """
    first = runs[0]
    names = [ds.attrs["dataset"] for ds in runs]
    return {
        **comparison.attrs(),
        "title": "layergain comparison: " + ", ".join(names),
        "backbone": first.attrs["backbone"],
        "weights_sha256": first.attrs["weights_sha256"],
        "seeds": [int(s) for s in first["seed"].values[first["kind"].values == "random"]],
        "deep_min_relative_depth": deep_from,
        "resampling_unit": encode_attr(dict(zip(names, comparison.unit_kind))),
        "n_units": encode_attr(dict(zip(names, comparison.units))),
        "seed": seed,
        "runs": encode_attr([
            {"dataset": ds.attrs["dataset"], "data_card": ds.attrs.get("data_card", ""),
             "data_card_summary": ds.attrs.get("data_card_summary", ""), "n_images": int(ds.attrs["n_images"]),
             "data_content_sha256": ds.attrs.get("data_content_sha256", ""), "created": ds.attrs.get("created", "")}
            for ds in runs
        ]),
        "versions": encode_attr(package_versions()),
        "command": " ".join(sys.argv),
        "created": _now(),
    }


def configurations_attrs(runs: Sequence[Any], names: Sequence[str], comparison: Any, *, seconds: float
                         ) -> dict[str, Any]:
    """The attrs of a paired comparison of configurations of one image set (``configurations.nc``).

    Parameters
    ----------
    runs : sequence of xarray.Dataset
        The configurations' results.
    names : sequence of str
        Their names along ``configuration``.
    comparison : ConfigurationComparison
        The result of :func:`layergain.stats.compare_configurations`.
    seconds : float
        How long the comparison took.
    """
    first = runs[0]
    return {
        "title": f"layergain configurations: {first.attrs.get('dataset')} ({', '.join(names)})",
        "dataset": first.attrs.get("dataset", ""),
        "data_card": first.attrs.get("data_card", ""),
        "data_card_summary": first.attrs.get("data_card_summary", ""),
        "data_content_sha256": first.attrs.get("data_content_sha256", ""),
        "n_images": int(first.attrs.get("n_images", 0)),
        "class_names": first.attrs.get("class_names", "[]"),
        "group_column": first.attrs.get("group_column", ""),
        "folds": first.attrs.get("folds", 0),
        "repeats": first.attrs.get("repeats", 0),
        "seeds": [int(s) for s in first["seed"].values[first["kind"].values == "random"]],
        "design": "paired: every configuration predicts the same images with the same folds",
        "interval": ("variance components of the paired per-image (or per-group) differences and of the seeds' "
                     "spread of each difference (seeds paired by index); generalised pivotal reference"),
        "correction": "minP step-down (max-T) over every pair and layer; Holm beside it",
        "statistics_target": comparison.pretrained,
        "confidence": comparison.confidence,
        "n_draws": comparison.n_draws,
        "resampling_unit": comparison.unit,
        "n_units": comparison.n_units,
        "margin": first.attrs.get("margin", 0.02),
        "runs": encode_attr([
            {"configuration": name, "backbone": ds.attrs.get("backbone", ""),
             "readout": str(ds.attrs.get("readout", ds.attrs.get("pooling", ""))),
             "baseline": ds.attrs.get("baseline", "default"), "weights_sha256": ds.attrs.get("weights_sha256", ""),
             "created": ds.attrs.get("created", "")}
            for name, ds in zip(names, runs)
        ]),
        "versions": encode_attr(package_versions()),
        "command": " ".join(sys.argv),
        "timings_s": encode_attr({"configurations": round(seconds, 2)}),
        "created": _now(),
    }


def backbones_attrs(runs: Sequence[Any], names: Sequence[str], comparison: Any, *, seconds: float
                    ) -> dict[str, Any]:
    """The attrs of backbones side by side on one image set (``backbones.nc``): those of
    :func:`configurations_attrs` with the design, test and correction of
    :func:`layergain.stats.compare_backbones`."""
    attrs = configurations_attrs(runs, names, comparison, seconds=seconds)
    attrs.update({
        "title": f"layergain backbones: {runs[0].attrs.get('dataset')} ({', '.join(names)})",
        "design": ("paired: every backbone predicts the same images with the same folds; backbones are compared by "
                   "relative depth and by parameters up to the layer, not layer by layer"),
        "interval": ("variance components of the paired per-image (or per-group) differences of pretrained accuracy"
                     + (" and the random twins' spread at both layers (target draw)"
                        if comparison.pretrained == "draw" else "") + "; generalised pivotal reference"),
        "correction": ("one-sided single-step minP over every layer of the larger backbone (its best layer is chosen "
                       "from the data); conditional on the smaller backbone's sweet spot"),
        "timings_s": encode_attr({"backbones": round(seconds, 2)}),
    })
    return attrs
