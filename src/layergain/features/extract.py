"""Feature extraction: every probe layer of a network in one forward pass per batch, pooled, cached."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch

from layergain.data import ImageSet
from layergain.errors import InputValueError
from layergain.features.cache import FeatureCache, config_key
from layergain.features.images import ImageDataset
from layergain.features.pooling import POOLINGS, Pooling, pool
from layergain.models import Backbone
from layergain.validation import check_choice, check_int

__all__ = ["ENGINES", "extract_features", "feature_config", "feature_key", "torch_threads"]

FEATURE_VERSION = 1  # bump when extraction changes its numbers


def feature_config(backbone: Backbone, *, image_size: int, pooling: str, engine: str = "eager") -> dict:
    """Everything that determines the features of a network (the cache key's content)."""
    config = {
        "version": FEATURE_VERSION,
        "backbone": backbone.identity,
        "layers": [layer.module for layer in backbone.layers],
        "image_size": image_size,
        "pooling": pooling,
        "resize": "bicubic-whole-image",
        "mean": list(backbone.mean),
        "std": list(backbone.std),
    }
    if engine != "eager":  # eager keys stay as they were before engines existed
        config["engine"] = engine
    return config


def feature_key(backbone: Backbone, *, image_size: int, pooling: str, engine: str = "eager") -> str:
    """Cache key of a network's features (see :mod:`layergain.features.cache`)."""
    return config_key(feature_config(backbone, image_size=image_size, pooling=pooling, engine=engine))


Engine = Literal["traced", "eager"]
ENGINES: tuple[str, ...] = ("traced", "eager")


class _Probed(torch.nn.Module):
    """The network returning the pooled output of every probe layer (what gets traced)."""

    def __init__(self, backbone: Backbone, pooling: Pooling) -> None:
        super().__init__()
        self.model = backbone.module
        self.modules_ = [dict(backbone.module.named_modules())[layer.module] for layer in backbone.layers]
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda mod, a, o: out.append(pool(o, self.pooling))) for m in self.modules_]
        try:
            self.model(x)
        finally:
            for h in handles:
                h.remove()
        return tuple(out)


def _engine(backbone: Backbone, pooling: Pooling, requested: str, device: torch.device, image_size: int):
    """(name, callable batch -> list of pooled tensors): TorchScript-traced and frozen where it works.

    Freezing folds batch norms into convolutions and fuses kernels (see ``bench/extract.py`` for
    what it gains; the first batches pay for tracing and optimisation). The traced network is checked against the eager one on a
    seeded random batch; a model that cannot be traced, or disagrees, runs eagerly.
    """
    probed = _Probed(backbone, pooling).eval()
    if requested == "traced":
        g = torch.Generator().manual_seed(0)
        example = torch.randn(2, 3, image_size, image_size, generator=g).to(device)
        example = example.contiguous(memory_format=torch.channels_last)
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.freeze(torch.jit.trace(probed, example, check_trace=False))
                fast, slow = traced(example), probed(example)
                agree = len(fast) == len(slow) and all(
                    torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()) + 1e-6) for a, b in zip(fast, slow)
                )
            if agree:
                return "traced", lambda x: list(traced(x))
        except Exception:  # noqa: BLE001 - any tracing failure means: run eagerly
            pass
    return "eager", lambda x: list(probed(x))


