"""The study, composed: image set → networks → features → probes / similarity → statistics →
results → report. Only composition, timing and publishing; each step's logic lives in its stage
(README, "Architecture"). The CLI is a thin layer over these functions.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import xarray as xr

from layergain import __version__
from layergain import schema as S
from layergain.config import DEFAULT_OUT, CompareConfig, RunConfig, StatsConfig
from layergain.config import streams as config_streams
from layergain.errors import InputValueError
from layergain.data import ImageSet, find_data_card, load_image_set
from layergain.extraction import external_study, extract_study, extraction_threads
from layergain.features import FeatureCache, default_cache_dir
from layergain.parallel import Executor, executor
from layergain.probes import ProbeSettings, check_foldable, classification_metrics, make_folds, probe_study
from layergain.results.build import probe_dataset, run_dataset, with_statistics
from layergain.results.io import load_results
from layergain.results.outcomes import check_comparable, run_outcomes, run_statistics
from layergain.results.provenance import comparison_attrs, restatistics_attrs, run_attrs
from layergain.results.publish import check_writable, publish
from layergain.similarity import study_similarity

__all__ = ["DEFAULT_OUT", "CompareConfig", "RunConfig", "RunOutput", "StatsConfig", "compare", "extract",
           "restatistics", "run"]

Log = Callable[[str], None]
_OUT = ("output path", "`out=DIR`")
_CACHE = ("feature cache", "`cache=DIR`")


def _silent(message: str) -> None:
    """The log of a call without one."""


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t


@dataclass
class RunOutput:
    """Where a run wrote its files, and its results (as read back from the results file).

    A run of several configurations (readouts × baselines) has one :class:`RunOutput` per
    configuration in ``runs`` (by :func:`configuration_name`); ``results`` is then the first's.
    """

    out: Path
    results: xr.Dataset
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    runs: dict[str, RunOutput] = field(default_factory=dict)


def run(config: RunConfig, log: Log | None = None) -> RunOutput:
    """Run the whole study on one image set: features, probes, similarity, statistics, report.

    Writes ``results.nc`` and the report built from it (``report.md``, ``report.html``,
    ``figures/``, ``tables/``) through a staging folder: an error or an interruption leaves
    ``out`` as it was.

    Parameters
    ----------
    config : RunConfig
        The run's settings (validated first).
    log : callable, default=None
        Called with one line per step (None: silent).

    Returns
    -------
    RunOutput
        The output folder, the results as read back from results.nc, the files, seconds per stage.

    Raises
    ------
    LayergainError
        A setting out of range, an unusable image set, an unwritable ``out`` or ``cache`` (all
        found before any work).
    """
    log = log or _silent
    config.validate()
    if config.readout and not config.features:
        from layergain.models.readouts import parse_readouts

        parse_readouts(config.readout, "readout")  # the spelling, before any work; layers are checked at extraction
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image_set = _image_set(config)
    check_foldable(image_set.labels, image_set.groups, config.folds, image_set.class_names)
    card = find_data_card(image_set, config.data_card)
    out = config.out_dir(image_set.name)
    check_writable(out, *_OUT)
    cache = _cache(config) if not config.features else None
    log(
        f"{image_set.name}: {len(image_set)} images, {len(image_set.class_names)} classes"
        + (f", groups from {image_set.group_column!r}" if image_set.groups is not None else "")
    )
    timings["load"] = time.perf_counter() - t0
    with _timed(timings, "leakage"):
        image_set, guard = _duplicates(config, image_set, log)
    with executor(config.workers, config.scheduler, config.jobs) as ex:
        log(f"work units on {ex.description}")
        return _run_stages(config, image_set, card, out, cache, timings, t0, ex, log, guard)


@dataclass
class _Guard:
    """What the leakage guard found (:mod:`layergain.leakage`), for the results."""

    duplicates: object | None = None  # DuplicateReport, None where there are no images to read
    grouped: bool = False
    order: object | None = None  # OrderCheck, None where the set has groups
    note: str = ""
    manifest_groups: bool = False  # the set came with patient or slide ids

    def attrs(self) -> dict:
        out = {"duplicates_grouped": int(self.grouped), "leakage_note": self.note}
        if self.duplicates is not None:
            out.update(self.duplicates.attrs())
            out["duplicates_summary"] = self.duplicates.summary() + (
                " Each cluster was made a group, so that no cluster spans two folds." if self.grouped
                and self.duplicates.clusters else "")
        if self.order is not None:
            out.update(self.order.attrs())
            out["order_check_summary"] = self.order.summary()
        return out


def _duplicates(config: RunConfig, image_set: ImageSet, log: Log) -> tuple[ImageSet, _Guard]:
    """Near-duplicates of the set, made groups unless ``keep_duplicates_apart`` (see :class:`RunConfig`)."""
    manifest = image_set.groups is not None
    if config.features:
        return image_set, _Guard(note="near-duplicates not searched: features computed elsewhere (no images read)",
                                 manifest_groups=manifest)
    from layergain.leakage import find_duplicates, group_duplicates

    report = find_duplicates(image_set, threshold=config.duplicate_threshold)
    log(f"near-duplicates: {report.n_duplicated} images in {len(report.clusters)} clusters")
    if config.keep_duplicates_apart or not report.clusters:
        return image_set, _Guard(duplicates=report, manifest_groups=manifest)
    groups = group_duplicates(image_set.groups, report)
    column = image_set.group_column or "near-duplicate clusters"
    grouped = replace(image_set, groups=groups, group_column=column)
    check_foldable(grouped.labels, grouped.groups, config.folds, grouped.class_names)
    return grouped, _Guard(duplicates=report, grouped=True, manifest_groups=manifest)


def _order_check(config: RunConfig, image_set: ImageSet, nets, guard: _Guard, streams, manifest_groups: bool
                 ) -> None:
    """The hidden-structure check of a set without patient or slide ids, on the pretrained network's
    middle probe layer (first configuration), into ``guard``."""
    if manifest_groups:
        return
    from layergain.leakage import order_check

    layer = nets.layers[len(nets.layers) // 2].name
    with _one_torch_thread():
        guard.order = order_check(next(iter(nets.stores.values())).layer(S.PRETRAINED, layer), image_set.labels,
                                  folds=config.folds, seed=np.random.default_rng(_fresh(streams, "leakage")))


def _run_stages(config, image_set, card, out, cache, timings, t0, ex: Executor, log: Log,
                guard: _Guard | None = None) -> RunOutput:
    streams = config_streams(config.seed)
    guard = guard or _Guard(manifest_groups=image_set.groups is not None)
    with _timed(timings, "features"):
        folds = make_folds(
            image_set.labels, image_set.groups, folds=config.folds, repeats=config.repeats,
            seed=np.random.default_rng(_fresh(streams, "folds")),
        )
        if config.features:
            nets, external = external_study(config.features, image_set, log,
                                            subset=config.max_per_class is not None)
            image_set = replace(image_set, sha256=tuple(nets.store.sha256))
        else:
            nets, external = extract_study(config, image_set, cache, ex, log), None
    with _timed(timings, "leakage"):
        _order_check(config, image_set, nets, guard, streams, guard.manifest_groups)
    if guard.order is not None:
        log(f"order check: gap {guard.order.gap:+.3f}, p = {guard.order.p_value:.3g}"
            + (" (flagged)" if guard.order.flagged else ""))
    grid = [(r, b) for r in nets.readouts for b in nets.baselines]
    computed = {}
    for readout, baseline in grid:
        if len(grid) > 1:
            log(f"configuration {configuration_name(readout, baseline)}")
        results = _configuration(
            config, image_set, card, nets, readout, baseline, folds, streams, ex, dict(timings), log, external
        )
        computed[(readout, baseline)] = _with_guard(results, guard)
    # Everything is computed before anything is written: an error above leaves ``out`` as it was.
    if len(grid) == 1:
        files, written = _publish(out, computed[grid[0]], "run", log)
        timings["total"] = time.perf_counter() - t0
        return RunOutput(out=out, results=written, files=files, timings=timings)
    with _timed(timings, "configurations"):
        paired = _compare_configurations(list(computed.values()), [configuration_name(*c) for c in grid],
                                         draws=config.draws, confidence=config.confidence, target=config.target,
                                         seed=_fresh(streams, "statistics"))
    from layergain.results.configurations import robustness_of_run

    runs = {}
    for (readout, baseline), results in computed.items():
        name = configuration_name(readout, baseline)
        results = xr.merge([results, robustness_of_run(paired, name)], combine_attrs="override")
        files, written = _publish(out / name, results, "run", log)
        runs[name] = RunOutput(out=out / name, results=written, files=files, timings=json_timings(written))
    files, written = _publish(out / CONFIGURATIONS, paired, "configurations", log)
    timings["total"] = time.perf_counter() - t0
    return RunOutput(out=out, results=written, files=[f for r in runs.values() for f in r.files] + files,
                     timings=timings, runs=runs)


#: The folder of a multi-configuration run that holds their paired comparison.
CONFIGURATIONS = "configurations"


def _compare_configurations(datasets: list[xr.Dataset], names: list[str], *, draws: int, confidence: float,
                            target: str, seed) -> xr.Dataset:
    """The paired comparison of configurations of one image set (results of runs on the same images)."""
    from layergain import stats
    from layergain.results.configurations import build_configurations
    from layergain.results.provenance import configurations_attrs

    t = time.perf_counter()
    outcomes = [run_outcomes(ds).probe_outcomes() for ds in datasets]
    readouts = [str(ds.attrs.get("readout", ds.attrs.get("pooling", ""))) for ds in datasets]
    backbones = [(ds.attrs.get("backbone"), ds.attrs.get("weights_sha256")) for ds in datasets]
    shared = np.array([[readouts[a] == readouts[b] and backbones[a] == backbones[b] for b in range(len(names))]
                       for a in range(len(names))])
    with _one_torch_thread():
        result = stats.compare_configurations(outcomes, names, shared_pretrained=shared, pretrained=target,
                                              n_draws=draws, confidence=confidence, seed=np.random.default_rng(seed))
    paired = build_configurations(datasets, names, result)
    paired.attrs = configurations_attrs(datasets, names, result, seconds=time.perf_counter() - t)
    return paired


def _compare_backbones(datasets: list[xr.Dataset], names: list[str], *, draws: int, confidence: float,
                       target: str, seed) -> xr.Dataset:
    """Backbones side by side on one image set: each larger one's best layer against each smaller one's sweet spot."""
    from layergain import stats
    from layergain.results.backbones import build_backbones, network_size
    from layergain.results.provenance import backbones_attrs

    t = time.perf_counter()
    outcomes = [run_outcomes(ds).probe_outcomes() for ds in datasets]
    layers = [[str(v) for v in ds[S.LAYER].values] for ds in datasets]
    sweet = [layers[k].index(str(ds["sweet_spot"].values)) if str(ds["sweet_spot"].values) in layers[k] else -1
             for k, ds in enumerate(datasets)]
    with _one_torch_thread():
        result = stats.compare_backbones(outcomes, names, size=[network_size(ds) for ds in datasets], sweet=sweet,
                                         pretrained=target, n_draws=draws, confidence=confidence,
                                         seed=np.random.default_rng(seed))
    side = build_backbones(datasets, names, result)
    side.attrs = backbones_attrs(datasets, names, result, seconds=time.perf_counter() - t)
    return side


def compare_configurations(runs: list[str | Path], out: str | Path, *, draws: int = CompareConfig.draws,
                           confidence: float = CompareConfig.confidence, seed: int = CompareConfig.seed,
                           log: Log | None = None) -> RunOutput:
    """The paired comparison of runs on the same images that differ in readout, baseline or backbone.

    Runs of one backbone (readouts, baselines) are compared layer by layer
    (:func:`layergain.stats.compare_configurations`, ``configurations.nc``); runs whose backbones
    differ have other layers and are set side by side by relative depth and parameters, each
    larger backbone's best layer tested against each smaller one's sweet spot
    (:func:`layergain.stats.compare_backbones`, ``backbones.nc``).

    Parameters
    ----------
    runs : list of str or Path
        Two or more run folders or their results.nc, on the same images (``data_content_sha256``)
        with the same folds and seeds (and, for one backbone, the same layers).
    out : str or Path
        Where to write ``configurations.nc`` or ``backbones.nc`` and its report, staged as in :func:`run`.
    draws, confidence, seed
        As in :class:`CompareConfig`.
    log : callable, default=None
        As in :func:`run`.
    """
    from layergain.results.outcomes import check_same_images

    from layergain.results.outcomes import backbones_differ

    log = log or _silent
    CompareConfig(runs=list(runs), out=str(out), draws=draws, confidence=confidence, seed=seed).validate()
    out = Path(out).expanduser()
    check_writable(out, *_OUT)
    datasets = [load_results(r) for r in runs]
    kind = "backbones" if backbones_differ(datasets) else "configurations"
    names = check_same_images(datasets, runs, same_layers=kind == "configurations")
    log(f"comparing {kind} {', '.join(names)} of {datasets[0].attrs.get('dataset')}")
    t = time.perf_counter()
    target = str(datasets[0].attrs.get("statistics_target", "draw"))
    compared = _compare_backbones if kind == "backbones" else _compare_configurations
    paired = compared(datasets, names, draws=draws, confidence=confidence, target=target,
                      seed=np.random.SeedSequence(seed))
    files, written = _publish(out, paired, kind, log)
    return RunOutput(out=out, results=written, files=files, timings={"total": time.perf_counter() - t})


def _with_guard(results: xr.Dataset, guard: _Guard) -> xr.Dataset:
    """The leakage guard's findings in a run's results: attrs and the per-image cluster id."""
    results.attrs.update(guard.attrs())
    if guard.duplicates is not None:
        results["duplicate_cluster"] = xr.DataArray(
            np.asarray(guard.duplicates.cluster, dtype=np.int32), dims=(S.IMAGE,),
            attrs={"description": "near-duplicate cluster of each image (index into the clusters found; -1: "
                                  "none)", "method": str(guard.duplicates.method)})
    return results


def configuration_name(readout: str, baseline: str) -> str:
    """The folder of one configuration of a run with several: ``<readout>_<baseline>`` (``grid-3_default``)."""
    return f"{readout.replace(':', '-')}_{baseline}"


def json_timings(results: xr.Dataset) -> dict[str, float]:
    """Seconds per stage as recorded in a results file's attrs."""
    from layergain.results.io import decode_attr

    return dict(decode_attr(results.attrs.get("timings_s", "{}")) or {})


