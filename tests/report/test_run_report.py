"""The per-set report of a real run: files, numbers, generated findings, reproducibility."""

from __future__ import annotations

import json
import re

import numpy as np
from PIL import Image

from layergain.cli import main
from layergain.report import fmt
from layergain.report.document import to_markdown
from layergain.report.findings import run_findings
from layergain.report.methods import run_methods as findings_methods
from layergain.report.run_report import build_document, run_tables
from layergain.report.summary import summarise_run
from layergain.report.tables import latex_escape, to_latex

FIGURES = ("accuracy_by_layer", "gain_by_layer", "similarity_by_layer", "cka_heatmap", "accuracy_vs_params",
           "similarity_difference_by_layer", "transferability_tau")
TABLES = ("per_layer", "per_layer_inference", "per_layer_tests", "per_layer_metrics", "per_layer_similarity",
          "transferability")


def md_table(markdown: str, number: int) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the Markdown table captioned "Table <number>."."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"**Table {number}."))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows[0], rows[2:]


def test_run_writes_every_report_file(kather_run):
    out = kather_run.out
    for stem in FIGURES:
        png, pdf = out / "figures" / f"{stem}.png", out / "figures" / f"{stem}.pdf"
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 1000, stem  # print resolution (200 dpi)
        assert pdf.read_bytes().startswith(b"%PDF"), stem
    for stem in (*TABLES, "tables"):
        assert (out / "tables" / f"{stem}.tex").is_file(), stem
    md = (out / "report.md").read_text()
    for stem in FIGURES:
        assert f"](figures/{stem}.png)" in md and f"figures/{stem}.pdf" in md
    for section in ("## Findings", "## Figures", "## Tables", "## Methods", "## Data", "## Settings"):
        assert section in md


def test_files_carry_no_dates(kather_run):
    for pdf in (kather_run.out / "figures").glob("*.pdf"):
        data = pdf.read_bytes()
        assert b"/CreationDate" not in data and b"/ModDate" not in data and b"/Producer" not in data, pdf.name
    for png in (kather_run.out / "figures").glob("*.png"):
        with Image.open(png) as image:
            assert not {"Software", "Creation Time", "date:create"} & set(image.info), png.name


def test_report_md_leaves_out_what_differs_between_identical_runs(kather_run, kather_results):
    md = (kather_run.out / "report.md").read_text()
    a = kather_results.attrs
    assert a["created"] not in md
    assert str(kather_run.out) not in md  # the output folder, part of the command and config
    assert a["timings_s"] not in md and a["command"] not in md
    assert "`timings_s`:" not in md and "`created`:" not in md  # not among the settings


def test_rebuilt_from_results_file_alone_is_identical(kather_run, tmp_path, capsys):
    """`layergain report results.nc --out DIR` gives the same Markdown, tables and figures as the run."""
    code = main(["report", str(kather_run.out / "results.nc"), "--out", str(tmp_path)])
    out = capsys.readouterr().out.strip()
    assert code == 0 and out == f"run report: {tmp_path / 'report.html'}  (23 files)"
    assert (tmp_path / "report.md").read_text() == (kather_run.out / "report.md").read_text()
    for stem in (*TABLES, "tables"):
        name = f"tables/{stem}.tex"
        assert (tmp_path / name).read_text() == (kather_run.out / name).read_text(), name
    for stem in FIGURES:
        for ext in ("png", "pdf"):
            name = f"figures/{stem}.{ext}"
            assert (tmp_path / name).read_bytes() == (kather_run.out / name).read_bytes(), name
    assert (tmp_path / "report.html").read_text() == (kather_run.out / "report.html").read_text()


