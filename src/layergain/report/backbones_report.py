"""The report of backbones side by side on one image set (from ``backbones.nc`` alone).

``write_backbones_report(ds, out)`` writes report.md, report.html, two figures (probe accuracy
against the parameters up to each layer — the complexity–accuracy trade-off — and the gain by
relative depth), the tests of each larger backbone's best layer against each smaller one's sweet
spot, and the robustness table (:mod:`layergain.results.backbones`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.configurations_report import robustness_spec
from layergain.report.document import Bullets, Document, Paragraph
from layergain.report.fmt import est_ci, p_is
from layergain.report.sections import add_sections, settings_items, write_document
from layergain.report.style import SIGNIFICANT, band, figure, save, series_style
from layergain.report.tables import Column, TableSpec, latex_label, write_latex

__all__ = ["backbones_findings", "backbones_tables", "write_backbones_report"]

ALPHA = 0.05
_VOLATILE = ("created", "command", "timings_s")
_CONF, _PAIR = "configuration", "backbone_pair"


def _names(ds: xr.Dataset) -> list[str]:
    return [str(v) for v in ds[_CONF].values]


def _series(ds: xr.Dataset, name: str, k: int) -> np.ndarray:
    """Configuration k's values of a per-layer variable, without the padding."""
    n = int(ds["n_layers"].values[k])
    return ds[name].isel({_CONF: k}).values[:n]


def backbones_findings(ds: xr.Dataset) -> list[str]:
    """The findings, each chosen by a rule on the file's numbers."""
    names = _names(ds)
    level = fmt.level(float(ds.attrs.get("confidence", 0.95)))
    out = []
    for k, name in enumerate(names):
        acc = _series(ds, "accuracy_pretrained", k).astype(float)
        sweet, best = str(ds["sweet_spot"].values[k]), str(ds["best_layer"].values[k])
        lnames = [str(v) for v in _series(ds, "layer_name", k)]
        params = _series(ds, "params_to_layer", k).astype(float)
        at = {n: j for j, n in enumerate(lnames)}
        if best not in at:
            continue
        head = (f"**`{name}`** ({fmt.params(ds['n_params'].values[k])} parameters): best layer `{best}` "
                f"(accuracy {fmt.num(acc[at[best]])}, {fmt.params(params[at[best]])} parameters up to it)")
        if sweet in at:
            out.append(
                f"{head}; sweet spot `{sweet}` (accuracy {fmt.num(acc[at[sweet]])} with "
                f"{fmt.params(params[at[sweet]])} parameters, {fmt.pct(params[at[sweet]] / params[at[best]])} "
                "of the best layer's)."
            )
        else:
            out.append(f"{head}; its sweet spot is undetermined (its run's findings say why).")
    for i, pair in enumerate(ds[_PAIR].values):
        small, large = str(ds["smaller"].values[i]), str(ds["larger"].values[i])
        reason = str(ds["reason"].values[i])
        p_any = float(ds["p_any"].values[i])
        if reason or not np.isfinite(p_any):
            out.append(f"**`{large}` against `{small}`**: no calibrated test ({reason or 'no layer'}).")
            continue
        lo, hi = (float(v) for v in ds["difference_ci"].values[i])
        d = float(ds["difference"].values[i])
        best, sweet = str(ds["best_of_larger"].values[i]), str(ds["sweet_of_smaller"].values[i])
        verdict = ("beats" if p_any <= ALPHA else "is not shown to beat")
        out.append(
            f"**`{large}` against `{small}`**: the larger backbone's best layer (`{best}`, "
            f"{fmt.params(ds['params_best'].values[i])} parameters) {verdict} the smaller one's sweet spot "
            f"(`{sweet}`, {fmt.params(ds['params_sweet'].values[i])}): accuracy difference "
            f"{est_ci(d, lo, hi)} ({level} CI); one-sided {p_is(p_any)} over all of its layers (the choice of "
            f"the best layer accounted for), {p_is(float(ds['p_best'].values[i]))} at `{best}` alone."
        )
    holds = ds["holds"].transpose("conclusion", _CONF).values
    for k, text in enumerate(ds["conclusion_text"].values):
        yes = [names[c] for c in np.flatnonzero(holds[k] == 1)]
        no = [names[c] for c in np.flatnonzero(holds[k] == 0)]
        if not yes and not no:
            continue
        verdict = (
            "holds under every backbone" if not no else "holds under none" if not yes
            else f"holds under {', '.join(f'`{n}`' for n in yes)}, not under {', '.join(f'`{n}`' for n in no)}"
        )
        out.append(f"**Robustness — {text}**: {verdict} (each at its own relative depths).")
    return out


