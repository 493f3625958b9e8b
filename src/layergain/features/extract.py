"""Feature extraction: every probe layer of a network, every readout, in one forward pass per batch, cached."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from layergain.data import ImageSet
from layergain.errors import InputValueError
from layergain.features.cache import FeatureCache, config_key
from layergain.features.images import ImageDataset, load_rgb
from layergain.features.readouts import LayerReader
from layergain.models import Backbone
from layergain.models.readouts import Readout, parse_readout, parse_readouts
from layergain.validation import check_choice, check_int

__all__ = [
    "ENGINES",
    "Extraction",
    "extract_features",
    "feature_config",
    "feature_key",
    "fold_batch_norms",
    "resolve_readouts",
    "torch_threads",
]

FEATURE_VERSION = 1  # bump when extraction changes its numbers


def feature_config(
    backbone: Backbone,
    *,
    image_size: int | None = None,
    readout: str | Readout | None = None,
    engine: str = "eager",
    pooling: str | None = None,
) -> dict:
    """Everything that determines one readout of a network's features (the cache key's content).

    ``readout`` (``pooling`` is its older name) defaults to the backbone's default readout and
    ``image_size`` to its input size (:func:`extract_features`). The readout is stored under
    ``"pooling"`` with its settings (``gem``, ``grid``, ``cov``) under ``"readout"``; the layers'
    layouts are in the configuration of a model whose layers are not all channels-first maps, so
    that the keys of CNNs read with ``avg``, ``max`` and ``avgmax`` are those from before readouts
    existed and the keys of channels-last and token models differ from the misread ones of then.
    """
    r = parse_readout(_one_readout(backbone, readout, pooling), "readout")
    config = {
        "version": FEATURE_VERSION,
        "backbone": backbone.identity,
        "layers": [layer.module for layer in backbone.layers],
        "image_size": _image_size(backbone, image_size),
        "pooling": r.name,
        "resize": "bicubic-whole-image",
        "mean": list(backbone.mean),
        "std": list(backbone.std),
    }
    if r.settings():
        config["readout"] = r.settings()
    if any(layer.layout in ("nhwc", "tokens") for layer in backbone.layers):
        config["layouts"] = [[layer.layout, layer.prefix_tokens] for layer in backbone.layers]
    if engine != "eager":  # eager keys stay as they were before engines existed
        config["engine"] = engine
    return config


def feature_key(
    backbone: Backbone,
    *,
    image_size: int | None = None,
    readout: str | Readout | None = None,
    engine: str = "eager",
    pooling: str | None = None,
) -> str:
    """Cache key of one readout of a network's features (see :mod:`layergain.features.cache`)."""
    return config_key(feature_config(backbone, image_size=image_size, readout=readout, engine=engine, pooling=pooling))


def _one_readout(backbone: Backbone, readout, pooling):
    if readout is not None and pooling is not None and parse_readout(readout) != parse_readout(pooling, "pooling"):
        raise InputValueError(f"pass the readout once: `readout`={readout!r} and `pooling`={pooling!r} differ.")
    return readout if readout is not None else pooling if pooling is not None else backbone.default_readout


def _image_size(backbone: Backbone, image_size: int | None) -> int:
    if image_size is None:
        return backbone.input_size or 224
    check_int(image_size, "image_size", minimum=16)
    if backbone.input_size is not None and image_size != backbone.input_size:
        raise InputValueError(
            f"`image_size` is {image_size}, and {backbone.name} only takes {backbone.input_size}x{backbone.input_size} "
            f"images (its patch grid is fixed); pass `image_size={backbone.input_size}`, or build the model for "
            f"{image_size} px with `model_kwargs={{'img_size': {image_size}}}`."
        )
    return image_size


