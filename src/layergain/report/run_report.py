"""The report of one run: Markdown, HTML, figures (PNG, PDF) and LaTeX tables, from results alone.

``write_report(ds, out)`` writes::

    out/report.md            Markdown (figures linked from figures/)
    out/report.html          one self-contained file (figures embedded)
    out/figures/*.png|pdf    seven figures (five without similarity inference and estimators)
    out/tables/*.tex         the tables as LaTeX (booktabs, siunitx) and tables.tex to preview them

Nothing in report.md depends on when or where the run was made (creation time, timings and the
command line stay in results.nc), so identical runs give identical reports, and
``layergain report results.nc`` rebuilds the same report from the file alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from layergain.report import fmt
from layergain.report.document import Document, Paragraph
from layergain.report.figures import available, write_figures
from layergain.report.findings import data_text, run_findings
from layergain.report.fmt import layer_runs
from layergain.report.methods import run_methods
from layergain.report.sections import add_sections, settings_items, write_document
from layergain.report.summary import RunSummary, summarise_run
from layergain.report.tables import Column, TableSpec, latex_label, write_latex
from layergain.results import schema as S

__all__ = ["build_document", "run_tables", "write_report"]

# attrs that differ between identical runs, or that the report shows elsewhere
_VOLATILE = ("config", "created", "timings_s", "command")
_SHOWN_ELSEWHERE = ("data_card_summary", "title")


def _measure(s: RunSummary, name: str, what: str = "mean") -> list[float]:
    m = s.measures.get(name)
    return list(getattr(m, what)) if m is not None else [np.nan] * len(s.layers)


def run_tables(s: RunSummary) -> dict[str, TableSpec]:
    """The run's tables: main per-layer table, tests and effect sizes, further metrics."""
    ds = s.ds
    name = s.attrs.get("dataset", "run")
    level = fmt.level(s.confidence)
    tex_level = level.replace(" %", "~\\%")
    ci_text = (
        f"pointwise {level} CI (generalised pivotal quantity; variance components of {s.n_units} "
        f"{s.unit}s and {s.n_seeds} random seeds)"
    )
    L = range(len(s.layers))
    cka, dcka, svcca = _measure(s, "cka_linear"), _measure(s, "cka_debiased"), _measure(s, "svcca")
    main = TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column("params", "Params", "int"),
            Column("acc. pretrained", "Acc.\\ pre.", "num"),
            Column("acc. random", "Acc.\\ rand.", "num"),
            Column("sd", "SD", "sd"),
            Column("gain", "Gain", "signed"),
            Column(f"gain {level} CI (pointwise)", tex_level + " CI (pointwise)", "ci"),
            Column("rel. gain", "Rel.\\ gain", "signed"),
            Column("p", "$p$", "p"),
            Column("p (max-T)", "$p_\\mathrm{maxT}$", "p"),
            Column("p (Holm)", "$p_\\mathrm{Holm}$", "p"),
            Column("Cohen's h", "$h$", "signed", 2),
            Column("CKA", "CKA", "num"),
            Column("debiased CKA", "dCKA", "num"),
            Column("SVCCA", "SVCCA", "num"),
        ],
        rows=[
            [
                s.layers[j],
                s.params[j],
                s.acc_pre[j],
                s.acc_rand[j],
                s.acc_rand_sd[j],
                s.gain[j],
                tuple(s.gain_ci[j]),
                s.rel_gain[j],
                s.p[j],
                s.p_maxt[j],
                s.p_holm[j],
                s.cohen_h[j],
                cka[j],
                dcka[j],
                svcca[j],
            ]
            for j in L
        ],
        caption=f"Per-layer results, {name} × {s.attrs.get('backbone', '')}.",
        label=latex_label("tab", "layergain", name, "per-layer"),
        notes=(
            "Params: parameters up to and including the layer. Acc.: out-of-fold linear-probe accuracy; "
            "random: "
            f"mean ± sd over {s.n_random} random-weight seeds. Gain = pretrained − mean random accuracy, "
            "with its "
            f"{ci_text}; rel. gain = gain / (1 − mean random accuracy). p: two-sided test of the gain "
            "over images and random initialisations (unadjusted); max-T: minP step-down over the "
            f"{len(s.layers)} layers (family-wise, primary); Holm: secondary. h: Cohen's h of the two "
            "accuracies. CKA, "
            "debiased CKA "
            "(dCKA), SVCCA: pretrained vs random at the same layer, mean over seeds. n/a: not computable "
            "(see "
            "the findings)."
        ),
    )
    inference = _inference_table(s, name)
    mcnemar = _mcnemar(s)
    tests = TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column(f"rel. gain {level} CI (pointwise)", "Rel.\\ gain " + tex_level + " CI", "ci"),
            Column("p (BH)", "$p_\\mathrm{BH}$", "p"),
            Column("t-test p", "$p_t$", "p"),
            Column("t-test p (Holm)", "$p_{t,\\mathrm{Holm}}$", "p"),
            Column("McNemar p, median", "McNemar $\\tilde p$", "p"),
            Column(f"McNemar p ≤ {s.alpha:g}", f"McNemar $p \\leq {s.alpha:g}$", "text"),
            Column("Cohen's d_z", "$d_z$", "signed", 2),
        ],
        rows=[
            [
                s.layers[j],
                tuple(s.rel_gain_ci[j]),
                s.p_bh[j],
                s.ttest_p[j],
                s.ttest_p_holm[j],
                mcnemar[0][j],
                mcnemar[1][j],
                s.cohen_dz[j],
            ]
            for j in L
        ],
        caption=f"Secondary tests and effect sizes per layer, {name}.",
        label=latex_label("tab", "layergain", name, "tests"),
        notes=(
            "BH: Benjamini–Hochberg on the primary p-values (false discovery rate; secondary). t-test: "
            "Nadeau–Bengio corrected resampled t-test across CV folds, conditional on the drawn seeds, "
            "and its Holm adjustment. McNemar: exact test of the pretrained network against each random "
            "seed (and CV repeat), unadjusted and conditional on that seed: the median p and how many "
            "comparisons reach the level. d_z: mean per-image difference over its sd."
        ),
    )
    metrics = TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column("BA pre.", "BA pre.", "num"),
            Column("BA rand.", "BA rand.", "num"),
            Column("F1 pre.", "F1 pre.", "num"),
            Column("F1 rand.", "F1 rand.", "num"),
            Column("CKA rr", "CKA rr", "num"),
            Column("dCKA rr", "dCKA rr", "num"),
            Column("SVCCA rr", "SVCCA rr", "num"),
            Column("PWCCA", "PWCCA", "num"),
            Column("RBF CKA", "RBF CKA", "num"),
        ],
        rows=[
            [
                s.layers[j],
                *_metric(ds, "balanced_accuracy", j),
                *_metric(ds, "macro_f1", j),
                _measure(s, "cka_linear", "rr_mean")[j],
                _measure(s, "cka_debiased", "rr_mean")[j],
                _measure(s, "svcca", "rr_mean")[j],
                _measure(s, "pwcca")[j],
                _measure(s, "cka_rbf")[j],
            ]
            for j in L
        ],
        caption=f"Further metrics per layer, {name}.",
        label=latex_label("tab", "layergain", name, "metrics"),
        notes=(
            "BA: balanced accuracy (mean recall over classes); F1: macro-F1; pre.: pretrained; rand.: mean "
            "over "
            "random seeds. dCKA: debiased CKA. rr: the measure between two random networks, mean over pairs "
            "(the reference for pretrained vs "
            "random). PWCCA, RBF CKA: pretrained vs random, mean over seeds."
        ),
    )
    out = {
        "per_layer": main,
        "per_layer_inference": inference,
        "per_layer_tests": tests,
        "per_layer_metrics": metrics,
    }
    if s.differences:
        out["per_layer_similarity"] = _similarity_table(s, name)
    if s.transfer is not None:
        out["transferability"] = _transferability_table(s, name)
    if "robustness_holds" in ds:
        out["robustness"] = _robustness_table(ds, name)
    return out


