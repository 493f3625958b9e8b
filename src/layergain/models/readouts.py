r"""Readouts: how the output of a probe layer becomes one vector per image.

This module names the readouts, parses their spelling and says, for a layer's output layout and
channel count, which readouts apply and how wide each is. It needs no torch: the layer list of a
backbone (:mod:`layergain.models.layers`) uses it to state widths, the computation is in
:mod:`layergain.features.readouts`.

Output layouts of a probe layer
-------------------------------
``"nchw"``
    A feature map, channels first (CNNs): ``(n, C, H, W)``.
``"nhwc"``
    A feature map, channels last (timm and torchvision Swin stages, the inside of ConvNeXt
    blocks): ``(n, H, W, C)``. Read exactly as the same map channels first.
``"tokens"``
    A token sequence ``(n, T, D)`` of a vision transformer whose first ``prefix_tokens`` tokens
    are the class token and any register or distillation tokens, the rest the patch tokens.
``"vector"``
    A vector per image ``(n, D)`` (an already pooled output).

Readouts of feature maps (``nchw``, ``nhwc``), for :math:`x_{c,p}`, channel :math:`c` at spatial
position :math:`p` of :math:`P = HW`
-----------------------------------------------------------------------------------------------
``avg`` (default)
    :math:`\frac1P\sum_p x_{c,p}`; width :math:`C`.
``max``
    :math:`\max_p x_{c,p}`; width :math:`C`.
``avgmax``
    ``avg`` and ``max`` concatenated; width :math:`2C`.
``gem`` (``gem:P`` for another exponent)
    Generalised mean (Radenović et al. 2018) with :math:`p = 3`,
    :math:`\left(\frac1P\sum_p \max(x_{c,p}, \epsilon)^p\right)^{1/p}`, :math:`\epsilon = 10^{-6}`:
    between ``avg`` (:math:`p = 1`) and ``max`` (:math:`p \to \infty`) of the *clamped* map. A
    layer whose outputs can be negative (a residual sum, a normalisation without activation) is
    read from its positive part only. Width :math:`C`.
``grid`` (``grid:K`` for :math:`K \times K` cells)
    The map cut into :math:`k \times k` cells (default :math:`k = 2`; cell :math:`i` of an axis of
    length :math:`L` spans :math:`\lfloor iL/k \rfloor` to :math:`\lceil (i+1)L/k \rceil`, as
    adaptive average pooling does, so cells overlap by one position where :math:`k` does not divide
    :math:`L`), each averaged, concatenated cell by cell in row-major order (the :math:`C` channels
    of cell (0, 0), then of cell (0, 1) …); width :math:`C k^2`. Needs a map of at least
    :math:`k \times k`.
``cov`` (``cov:M`` for at most :math:`M` dimensions)
    Second-order statistics (as in bilinear CNNs and Gram-matrix texture models): the covariance
    of the channels over the spatial positions, :math:`\frac{1}{P-1}\sum_p (z_p - \bar z)(z_p -
    \bar z)^\top`, its upper triangle with the diagonal, row by row; width :math:`d(d+1)/2`. For
    :math:`C \le M` (default :math:`M = 64`), :math:`z_p = x_{\cdot,p}` and :math:`d = C`. A wider
    layer is first projected to :math:`d = M` dimensions, :math:`z_p = R^\top x_{\cdot,p}`, with
    :math:`R` a :math:`C \times M` matrix with orthonormal columns (QR of a Gaussian matrix; a
    uniformly random :math:`M`-dimensional subspace of channel space) drawn once from a fixed seed
    (:data:`COV_SEED`, :math:`C` and :math:`M`), the same for every network and every layer of that
    width, so pretrained and random networks are read through the same projection.

    What the projection keeps: the covariance of the map restricted to that subspace,
    :math:`R^\top \Sigma R`, exactly (its eigenvalues interlace those of the full covariance
    :math:`\Sigma`); what it loses: the covariance along the other :math:`C - M` directions.
    What it costs: width 2080 for :math:`M = 64` instead of :math:`C(C+1)/2` (819 840 for
    :math:`C = 1280`), and per image :math:`PCM + PM^2` multiply-adds instead of :math:`PC^2`.
    Needs at least 2 positions.

Readouts of token sequences (``tokens``)
----------------------------------------
``cls``
    The class token (token 0); width :math:`D`. Needs a layer with a class token.
``mean``
    Mean of the patch tokens, prefix tokens (class, register, distillation) excluded; width
    :math:`D`.
``cls+mean``
    Both concatenated; width :math:`2D`.

A ``vector`` output is read as itself by ``avg`` and ``max`` (there are no positions to pool) and
by ``avgmax`` as itself twice (as before readouts existed); other readouts do not apply to it.

References
----------
Radenović, F., Tolias, G. & Chum, O. (2018). Fine-tuning CNN image retrieval with no human
annotation. IEEE TPAMI 41(7). (GeM pooling.)
Lin, T.-Y., RoyChowdhury, A. & Maji, S. (2015). Bilinear CNN models for fine-grained visual
recognition. ICCV.
Ustyuzhaninov, I., Brendel, W., Gatys, L. A. & Bethge, M. (2016). Texture synthesis using shallow
convolutional networks with random filters. arXiv:1606.00021.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from layergain.errors import InputTypeError, InputValueError

__all__ = [
    "COV_DIMS",
    "COV_SEED",
    "GEM_EPS",
    "GEM_P",
    "GRID_CELLS",
    "LAYOUTS",
    "MAP_READOUTS",
    "READOUTS",
    "TOKEN_READOUTS",
    "Layout",
    "Readout",
    "describe_readout",
    "parse_readout",
    "parse_readouts",
]

Layout = Literal["nchw", "nhwc", "tokens", "vector"]
LAYOUTS: tuple[str, ...] = ("nchw", "nhwc", "tokens", "vector")
MAP_READOUTS: tuple[str, ...] = ("avg", "max", "avgmax", "gem", "grid", "cov")
TOKEN_READOUTS: tuple[str, ...] = ("cls", "mean", "cls+mean")
VECTOR_READOUTS: tuple[str, ...] = ("avg", "max", "avgmax")
READOUTS: tuple[str, ...] = MAP_READOUTS + TOKEN_READOUTS

GEM_P = 3
GEM_EPS = 1e-6
GRID_CELLS = 2
COV_DIMS = 64
COV_SEED = 1606  # of the fixed projection of wide layers before `cov` (arXiv 1606.00021)

_DEFAULT_PARAM = {"gem": GEM_P, "grid": GRID_CELLS, "cov": COV_DIMS}
_PARAM_NAME = {"gem": "p", "grid": "cells", "cov": "dims"}


@dataclass(frozen=True)
class Readout:
    """One readout: its kind and, for ``gem``/``grid``/``cov``, its integer parameter.

    Attributes
    ----------
    kind : str
        One of :data:`READOUTS`.
    param : int or None
        ``gem``: the exponent p; ``grid``: cells per side k; ``cov``: at most this many
        dimensions m. None for the other readouts.
    """

    kind: str
    param: int | None = None

    @property
    def name(self) -> str:
        """Canonical spelling: the bare kind for the default parameter (``grid``), else ``grid:3``."""
        if self.param is None or self.param == _DEFAULT_PARAM[self.kind]:
            return self.kind
        return f"{self.kind}:{self.param}"

    def __str__(self) -> str:
        return self.name

    @property
    def layouts(self) -> tuple[str, ...]:
        """The output layouts this readout applies to."""
        if self.kind in TOKEN_READOUTS:
            return ("tokens",)
        return ("nchw", "nhwc", "vector") if self.kind in VECTOR_READOUTS else ("nchw", "nhwc")

    def settings(self) -> dict:
        """Everything that determines this readout's numbers (for the feature cache key)."""
        if self.kind == "gem":
            return {"p": self.param, "eps": GEM_EPS}
        if self.kind == "grid":
            return {"cells": self.param, "cell_bounds": "adaptive"}
        if self.kind == "cov":
            return {"dims": self.param, "projection": "orthonormal-qr-gaussian", "seed": COV_SEED, "ddof": 1}
        return {}

    def cov_dims(self, channels: int) -> int:
        """Dimensions d of the covariance for a layer of ``channels`` channels: min(C, m)."""
        return min(channels, int(self.param)) if self.kind == "cov" else channels

    def width(self, layout: str, channels: int) -> int:
        """Width of this readout of a layer with this layout and channel (embedding) count."""
        if self.kind in ("avgmax", "cls+mean"):
            return 2 * channels
        if self.kind == "grid":
            return channels * int(self.param) ** 2
        if self.kind == "cov":
            d = self.cov_dims(channels)
            return d * (d + 1) // 2
        return channels


