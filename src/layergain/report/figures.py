"""Figures of one run, each saved as PNG (screens) and PDF (print) from a :class:`RunSummary`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from layergain.report import fmt
from layergain.report.style import (
    FULL_WIDTH,
    GAIN,
    HEATMAP,
    NOT_SIGNIFICANT,
    PRETRAINED,
    RANDOM,
    REFERENCE,
    REFERENCE_BAND,
    SIGNIFICANT,
    band,
    figure,
    layer_axis,
    save,
)
from layergain.report.summary import RunSummary
from layergain.results import schema as S

__all__ = [
    "FIGURES",
    "accuracy_by_layer",
    "accuracy_vs_params",
    "cka_heatmap",
    "gain_by_layer",
    "similarity_by_layer",
    "similarity_difference_by_layer",
    "transferability_tau",
]

ACC_LABEL = "probe accuracy (proportion correct)"


def _title(s: RunSummary, what: str) -> str:
    return f"{what}: {s.attrs.get('dataset', '')}, {s.attrs.get('backbone', '')}"


def _random_band(ax, x, s: RunSummary) -> None:
    band(
        ax,
        x,
        s.acc_rand_low,
        s.acc_rand_high,
        color=RANDOM["color"],
        alpha=0.18,
        label=f"random, range over {s.n_random} seed{'s' if s.n_random != 1 else ''}",
    )
    ax.plot(x, s.acc_rand, label="random, mean over seeds", **RANDOM)


def _pretrained(ax, x, s: RunSummary) -> None:
    label = f"pretrained, {fmt.level(s.confidence)} pointwise CI"
    band(ax, x, s.acc_pre_ci[:, 0], s.acc_pre_ci[:, 1], color=PRETRAINED["color"], alpha=0.12, label=label)
    ax.plot(x, s.acc_pre, label="ImageNet-pretrained", **PRETRAINED)


def _chance(ax, s: RunSummary) -> None:
    ax.axhline(s.majority_rate, label=f"chance (majority class, {fmt.num(s.majority_rate)})", **REFERENCE)


def accuracy_by_layer(s: RunSummary, base: Path) -> list[Path]:
    """Out-of-fold accuracy by layer: pretrained with its CI, random mean with the seed range, chance."""
    x = np.arange(len(s.layers))
    with figure(height=3.8) as (fig, ax):
        _pretrained(ax, x, s)
        _random_band(ax, x, s)
        _chance(ax, s)
        layer_axis(ax, s.layers)
        ax.set_ylabel(ACC_LABEL)
        ax.set_ylim(0, 1.0)
        fig.legend(
            *ax.get_legend_handles_labels(), loc="outside lower center", frameon=False, ncols=3, fontsize=7
        )
        ax.set_title(_title(s, "Linear-probe accuracy by layer"))
        return save(fig, base)


def _gain_limits(s: RunSummary) -> tuple[float, float]:
    """y range of the gain panel: estimates and bands, cut at ±1.05 (a gain lies in [-1, 1])."""
    values = np.concatenate([s.gain, s.gain_ci.ravel(), s.gain_band.ravel(), [0.0]])
    finite = values[np.isfinite(values)]
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.05 * max(hi - lo, 0.1)
    return max(lo - pad, -1.05), min(hi + pad, 1.05)


def gain_by_layer(s: RunSummary, base: Path) -> list[Path]:
    """Gain with its pointwise CI and simultaneous band, significant layers starred; random seeds below."""
    x = np.arange(len(s.layers))
    sig = s.significant | s.significant_negative
    level = fmt.level(s.confidence)
    with figure(height=5.4, nrows=2, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}) as (
        fig,
        (ax, low),
    ):
        handles, labels = [], []
        if np.isfinite(s.gain_band).any():
            band(ax, x, s.gain_band[:, 0], s.gain_band[:, 1], color=GAIN["color"], alpha=0.08)
            for bound in (0, 1):
                edge = s.gain_band[:, bound]
                ax.plot(x, edge, color=GAIN["color"], linestyle="--", linewidth=0.8, alpha=0.8)
            handles.append(
                Patch(facecolor=GAIN["color"], alpha=0.25, edgecolor=GAIN["color"], linestyle="--")
            )
            labels.append(f"{level} simultaneous band (over the {len(s.layers)} layers, max-T)")
        band(
            ax,
            x,
            s.gain_ci[:, 0],
            s.gain_ci[:, 1],
            color=GAIN["color"],
            alpha=0.22,
            label=f"{level} pointwise CI",
        )
        ax.plot(x, s.gain, label="gain (pretrained − mean random)", **GAIN)
        ax.plot(
            x[~sig],
            s.gain[~sig],
            label=f"max-T-adjusted p > {s.alpha:g} or n/a ({int((~sig).sum())} layers)",
            **NOT_SIGNIFICANT,
        )
        ax.plot(
            x[sig],
            s.gain[sig],
            label=f"max-T-adjusted p ≤ {s.alpha:g} ({int(sig.sum())} layers)",
            **SIGNIFICANT,
        )
        _na_marks(ax, x, np.where(s.inference_na, np.nan, 0.0))
        ax.axhline(0, color="0.2", linewidth=0.8)
        ax.set_ylim(*_gain_limits(s))
        ax.set_ylabel("gain (difference in\nproportion correct)")
        ax.set_title(_title(s, "Knowledge gain by layer"))
        _random_band(low, x, s)
        _chance(low, s)
        for part in (ax, low):
            h, l_ = part.get_legend_handles_labels()
            handles, labels = handles + h, labels + l_
        near = s.random_near_chance
        for j in np.flatnonzero(near):
            low.axvspan(j - 0.5, j + 0.5, color="0.85", zorder=0)
        if near.any():
            handles.append(Patch(color="0.85"))
            labels.append("layers where the random baseline's CI reaches chance")
        fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False, fontsize=6.5)
        low.set_ylabel("random baseline\naccuracy")
        low.set_ylim(0, 1.0)
        layer_axis(low, s.layers)
        return save(fig, base)


def _na_marks(ax, x, values: np.ndarray) -> None:
    for j in np.flatnonzero(np.isnan(values)):
        ax.text(
            x[j],
            0.03,
            "n/a",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=6.5,
            color="0.3",
        )


SIMILARITY_PANELS = ("cka_linear", "cka_debiased", "svcca")


def similarity_by_layer(s: RunSummary, base: Path) -> list[Path]:
    """CKA (linear, debiased) and SVCCA by layer: pretrained vs random, and the random-vs-random band."""
    panels = [m for m in SIMILARITY_PANELS if m in s.measures]
    x = np.arange(len(s.layers))
    with figure(height=1.9 * len(panels) + 0.9, nrows=len(panels), sharex=True, squeeze=False) as (fig, axes):
        for ax, name in zip(axes[:, 0], panels):
            m = s.measures[name]
            band(ax, x, m.low, m.high, color=PRETRAINED["color"], alpha=0.15)
            ax.plot(x, m.mean, **PRETRAINED)
            band(ax, x, m.rr_low, m.rr_high, **REFERENCE_BAND)
            ax.plot(x, m.rr_mean, **{**RANDOM, "color": "0.25", "marker": "^"})
            _na_marks(ax, x, m.mean)
            lo = np.nanmin(np.concatenate([m.low, m.rr_low, [0.0]]))
            ax.set_ylim(min(0.0, lo - 0.05), 1.02)
            ax.set_ylabel(f"{m.label}\n(0 = unrelated, 1 = same)", fontsize=7.5)
        handles = [
            Line2D([], [], **PRETRAINED, label="pretrained vs random (mean over seeds)"),
            Patch(color=PRETRAINED["color"], alpha=0.15, label="range over seeds"),
            Line2D(
                [],
                [],
                **{**RANDOM, "color": "0.25", "marker": "^"},
                label="random vs random (reference, mean over pairs)",
            ),
            Patch(
                facecolor=REFERENCE_BAND["color"],
                alpha=REFERENCE_BAND["alpha"],
                hatch=REFERENCE_BAND["hatch"],
                edgecolor=REFERENCE_BAND["edgecolor"],
                label="range over pairs",
            ),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        layer_axis(axes[-1, 0], s.layers)
        fig.suptitle(_title(s, "Representational similarity by layer"), fontsize=10)
        return save(fig, base)


def cka_heatmap(s: RunSummary, base: Path) -> list[Path]:
    """Cross-layer CKA, mean over seeds: each pretrained layer (rows) against each random layer (columns)."""
    names = [m for m in ("cka_matrix", "cka_debiased_matrix") if m in s.ds]
    with figure(height=3.5, ncols=len(names), squeeze=False) as (fig, axes):
        for ax, name in zip(axes[0], names):
            mat = s.ds[name].mean(S.INIT, skipna=True).transpose(S.LAYER_PRETRAINED, S.LAYER_OTHER).values
            finite = mat[np.isfinite(mat)]
            # the colour range starts just below the data (the colour bar gives the scale)
            vmin = min(0.5, float(np.floor(finite.min() * 10) / 10)) if finite.size else 0.0
            image = ax.imshow(mat, cmap=HEATMAP, vmin=vmin, vmax=1.0, aspect="equal", interpolation="nearest")
            rows = np.arange(mat.shape[0])
            if finite.size:
                best = np.nanargmax(np.where(np.isfinite(mat), mat, -np.inf), axis=1)
                ax.plot(
                    best,
                    rows,
                    linestyle="none",
                    marker="o",
                    markersize=2.6,
                    markerfacecolor="white",
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                )
            ticks = np.arange(len(s.layers))
            ax.set_xticks(ticks, s.layers, rotation=90, fontsize=5.5)
            ax.set_yticks(ticks, s.layers, fontsize=5.5)
            ax.grid(False)
            ax.set_xlabel("random-weight layer")
            ax.set_ylabel("pretrained layer")
            label = "linear CKA" if name == "cka_matrix" else "debiased linear CKA"
            ax.set_title(label, fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8, aspect=30, label=f"{label}, mean over seeds")
        fig.suptitle(_title(s, "Pretrained × random cross-layer CKA") + " (○: row maximum)", fontsize=9.5)
        return save(fig, base)


def accuracy_vs_params(s: RunSummary, base: Path) -> list[Path]:
    """Accuracy against the parameters up to each layer (log x), sweet spot and best layer marked."""
    x = s.params.astype(float)
    with figure(height=3.6) as (fig, ax):
        _pretrained(ax, x, s)
        ax.plot(x, s.acc_rand, label="random, mean over seeds", **RANDOM)
        _chance(ax, s)
        marks = [(s.best, "D", "best layer"), (s.sweet, "*", "sweet spot")]
        for j, marker, what in marks:
            if j < 0:
                continue
            ax.plot(
                [x[j]],
                [s.acc_pre[j]],
                linestyle="none",
                marker=marker,
                markersize=12 if marker == "*" else 8,
                markerfacecolor="none" if marker == "D" else "black",
                markeredgecolor="black",
                label=f"{what}: {s.layers[j]} ({fmt.params(s.params[j])} params)",
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters up to and including the layer (count, log scale)")
        ax.set_ylabel(ACC_LABEL)
        ax.set_ylim(0, 1.0)
        ax.legend(loc="best", frameon=False, fontsize=7)
        ax.set_title(_title(s, "Accuracy against network size at the cut"))
        return save(fig, base)


def similarity_difference_by_layer(s: RunSummary, base: Path) -> list[Path]:
    """Per measure: pretrained-vs-random minus random-vs-random by layer with its CI, 0 marked."""
    diffs = list(s.differences.values())
    x = np.arange(len(s.layers))
    level = fmt.level(diffs[0].attrs.get("confidence", s.confidence)) if diffs else ""
    with figure(height=1.6 * len(diffs) + 1.0, nrows=len(diffs), sharex=True, squeeze=False) as (fig, axes):
        for ax, d in zip(axes[:, 0], diffs):
            band(ax, x, d.ci[:, 0], d.ci[:, 1], color=PRETRAINED["color"], alpha=0.18)
            ax.plot(x, d.difference, **PRETRAINED)
            sig = np.nan_to_num(d.p, nan=1.0) <= s.alpha
            ax.plot(x[sig], d.difference[sig], **SIGNIFICANT)
            ax.axhline(0.0, **REFERENCE)
            _na_marks(ax, x, d.difference)
            ax.set_ylabel(f"{d.label}\nD" + (" (distance)" if not d.higher_is_similar else ""), fontsize=7.5)
        handles = [
            Line2D([], [], **PRETRAINED, label="D = pretrained-vs-random − random-vs-random"),
            Patch(color=PRETRAINED["color"], alpha=0.18, label=f"{level} CI (images and seeds)"),
            Line2D([], [], **SIGNIFICANT, label=f"one-sided p ≤ {s.alpha:g} (per layer)"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=7)
        layer_axis(axes[-1, 0], s.layers)
        fig.suptitle(_title(s, "Similarity to random weights, with inference"), fontsize=10)
        return save(fig, base)


def transferability_tau(s: RunSummary, base: Path) -> list[Path]:
    """Kendall's tau of every estimator with the probe accuracy and with the gain, with CIs."""
    t = s.transfer
    names = [t.labels[e] for e in t.estimators]
    y = np.arange(len(names))[::-1]
    level = fmt.level(t.tau_attrs.get("confidence", s.confidence))
    panels = (("with the pretrained probe accuracy", t.tau_accuracy, t.tau_accuracy_ci),
              ("with the gain (pretrained − random)", t.tau_gain, t.tau_gain_ci))
    with figure(height=0.32 * len(names) + 1.4, ncols=2, sharey=True) as (fig, axes):
        for ax, (what, tau, ci) in zip(axes, panels):
            ax.axvline(0.0, **REFERENCE)
            ax.hlines(y, ci[:, 0], ci[:, 1], color=PRETRAINED["color"], linewidth=1.2)  # a percentile CI
            ax.plot(tau, y, linestyle="none", marker="o", markersize=4, color=PRETRAINED["color"])
            for k in np.flatnonzero(~np.isfinite(tau)):
                ax.text(0.0, y[k], "n/a", ha="center", va="center", fontsize=6.5, color="0.3")
            ax.set_xlim(-1.05, 1.05)
            ax.set_xlabel(f"Kendall's τ across layers, {level} CI")
            ax.set_title(what, fontsize=8.5)
        axes[0].set_yticks(y, names)
        for ax in axes:
            ax.set_ylabel("estimator")
        fig.suptitle(_title(s, "Transferability estimators against the probe, Kendall's τ"), fontsize=10)
        return save(fig, base)


#: name -> (function, caption builder); the order of the report.
FIGURES = {
    "accuracy_by_layer": accuracy_by_layer,
    "gain_by_layer": gain_by_layer,
    "similarity_by_layer": similarity_by_layer,
    "cka_heatmap": cka_heatmap,
    "accuracy_vs_params": accuracy_vs_params,
    "similarity_difference_by_layer": similarity_difference_by_layer,
    "transferability_tau": transferability_tau,
}


def available(s: RunSummary) -> list[str]:
    """The figures ``s`` has the numbers for (results written before the inference and the
    transferability estimators have neither)."""
    skip = {"similarity_difference_by_layer"} if not s.differences else set()
    if s.transfer is None:
        skip.add("transferability_tau")
    return [name for name in FIGURES if name not in skip]


def write_figures(s: RunSummary, folder: Path) -> dict[str, list[Path]]:
    """Every run figure ``s`` has the numbers for into ``folder``; returns name -> [png, pdf]."""
    return {name: FIGURES[name](s, Path(folder) / name) for name in available(s)}


__all__ += ["FULL_WIDTH", "write_figures"]
