r"""Random baselines: which "same architecture with random weights" a pretrained network is measured against.

The gain of a layer is defined against a random twin of the pretrained network, and which random
weights is a choice. Each baseline below controls for something else:

``default``
    The architecture's own initialisation under ``seed`` (:func:`~layergain.models.load_backbone`
    with ``weights=None``), batch-norm running statistics at their initial values (mean 0,
    variance 1). Today's baseline, unchanged: same weights, same identity, same cache keys.
``bn-recalibrated``
    The ``default`` network of ``seed`` with every batch norm's running statistics re-estimated
    on images of the set (:func:`recalibrate_batch_norms`), so that no layer of the random
    network is judged on activations that were never normalised. Controls for the
    normalisation mismatch of a network whose running statistics were never fitted to any data.
``permuted``
    Each pretrained parameter tensor with its values shuffled under ``seed``
    (:func:`permute_parameters`): per tensor the very multiset of pretrained values, so the same
    scale and distribution per layer, but no learned arrangement of them. Controls for the
    weights' value distribution: a gain over it is due to the learned structure alone.
``matched``
    Each pretrained parameter tensor replaced by i.i.d. normal draws with that tensor's mean and
    variance (:func:`match_parameters`; "Mean Var Init" of Raghu et al. 2019). Controls for each
    layer's weight scale (its first two moments) without the higher moments that ``permuted``
    keeps.

Buffers of ``permuted`` and ``matched``: batch-norm running statistics are not learned weights
but statistics of the *pretrained* network's activations on ImageNet, so they are neither kept,
shuffled nor drawn: they are reset to the architecture's initial values (``running_mean`` 0,
``running_var`` 1, ``num_batches_tracked`` 0), exactly as in ``default``. ``permuted`` and
``matched`` thus differ from ``default`` in the parameters only (a normal draw of a variance
could also be negative). A tensor with one value (or with all values equal) is left as it is by
both: its only permutation is itself, and its variance is 0.

References
----------
Raghu, M., Zhang, C., Kleinberg, J. and Bengio, S. (2019). Transfusion: Understanding transfer
learning for medical imaging. *NeurIPS 32*. (Mean Var Init, section 4.)

Li, Y., Wang, N., Shi, J., Hou, X. and Liu, J. (2018). Adaptive batch normalization for practical
domain adaptation. *Pattern Recognition* 80, 109-117. (Re-estimating batch-norm statistics on a
new domain's images, without labels.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from layergain.errors import InputTypeError, InputValueError, ModelError
from layergain.models.backbones import Backbone, load_backbone
from layergain.validation import check_choice, check_int

__all__ = [
    "BASELINES",
    "MAX_CALIBRATION_IMAGES",
    "Baseline",
    "baseline_backbone",
    "batch_norms",
    "calibration_index",
    "match_parameters",
    "permute_parameters",
    "recalibrate_batch_norms",
]

Baseline = Literal["default", "bn-recalibrated", "permuted", "matched"]
#: The random baselines, the default (today's random network) first.
BASELINES: tuple[str, ...] = ("default", "bn-recalibrated", "permuted", "matched")
#: Bump when a baseline's construction changes its weights: part of the identity (cache key) of
#: every baseline but ``default``.
BASELINE_VERSION = 1
#: Images re-estimating the batch norms of ``bn-recalibrated`` by default. They pass the network
#: as one batch (see :func:`recalibrate_batch_norms`): EfficientNet-Lite0 at 224 px peaked at
#: about 18 MB per image on the CPU (32 images: 580 MB), so 128 images take about 2.3 GB. The
#: deepest 7 x 7 maps still give 128 * 49 = 6272 positions per channel.
MAX_CALIBRATION_IMAGES = 128


def baseline_backbone(
    name: str,
    baseline: Baseline,
    seed: int,
    *,
    weights: str | Path = "pretrained",
    layers: list[str] | None = None,
    model_kwargs: dict | None = None,
    images: torch.Tensor | np.ndarray | Iterable[torch.Tensor | np.ndarray] | None = None,
    device: str | torch.device = "cpu",
) -> Backbone:
    """The random network of ``baseline`` with ``seed``.

    Parameters
    ----------
    name : str
        Model name, as for :func:`~layergain.models.load_backbone`.
    baseline : {"default", "bn-recalibrated", "permuted", "matched"}
        Which random network (module docstring).
    seed : int
        Seed of the random network (>= 0): of the architecture's initialisation for ``default``
        and ``bn-recalibrated``, of the shuffles or draws for ``permuted`` and ``matched``.
    weights : str or Path, default="pretrained"
        The pretrained weights whose tensors ``permuted`` and ``matched`` shuffle or match
        (``"pretrained"`` or a local state dict, as for ``load_backbone``); unused by
        ``default`` and ``bn-recalibrated``.
    layers : list of str, default=None
        Probe layers instead of the model's default list.
    model_kwargs : dict, default=None
        Keyword arguments of the architecture's constructor.
    images : array-like of shape (n_images, 3, size, size), or an iterable of them, default=None
        ``bn-recalibrated`` only, and required there: the calibration images as uint8 RGB, decoded
        and resized as the extraction does (``layergain.features.images.load_rgb``) but not
        normalised; several arrays are concatenated along the images. Pick them with
        :func:`calibration_index`. Their pixels (a SHA-256 of them) and shape are part of the
        network's identity.
    device : str or torch.device, default="cpu"
        Where the calibration pass of ``bn-recalibrated`` runs; the network comes back on the CPU.

    Returns
    -------
    Backbone
        ``init`` is ``random-<seed>`` for every baseline (the results' ``init`` name; the run
        says which baseline). ``identity`` (the feature cache key's network) is
        ``load_backbone(name, weights=None, seed=seed, ...)``'s own for ``default``; every other
        baseline's names the baseline, :data:`BASELINE_VERSION` and what it was made from (the
        calibration images' digest, the pretrained weights' SHA-256), so features of different
        baselines never share a cache entry.

    Raises
    ------
    InputValueError
        An unknown ``baseline``, ``images`` missing for ``bn-recalibrated`` or given to another
        baseline, images of another shape than (n, 3, size, size).
    ModelError
        ``bn-recalibrated`` of a model without batch norm (its "recalibrated" network would be
        the ``default`` one under another name).
    """
    check_choice(baseline, "baseline", BASELINES)
    check_int(seed, "seed", minimum=0)
    if baseline == "bn-recalibrated" and images is None:
        raise InputValueError(
            "the `bn-recalibrated` baseline re-estimates batch-norm statistics on images; pass `images` "
            "(uint8 array of shape (n, 3, size, size), e.g. the images of "
            "`calibration_index(len(image_set))`)."
        )
    if baseline != "bn-recalibrated" and images is not None:
        raise InputValueError(
            f"`images` are only used by the `bn-recalibrated` baseline, got them for {baseline!r}; "
            "pass `images=None`."
        )
    if baseline in ("default", "bn-recalibrated"):
        calibration = _as_images(images) if baseline == "bn-recalibrated" else None
        backbone = load_backbone(name, weights=None, seed=seed, layers=layers, model_kwargs=model_kwargs)
        if calibration is None:
            return backbone
        module, mean, std = backbone.module, backbone.mean, backbone.std
        digest = recalibrate_batch_norms(module, calibration, mean, std, device=device)
        shape = "x".join(str(d) for d in calibration.shape)
        backbone.identity = f"{backbone.identity}|bn-recalibrated-v{BASELINE_VERSION}:{shape}:{digest}"
        backbone.weights_source = "random+bn-recalibrated"
        return backbone
    backbone = load_backbone(name, weights=weights, layers=layers, model_kwargs=model_kwargs)
    redraw = permute_parameters if baseline == "permuted" else match_parameters
    redraw(backbone.module, seed)
    for bn in batch_norms(backbone.module):
        bn.reset_running_stats()
    built, _, rest = backbone.identity.partition("|pretrained|")
    versions = _versions()
    backbone.identity = f"{built}|{baseline}-{seed}-v{BASELINE_VERSION}|{rest.rstrip('|')}|{versions}"
    backbone.init = f"random-{seed}"
    backbone.weights_source = f"{baseline}:{backbone.weights_source}"
    return backbone


def _versions() -> str:
    import timm
    import torchvision

    return f"torch={torch.__version__},torchvision={torchvision.__version__},timm={timm.__version__}"


def batch_norms(module: nn.Module) -> list[_BatchNorm]:
    """The batch norms of ``module`` that keep running statistics, in module order."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.running_mean is not None]


