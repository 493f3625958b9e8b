"""Figures of a run, each saved as PNG (screens) and PDF (print)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report.style import PRETRAINED, RANDOM, REFERENCE, figure, layer_axis, save
from layergain.results import schema as S

__all__ = ["accuracy_by_layer"]


def _random(ds: xr.Dataset, var: str) -> xr.DataArray:
    return ds[var].sel({S.INIT: ds["kind"] == "random"})


def accuracy_by_layer(ds: xr.Dataset, base: Path) -> list[Path]:
    """Probe accuracy by layer: pretrained, random mean with the seed range, majority-class rate."""
    names = [str(n) for n in ds[S.LAYER].values]
    x = np.arange(len(names))
    pre = ds["accuracy"].sel({S.INIT: S.PRETRAINED}).values
    rand = _random(ds, "accuracy")
    counts = np.bincount(ds["label"].values, minlength=ds.sizes[S.CLASS])
    with figure() as (fig, ax):
        ax.fill_between(
            x, rand.min(S.INIT).values, rand.max(S.INIT).values, color=RANDOM["color"], alpha=0.18, linewidth=0,
            label=f"random, range of {rand.sizes[S.INIT]} seeds",
        )
        ax.plot(x, rand.mean(S.INIT).values, label="random, mean of seeds", **RANDOM)
        ax.plot(x, pre, label="ImageNet-pretrained", **PRETRAINED)
        ax.axhline(counts.max() / counts.sum(), label="majority-class rate", **REFERENCE)
        layer_axis(ax, names)
        ax.set_ylabel("probe accuracy (out-of-fold)")
        ax.set_ylim(0, 1.0)
        ax.legend(loc="lower right", frameon=False)
        ax.set_title(f"Linear-probe accuracy by layer: {ds.attrs.get('dataset', '')}, {ds.attrs.get('backbone', '')}")
        return save(fig, base)