def _configuration(config, image_set, card, nets, readout: str, baseline: str, folds, streams, ex: Executor,
                   timings: dict[str, float], log: Log, external=None) -> xr.Dataset:
    """Probes, similarity (with its inference), transferability and statistics of one configuration
    (readout, baseline): its results."""
    from layergain.results.build import per_image_correct
    from layergain.similarity import study_similarity_inference
    from layergain.transferability import study_transferability, tau_table

    def fresh(name: str) -> np.random.SeedSequence:
        return _fresh(streams, name)

    estimator_seed, tau_seed = fresh("transferability").spawn(2)
    store = nets.stores[(readout, baseline)]
    n_classes = len(image_set.class_names)
    with _one_torch_thread():  # numpy/scikit-learn from here on; idle torch workers slow them down
        with _timed(timings, "probes"):
            probes = probe_study(
                store, nets.inits, [layer.name for layer in nets.layers], image_set.labels, folds, n_classes,
                settings=ProbeSettings(C=config.probe_c), n_jobs=ex.n_jobs, progress=config.progress,
            )
            log(f"probes: {len(nets.inits) * len(nets.layers) * folds.shape[0] * config.folds} fits, "
                f"{probes.not_converged} not converged")
            probe_ds = probe_dataset(
                inits=nets.inits, seeds=nets.seeds, layers=nets.layers, relpaths=image_set.relpaths,
                labels=image_set.labels, class_names=image_set.class_names, groups=image_set.groups,
                sha256=image_set.sha256, folds=folds, prediction=probes.prediction, probability=probes.probability,
                metrics=classification_metrics(probes.prediction, image_set.labels, n_classes),
                readout=None if external is not None else readout,
            )
        layer_names = [layer.name for layer in nets.layers]
        with _timed(timings, "similarity"):
            similarity = study_similarity(store, nets.inits, n_jobs=ex.n_jobs, log=log)
        inference = None
        if config.similarity_resamples:  # 0: left out (its cost grows with the cube of the image count)
            with _timed(timings, "similarity_inference"):
                inference = study_similarity_inference(
                    store, nets.inits, layer_names, n_boot=config.similarity_resamples, confidence=config.confidence,
                    seed=np.random.default_rng(fresh("similarity_inference")), n_jobs=ex.n_jobs,
                    progress=config.progress,
                )
        with _timed(timings, "transferability"):
            estimates = study_transferability(store, nets.inits, layer_names, image_set.labels, folds,
                                              seed=np.random.default_rng(estimator_seed), n_jobs=ex.n_jobs)
    with _timed(timings, "statistics"):
        stats = run_statistics(
            run_outcomes(probe_ds), confidence=config.confidence, margin=config.margin, draws=config.draws,
            target=config.target, seed=fresh("statistics"),
        )
    t = time.perf_counter()
    tau = tau_table(estimates, probe_ds["accuracy"], stats["gain"], correct=per_image_correct(probe_ds),
                    confidence=config.confidence, seed=np.random.default_rng(tau_seed))
    timings["transferability"] += time.perf_counter() - t
    log(f"transferability: {len(estimates.data_vars)} estimators, Kendall's tau against accuracy and gain")
    results = run_dataset(probe_ds, stats, similarity, nets.inits, similarity_inference=inference,
                          transferability=estimates, tau=tau)
    results.attrs = run_attrs(
        config, image_set, card, **nets.weights, engines=nets.engines_of(baseline),
        extraction_threads=extraction_threads(config), probe=probes.settings, not_converged=probes.not_converged,
        seeds=nets.seeds[1:], timings=timings, readout=readout, baseline=baseline, external=external,
    )
    return results