def permute_parameters(module: nn.Module, seed: int) -> None:
    """Shuffle the values of each parameter tensor of ``module`` in place, under ``seed``.

    Each tensor keeps its multiset of values; one ``torch.Generator`` seeded with ``seed``
    draws one permutation per tensor, in ``named_parameters`` order. Buffers are left alone.
    """
    g = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    with torch.no_grad():
        for _, p in _float_parameters(module):
            flat = p.detach().reshape(-1)
            p.copy_(flat[torch.randperm(flat.numel(), generator=g).to(flat.device)].view_as(p))


def match_parameters(module: nn.Module, seed: int) -> None:
    r"""Replace each parameter tensor of ``module`` in place by normal draws with its mean and variance.

    For a tensor with values :math:`w_1, \dots, w_n`,

    .. math::

        w'_j \sim \mathcal{N}(\bar w, s^2), \quad
        \bar w = \frac{1}{n}\sum_j w_j, \quad s^2 = \frac{1}{n}\sum_j (w_j - \bar w)^2,

    the population (biased) variance of the values, computed in float64; one
    ``torch.Generator`` seeded with ``seed`` draws every tensor, in ``named_parameters`` order.
    A tensor with one value, or with all values equal, is unchanged (:math:`s = 0`). Buffers are
    left alone. Raghu et al. (2019), "Mean Var Init".
    """
    g = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    with torch.no_grad():
        for _, p in _float_parameters(module):
            values = p.detach().double().cpu()
            mean, std = values.mean(), values.std(correction=0)
            draw = torch.randn(p.shape, generator=g, dtype=torch.float64)
            p.copy_((draw * std + mean).to(p.dtype))