def test_per_layer_table_shows_the_results(kather_run, kather_results):
    ds = kather_results
    header, rows = md_table((kather_run.out / "report.md").read_text(), 1)
    assert header[:4] == ["layer", "params", "acc. pretrained", "acc. random ± sd"]
    assert [r[0] for r in rows] == [f"`{n}`" for n in ds["layer"].values]
    col = {name: header.index(name) for name in header}
    random = ds["accuracy"].sel(init=ds["kind"] == "random")
    for j, row in enumerate(rows):
        assert row[col["params"]] == f"{int(ds['params_to_layer'][j]):,}"
        assert row[col["acc. pretrained"]] == f"{float(ds['accuracy'].sel(init='pretrained')[j]):.3f}"
        mean, sd = random.mean("init")[j], random.std("init", ddof=1)[j]
        assert row[col["acc. random ± sd"]] == f"{float(mean):.3f} ± {float(sd):.3f}"
        assert row[col["gain"]] == f"{float(ds['gain'][j]):+.3f}"
        lo, hi = ds["gain_ci"].values[j]
        assert row[col["gain 95 % CI (pointwise)"]] == fmt.ci(lo, hi)  # "[n/a, n/a]" without a calibrated one
        assert row[col["p"]] == fmt.pval(ds["gain_p"][j])
        assert row[col["p (max-T)"]] == fmt.pval(ds["gain_p_maxt"][j])
        assert row[col["p (Holm)"]] == fmt.pval(ds["gain_p_holm"][j])
        svcca = ds["svcca"].mean("init").values[j]
        assert row[col["SVCCA"]] == ("n/a" if np.isnan(svcca) else f"{svcca:.3f}")


def test_findings_state_estimate_ci_and_corrected_p(kather_run):
    md = (kather_run.out / "report.md").read_text()
    findings = md.split("## Findings")[1].split("## Figures")[0]
    first = findings.strip().splitlines()[0]
    assert re.search(r"[+-]\d\.\d{3} \[pointwise 95 % CI [+-]\d\.\d{3}, [+-]\d\.\d{3}\]", first)
    assert re.search(r"max-T-adjusted p (=|<) ?\d", first) and "family-wise over the 18 layers" in first
    assert "OLS slope of gain on relative depth" in findings and "Spearman" in findings
    assert "Sweet spot" in findings


def test_methods_cite_every_setting(kather_run, kather_results):
    a = kather_results.attrs
    ci = kather_results["gain_ci"].attrs
    methods = (kather_run.out / "report.md").read_text().split("## Methods")[1].split("## Data")[0]
    assert (ci["resampling_unit"], int(ci["n_units"]), int(ci["n_seeds"])) == ("group", int(a["n_groups"]), 2)
    for needle in (
        a["backbone"],
        a["weights_sha256"],
        f"{a['image_size']} × {a['image_size']} px",
        "global average pooling",
        f"{a['folds']}-fold",
        "grouped by `group`",
        "seeds 0, 1",
        # the populations, the unit of resampling and its count
        f"its {int(ci['n_units'])} groups (`group`), the units of resampling",
        f"Bell & McCaffrey 2002; {ci['units_df']}",
        f"random initialisations of `{a['backbone']}`, represented by 2 seeds",
        f"Target of the gain: the {ci['target']}.",
        # the interval
        "generalised pivotal quantity",
        "random seeds (1 df)",
        f"{int(ci['n_draws']):,} Monte Carlo draws",
        "95 % CIs are pointwise",
        # the tests and corrections
        "minP step-down",
        "Westfall & Young 1993",
        "Holm and Benjamini–Hochberg adjustments of the same p-values are secondary",
        (
            "McNemar tests of the pretrained network against each random seed, unadjusted and conditional "
            "on that seed"
        ),
        "Nadeau and Bengio",
        "Cohen's h",
        "Spearman's ρ of gain and depth is descriptive only",
        f"above −{float(kather_results['sweet_spot'].attrs['margin']):g}",
        "Significance means a max-T-adjusted p ≤ 0.05",
        json.loads(a["versions"])["torch"],
    ):
        assert str(needle) in methods, needle
    # the gain's statistics no longer bootstrap (the transferability tau's interval does, and says so)
    gain_methods = methods.split("**Transferability.**")[0]
    for old in ("bootstrap", "sign-flip", "B = "):
        assert old not in gain_methods, old


def test_data_card_summary_is_shown(kather_run, kather_results):
    data = (kather_run.out / "report.md").read_text().split("## Data")[1].split("## Settings")[0]
    assert kather_results.attrs["data_card_summary"] in data
    assert "This run used 48 images (at most 6 per class" in data


# ----------------------------------------------------------------------------- findings on edited copies


def _findings(ds) -> str:
    return "\n".join(run_findings(summarise_run(ds)))


