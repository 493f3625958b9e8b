"""Probe layers: which modules' outputs are captured, shallow to deep, their layout and width."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from layergain.errors import InputValueError, ModelError
from layergain.models.readouts import READOUTS, Readout, parse_readout

__all__ = ["ProbeLayer", "default_layer_modules", "fixed_input_size", "probe_layers"]


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
        Width of the layer's default readout (``readout``): the channel count of a feature map,
        the embedding dimension of a token sequence. :meth:`width_for` gives it for any readout.
    params_to_layer : int
        Parameters of every module run up to and including this layer: the size of the network
        cut at this layer.
    layout : {"nchw", "nhwc", "tokens", "vector"}, default="nchw"
        How the output is laid out (:mod:`layergain.models.readouts`).
    channels : int, default=0
        Channels C of a feature map, embedding dimension D of tokens or of a vector (0: ``width``).
    prefix_tokens : int, default=0
        Leading non-patch tokens of a token layer (class, register, distillation tokens).
    class_token : bool, default=False
        Whether token 0 of a token layer is a class token (the ``cls`` readout needs one).
    readout : str, default="avg"
        The layer's default readout: ``avg`` for feature maps and vectors; for tokens ``cls``
        where the model classifies from its class token, else ``mean``.
    """

    name: str
    module: str
    depth: int
    relative_depth: float
    width: int
    params_to_layer: int
    layout: str = "nchw"
    channels: int = 0
    prefix_tokens: int = 0
    class_token: bool = False
    readout: str = "avg"

    @property
    def readouts(self) -> tuple[str, ...]:
        """The readouts that apply to this layer (their default spellings)."""
        kinds = [k for k in READOUTS if self.layout in parse_readout(k).layouts]
        return tuple(k for k in kinds if self.class_token or k not in ("cls", "cls+mean"))

    def check_readout(self, readout: str | Readout) -> Readout:
        """The parsed readout, if it applies to this layer; else an error saying what does."""
        r = parse_readout(readout)
        if self.layout not in r.layouts:
            what = {
                "tokens": f"a token sequence (n, tokens, {self.channels}): use cls, mean or cls+mean",
                "vector": f"a vector (n, {self.channels}): use avg, max or avgmax",
            }.get(self.layout, f"a feature map ({self.layout}, {self.channels} channels): use avg, max, avgmax, gem, grid or cov")
            raise InputValueError(
                f"readout {r.name!r} does not apply to layer {self.name!r} (module {self.module!r}), whose output "
                f"is {what}."
            )
        if r.kind in ("cls", "cls+mean") and not self.class_token:
            raise InputValueError(
                f"readout {r.name!r} needs a class token, and layer {self.name!r} (module {self.module!r}, "
                f"{self.prefix_tokens} prefix tokens) has none; use readout 'mean'."
            )
        return r

    def width_for(self, readout: str | Readout) -> int:
        """Width of ``readout`` of this layer (``avgmax``: 2C, ``grid:k``: C k², ``cov:m``: d(d+1)/2 …)."""
        return self.check_readout(readout).width(self.layout, self.channels or self.width)


def _blocks(container: nn.Module, prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}.{child}", f"{prefix}.{child}") for child, _ in container.named_children()]


def _final_norm(model: nn.Module, path: str = "norm") -> list[tuple[str, str]]:
    norm = dict(model.named_modules()).get(path)
    return [] if norm is None or isinstance(norm, nn.Identity) else [(path, path)]


def _is_block_sequence(module: nn.Module) -> bool:
    """A plain Sequential of blocks (each with sub-modules), not a Conv-BN-act Sequential of leaves."""
    children = list(module.children())
    return type(module) is nn.Sequential and bool(children) and all(any(True for _ in c.children()) for c in children)


