"""The cross-set comparison report, from comparison.nc alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report.document import Document, Figure, Heading, Paragraph, Table, to_html, to_markdown
from layergain.report.fmt import ci, pval, signed
from layergain.report.style import figure, layer_axis, save
from layergain.results import schema as S

__all__ = ["write_comparison_report"]

_STYLES = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"), ("-", "v"), ("--", "P")]


def gain_by_layer_all_sets(ds: xr.Dataset, base: Path) -> list[Path]:
    names = [str(n) for n in ds[S.LAYER].values]
    x = np.arange(len(names))
    with figure() as (fig, ax):
        for k, name in enumerate(ds[S.DATASET].values):
            line, marker = _STYLES[k % len(_STYLES)]
            ci_k = ds["joint_gain_ci"].sel({S.DATASET: name}).values
            (handle,) = ax.plot(x, ds["gain"].sel({S.DATASET: name}).values, linestyle=line, marker=marker,
                                markersize=4, label=str(name))
            ax.fill_between(x, ci_k[:, 0], ci_k[:, 1], color=handle.get_color(), alpha=0.15, linewidth=0)
        ax.axhline(0, color="0.3", linewidth=0.8)
        layer_axis(ax, names)
        ax.set_ylabel("knowledge gain (accuracy, pretrained − random)")
        ax.legend(frameon=False, fontsize=7)
        ax.set_title("Knowledge gain by layer, all image sets (95 % CI bands)")
        return save(fig, base)


def build_comparison_document(ds: xr.Dataset) -> Document:
    runs = json.loads(ds.attrs["runs"])
    doc = Document(f"layergain comparison: {', '.join(r['dataset'] for r in runs)}")
    doc.add(
        Paragraph(f"{len(runs)} image sets, backbone {ds.attrs['backbone']}, random seeds "
                  f"{list(ds.attrs['seeds'])}; joint hierarchical bootstrap ({ds.attrs['bootstrap_interval']}, "
                  f"B = {ds.attrs['n_boot']})."),
        Heading("Gain by layer"),
        Figure("figures/gain_by_layer_all_sets.png", "Knowledge gain by layer for every image set, with 95 % bootstrap bands."),
        Heading("Does the gain differ between sets?"),
    )
    rows = []
    for j, layer in enumerate(ds[S.LAYER].values):
        rows.append([f"`{layer}`", f"{float(ds['interaction_wald'].values[j]):.2f}", pval(ds["interaction_wald_p"].values[j]),
                     pval(ds["interaction_wald_p_holm"].values[j]), pval(ds["interaction_lrt_p"].values[j])])
    doc.add(Table(["layer", "Wald χ²", "p", "p (Holm)", "LRT p"], rows,
                  caption=f"Binomial GLM correct ~ network × dataset per layer, cluster-robust Wald test of the "
                          f"interaction (df = {int(ds['interaction_df'])})."))
    rows = []
    for k, name in enumerate(ds[S.DATASET].values):
        deep = ds["deep"].values.astype(bool)
        g = ds["gain"].sel({S.DATASET: name}).values[deep]
        rows.append([str(name), signed(np.mean(g)), "yes" if ds["keeps_gain"].values[k] else "no",
                     f"{signed(ds['slope'].values[k])} {ci(*ds['slope_ci'].values[k])}"])
    rows.sort(key=lambda r: -float(r[1]) if r[1] != "n/a" else 0)
    doc.add(Heading("Deep layers"), Table(["image set", "mean gain, deep layers", "significant at every deep layer",
                                            "slope on depth [CI]"], rows, align="lrcr"))
    return doc


def write_comparison_report(ds: xr.Dataset, out: Path) -> list[Path]:
    out = Path(out)
    files = gain_by_layer_all_sets(ds, out / "figures" / "gain_by_layer_all_sets")
    doc = build_comparison_document(ds)
    (out / "report.md").write_text(to_markdown(doc), encoding="utf-8")
    (out / "report.html").write_text(to_html(doc, out), encoding="utf-8")
    return files + [out / "report.md", out / "report.html"]
