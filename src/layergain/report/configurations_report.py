"""The report of a paired comparison of configurations (readouts, baselines, backbones) of one image set.

``write_configurations_report(ds, out)`` writes report.md, report.html, figures (PNG + PDF) and
LaTeX tables from configurations.nc alone (:mod:`layergain.results.configurations`). Every finding
is read off the file: per pair of configurations the layers where the gain differs (max-T over
every pair and layer), and the robustness table — whether each claim-level conclusion holds under
each configuration and the layers where the per-layer verdict flips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.document import Bullets, Document, Paragraph
from layergain.report.fmt import est_ci, layer_runs, p_is
from layergain.report.sections import add_sections, settings_items, write_document
from layergain.report.style import SIGNIFICANT, band, figure, layer_axis, save, series_style
from layergain.report.tables import Column, TableSpec, latex_label, write_latex
from layergain.results import schema as S

__all__ = ["configurations_findings", "configurations_tables", "write_configurations_report"]

ALPHA = 0.05
_VOLATILE = ("created", "command", "timings_s")
_CONF, _PAIR = "configuration", "config_pair"


def _names(ds: xr.Dataset) -> list[str]:
    return [str(v) for v in ds[_CONF].values]


def _layers(ds: xr.Dataset) -> list[str]:
    return [str(v) for v in ds[S.LAYER].values]


def _ci(da: xr.DataArray, first: str) -> np.ndarray:
    return da.transpose(first, S.LAYER, S.BOUND).values.astype(float)


def _what_differs(ds: xr.Dataset) -> str:
    """Which of backbone, readout and baseline differ between the configurations."""
    axes = [name for name in ("backbone", "readout", "baseline") if name in ds and len(set(ds[name].values)) > 1]
    return " and ".join(axes) or "configuration"


def configurations_findings(ds: xr.Dataset) -> list[str]:
    """The findings, each chosen by a rule on the file's numbers."""
    names, layers = _names(ds), _layers(ds)
    level = fmt.level(float(ds.attrs.get("confidence", 0.95)))
    out = []
    diff = ds["difference"].transpose(_PAIR, S.LAYER).values.astype(float)
    ci = _ci(ds["difference_ci"], _PAIR)
    p_maxt = ds["difference_p_maxt"].transpose(_PAIR, S.LAYER).values.astype(float)
    p_holm = ds["difference_p_holm"].transpose(_PAIR, S.LAYER).values.astype(float)
    pairs = [(str(a), str(b)) for a, b in zip(ds["first"].values, ds["second"].values)]
    n_tests = int(np.isfinite(p_maxt).sum())
    family = f"max-T-adjusted, family-wise over {len(pairs)} pair(s) × {len(layers)} layers"
    for i, (a, b) in enumerate(pairs):
        sig = np.nan_to_num(p_maxt[i], nan=1.0) <= ALPHA
        shared = bool(ds["shared_pretrained"].values[i])
        how = " (same pretrained features: the difference is that of the random baselines)" if shared else ""
        if sig.any():
            j = int(np.flatnonzero(sig)[np.argmax(np.abs(diff[i, sig]))])
            out.append(
                f"**`{a}` − `{b}`**{how}: the gain differs at {int(sig.sum())} of {len(layers)} layers "
                f"({layer_runs(layers, sig)}; {family}, p ≤ {ALPHA:g}); largest at `{layers[j]}`: "
                f"{est_ci(diff[i, j], *ci[i, j])} ({level} CI; max-T-adjusted {p_is(p_maxt[i, j])}, Holm "
                f"{p_is(p_holm[i, j])})."
            )
        elif np.isfinite(diff[i]).any():
            # the largest difference with a calibrated interval (the others are counted below)
            tested = np.isfinite(p_maxt[i])
            j = int(np.nanargmax(np.where(tested if tested.any() else np.isfinite(diff[i]), np.abs(diff[i]), np.nan)))
            out.append(
                f"**`{a}` − `{b}`**{how}: no layer's gain differs ({family}); the largest "
                f"{'tested ' if tested.any() and not tested.all() else ''}difference is at "
                f"`{layers[j]}`: {est_ci(diff[i, j], *ci[i, j])} (max-T-adjusted {p_is(p_maxt[i, j])})."
            )
    reasons = sorted({str(r) for r in ds["difference_reason"].values.ravel() if str(r)})
    if n_tests == 0:
        out.append("**No difference has a calibrated test**: " + "; ".join(reasons) + ".")
    elif reasons:
        untested = int((np.isfinite(diff) & ~np.isfinite(p_maxt)).sum())
        out.append(f"**{untested} of {diff.size} differences have no calibrated interval or test** (n/a in "
                   "Table “differences”): " + "; ".join(reasons) + ".")
    holds = ds["holds"].transpose("conclusion", _CONF).values
    for k, (key, text) in enumerate(zip(ds["conclusion"].values, ds["conclusion_text"].values)):
        yes = [names[c] for c in np.flatnonzero(holds[k] == 1)]
        no = [names[c] for c in np.flatnonzero(holds[k] == 0)]
        if not yes and not no:
            continue
        flips = str(ds["flips_at"].values[k])
        verdict = (
            "holds under every configuration" if not no else "holds under none" if not yes
            else f"holds under {', '.join(f'`{n}`' for n in yes)}, not under {', '.join(f'`{n}`' for n in no)}"
        )
        out.append(f"**Robustness — {text}**: {verdict}" + (f"; the per-layer verdict flips at {flips}" if flips
                                                            else "") + ".")
    return out