def _robustness_table(ds: xr.Dataset, name: str) -> TableSpec:
    """The robustness table of the configurations this run was one of (see ``../configurations/``)."""
    holds = ds["robustness_holds"].transpose("conclusion", "sibling").values
    siblings = [str(v) for v in ds["sibling"].values]
    this = str(ds["robustness_holds"].attrs.get("configuration", ""))
    word = {1: "yes", 0: "no", -1: "undetermined"}
    return TableSpec(
        columns=[Column("conclusion", "conclusion", "text"),
                 *[Column(n + (" (this run)" if n == this else ""), n, "text") for n in siblings],
                 Column("flips at", "flips at", "text")],
        rows=[[str(text), *[word[int(h)] for h in holds[k]], str(ds["robustness_flips_at"].values[k]) or "—"]
              for k, text in enumerate(ds["conclusion_text"].values)],
        caption="Robustness across the configurations run together with this one (their paired comparison is in "
                "`../configurations/`): whether each conclusion holds under each, and the layers where the "
                "per-layer verdict (max-T-significant positive gain) is not the same in every configuration.",
        label=latex_label("run_robustness", name),
    )


def _similarity_table(s: RunSummary, name: str) -> TableSpec:
    """Per layer and measure: pretrained-vs-random minus random-vs-random, its CI and one-sided p."""
    diffs = list(s.differences.values())
    level = fmt.level(diffs[0].attrs.get("confidence", s.confidence))
    tex_level = level.replace(" %", "~\\%")
    short = {"cka_debiased": "dCKA", "cka_linear": "CKA", "mutual_knn": "mkNN", "angular_shape": "ang.",
             "rsa": "RSA"}
    columns = [Column("layer", "Layer", "code")]
    for d in diffs:
        tag = short.get(d.name, d.name)
        columns += [Column(f"{tag} D", f"{tag} $D$", "signed"), Column(f"{tag} {level} CI", f"{tag} {tex_level} CI", "ci"),
                    Column(f"{tag} p", f"{tag} $p$", "p")]
    rows = [[s.layers[j], *[v for d in diffs for v in (d.difference[j], tuple(d.ci[j]), d.p[j])]]
            for j in range(len(s.layers))]
    labels = "; ".join(f"{short.get(d.name, d.name)}: {d.label}" for d in diffs)
    return TableSpec(
        columns=columns,
        rows=rows,
        caption=f"Similarity to random weights with inference per layer, {name}.",
        label=latex_label("tab", "layergain", name, "similarity"),
        notes=(
            f"D: mean over seeds of the measure between the pretrained and a random network minus its mean "
            f"between two random networks ({labels}). A similarity lower, or a distance (ang.) larger, for "
            f"pretrained vs random than for random vs random gives D < 0 (distance: D > 0). CI: two-sided "
            f"{level}, over images (half-samples without replacement) and random seeds. p: one-sided "
            "(pretrained-vs-random less similar than random-vs-random), per layer, unadjusted. n/a: not "
            "computable (see the findings)."
        ),
    )


