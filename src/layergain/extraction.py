"""The features of a study's networks: the pretrained backbone and its random twins, extracted
into the feature cache as work units (one per network), locally or on a Dask cluster.

The features stage of :func:`layergain.pipeline.run` and :func:`layergain.pipeline.extract`,
built on :func:`layergain.models.load_backbone` and :func:`layergain.features.extract_features`
(it belongs in ``features/``, beside them, and sits at that floor of the layering).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layergain import schema as S
from layergain.features import FeatureCache, FeatureStore, extract_features, torch_threads
from layergain.features.extract import Extraction
from layergain.models import load_backbone

__all__ = ["StudyNetworks", "extract_study", "extraction_threads"]


@dataclass(frozen=True)
class StudyNetworks:
    """The networks of a study and where their features are.

    ``inits``: names, the pretrained network first; ``seeds``: their seeds (-1 for the pretrained
    one); ``store`` reads their cached features; ``layers``: the probe layers; ``weights``: the
    pretrained weights' ``weights_source``, ``weights_sha256`` and the input ``mean``, ``std``;
    ``engines``: the extraction engine that ran, per init.
    """

    inits: list[str]
    seeds: list[int]
    store: FeatureStore
    layers: list
    weights: dict[str, Any]
    engines: dict[str, str]


def extraction_threads(config: Any) -> int:
    """Torch threads of every extraction unit: ``config.threads``, else the CPU count."""
    return config.threads or max(1, os.cpu_count() or 1)


def extract_study(config: Any, image_set: Any, cache: FeatureCache, ex: Any,
                  log: Callable[[str], None] = lambda message: None) -> StudyNetworks:
    """Cache the features of the pretrained network and of random seeds ``0 .. config.seeds - 1``.

    Parameters
    ----------
    config : RunConfig
        Its model, weights, layers and extraction settings are used.
    image_set : ImageSet
    cache : FeatureCache
    ex : Executor
        Where the work units run (:func:`layergain.parallel.executor`).
    log : callable, default=no messages
        One line per network.
    """
    plan = [(S.PRETRAINED, None)] + [(S.random_init_name(s), s) for s in range(config.seeds)]
    pretrained = load_backbone(config.model, weights=config.weights or "pretrained", layers=config.layers)
    root = str(cache.root)
    if ex.kind == "local":
        done = [_extract_one(config, image_set, root, seed, pretrained if seed is None else None) for _, seed in plan]
    else:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=ex.n_jobs)(delayed(_extract_one)(config, image_set, root, seed) for _, seed in plan)
    keys, engines = {}, {}
    for (init, _), (extraction, seconds) in zip(plan, done):
        keys[init], engines[init] = extraction.key, extraction.engine
        log(f"features {init}: {seconds:.1f} s ({extraction.engine})")
    store = FeatureStore(root, keys, tuple(image_set.sha256), tuple(layer.name for layer in pretrained.layers))
    weights = {k: getattr(pretrained, k) for k in ("weights_source", "weights_sha256", "mean", "std")}
    return StudyNetworks(
        [init for init, _ in plan], [-1 if s is None else s for _, s in plan], store, pretrained.layers, weights,
        engines,
    )


def _extract_one(config: Any, image_set: Any, cache_root: str, seed: int | None, backbone=None):
    """One work unit: build the network (pretrained if ``seed`` is None) and cache its features.

    Returns the :class:`~layergain.features.extract.Extraction` (engine and cache key; the features
    stay on disk) and the seconds it took.
    """
    t = time.perf_counter()
    if backbone is None:
        weights = (config.weights or "pretrained") if seed is None else None
        backbone = load_backbone(config.model, weights=weights, seed=seed, layers=config.layers)
    # The same thread count everywhere: fused (traced) kernels round differently with other counts.
    with torch_threads(extraction_threads(config)):
        extraction: Extraction = extract_features(
            backbone, image_set, image_size=config.image_size, pooling=config.pooling, batch_size=config.batch_size,
            device=config.device, cache=FeatureCache(cache_root), progress=config.progress, collect=False,
            engine=config.engine,
        )
    return extraction, time.perf_counter() - t