def robustness_spec(ds: xr.Dataset, names: list[str], dim: str, *, caption: str, label: str,
                    flips_at: bool) -> TableSpec:
    """The robustness table of a configurations.nc or backbones.nc (``holds(conclusion, dim)``):
    yes / no / undetermined per conclusion and configuration, and where asked the layers where the
    per-layer verdict flips."""
    holds = ds["holds"].transpose("conclusion", dim).values
    word = {1: "yes", 0: "no", -1: "undetermined"}
    flips = [[str(v) or "—"] for v in ds["flips_at"].values] if flips_at else [[] for _ in holds]
    return TableSpec(
        columns=[Column("conclusion", "conclusion", "text"), *[Column(n, n, "text") for n in names],
                 *([Column("flips at", "flips at", "text")] if flips_at else [])],
        rows=[[str(text), *[word[int(h)] for h in holds[k]], *flips[k]]
              for k, text in enumerate(ds["conclusion_text"].values)],
        caption=caption, label=label,
    )


def configurations_tables(ds: xr.Dataset) -> dict[str, TableSpec]:
    """The robustness table and the differences of gain per pair and layer."""
    names, layers = _names(ds), _layers(ds)
    robust = robustness_spec(
        ds, names, _CONF, flips_at=True,
        caption="Robustness: whether each conclusion of a run holds under each configuration, and the layers "
                "where the per-layer verdict (max-T-significant positive gain) is not the same in every "
                "configuration.",
        label=latex_label("robustness", ds.attrs.get("dataset", "")),
    )
    diff = ds["difference"].transpose(_PAIR, S.LAYER).values.astype(float)
    ci = _ci(ds["difference_ci"], _PAIR)
    p = ds["difference_p"].transpose(_PAIR, S.LAYER).values.astype(float)
    p_maxt = ds["difference_p_maxt"].transpose(_PAIR, S.LAYER).values.astype(float)
    pairs = [f"{a} − {b}" for a, b in zip(ds["first"].values, ds["second"].values)]
    rows = [[pairs[i], layers[j], diff[i, j], (ci[i, j, 0], ci[i, j, 1]), p[i, j], p_maxt[i, j]]
            for i in range(len(pairs)) for j in range(len(layers))]
    differences = TableSpec(
        columns=[Column("pair", "pair", "text"), Column("layer", "layer", "code"),
                 Column("difference", "difference", "signed"), Column("CI", "CI", "ci"),
                 Column("p", "$p$", "p"), Column("p (max-T)", "$p$ (max-T)", "p")],
        rows=rows,
        caption=f"Difference of gain between configurations per layer, with its "
                f"{fmt.level(float(ds.attrs.get('confidence', 0.95)))} CI (paired over images, seeds paired by "
                "index) and two-sided p; p (max-T): minP step-down over every pair and layer.",
        label=latex_label("configuration_differences", ds.attrs.get("dataset", "")),
    )
    return {"robustness": robust, "differences": differences}


def _figure_gains(ds: xr.Dataset, base: Path) -> list[Path]:
    names, layers = _names(ds), _layers(ds)
    x = np.arange(len(layers))
    with figure(height=3.6) as (fig, ax):
        for k, name in enumerate(names):
            style = series_style(k)
            gain = ds["gain"].sel({_CONF: name}).values.astype(float)
            lo_hi = ds["paired_gain_ci"].sel({_CONF: name}).transpose(S.LAYER, S.BOUND).values.astype(float)
            band(ax, x, lo_hi[:, 0], lo_hi[:, 1], color=style["color"], alpha=0.13)
            ax.plot(x, gain, label=name, **style)
            if "significant" in ds:
                sig = ds["significant"].sel({_CONF: name}).values.astype(bool)
                ax.plot(x[sig], gain[sig], **{**SIGNIFICANT, "markersize": 7}, label="_")
        ax.plot([], [], label="significant in its run (max-T)", **{**SIGNIFICANT, "markersize": 7})
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_ylabel("knowledge gain")
        layer_axis(ax, layers)
        ax.legend(fontsize=7, ncols=2)
        return save(fig, base)


