"""Figures of a cross-set comparison (comparison.nc), each saved as PNG and PDF.

Bands are the pointwise intervals of :func:`layergain.stats.compare_sets` (variance components of
each set's images or groups and the shared random seeds); stars mark max-T-adjusted p <= alpha
(``joint_gain_p_maxt``: family-wise over the layers of each set; ``difference_p_maxt``: over all
pairs and layers). The transferability figure shows each set's Kendall's tau with its run's
percentile CI and the pooled (stratified) tau with its CI, as the run report's tau figure does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm

from layergain.report import fmt
from layergain.report.compare_summary import ComparisonSummary, summarise_comparison
from layergain.report.style import REFERENCE, SIGNIFICANT, band, figure, layer_axis, save, series_style
from layergain.results import schema as S

__all__ = ["gain_all_sets", "gain_heatmap", "pairwise_differences", "transferability_tau_by_set",
           "write_comparison_figures"]


def _ci(da: xr.DataArray) -> np.ndarray:
    return da.sel({S.BOUND: list(S.BOUNDS)}).values.astype(float)


def gain_all_sets(summary: ComparisonSummary | xr.Dataset, base: Path) -> list[Path]:
    """Gain by layer of every set with its pointwise CI band, max-T-significant layers starred.

    Below, the random baseline of each set.
    """
    v = summarise_comparison(summary)
    ds, names, layers, alpha = v.ds, v.sets, v.layers, v.alpha
    x = np.arange(len(layers))
    with figure(height=5.0, nrows=2, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}) as (
        fig,
        (ax, low),
    ):
        for k, name in enumerate(names):
            style = series_style(k)
            gain = ds["gain"].sel({S.DATASET: name}).values.astype(float)
            ci = _ci(ds["joint_gain_ci"].sel({S.DATASET: name}).transpose(S.LAYER, S.BOUND))
            band(ax, x, ci[:, 0], ci[:, 1], color=style["color"], alpha=0.13)
            ax.plot(x, gain, label=name, **style)
            sig = ds["joint_gain_p_maxt"].sel({S.DATASET: name}).values.astype(float) <= alpha
            ax.plot(x[sig], gain[sig], **{**SIGNIFICANT, "markersize": 8}, label="_")
            if "accuracy_random_mean" in ds:
                low.plot(x, ds["accuracy_random_mean"].sel({S.DATASET: name}).values, **style)
        ax.plot([], [], label=f"max-T-adjusted p ≤ {alpha:g}", **{**SIGNIFICANT, "markersize": 8})
        deep = v.deep
        if deep.any():
            for a in (ax, low):
                a.axvspan(np.flatnonzero(deep)[0] - 0.5, len(layers) - 0.5, color="0.93", zorder=0)
            ax.text(
                np.flatnonzero(deep)[0] - 0.4,
                0.98,
                "deep layers",
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=7,
                color="0.3",
            )
        ax.axhline(0, color="0.2", linewidth=0.8)
        ax.set_ylabel("gain (difference in\nproportion correct)")
        ax.legend(loc="upper left", frameon=False, fontsize=7, ncols=2)
        ax.set_title(f"Knowledge gain by layer, all image sets (pointwise {v.level} CI bands)")
        low.set_ylabel("random baseline\naccuracy")
        low.set_ylim(0, 1)
        layer_axis(low, layers)
        return save(fig, base)


def gain_heatmap(summary: ComparisonSummary | xr.Dataset, base: Path) -> list[Path]:
    """Layers × sets heatmap of gain, each cell annotated with its value and * where max-T-significant."""
    v = summarise_comparison(summary)
    names, layers, alpha = v.sets, v.layers, v.alpha
    gain, p = v.gain.T, v.p_maxt.T  # (layer, set)
    limit = float(np.nanmax(np.abs(gain))) if np.isfinite(gain).any() else 1.0
    limit = max(limit, 1e-6)
    width = min(6.4, 2.4 + 1.0 * len(names))
    with figure(width=width, height=5.2) as (fig, ax):
        image = ax.imshow(
            gain, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto", interpolation="nearest"
        )
        cmap, norm = image.cmap, image.norm
        for i in range(gain.shape[0]):
            for j in range(gain.shape[1]):
                value = gain[i, j]
                mark = "*" if np.isfinite(p[i, j]) and p[i, j] <= alpha else ""
                r, g, b, _ = cmap(norm(value)) if np.isfinite(value) else (1, 1, 1, 1)
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(
                    j,
                    i,
                    f"{fmt.signed(value, 2)}{mark}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if dark else "black",
                    fontweight="bold" if mark else "normal",
                )
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=7.5)
        ax.set_yticks(range(len(layers)), layers, fontsize=7)
        ax.grid(False)
        ax.set_xlabel("image set")
        ax.set_ylabel("probe layer (shallow → deep)")
        fig.colorbar(image, ax=ax, shrink=0.8, label="gain (difference in proportion correct)")
        ax.set_title(
            f"Gain per set and layer\n(* max-T-adjusted p ≤ {alpha:g}, over each set's layers)", fontsize=9
        )
        return save(fig, base)


def pairwise_differences(summary: ComparisonSummary | xr.Dataset, base: Path) -> list[Path]:
    """Gain of set a minus set b by layer, per pair, with CI bands; max-T-significant layers starred."""
    v = summarise_comparison(summary)
    ds, layers, alpha = v.ds, v.layers, v.alpha
    x = np.arange(len(layers))
    with figure(height=3.6) as (fig, ax):
        for k, pair in enumerate(v.pairs):
            style = series_style(k)
            first, second = v.pair_names(pair)
            diff = ds["difference"].sel({S.SET_PAIR: pair}).values.astype(float)
            ci = _ci(ds["difference_ci"].sel({S.SET_PAIR: pair}).transpose(S.LAYER, S.BOUND))
            band(ax, x, ci[:, 0], ci[:, 1], color=style["color"], alpha=0.13)
            ax.plot(x, diff, label=f"{first} − {second}", **style)
            sig = ds["difference_p_maxt"].sel({S.SET_PAIR: pair}).values.astype(float) <= alpha
            ax.plot(x[sig], diff[sig], **{**SIGNIFICANT, "markersize": 8}, label="_")
        ax.plot(
            [],
            [],
            label=f"max-T-adjusted p ≤ {alpha:g} (all pairs × layers)",
            **{**SIGNIFICANT, "markersize": 8},
        )
        ax.axhline(0, color="0.2", linewidth=0.8)
        layer_axis(ax, layers)
        ax.set_ylabel("difference in gain\n(proportion correct)")
        ax.legend(loc="best", frameon=False, fontsize=7, ncols=2)
        ax.set_title(f"Pairwise differences of gain between sets (pointwise {v.level} CI bands)")
        return save(fig, base)


#: The pooled tau's marker: black, unlike every set's series.
_POOLED = {"marker": "D", "markersize": 5, "color": "#000000", "linestyle": "none"}


def transferability_tau_by_set(summary: ComparisonSummary | xr.Dataset, base: Path) -> list[Path]:
    """Kendall's tau of every estimator with the probe accuracy and with the gain: each set's
    with its run's CI, and the pooled (stratified) tau with its CI, one row per estimator."""
    v = summarise_comparison(summary)
    t = v.transfer
    names = [t.labels[e] for e in t.estimators]
    n_rows = len(v.sets) + 1
    y = np.arange(len(names))[::-1].astype(float)
    offsets = ((n_rows - 1) / 2 - np.arange(n_rows)) * min(0.7 / n_rows, 0.18)  # sets top down, pooled last
    panels = (("with the pretrained probe accuracy", "accuracy"),
              ("with the gain (pretrained − random)", "gain"))
    with figure(height=(0.22 + 0.07 * n_rows) * len(names) + 1.5, ncols=2, sharey=True) as (fig, axes):
        for ax, (what, key) in zip(axes, panels):
            ax.axvline(0.0, **REFERENCE)
            for k, name in enumerate(v.sets):
                style = series_style(k)
                yk = y + offsets[k]
                ci = t.ci[key][k]
                ax.hlines(yk, ci[:, 0], ci[:, 1], color=style["color"], linewidth=1.0)
                ax.plot(t.tau[key][k], yk, linestyle="none", marker=style["marker"], markersize=3.5,
                        color=style["color"], label=name)
            yp = y + offsets[-1]
            ax.hlines(yp, t.pooled_ci[key][:, 0], t.pooled_ci[key][:, 1], color="#000000", linewidth=1.6)
            ax.plot(t.pooled[key], yp, **_POOLED, label="pooled (stratified τ)")
            for e in np.flatnonzero(~np.isfinite(t.pooled[key])):
                ax.text(0.0, yp[e], "n/a", ha="center", va="center", fontsize=6.5, color="0.3")
            ax.set_xlim(-1.05, 1.05)
            ax.set_xlabel("Kendall's τ across layers, percentile CI")
            ax.set_title(what, fontsize=8.5)
        axes[0].set_yticks(y, names)
        for ax in axes:
            ax.set_ylabel("estimator")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(n_rows, 4), frameon=False,
                   fontsize=7)
        fig.suptitle("Transferability estimators against the probe, per image set and pooled", fontsize=10)
        return save(fig, base)


COMPARISON_FIGURES = {
    "gain_all_sets": gain_all_sets,
    "gain_heatmap": gain_heatmap,
    "pairwise_differences": pairwise_differences,
    "transferability_tau_by_set": transferability_tau_by_set,
}


def available(v: ComparisonSummary) -> list[str]:
    """The figures ``v`` has the numbers for (comparisons of runs without tau tables have no tau figure)."""
    return [name for name in COMPARISON_FIGURES
            if name != "transferability_tau_by_set" or v.transfer is not None]


def write_comparison_figures(summary: ComparisonSummary | xr.Dataset, folder: Path) -> dict[str, list[Path]]:
    """Every comparison figure ``summary`` has the numbers for into ``folder``, from one summary."""
    v = summarise_comparison(summary)
    return {name: COMPARISON_FIGURES[name](v, Path(folder) / name) for name in available(v)}
