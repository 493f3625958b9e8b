"""Feature extraction: every probe layer of a network in one forward pass per batch, pooled, cached."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from layergain.data import ImageSet
from layergain.errors import InputValueError
from layergain.features.cache import FeatureCache, config_key
from layergain.features.images import ImageDataset
from layergain.features.pooling import POOLINGS, Pooling, pool
from layergain.models import Backbone
from layergain.validation import check_choice, check_int

__all__ = ["extract_features", "feature_config", "feature_key", "torch_threads"]

FEATURE_VERSION = 1  # bump when extraction changes its numbers


def feature_config(backbone: Backbone, *, image_size: int, pooling: str) -> dict:
    """Everything that determines the features of a network (the cache key's content)."""
    return {
        "version": FEATURE_VERSION,
        "backbone": backbone.identity,
        "layers": [layer.module for layer in backbone.layers],
        "image_size": image_size,
        "pooling": pooling,
        "resize": "bicubic-whole-image",
        "mean": list(backbone.mean),
        "std": list(backbone.std),
    }


def feature_key(backbone: Backbone, *, image_size: int, pooling: str) -> str:
    """Cache key of a network's features (see :mod:`layergain.features.cache`)."""
    return config_key(feature_config(backbone, image_size=image_size, pooling=pooling))


@contextmanager
def _capture(backbone: Backbone, pooling: Pooling, sink: dict[str, list[torch.Tensor]]) -> Iterator[None]:
    modules = dict(backbone.module.named_modules())
    handles = []
    for layer in backbone.layers:

        def hook(module, args, output, name=layer.name):
            sink[name].append(pool(output, pooling))

        handles.append(modules[layer.module].register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


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
    names = [layer.name for layer in backbone.layers]
    n = len(image_set)
    config = feature_config(backbone, image_size=image_size, pooling=pooling)
    key = config_key(config)
    if not collect and cache is None:
        raise InputValueError("`collect=False` needs a `cache` to store the features in.")
    if cache is None:
        out, missing = {}, np.arange(n)
    elif collect:
        out, missing = cache.lookup(key, image_set.sha256, names)
    else:
        out, missing = {}, cache.missing(key, image_set.sha256)
    if missing.size == 0:
        return out
    model = backbone.module.to(device=device, memory_format=torch.channels_last).eval()
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1) * 255
    bar = _progress_bar(missing.size, f"{backbone.init:>10}", progress)
    try:
        for start in range(0, missing.size, chunk_size):
            chunk = missing[start : start + chunk_size]
            sink: dict[str, list[torch.Tensor]] = {name: [] for name in names}
            with torch.inference_mode(), _capture(backbone, pooling, sink):
                for batch in _batches(image_set, chunk, image_size, batch_size, device, workers):
                    x = batch.to(device, non_blocking=True).float()
                    x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
                    model(x)
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