def resolve_readouts(
    backbone: Backbone, readouts: str | Readout | Sequence[str | Readout] | None = None, pooling: str | None = None
) -> tuple[Readout, ...]:
    """The readouts of an extraction, checked against every probe layer.

    ``readouts`` (a name or a list) or ``pooling`` (one name; the older parameter), else the
    backbone's default readout. Raises InputValueError naming the first layer a readout does not
    apply to (a CNN readout on tokens, a token readout on a feature map, ``cls`` without a class
    token).
    """
    if readouts is not None and pooling is not None:
        raise InputValueError(
            f"pass either `readouts` or `pooling`, not both (got readouts={readouts!r}, pooling={pooling!r}); "
            f"`pooling` is the older name of a single readout."
        )
    if readouts is not None:
        parsed = parse_readouts(readouts, "readouts")
    else:
        parsed = (parse_readout(pooling if pooling is not None else backbone.default_readout, "pooling"),)
    for layer in backbone.layers:
        for r in parsed:
            layer.check_readout(r)
    return parsed


Engine = Literal["folded", "traced", "eager"]
ENGINES: tuple[str, ...] = ("folded", "traced", "eager")

# Default images per forward pass: on the 2-core CPU of bench/README.md small batches ran
# fastest (activations stay in cache; Lite0 at 224 px, folded: batch 4 0.96 s, 8 1.00 s,
# 16 1.27 s, 32 1.47 s for 64 images); a GPU wants large batches.
BATCH_CPU, BATCH_CUDA = 8, 128


