"""The study, composed: image set → networks → features → probes / similarity → statistics →
results → report. The CLI is a thin layer over :func:`run`, :func:`extract` and :func:`compare`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from layergain import _interrupt as interrupt
from layergain import schema as S
from layergain.config import DEFAULT_OUT, CompareConfig, RunConfig, StatsConfig
from layergain.config import streams as config_streams
from layergain.data import ImageSet, find_data_card, load_image_set
from layergain.errors import OutputError
from layergain.features import FeatureCache, FeatureStore, default_cache_dir, extract_features, torch_threads
from layergain.features.extract import Extraction
from layergain.models import load_backbone
from layergain.parallel import Executor, executor
from layergain.probes import (
    ProbeSettings,
    check_foldable,
    classification_metrics,
    cross_val_probe,
    make_folds,
)
from layergain.results.build import probe_dataset
from layergain.results.io import load_results, save_results
from layergain.results.outcomes import check_comparable, run_outcomes, run_statistics
from layergain.results.provenance import package_versions, run_attrs
from layergain.similarity import study_similarity

__all__ = ["DEFAULT_OUT", "CompareConfig", "RunConfig", "RunOutput", "StatsConfig", "compare", "extract", "restatistics", "run"]

Log = Callable[[str], None]


@dataclass
class RunOutput:
    """Where a run wrote its files, and its results."""

    out: Path
    results: xr.Dataset
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _check_writable(folder: Path, what: str, option: str) -> None:
    """Fail before any work if ``folder`` (or the nearest existing folder above it) cannot be written.

    Tries what the run will do, creating and removing a hidden folder, since permission bits do
    not tell (root, read-only file systems). Nothing is left behind.
    """
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file; pass a folder with {option}.")
    existing = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("."))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".layergain-check-", dir=existing))
    except OSError as exc:
        raise OutputError(
            f"{what} {folder} is not writable ({exc.strerror or exc} in {existing}); choose another {option}."
        ) from exc


def _check_out_dir(out: Path) -> None:
    _check_writable(out, "output path", "`out=DIR`")


def run(config: RunConfig, log: Log | None = None) -> RunOutput:
    """Run the whole study on one image set and write results, report and figures.

    Loads the image set, extracts the features of the pretrained network and of every random
    seed (cached), probes every layer of every network with cross-validation, measures the
    similarity of pretrained and random layers, computes the statistics of the gain, and writes
    ``results.nc`` with the report (``report.md``, ``report.html``, ``figures/``, ``tables/``).

    Parameters
    ----------
    config : RunConfig
        The run's settings (validated first).
    log : callable, default=None
        Called with one line per step (None: silent).

    Returns
    -------
    RunOutput
        The output folder, the results as written to results.nc, the files and the seconds per stage.

    Raises
    ------
    LayergainError
        A setting out of range, an unusable image set, an unwritable ``out`` or ``cache`` (found
        before any work).

    Notes
    -----
    Files are written to a staging folder beside ``out`` and moved in only when everything
    succeeded: an error or an interruption leaves ``out`` as it was.
    """
    log = log or (lambda message: None)
    config.validate()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image_set = load_image_set(
        config.data,
        group_column=config.group_column,
        max_per_class=config.max_per_class,
        seed=config.seed,
        skip_bad_images=config.skip_bad_images,
    )
    check_foldable(image_set.labels, image_set.groups, config.folds, image_set.class_names)
    card = find_data_card(image_set, config.data_card)
    out = config.out_dir(image_set.name)
    _check_out_dir(out)
    cache = FeatureCache(config.cache or default_cache_dir())
    _check_writable(cache.root, "feature cache", "`cache=DIR`")
    streams = config_streams(config.seed)
    log(
        f"{image_set.name}: {len(image_set)} images, {len(image_set.class_names)} classes"
        + (f", groups from {image_set.group_column!r}" if image_set.groups is not None else "")
    )
    timings["load"] = time.perf_counter() - t0

    with executor(config.workers, config.scheduler, config.jobs) as ex:
        log(f"work units on {ex.description}")
        return _run_stages(config, image_set, card, out, cache, streams, timings, t0, ex, log)


def _run_stages(config, image_set, card, out, cache, streams, timings, t0, ex, log) -> RunOutput:
    t = time.perf_counter()
    folds = make_folds(
        image_set.labels, image_set.groups, folds=config.folds, repeats=config.repeats,
        seed=np.random.default_rng(streams["folds"]),
    )
    inits, seeds, store, backbone_info = _extract_all(config, image_set, cache, log, ex)
    timings["features"] = time.perf_counter() - t

    with torch_threads(1):  # numpy/scikit-learn from here on; idle torch workers slow them down
        t = time.perf_counter()
        layers = backbone_info["layers"]
        probes = _probe_all(config, image_set, store, inits, seeds, layers, folds, log, ex)
        timings["probes"] = time.perf_counter() - t

        t = time.perf_counter()
        similarity = study_similarity(store, inits, log=log)
        timings["similarity"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = run_statistics(
        run_outcomes(probes["dataset"]), confidence=config.confidence, margin=config.margin, draws=config.draws,
        target=config.target, seed=streams["statistics"],
    )
    timings["statistics"] = time.perf_counter() - t

    results = xr.merge([probes["dataset"], stats, similarity], combine_attrs="drop_conflicts", join="outer")
    results = results.reindex({S.INIT: inits})
    results.attrs = run_attrs(
        config, image_set, card,
        weights_source=backbone_info["weights_source"], weights_sha256=backbone_info["weights_sha256"],
        mean=backbone_info["mean"], std=backbone_info["std"], engines=backbone_info["engines"],
        extraction_threads=_extraction_threads(config), probe=probes["settings"],
        not_converged=probes["not_converged"], seeds=seeds[1:], timings=timings,
    )
    files = _write(out, results, log)
    timings["total"] = time.perf_counter() - t0
    return RunOutput(out=out, results=results, files=files, timings=timings)


def extract(config: RunConfig, log: Log | None = None) -> dict[str, int]:
    """Compute and cache the features of the pretrained network and every random seed, nothing else.

    For running the forward passes once (e.g. on a GPU machine) and the analysis elsewhere with the
    same ``cache``: a later :func:`run` with the same settings finds every feature cached.

    Parameters
    ----------
    config : RunConfig
        The settings; those of the data, the model, the extraction and ``cache`` are used.
    log : callable, default=None
        Called with one line per step (None: silent).

    Returns
    -------
    dict of str to int
        The number of images per network (init name).
    """
    log = log or (lambda message: None)
    config.validate()
    image_set = load_image_set(
        config.data, group_column=config.group_column, max_per_class=config.max_per_class, seed=config.seed,
        skip_bad_images=config.skip_bad_images,
    )
    cache = FeatureCache(config.cache or default_cache_dir())
    _check_writable(cache.root, "feature cache", "`cache=DIR`")
    log(f"{image_set.name}: {len(image_set)} images -> {cache.root}")
    with executor(config.workers, config.scheduler, config.jobs) as ex:
        inits, _, _, _ = _extract_all(config, image_set, cache, log, ex)
    return {init: len(image_set) for init in inits}


def _extract_all(config: RunConfig, image_set: ImageSet, cache: FeatureCache, log: Log, ex: Executor):
    """Features of the pretrained network and every random seed into the cache (one work unit per
    network); returns the inits, seeds, a :class:`FeatureStore` to read them back, and layer info."""
    plan = [(S.PRETRAINED, None)] + [(S.random_init_name(s), s) for s in range(config.seeds)]
    pretrained = load_backbone(config.model, weights=config.weights or "pretrained", layers=config.layers)
    info = {
        "layers": pretrained.layers,
        "weights_source": pretrained.weights_source,
        "weights_sha256": pretrained.weights_sha256,
        "mean": pretrained.mean,
        "std": pretrained.std,
    }
    root = str(cache.root)
    if ex.kind == "local":
        results = [_extract_one(config, image_set, root, seed, pretrained if seed is None else None) for _, seed in plan]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=ex.n_jobs)(delayed(_extract_one)(config, image_set, root, seed) for _, seed in plan)
    keys = {}
    for (init, _), (extraction, seconds) in zip(plan, results):
        keys[init] = extraction.key
        info.setdefault("engines", {})[init] = extraction.engine
        log(f"features {init}: {seconds:.1f} s ({extraction.engine})")
    store = FeatureStore(root, keys, tuple(image_set.sha256), tuple(layer.name for layer in pretrained.layers))
    return [init for init, _ in plan], [-1 if seed is None else seed for _, seed in plan], store, info


def _extract_one(config: RunConfig, image_set: ImageSet, cache_root: str, seed: int | None, backbone=None):
    """One work unit: build the network (pretrained if ``seed`` is None) and cache its features.

    Returns the :class:`~layergain.features.extract.Extraction` (engine and cache key; the features
    stay on disk) and the seconds it took.
    """
    t = time.perf_counter()
    if backbone is None:
        weights = (config.weights or "pretrained") if seed is None else None
        backbone = load_backbone(config.model, weights=weights, seed=seed, layers=config.layers)
    # The same thread count everywhere: fused (traced) kernels round differently with other counts.
    with torch_threads(_extraction_threads(config)):
        extraction = _extract_features_unit(config, image_set, cache_root, backbone)
    return extraction, time.perf_counter() - t


def _extraction_threads(config: RunConfig) -> int:
    return config.threads or max(1, os.cpu_count() or 1)


def _extract_features_unit(config: RunConfig, image_set: ImageSet, cache_root: str, backbone) -> Extraction:
    return extract_features(
        backbone,
        image_set,
        image_size=config.image_size,
        pooling=config.pooling,
        batch_size=config.batch_size,
        device=config.device,
        cache=FeatureCache(cache_root),
        progress=config.progress,
        collect=False,
        engine=config.engine,
    )


def _probe_unit(store: FeatureStore, init: str, layer: str, labels, folds, n_classes: int, settings: ProbeSettings):
    """One work unit: read one layer of one network from the cache and probe it."""
    return cross_val_probe(store.layer(init, layer), labels, folds, n_classes=n_classes, settings=settings)


def _probe_all(config, image_set, store: FeatureStore, inits, seeds, layers, folds, log, ex: Executor):
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    settings = ProbeSettings(C=config.probe_c)
    n_classes = len(image_set.class_names)
    shape = (len(inits), len(layers), folds.shape[0], len(image_set))
    prediction = np.empty(shape, dtype=np.int64)
    probability = np.empty((*shape, n_classes), dtype=np.float32)
    tasks = [(i, j) for i in range(len(inits)) for j in range(len(layers))]
    # Each fit is small and single-threaded; processes use the cores (results are identical to a serial run).
    jobs = Parallel(n_jobs=ex.n_jobs, return_as="generator")(
        delayed(_probe_unit)(store, inits[i], layers[j].name, image_set.labels, folds, n_classes, settings)
        for i, j in tasks
    )
    not_converged = 0
    for (i, j), result in tqdm(zip(tasks, jobs), total=len(tasks), desc="probes", unit="layer",
                               disable=not config.progress, leave=False):
        prediction[i, j], probability[i, j] = result.prediction, result.probability
        not_converged += result.not_converged
    metrics = classification_metrics(prediction, image_set.labels, n_classes)
    dataset = probe_dataset(
        inits=inits,
        seeds=seeds,
        layers=layers,
        relpaths=image_set.relpaths,
        labels=image_set.labels,
        class_names=image_set.class_names,
        groups=image_set.groups,
        sha256=image_set.sha256,
        folds=folds,
        prediction=prediction,
        probability=probability,
        metrics=metrics,
    )
    log(f"probes: {len(inits) * len(layers) * folds.shape[0] * config.folds} fits, {not_converged} not converged")
    return {"dataset": dataset, "prediction": prediction, "settings": settings, "not_converged": not_converged}


# Variables of a run that the statistics do not make (the probes' and the similarity's).
_NOT_STATISTICS = ("prediction", "probability", "fold", "accuracy", "balanced_accuracy", "macro_f1")


def restatistics(
    results: str | Path,
    out: str | Path | None = None,
    *,
    draws: int | None = None,
    margin: float | None = None,
    confidence: float | None = None,
    target: str | None = None,
    log: Log | None = None,
) -> RunOutput:
    """Recompute the statistics of a finished run from its results.nc, and its report.

    The stored out-of-fold predictions, folds, labels and groups are all the statistics need, so
    a run can be re-analysed (new settings, or a new version of the statistics) without its
    networks or features. Probe and similarity variables are kept as they are; every statistics
    variable is recomputed with the run's own seed, so a run made with these settings would
    store the same numbers.

    Parameters
    ----------
    results : str or Path
        The run's results.nc, or the folder holding it.
    out : str or Path, default=None
        Where to write results.nc and the report (None: the run's folder), staged as in :func:`run`.
    draws, margin, confidence, target : default=None
        As in :class:`RunConfig`; None keeps the run's (see :class:`StatsConfig`).
    log : callable, default=None
        Called with one line per step (None: silent).

    Returns
    -------
    RunOutput
        The output folder, the recomputed results, the files written and the statistics' seconds.
    """
    log = log or (lambda message: None)
    path = Path(results).expanduser()
    ds = load_results(path)
    out = Path(out).expanduser() if out is not None else (path if path.is_dir() else path.parent)
    _check_out_dir(out)
    settings = StatsConfig(draws=draws, margin=margin, confidence=confidence, target=target).resolve(ds.attrs)
    t = time.perf_counter()
    outcomes = run_outcomes(ds)
    stats = run_statistics(outcomes, seed=config_streams(int(ds.attrs.get("seed", 0)))["statistics"], **settings)
    kept = [v for v in ds.data_vars if v in _NOT_STATISTICS or v.startswith(("cka_", "svcca", "pwcca"))]
    base = ds[kept].drop_vars(S.BOOT, errors="ignore")  # former bootstrap draws' coordinate
    merged = xr.merge([base, stats], combine_attrs="override", join="outer").reindex({S.INIT: outcomes.inits})
    timings = json.loads(ds.attrs.get("timings_s", "{}"))
    timings["statistics"] = round(time.perf_counter() - t, 2)
    merged.attrs = {
        **{k: v for k, v in ds.attrs.items() if k not in ("n_boot", "n_permutations")},
        "n_draws": settings["draws"], "margin": settings["margin"], "confidence": settings["confidence"],
        "statistics_target": settings["target"],
        "statistics_recomputed": f"from the stored predictions by layergain {package_versions()['layergain']} "
        f"({' '.join(sys.argv) or 'restatistics'})",
        "timings_s": json.dumps(timings),
    }
    log(f"statistics of {ds.attrs.get('dataset', path)} recomputed in {timings['statistics']:.1f} s")
    files = _write(out, merged, log)
    return RunOutput(out=out, results=merged, files=files, timings={"statistics": timings["statistics"]})


_versions = package_versions  # the name compare() reads them under


def compare(
    runs: list[str | Path],
    out: str | Path,
    *,
    draws: int = CompareConfig.draws,
    confidence: float = CompareConfig.confidence,
    alpha: float = CompareConfig.alpha,
    deep_from: float = CompareConfig.deep_from,
    seed: int = CompareConfig.seed,
    log: Log | None = None,
) -> RunOutput:
    """Compare the knowledge gain of several runs (image sets) of one backbone.

    Parameters
    ----------
    runs : list of str or Path
        Two or more run folders or their results.nc, of different image sets with the same
        backbone, weights, layers and random seeds.
    out : str or Path
        Where to write ``comparison.nc``, ``report.md``, ``report.html``, figures and tables
        (staged, moved in at the end).
    draws, confidence, alpha, deep_from, seed
        As in :class:`CompareConfig` (its defaults).
    log : callable, default=None
        Called with one line per step (None: silent).

    Returns
    -------
    RunOutput
        The output folder, the comparison Dataset, the files written and the seconds it took.
    """
    from layergain import stats
    from layergain.results.comparison import comparison_dataset, stack_runs

    log = log or (lambda message: None)
    CompareConfig(runs=list(runs), out=str(out), draws=draws, confidence=confidence, alpha=alpha,
                  deep_from=deep_from, seed=seed).validate()
    out = Path(out).expanduser()
    _check_out_dir(out)
    datasets = [load_results(r) for r in runs]
    check_comparable(datasets, runs)
    names = [ds.attrs["dataset"] for ds in datasets]
    outcomes = [run_outcomes(ds).probe_outcomes() for ds in datasets]
    log(f"comparing {', '.join(names)}")
    t = time.perf_counter()
    with torch_threads(1):
        result = stats.compare_sets(
            outcomes, datasets[0]["relative_depth"].values, n_draws=draws, confidence=confidence, alpha=alpha,
            deep_min_relative_depth=deep_from, seed=np.random.default_rng(seed),
        )
    layer_names = [str(n) for n in datasets[0][S.LAYER].values]
    comparison = xr.merge(
        [stack_runs(datasets), comparison_dataset(names, layer_names, result)],
        join="outer", compat="no_conflicts", combine_attrs="override",
    )
    comparison.attrs = {
        **result.attrs(),
        "title": "layergain comparison: " + ", ".join(names),
        "backbone": datasets[0].attrs["backbone"],
        "weights_sha256": datasets[0].attrs["weights_sha256"],
        "seeds": [int(s) for s in datasets[0]["seed"].values[datasets[0]["kind"].values == "random"]],
        "deep_min_relative_depth": deep_from,
        "resampling_unit": json.dumps(dict(zip(names, result.unit_kind))),
        "n_units": json.dumps(dict(zip(names, result.units))),
        "seed": seed,
        "runs": json.dumps([
            {"dataset": ds.attrs["dataset"], "data_card": ds.attrs.get("data_card", ""),
             "data_card_summary": ds.attrs.get("data_card_summary", ""), "n_images": int(ds.attrs["n_images"]),
             "data_content_sha256": ds.attrs.get("data_content_sha256", ""), "created": ds.attrs.get("created", "")}
            for ds in datasets
        ]),
        "versions": json.dumps(_versions()),
        "command": " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    files = _write(out, comparison, log, name="comparison.nc", report="comparison")
    return RunOutput(out=out, results=comparison, files=files, timings={"total": time.perf_counter() - t})


def _write(out: Path, results: xr.Dataset, log: Log, name: str = "results.nc", report: str = "run") -> list[Path]:
    """Write every file into a staging folder, then move them into ``out``."""
    from layergain import report as reports

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}. Choose a writable folder, `out=DIR`.") from exc
    try:
        save_results(results, staging / name)
        (reports.write_report if report == "run" else reports.write_comparison_report)(results, staging)
        interrupt.check()  # a Ctrl-C whose exception was lost still publishes nothing
        moved = []
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        # the results file last: its presence marks a complete run
        files.sort(key=lambda p: p.name == name)
        for src in files:
            dst = out / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved.append(dst)
        log(f"wrote {len(moved)} files to {out}")
        return moved
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}. Choose a writable folder, `out=DIR`.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
