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
from layergain.config import BASELINES, json_object
from layergain.features import FeatureCache, FeatureStore

# torch (extract_features, load_backbone) is imported where a network runs: a study from
# features computed elsewhere (external_study) never imports it.

__all__ = ["ExternalLayer", "StudyNetworks", "external_study", "extract_study", "extraction_threads",
           "study_baselines", "study_readouts"]


@dataclass(frozen=True)
class StudyNetworks:
    """The networks of a study and where their features are.

    ``inits``: the init names of one configuration, the pretrained network first; ``seeds``:
    their seeds (-1 for the pretrained one); ``stores``: per configuration (readout, baseline) the
    :class:`FeatureStore` that reads its networks' cached features under those init names;
    ``readouts`` and ``baselines``: the canonical names, in the order asked; ``layers``: the
    probe layers; ``weights``: the pretrained weights' ``weights_source``, ``weights_sha256`` and
    the input ``mean``, ``std``; ``engines``: the extraction engine that ran, per network
    (``pretrained``, ``<baseline>/random-<seed>``).
    """

    inits: list[str]
    seeds: list[int]
    stores: dict[tuple[str, str], FeatureStore]
    readouts: tuple[str, ...]
    baselines: tuple[str, ...]
    layers: list
    weights: dict[str, Any]
    engines: dict[str, str]

    @property
    def store(self) -> FeatureStore:
        """The store of the first configuration (the only one of a run with one readout and baseline)."""
        return self.stores[(self.readouts[0], self.baselines[0])]

    def engines_of(self, baseline: str) -> dict[str, str]:
        """The engine per init name of the networks of one baseline (and the pretrained one)."""
        return {init: self.engines[_network_name(init, baseline)] for init in self.inits}


def _network_name(init: str, baseline: str) -> str:
    return init if init == S.PRETRAINED else f"{baseline}/{init}"


def study_readouts(config: Any, backbone: Any) -> tuple[str, ...]:
    """The canonical readout names of a run: ``config.readout``, else the backbone's default; each
    checked against every probe layer (an error names the layer a readout cannot read)."""
    from layergain.features import resolve_readouts

    return tuple(r.name for r in resolve_readouts(backbone, config.readout or None))


def study_baselines(config: Any) -> tuple[str, ...]:
    """The random baselines of a run: ``config.baseline``, else ``("default",)``."""
    return tuple(config.baseline or (BASELINES[0],))


def extraction_threads(config: Any) -> int:
    """Torch threads of every extraction unit: ``config.threads``, else the CPU count."""
    return config.threads or max(1, os.cpu_count() or 1)


def extract_study(config: Any, image_set: Any, cache: FeatureCache, ex: Any,
                  log: Callable[[str], None] = lambda message: None) -> StudyNetworks:
    """Cache the features of the pretrained network and of random seeds ``0 .. config.seeds - 1``
    of every baseline, every readout of a network from its one forward pass.

    Parameters
    ----------
    config : RunConfig
        Its model, weights, layers, readouts, baselines and extraction settings are used.
    image_set : ImageSet
    cache : FeatureCache
    ex : Executor
        Where the work units run (:func:`layergain.parallel.executor`), one per network.
    log : callable, default=no messages
        One line per network.
    """
    from layergain.models import load_backbone  # noqa: F401 (torch: a network runs)

    pretrained = _network(config, image_set, None, None)
    readouts = study_readouts(config, pretrained)
    baselines = study_baselines(config)
    plan = [(S.PRETRAINED, None, None)] + [
        (_network_name(S.random_init_name(s), b), b, s) for b in baselines for s in range(config.seeds)
    ]
    root = str(cache.root)
    if ex.kind == "local":
        done = [_extract_one(config, image_set, root, readouts, baseline, seed, pretrained if seed is None else None)
                for _, baseline, seed in plan]
    else:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=ex.n_jobs)(
            delayed(_extract_one)(config, image_set, root, readouts, baseline, seed) for _, baseline, seed in plan
        )
    keys, engines = {}, {}
    for (network, _, _), (extraction, seconds) in zip(plan, done):
        keys[network], engines[network] = extraction.keys, extraction.engine
        log(f"features {network}: {seconds:.1f} s ({extraction.engine}; {', '.join(extraction.readouts)})")
    inits = [S.PRETRAINED] + [S.random_init_name(s) for s in range(config.seeds)]
    names = tuple(layer.name for layer in pretrained.layers)
    stores = {
        (r, b): FeatureStore(root, {init: keys[_network_name(init, b)][r] for init in inits},
                             tuple(image_set.sha256), names)
        for r in readouts for b in baselines
    }
    weights = {k: getattr(pretrained, k) for k in ("weights_source", "weights_sha256", "mean", "std")}
    return StudyNetworks(inits, [-1] + list(range(config.seeds)), stores, readouts, baselines, pretrained.layers,
                         weights, engines)


