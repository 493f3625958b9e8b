"""Probe layers: which modules' outputs are captured, shallow to deep, with their size."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from layergain.errors import ModelError

__all__ = ["ProbeLayer", "default_layer_modules", "probe_layers"]


@dataclass(frozen=True)
class ProbeLayer:
    """One probe layer.

    Attributes
    ----------
    name : str
        Name used in results (``stem``, ``blocks.3.1``, ``head`` …).
    module : str
        Dotted path of the module whose output is captured.
    depth : int
        Index from 0 (shallowest) to n_layers - 1.
    relative_depth : float
        ``depth / (n_layers - 1)``, in [0, 1].
    width : int
        Number of channels of the output (before pooling).
    params_to_layer : int
        Parameters of every module run up to and including this layer: the size of the network
        cut at this layer.
    """

    name: str
    module: str
    depth: int
    relative_depth: float
    width: int
    params_to_layer: int


def default_layer_modules(model: nn.Module) -> list[tuple[str, str]]:
    """(name, module path) of the default probe layers of ``model``.

    EfficientNet / MobileNet (timm): the stem, every block, the head convolution.
    ResNet-like (``conv1 … layer4``): the stem after max-pooling, every residual block.
    Other timm models: their ``feature_info`` stages. Other torchvision models with a
    ``features`` sequence: each of its children.
    """
    names = dict(model.named_modules())
    if "conv_stem" in names and "blocks" in names:
        out = [("stem", "bn1")]
        out += [(f"blocks.{s}.{b}", f"blocks.{s}.{b}") for s, stage in enumerate(model.blocks) for b in range(len(stage))]
        if "conv_head" in names and "bn2" in names:
            out.append(("head", "bn2"))
        return out
    if all(f"layer{i}" in names for i in range(1, 5)) and "maxpool" in names:
        out = [("stem", "maxpool")]
        for i in range(1, 5):
            out += [(f"layer{i}.{j}", f"layer{i}.{j}") for j in range(len(names[f"layer{i}"]))]
        return out
    info = getattr(model, "feature_info", None)
    if info is not None:
        modules = [f["module"] for f in (info.get_dicts() if hasattr(info, "get_dicts") else info)]
        return [(m, m) for m in modules]
    if isinstance(names.get("features"), nn.Sequential):
        return [(f"features.{i}", f"features.{i}") for i in range(len(names["features"]))]
    raise ModelError(
        f"no default probe-layer list for {type(model).__name__}; pass the module names to probe with "
        "`layers=[NAME, NAME, …]` (list them with `layergain layers --model NAME --all`)."
    )


def probe_layers(
    model: nn.Module, library: str = "", arch: str = "", layers: list[str] | None = None, image_size: int = 224
) -> list[ProbeLayer]:
    """The probe layers of ``model``, measured by one forward pass of a blank image.

    ``params_to_layer`` counts the parameters of every module that has finished its forward
    pass when the probe layer's output is produced, each module once.
    """
    modules = dict(model.named_modules())
    if layers is None:
        pairs = default_layer_modules(model)
    else:
        unknown = [m for m in layers if m not in modules or m == ""]
        if unknown:
            raise ModelError(
                f"{arch or type(model).__name__} has no module named {unknown[0]!r}; list the names with "
                "`layergain layers --model NAME --all`."
            )
        pairs = [(m, m) for m in layers]
    done: list[nn.Module] = []
    seen: set[int] = set()
    widths: dict[str, int] = {}
    params: dict[str, int] = {}

    def count_done() -> int:
        return sum(p.numel() for m in done for p in m.parameters(recurse=False))

    def leaf_hook(module, args, output):
        if id(module) not in seen:
            seen.add(id(module))
            done.append(module)

    def probe_hook(name):
        def hook(module, args, output):
            if name not in widths:
                if not isinstance(output, torch.Tensor) or output.ndim < 2:
                    raise ModelError(f"module {name!r} does not output a feature tensor; choose another layer.")
                widths[name] = int(output.shape[1])
                params[name] = count_done()

        return hook

    handles = [m.register_forward_hook(leaf_hook) for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    # Probe hooks are registered after the leaf hooks, so a probe module's own parameters count.
    handles += [modules[path].register_forward_hook(probe_hook(path)) for _, path in pairs]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in handles:
            h.remove()
    missing = [path for _, path in pairs if path not in widths]
    if missing:
        raise ModelError(f"module {missing[0]!r} is not used in the forward pass; choose another layer.")
    order = sorted(range(len(pairs)), key=lambda i: params[pairs[i][1]])
    if order != list(range(len(pairs))):
        pairs = [pairs[i] for i in order]
    n = len(pairs)
    return [
        ProbeLayer(
            name=name,
            module=path,
            depth=i,
            relative_depth=i / (n - 1) if n > 1 else 1.0,
            width=widths[path],
            params_to_layer=params[path],
        )
        for i, (name, path) in enumerate(pairs)
    ]
