"""The cross-set report of a real comparison: files, tables, generated findings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from layergain.cli import main
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


def test_interaction_table_gives_the_failure_reason(comparison):
    ds = comparison.copy(deep=True)
    j = 3
    for name in (
        "interaction_wald",
        "interaction_wald_p",
        "interaction_wald_p_holm",
        "interaction_lrt",
        "interaction_lrt_p",
    ):
        ds[name][j] = np.nan
    failure = ds["interaction_failure"].values.astype(object)
    failure[j] = "GLM fit impossible (perfect separation): pretrained accuracy 1 in crc_second_half"
    ds["interaction_failure"] = ("layer", failure.astype(str))
    from layergain.report.compare_report import build_comparison_document
    from layergain.report.document import to_markdown

    md = to_markdown(build_comparison_document(ds))
    _, rows = md_table(md, 3)
    layer = str(ds["layer"].values[j])
    row = next(r for r in rows if r[0] == f"`{layer}`")
    assert row[1:6] == ["n/a"] * 5 and row[6] == failure[j]
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
    ds = comparison.copy(deep=True)
    ds["difference_p_holm"][:] = 1.0
    text = "\n".join(comparison_findings(ds))
    assert "**No pairwise difference of gain is significant**" in text
    ds["difference_p_holm"][0, -1] = 0.01
    text = "\n".join(comparison_findings(ds))
    d = float(ds["difference"][0, -1])
    lo, hi = ds["difference_ci"].values[0, -1]
    layer = str(ds["layer"].values[-1])
    assert f"largest at `{layer}`: {d:+.3f} [{lo:+.3f}, {hi:+.3f}], Holm-adjusted p = 0.010" in text
