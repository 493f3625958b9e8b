"""The per-set report of a real run: files, numbers, generated findings, reproducibility."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from layergain.cli import main
from layergain.report import fmt
from layergain.report.document import to_markdown
from layergain.report.findings import run_findings
from layergain.report.run_report import build_document, run_tables
from layergain.report.summary import summarise_run
from layergain.report.tables import latex_escape, to_latex
from layergain.results.io import load_results

FIGURES = ("accuracy_by_layer", "gain_by_layer", "similarity_by_layer", "cka_heatmap", "accuracy_vs_params")
TABLES = ("per_layer", "per_layer_tests", "per_layer_metrics")


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
    assert code == 0 and out == f"run report: {tmp_path / 'report.html'}  (16 files)"
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
        assert row[col["gain 95 % CI"]] == f"[{lo:+.3f}, {hi:+.3f}]"
        assert row[col["p (Holm)"]] == fmt.pval(ds["gain_p_holm"][j])
        svcca = ds["svcca"].mean("init").values[j]
        assert row[col["SVCCA"]] == ("n/a" if np.isnan(svcca) else f"{svcca:.3f}")


def test_findings_state_estimate_ci_and_corrected_p(kather_run):
    md = (kather_run.out / "report.md").read_text()
    findings = md.split("## Findings")[1].split("## Figures")[0]
    first = findings.strip().splitlines()[0]
    assert re.search(r"[+-]\d\.\d{3} \[95 % CI [+-]\d\.\d{3}, [+-]\d\.\d{3}\]", first)
    assert re.search(r"Holm-adjusted p (=|<) ?\d", first)
    assert "OLS slope of gain on relative depth" in findings and "Spearman" in findings
    assert "Sweet spot" in findings


def test_methods_cite_every_setting(kather_run, kather_results):
    a = kather_results.attrs
    methods = (kather_run.out / "report.md").read_text().split("## Methods")[1].split("## Data")[0]
    for needle in (
        a["backbone"],
        a["weights_sha256"],
        f"{a['image_size']} × {a['image_size']} px",
        "global average pooling",
        f"{a['folds']}-fold",
        "grouped by `group`",
        "seeds 0, 1",
        "B = 200",
        "Holm",
        "Benjamini–Hochberg",
        "Nadeau and Bengio",
        "McNemar",
        "Cohen's h",
        json.loads(a["versions"])["torch"],
        "BCa" if "bca" in str(kather_results["gain_ci"].attrs) else "percentile",
    ):
        assert str(needle) in methods, needle


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
    ds["gain_p_holm"][:] = 1.0
    ds["gain_p_holm"][j] = 0.004
    text = _findings(ds)
    name = str(ds["layer"].values[j])
    assert f"significant gain at 1 of {ds.sizes['layer']} layers** (`{name}`" in text
    lo, hi = ds["gain_ci"].values[j]
    assert f"{float(ds['gain'][j]):+.3f} [95 % CI {lo:+.3f}, {hi:+.3f}], Holm-adjusted p = 0.004" in text
    ds["gain_p_holm"][:] = 1.0
    assert "**No layer has a significant gain**" in _findings(ds)


def test_gain_figure_stars_the_significant_layers(kather_results, tmp_path):
    from layergain.report.figures import gain_by_layer

    ds = kather_results.copy(deep=True)
    ds["gain_p_holm"][:] = 1.0
    none = gain_by_layer(summarise_run(ds), tmp_path / "none")[0].read_bytes()
    ds["gain_p_holm"][-3:] = 0.01
    ds["gain"][-3:] = np.abs(ds["gain"][-3:]) + 0.1
    marked = gain_by_layer(summarise_run(ds), tmp_path / "marked")[0].read_bytes()
    assert none != marked
    assert summarise_run(ds).significant.sum() == 3


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


def test_collapse_of_the_random_baseline_is_said_where_it_happens(kather_results):
    ds = kather_results.copy(deep=True)
    assert "collapses to chance" not in _findings(ds)  # the sample's random layers stay above chance
    deep = ds["layer"].values[-2:]
    ds["accuracy_random_mean_ci"].loc[{"layer": deep, "bound": "lower"}] = 0.05
    text = _findings(ds)
    assert f"**The random baseline collapses to chance** at `{deep[0]}`–`{deep[1]}`" in text
    doc = to_markdown(build_document(ds))
    assert f"shaded: layers where its CI reaches chance (`{deep[0]}`–`{deep[1]}`)" in doc


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


def test_resolution_of_an_exact_grouped_test_is_stated():
    """The committed Kather 2016 study is grouped by slide (10 slides): the sign-flip test enumerates
    every sign pattern, so its smallest p-value is 2 / 2^10, and the findings say what that lets
    Holm reach and which layers it holds back (unadjusted p <= 0.05, Holm-adjusted above)."""
    path = Path(__file__).resolve().parents[2] / "reports" / "kather2016_crc_texture" / "results.nc"
    ds = load_results(path)
    attrs = ds["gain_p"].attrs
    assert attrs["resampling_unit"] == "group" and int(attrs["exact"]) == 1
    patterns = int(attrs["n_resamples"])
    assert patterns == 2 ** int(ds.attrs["n_groups"])
    floor, n_layers = 2 / patterns, ds.sizes["layer"]
    assert float(ds["gain_p"].min()) == floor  # reached: the floor is real, not a bound on paper
    text = _findings(ds)
    assert f"no two-sided p-value falls below 2/{patterns} = {floor:.4f}" in text
    assert f"Holm over {n_layers} layers below {floor * n_layers:.3f}" in text
    held = (ds["gain_p"] <= 0.05) & (ds["gain_p_holm"] > 0.05)
    assert int(held.sum()) > 0 and f"{int(held.sum())} layers (" in text
    ds["gain_p"].attrs["exact"] = 0  # a Monte Carlo test: no such floor to state
    assert "resolution is limited" not in _findings(ds)