def parse_readout(spec: str | Readout, argument: str = "readout") -> Readout:
    """A :class:`Readout` from its spelling: ``avg``, ``gem``, ``gem:4``, ``grid:3``, ``cov:32``, ``cls`` …

    ``argument`` names the parameter the spelling came from, for the error message.
    """
    if isinstance(spec, Readout):
        return spec
    if not isinstance(spec, str):
        raise InputTypeError(f"`{argument}` must be a string such as 'avg' or 'grid:3', got {type(spec).__name__}.")
    kind, sep, value = spec.strip().partition(":")
    if kind not in READOUTS:
        allowed = ", ".join(repr(r) for r in READOUTS)
        raise InputValueError(
            f"`{argument}` must be one of {allowed} (gem, grid and cov take a parameter: 'gem:P', 'grid:K', "
            f"'cov:M'), got {spec!r}."
        )
    if kind not in _DEFAULT_PARAM:
        if sep:
            raise InputValueError(f"`{argument}`: readout {kind!r} takes no parameter, got {spec!r}; use {kind!r}.")
        return Readout(kind)
    if not sep:
        return Readout(kind, _DEFAULT_PARAM[kind])
    minimum = 2 if kind == "cov" else 1
    try:
        param = int(value)
    except ValueError:
        param = None
    if param is None or param < minimum or str(param) != value.strip():
        raise InputValueError(
            f"`{argument}`: in {spec!r} the {_PARAM_NAME[kind]} after ':' must be an integer >= {minimum}, "
            f"got {value!r}; e.g. '{kind}:{_DEFAULT_PARAM[kind]}'."
        )
    return Readout(kind, param)


