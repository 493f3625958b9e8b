"""The cross-set comparison report, from comparison.nc alone.

``write_comparison_report(ds, out)`` writes report.md, report.html (self-contained), figures
(PNG + PDF) and LaTeX tables, like the run report. Every finding comes from the comparison's own
numbers: the joint-bootstrap CIs and Holm-adjusted tests of :func:`layergain.stats.compare_sets`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.compare_figures import write_comparison_figures
from layergain.report.document import Bullets, Document, Paragraph
from layergain.report.findings import layer_runs
from layergain.report.fmt import est_ci, interval_name, p_is
from layergain.report.sections import add_sections, settings_items, write_document
from layergain.report.summary import int_list, json_attr, normalise
from layergain.report.tables import Column, TableSpec, latex_label, write_latex
from layergain.results import schema as S

__all__ = ["build_comparison_document", "comparison_findings", "comparison_tables", "write_comparison_report"]

_VOLATILE = ("created", "command", "config", "timings_s")


class _View:
    """The comparison's arrays in the order the report uses (layer-major where per layer)."""

    def __init__(self, ds: xr.Dataset):
        self.ds = ds = normalise(ds)
        self.sets = [str(n) for n in ds[S.DATASET].values]
        self.layers = [str(n) for n in ds[S.LAYER].values]
        self.pairs = [str(p) for p in ds[S.SET_PAIR].values] if S.SET_PAIR in ds.dims else []
        self.alpha = float(ds.attrs.get("alpha", 0.05))
        self.level = fmt.level(ds.attrs.get("confidence", 0.95))
        self.deep = ds["deep"].values.astype(bool) if "deep" in ds else np.zeros(len(self.layers), bool)
        self.gain = ds["gain"].transpose(S.DATASET, S.LAYER).values.astype(float)
        self.ci = ds["joint_gain_ci"].transpose(S.DATASET, S.LAYER, S.BOUND).values.astype(float)
        self.p_holm = ds["joint_gain_p_holm"].transpose(S.DATASET, S.LAYER).values.astype(float)
        self.significant = (
            ds["significant"].transpose(S.DATASET, S.LAYER).values.astype(bool)
            if "significant" in ds
            else (self.p_holm <= self.alpha) & (self.gain > 0)
        )

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


# --------------------------------------------------------------------------- findings


def _per_set(v: _View) -> list[str]:
    out = []
    n_deep = int(v.deep.sum())
    for k, name in enumerate(v.sets):
        sig = v.significant[k]
        j = int(np.nanargmax(v.gain[k]))
        where = f" ({layer_runs(v.layers, sig)})" if sig.any() else ""
        deep_sig = int((sig & v.deep).sum())
        out.append(
            f"**`{name}`**: significant gain at {sig.sum()} of {len(v.layers)} layers{where}, at {deep_sig} "
            "of the "
            f"{n_deep} deep layers; largest gain at `{v.layers[j]}`, {est_ci(v.gain[k, j], *v.ci[k, j])} "
            f"(Holm-adjusted {p_is(v.p_holm[k, j])})."
        )
    return out


def _keeps(v: _View) -> str | None:
    if not v.deep.any():
        return None
    keeps = (
        v.ds["keeps_gain"].values.astype(bool)
        if "keeps_gain" in v.ds
        else v.significant[:, v.deep].all(axis=1)
    )
    deep = layer_runs(v.layers, v.deep)
    depth = v.ds.attrs.get("deep_min_relative_depth", "")
    yes = [f"`{v.sets[k]}`" for k in np.flatnonzero(keeps)]
    no = [f"`{v.sets[k]}`" for k in np.flatnonzero(~keeps)]
    head = f"**Deepest layers** ({deep}{f', relative depth ≥ {depth}' if depth != '' else ''}): "
    if yes and not no:
        return head + f"every set keeps a significant gain at every deep layer ({', '.join(yes)})."
    if not yes:
        return head + f"no set keeps a significant gain at every deep layer ({', '.join(no)} do not)."
    return (
        head + f"{', '.join(yes)} keep{'s' if len(yes) == 1 else ''} a significant gain at every deep layer; "
        f"{', '.join(no)} do{'es' if len(no) == 1 else ''} not."
    )


