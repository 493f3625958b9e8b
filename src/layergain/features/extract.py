"""Feature extraction: every probe layer of a network in one forward pass per batch, pooled, cached."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from layergain.data import ImageSet
from layergain.errors import InputValueError
from layergain.features.cache import FeatureCache, config_key
from layergain.features.images import ImageDataset, load_rgb
from layergain.features.pooling import POOLINGS, Pooling, pool
from layergain.models import Backbone
from layergain.validation import check_choice, check_int

__all__ = [
    "ENGINES",
    "Extraction",
    "extract_features",
    "feature_config",
    "feature_key",
    "fold_batch_norms",
    "torch_threads",
]

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


Engine = Literal["folded", "traced", "eager"]
ENGINES: tuple[str, ...] = ("folded", "traced", "eager")

# Default images per forward pass: on the 2-core CPU of bench/README.md small batches ran
# fastest (activations stay in cache; Lite0 at 224 px, folded: batch 4 0.96 s, 8 1.00 s,
# 16 1.27 s, 32 1.47 s for 64 images); a GPU wants large batches.
BATCH_CPU, BATCH_CUDA = 8, 128


class _Probed(torch.nn.Module):
    """The network returning the pooled output of every probe layer (what gets traced)."""

    def __init__(self, backbone: Backbone, pooling: Pooling, module: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.model = backbone.module if module is None else module
        self.modules_ = [dict(self.model.named_modules())[layer.module] for layer in backbone.layers]
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
    """(name, callable batch -> list of pooled tensors) of the requested engine, else eager.

    ``folded``: a copy of the network with every batch norm that reads a convolution's output
    folded into that convolution's weights and bias, probed with hooks as the eager one (same
    module names). ``traced``: TorchScript-traced and frozen (folds batch norms and fuses kernels;
    the first batches pay for tracing). Either is checked against the eager network on a seeded
    random batch; a model where it fails or disagrees runs eagerly.
    """
    probed = _Probed(backbone, pooling).eval()
    if requested == "eager":
        return "eager", lambda x: list(probed(x))
    g = torch.Generator().manual_seed(0)
    # tracing wants a batch of 2 (shapes are not specialised to 1); folding needs a single image
    example = torch.randn(2 if requested == "traced" else 1, 3, image_size, image_size, generator=g).to(device)
    example = example.contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if requested == "traced":
                fast_net = torch.jit.freeze(torch.jit.trace(probed, example, check_trace=False))
            else:
                folded = fold_batch_norms(backbone.module, example)
                fast_net = _Probed(backbone, pooling, folded).eval() if folded is not None else None
            if fast_net is not None and _agree(fast_net(example), probed(example)):
                return requested, lambda x: list(fast_net(x))
    except Exception:  # noqa: BLE001 - any failure of the faster engine means: run eagerly
        pass
    return "eager", lambda x: list(probed(x))


def _agree(fast: tuple[torch.Tensor, ...], slow: tuple[torch.Tensor, ...]) -> bool:
    return len(fast) == len(slow) and all(
        torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()) + 1e-6) for a, b in zip(fast, slow)
    )


def fold_batch_norms(module: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module | None:
    """A copy of an eval-mode network with each batch norm folded into the convolution it follows.

    Pairs are found by running ``example`` with hooks: a batch norm whose input is the very
    tensor a ``Conv2d`` returned. In inference a batch norm is a per-channel affine map,
    ``y = (x - mean) * g / sqrt(var + eps) + b``, so the convolution's weights are scaled by
    ``g / sqrt(var + eps)`` and it gets the bias ``b + (bias - mean) * g / sqrt(var + eps)``; the
    batch norm module is replaced by what it applies after normalising (timm's ``BatchNormAct2d``:
    its dropout and activation; a plain ``BatchNorm2d``: nothing), under the same name, so forward
    hooks on named modules see the same outputs up to float rounding. On EfficientNet-Lite0 this
    removes 49 passes over the activations: 1.29x faster on the CPU (bench/README.md). Returns
    ``None`` when nothing can be folded. The original network is not changed.

    Folding assumes the convolution's output feeds nothing but its batch norm; hooks cannot see a
    functional use of it elsewhere (a residual sum), so the extraction engine checks the folded
    network against the original on a random batch and runs the original where they differ.
    """
    # Every call's input and output tensors are kept alive until the pairing is done, so tensor
    # identity (not a memory address that a freed tensor may hand on) links a batch norm to its conv.
    calls: list[tuple[str, torch.nn.Module, object, object]] = []

    def record(name: str):
        def hook(mod, args, out):
            calls.append((name, mod, args[0] if args else None, out))

        return hook

    wanted = (torch.nn.Conv2d, torch.nn.modules.batchnorm._BatchNorm)
    hooks = [m.register_forward_hook(record(name)) for name, m in module.named_modules() if isinstance(m, wanted)]
    try:
        with torch.inference_mode():
            module(example)
    finally:
        for h in hooks:
            h.remove()
    made_by = {id(out): name for name, mod, _, out in calls if isinstance(mod, torch.nn.Conv2d)}
    used: dict[str, int] = {}
    for name, *_ in calls:
        used[name] = used.get(name, 0) + 1
    pairs = [
        (made_by[id(inp)], name)
        for name, mod, inp, _ in calls
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and id(inp) in made_by
        and used[name] == 1 and used[made_by[id(inp)]] == 1 and mod.running_var is not None
    ]
    calls.clear()
    if not pairs:
        return None
    net = copy.deepcopy(module)
    mods = dict(net.named_modules())
    for conv_name, bn_name in pairs:
        conv, bn = mods[conv_name], mods[bn_name]
        with torch.no_grad():
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
            conv.bias = torch.nn.Parameter(shift + (bias - bn.running_mean) * scale, requires_grad=False)
        after = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, torch.nn.Module)]
        parent, _, attr = bn_name.rpartition(".")
        setattr(mods[parent] if parent else net, attr, torch.nn.Sequential(*after) if after else torch.nn.Identity())
    return net


def _batches(image_set: ImageSet, index: np.ndarray, image_size: int, batch_size: int, device: torch.device, workers: int):
    """uint8 batches (n, 3, size, size) of the images ``index``, in order.

    With ``workers`` > 0 a DataLoader decodes in that many processes (pinned memory for CUDA).
    Without, one thread decodes the next batch while the network runs on this one (Pillow
    releases the GIL while decoding and resizing): on 2 cores this hid most of the decoding time
    (bench/README.md). Such batches are already in channels-last order (no copy to convert).
    """
    paths = [image_set.paths[i] for i in index]
    if workers > 0:
        dataset = ImageDataset(paths, image_size)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
            pin_memory=device.type == "cuda", persistent_workers=False,
        )
        yield from loader
        return

    def load(start: int) -> torch.Tensor:
        hwc = np.stack([load_rgb(p, image_size) for p in paths[start : start + batch_size]])
        return torch.from_numpy(hwc).permute(0, 3, 1, 2)  # NCHW shape, channels-last strides

    starts = list(range(0, len(paths), batch_size))
    if not starts:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="layergain-decode") as pool:
        pending = pool.submit(load, starts[0])
        for start in starts[1:]:
            batch = pending.result()
            pending = pool.submit(load, start)
            yield batch
        yield pending.result()


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract_features` gives: the features, the engine that made them, their cache key.

    Attributes
    ----------
    features : dict of str to ndarray of shape (n_images, width)
        float32 features per probe layer name, rows in the order of the image set; empty with
        ``collect=False``.
    engine : {"folded", "traced", "eager"}
        The engine whose features these are: the requested one, or ``"eager"`` where it fell back.
    key : str
        Their cache key (:func:`feature_key` of the network with ``engine``).
    """

    features: dict[str, np.ndarray]
    engine: str
    key: str


