"""The numbers a comparison report shows, read once from comparison.nc (the run report's
counterpart is :mod:`layergain.report.summary`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.fmt import plural
from layergain.report.summary import DEFAULT_ALPHA, json_attr, plain_attrs
from layergain.results import schema as S

__all__ = ["ComparisonSummary", "summarise_comparison"]


class ComparisonSummary:
    """The numbers of a comparison report, in the order it uses (layer-major where per layer).

    Built once per report (:func:`summarise_comparison`) and passed to its findings, tables,
    figures and methods.
    """

    def __init__(self, ds: xr.Dataset):
        self.ds = ds = plain_attrs(ds)
        self.sets = [str(n) for n in ds[S.DATASET].values]
        self.layers = [str(n) for n in ds[S.LAYER].values]
        self.pairs = [str(p) for p in ds[S.SET_PAIR].values] if S.SET_PAIR in ds.dims else []
        self.alpha = float(ds.attrs.get("alpha", DEFAULT_ALPHA))
        self.level = fmt.level(ds.attrs.get("confidence", 0.95))
        self.deep = ds["deep"].values.astype(bool) if "deep" in ds else np.zeros(len(self.layers), bool)
        self.gain = ds["gain"].transpose(S.DATASET, S.LAYER).values.astype(float)
        self.ci = ds["joint_gain_ci"].transpose(S.DATASET, S.LAYER, S.BOUND).values.astype(float)
        self.p_maxt = ds["joint_gain_p_maxt"].transpose(S.DATASET, S.LAYER).values.astype(float)
        self.p_holm = ds["joint_gain_p_holm"].transpose(S.DATASET, S.LAYER).values.astype(float)
        self.significant = (
            ds["significant"].transpose(S.DATASET, S.LAYER).values.astype(bool)
            if "significant" in ds
            else (self.p_maxt <= self.alpha) & (self.gain > 0)
        )
        self.n_draws = int(ds.attrs.get("n_draws", 0) or 0)
        self.n_units = json_attr(ds.attrs, "n_units", {}) or {}
        self.unit_kind = json_attr(ds.attrs, "resampling_unit", {}) or {}

    def units(self, name: str) -> str:
        """``10 groups`` / ``24 images``: the resampling units of a set, from ``n_units``."""
        n, kind = self.n_units.get(name), str(self.unit_kind.get(name, "unit"))
        if n is None:
            return f"{kind}s (count not recorded)"
        return plural(int(n), kind)

    def n_pairs(self) -> str:
        """``1 pair`` / ``3 pairs``."""
        return plural(len(self.pairs), "pair")

    def pair_names(self, pair: str) -> tuple[str, str]:
        return (
            str(self.ds["first"].sel({S.SET_PAIR: pair}).values),
            str(self.ds["second"].sel({S.SET_PAIR: pair}).values),
        )

    def deep_mean(self) -> np.ndarray:
        if not self.deep.any():
            return np.full(len(self.sets), np.nan)
        return self.gain[:, self.deep].mean(axis=1)

    def ranking(self) -> list[int]:
        """Set indices by mean gain over the deep layers, largest first (ties: order given)."""
        means = np.nan_to_num(self.deep_mean(), nan=-np.inf)
        return sorted(range(len(self.sets)), key=lambda k: (-means[k], k))


def summarise_comparison(ds: xr.Dataset | ComparisonSummary) -> ComparisonSummary:
    """The summary of a comparison (as read from comparison.nc); a summary is returned as it is."""
    return ds if isinstance(ds, ComparisonSummary) else ComparisonSummary(ds)