def _transferability_table(s: RunSummary, name: str) -> TableSpec:
    """Per estimator: Kendall's tau across layers with the probe accuracy and with the gain, with CIs."""
    t = s.transfer
    level = fmt.level(t.tau_attrs.get("confidence", s.confidence))
    tex_level = level.replace(" %", "~\\%")
    conditional = "estimator values, pretrained network"
    return TableSpec(
        columns=[
            Column("estimator", "Estimator", "text"),
            Column("τ accuracy", "$\\tau_\\mathrm{acc}$", "signed", 2),
            Column(f"τ accuracy {level} CI", tex_level + " CI", "ci", 2),
            Column("τ gain", "$\\tau_\\mathrm{gain}$", "signed", 2),
            Column(f"τ gain {level} CI", tex_level + " CI", "ci", 2),
            Column("layers", "Layers", "int"),
            Column("CI conditional on", "CI conditional on", "text"),
        ],
        rows=[
            [t.labels[e], t.tau_accuracy[k], tuple(t.tau_accuracy_ci[k]), t.tau_gain[k], tuple(t.tau_gain_ci[k]),
             t.n_layers[k], conditional]
            for k, e in enumerate(t.estimators)
        ],
        caption=f"Do transferability estimators track the probe? Kendall's τ across layers, {name}.",
        label=latex_label("tab", "layergain", name, "transferability"),
        notes=(
            "τ accuracy: Kendall's τ-b across layers between the estimator on the pretrained network and its "
            "probe accuracy; τ gain: between the estimator's pretrained-minus-mean-random difference and the "
            f"gain. CI: {level} percentile bootstrap over {t.tau_attrs.get('resampled', 'random inits')} "
            f"({fmt.count(t.tau_attrs.get('n_boot'))} draws); layers are not resampled and the estimators are "
            "not recomputed per draw, so the interval is conditional on their values on these images and on "
            "this pretrained network. Layers: layers with finite values. n/a: see the findings."
        ),
    )


