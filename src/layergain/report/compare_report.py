"""The cross-set comparison report, from comparison.nc alone.

``write_comparison_report(ds, out)`` writes report.md, report.html (self-contained), figures
(PNG + PDF) and LaTeX tables, like the run report. Every finding comes from the comparison's own
numbers, those of :func:`layergain.stats.compare_sets`: intervals and tests from the variance
components of each set's images (or groups) and of the shared random seeds with a generalised
pivotal reference; significance from the max-T (minP step-down) adjusted p-values, Holm as a
secondary column; the interaction as a Wald test of equal gains with its small-sample reference.
Where the runs hold transferability estimators, their Kendall's tau per set (each run's tau table)
and pooled over the sets (stratified tau) get a table, a figure and one finding per estimator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.compare_figures import write_comparison_figures
from layergain.report.compare_summary import ComparisonSummary, summarise_comparison
from layergain.report.document import Bullets, Document, Paragraph
from layergain.report.fmt import est_ci, layer_runs, p_is
from layergain.report.methods import comparison_methods
from layergain.report.sections import add_sections, settings_items, write_document
from layergain.report.summary import int_list, json_attr
from layergain.report.tables import Column, TableSpec, latex_label, write_latex
from layergain.results import schema as S

__all__ = ["build_comparison_document", "comparison_findings", "comparison_tables", "write_comparison_report"]

_VOLATILE = ("created", "command", "config", "timings_s")


# --------------------------------------------------------------------------- findings


def _per_set(v: ComparisonSummary) -> list[str]:
    out = []
    n_deep = int(v.deep.sum())
    for k, name in enumerate(v.sets):
        sig = v.significant[k]
        j = int(np.nanargmax(v.gain[k]))
        where = f" ({layer_runs(v.layers, sig)})" if sig.any() else ""
        deep_sig = int((sig & v.deep).sum())
        out.append(
            f"**`{name}`** ({v.units(name)}): significant gain at {sig.sum()} of {len(v.layers)} layers{where}, "
            f"at {deep_sig} of the {n_deep} deep layers (positive, max-T-adjusted p ≤ {v.alpha:g}, family-wise "
            f"over the {len(v.layers)} layers of this set); largest gain at `{v.layers[j]}`, "
            f"{est_ci(v.gain[k, j], *v.ci[k, j])} (max-T-adjusted {p_is(v.p_maxt[k, j])}; Holm-adjusted "
            f"{p_is(v.p_holm[k, j])})."
        )
    return out


def _keeps(v: ComparisonSummary) -> str | None:
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


def _wald(v: ComparisonSummary, j: int) -> str:
    """``W = 2.00 (K − 1 = 1 df), max-T-adjusted p = …; unadjusted p = …; Holm-adjusted p = …``."""
    ds = v.ds
    df = int(ds["interaction_df"]) if "interaction_df" in ds else len(v.sets) - 1
    stat, p, p_maxt, p_holm = (
        float(ds[name].values[j])
        for name in (
            "interaction_wald",
            "interaction_wald_p",
            "interaction_wald_p_maxt",
            "interaction_wald_p_holm",
        )
    )
    return (
        f"W = {fmt.num(stat, 2)} (K − 1 = {df} df), max-T-adjusted {p_is(p_maxt)}; unadjusted {p_is(p)}; "
        f"Holm-adjusted {p_is(p_holm)}"
    )


def _interaction(v: ComparisonSummary) -> list[str]:
    ds = v.ds
    p = ds["interaction_wald_p_maxt"].values.astype(float)
    sig = np.nan_to_num(p, nan=1.0) <= v.alpha
    test = (
        f"Wald test of equal gains in all K = {len(v.sets)} sets, small-sample (generalised pivotal) reference, "
        f"max-T-adjusted over the {len(v.layers)} layers"
    )
    out = []
    if sig.any():
        j = int(np.flatnonzero(sig)[np.argmin(p[sig])])
        out.append(
            f"**The gain differs between sets** at {sig.sum()} of {len(v.layers)} layers "
            f"({layer_runs(v.layers, sig)}; set × network interaction: {test}, p ≤ {v.alpha:g}); strongest at "
            f"`{v.layers[j]}`: {_wald(v, j)}."
        )
    elif np.isfinite(p).any():
        j = int(np.nanargmin(p))
        out.append(
            f"**No layer shows a significant set × network interaction** ({test}); the smallest max-T-adjusted p is at "
            f"`{v.layers[j]}`: {_wald(v, j)}."
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
            f"({layer_runs(v.layers, failed)}): {'; '.join(reasons)}."
        )
    return out


def _differences(v: ComparisonSummary) -> list[str]:
    if not v.pairs:
        return []
    ds = v.ds
    diff = ds["difference"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
    ci = ds["difference_ci"].transpose(S.SET_PAIR, S.LAYER, S.BOUND).values.astype(float)
    p = ds["difference_p_maxt"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
    p_holm = ds["difference_p_holm"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
    sig = np.nan_to_num(p, nan=1.0) <= v.alpha
    family = f"max-T-adjusted, family-wise over all {v.n_pairs()} × {len(v.layers)} layers"
    out = []
    if sig.any():
        parts = []
        for i, pair in enumerate(v.pairs):
            if sig[i].any():
                a, b = v.pair_names(pair)
                j = int(np.flatnonzero(sig[i])[np.argmax(np.abs(diff[i, sig[i]]))])
                parts.append(
                    f"`{a}` − `{b}` at {layer_runs(v.layers, sig[i])} (largest at `{v.layers[j]}`: "
                    f"{est_ci(diff[i, j], *ci[i, j])}, max-T-adjusted {p_is(p[i, j])}; Holm-adjusted "
                    f"{p_is(p_holm[i, j])})"
                )
        out.append(
            f"**Pairwise differences of gain** significant ({family}, p ≤ {v.alpha:g}): "
            + "; ".join(parts)
            + "."
        )
    elif np.isfinite(diff).any():
        i, j = np.unravel_index(np.nanargmax(np.abs(diff)), diff.shape)
        a, b = v.pair_names(v.pairs[i])
        out.append(
            f"**No pairwise difference of gain is significant** ({family}); the largest is `{a}` − `{b}` at "
            f"`{v.layers[j]}`: {est_ci(diff[i, j], *ci[i, j])} (max-T-adjusted {p_is(p[i, j])}; Holm-adjusted "
            f"{p_is(p_holm[i, j])})."
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
            f"p ≤ {v.alpha:g}, Holm over the pairs)"
            if n_sig
            else f"**No difference of depth slopes is significant** (Holm over the {v.n_pairs()})"
        )
        out.append(head + "; differences of the slope of gain on relative depth: " + "; ".join(parts) + ".")
    return out


def _ranking(v: ComparisonSummary) -> str | None:
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


def _floor(v: ComparisonSummary) -> str | None:
    """Only where no p-value can reach alpha: a Monte Carlo p-value is never below 1/n_draws."""
    if not v.n_draws or 1.0 / v.n_draws <= v.alpha:
        return None
    return (
        f"**Nothing can be significant at α = {v.alpha:g} with n_draws = {v.n_draws}**: a p-value from "
        f"{v.n_draws} Monte Carlo draws of the reference distribution is never below 1/n_draws = "
        f"{1.0 / v.n_draws:.3g}. This says nothing about the gains; rerun `layergain compare` with "
        f"`--draws {int(np.ceil(20 / v.alpha))}` or more."
    )


def _tau_sets(t, key: str, e: int, sets: list[str]) -> str:
    """```a` +0.52 [+0.21, +0.80]; `b` n/a``: each set's tau of estimator ``e`` with its CI."""
    return "; ".join(f"`{name}` {est_ci(t.tau[key][k, e], *t.ci[key][k, e], digits=2)}"
                     for k, name in enumerate(sets))