def test_significant_layers_are_named_with_their_numbers(kather_results):
    ds = kather_results.copy(deep=True)
    j = int(np.argmax(ds["gain"].values))
    ds["gain_p_maxt"][:] = 1.0
    ds["gain_p_maxt"][j] = 0.004
    ds["gain_p_holm"][:] = 1.0  # Holm is secondary: it does not decide
    text = _findings(ds)
    name, n = str(ds["layer"].values[j]), ds.sizes["layer"]
    assert f"significant gain at 1 of {n} layers** (`{name}`" in text
    assert f"max-T-adjusted, family-wise over the {n} layers, p ≤ 0.05" in text
    lo, hi = ds["gain_ci"].values[j]
    shown = f"{float(ds['gain'][j]):+.3f} [pointwise 95 % CI {lo:+.3f}, {hi:+.3f}], max-T-adjusted p = 0.004"
    assert shown in text
    assert "Holm (family-wise, ignores the dependence between layers) flags 0 of" in text
    ds["gain_p_maxt"][:] = 1.0
    ds["gain_p_holm"][j] = 0.004  # a Holm-only "significance" is not the primary finding
    text = _findings(ds)
    assert "**No layer has a significant gain** after max-T adjustment" in text
    assert f"Holm (family-wise, ignores the dependence between layers) flags 1 of {n} layers (`{name}`)" in (
        text
    )


def test_gain_figure_stars_the_significant_layers(kather_results, tmp_path):
    from layergain.report.figures import gain_by_layer

    ds = kather_results.copy(deep=True)
    ds["gain_p_maxt"][:] = 1.0
    none = gain_by_layer(summarise_run(ds), tmp_path / "none")[0].read_bytes()
    ds["gain_p_maxt"][-3:] = 0.01
    ds["gain"][-3:] = np.abs(ds["gain"][-3:]) + 0.1
    marked = gain_by_layer(summarise_run(ds), tmp_path / "marked")[0].read_bytes()
    assert none != marked
    assert summarise_run(ds).significant.sum() == 3
    ds["gain_p_holm"][:] = 0.0  # Holm does not star
    assert summarise_run(ds).significant.sum() == 3


def test_gain_figure_shows_the_pointwise_ci_and_the_simultaneous_band(kather_results, monkeypatch, tmp_path):
    from layergain.report import figures

    legends = []
    monkeypatch.setattr(figures, "save", lambda fig, base: legends.extend(
        t.get_text() for legend in fig.legends for t in legend.get_texts()) or [])
    figures.gain_by_layer(summarise_run(kather_results), tmp_path / "gain")
    assert "95 % pointwise CI" in legends
    assert f"95 % simultaneous band (over the {kather_results.sizes['layer']} layers, max-T)" in legends
    assert "random, range over 2 seeds" in legends
    assert any(t.startswith("max-T-adjusted p ≤ 0.05") for t in legends)


def test_nan_svcca_is_reported_with_its_reason(kather_results):
    ds = kather_results.copy(deep=True)
    layer = str(ds["layer"].values[2])
    ds["svcca"] = ds["svcca"].fillna(
        0.5
    )  # the real run's own NaNs (deep layers, too few images) out of the way
    ds["svcca"].loc[{"layer": layer}] = np.nan
    reason = "SVCCA/PWCCA needs more images than kept directions (test reason)"
    ds["svcca"].attrs["nan_reason"] = json.dumps(
        {layer: {init: reason for init in ds["svcca"]["init"].values}}
    )
    text = _findings(ds)
    assert f"**SVCCA is n/a** for every random seed at 1 layer (`{layer}`)" in text and reason in text
    s = summarise_run(ds)
    _, rows = md_table(to_markdown(build_document(ds, s)), 1)
    assert rows[2][-1] == "n/a" and rows[3][-1] != "n/a"
    tex = to_latex(run_tables(s)["per_layer"])
    assert re.search(rf"\\texttt{{{re.escape(latex_escape(layer))}}}.* & {{--}} \\\\", tex)


