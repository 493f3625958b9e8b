"""Readouts computed: a probe layer's output to one float32 vector per image.

What each readout is, its width and the layouts it applies to: :mod:`layergain.models.readouts`.
:class:`LayerReader` reads every requested readout of one layer from one output tensor, so that
several readouts come from one forward pass; :func:`read` is the same for one readout.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from layergain.errors import InputValueError, ModelError
from layergain.models.layers import ProbeLayer
from layergain.models.readouts import COV_SEED, GEM_EPS, Readout, parse_readout

__all__ = ["LayerReader", "cov_projection", "read"]


@lru_cache(maxsize=64)
def _projection(channels: int, dims: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([COV_SEED, channels, dims]))
    q, r = np.linalg.qr(rng.standard_normal((channels, dims)))
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)  # unique QR: uniformly distributed columns
    q.setflags(write=False)
    return q


def cov_projection(channels: int, dims: int) -> np.ndarray:
    """The fixed projection of the ``cov`` readout: (channels, dims) with orthonormal columns.

    Drawn from ``numpy.random.default_rng(SeedSequence([COV_SEED, channels, dims]))`` (Gaussian
    matrix, QR, signs fixed by the diagonal of R): the same for every network and layer of that
    width, and on every run.
    """
    return _projection(int(channels), int(dims)).copy()


def _positions(x: torch.Tensor, layout: str) -> torch.Tensor:
    """(n, P, C) float32 from a map (n, C, H, W) or (n, H, W, C)."""
    if layout == "nhwc":
        return x.reshape(x.shape[0], -1, x.shape[-1]).float()
    return x.flatten(2).transpose(1, 2).float()


class LayerReader:
    """Every requested readout of one probe layer, from its output.

    Parameters
    ----------
    layer : ProbeLayer
        The layer (its layout, channels and prefix tokens).
    readouts : sequence of str or Readout
        Readouts to compute, in order; each must apply to the layer (else InputValueError).
    device : torch.device, default=cpu
        Where the ``cov`` projection lives.
    """

    def __init__(self, layer: ProbeLayer, readouts: Sequence[str | Readout], device: torch.device | str = "cpu") -> None:
        self.layer = layer
        self.readouts = tuple(layer.check_readout(r) for r in readouts)
        self.channels = layer.channels or layer.width
        self.projections: dict[int, torch.Tensor] = {}
        self.triu: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for r in self.readouts:
            if r.kind == "cov":
                d = r.cov_dims(self.channels)
                if d < self.channels and d not in self.projections:
                    self.projections[d] = torch.from_numpy(cov_projection(self.channels, d)).float().to(device)
                iu = torch.triu_indices(d, d, device=device)
                self.triu[d] = (iu[0], iu[1])

    def __call__(self, x) -> list[torch.Tensor]:
        """One (n, width) float32 tensor per readout of the output ``x``."""
        self._check(x)
        memo: dict[str, torch.Tensor] = {}
        return [self._one(x, r, memo) for r in self.readouts]

    def _check(self, x) -> None:
        layer = self.layer
        ndim = {"nchw": 4, "nhwc": 4, "tokens": 3, "vector": 2}[layer.layout]
        ok = isinstance(x, torch.Tensor) and x.ndim == ndim
        if ok:
            c = x.shape[1] if layer.layout in ("nchw", "vector") else x.shape[-1]
            ok = c == self.channels and (layer.layout != "tokens" or x.shape[1] > layer.prefix_tokens)
        if not ok:
            got = f"a tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"
            raise ModelError(
                f"module {layer.module!r} (layer {layer.name!r}) gave {got}, not the {layer.layout} output with "
                f"{self.channels} channels it gave when the backbone was loaded; layergain cannot read it."
            )

    def _one(self, x: torch.Tensor, r: Readout, memo: dict[str, torch.Tensor]) -> torch.Tensor:
        layout = self.layer.layout
        if layout == "vector":
            v = x.float()
            return torch.cat([v, v], dim=1) if r.kind == "avgmax" else v
        if layout == "tokens":
            if r.kind == "cls":
                return x[:, 0].float()
            mean = x[:, self.layer.prefix_tokens :].mean(dim=1, dtype=torch.float32)
            return mean if r.kind == "mean" else torch.cat([x[:, 0].float(), mean], dim=1)
        dims = (1, 2) if layout == "nhwc" else (2, 3)
        if r.kind in ("avg", "max", "avgmax"):
            if "avg" not in memo and r.kind != "max":
                memo["avg"] = x.mean(dim=dims, dtype=torch.float32)
            if "max" not in memo and r.kind != "avg":
                memo["max"] = x.amax(dim=dims).float()
            return memo[r.kind] if r.kind != "avgmax" else torch.cat([memo["avg"], memo["max"]], dim=1)
        if r.kind == "gem":
            p = float(r.param)
            return x.float().clamp(min=GEM_EPS).pow(p).mean(dim=dims).pow(1.0 / p)
        h, w = (x.shape[1], x.shape[2]) if layout == "nhwc" else (x.shape[2], x.shape[3])
        if r.kind == "grid":
            k = int(r.param)
            if h < k or w < k:
                raise InputValueError(
                    f"readout {r.name!r} cuts a map into {k}x{k} cells, and layer {self.layer.name!r} is {h}x{w} at "
                    "this image size; use a larger `image_size`, fewer cells, or another readout for this layer."
                )
            nchw = x.permute(0, 3, 1, 2) if layout == "nhwc" else x
            cells = F.adaptive_avg_pool2d(nchw.float(), k)  # (n, C, k, k)
            return cells.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        if h * w < 2:
            raise InputValueError(
                f"readout {r.name!r} is a covariance over spatial positions, and layer {self.layer.name!r} has "
                f"{h}x{w} at this image size; use a larger `image_size` or another readout for this layer."
            )
        z = _positions(x, layout)
        d = r.cov_dims(self.channels)
        if d in self.projections:
            z = z @ self.projections[d]
        z = z - z.mean(dim=1, keepdim=True)
        cov = z.transpose(1, 2) @ z / (z.shape[1] - 1)
        rows, cols = self.triu[d]
        return cov[:, rows, cols]


def read(x: torch.Tensor, layer: ProbeLayer, readout: str | Readout = "avg") -> torch.Tensor:
    """One readout of one layer's output ``x``: float32 of shape (n, ``layer.width_for(readout)``)."""
    return LayerReader(layer, [parse_readout(readout)], x.device)(x)[0]