def _inference_table(s: RunSummary, name: str) -> TableSpec:
    """Gain with its pointwise CI and simultaneous band, its SE split into images/groups and seeds, df."""
    level = fmt.level(s.confidence)
    tex_level = level.replace(" %", "~\\%")
    unit = f"{s.unit}s"
    L = len(s.layers)
    with np.errstate(invalid="ignore"):
        se_units, se_seeds = np.sqrt(s.var_units), np.sqrt(s.var_seeds)
    return TableSpec(
        columns=[
            Column("layer", "Layer", "code"),
            Column("gain", "Gain", "signed"),
            Column(f"{level} CI (pointwise)", tex_level + " CI (pointwise)", "ci"),
            Column(f"{level} band (simultaneous)", tex_level + " band (simult.)", "ci"),
            Column("SE", "SE", "num"),
            Column(f"SE from {unit}", f"SE {unit}", "num"),
            Column("SE from seeds", "SE seeds", "num"),
            Column("df", "df", "num", 1),
            Column("p", "$p$", "p"),
            Column("p (max-T)", "$p_\\mathrm{maxT}$", "p"),
        ],
        rows=[
            [
                s.layers[j],
                s.gain[j],
                tuple(s.gain_ci[j]),
                tuple(s.gain_band[j]),
                s.gain_se[j],
                se_units[j],
                se_seeds[j],
                s.gain_df[j],
                s.p[j],
                s.p_maxt[j],
            ]
            for j in range(L)
        ],
        caption=(
            f"Inference on the gain per layer, {name}: intervals, variance components, degrees of freedom."
        ),
        label=latex_label("tab", "layergain", name, "inference"),
        notes=(
            f"Population: the images of the set, as {s.n_units} {unit}, and the random initialisations of "
            f"the architecture, as {s.n_seeds} seeds. SE² = (SE from {unit})² + (SE from seeds)²; df: "
            f"Welch–Satterthwaite degrees of freedom of the SE ({s.units_df or 'n/a'}; seeds: "
            f"{s.n_seeds - 1}). CI: pointwise, per layer; band: simultaneous over the {L} layers (max-T). "
            f"p: two-sided, unadjusted; max-T: minP step-down over the layers (Westfall & Young 1993). "
            f"{fmt.count(s.n_draws)} Monte Carlo draws. n/a: no calibrated statement at that layer (the "
            "reason is in the findings)."
        ),
    )