class _Probed(torch.nn.Module):
    """The network returning every readout of every probe layer, layer by layer (what gets traced)."""

    def __init__(self, backbone: Backbone, readers: list[LayerReader], module: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.model = backbone.module if module is None else module
        self.modules_ = [dict(self.model.named_modules())[layer.module] for layer in backbone.layers]
        self.readers = readers

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out: list[torch.Tensor] = []

        def hook(reader: LayerReader):
            return lambda mod, a, o: out.extend(reader(o))

        handles = [m.register_forward_hook(hook(r)) for m, r in zip(self.modules_, self.readers)]
        try:
            self.model(x)
        finally:
            for h in handles:
                h.remove()
        return tuple(out)


def _engine(backbone: Backbone, readers: list[LayerReader], requested: str, device: torch.device, image_size: int):
    """(name, callable batch -> list of read tensors) of the requested engine, else eager.

    ``folded``: a copy of the network with every batch norm that reads a convolution's output
    folded into that convolution's weights and bias, probed with hooks as the eager one (same
    module names). ``traced``: TorchScript-traced and frozen (folds batch norms and fuses kernels;
    the first batches pay for tracing). Either is checked against the eager network on a seeded
    random batch; a model where it fails or disagrees runs eagerly. The eager network reads that
    batch first, outside the check, so that a readout that cannot read a layer at this image size
    says so instead of making the faster engine fall back.
    """
    probed = _Probed(backbone, readers).eval()
    if requested == "eager":
        return "eager", lambda x: list(probed(x))
    g = torch.Generator().manual_seed(0)
    # tracing wants a batch of 2 (shapes are not specialised to 1); folding needs a single image
    example = torch.randn(2 if requested == "traced" else 1, 3, image_size, image_size, generator=g).to(device)
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        slow = probed(example)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if requested == "traced":
                fast_net = torch.jit.freeze(torch.jit.trace(probed, example, check_trace=False))
            else:
                folded = fold_batch_norms(backbone.module, example)
                fast_net = _Probed(backbone, readers, folded).eval() if folded is not None else None
            if fast_net is not None and _agree(fast_net(example), slow):
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
    """What :func:`extract_features` gives: the features, the engine that made them, their cache keys.

    Attributes
    ----------
    features : dict of str to ndarray of shape (n_images, width)
        float32 features of the first readout (``readouts[0]``, the only one unless several were
        asked for) per probe layer name, rows in the order of the image set; empty with
        ``collect=False``.
    engine : {"folded", "traced", "eager"}
        The engine whose features these are: the requested one, or ``"eager"`` where it fell back.
    key : str
        The cache key of ``features`` (:func:`feature_key` of the network, the first readout and
        ``engine``).
    readouts : tuple of str, default=()
        Canonical names of the readouts computed, in the order asked (``("avg",)`` …).
    by_readout : dict of str to dict of str to ndarray, default={}
        Features of every readout: ``by_readout[readout][layer]``, shape (n_images,
        ``layer.width_for(readout)``); ``by_readout[readouts[0]] is features``.
    keys : dict of str to str, default={}
        The cache key of each readout: every readout is cached under its own key.
    """

    features: dict[str, np.ndarray]
    engine: str
    key: str
    readouts: tuple[str, ...] = ()
    by_readout: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def extract_features(
    backbone: Backbone,
    image_set: ImageSet,
    *,
    image_size: int | None = None,
    readouts: str | Readout | Sequence[str | Readout] | None = None,
    pooling: str | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    cache: FeatureCache | None = None,
    chunk_size: int = 512,
    num_workers: int | None = None,
    progress: bool = False,
    collect: bool = True,
    engine: Engine = "folded",
) -> Extraction:
    """Features of every probe layer for every image, for one or several readouts, in one pass.

    Parameters
    ----------
    backbone : Backbone
        The network (``layergain.models.load_backbone``).
    image_set : ImageSet
        The images, in order.
    image_size : int, default=None
        Images are resized to ``image_size`` × ``image_size``; ``None``: the network's fixed input
        size (a ViT or Swin built for one patch grid) or 224. Another size than a fixed one is an
        error.
    readouts : str or list of str, default=None
        How each layer's output becomes a vector (:mod:`layergain.models.readouts`): for feature
        maps (channels first or last) ``"avg"``, ``"max"``, ``"avgmax"``, ``"gem"``, ``"grid"``
        (``"grid:K"``), ``"cov"`` (``"cov:M"``); for a transformer's tokens ``"cls"``, ``"mean"``,
        ``"cls+mean"``. Every readout comes from the same forward pass and is cached under its own
        key. ``None``: ``pooling``, else the backbone's default readout (``avg`` for CNNs, the
        model's own ``cls`` or ``mean`` for transformers). A readout that does not apply to a
        layer's layout is an error naming the layer.
    pooling : str, default=None
        One readout (the older name of ``readouts``; not with it).
    batch_size : int, default=None
        Images per forward pass; ``None``: 8 on the CPU, 128 on a GPU.
    device : str or torch.device, default="cpu"
    cache : FeatureCache, default=None
        Reuse and store features there; an interrupted extraction resumes from the last
        finished chunk of ``chunk_size`` images. Only images missing for some readout go through
        the network.
    num_workers : int, default=None
        Image-decoding processes; ``None`` picks 0 on the CPU (decoding is cheap beside the
        forward pass) and 4 with CUDA.
    progress : bool, default=False
        Show a progress bar.
    engine : {"folded", "traced", "eager"}, default="folded"
        ``"folded"``: forward hooks on a copy of the network with its batch norms folded into the
        convolutions (:func:`fold_batch_norms`; equal to eager up to float rounding, 1.29x faster
        on Lite0). ``"traced"``: a TorchScript-traced, frozen copy that returns every read probe
        layer (fastest on the CPU, but its fused kernels round differently with other thread
        counts). ``"eager"``: forward hooks on the network as it is. ``folded`` and ``traced`` are
        checked against eager on a random batch and fall back to eager where they fail.
        The engine used is part of the cache key; both are in the result.
    collect : bool, default=True
        Return the features. With ``collect=False`` (needs ``cache``) they only go to the cache
        and the feature dicts are empty: memory stays at one chunk of images.

    Returns
    -------
    Extraction
        ``features`` (of the first readout) and ``by_readout`` (of each): float32 features per
        probe layer name, shape (n_images, width), rows in the order of ``image_set``;
        ``engine``: the engine that made them; ``key`` and ``keys``: their cache keys;
        ``readouts``: the readouts' canonical names.
    """
    chosen = resolve_readouts(backbone, readouts, pooling)
    image_size = _image_size(backbone, image_size)
    device = torch.device(device)
    if batch_size is None:
        batch_size = BATCH_CUDA if device.type == "cuda" else BATCH_CPU
    check_int(batch_size, "batch_size", minimum=1)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputValueError("`device` is 'cuda' but no CUDA GPU is available; use `device='cpu'`.")
    workers = (4 if device.type == "cuda" else 0) if num_workers is None else num_workers
    check_choice(engine, "engine", ENGINES)
    names = [layer.name for layer in backbone.layers]
    rnames = [r.name for r in chosen]
    n = len(image_set)
    if not collect and cache is None:
        raise InputValueError("`collect=False` needs a `cache` to store the features in.")

    def cached(engine_name: str) -> dict[str, tuple[dict, dict[str, np.ndarray], np.ndarray]]:
        """Per readout: its configuration, what the cache holds, which images it misses."""
        out = {}
        for r in chosen:
            config = feature_config(backbone, image_size=image_size, readout=r, engine=engine_name)
            if cache is None:
                out[r.name] = config, {}, np.arange(n)
            elif collect:
                out[r.name] = config, *cache.lookup(config_key(config), image_set.sha256, names)
            else:
                out[r.name] = config, {}, cache.missing(config_key(config), image_set.sha256)
        return out

    def result(engine_name: str, state) -> Extraction:
        by_readout = {r: state[r][1] for r in rnames}
        keys = {r: config_key(state[r][0]) for r in rnames}
        return Extraction(by_readout[rnames[0]], engine_name, keys[rnames[0]], tuple(rnames), by_readout, keys)

    def needed(state) -> np.ndarray:
        return np.unique(np.concatenate([state[r][2] for r in rnames])).astype(np.intp)

    # Complete under the requested engine's keys: it ran before, no need to build it again.
    state = cached(engine)
    if needed(state).size == 0:
        return result(engine, state)
    backbone.module.to(device=device, memory_format=torch.channels_last).eval()  # in place
    readers = [LayerReader(layer, chosen, device) for layer in backbone.layers]
    try:
        engine_name, forward = _engine(backbone, readers, engine, device, image_size)
    except BaseException:
        backbone.module.to("cpu")
        raise
    if engine_name != engine:  # fell back to eager: its own cache entries
        state = cached(engine_name)
    missing = needed(state)
    if missing.size == 0:
        backbone.module.to("cpu")
        return result(engine_name, state)
    slots = [(layer, r) for layer in names for r in rnames]  # the order readers give their outputs
    mean = torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std, device=device).view(1, 3, 1, 1) * 255
    bar = _progress_bar(missing.size, f"{backbone.init:>10}", progress)
    try:
        for start in range(0, missing.size, chunk_size):
            chunk = missing[start : start + chunk_size]
            sink: dict[tuple[str, str], list[torch.Tensor]] = {slot: [] for slot in slots}
            with torch.inference_mode():
                for batch in _batches(image_set, chunk, image_size, batch_size, device, workers):
                    x = batch.to(device, non_blocking=True).float()
                    x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
                    for slot, value in zip(slots, forward(x), strict=True):
                        sink[slot].append(value)
                    bar.update(len(batch))
            for r in rnames:
                config, out, missing_r = state[r]
                rows = np.flatnonzero(np.isin(chunk, missing_r))  # a readout stores only what it lacked
                if rows.size == 0:
                    continue
                feats = {name: torch.cat(sink[(name, r)]).cpu().numpy()[rows] for name in names}
                if cache is not None:
                    cache.store(config_key(config), config, [image_set.sha256[i] for i in chunk[rows]], feats)
                for name in names if collect else ():
                    if name not in out:
                        out[name] = np.full((n, feats[name].shape[1]), np.nan, dtype=np.float32)
                    out[name][chunk[rows]] = feats[name]
    finally:
        bar.close()
        backbone.module.to("cpu")
    return result(engine_name, state)


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