def _batches(image_set: ImageSet, index: np.ndarray, image_size: int, batch_size: int, device: torch.device, workers: int):
    paths = image_set.paths
    dataset = ImageDataset([paths[i] for i in index], image_size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    yield from loader


def extract_features(
    backbone: Backbone,
    image_set: ImageSet,
    *,
    image_size: int = 224,
    pooling: Pooling = "avg",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    chunk_size: int = 512,
    num_workers: int | None = None,
    progress: bool = False,
    collect: bool = True,
    engine: Engine = "eager",
) -> dict[str, np.ndarray]:
    """Pooled features of every probe layer for every image.

    Parameters
    ----------
    backbone : Backbone
        The network (``layergain.models.load_backbone``).
    image_set : ImageSet
        The images, in order.
    image_size : int, default=224
        Images are resized to ``image_size`` × ``image_size``.
    pooling : {"avg", "max", "avgmax"}, default="avg"
        How a feature map becomes a vector (``avgmax`` concatenates both).
    batch_size : int, default=32
    device : str or torch.device, default="cpu"
    cache : FeatureCache, default=None
        Reuse and store features there; an interrupted extraction resumes from the last
        finished chunk of ``chunk_size`` images.
    num_workers : int, default=None
        Image-decoding processes; ``None`` picks 0 on the CPU (decoding is cheap beside the
        forward pass) and 4 with CUDA.
    progress : bool, default=False
        Show a progress bar.
    engine : {"eager", "traced"}, default="eager"
        ``"traced"``: a TorchScript-traced, frozen copy of the network that returns every pooled
        probe layer (faster; checked against eager on a random batch, eager where tracing fails).
        ``"eager"``: forward hooks on the network as it is (bit-identical for any thread count).
        The engine used is part of the cache key and is set as ``backbone.engine``.
    collect : bool, default=True
        Return the features. With ``collect=False`` (needs ``cache``) they only go to the cache
        and an empty dict is returned: memory stays at one chunk of images.

    Returns
    -------
    dict of str to ndarray of shape (n_images, width)
        float32 features per probe layer name, rows in the order of ``image_set``.
    """
    check_choice(pooling, "pooling", POOLINGS)
    check_int(image_size, "image_size", minimum=16)
    check_int(batch_size, "batch_size", minimum=1)
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputValueError("`device` is 'cuda' but no CUDA GPU is available; use --device cpu.")
    workers = (4 if device.type == "cuda" else 0) if num_workers is None else num_workers
    check_choice(engine, "engine", ENGINES)
    names = [layer.name for layer in backbone.layers]
    n = len(image_set)
    backbone.module.to(device=device, memory_format=torch.channels_last).eval()  # in place
    engine_name, forward = _engine(backbone, pooling, engine, device, image_size)
    config = feature_config(backbone, image_size=image_size, pooling=pooling, engine=engine_name)
    key = config_key(config)
    backbone.engine = engine_name  # recorded for the caller (cache key, results attrs)
    if not collect and cache is None:
        raise InputValueError("`collect=False` needs a `cache` to store the features in.")
    if cache is None:
        out, missing = {}, np.arange(n)
    elif collect:
        out, missing = cache.lookup(key, image_set.sha256, names)
    else:
        out, missing = {}, cache.missing(key, image_set.sha256)
    if missing.size == 0:
        backbone.module.to("cpu")
        return out
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1) * 255
    bar = _progress_bar(missing.size, f"{backbone.init:>10}", progress)
    try:
        for start in range(0, missing.size, chunk_size):
            chunk = missing[start : start + chunk_size]
            sink: dict[str, list[torch.Tensor]] = {name: [] for name in names}
            with torch.inference_mode():
                for batch in _batches(image_set, chunk, image_size, batch_size, device, workers):
                    x = batch.to(device, non_blocking=True).float()
                    x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
                    for name, pooled in zip(names, forward(x)):
                        sink[name].append(pooled)
                    bar.update(len(batch))
            feats = {name: torch.cat(sink[name]).cpu().numpy() for name in names}
            if cache is not None:
                cache.store(key, config, [image_set.sha256[i] for i in chunk], feats)
            for name in names if collect else ():
                if name not in out:
                    out[name] = np.full((n, feats[name].shape[1]), np.nan, dtype=np.float32)
                out[name][chunk] = feats[name]
    finally:
        bar.close()
        backbone.module.to("cpu")
    return out


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False, dynamic_ncols=True)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    After a forward pass, torch's OpenMP workers keep competing for the cores; numpy/scikit-learn
    work that follows (probes, similarity) ran 5× slower here until torch was set to one thread
    (measured in ``bench/probe.py``).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