def _fresh(streams: dict, name: str) -> np.random.SeedSequence:
    """A copy of the run's stream ``name``: spawning from it (every stage's generators do) leaves the
    run's own stream as it was, so each configuration's numbers are those of a run of it alone."""
    ss = streams[name]
    return np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key, pool_size=ss.pool_size)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """One torch thread for the numpy/scikit-learn stages, where torch was loaded (idle torch
    workers slow them down); nothing where it was not (a run from features computed elsewhere)."""
    if "torch" not in sys.modules:
        yield
        return
    from layergain.features import torch_threads

    with torch_threads(1):
        yield


def extract(config: RunConfig, log: Log | None = None) -> dict[str, int]:
    """Compute and cache the features of the pretrained network and every random seed, nothing else.

    For the forward passes on one machine (a GPU) and :func:`run` elsewhere with the same ``cache``.

    Parameters
    ----------
    config : RunConfig
        The settings; those of the data, the model, the extraction and ``cache`` are used.
    log : callable, default=None
        As in :func:`run`.

    Returns
    -------
    dict of str to int
        The number of images per network (init name).
    """
    log = log or _silent
    config.validate()
    if config.features:
        raise InputValueError("`extract` computes features; `features=PATH` is for `run`. Leave it out.")
    image_set = _image_set(config)
    cache = _cache(config)
    if config.export:
        check_writable(Path(config.export).expanduser().parent, "export path", "`export=PATH`")
    log(f"{image_set.name}: {len(image_set)} images -> {cache.root}")
    with executor(config.workers, config.scheduler, config.jobs) as ex:
        nets = extract_study(config, image_set, cache, ex, log)
    if config.export:
        export_study(nets, image_set, config, Path(config.export).expanduser())
        log(f"exported the features of {len(nets.inits)} networks to {config.export}")
    return {init: len(image_set) for init in nets.inits}


