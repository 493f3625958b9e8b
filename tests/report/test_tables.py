"""LaTeX tables: booktabs + siunitx structure, escaping, and the same numbers as the Markdown tables."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from layergain.report.tables import Column, TableSpec, latex_escape, to_latex
from tests.report.latex_check import check_table

TABLES = ("per_layer", "per_layer_inference", "per_layer_tests", "per_layer_metrics")


@pytest.mark.parametrize("stem", TABLES)
def test_run_tables_are_valid_booktabs_siunitx(kather_run, stem):
    tex = (kather_run.out / "tables" / f"{stem}.tex").read_text()
    assert check_table(tex) == []
    assert "\\caption{" in tex and "\\label{tab:layergain:kather2016-sample:" in tex


def test_checker_finds_broken_tables():
    """The structural check fails where pdfLaTeX or siunitx would."""
    good = to_latex(
        TableSpec([Column("a", "A", "code"), Column("x", "X", "signed")], [["l_1", 0.5]], "c", "tab:x")
    )
    assert check_table(good) == []
    assert any("cells" in p for p in check_table(good.replace(r"+0.500 \\", r"+0.500 & 1 \\")))
    assert any("does not fit" in p for p in check_table(good.replace("+0.500", "+10.500")))
    assert any("unbalanced" in p for p in check_table(good.replace(r"\caption{c}", r"\caption{c")))
    assert any("non-ASCII" in p for p in check_table(good.replace("{c}", "{×}")))
    assert any("special" in p for p in check_table(good.replace(r"l\_1", "l_1")))


def test_table_numbers_match_the_markdown(kather_run, kather_results):
    """Gain, its pointwise CI and the p-values in per_layer.tex are the results' numbers (same rounding)."""
    tex = (kather_run.out / "tables" / "per_layer.tex").read_text()
    rows = [r for r in tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()]
    assert len(rows) == kather_results.sizes["layer"]
    for j, row in enumerate(rows):
        cells = [c.strip() for c in re.split(r"(?<!\\)&", row.removesuffix("\\\\"))]
        assert cells[0] == f"\\texttt{{{latex_escape(str(kather_results['layer'].values[j]))}}}"
        assert cells[1] == str(int(kather_results["params_to_layer"][j]))
        assert cells[5] == f"{float(kather_results['gain'][j]):+.3f}"
        lo, hi = kather_results["gain_ci"].values[j]
        assert cells[6:8] == [_tex(lo, "+.3f"), _tex(hi, "+.3f")]  # NaN (no calibrated interval): {--}
        for k, name in ((9, "gain_p"), (10, "gain_p_maxt"), (11, "gain_p_holm")):
            p = float(kather_results[name][j])
            assert cells[k] == ("{--}" if not np.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"), name


def _tex(x: float, spec: str) -> str:
    """A number as the LaTeX tables write it: missing values as {--}."""
    return "{--}" if not np.isfinite(x) else format(float(x), spec)


def test_missing_values_are_braced_text():
    spec = TableSpec(
        [Column("l", "L", "code"), Column("v", "V", "num"), Column("ci", "CI", "ci"), Column("p", "p", "p")],
        [["a", np.nan, (np.nan, 0.2), 0.0001], ["b", 0.25, (0.1, 0.3), np.nan]],
        "cap",
        "tab:t",
    )
    tex = to_latex(spec)
    assert r"\texttt{a} & {--} & {--} & +0.200 & <0.001 \\" in tex
    assert r"\texttt{b} & 0.250 & +0.100 & +0.300 & {--} \\" in tex
    assert check_table(tex) == []
    md = spec.markdown()
    assert md.rows[0] == ["`a`", "n/a", "[n/a, +0.200]", "< 0.001"]


def test_wide_tables_span_both_columns(kather_run):
    assert "\\begin{table*}" in (kather_run.out / "tables" / "per_layer.tex").read_text()
    assert "\\begin{table*}" in (kather_run.out / "tables" / "per_layer_inference.tex").read_text()
    assert "\\begin{table}" in (kather_run.out / "tables" / "per_layer_tests.tex").read_text()


@pytest.mark.parametrize(
    "text, tex",
    [
        ("a_b & 50 % #1", r"a\_b \& 50 \% \#1"),
        ("`blocks.5_0` × 2 ≤ 3", r"\texttt{blocks.5\_0} $\times$ 2 $\leq$ 3"),
        ("**bold** {x}", r"\textbf{bold} \{x\}"),
        ("a\\b ~ ^", r"a\textbackslash{}b \textasciitilde{} \textasciicircum{}"),
    ],
)
def test_latex_escape(text, tex):
    assert latex_escape(text) == tex


def test_preview_document_inputs_every_table(kather_run):
    preview = (kather_run.out / "tables" / "tables.tex").read_text()
    assert "\\usepackage{booktabs}" in preview and "\\usepackage{siunitx}" in preview
    for stem in TABLES:
        assert f"\\input{{{stem}}}" in preview


_ENGINE = next((e for e in ("pdflatex", "lualatex") if shutil.which(e)), None)


@pytest.mark.skipif(_ENGINE is None, reason="no TeX engine installed (pdflatex or lualatex)")
def test_tables_compile(kather_run, tmp_path):
    shutil.copytree(kather_run.out / "tables", tmp_path / "tables")
    res = subprocess.run(
        [_ENGINE, "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
        cwd=tmp_path / "tables",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout[-3000:]