def test_random_baseline_at_chance_is_said_where_it_happens(kather_results):
    ds = kather_results.copy(deep=True)
    chance = 1 / ds.sizes["class"]  # the sample is balanced
    ds["accuracy_random_mean_ci"].loc[{"bound": "lower"}] = chance + 0.01
    assert "told apart from chance" not in _findings(ds)
    deep = ds["layer"].values[-2:]
    ds["accuracy_random_mean_ci"].loc[{"layer": deep, "bound": "lower"}] = 0.05
    text = _findings(ds)
    assert f"**The random baseline cannot be told apart from chance** at `{deep[0]}`–`{deep[1]}`" in text
    doc = to_markdown(build_document(ds))
    assert f"shaded: layers where its CI reaches chance (`{deep[0]}`–`{deep[1]}`)" in doc
    # a seed at chance is a collapse; a wide interval with every seed above chance is not
    random = np.flatnonzero(ds["kind"].values == "random")
    assert ds["accuracy"].dims == ("init", "layer")
    accuracy = ds["accuracy"].values  # edits go into ds
    accuracy[random, -1] = chance + 0.2
    accuracy[random, -2] = chance + 0.3
    accuracy[random[0], -2] = chance
    text = _findings(ds)
    assert f"At `{deep[0]}` at least one random seed is at or below chance" in text
    wide = f"At `{deep[1]}` every random seed is above chance: the interval reaches it because it is wide"
    assert wide in text


def test_random_baseline_decline_is_quantified(kather_results):
    ds = kather_results.copy(deep=True)
    n = ds.sizes["layer"]
    declining = np.linspace(0.8, 0.4, n)
    random = ds["kind"].values == "random"
    ds["accuracy"].values[random] = declining
    chance = 1 / ds.sizes["class"]  # the sample is balanced
    kept = (0.4 - chance) / (0.8 - chance)
    text = _findings(ds)
    assert "its mean accuracy peaks at `stem` (0.800)" in text
    assert f"it keeps {100 * kept:.0f} % of its accuracy above chance" in text
    ds["accuracy"].values[random] = declining[::-1]
    assert "falls with depth" not in _findings(ds)


def test_skipped_images_are_listed(kather_results):
    ds = kather_results.copy(deep=True)
    assert "No image was skipped" in _findings(ds)
    ds.attrs["skipped_images"] = json.dumps(["01_TUMOR/broken.png: cannot identify image file"])
    text = _findings(ds)
    assert "**1 image could not be read and was left out**" in text and "01_TUMOR/broken.png" in text


def test_no_finding_is_hard_coded(kather_results):
    """Changing the numbers changes the sentences: the trend's direction follows its CI."""
    ds = kather_results.copy(deep=True)
    ds["gain_trend_slope"][()] = -0.3
    ds["gain_trend_slope_ci"][:] = [-0.5, -0.1]
    assert "**Gain falls with depth**" in _findings(ds) and "-0.300 [-0.500, -0.100]" in _findings(ds)
    ds["gain_trend_slope_ci"][:] = [-0.5, 0.2]
    assert "**No clear depth trend in the gain**" in _findings(ds)


def test_report_without_groups_or_data_card(kather_results):
    ds = kather_results.copy(deep=True)
    ds.attrs.update(group_column="", n_groups=0, data_card="", data_card_summary="")
    md = to_markdown(build_document(ds))
    assert "without grouping (no patient or slide ids)" in md
    assert "No data card was found for `kather2016_sample`" in md


def test_where_the_uncertainty_comes_from_is_stated(kather_results):
    """The findings name the variance part (groups or random seeds) that limits the intervals."""
    ds = kather_results.copy(deep=True)
    ci = ds["gain_ci"].attrs
    ds["gain_var_images"][:] = 0.004
    ds["gain_var_seeds"][:] = 0.0
    text = _findings(ds)
    head = (
        f"the variance of each layer's gain has a part from the {int(ci['n_units'])} groups (`group`; "
        f"{ci['units_df']}) and a part from the 2 random seeds (1 df)."
    )
    assert head in text
    assert "The groups' part is the larger at every layer: more groups would narrow the intervals" in text
    deep = ds["layer"].values[-3:]
    ds["gain_var_seeds"].loc[{"layer": deep}] = 0.01
    ds["gain_df"].loc[{"layer": deep}] = [1.3, 1.1, 2.0]
    text = _findings(ds)
    assert (
        f"The random seeds' part is the larger at 3 of {ds.sizes['layer']} layers "
        f"(`{deep[0]}`–`{deep[2]}`), where the degrees of freedom fall to 1.1 and the intervals widen: "
        "more random seeds would narrow them most."
    ) in text