def export_study(nets, image_set: ImageSet, config: RunConfig, path: Path) -> Path:
    """Write the cached features of a study's networks in the layout of
    :mod:`layergain.features.external`, with what ``run(features=path)`` needs to record them."""
    from layergain.features.external import export_features

    if len(nets.stores) > 1:
        raise InputValueError(
            f"`export` writes one configuration, and this extraction has {len(nets.readouts)} readout(s) and "
            f"{len(nets.baselines)} baseline(s); pass one `readout` and one `baseline` with `export`."
        )
    (readout, baseline), store = next(iter(nets.stores.items()))
    layers = nets.layers
    meta = {
        "model": config.model, "readout": readout, "baseline": baseline, "image_size": config.image_size,
        "module": {layer.name: layer.module for layer in layers},
        "relative_depth": {layer.name: layer.relative_depth for layer in layers},
        "params_to_layer": {layer.name: layer.params_to_layer for layer in layers},
        "weights_source": nets.weights["weights_source"], "weights_sha256": nets.weights["weights_sha256"],
        "input_mean": list(nets.weights["mean"]), "input_std": list(nets.weights["std"]),
        "resize": "whole image, bicubic, antialiased; any mode converted to RGB",
        "exported_by": f"layergain {__version__}",
    }
    return export_features(path, image_ids=list(image_set.relpaths), inits=list(nets.inits),
                           layers=[layer.name for layer in layers], read_layer=store.layer, meta=meta,
                           sha256=list(image_set.sha256))