def backbones_tables(ds: xr.Dataset) -> dict[str, TableSpec]:
    """The tests of best layer against sweet spot, and the robustness table."""
    names = _names(ds)
    rows = []
    for i in range(ds.sizes[_PAIR]):
        lo, hi = (float(v) for v in ds["difference_ci"].values[i])
        rows.append([str(ds["larger"].values[i]), str(ds["best_of_larger"].values[i]),
                     fmt.params(ds["params_best"].values[i]), str(ds["smaller"].values[i]),
                     f"`{ds['sweet_of_smaller'].values[i]}`" if str(ds["sweet_of_smaller"].values[i]) else "—",
                     fmt.params(ds["params_sweet"].values[i]),
                     float(ds["difference"].values[i]), (lo, hi), float(ds["p_best"].values[i]),
                     float(ds["p_any"].values[i])])
    tests = TableSpec(
        columns=[Column("larger", "larger", "text"), Column("best layer", "best layer", "code"),
                 Column("parameters", "parameters", "text"), Column("smaller", "smaller", "text"),
                 Column("sweet spot", "sweet spot", "text"), Column("parameters ", "parameters", "text"),
                 Column("difference", "difference", "signed"), Column("CI", "CI", "ci"),
                 Column("p (best)", "$p$ (best)", "p"), Column("p (any layer)", "$p$ (any layer)", "p")],
        rows=rows,
        caption=f"Does a larger backbone's best layer beat a smaller one's sweet spot? Difference of pretrained "
                f"probe accuracy with its {fmt.level(float(ds.attrs.get('confidence', 0.95)))} CI (paired over "
                "images); p (best): one-sided at the best layer, conditional on choosing it; p (any layer): "
                "one-sided minP over every layer of the larger backbone (primary). Parameters: up to the layer.",
        label=latex_label("backbones", ds.attrs.get("dataset", "")),
    )
    robust = robustness_spec(
        ds, names, _CONF, flips_at=False,
        caption="Robustness: whether each conclusion of a run holds under each backbone (each at its own "
                "relative depths).",
        label=latex_label("backbone_robustness", ds.attrs.get("dataset", "")),
    )
    return {"backbones": tests, "robustness": robust}


def _figure_tradeoff(ds: xr.Dataset, base: Path) -> list[Path]:
    names = _names(ds)
    with figure(height=3.6) as (fig, ax):
        for k, name in enumerate(names):
            style = series_style(k)
            x = _series(ds, "params_to_layer", k).astype(float)
            acc = _series(ds, "accuracy_pretrained", k).astype(float)
            ci = _series(ds, "accuracy_pretrained_ci", k).astype(float)
            band(ax, x, ci[:, 0], ci[:, 1], color=style["color"], alpha=0.12)
            ax.plot(x, acc, label=f"{name} (pretrained)", **style)
            ax.plot(x, _series(ds, "accuracy_random_mean", k).astype(float), color=style["color"], linestyle=":",
                    linewidth=1.0, label=f"{name} (random, mean)")
            lnames = [str(v) for v in _series(ds, "layer_name", k)]
            sweet = str(ds["sweet_spot"].values[k])
            if sweet in lnames:
                j = lnames.index(sweet)
                ax.plot(x[j], acc[j], marker="D", markersize=8, markerfacecolor="none",
                        markeredgecolor=style["color"], markeredgewidth=1.6, linestyle="none", label="_")
            best = str(ds["best_layer"].values[k])
            if best in lnames:
                j = lnames.index(best)
                ax.plot(x[j], acc[j], **{**SIGNIFICANT, "color": style["color"]}, label="_")
        ax.plot([], [], marker="D", markerfacecolor="none", markeredgecolor="0.2", linestyle="none",
                label="sweet spot")
        ax.plot([], [], **{**SIGNIFICANT, "color": "0.2"}, label="best layer")
        ax.set_xscale("log")
        ax.set_xlabel("parameters up to the layer (log scale)")
        ax.set_ylabel("probe accuracy")
        ax.legend(fontsize=7, ncols=2)
        return save(fig, base)