def test_layers_without_calibrated_inference_are_na_with_their_reason(kather_results):
    ds = kather_results.copy(deep=True)
    layers = [str(v) for v in ds["layer"].values[:2]]
    reason = "1 random seed gives no network-to-network spread (test reason)"
    for name in ("gain_ci", "gain_band"):
        ds[name].loc[{"layer": layers}] = np.nan
    for name in ("gain_p", "gain_p_maxt", "gain_se"):
        ds[name].loc[{"layer": layers}] = np.nan
    ds["gain_p"].attrs["nan_reason"] = json.dumps({layer: reason for layer in layers})
    ds["gain"].loc[{"layer": layers[0]}] = 0.9  # the largest estimate, without inference
    s = summarise_run(ds)
    text = "\n".join(run_findings(s))
    assert f"**Gain CI and test are n/a** at 2 layers (`{layers[0]}`–`{layers[1]}`): {reason}." in text
    assert f"`{layers[0]}`: +0.900 (CI and test n/a: {reason})" in text
    _, rows = md_table(to_markdown(build_document(ds, s)), 2)  # the inference table
    assert rows[0][2:4] == ["[n/a, n/a]", "[n/a, n/a]"] and rows[0][-2:] == ["n/a", "n/a"]
    assert "n/a" not in rows[2]
    tex = to_latex(run_tables(s)["per_layer_inference"])
    assert re.search(rf"\\texttt{{{re.escape(latex_escape(layers[0]))}}} & \+0\.900 & {{--}} & {{--}}", tex)


def test_sweet_spot_is_non_inferiority_within_the_margin(kather_results):
    ds = kather_results.copy(deep=True)
    layers = [str(v) for v in ds["layer"].values]
    margin = float(ds["sweet_spot"].attrs["margin"])
    best = int(np.argmax(ds["accuracy"].sel(init="pretrained").values))
    assert str(ds["best_layer"].values) == layers[best]
    ds["sweet_spot"] = ds["sweet_spot"].copy(data=np.array(""))
    reason = "12 groups are too few for a calibrated comparison of layers (test)"
    ds["sweet_spot"].attrs["undetermined"] = reason
    text = _findings(ds)
    assert f"**Sweet spot undetermined**, because {reason}." in text
    methods = "\n".join(findings_methods(summarise_run(ds)))
    assert "Here it is undetermined, because 12 groups are too few" in methods
    assert best > 0  # the sample's best layer is not its first: a shallower sweet spot is possible
    w = 0
    ds["sweet_spot"] = ds["sweet_spot"].copy(data=np.array(layers[w]))
    ds["sweet_spot"].attrs.pop("undetermined")
    ds["sweet_spot_lower"][w] = -0.0123
    ds["sweet_spot_lower_to_best"][w] = -0.0101
    text = _findings(ds)
    diff = float(ds["accuracy"].sel(init="pretrained")[w] - ds["accuracy"].sel(init="pretrained")[best])
    assert f"**Sweet spot: `{layers[w]}`**" in text
    within = f"is within {margin:g} ({100 * margin:g} percentage points of accuracy) of the best layer"
    assert f"{within} `{layers[best]}`" in text
    assert (
        f"is {diff:+.3f} from the best's, with a 95 % simultaneous lower bound of -0.010 against the best "
        f"layer and -0.012 against its strongest rival, both above −{margin:g}"
    ) in text
    assert "Here it is undetermined" not in "\n".join(findings_methods(summarise_run(ds)))


def test_depth_trend_slope_with_ci_and_p_spearman_descriptive(kather_results):
    ds = kather_results.copy(deep=True)
    ds["gain_trend_slope"][()] = 0.25
    ds["gain_trend_slope_ci"][:] = [0.05, 0.45]
    ds["gain_trend_slope_p"][()] = 0.012
    ds["gain_trend_spearman_rho"][()] = 0.8
    text = _findings(ds)
    assert "**Gain rises with depth**: OLS slope of gain on relative depth" in text
    assert "+0.250 [+0.050, +0.450] (95 % CI and two-sided p = 0.012" in text
    assert "Spearman's ρ of gain and depth = +0.80, a description only" in text
    assert "so it has no p-value" in text
    ds["gain_trend_slope"][()] = np.nan
    ds["gain_trend_slope"].attrs["nan_reason"] = json.dumps({"all layers": "too few groups (test reason)"})
    assert "**Depth trend not computed**: too few groups (test reason)." in _findings(ds)
