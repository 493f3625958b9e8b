"""The cross-set report of a real comparison: files, tables, generated findings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from layergain.cli import main
from layergain.report import fmt
from layergain.report.compare_report import comparison_findings
from layergain.results.io import load_results
from tests.report.latex_check import check_table
from tests.report.test_run_report import md_table

FIGURES = ("gain_all_sets", "gain_heatmap", "pairwise_differences")
TABLES = ("ranking", "gain_by_set", "interaction", "differences")


@pytest.fixture(scope="module")
def comparison(comparison_run):
    return load_results(comparison_run.out / "comparison.nc")


def test_compare_writes_every_file(comparison_run):
    out = comparison_run.out
    for stem in FIGURES:
        with Image.open(out / "figures" / f"{stem}.png") as image:
            assert image.format == "PNG"
        assert (out / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    for stem in TABLES:
        assert check_table((out / "tables" / f"{stem}.tex").read_text()) == [], stem
    md = (out / "report.md").read_text()
    assert "crc_first_half" in md and "crc_second_half" in md
    for stem in FIGURES:
        assert f"](figures/{stem}.png)" in md


def test_rebuilt_comparison_report_is_identical(comparison_run, comparison, tmp_path, capsys):
    """`layergain report comparison.nc --out DIR` gives the same report as `layergain compare`."""
    code = main(["report", str(comparison_run.out / "comparison.nc"), "--out", str(tmp_path)])
    assert code == 0 and capsys.readouterr().out.startswith("comparison report: ")
    for name in (
        "report.md",
        "report.html",
        *(f"tables/{t}.tex" for t in TABLES),
        *(f"figures/{f}.png" for f in FIGURES),
    ):
        assert (tmp_path / name).read_bytes() == (comparison_run.out / name).read_bytes(), name
    assert comparison.attrs["created"] not in (tmp_path / "report.md").read_text()


def test_gain_table_and_ranking_follow_the_numbers(comparison_run, comparison):
    md = (comparison_run.out / "report.md").read_text()
    header, rows = md_table(md, 2)
    assert header[0] == "layer" and len(rows) == comparison.sizes["layer"]
    for k, name in enumerate(comparison["dataset"].values):
        col = header.index(f"{name} gain")
        assert [r[col] for r in rows] == [f"{g:+.3f}" for g in comparison["gain"].sel(dataset=name).values]
    _, ranking = md_table(md, 1)
    deep = comparison["deep"].values.astype(bool)
    means = comparison["gain"].values[:, deep].mean(axis=1)
    expected = [str(comparison["dataset"].values[k]) for k in np.argsort(-means, kind="stable")]
    assert [r[1].strip("`") for r in ranking] == expected
    assert [r[2] for r in ranking] == [f"{m:+.3f}" for m in sorted(means, reverse=True)]


def test_interaction_table_follows_the_numbers(comparison_run, comparison):
    """Table 3: W, its generalised-pivotal p, max-T (primary) and Holm p of every layer, with K - 1 df."""
    md = (comparison_run.out / "report.md").read_text()
    header, rows = md_table(md, 3)
    df = int(comparison["interaction_df"])
    assert df == comparison.sizes["dataset"] - 1
    assert header == ["layer", f"Wald W ({df} df)", "p", "p (max-T)", "p (Holm)", "note"]
    assert [r[0] for r in rows] == [f"`{layer}`" for layer in comparison["layer"].values]
    for col, name in ((1, "interaction_wald"),):
        assert [r[col] for r in rows] == [fmt.num(w, 2) for w in comparison[name].values]  # NaN: n/a
    for col, name in (
        (2, "interaction_wald_p"),
        (3, "interaction_wald_p_maxt"),
        (4, "interaction_wald_p_holm"),
    ):
        assert [r[col] for r in rows] == [fmt.pval(p) for p in comparison[name].values], name
    assert "Wald test of equal gains" in md and "small-sample (generalised pivotal) reference" in md
    assert "interaction_lrt" not in comparison and "LRT" not in md


def test_interaction_table_gives_the_failure_reason(comparison):
    ds = comparison.copy(deep=True)
    j = 3
    for name in (
        "interaction_wald",
        "interaction_wald_p",
        "interaction_wald_p_maxt",
        "interaction_wald_p_holm",
    ):
        ds[name][j] = np.nan
    failure = ds["interaction_failure"].values.astype(object)
    failure[j] = "2 groups give 1.0 degrees of freedom for the spread between groups in crc_second_half"
    ds["interaction_failure"] = ("layer", failure.astype(str))
    from layergain.report.compare_report import build_comparison_document
    from layergain.report.document import to_markdown

    md = to_markdown(build_comparison_document(ds))
    _, rows = md_table(md, 3)
    layer = str(ds["layer"].values[j])
    row = next(r for r in rows if r[0] == f"`{layer}`")
    assert row[1:5] == ["n/a"] * 4 and row[5] == failure[j]
    text = "\n".join(comparison_findings(ds))
    assert "**The interaction test is n/a**" in text and failure[j] in text and f"`{layer}`" in text


def test_findings_name_sets_that_keep_the_gain(comparison):
    ds = comparison.copy(deep=True)
    ds["keeps_gain"][:] = [1, 0]
    text = "\n".join(comparison_findings(ds))
    first, second = (str(n) for n in ds["dataset"].values)
    assert f"`{first}` keeps a significant gain at every deep layer; `{second}` does not." in text
    ds["keeps_gain"][:] = [0, 0]
    assert "no set keeps a significant gain at every deep layer" in "\n".join(comparison_findings(ds))


def test_significant_difference_is_reported_with_ci_and_p(comparison):
    """Significance of a difference follows its max-T p (all pairs × layers); Holm is shown beside it."""
    ds = comparison.copy(deep=True)
    ds["difference_p_maxt"][:] = 1.0
    ds["difference_p_holm"][:] = 0.01  # secondary: never decides significance
    text = "\n".join(comparison_findings(ds))
    assert (
        "**No pairwise difference of gain is significant** (max-T-adjusted, family-wise over all 1 pair × "
        in text
    )
    ds["difference_p_maxt"][0, -1] = 0.01
    ds["difference_p_holm"][0, -1] = 0.2
    text = "\n".join(comparison_findings(ds))
    d = float(ds["difference"][0, -1])
    lo, hi = ds["difference_ci"].values[0, -1]
    layer = str(ds["layer"].values[-1])
    assert (
        f"largest at `{layer}`: {d:+.3f} [{lo:+.3f}, {hi:+.3f}], max-T-adjusted p = 0.010; Holm-adjusted p = 0.200"
        in text
    )


def test_gain_significance_follows_the_max_t_p(comparison_run, comparison):
    """Table 2 shows max-T (primary) and Holm p of each set; the findings count max-T-significant layers."""
    md = (comparison_run.out / "report.md").read_text()
    header, rows = md_table(md, 2)
    for name in comparison["dataset"].values:
        col = header.index(f"{name} gain")
        assert header[col + 1 : col + 4] == [
            f"{fmt.level(comparison.attrs['confidence'])} CI",
            "p (max-T)",
            "p (Holm)",
        ]
        maxt = comparison["joint_gain_p_maxt"].sel(dataset=name).values
        holm = comparison["joint_gain_p_holm"].sel(dataset=name).values
        assert [r[col + 2] for r in rows] == [fmt.pval(p) for p in maxt]
        assert [r[col + 3] for r in rows] == [fmt.pval(p) for p in holm]
    alpha = float(comparison.attrs["alpha"])
    rule = (comparison["joint_gain_p_maxt"] <= alpha) & (comparison["gain"] > 0)
    assert (comparison["significant"].astype(bool) == rule).all()
    ds = comparison.copy(deep=True)
    first = str(ds["dataset"].values[0])
    n_layers = ds.sizes["layer"]
    ds["gain"].loc[{"dataset": first}] = np.abs(ds["gain"].sel(dataset=first)) + 0.01
    ds["joint_gain_p_maxt"].loc[{"dataset": first}] = 1.0
    ds["joint_gain_p_maxt"].loc[{"dataset": first, "layer": ds["layer"].values[:2]}] = 0.01
    ds["joint_gain_p_holm"].loc[{"dataset": first}] = 0.01  # secondary: never decides significance
    ds = ds.drop_vars("significant")
    text = "\n".join(comparison_findings(ds))
    assert f"significant gain at 2 of {n_layers} layers" in text
    assert f"max-T-adjusted p ≤ {alpha:g}, family-wise over the {n_layers} layers of this set" in text


def test_methods_name_populations_units_and_draws(comparison_run, comparison):
    """The statistics paragraph names each set's units and count, the shared seeds, the interval, n_draws."""
    md = (comparison_run.out / "report.md").read_text()
    units = json.loads(comparison.attrs["n_units"])
    kinds = json.loads(comparison.attrs["resampling_unit"])
    for name in comparison["dataset"].values:
        assert f"`{name}`: {units[name]} {kinds[name]}s" in md
    n_seeds = len(np.atleast_1d(comparison.attrs["seeds"]))
    n_draws = int(comparison.attrs["n_draws"])
    assert f"represented by the {n_seeds} random seeds shared by every set" in md
    assert comparison.attrs["interval"] in md
    assert f"from {n_draws:,} Monte Carlo draws" in md and f"1/n_draws = {1 / n_draws:.2g}" in md
    assert f"statistic W with K − 1 = {int(comparison['interaction_df'])} df" in md
    for gone in ("bootstrap", "sign-flip", "n_boot", "n_permutations", "--boot"):
        assert gone not in md, gone


