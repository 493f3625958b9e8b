"""The report of one run: Markdown, HTML, figures and LaTeX tables, from results alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import figures
from layergain.report.document import Bullets, Document, Figure, Heading, Paragraph, Table, to_html, to_markdown
from layergain.report.fmt import ci, num, pval, signed
from layergain.results import schema as S

__all__ = ["write_report", "build_document", "per_layer_rows"]


def _random_accuracy(ds: xr.Dataset) -> xr.DataArray:
    return ds["accuracy"].sel({S.INIT: ds["kind"] == "random"})


def per_layer_rows(ds: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the per-layer table (Markdown and HTML)."""
    rand = _random_accuracy(ds)
    header = [
        "layer", "params", "acc. pretrained", "acc. random (mean ± sd)", "gain [95 % CI]", "rel. gain",
        "p", "p (Holm)", "Cohen's h",
    ]
    rows = []
    for j, name in enumerate(ds[S.LAYER].values):
        lo, hi = ds["gain_ci"].values[j]
        rows.append([
            f"`{name}`",
            f"{int(ds['params_to_layer'].values[j]):,}",
            num(ds["accuracy"].sel({S.INIT: S.PRETRAINED}).values[j]),
            f"{num(rand.mean(S.INIT).values[j])} ± {num(rand.std(S.INIT, ddof=1).values[j] if rand.sizes[S.INIT] > 1 else np.nan)}",
            f"{signed(ds['gain'].values[j])} {ci(lo, hi)}",
            signed(ds["relative_gain"].values[j]),
            pval(ds["gain_p"].values[j]),
            pval(ds["gain_p_holm"].values[j]),
            signed(ds["gain_effect_size"].values[j], 2),
        ])
    return header, rows


def build_document(ds: xr.Dataset) -> Document:
    a = ds.attrs
    doc = Document(f"layergain report: {a['dataset']} × {a['backbone']}")
    counts = json.loads(a["class_counts"])
    doc.add(
        Paragraph(
            f"{a['n_images']} images in {len(counts)} classes; {a['backbone']} with ImageNet weights "
            f"against {len(json.loads(a['seeds']) if isinstance(a['seeds'], str) else a['seeds'])} random "
            f"initialisations; {a['folds']}-fold cross-validated linear probes."
        ),
        Heading("Probe accuracy by layer"),
        Figure("figures/accuracy_by_layer.png", "Out-of-fold linear-probe accuracy by layer: ImageNet-pretrained "
               "network, mean of the random networks with the range over seeds, and the majority-class rate."),
        Heading("Per-layer results"),
    )
    header, rows = per_layer_rows(ds)
    doc.add(Table(header, rows, caption="Gain = pretrained accuracy − mean random accuracy; CI: "
                  f"{ds['gain_ci'].attrs.get('bootstrap_interval', '')} hierarchical bootstrap; p: "
                  "paired sign-flip permutation test; Holm across layers.", align="lrrrrrrrr"))
    # created / timings / config (holds the output path) differ between identical reruns: they stay in results.nc
    shown = {k: v for k, v in a.items() if k not in ("config", "created", "timings_s")}
    doc.add(Heading("Settings"), Bullets([f"`{k}`: {v}" for k, v in sorted(shown.items())]))
    return doc


def write_report(ds: xr.Dataset, out: Path) -> list[Path]:
    """Write figures, ``report.md`` and ``report.html`` into ``out``."""
    out = Path(out)
    files = figures.accuracy_by_layer(ds, out / "figures" / "accuracy_by_layer")
    doc = build_document(ds)
    (out / "report.md").write_text(to_markdown(doc), encoding="utf-8")
    (out / "report.html").write_text(to_html(doc, out), encoding="utf-8")
    return files + [out / "report.md", out / "report.html"]