def _float_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.is_floating_point()]


def calibration_index(
    n_images: int, *, max_images: int = MAX_CALIBRATION_IMAGES, seed: int = 0
) -> np.ndarray:
    """Which images of a set of ``n_images`` re-estimate the batch norms: all, or a seeded subset.

    Returns the sorted indices of ``min(n_images, max_images)`` images drawn without
    replacement with ``numpy.random.default_rng(seed)``, whatever their labels (the
    recalibration uses none). The subset does not depend on the network's seed, so the seeds of
    ``bn-recalibrated`` differ in their weights only.
    """
    check_int(n_images, "n_images", minimum=1)
    check_int(max_images, "max_images", minimum=2)
    if n_images <= max_images:
        return np.arange(n_images)
    return np.sort(np.random.default_rng(seed).choice(n_images, size=max_images, replace=False))


def _as_images(images) -> torch.Tensor:
    """Calibration images as one uint8 tensor of shape (n, 3, size, size)."""
    if type(images).__name__ == "ImageSet":
        raise InputTypeError(
            "`images` must be decoded images, got an ImageSet; decode the calibration subset with "
            "`np.stack([load_rgb(image_set.paths[i], size) for i in calibration_index(len(image_set))])"
            ".transpose(0, 3, 1, 2)` (load_rgb from layergain.features.images)."
        )
    parts = [images] if isinstance(images, (torch.Tensor, np.ndarray)) else list(images)
    if not parts:
        raise InputValueError("`images` is empty; pass at least 2 calibration images.")
    tensors = [torch.as_tensor(part) for part in parts]
    for t in tensors:
        if t.dtype != torch.uint8:
            raise InputTypeError(
                f"`images` must be uint8 RGB (0..255, not normalised), got dtype {t.dtype}; pass the "
                "images as `load_rgb` decodes them."
            )
        if t.dim() != 4 or t.shape[1] != 3:
            hint = " (channels last: use `.permute(0, 3, 1, 2)`)" if t.dim() == 4 and t.shape[-1] == 3 else ""
            raise InputValueError(
                f"`images` must have shape (n_images, 3, size, size), got {tuple(t.shape)}{hint}."
            )
    if len({tuple(t.shape[1:]) for t in tensors}) > 1:
        raise InputValueError(
            f"`images` batches differ in image size: {sorted({tuple(t.shape[1:]) for t in tensors})}; "
            "resize them to one size."
        )
    out = torch.cat(tensors)
    if out.shape[0] < 2:
        raise InputValueError(f"`images` holds {out.shape[0]} image; a variance needs at least 2 images.")
    return out.contiguous()