def _extract_one(config: Any, image_set: Any, cache_root: str, readouts: tuple[str, ...], baseline: str | None,
                 seed: int | None, backbone=None):
    """One work unit: build the network (pretrained if ``seed`` is None, else the random one of
    ``baseline`` and ``seed``) and cache every readout of its features from one forward pass.

    Returns the :class:`~layergain.features.extract.Extraction` (engine and cache keys; the
    features stay on disk) and the seconds it took.
    """
    from layergain.features import extract_features, torch_threads

    t = time.perf_counter()
    # The same thread count everywhere: fused (traced) kernels round differently with other counts.
    with torch_threads(extraction_threads(config)):
        if backbone is None:
            backbone = _network(config, image_set, baseline, seed)
        extraction = extract_features(
            backbone, image_set, image_size=config.image_size, readouts=list(readouts), batch_size=config.batch_size,
            device=config.device, cache=FeatureCache(cache_root), progress=config.progress, collect=False,
            engine=config.engine,
        )
    return extraction, time.perf_counter() - t


def _network(config: Any, image_set: Any, baseline: str | None, seed: int | None):
    """The pretrained network (``seed`` None), or the random network of ``baseline`` with ``seed``."""
    from layergain.models import load_backbone

    kwargs = json_object(config.model_kwargs, "model_kwargs") or None
    if seed is None:
        return load_backbone(config.model, weights=config.weights or "pretrained", layers=config.layers,
                             model_kwargs=kwargs)
    if baseline == BASELINES[0]:
        return load_backbone(config.model, weights=None, seed=seed, layers=config.layers, model_kwargs=kwargs)
    from layergain.models.baselines import baseline_backbone

    images = _calibration_images(image_set, config.image_size) if baseline == "bn-recalibrated" else None
    return baseline_backbone(
        config.model, baseline, seed, weights=config.weights or "pretrained", layers=config.layers,
        model_kwargs=kwargs, images=images, device=config.device,
    )


def _calibration_images(image_set: Any, image_size: int):
    """The images that re-estimate the batch norms of ``bn-recalibrated``: at most
    :data:`~layergain.models.baselines.MAX_CALIBRATION_IMAGES` of the set (a seeded subset, the same
    for every seed), decoded and resized as the extraction does them, uint8 (n, 3, size, size)."""
    import numpy as np

    from layergain.features.images import load_rgb
    from layergain.models.baselines import calibration_index

    index = calibration_index(len(image_set))
    return np.stack([load_rgb(image_set.paths[i], image_size) for i in index]).transpose(0, 3, 1, 2)


@dataclass(frozen=True)
class ExternalLayer:
    """A probe layer of features computed elsewhere: what the results record of a layer.

    ``module``, ``relative_depth`` and ``params_to_layer`` come from the features' metadata where
    it has them (``module``: the layer's name; ``relative_depth``: ``depth / (n_layers - 1)``;
    ``params_to_layer``: 0, unknown).
    """

    name: str
    module: str
    depth: int
    relative_depth: float
    width: int
    params_to_layer: int = 0


def external_study(path: str, image_set: Any, log: Callable[[str], None] = lambda message: None, *,
                   subset: bool = False) -> tuple[StudyNetworks, Any]:
    """The networks of a study from features computed elsewhere (:mod:`layergain.features.external`),
    matched to ``image_set``'s ids (its ``relpaths``) in its order; no torch.

    Returns the :class:`StudyNetworks` (one configuration: the readout and baseline the
    features' metadata name, else ``"external"`` and ``"default"``) and the
    :class:`~layergain.features.external.ExternalFeatures` as matched. ``subset``: the image set
    is a subset of the manifest (``max_per_class``), so features of other images are left out.
    """
    from layergain.features.external import match, read_features

    external = match(read_features(path), list(image_set.relpaths), subset=subset)
    meta = external.meta
    n = len(external.layers)
    depth = meta.get("relative_depth") or {}
    modules = meta.get("module") or {}
    params = meta.get("params_to_layer") or {}
    layers = [
        ExternalLayer(name, str(modules.get(name, name)), k, float(depth.get(name, k / max(n - 1, 1))),
                      int(external.widths[name]), int(params.get(name, 0)))
        for k, name in enumerate(external.layers)
    ]
    readout, baseline = str(meta.get("readout") or "external"), str(meta.get("baseline") or BASELINES[0])
    log(f"features of {len(external.inits)} networks x {n} layers from {external.source}")
    nets = StudyNetworks(
        list(external.inits), [-1, *external.seeds], {(readout, baseline): external.store}, (readout,), (baseline,),
        layers, {"weights_source": f"features computed elsewhere: {external.source}", "weights_sha256": "",
                 "mean": [], "std": []},
        {_network_name(init, baseline): "external" for init in external.inits},
    )
    return nets, external