def parse_readouts(specs: str | Readout | Iterable[str | Readout], argument: str = "readouts") -> tuple[Readout, ...]:
    """Readouts from one spelling or a list of them, in order, each once (by canonical name)."""
    items = [specs] if isinstance(specs, (str, Readout)) else list(specs)
    if not items:
        raise InputValueError(f"`{argument}` is empty; pass at least one readout, e.g. {argument}=['avg'].")
    out: dict[str, Readout] = {}
    for item in items:
        readout = parse_readout(item, argument)
        out.setdefault(readout.name, readout)
    return tuple(out.values())


def describe_readout(spec: str | Readout) -> str:
    """What a readout computes, in one phrase a Methods section can quote."""
    r = parse_readout(spec)
    k = r.param
    return {
        "avg": "global average pooling per channel",
        "max": "global max pooling per channel",
        "avgmax": "global average and max pooling per channel, concatenated",
        "gem": f"generalised-mean (GeM) pooling per channel with p = {k} of the map clamped at {GEM_EPS:g}",
        "grid": f"average pooling over a {k} × {k} grid of cells, concatenated cell by cell",
        "cov": (f"the channel covariance over spatial positions (upper triangle with the diagonal), layers of "
                f"more than {k} channels first projected onto a fixed random {k}-dimensional subspace "
                f"(orthonormal, seed {COV_SEED})"),
        "cls": "the class token",
        "mean": "the mean of the patch tokens (class, register and distillation tokens excluded)",
        "cls+mean": "the class token and the mean of the patch tokens, concatenated",
    }[r.kind]