def _metric(ds: xr.Dataset, name: str, j: int) -> tuple[float, float]:
    if name not in ds:
        return np.nan, np.nan
    values = ds[name].transpose(S.INIT, S.LAYER).values[:, j].astype(float)
    random = ds["kind"].values == "random"
    return float(values[ds[S.INIT].values == S.PRETRAINED][0]), float(values[random].mean())


def _mcnemar(s: RunSummary) -> tuple[list[float], list[str]]:
    ds = s.ds
    if "mcnemar_p" not in ds:
        return [np.nan] * len(s.layers), [fmt.NA] * len(s.layers)
    random = ds[S.INIT].values[ds["kind"].values == "random"]
    p = ds["mcnemar_p"].sel({S.INIT: list(random)}).transpose(S.LAYER, ...).values.reshape(len(s.layers), -1)
    medians, counts = [], []
    for row in p.astype(float):
        finite = row[np.isfinite(row)]
        medians.append(float(np.median(finite)) if finite.size else np.nan)
        counts.append(f"{int(np.sum(finite <= s.alpha))}/{finite.size}" if finite.size else fmt.NA)
    return medians, counts


def _figures(s: RunSummary) -> list[tuple[str, str, str]]:
    """(file stem, alt text, caption) of every figure the results have the numbers for."""
    shown = available(s)
    return [f for f in _all_figures(s) if f[0] in shown]


def _all_figures(s: RunSummary) -> list[tuple[str, str, str]]:
    """(file stem, alt text, caption) of every figure, captions from the numbers."""
    level = fmt.level(s.confidence)
    sig = s.significant
    sig_text = (
        f"{sig.sum()} of {len(s.layers)} layers: {layer_runs(s.layers, sig)}"
        if sig.any()
        else f"none of the {len(s.layers)} layers"
    )
    near = s.random_near_chance
    if s.best >= 0 and s.sweet >= 0:
        marks = (
            f" with the best layer (`{s.layers[s.best]}`) and the sweet spot (`{s.layers[s.sweet]}`), the "
            f"shallowest layer shown within {s.margin:g} of the best at {level} simultaneous confidence"
        )
    elif s.best >= 0:
        marks = (
            f" with the best layer (`{s.layers[s.best]}`); the sweet spot is undetermined (see the findings)"
        )
    else:
        marks = ""
    bands = np.concatenate([s.gain_ci.ravel(), s.gain_band.ravel()])
    beyond = np.any(np.abs(bands[np.isfinite(bands)]) > 1.05)
    cut = "; y axis cut at ±1.05, the range of a gain" if beyond else ""
    seeds = f"{s.n_random} seed{'s' if s.n_random != 1 else ''}"
    return [
        (
            "accuracy_by_layer",
            "Line chart: probe accuracy by layer, pretrained and random",
            (
                "Out-of-fold linear-probe accuracy by layer: the ImageNet-pretrained network with its "
                f"pointwise {level} CI, the mean of {s.n_random} random-weight networks with the range over "
                f"the {seeds} (a seed range, not a CI), and chance (the majority-class rate, "
                f"{fmt.num(s.majority_rate)})."
            ),
        ),
        (
            "gain_by_layer",
            "Line chart: knowledge gain by layer with its pointwise confidence band and simultaneous band",
            f"Knowledge gain by layer (pretrained − mean random accuracy) with its pointwise {level} CI "
            f"(darker) and the simultaneous {level} band over the {len(s.layers)} layers (lighter, dashed "
            f"edges{cut}), both over the {s.n_units} {s.unit}s and the {s.n_seeds} random seeds. Stars: "
            f"max-T-adjusted p ≤ {s.alpha:g}, family-wise over the layers ({sig_text}). "
            f"Lower panel: the random baseline beside it, its mean and range over the {seeds} (a seed range, "
            "not a CI)"
            + (
                f"; shaded: layers where its CI reaches chance ({layer_runs(s.layers, near)})."
                if near.any()
                else "."
            ),
        ),
        (
            "similarity_by_layer",
            "Three line charts: linear CKA, debiased CKA and SVCCA by layer",
            "Similarity of each pretrained layer to the same layer of the random networks (solid; band: "
            "range over "
            "seeds) and of random networks to each other (dashed, hatched band: range over pairs): linear "
            "CKA, debiased "
            "CKA and SVCCA. n/a: not computable at that layer (see the findings).",
        ),
        (
            "cka_heatmap",
            "Two heatmaps: cross-layer CKA, pretrained layers against random layers",
            "Cross-layer CKA between every pretrained layer (rows) and every layer of the random networks "
            "(columns), "
            "mean over seeds; left linear, right debiased. Circles mark each row's most similar random "
            "layer.",
        ),
        (
            "accuracy_vs_params",
            "Line chart: probe accuracy against parameters up to the layer",
            f"Probe accuracy against the number of parameters up to the layer (log scale){marks}.",
        ),
        (
            "similarity_difference_by_layer",
            "Line charts: pretrained-vs-random minus random-vs-random similarity by layer, per measure",
            "Pretrained-vs-random minus random-vs-random similarity (D) by layer for "
            + ", ".join(d.label for d in s.differences.values())
            + f", with its two-sided {level} CI over images and random seeds; 0: as similar to random weights "
            "as two random networks are to each other (below 0 for a similarity, above 0 for the distance: "
            f"less similar). Stars: one-sided p ≤ {s.alpha:g} at that layer (unadjusted).",
        ),
        (
            "transferability_tau",
            "Dot plot: Kendall's tau of each transferability estimator with accuracy and with gain",
            "Kendall's τ across layers of each transferability estimator with the pretrained probe accuracy "
            "(left) and of its pretrained-minus-random difference with the gain (right), with "
            + (f"{fmt.level(s.transfer.tau_attrs.get('confidence', s.confidence))} percentile CIs over "
               f"{s.transfer.tau_attrs.get('resampled', 'random inits')}" if s.transfer is not None else "CIs")
            + ", conditional on the estimators' values on these images.",
        ),
    ]


