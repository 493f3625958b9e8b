"""What a run will do and about how long it will take, before it starts (``layergain plan``).

:func:`plan` counts the work of a :class:`~layergain.config.RunConfig` exactly as
:func:`layergain.pipeline.run` will do it (networks, forward passes, probe fits, resamples and
draws) and estimates the time of its two long stages from a few seconds of calibration on this
machine: a few images through the network's forward pass at the run's image size, and a few
logistic-regression iterations at the run's probe shapes. No image of the set is read (the set
is counted with ``load_image_set(..., images=False)``) and nothing is cached.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import warnings
from dataclasses import dataclass, field
from math import comb

import numpy as np

from layergain.errors import InputValueError

__all__ = ["LBFGS_ITERATIONS", "Plan", "plan"]

#: L-BFGS iterations assumed per probe fit. Measured on real EfficientNet-Lite0 features of 1000
#: Kather images (5 folds, scikit-learn's lbfgs at tol=1e-4): 25-100 for the pretrained network's
#: layers, 100 and more for the random networks' (bench/README.md, "Probes").
LBFGS_ITERATIONS = 100
#: Images pushed through the network to time the forward pass.
CALIBRATION_IMAGES = 4
#: Largest training fold of the probe calibration fits (their cost is scaled to the run's size).
CALIBRATION_ROWS = 400
CALIBRATION_ITERATIONS = 20


@dataclass(frozen=True)
class Plan:
    """The work of a run and its estimated time.

    Attributes
    ----------
    dataset : str
    n_images, n_classes : int
    model : str
    image_size : int
    readouts, baselines : tuple of str
    seeds : int
        Random networks per baseline.
    layers : tuple of str
    widths : dict of str to tuple of int
        Width of every layer under each readout.
    folds, repeats : int
    networks : int
        ``1 + seeds * len(baselines)``: the pretrained network and every random one.
    forward_passes : int
        ``networks * n_images`` (every readout of a network comes from its one forward pass).
    configurations : int
        ``len(readouts) * len(baselines)``, each with its own probes, similarity and statistics.
    probe_fits : int
        ``configurations * (1 + seeds) * len(layers) * folds * repeats``.
    similarity_pairs : int
        Network pairs of the per-layer similarity measures, per layer and configuration:
        ``comb(1 + seeds, 2)`` (pretrained vs each random init and every random pair).
    similarity_resamples, draws : int
        Image resamples of the similarity inference and Monte Carlo draws of the statistics, per
        configuration.
    seconds : dict of str to float
        Estimated seconds of ``features`` (one process, the run's torch threads), ``probes``
        (serial; divided by ``jobs`` in ``seconds_parallel``) and ``similarity_inference`` (timed
        on random features of up to 240 images, scaled; see ``_inference_seconds``).
    jobs : int
        Processes the probe stage will use.
    calibration : dict of str to float
        What was measured: ``forward_s_per_image`` and the probe cost model ``probe_iteration_s``
        = ``overhead + per_unit * n_train * width * n_classes`` (``probe_overhead_s``,
        ``probe_per_unit_s``), and the seconds the calibration took.
    """

    dataset: str
    n_images: int
    n_classes: int
    model: str
    image_size: int
    readouts: tuple[str, ...]
    baselines: tuple[str, ...]
    seeds: int
    layers: tuple[str, ...]
    widths: dict[str, tuple[int, ...]]
    folds: int
    repeats: int
    networks: int
    forward_passes: int
    configurations: int
    probe_fits: int
    similarity_pairs: int
    similarity_resamples: int
    draws: int
    jobs: int
    seconds: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)

    @property
    def seconds_parallel(self) -> dict[str, float]:
        """``seconds`` with the probes and the similarity inference (one layer per process) spread
        over ``jobs`` processes (ideal scaling)."""
        inference_jobs = max(1, min(self.jobs, len(self.layers)))
        return {**self.seconds, "probes": self.seconds["probes"] / self.jobs,
                "similarity_inference": self.seconds.get("similarity_inference", 0.0) / inference_jobs}

    def describe(self) -> str:
        """The plan in a few lines of text."""
        est = self.seconds_parallel
        lines = [
            f"{self.dataset}: {self.n_images} images, {self.n_classes} classes; {self.model} at "
            f"{self.image_size} px, {len(self.layers)} layers",
            f"networks: {self.networks} (pretrained + {self.seeds} seeds x {len(self.baselines)} baseline(s): "
            f"{', '.join(self.baselines)})",
            f"forward passes: {self.forward_passes} ({self.networks} networks x {self.n_images} images; "
            f"readouts {', '.join(self.readouts)} from each pass)",
            f"configurations: {self.configurations} (readouts x baselines)",
            f"probe fits: {self.probe_fits} ({self.configurations} configurations x {1 + self.seeds} networks x "
            f"{len(self.layers)} layers x {self.folds} folds x {self.repeats} repeats)",
            f"similarity: {self.similarity_pairs} network pairs per layer and configuration, "
            + (f"{self.similarity_resamples} image resamples" if self.similarity_resamples
               else "no inference (--similarity-resamples 0)")
            + f"; statistics: {self.draws} draws per configuration",
            f"estimated time: features {_duration(est['features'])} (as if nothing were cached), probes "
            f"{_duration(est['probes'])} on {self.jobs} process(es) ({_duration(self.seconds['probes'])} serial), "
            f"similarity inference {_duration(est.get('similarity_inference', 0.0))} on {self.jobs} process(es); "
            "the similarity measures, "
            "statistics and report not included",
            f"calibrated on this machine in {self.calibration.get('seconds', 0.0):.1f} s: "
            f"{self.calibration['forward_s_per_image'] * 1e3:.1f} ms per image per network; probes assume "
            f"{LBFGS_ITERATIONS} L-BFGS iterations per fit (random networks' layers can need several times more)",
        ]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan(config, *, calibrate: bool = True) -> Plan:
    """Count the work of ``config`` and estimate its time on this machine.

    Parameters
    ----------
    config : RunConfig
        The run to plan (validated first). Runs from ``features`` computed elsewhere are not
        planned (their widths come from the file).
    calibrate : bool, default=True
        Time the forward pass and the probe fits here (a few seconds); False leaves ``seconds``
        and ``calibration`` empty (the counts only).

    Returns
    -------
    Plan

    Raises
    ------
    LayergainError
        A setting out of range or an unusable image set, as :func:`layergain.pipeline.run` would.
    """
    from layergain.data import load_image_set
    from layergain.extraction import _network, study_baselines, study_readouts

    config.validate()
    if config.features:
        raise InputValueError(
            f"`plan` counts the forward passes of a network; `features` ({config.features!r}) were computed "
            "elsewhere. Plan the run without `features`, or leave `plan` out."
        )
    t0 = time.perf_counter()
    image_set = load_image_set(config.data, group_column=config.group_column, max_per_class=config.max_per_class,
                               seed=config.seed, skip_bad_images=config.skip_bad_images, images=False)
    backbone = _network(config, image_set, None, None)
    readouts, baselines = study_readouts(config, backbone), study_baselines(config)
    widths = {r: tuple(int(layer.width_for(r)) for layer in backbone.layers) for r in readouts}
    n, k = len(image_set), len(image_set.class_names)
    networks = 1 + config.seeds * len(baselines)
    configurations = len(readouts) * len(baselines)
    n_layers = len(backbone.layers)
    jobs = _jobs(config)
    counted = Plan(
        dataset=image_set.name, n_images=n, n_classes=k, model=config.model, image_size=config.image_size,
        readouts=readouts, baselines=baselines, seeds=config.seeds, layers=tuple(x.name for x in backbone.layers),
        widths=widths, folds=config.folds, repeats=config.repeats, networks=networks, forward_passes=networks * n,
        configurations=configurations,
        probe_fits=configurations * (1 + config.seeds) * n_layers * config.folds * config.repeats,
        similarity_pairs=comb(1 + config.seeds, 2), similarity_resamples=config.similarity_resamples,
        draws=config.draws, jobs=jobs,
    )
    if not calibrate:
        return counted
    per_image = _forward_seconds(backbone, config)
    model = _probe_cost_model(n_train=n - n // config.folds, n_classes=k,
                              widths=sorted({w for ws in widths.values() for w in ws}))
    n_train = n - n // config.folds
    probe_s = len(baselines) * (1 + config.seeds) * config.folds * config.repeats * sum(
        _fit_seconds(model, n_train, w, k) for ws in widths.values() for w in ws
    )
    inference_s = len(baselines) * sum(
        _inference_seconds(n, w, config.seeds, config.similarity_resamples) for ws in widths.values() for w in ws
    )
    seconds = {"features": per_image * counted.forward_passes, "probes": probe_s, "similarity_inference": inference_s}
    calibration = {"forward_s_per_image": per_image, "probe_overhead_s": model[0], "probe_per_unit_s": model[1],
                   "seconds": time.perf_counter() - t0}
    return Plan(**{**counted.__dict__, "seconds": seconds, "calibration": calibration})


#: Images and resamples the similarity inference is timed on (scaled to the run's, see below).
_INFERENCE_IMAGES, _INFERENCE_RESAMPLES = 240, 2


@functools.lru_cache(maxsize=None)
def _inference_timed(n: int, width: int, seeds: int) -> float:
    """Seconds of the run's similarity inference (its default measures) of one layer, timed here on
    random features of ``n`` images for :data:`_INFERENCE_RESAMPLES` resamples."""
    from layergain.similarity.inference import similarity_difference, study_similarity_inference

    measures = inspect.signature(study_similarity_inference).parameters["measures"].default
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(n, width)) for _ in range(1 + seeds)]
    t = time.perf_counter()
    for name in measures:
        similarity_difference(feats, measure=name, n_boot=_INFERENCE_RESAMPLES, seed=0)
    return time.perf_counter() - t


def _inference_seconds(n: int, width: int, seeds: int, resamples: int) -> float:
    """One layer's similarity inference: timed at min(n, 240) images, scaled by the resamples (the
    full-set work counted as about one resample's) and by (n / 240)^2 above 240 images (the n x n
    matrices and neighbour searches dominate; the angular distance's eigendecomposition of wide
    layers grows faster, so large sets are underestimated)."""
    if seeds < 2 or resamples == 0:
        return 0.0  # no random-vs-random pair (every difference is NaN at once), or no inference asked
    m = min(n, _INFERENCE_IMAGES)
    timed = _inference_timed(m, int(width), int(seeds))
    return timed * (resamples + 1) / (_INFERENCE_RESAMPLES + 1) * max(1.0, n / m) ** 2


def _jobs(config) -> int:
    """Processes of the probe stage, as :func:`layergain.parallel.executor` chooses them."""
    if config.workers:
        return int(config.workers)
    return int(config.jobs or min(8, os.cpu_count() or 1))


def _forward_seconds(backbone, config) -> float:
    """Seconds per image of one forward pass at the run's image size (torch threads as the extraction)."""
    import torch

    from layergain.extraction import extraction_threads
    from layergain.features import torch_threads

    size = backbone.input_size or config.image_size
    batch = min(CALIBRATION_IMAGES, config.batch_size or CALIBRATION_IMAGES)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    module = backbone.module.to(config.device)
    x = x.to(config.device)
    with torch_threads(extraction_threads(config)), torch.inference_mode():
        module(x)  # warm-up: allocations, kernels chosen
        best = float("inf")
        for _ in range(3):  # the fastest of three: other load on the machine only slows a pass down
            t = time.perf_counter()
            module(x)
            if config.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return best / batch