def _figure_depth(ds: xr.Dataset, base: Path) -> list[Path]:
    names = _names(ds)
    with figure(height=3.4) as (fig, ax):
        for k, name in enumerate(names):
            style = series_style(k)
            x = _series(ds, "relative_depth", k).astype(float)
            gain = _series(ds, "gain", k).astype(float)
            ci = _series(ds, "gain_ci", k).astype(float)
            band(ax, x, ci[:, 0], ci[:, 1], color=style["color"], alpha=0.12)
            ax.plot(x, gain, label=name, **style)
            sig = np.nan_to_num(_series(ds, "significant", k).astype(float)) > 0
            ax.plot(x[sig], gain[sig], **{**SIGNIFICANT, "markersize": 7}, label="_")
        ax.plot([], [], label="significant in its run (max-T)", **{**SIGNIFICANT, "markersize": 7})
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_xlabel("relative depth (0: stem, 1: last layer)")
        ax.set_ylabel("knowledge gain")
        ax.legend(fontsize=7, ncols=2)
        return save(fig, base)


def _methods(ds: xr.Dataset) -> list[str]:
    a = ds.attrs
    runs = json.loads(a["runs"]) if isinstance(a.get("runs"), str) else a.get("runs", [])
    described = "; ".join(f"`{r['configuration']}`: backbone `{r['backbone']}`, readout `{r['readout']}`, "
                          f"baseline `{r['baseline']}`" for r in runs)
    unit = a.get("resampling_unit", "image")
    return [
        f"**Backbones.** {len(runs)} runs of `{a.get('dataset')}` ({a.get('n_images')} images, "
        f"{a.get('folds')}-fold cross-validation, the same folds for all; random seeds "
        f"{', '.join(map(str, a.get('seeds', [])))}): {described}. Their layers differ, so they are set side by "
        "side by relative depth and by the parameters of the network up to each layer.",
        "**Best layer against sweet spot.** For each pair of backbones with different numbers of parameters, "
        "the difference between the pretrained probe accuracy of the larger backbone's layers and that of the "
        "smaller backbone's sweet spot (from its own run) is a contrast within one crossed design of the same "
        f"images: its variance has a part from the {a.get('n_units')} {unit}s (CR2 contributions of the paired "
        "differences)" + (" and, under target `draw`, the random twins' spread at both layers (seeds paired by "
                          "index)" if a.get("statistics_target") == "draw" else "")
        + f"; generalised pivotal draws ({a.get('n_draws')}). The test is one-sided and takes the best layer's "
        "selection into account: single-step minP over every layer of the larger backbone. Calibration by "
        "simulation: tests/stats/test_backbones.py.",
    ]


def build_backbones_document(ds: xr.Dataset) -> Document:
    """The backbones report as a :class:`Document` (figures referenced under ``figures/``)."""
    a = ds.attrs
    names = _names(ds)
    doc = Document(f"layergain backbones: {a.get('dataset', '')}")
    doc.add(Paragraph(
        f"Does the pattern on `{a.get('dataset', '')}` depend on the size of the model, and does a larger model's "
        f"best layer beat a smaller model's sweet spot? {len(names)} runs on the same images: "
        f"{', '.join(f'`{n}`' for n in names)}. Each run's own report is in its folder."
    ))
    level = fmt.level(float(a.get("confidence", 0.95)))
    figures = [
        ("backbone_tradeoff", "Line chart: probe accuracy against parameters up to the layer, every backbone",
         f"Complexity against accuracy: out-of-fold probe accuracy of each backbone's layers against the "
         f"parameters of the network up to the layer (log scale), pretrained with its pointwise {level} CI "
         "band, the random networks' mean dotted; diamond: the sweet spot, star: the best layer."),
        ("backbone_gain_by_depth", "Line chart: knowledge gain against relative depth, every backbone",
         f"Knowledge gain against relative depth for every backbone, with its pointwise {level} CI band from "
         "its run; stars: significant in its run (max-T over its layers)."),
    ]
    card = a.get("data_card_summary") or "no data card"
    return add_sections(
        doc,
        findings=backbones_findings(ds),
        figures=figures,
        tables=backbones_tables(ds),
        methods=_methods(ds),
        data=[Bullets([f"`{a.get('dataset')}`: {a.get('n_images')} images; {card} "
                       f"(content SHA-256 `{a.get('data_content_sha256', '')}`)"])],
        settings_note="Every attribute of backbones.nc except the command line, timings and creation time.",
        settings=settings_items(a, _VOLATILE + ("runs", "title")),
    )


def write_backbones_report(ds: xr.Dataset, out: str | Path) -> list[Path]:
    """Write figures, LaTeX tables, ``report.md`` and ``report.html`` of backbones side by side."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = _figure_tradeoff(ds, out / "figures" / "backbone_tradeoff")
    files += _figure_depth(ds, out / "figures" / "backbone_gain_by_depth")
    files += write_latex(backbones_tables(ds), out / "tables")
    return files + write_document(build_backbones_document(ds), out)