def _interaction(v: _View) -> list[str]:
    ds = v.ds
    p = ds["interaction_wald_p_holm"].values.astype(float)
    stat = ds["interaction_wald"].values.astype(float)
    sig = np.nan_to_num(p, nan=1.0) <= v.alpha
    df = int(ds["interaction_df"]) if "interaction_df" in ds else 0
    out = []
    if sig.any():
        j = int(np.flatnonzero(sig)[np.argmin(p[sig])])
        out.append(
            f"**The gain differs between sets** at {sig.sum()} of {len(v.layers)} layers "
            f"({layer_runs(v.layers, sig)}; set × network interaction, cluster-robust Wald test, "
            "Holm-adjusted "
            f"p ≤ {v.alpha:g}); strongest at `{v.layers[j]}`: χ²({df}) = {fmt.num(stat[j], 2)}, "
            f"Holm-adjusted {p_is(p[j])}."
        )
    elif np.isfinite(p).any():
        j = int(np.nanargmin(p))
        out.append(
            f"**No layer shows a significant set × network interaction** after Holm correction (smallest "
            f"adjusted {p_is(p[j])}, at `{v.layers[j]}`, χ²({df}) = {fmt.num(stat[j], 2)})."
        )
    failure = (
        ds["interaction_failure"].values.astype(str)
        if "interaction_failure" in ds
        else np.array([""] * len(p))
    )
    failed = (failure != "") | ~np.isfinite(p)
    if failed.any():
        reasons = sorted({r for r in failure[failed] if r}) or ["no reason was recorded"]
        out.append(
            f"**The interaction test is n/a** at {failed.sum()} of {len(v.layers)} layers "
            f"({layer_runs(v.layers, failed)}): {'; '.join(reasons)}. The bootstrap differences below still "
            "compare those layers."
        )
    return out