def _image_set(config: RunConfig) -> ImageSet:
    """The run's image set; with ``features``, its labels, groups and ids only (no image is read)."""
    return load_image_set(
        config.data, group_column=config.group_column, max_per_class=config.max_per_class, seed=config.seed,
        skip_bad_images=config.skip_bad_images, images=not config.features,
    )


def _cache(config: RunConfig) -> FeatureCache:
    cache = FeatureCache(config.cache or default_cache_dir())
    check_writable(cache.root, *_CACHE)
    return cache


def restatistics(results: str | Path, out: str | Path | None = None, *, draws: int | None = None,
                 margin: float | None = None, confidence: float | None = None, target: str | None = None,
                 log: Log | None = None) -> RunOutput:
    """Recompute the statistics of a finished run (and its report) from its results.nc alone.

    The stored predictions, folds, labels and groups are all the statistics need; probe and
    similarity variables are kept, every statistics variable is recomputed with the run's seed
    (a run made with these settings stores the same numbers).

    Parameters
    ----------
    results : str or Path
        The run's results.nc, or the folder holding it.
    out : str or Path, default=None
        Where to write results.nc and the report (None: the run's folder), staged as in :func:`run`.
    draws, margin, confidence, target : default=None
        As in :class:`RunConfig`; None keeps the run's (see :class:`StatsConfig`).
    log : callable, default=None
        As in :func:`run`.

    Returns
    -------
    RunOutput
        The output folder, the results as read back, the files and the statistics' seconds.
    """
    log = log or _silent
    path = Path(results).expanduser()
    ds = load_results(path)
    out = Path(out).expanduser() if out is not None else (path if path.is_dir() else path.parent)
    check_writable(out, *_OUT)
    settings = StatsConfig(draws=draws, margin=margin, confidence=confidence, target=target).resolve(ds.attrs)
    t = time.perf_counter()
    stats = run_statistics(run_outcomes(ds), seed=config_streams(int(ds.attrs.get("seed", 0)))["statistics"],
                           **settings)
    seconds = time.perf_counter() - t
    merged = with_statistics(ds, stats)
    merged.attrs = restatistics_attrs(ds.attrs, settings, seconds)
    log(f"statistics of {ds.attrs.get('dataset', path)} recomputed in {round(seconds, 2):.1f} s")
    files, written = _publish(out, merged, "run", log)
    return RunOutput(out=out, results=written, files=files, timings={"statistics": round(seconds, 2)})