def _side(lower: float, upper: float) -> str:
    return "above 0" if lower > 0 else "below 0" if upper < 0 else "includes 0"


def _transfer(v: ComparisonSummary) -> list[str]:
    """Per estimator: in how many sets its tau with the gain has a CI above 0 (the rule of the
    head), each set's tau and the pooled stratified tau; a lead sentence says how they are made."""
    t = v.transfer
    if t is None:
        return []
    a = t.pooled_attrs
    resampled = t.set_attrs.get("resampled", "random inits")
    out = [
        f"**Transferability estimators across the {len(v.sets)} sets**: Kendall's τ across layers between "
        "each estimator's pretrained-minus-random difference and the gain, per set from its run's tau table "
        f"({t.set_level} percentile CI over {resampled}, conditional on the estimators' values); an "
        "estimator *tracks the gain* in a set when that CI lies above 0. Pooled: stratified τ (concordant "
        "minus discordant layer pairs summed within sets, never across), "
        f"{fmt.level(a.get('confidence', 0.95))} percentile CI from {fmt.count(a.get('n_boot'))} draws "
        "resampling the shared random inits and each set's images; the sets are held fixed (too few to "
        "resample)."
    ]
    for e, name in enumerate(t.estimators):
        n, k, j = (int(c[e]) for c in (t.counted["gain"], t.above["gain"], t.below["gain"]))
        label = t.labels[name]
        if n == 0:
            head = f"**{label}: no set has a τ with the gain and its CI**"
        elif k == n:
            head = f"**{label} tracks the gain in every set** ({k} of {n})"
        elif k == 0:
            head = f"**{label} tracks the gain in none of the {n} sets**"
        else:
            head = f"**{label} tracks the gain in {k} of {n} sets**"
        if j:
            head += f", τ below 0 in {j}"
        tau, ci = t.pooled["gain"][e], t.pooled_ci["gain"][e]
        if np.isfinite(tau):
            pooled = f"pooled {est_ci(tau, *ci, digits=2)}" + (
                f" (CI {_side(*ci)})" if np.isfinite(ci).all() else " (CI n/a)")
        else:
            pooled = "pooled τ n/a"
        reason = t.reason(e)
        out.append(f"{head}: {_tau_sets(t, 'gain', e, v.sets)}; {pooled}" + (f" ({reason})" if reason else "")
                   + ".")
    return out