def recalibrate_batch_norms(
    module: nn.Module,
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    device: str | torch.device = "cpu",
) -> str:
    r"""Re-estimate the running statistics of every batch norm of ``module`` on ``images``, in place.

    The images are normalised as the extraction normalises them,
    ``(x - 255 mean) / (255 std)``, and pass the network in eval mode as one batch without
    gradients. A forward pre-hook on each batch norm sets its running statistics to the
    per-channel mean and population variance of the very input it is about to normalise, over
    every image and position (float64 sums over chunks of images), before it normalises it:

    .. math::

        \mu_c = \frac{1}{n}\sum_{i, p} x_{i c p}, \quad
        \sigma^2_c = \frac{1}{n}\sum_{i, p} (x_{i c p} - \mu_c)^2, \quad
        n = n_\text{images} \cdot n_\text{positions}.

    So each batch norm is fitted to the inputs that the already recalibrated batch norms before it
    produce, and in the returned eval-mode network the inputs of every batch norm on these images
    have exactly (to float rounding) its running mean and variance. This is the population
    variance: PyTorch's train-mode update would store the unbiased one, :math:`n / (n - 1)` times
    larger, while normalising the pass with the biased one. Everything else stays in eval mode
    (no dropout, no stochastic depth); ``num_batches_tracked`` is set to 1 (one batch seen).

    It uses no labels. With :func:`calibration_index` the images come from the whole set, test
    folds included: that is unsupervised, transductive normalisation fixed before any probe is
    fit (each channel's mean and variance over thousands of positions, the same for every fold),
    not a leak of labels; the probes, the only supervised step, still see the labels of their
    training folds only. Recalibrating per fold would instead need a network per fold and seed.

    Parameters
    ----------
    module : torch.nn.Module
        The network; its batch norms change in place.
    images : torch.Tensor of shape (n_images, 3, size, size)
        uint8 RGB images, n_images >= 2.
    mean, std : tuple of float
        The network's input normalisation (``Backbone.mean``, ``Backbone.std``).
    device : str or torch.device, default="cpu"
        Where the pass runs; the module comes back on the CPU.

    Returns
    -------
    str
        SHA-256 of the images' pixels (with their shape), for the network's identity.

    Raises
    ------
    ModelError
        ``module`` has no batch norm with running statistics (the re-estimate would be a no-op
        and ``bn-recalibrated`` the ``default`` network under another name), or a batch norm is
        applied more than once per forward pass (one set of statistics cannot fit two inputs).
    """
    images = _as_images(images)
    bns = batch_norms(module)
    if not bns:
        raise ModelError(
            f"{type(module).__name__} has no batch norm with running statistics, so `bn-recalibrated` "
            "would be the `default` network under another name; use the `default` baseline for this model."
        )
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.cpu().numpy().tobytes())
    device = torch.device(device)
    names = {bn: name for name, bn in module.named_modules() if isinstance(bn, _BatchNorm)}
    calls: dict[nn.Module, int] = {}

    def fit(bn: _BatchNorm, args) -> None:
        calls[bn] = calls.get(bn, 0) + 1
        if calls[bn] > 1:
            raise ModelError(
                f"batch norm {names[bn]!r} is applied more than once per forward pass; one set of running "
                "statistics cannot fit its inputs, so this model has no `bn-recalibrated` baseline."
            )
        mu, var = _channel_stats(args[0])
        bn.running_mean.copy_(mu.to(bn.running_mean.dtype))
        bn.running_var.copy_(var.to(bn.running_var.dtype))
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.fill_(1)

    module.to(device).eval()
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
    s = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255
    handles = [bn.register_forward_pre_hook(fit) for bn in bns]
    try:
        with torch.no_grad():
            module((images.to(device).float() - m) / s)
    finally:
        for h in handles:
            h.remove()
        module.to("cpu")
    return digest.hexdigest()


def _channel_stats(x: torch.Tensor, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population variance of ``x`` (channels on dim 1), in float64 over image chunks."""
    dims = [d for d in range(x.dim()) if d != 1]
    n = x.numel() // x.shape[1]
    total = sum(x[i : i + chunk].double().sum(dims) for i in range(0, x.shape[0], chunk))
    mu = total / n
    shape = [1, -1] + [1] * (x.dim() - 2)
    starts = range(0, x.shape[0], chunk)
    sq = sum(((x[i : i + chunk].double() - mu.view(shape)) ** 2).sum(dims) for i in starts)
    return mu, sq / n