def default_layer_modules(model: nn.Module) -> list[tuple[str, str]]:
    """(name, module path) of the default probe layers of ``model``.

    - EfficientNet / MobileNet (timm): the stem, every block, the head convolution.
    - ResNet-like (``conv1 … layer4``, timm and torchvision): the stem after max-pooling, every
      residual block.
    - Vision transformers of timm (ViT, DeiT, BEiT, EVA …: a ``blocks`` list and
      ``num_prefix_tokens``): every block and the final norm (where it is not an identity: BEiT
      and EVA normalise after pooling, in ``fc_norm``, which is not a probe layer).
    - torchvision's ViT: every encoder layer and the final norm ``encoder.ln``.
    - Hierarchical timm models whose ``stages`` or ``layers`` each hold ``blocks`` (ConvNeXt,
      Swin, MaxViT …): the stem (``stem`` or ``patch_embed``), every block, the final ``norm``.
    - Other timm models: their ``feature_info`` stages.
    - Other torchvision models with a ``features`` sequence (EfficientNet, MobileNet, ConvNeXt,
      Swin …): each of its children, a child that is a sequence of blocks split into its blocks,
      and the final ``norm`` where there is one (Swin).
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
    if isinstance(getattr(model, "num_prefix_tokens", None), int) and isinstance(names.get("blocks"), (nn.Sequential, nn.ModuleList)):
        return _blocks(model.blocks, "blocks") + _final_norm(model)
    if isinstance(names.get("encoder.layers"), nn.Sequential) and hasattr(model, "class_token"):
        return _blocks(model.encoder.layers, "encoder.layers") + _final_norm(model, "encoder.ln")
    for top in ("stages", "layers"):
        stages = names.get(top)
        if isinstance(stages, (nn.Sequential, nn.ModuleList)) and len(stages) and all(
            isinstance(getattr(s, "blocks", None), (nn.Sequential, nn.ModuleList)) for s in stages
        ):
            stem = [(m, m) for m in ("stem", "patch_embed") if m in names][:1]
            blocks = [pair for i, s in enumerate(stages) for pair in _blocks(s.blocks, f"{top}.{i}.blocks")]
            return stem + blocks + _final_norm(model)
    info = getattr(model, "feature_info", None)
    if info is not None:
        modules = [f["module"] for f in (info.get_dicts() if hasattr(info, "get_dicts") else info)]
        return [(m, m) for m in modules]
    if isinstance(names.get("features"), nn.Sequential):
        out = []
        for i, child in enumerate(model.features):
            out += _blocks(child, f"features.{i}") if _is_block_sequence(child) else [(f"features.{i}", f"features.{i}")]
        return out + (_final_norm(model) if isinstance(names.get("norm"), nn.LayerNorm) else [])
    raise ModelError(
        f"no default probe-layer list for {type(model).__name__}; pass the module names to probe with "
        "`layers=[NAME, NAME, …]` (list them with `layergain layers --model NAME --all`)."
    )


def fixed_input_size(model: nn.Module) -> int | None:
    """The image size a model only accepts (a ViT or Swin with a fixed patch grid), else None."""
    embed = getattr(model, "patch_embed", None)
    size = getattr(embed, "img_size", None)
    if size is not None and getattr(embed, "strict_img_size", False) and not getattr(model, "dynamic_img_size", False):
        return int(size[0]) if isinstance(size, (tuple, list)) else int(size)
    if hasattr(model, "class_token") and isinstance(getattr(model, "image_size", None), int):  # torchvision ViT
        return int(model.image_size)
    return None


def _token_info(model: nn.Module) -> tuple[int, int | None, bool] | None:
    """(prefix tokens, patch tokens or None, has a class token) of a token model; None for others."""
    prefix = getattr(model, "num_prefix_tokens", None)
    if isinstance(prefix, int):  # timm
        patches = getattr(getattr(model, "patch_embed", None), "num_patches", None)
        has_cls = getattr(model, "has_class_token", None)
        if has_cls is None:
            has_cls = getattr(model, "cls_token", None) is not None
        return prefix, patches if isinstance(patches, int) else None, bool(has_cls) and prefix > 0
    if hasattr(model, "class_token") and isinstance(getattr(model, "seq_length", None), int):  # torchvision ViT
        return 1, model.seq_length - 1, True
    return None


def _declared_format(model: nn.Module) -> str | None:
    fmt = getattr(model, "output_fmt", None)  # timm
    if isinstance(fmt, str) and fmt.upper() in ("NHWC", "NCHW"):
        return fmt.lower()
    if type(model).__name__ == "SwinTransformer" and type(model).__module__.startswith("torchvision"):
        return "nhwc"
    return None


def _describe(output) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        inner = ", ".join(str(tuple(o.shape)) if isinstance(o, torch.Tensor) else type(o).__name__ for o in output[:4])
        return f"a {type(output).__name__} of {len(output)} ({inner}{', …' if len(output) > 4 else ''})"
    return f"a {type(output).__name__}"


def output_layout(model: nn.Module, path: str, output) -> tuple[str, int, int, bool]:
    """(layout, channels, prefix tokens, class token) of the output of module ``path``.

    A 4-D map is channels last when its first two non-batch axes are the equal spatial axes of a
    square input, channels first when its last two are; where all three are equal, the model's
    declared output format decides (timm's ``output_fmt``), else channels first. A 3-D output is a
    token sequence of a transformer (timm's ``num_prefix_tokens``, torchvision's ViT). Anything
    else is an error naming the module and its output.
    """
    fix = "choose another layer (list them with `layergain layers --model NAME --all`)."
    if not isinstance(output, torch.Tensor) or output.ndim not in (2, 3, 4):
        raise ModelError(
            f"cannot read the output of module {path!r} of {type(model).__name__}: it is {_describe(output)}; "
            f"layergain reads tensors (n, C, H, W), (n, H, W, C), (n, tokens, D) or (n, D). Pass `layers=[...]` to {fix}"
        )
    shape = tuple(output.shape)
    if output.ndim == 2:
        return "vector", shape[1], 0, False
    if output.ndim == 3:
        tokens = _token_info(model)
        if tokens is None:
            raise ModelError(
                f"cannot read the output of module {path!r}: a tensor of shape {shape} is read as the tokens of a "
                f"vision transformer, and {type(model).__name__} is not one (no `num_prefix_tokens`). Pass "
                f"`layers=[...]` to {fix}"
            )
        prefix, patches, has_cls = tokens
        if patches is None or shape[1] == patches + prefix:
            return "tokens", shape[2], prefix, has_cls
        if shape[1] == patches:
            return "tokens", shape[2], 0, False
        raise ModelError(
            f"cannot read the output of module {path!r}: a tensor of shape {shape} has {shape[1]} tokens, and "
            f"{type(model).__name__} has {patches} patch and {prefix} prefix tokens, so which are which is unknown. "
            f"Pass `layers=[...]` to {fix}"
        )
    a, b, c = shape[1:]
    if b == c and a != b:
        return "nchw", a, 0, False
    if a == b and b != c:
        return "nhwc", c, 0, False
    declared = _declared_format(model)
    if a == b == c or declared is not None:
        layout = declared or "nchw"
        return layout, (a if layout == "nchw" else c), 0, False
    raise ModelError(
        f"cannot read the output of module {path!r}: in a tensor of shape {shape} no two axes are the equal "
        f"spatial axes of a square image, so its channel axis is unknown. Pass `layers=[...]` to {fix}"
    )


def _default_token_readout(model: nn.Module, layouts: list[tuple[str, int, int, bool]]) -> str:
    pools_cls = getattr(model, "global_pool", None) == "token" or hasattr(model, "class_token")
    tokens = [lay for lay in layouts if lay[0] == "tokens"]
    return "cls" if pools_cls and all(has_cls for *_, has_cls in tokens) else "mean"


def probe_layers(
    model: nn.Module, library: str = "", arch: str = "", layers: list[str] | None = None, image_size: int | None = None
) -> list[ProbeLayer]:
    """The probe layers of ``model``, measured by one forward pass of a blank image.

    The pass runs at ``image_size``, by default the model's fixed input size (a ViT's patch
    grid) or 224. Each layer's output gives its layout and channels (:func:`output_layout`).
    ``params_to_layer`` counts the parameters of every module that has finished its forward
    pass when the probe layer's output is produced, each module once; the own parameters of a
    module that holds others (a ViT's class token and position embedding) count from its start.
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
    layouts: dict[str, tuple[str, int, int, bool]] = {}
    params: dict[str, int] = {}

    def count_done() -> int:
        return sum(p.numel() for m in done for p in m.parameters(recurse=False))

    def mark(module, *_):
        if id(module) not in seen:
            seen.add(id(module))
            done.append(module)

    def probe_hook(name):
        def hook(module, args, output):
            if name not in layouts:
                layouts[name] = output_layout(model, name, output)
                params[name] = count_done()

        return hook

    owners = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    handles = [m.register_forward_pre_hook(mark) if any(True for _ in m.children()) else m.register_forward_hook(mark) for m in owners]
    # Probe hooks are registered after the others, so a probe module's own parameters count.
    handles += [modules[path].register_forward_hook(probe_hook(path)) for _, path in pairs]
    size = image_size or fixed_input_size(model) or 224
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    missing = [path for _, path in pairs if path not in layouts]
    if missing:
        raise ModelError(f"module {missing[0]!r} is not used in the forward pass; choose another layer.")
    order = sorted(range(len(pairs)), key=lambda i: params[pairs[i][1]])
    if order != list(range(len(pairs))):
        pairs = [pairs[i] for i in order]
    token_readout = _default_token_readout(model, list(layouts.values()))
    n = len(pairs)
    out = []
    for i, (name, path) in enumerate(pairs):
        layout, channels, prefix, has_cls = layouts[path]
        out.append(
            ProbeLayer(
                name=name,
                module=path,
                depth=i,
                relative_depth=i / (n - 1) if n > 1 else 1.0,
                width=channels,
                params_to_layer=params[path],
                layout=layout,
                channels=channels,
                prefix_tokens=prefix,
                class_token=has_cls,
                readout=token_readout if layout == "tokens" else "avg",
            )
        )
    return out