def _figure_differences(ds: xr.Dataset, base: Path) -> list[Path]:
    layers = _layers(ds)
    x = np.arange(len(layers))
    with figure(height=3.4) as (fig, ax):
        for i, (a, b) in enumerate(zip(ds["first"].values, ds["second"].values)):
            style = series_style(i)
            d = ds["difference"].isel({_PAIR: i}).values.astype(float)
            ci = ds["difference_ci"].isel({_PAIR: i}).transpose(S.LAYER, S.BOUND).values.astype(float)
            band(ax, x, ci[:, 0], ci[:, 1], color=style["color"], alpha=0.13)
            ax.plot(x, d, label=f"{a} − {b}", **style)
            sig = np.nan_to_num(ds["difference_p_maxt"].isel({_PAIR: i}).values.astype(float), nan=1.0) <= ALPHA
            ax.plot(x[sig], d[sig], **{**SIGNIFICANT, "markersize": 7}, label="_")
        ax.plot([], [], label=f"max-T-adjusted p ≤ {ALPHA:g}", **{**SIGNIFICANT, "markersize": 7})
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_ylabel("difference of gain")
        layer_axis(ax, layers)
        ax.legend(fontsize=7, ncols=2)
        return save(fig, base)


def _methods(ds: xr.Dataset) -> list[str]:
    a = ds.attrs
    runs = json.loads(a["runs"]) if isinstance(a.get("runs"), str) else a.get("runs", [])
    described = "; ".join(f"`{r['configuration']}`: backbone `{r['backbone']}`, readout `{r['readout']}`, "
                          f"baseline `{r['baseline']}`" for r in runs)
    unit = a.get("resampling_unit", "image")
    return [
        f"**Configurations.** {len(runs)} configurations of `{a.get('dataset')}` ({a.get('n_images')} images, "
        f"{a.get('folds')}-fold cross-validation, the same folds for all; random seeds "
        f"{', '.join(map(str, a.get('seeds', [])))}): {described}.",
        f"**Paired comparison.** Every configuration predicts the same images, so a difference of gains is a "
        f"contrast within one crossed design: its variance has a part from the {a.get('n_units')} {unit}s "
        "(CR2 leverage-corrected contributions of the paired differences; G − 1 df for groups) and a part "
        "from the random seeds (the spread over seed index s of the two configurations' seed-s accuracies, "
        "S − 1 df), the network-by-image share counted once; where both configurations read the same "
        "pretrained features (they differ in the baseline only) the pretrained term cancels exactly. "
        f"Intervals and two-sided tests come from the same generalised pivotal draws ({a.get('n_draws')} "
        f"draws; target of the gain: `{a.get('statistics_target')}`); max-T (minP step-down) over every pair "
        "and layer is the primary correction, Holm beside it. Calibration by simulation: "
        "tests/stats/test_configurations.py.",
    ]


def build_configurations_document(ds: xr.Dataset) -> Document:
    """The configurations report as a :class:`Document` (figures referenced under ``figures/``)."""
    a = ds.attrs
    names = _names(ds)
    doc = Document(f"layergain configurations: {a.get('dataset', '')}")
    doc.add(Paragraph(
        f"Do the conclusions about `{a.get('dataset', '')}` depend on the {_what_differs(ds)}? "
        f"{len(names)} configurations on the same images: {', '.join(f'`{n}`' for n in names)}; "
        f"{len(_layers(ds))} probe layers. Each configuration's own run report is in its folder."
    ))
    level = fmt.level(float(a.get("confidence", 0.95)))
    figures = [
        ("configuration_gains", "Line chart: gain by layer for every configuration",
         f"Knowledge gain by layer under every configuration, with its pointwise {level} CI band from the "
         "joint (paired) design; stars: significant in the configuration's own run (max-T over its layers)."),
        ("configuration_differences", "Line chart: differences of gain between configurations by layer",
         f"Difference of gain between each pair of configurations by layer, with its pointwise {level} CI "
         f"band (paired); stars: max-T-adjusted p ≤ {ALPHA:g}, family-wise over all pairs and layers."),
    ]
    card = a.get("data_card_summary") or "no data card"
    return add_sections(
        doc,
        findings=configurations_findings(ds),
        figures=figures,
        tables=configurations_tables(ds),
        methods=_methods(ds),
        data=[Bullets([f"`{a.get('dataset')}`: {a.get('n_images')} images; {card} "
                       f"(content SHA-256 `{a.get('data_content_sha256', '')}`)"])],
        settings_note="Every attribute of configurations.nc except the command line, timings and creation time.",
        settings=settings_items(a, _VOLATILE + ("runs", "title")),
    )


def write_configurations_report(ds: xr.Dataset, out: str | Path) -> list[Path]:
    """Write figures, LaTeX tables, ``report.md`` and ``report.html`` of a configurations comparison."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = _figure_gains(ds, out / "figures" / "configuration_gains")
    files += _figure_differences(ds, out / "figures" / "configuration_differences")
    files += write_latex(configurations_tables(ds), out / "tables")
    return files + write_document(build_configurations_document(ds), out)