def compare(runs: list[str | Path], out: str | Path, *, draws: int = CompareConfig.draws,
            confidence: float = CompareConfig.confidence, alpha: float = CompareConfig.alpha,
            deep_from: float = CompareConfig.deep_from, seed: int = CompareConfig.seed,
            log: Log | None = None) -> RunOutput:
    """Compare the knowledge gain of several runs (image sets) of one backbone.

    Where the runs hold transferability estimators and their tau tables, comparison.nc also holds
    each set's taus and, per estimator, the tau pooled over the sets
    (:func:`layergain.results.comparison.tau_across_sets`); older results compare as before.

    Parameters
    ----------
    runs : list of str or Path
        Two or more run folders or their results.nc: different image sets, the same backbone,
        weights, layers and random seeds.
    out : str or Path
        Where to write ``comparison.nc`` and its report, staged as in :func:`run`.
    draws, confidence, alpha, deep_from, seed
        As in :class:`CompareConfig` (its defaults).
    log : callable, default=None
        As in :func:`run`.

    Returns
    -------
    RunOutput
        The output folder, the comparison as read back, the files and the seconds it took.
    """
    from layergain import stats
    from layergain.results.comparison import build_comparison

    log = log or _silent
    CompareConfig(runs=list(runs), out=str(out), draws=draws, confidence=confidence, alpha=alpha,
                  deep_from=deep_from, seed=seed).validate()
    out = Path(out).expanduser()
    check_writable(out, *_OUT)
    datasets = [load_results(r) for r in runs]
    check_comparable(datasets, runs)
    log(f"comparing {', '.join(ds.attrs['dataset'] for ds in datasets)}")
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    with _one_torch_thread():
        result = stats.compare_sets(
            [run_outcomes(ds).probe_outcomes() for ds in datasets], datasets[0]["relative_depth"].values,
            n_draws=draws, confidence=confidence, alpha=alpha, deep_min_relative_depth=deep_from, seed=rng,
        )
    # the pooled taus' stream is spawned after compare_sets' own: the gains' numbers are those without it
    comparison = build_comparison(datasets, result, seed=rng.spawn(1)[0])
    comparison.attrs = comparison_attrs(datasets, result, deep_from=deep_from, seed=seed)
    files, written = _publish(out, comparison, "comparison", log)
    return RunOutput(out=out, results=written, files=files, timings={"total": time.perf_counter() - t})


def _publish(out: Path, results: xr.Dataset, kind: str, log: Log) -> tuple[list[Path], xr.Dataset]:
    """Write the results file and the report built from it (``kind``: "run" or "comparison") into ``out``."""
    from layergain import report

    if kind == "run":
        return publish(out, results, report.write_report, log=log)
    if kind == "configurations":
        return publish(out, results, report.write_configurations_report, name="configurations.nc", log=log)
    if kind == "backbones":
        return publish(out, results, report.write_backbones_report, name="backbones.nc", log=log)
    return publish(out, results, report.write_comparison_report, name="comparison.nc", log=log)