def build_document(ds: xr.Dataset, summary: RunSummary | None = None) -> Document:
    """The run report as a :class:`Document` (figures referenced under ``figures/``)."""
    s = summary or summarise_run(ds)
    a = s.attrs
    doc = Document(f"layergain report: {a.get('dataset', '')} × {a.get('backbone', '')}")
    doc.add(
        Paragraph(
            f"How much does each layer of the ImageNet-pretrained `{a.get('backbone')}` give on "
            f"`{a.get('dataset')}` beyond the same architecture with random weights? {a.get('n_images')} "
            "images in "
            f"{len(s.class_names)} classes, {len(s.layers)} probe layers, {s.n_random} random-weight "
            "networks, "
            f"{a.get('folds')}-fold cross-validated linear probes."
        )
    )
    return add_sections(
        doc,
        findings=run_findings(s),
        figures=_figures(s),
        tables=run_tables(s),
        methods=run_methods(s),
        data=[Paragraph(p) for p in data_text(s)],
        settings_note="Every attribute of the results file except the command line, timings and creation "
        "time "
        "(which differ between identical runs).",
        settings=settings_items(a, _VOLATILE + _SHOWN_ELSEWHERE),
    )


def write_report(ds: xr.Dataset, out: str | Path) -> list[Path]:
    """Write figures, LaTeX tables, ``report.md`` and ``report.html`` of a run into ``out``.

    Parameters
    ----------
    ds : xarray.Dataset
        The run's results as :func:`layergain.results.io.load_results` reads them from results.nc
        (:func:`layergain.pipeline.run` reports from the file it wrote).
    out : str or Path
        The report folder (created if needed).

    Returns
    -------
    list of Path
        Every file written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = summarise_run(ds)
    files = [p for paths in write_figures(s, out / "figures").values() for p in paths]
    files += write_latex(run_tables(s), out / "tables")
    return files + write_document(build_document(ds, s), out)
