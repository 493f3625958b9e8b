"""The numbers a comparison report shows, read once from comparison.nc (the run report's
counterpart is :mod:`layergain.report.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.fmt import plural
from layergain.report.summary import DEFAULT_ALPHA, ESTIMATOR_LABELS, json_attr, plain_attrs
from layergain.results import schema as S

__all__ = ["ComparisonSummary", "TauAcrossSets", "summarise_comparison"]


@dataclass
class TauAcrossSets:
    """Each set's Kendall's tau of every estimator (its run's tau table) and the pooled taus.

    Per set: (set, estimator) and (set, estimator, 2) for the CIs; pooled: (estimator,) and
    (estimator, 2); ``above``/``below``/``counted`` (estimator,): sets whose own CI lies above
    or below 0, and sets with a finite tau and CI.
    """

    estimators: list[str]
    labels: dict[str, str]  # estimator -> its label
    tau: dict[str, np.ndarray]  # "accuracy" / "gain" -> (set, estimator)
    ci: dict[str, np.ndarray]  # -> (set, estimator, 2)
    pooled: dict[str, np.ndarray]  # -> (estimator,)
    pooled_ci: dict[str, np.ndarray]  # -> (estimator, 2)
    above: dict[str, np.ndarray]
    below: dict[str, np.ndarray]
    counted: dict[str, np.ndarray]
    pooled_sets: np.ndarray  # (estimator,): sets in the pooled tau
    set_level: str  # the runs' CI level ("95 %"; "each run's level" where they differ)
    set_attrs: dict  # of the runs' tau tables where they agree: method, n_boot, resampled
    pooled_attrs: dict  # method, n_boot, confidence, resampled, left_out, nan_reason

    def reason(self, e: int) -> str:
        """Why estimator ``e`` has no pooled tau, or the sets left out of it; "" when neither."""
        name = self.estimators[e]
        failure = (json_attr(self.pooled_attrs, "nan_reason", {}) or {}).get(name, "")
        left = (json_attr(self.pooled_attrs, "left_out", {}) or {}).get(name, {})
        parts = [failure] if failure else []
        parts += [f"`{k}` left out: {v}" for k, v in left.items()]
        return "; ".join(parts)


def _tau_across_sets(ds: xr.Dataset) -> TauAcrossSets | None:
    """The taus of comparison.nc; None for a comparison of runs without tau tables."""
    if "tau_gain_pooled" not in ds or S.ESTIMATOR not in ds.dims:
        return None
    names = [str(e) for e in ds[S.ESTIMATOR].values]

    def per_set(name: str) -> np.ndarray:
        return ds[name].transpose(S.DATASET, S.ESTIMATOR).values.astype(float)

    def ci(name: str, *dims: str) -> np.ndarray:
        return ds[name].transpose(*dims, S.BOUND).sel({S.BOUND: list(S.BOUNDS)}).values.astype(float)

    whats = ("accuracy", "gain")
    confidence = ds["tau_gain"].attrs.get("confidence")
    return TauAcrossSets(
        estimators=names,
        labels={n: ESTIMATOR_LABELS.get(n, n) for n in names},
        tau={w: per_set(f"tau_{w}") for w in whats},
        ci={w: ci(f"tau_{w}_ci", S.DATASET, S.ESTIMATOR) for w in whats},
        pooled={w: ds[f"tau_{w}_pooled"].values.astype(float) for w in whats},
        pooled_ci={w: ci(f"tau_{w}_pooled_ci", S.ESTIMATOR) for w in whats},
        above={w: ds[f"tau_{w}_sets_above"].values.astype(int) for w in whats},
        below={w: ds[f"tau_{w}_sets_below"].values.astype(int) for w in whats},
        counted={w: ds[f"tau_{w}_sets"].values.astype(int) for w in whats},
        pooled_sets=ds["tau_pooled_n_sets"].values.astype(int),
        set_level=fmt.level(confidence) if confidence is not None else "each run's level",
        set_attrs={k: v for k, v in ds["tau_gain"].attrs.items() if k != "nan_reason"},
        pooled_attrs=dict(ds["tau_gain_pooled"].attrs),
    )


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
        self.transfer = _tau_across_sets(ds)

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