def comparison_findings(summary: ComparisonSummary | xr.Dataset) -> list[str]:
    """The findings of a comparison report, each chosen by a rule on its numbers."""
    v = summarise_comparison(summary)
    items = [t for t in (_floor(v),) if t]
    items += [t for t in (_keeps(v),) if t]
    items += _per_set(v)
    items += _interaction(v)
    items += _differences(v)
    items += [t for t in (_ranking(v),) if t]
    if "slope" in v.ds:
        slope = v.ds["slope"].values.astype(float)
        sci = v.ds["slope_ci"].transpose(S.DATASET, S.BOUND).values.astype(float)
        items.append(
            f"Depth trend of the gain (OLS slope on relative depth, {v.level} CI from the same variance "
            "components): "
            + "; ".join(f"`{n}` {est_ci(slope[k], *sci[k])}" for k, n in enumerate(v.sets))
            + "."
        )
    items += _transfer(v)
    return items


# --------------------------------------------------------------------------- tables


def comparison_tables(summary: ComparisonSummary | xr.Dataset) -> dict[str, TableSpec]:
    """The tables of a comparison report: ranking, gain by set, interaction and (with pairs) differences."""
    v = summarise_comparison(summary)
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
            f"Deep layers: {', '.join(v.layers[j] for j in np.flatnonzero(v.deep))}. Sig. deep and keeps "
            f"gain: a positive gain with max-T-adjusted p ≤ {v.alpha:g} (family-wise over the layers of the "
            "set), at every deep layer for keeps gain. Gain CI: pointwise. Slope: OLS slope of gain on "
            "relative depth."
        ),
    )
    # gain per layer and set
    columns = [Column("layer", "Layer", "code")]
    for name in v.sets:
        columns += [
            Column(f"{name} gain", f"\\texttt{{{_tex(name)}}} gain", "signed"),
            Column(f"{v.level} CI", tex_level + " CI", "ci"),
            Column("p (max-T)", "$p_\\mathrm{maxT}$", "p"),
            Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
        ]
    rows = []
    for j, layer in enumerate(v.layers):
        row = [layer]
        for k in range(len(v.sets)):
            row += [v.gain[k, j], tuple(v.ci[k, j]), v.p_maxt[k, j], v.p_holm[k, j]]
        rows.append(row)
    units = "; ".join(f"{name}: {v.units(name)}" for name in v.sets)
    gains = TableSpec(
        columns=columns,
        rows=rows,
        caption="Gain per layer and image set, with intervals and tests from the variance components.",
        label=latex_label("tab", "layergain", tag, "gain"),
        notes=(
            f"Gain = pretrained − mean random accuracy. Pointwise {v.level} CI and two-sided test of gain = 0 "
            f"from the variance components of each set's resampling units ({units}) and of the "
            f"{len(int_list(d.attrs.get('seeds', [])))} shared random seeds, generalised pivotal reference "
            f"({fmt.count(v.n_draws)} draws). p (max-T): minP step-down, family-wise over the layers of each "
            "set (primary); p (Holm): Holm over the same layers (secondary)."
        ),
    )
    failure = (
        d["interaction_failure"].values.astype(str) if "interaction_failure" in d else [""] * len(v.layers)
    )
    df = int(d["interaction_df"]) if "interaction_df" in d else len(v.sets) - 1
    interaction = TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column(f"Wald W ({df} df)", f"Wald $W$ ({df} df)", "num", 2),
            Column("p", "$p$", "p"),
            Column("p (max-T)", "$p_\\mathrm{maxT}$", "p"),
            Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
            Column("note", "Note", "text"),
        ],
        rows=[
            [
                layer,
                d["interaction_wald"].values[j],
                d["interaction_wald_p"].values[j],
                d["interaction_wald_p_maxt"].values[j],
                d["interaction_wald_p_holm"].values[j],
                failure[j] or "",
            ]
            for j, layer in enumerate(v.layers)
        ],
        caption="Does the gain differ between image sets? Set × network interaction per layer.",
        label=latex_label("tab", "layergain", tag, "interaction"),
        notes=(
            f"Wald test of equal gains in all K = {len(v.sets)} sets: W is the quadratic form of the K − 1 = {df} "
            "differences of gain from the first set in the inverse of their covariance (variance components "
            "of each set's units and the shared random seeds); p from the small-sample (generalised pivotal) "
            "reference of W, not χ². p (max-T): minP "
            "step-down over the layers (primary); p (Holm): Holm over the layers (secondary). Note: why a "
            "layer's test is n/a."
        ),
    )
    tables = {"ranking": ranking, "gain_by_set": gains, "interaction": interaction}
    if v.pairs:
        diff = d["difference"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        dci = d["difference_ci"].transpose(S.SET_PAIR, S.LAYER, S.BOUND).values.astype(float)
        dp = d["difference_p"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        dpm = d["difference_p_maxt"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        dph = d["difference_p_holm"].transpose(S.SET_PAIR, S.LAYER).values.astype(float)
        tables["differences"] = TableSpec(
            columns=[
                Column("difference", "Difference", "text"),
                Column("layer", "Layer", "code"),
                Column("gain difference", "Diff.", "signed"),
                Column(f"{v.level} CI", tex_level + " CI", "ci"),
                Column("p", "$p$", "p"),
                Column("p (max-T)", "$p_\\mathrm{maxT}$", "p"),
                Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
            ],
            rows=[
                [f"{a} − {b}", v.layers[j], diff[i, j], tuple(dci[i, j]), dp[i, j], dpm[i, j], dph[i, j]]
                for i, (a, b) in enumerate(v.pair_names(p) for p in v.pairs)
                for j in range(len(v.layers))
            ],
            caption="Pairwise differences of gain between image sets, per layer.",
            label=latex_label("tab", "layergain", tag, "differences"),
            notes=(
                "Difference = gain of the first set − gain of the second; pointwise CI and two-sided test from "
                "the variance components (each set's units independent, the random seeds shared by both "
                f"sets). p (max-T): minP step-down, family-wise over all {v.n_pairs()} × "
                f"{len(v.layers)} layers (primary); p (Holm): Holm over the same tests (secondary)."
            ),
        )
    if v.transfer is not None:
        tables["transferability"] = _transfer_table(v, tag)
    return tables


def _transfer_table(v: ComparisonSummary, tag: str) -> TableSpec:
    """Estimator × set: each set's tau with the gain and its CI, the pooled tau, the sets above / below 0."""
    t = v.transfer
    set_level, level = t.set_level, fmt.level(t.pooled_attrs.get("confidence", 0.95))
    columns = [Column("estimator", "Estimator", "text")]
    for name in v.sets:
        columns += [
            Column(f"{name} τ gain", f"\\texttt{{{_tex(name)}}} $\\tau_\\mathrm{{gain}}$", "signed", 2),
            Column(f"{set_level} CI", set_level.replace(" %", "~\\%") + " CI", "ci", 2),
        ]
    columns += [
        Column("pooled τ gain", "Pooled $\\tau_\\mathrm{gain}$", "signed", 2),
        Column(f"pooled {level} CI", level.replace(" %", "~\\%") + " CI", "ci", 2),
        Column("sets with CI > 0", "CI $> 0$", "text"),
        Column("sets with CI < 0", "CI $< 0$", "text"),
    ]
    rows = []
    for e, name in enumerate(t.estimators):
        row = [t.labels[name]]
        for k in range(len(v.sets)):
            row += [t.tau["gain"][k, e], tuple(t.ci["gain"][k, e])]
        n = int(t.counted["gain"][e])
        row += [t.pooled["gain"][e], tuple(t.pooled_ci["gain"][e]), f"{int(t.above['gain'][e])}/{n}",
                f"{int(t.below['gain'][e])}/{n}"]
        rows.append(row)
    return TableSpec(
        columns=columns,
        rows=rows,
        caption="Do transferability estimators track the gain in every image set? Kendall's τ across layers, "
                "per set and pooled.",
        label=latex_label("tab", "layergain", tag, "transferability"),
        notes=(
            "τ gain: Kendall's τ-b across layers between the estimator's pretrained-minus-mean-random "
            f"difference and the gain, from each set's run (its tau table): {set_level} percentile CI over "
            f"resampled {t.set_attrs.get('resampled', 'random inits')}, conditional on the estimators' values "
            "on these images and on this pretrained network. Pooled: stratified τ-b, the concordant minus "
            "discordant layer pairs summed within sets (a layer is never compared with another set's layer) "
            f"over the root of the summed untied pairs; {level} percentile CI from "
            f"{fmt.count(t.pooled_attrs.get('n_boot'))} resamples (with replacement) of the random inits "
            "(one draw for every set: the same networks) and of each set's images, the sets held fixed, "
            "conditional as each set's. Sets with CI above or below 0: sets whose own CI lies there, of the "
            "sets with a τ and its CI. n/a: see the findings."
        ),
    )


def _tex(text: str) -> str:
    from layergain.report.tables import latex_escape

    return latex_escape(text)


# --------------------------------------------------------------------------- document






def _data(v: ComparisonSummary) -> list[str]:
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
        (
            "Knowledge gain by layer for every image set with its pointwise {level} CI band (variance "
            "components of the set's images or groups and the shared random seeds); stars: max-T-adjusted "
            "p ≤ {alpha:g}, family-wise over the layers of each set; shaded: the deep layers. Lower panel: "
            "each set's random baseline (mean over seeds)."
        ),
    ),
    (
        "gain_heatmap",
        "Heatmap: gain per layer and image set",
        (
            "Gain per layer (rows) and image set (columns); bold with an asterisk: max-T-adjusted "
            "p ≤ {alpha:g}, family-wise over the layers of each set. The numbers carry the values; the "
            "colours (red positive, blue negative) only help the eye."
        ),
    ),
    (
        "pairwise_differences",
        "Line chart: differences of gain between image sets by layer",
        (
            "Difference of gain between each pair of sets by layer, with its pointwise {level} CI band; "
            "stars: max-T-adjusted p ≤ {alpha:g}, family-wise over all pairs and layers."
        ),
    ),
    (
        "transferability_tau_by_set",
        "Dot plot: Kendall's tau of each transferability estimator, per image set and pooled",
        (
            "Kendall's τ across layers of each transferability estimator with the pretrained probe accuracy "
            "(left) and of its pretrained-minus-random difference with the gain (right): one point per image "
            "set with its run's percentile CI, and the pooled stratified τ (black diamond) with its "
            "percentile CI resampling the shared random inits and each set's images. Conditional on the "
            "estimators' values; layers and sets are not resampled."
        ),
    ),
]


def build_comparison_document(summary: ComparisonSummary | xr.Dataset) -> Document:
    """The comparison report as a :class:`Document` (figures referenced under ``figures/``)."""
    v = summarise_comparison(summary)
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
        if (stem != "pairwise_differences" or v.pairs)
        and (stem != "transferability_tau_by_set" or v.transfer is not None)
    ]
    return add_sections(
        doc,
        findings=comparison_findings(v),
        figures=figures,
        tables=comparison_tables(v),
        methods=comparison_methods(v),
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
    v = summarise_comparison(ds)
    figures = write_comparison_figures(v, out / "figures")
    if not v.pairs:
        figures.pop("pairwise_differences", None)
    files = [p for paths in figures.values() for p in paths]
    files += write_latex(comparison_tables(v), out / "tables")
    return files + write_document(build_comparison_document(v), out)