def test_draws_floor_note_only_when_alpha_is_unreachable(comparison):
    assert not any("Nothing can be significant" in t for t in comparison_findings(comparison))
    ds = comparison.copy()
    ds.attrs = {**comparison.attrs, "alpha": 0.0005, "n_draws": 1000}
    note = next(t for t in comparison_findings(ds) if "Nothing can be significant" in t)
    assert "1/n_draws = 0.001" in note and "`--draws 40000`" in note


def test_one_summary_per_report(comparison, kather_results, monkeypatch, tmp_path):
    # Each report reads its numbers once: one ComparisonSummary / RunSummary shared by findings,
    # tables, figures and methods.
    from layergain.report import compare_report, compare_summary, run_report, summary
    from layergain.report.compare_report import write_comparison_report
    from layergain.report.run_report import write_report

    built = []
    init = compare_summary.ComparisonSummary.__init__
    monkeypatch.setattr(compare_summary.ComparisonSummary, "__init__",
                        lambda self, ds: built.append("comparison") or init(self, ds))
    summarise = summary.summarise_run
    monkeypatch.setattr(run_report, "summarise_run", lambda ds: built.append("run") or summarise(ds))
    write_comparison_report(comparison, tmp_path / "c")
    write_report(kather_results, tmp_path / "r")
    assert built == ["comparison", "run"]
    assert compare_report.comparison_findings(comparison)  # a Dataset is summarised on the way in