def _differences(v: _View) -> list[str]:
    if not v.pairs:
        return []
    ds = v.ds
    diff = ds["difference"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
    ci = ds["difference_ci"].transpose(S.SET_PAIR, S.LAYER, S.BOUND).values.astype(float)
    p = ds["difference_p_holm"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
    sig = np.nan_to_num(p, nan=1.0) <= v.alpha
    out = []
    if sig.any():
        parts = []
        for i, pair in enumerate(v.pairs):
            if sig[i].any():
                a, b = v.pair_names(pair)
                j = int(np.flatnonzero(sig[i])[np.argmax(np.abs(diff[i, sig[i]]))])
                parts.append(
                    f"`{a}` − `{b}` at {layer_runs(v.layers, sig[i])} (largest at `{v.layers[j]}`: "
                    f"{est_ci(diff[i, j], *ci[i, j])}, Holm-adjusted {p_is(p[i, j])})"
                )
        out.append(
            "**Pairwise differences of gain** significant after Holm over all pairs and layers: "
            + "; ".join(parts)
            + "."
        )
    else:
        i, j = np.unravel_index(np.nanargmax(np.abs(diff)), diff.shape)
        a, b = v.pair_names(v.pairs[i])
        out.append(
            f"**No pairwise difference of gain is significant** after Holm over all pairs and layers; the "
            f"largest is `{a}` − `{b}` at `{v.layers[j]}`: {est_ci(diff[i, j], *ci[i, j])} "
            f"(Holm-adjusted {p_is(p[i, j])})."
        )
        n_boot = int(ds.attrs.get("n_boot", 0) or 0)
        n_tests = int(np.isfinite(p).sum())
        floor = n_tests / (n_boot + 1) if n_boot else 0.0
        if floor > v.alpha:  # a bootstrap p-value cannot go below 1/(B+1)
            out[-1] += (
                f" With B = {n_boot} draws a bootstrap p-value cannot go below 1/(B + 1), so Holm over "
                f"{n_tests} comparisons cannot reach {v.alpha:g} (its smallest attainable value is "
                f"{floor:.3f}): this says nothing about the differences; rerun `layergain compare` with "
                f"`--boot {int(np.ceil(n_tests / v.alpha * 2))}` or more."
            )
    if "slope_difference" in ds:
        sd = ds["slope_difference"].values.astype(float)
        sci = ds["slope_difference_ci"].transpose(S.SET_PAIR, S.BOUND).values.astype(float)
        sp = ds["slope_difference_p_holm"].values.astype(float)
        parts = [
            f"`{v.pair_names(pair)[0]}` − `{v.pair_names(pair)[1]}` {est_ci(sd[i], *sci[i])} "
            f"(Holm-adjusted {p_is(sp[i])})"
            for i, pair in enumerate(v.pairs)
        ]
        n_sig = int(np.sum(np.nan_to_num(sp, nan=1.0) <= v.alpha))
        head = (
            f"**The depth trend of the gain differs between sets** ({n_sig} of {len(v.pairs)} pairs at "
            f"Holm-adjusted p ≤ {v.alpha:g})"
            if n_sig
            else "**No difference of depth slopes is significant**"
        )
        out.append(head + "; differences of the slope of gain on relative depth: " + "; ".join(parts) + ".")
    return out


def _ranking(v: _View) -> str | None:
    if not v.deep.any():
        return None
    means = v.deep_mean()
    order = v.ranking()
    ranked = ", ".join(f"{r}. `{v.sets[k]}` ({fmt.signed(means[k])})" for r, k in enumerate(order, start=1))
    return (
        "**Ranking by mean gain over the deep layers** (descriptive; each layer's CI is in Table 2): "
        f"{ranked}. "
        "Whether neighbours differ is answered by the pairwise differences, not by the ranking."
    )


def comparison_findings(ds: xr.Dataset) -> list[str]:
    v = _View(ds)
    items = []
    items += [t for t in (_keeps(v),) if t]
    items += _per_set(v)
    items += _interaction(v)
    items += _differences(v)
    items += [t for t in (_ranking(v),) if t]
    if "slope" in v.ds:
        slope = v.ds["slope"].values.astype(float)
        sci = v.ds["slope_ci"].transpose(S.DATASET, S.BOUND).values.astype(float)
        items.append(
            "Depth trend of the gain (OLS slope on relative depth, joint bootstrap CI): "
            + "; ".join(f"`{n}` {est_ci(slope[k], *sci[k])}" for k, n in enumerate(v.sets))
            + "."
        )
    return items


# --------------------------------------------------------------------------- tables


def comparison_tables(ds: xr.Dataset) -> dict[str, TableSpec]:
    v = _View(ds)
    d = v.ds
    tag = "-".join(v.sets)
    tex_level = v.level.replace(" %", "~\\%")
    # ranking
    order = v.ranking()
    means = v.deep_mean()
    last = len(v.layers) - 1
    keeps = d["keeps_gain"].values.astype(bool) if "keeps_gain" in d else v.significant[:, v.deep].all(axis=1)
    slope = d["slope"].values.astype(float) if "slope" in d else np.full(len(v.sets), np.nan)
    slope_ci = (
        d["slope_ci"].transpose(S.DATASET, S.BOUND).values.astype(float)
        if "slope_ci" in d
        else np.full((len(v.sets), 2), np.nan)
    )
    ranking = TableSpec(
        columns=[
            Column("rank", "Rank", "text"),
            Column("image set", "Image set", "code"),
            Column("mean gain, deep layers", "Mean deep gain", "signed"),
            Column("significant deep layers", "Sig.\\ deep", "text"),
            Column(f"gain at `{v.layers[last]}`", f"Gain \\texttt{{{v.layers[last]}}}", "signed"),
            Column(f"{v.level} CI", tex_level + " CI", "ci"),
            Column("slope on depth", "Slope", "signed"),
            Column(f"slope {v.level} CI", "Slope " + tex_level + " CI", "ci"),
            Column("keeps gain", "Keeps", "text"),
        ],
        rows=[
            [
                str(r),
                v.sets[k],
                means[k],
                f"{int((v.significant[k] & v.deep).sum())}/{int(v.deep.sum())}",
                v.gain[k, last],
                tuple(v.ci[k, last]),
                slope[k],
                tuple(slope_ci[k]),
                "yes" if keeps[k] else "no",
            ]
            for r, k in enumerate(order, start=1)
        ],
        caption="Image sets ranked by mean gain over the deep layers.",
        label=latex_label("tab", "layergain", tag, "ranking"),
        notes=(
            f"Deep layers: {', '.join(v.layers[j] for j in np.flatnonzero(v.deep))}. Keeps gain: a positive "
            "gain "
            f"with Holm-adjusted p ≤ {v.alpha:g} at every deep layer. Slope: OLS slope of gain on relative "
            "depth."
        ),
    )
    # gain per layer and set
    columns = [Column("layer", "Layer", "code")]
    for name in v.sets:
        columns += [
            Column(f"{name} gain", f"\\texttt{{{_tex(name)}}} gain", "signed"),
            Column(f"{v.level} CI", tex_level + " CI", "ci"),
            Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
        ]
    rows = []
    for j, layer in enumerate(v.layers):
        row = [layer]
        for k in range(len(v.sets)):
            row += [v.gain[k, j], tuple(v.ci[k, j]), v.p_holm[k, j]]
        rows.append(row)
    gains = TableSpec(
        columns=columns,
        rows=rows,
        caption="Gain per layer and image set, joint-bootstrap CIs.",
        label=latex_label("tab", "layergain", tag, "gain"),
        notes=(
            f"Gain = pretrained − mean random accuracy; {v.level} CI from the joint hierarchical bootstrap "
            "(images per set, random seeds shared); p: two-sided sign-flip test, Holm across the layers of "
            "each set."
        ),
    )
    failure = (
        d["interaction_failure"].values.astype(str) if "interaction_failure" in d else [""] * len(v.layers)
    )
    df = int(d["interaction_df"]) if "interaction_df" in d else 0
    interaction = TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column(f"Wald χ²({df})", f"Wald $\\chi^2({df})$", "num", 2),
            Column("p", "$p$", "p"),
            Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
            Column("LRT χ²", "LRT $\\chi^2$", "num", 2),
            Column("LRT p", "LRT $p$", "p"),
            Column("note", "Note", "text"),
        ],
        rows=[
            [
                layer,
                d["interaction_wald"].values[j],
                d["interaction_wald_p"].values[j],
                d["interaction_wald_p_holm"].values[j],
                d["interaction_lrt"].values[j],
                d["interaction_lrt_p"].values[j],
                failure[j] or "",
            ]
            for j, layer in enumerate(v.layers)
        ],
        caption="Does the gain differ between image sets? Set × network interaction per layer.",
        label=latex_label("tab", "layergain", tag, "interaction"),
        notes=(
            "Binomial GLM correct ~ network × dataset per layer; the interaction tested with a "
            "cluster-robust "
            "Wald test (primary, Holm across layers) and a likelihood-ratio test. Note: why a layer's test "
            "is n/a."
        ),
    )
    tables = {"ranking": ranking, "gain_by_set": gains, "interaction": interaction}
    if v.pairs:
        diff = d["difference"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        dci = d["difference_ci"].transpose(S.SET_PAIR, S.LAYER, S.BOUND).values.astype(float)
        dp = d["difference_p"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        dph = d["difference_p_holm"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        tables["differences"] = TableSpec(
            columns=[
                Column("difference", "Difference", "text"),
                Column("layer", "Layer", "code"),
                Column("gain difference", "Diff.", "signed"),
                Column(f"{v.level} CI", tex_level + " CI", "ci"),
                Column("p", "$p$", "p"),
                Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
            ],
            rows=[
                [f"{a} − {b}", v.layers[j], diff[i, j], tuple(dci[i, j]), dp[i, j], dph[i, j]]
                for i, (a, b) in enumerate(v.pair_names(p) for p in v.pairs)
                for j in range(len(v.layers))
            ],
            caption="Pairwise differences of gain between image sets, per layer.",
            label=latex_label("tab", "layergain", tag, "differences"),
            notes="Difference = gain of the first set − gain of the second; joint-bootstrap CI; Holm over "
            "all pairs "
            "and layers.",
        )
    return tables


def _tex(text: str) -> str:
    from layergain.report.tables import latex_escape

    return latex_escape(text)


# --------------------------------------------------------------------------- document


def _methods(v: _View) -> list[str]:
    a = v.ds.attrs
    seeds = int_list(a.get("seeds", []))
    depth = a.get("deep_min_relative_depth", "")
    return [
        f"**Comparison.** {len(v.sets)} image sets ({', '.join(f'`{n}`' for n in v.sets)}) were analysed "
        "with the "
        f"same backbone `{a.get('backbone', '')}` (pretrained weights SHA-256 "
        f"`{a.get('weights_sha256', '')}`), the "
        f"same {len(v.layers)} probe layers and the same {len(seeds)} random-weight networks (seeds "
        f"{', '.join(map(str, seeds))}), so a random network is the same network for every set.",
        f"**Statistics.** {v.level} CIs come from a joint hierarchical bootstrap ({a.get('bootstrap', '')}; "
        f"{interval_name(a.get('bootstrap_interval', ''))} interval, B = {a.get('n_boot', '')}). Gain per "
        "set and "
        f"layer: two-sided paired sign-flip test ({a.get('n_permutations', '')} resamples), "
        f"{_holm(a.get('gain_correction', ''))}. Does gain differ between sets: "
        f"{a.get('interaction_test', '')}, with Holm "
        "across layers. Pairwise differences of gain: bootstrap CIs and tests, "
        f"{_holm(a.get('difference_correction', ''))}. "
        f"Deep layers: relative depth ≥ {depth} ({layer_runs(v.layers, v.deep)}). Significance level α = "
        f"{v.alpha:g}.",
        "**Software.** "
        + ", ".join(f"{k} {val}" for k, val in (json_attr(a, "versions", {}) or {}).items() if val)
        + f". Resampling seed {a.get('seed', '')}. The command line and creation time are stored in "
        "comparison.nc "
        "(attributes `command`, `created`).",
    ]


def _holm(text: str) -> str:
    return str(text).replace("holm", "Holm")


def _data(v: _View) -> list[str]:
    runs = json_attr(v.ds.attrs, "runs", []) or []
    items = []
    for r in runs:
        card = (
            f"data card `{r['data_card']}`: {r['data_card_summary']}"
            if r.get("data_card_summary")
            else "no data card"
        )
        sha = r.get("data_content_sha256", "")
        items.append(
            f"`{r.get('dataset')}`: {r.get('n_images')} images; {card}"
            + (f" (content SHA-256 `{sha}`)" if sha else "")
        )
    return items


_FIGURES = [
    (
        "gain_all_sets",
        "Line chart: gain by layer for every image set",
        "Knowledge gain by layer for every image set with its {level} joint-bootstrap CI band; stars: "
        "Holm-adjusted "
        "p ≤ {alpha:g}; shaded: the deep layers. Lower panel: each set's random baseline (mean over seeds).",
    ),
    (
        "gain_heatmap",
        "Heatmap: gain per layer and image set",
        "Gain per layer (rows) and image set (columns); bold with an asterisk: Holm-adjusted p ≤ {alpha:g}. "
        "The numbers carry the "
        "values; the colours (red positive, blue negative) only help the eye.",
    ),
    (
        "pairwise_differences",
        "Line chart: differences of gain between image sets by layer",
        "Difference of gain between each pair of sets by layer, with its {level} joint-bootstrap CI band; "
        "stars: "
        "Holm-adjusted p ≤ {alpha:g} (Holm over all pairs and layers).",
    ),
]


def build_comparison_document(ds: xr.Dataset) -> Document:
    v = _View(ds)
    a = v.ds.attrs
    doc = Document(f"layergain comparison: {', '.join(v.sets)} × {a.get('backbone', '')}")
    runs = json_attr(a, "runs", []) or []
    sizes = ", ".join(f"`{r.get('dataset')}` ({r.get('n_images')} images)" for r in runs)
    doc.add(
        Paragraph(
            f"Does the knowledge gain of the ImageNet-pretrained `{a.get('backbone', '')}` over random "
            "weights differ "
            f"between image sets? {len(v.sets)} sets: {sizes or ', '.join(v.sets)}; {len(v.layers)} probe "
            "layers."
        )
    )
    figures = [
        (stem, alt, caption.format(level=v.level, alpha=v.alpha))
        for stem, alt, caption in _FIGURES
        if stem != "pairwise_differences" or v.pairs
    ]
    return add_sections(
        doc,
        findings=comparison_findings(ds),
        figures=figures,
        tables=comparison_tables(ds),
        methods=_methods(v),
        data=[Bullets(_data(v) or ["The runs' data cards are not recorded in this file."])],
        settings_note="Every attribute of comparison.nc except the command line and creation time (which "
        "differ "
        "between identical comparisons).",
        settings=settings_items(a, _VOLATILE + ("runs", "title")),
    )


def write_comparison_report(ds: xr.Dataset, out: str | Path) -> list[Path]:
    """Write figures, LaTeX tables, ``report.md`` and ``report.html`` of a comparison into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    v = _View(ds)
    figures = write_comparison_figures(v.ds, out / "figures")
    if not v.pairs:
        figures.pop("pairwise_differences", None)
    files = [p for paths in figures.values() for p in paths]
    files += write_latex(comparison_tables(ds), out / "tables")
    return files + write_document(build_comparison_document(ds), out)