def extract_features(
    backbone: Backbone,
    image_set: ImageSet,
    *,
    image_size: int = 224,
    pooling: Pooling = "avg",
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    chunk_size: int = 512,
    num_workers: int | None = None,
    progress: bool = False,
    collect: bool = True,
    engine: Engine = "folded",
) -> Extraction:
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
    batch_size : int, default=None
        Images per forward pass; ``None``: 8 on the CPU, 128 on a GPU.
    device : str or torch.device, default="cpu"
    cache : FeatureCache, default=None
        Reuse and store features there; an interrupted extraction resumes from the last
        finished chunk of ``chunk_size`` images.
    num_workers : int, default=None
        Image-decoding processes; ``None`` picks 0 on the CPU (decoding is cheap beside the
        forward pass) and 4 with CUDA.
    progress : bool, default=False
        Show a progress bar.
    engine : {"folded", "traced", "eager"}, default="folded"
        ``"folded"``: forward hooks on a copy of the network with its batch norms folded into the
        convolutions (:func:`fold_batch_norms`; equal to eager up to float rounding, 1.29x faster
        on Lite0). ``"traced"``: a TorchScript-traced, frozen copy that returns every pooled probe
        layer (fastest on the CPU, but its fused kernels round differently with other thread
        counts). ``"eager"``: forward hooks on the network as it is. ``folded`` and ``traced`` are
        checked against eager on a random batch and fall back to eager where they fail.
        The engine used is part of the cache key; both are in the result.
    collect : bool, default=True
        Return the features. With ``collect=False`` (needs ``cache``) they only go to the cache
        and ``features`` is an empty dict: memory stays at one chunk of images.

    Returns
    -------
    Extraction
        ``features``: float32 features per probe layer name, shape (n_images, width), rows in the
        order of ``image_set``; ``engine``: the engine that made them; ``key``: their cache key.
    """
    check_choice(pooling, "pooling", POOLINGS)
    check_int(image_size, "image_size", minimum=16)
    device = torch.device(device)
    if batch_size is None:
        batch_size = BATCH_CUDA if device.type == "cuda" else BATCH_CPU
    check_int(batch_size, "batch_size", minimum=1)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputValueError("`device` is 'cuda' but no CUDA GPU is available; use `device='cpu'`.")
    workers = (4 if device.type == "cuda" else 0) if num_workers is None else num_workers
    check_choice(engine, "engine", ENGINES)
    names = [layer.name for layer in backbone.layers]
    n = len(image_set)
    if not collect and cache is None:
        raise InputValueError("`collect=False` needs a `cache` to store the features in.")

    def cached(engine_name: str) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
        config = feature_config(backbone, image_size=image_size, pooling=pooling, engine=engine_name)
        if cache is None:
            return config, {}, np.arange(n)
        if collect:
            return config, *cache.lookup(config_key(config), image_set.sha256, names)
        return config, {}, cache.missing(config_key(config), image_set.sha256)

    # Complete under the requested engine's key: it ran before, no need to build it again.
    config, out, missing = cached(engine)
    if missing.size == 0:
        return Extraction(out, engine, config_key(config))
    backbone.module.to(device=device, memory_format=torch.channels_last).eval()  # in place
    engine_name, forward = _engine(backbone, pooling, engine, device, image_size)
    if engine_name != engine:  # fell back to eager: its own cache entry
        config, out, missing = cached(engine_name)
    key = config_key(config)
    if missing.size == 0:
        backbone.module.to("cpu")
        return Extraction(out, engine_name, key)
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
    return Extraction(out, engine_name, key)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False, dynamic_ncols=True)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    After a forward pass torch's OpenMP workers can keep competing for the cores with the
    numpy/scikit-learn work that follows: in the pipeline on this project's loaded 2-core machine
    one network's probes took 42 s before torch was set to one thread for them and 8 s after. On
    a quiet machine a preceding forward pass alone did not slow the probes (``bench/probe.py``).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