def _probe_cost_model(n_train: int, n_classes: int, widths: list[int]) -> tuple[float, float]:
    """``(overhead, per_unit)`` of one L-BFGS iteration, fitted to a few timed synthetic fits.

    An iteration's cost is ``overhead + per_unit * rows * width * classes`` (two products of the
    training features with the weights); timed at the narrowest, a middle and the widest layer of
    the run (widths above the row count cost as the row count: the span reduction).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    rows = min(n_train, CALIBRATION_ROWS)
    picks = sorted({widths[0], widths[len(widths) // 2], widths[-1]})
    sizes, times = [], []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for width in picks:
            d = min(width, rows)
            y = np.arange(rows) % n_classes
            x = rng.normal(size=(rows, d)) + 0.5 * y[:, None] / n_classes
            t = time.perf_counter()
            model = LogisticRegression(max_iter=CALIBRATION_ITERATIONS, tol=0.0).fit(x, y)
            times.append((time.perf_counter() - t) / max(1, int(model.n_iter_[0])))
            sizes.append(rows * d * n_classes)
    a = np.vstack([np.ones(len(sizes)), sizes]).T
    overhead, per_unit = np.linalg.lstsq(a, np.array(times), rcond=None)[0]
    if per_unit <= 0 or overhead < 0:  # too few distinct shapes or noise: a proportional model
        overhead, per_unit = 0.0, float(np.mean(np.array(times) / np.array(sizes)))
    return float(overhead), float(per_unit)


def _fit_seconds(model: tuple[float, float], n_train: int, width: int, n_classes: int) -> float:
    overhead, per_unit = model
    return LBFGS_ITERATIONS * (overhead + per_unit * n_train * min(width, n_train) * n_classes)
