"""Kendall's tau of the transferability estimators across image sets in ``layergain compare``.

Real runs take a minute each, so the runs here are the committed study's results (real probe
outcomes, no tau tables: written before the transferability estimators) with estimator values
made up from their accuracies and a real tau table of them (:func:`tau_table`, as
``layergain run`` makes it). The committed files themselves are the "older results".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from layergain import schema as S
from layergain.cli import main
from layergain.pipeline import compare
from layergain.report import compare_figures, fmt
from layergain.report.compare_report import comparison_findings
from layergain.results.build import per_image_correct
from layergain.results.comparison import TAU_VARIABLES, tau_across_sets
from layergain.results.io import load_results, save_results
from layergain.transferability import ESTIMATORS, tau_table
from tests.report.latex_check import check_table
from tests.report.test_figures import _captured, _check_labels
from tests.report.test_run_report import md_table
from tests.stats.test_pooled_tau import slow_stratified_tau

REPORTS = Path(__file__).resolve().parents[2] / "reports"
SETS = ("lc25000_lung", "lc25000_colon", "kather2016_sample")
TAU_PREFIX = "tau_"


def with_tau(ds: xr.Dataset, rng: np.random.Generator, n_boot: int = 200) -> xr.Dataset:
    """A run's results with estimators made up from its accuracies and their real tau table, stored
    as a run stores them (``transfer_<name>``, ``tau_*`` with the table's attrs on each)."""
    ds = ds.copy()
    acc = ds["accuracy"].transpose(S.INIT, S.LAYER)
    est = xr.Dataset(coords={S.INIT: ds[S.INIT].values, S.LAYER: ds[S.LAYER].values})
    for k, name in enumerate(ESTIMATORS):  # tracking the accuracy, against it, or noise
        sign = (1, -1, 0)[k % 3]
        est[name] = ((S.INIT, S.LAYER), sign * acc.values + 0.02 * (k + 1) * rng.standard_normal(acc.shape))
        est[name].attrs = {"method": f"made up: {sign} x accuracy + noise", "nan_reason": {}}
    tau = tau_table(est, acc, ds["gain"], correct=per_image_correct(ds), n_boot=n_boot, seed=rng)
    for name in est.data_vars:
        ds["transfer_" + name] = est[name]
    for name in tau.data_vars:
        new = name if name.startswith("tau_") else f"tau_{name}"
        ds[new] = tau[name]
        ds[new].attrs = {**tau.attrs, **tau[name].attrs}
    return ds


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """(runs with tau, their comparison, the comparison of the committed runs without tau)."""
    base = tmp_path_factory.mktemp("compare-tau")
    rng = np.random.default_rng(20240611)
    paths = []
    for name in SETS:
        path = base / name / "results.nc"
        save_results(with_tau(load_results(REPORTS / name / "results.nc"), rng), path)
        paths.append(path.parent)
    runs = [load_results(p / "results.nc") for p in paths]
    new = compare(paths, base / "with_tau", draws=1000)
    old = compare([REPORTS / name for name in SETS], base / "without_tau", draws=1000)
    return runs, new, old


def test_each_set_has_its_runs_taus(studies):
    runs, new, _ = studies
    c = load_results(new.out / "comparison.nc")
    assert c["tau_gain_ci"].dims == (S.DATASET, S.ESTIMATOR, S.BOUND)
    for ds in runs:
        for name in TAU_VARIABLES:
            copied = c[name].sel({S.DATASET: ds.attrs["dataset"]}).drop_vars(S.DATASET)
            np.testing.assert_array_equal(copied.transpose(*ds[name].dims).values, ds[name].values,
                                          err_msg=name)


def test_pooled_tau_is_the_stratified_tau_of_the_runs(studies):
    """The pooled tau from the runs' per-layer values, counted pair by pair within each set."""
    runs, new, _ = studies
    c = load_results(new.out / "comparison.nc")
    for name in ESTIMATORS:
        est = [ds["transfer_" + name].transpose(S.INIT, S.LAYER) for ds in runs]
        diff = [e.sel({S.INIT: S.PRETRAINED}) - e.drop_sel({S.INIT: S.PRETRAINED}).mean(S.INIT) for e in est]
        gain = [ds["gain"].values.tolist() for ds in runs]
        pooled = float(c["tau_gain_pooled"].sel({S.ESTIMATOR: name}))
        expected = slow_stratified_tau([d.values.tolist() for d in diff], gain)
        assert pooled == pytest.approx(expected, abs=1e-12)
        pre = [e.sel({S.INIT: S.PRETRAINED}).values.tolist() for e in est]
        acc = [ds["accuracy"].sel({S.INIT: S.PRETRAINED}).values.tolist() for ds in runs]
        assert float(c["tau_accuracy_pooled"].sel({S.ESTIMATOR: name})) == pytest.approx(
            slow_stratified_tau(pre, acc), abs=1e-12)
        lo, hi = c["tau_gain_pooled_ci"].sel({S.ESTIMATOR: name}).values
        assert -1 <= lo <= hi <= 1
    assert (c["tau_pooled_n_sets"] == len(SETS)).all()
    assert c["tau_gain_pooled"].attrs["n_boot"] == 200  # as many draws as the runs' tau tables


def test_set_counts_and_findings_follow_the_numbers(studies):
    _, new, _ = studies
    c = load_results(new.out / "comparison.nc")
    ci = c["tau_gain_ci"].transpose(S.DATASET, S.ESTIMATOR, S.BOUND).values
    above, below = (ci[..., 0] > 0).sum(axis=0), (ci[..., 1] < 0).sum(axis=0)
    np.testing.assert_array_equal(c["tau_gain_sets_above"].values, above)
    np.testing.assert_array_equal(c["tau_gain_sets_below"].values, below)
    assert above.any() and below.any()  # the made-up estimators go both ways
    findings = comparison_findings(c)
    n = len(SETS)
    labels = ("LogME", "H-score", "N-LEEP", "GBC", "TransRate", "kNN accuracy", "NCC accuracy")
    for e, label in enumerate(labels):
        line = next(t for t in findings if t.startswith(f"**{label} "))
        k = int(above[e])
        rule = (f"tracks the gain in every set** ({n} of {n})" if k == n
                else f"tracks the gain in none of the {n} sets**" if k == 0
                else f"tracks the gain in {k} of {n} sets**")
        assert rule in line, line
        assert (f"τ below 0 in {below[e]}" in line) == bool(below[e]), line
        tau, (lo, hi) = c["tau_gain_pooled"].values[e], c["tau_gain_pooled_ci"].values[e]
        assert f"pooled {fmt.est_ci(tau, lo, hi, digits=2)}" in line
    # the rule reads the numbers: one set fewer above 0 changes the words
    changed = c.copy()
    changed["tau_gain_sets_above"] = xr.full_like(c["tau_gain_sets_above"], n - 1)
    lines = [t for t in comparison_findings(changed) if re.match(r"\*\*(LogME|H-score) ", t)]
    assert len(lines) == 2 and all(f"tracks the gain in {n - 1} of {n} sets**" in t for t in lines)


def test_transferability_table_and_figure(studies):
    _, new, _ = studies
    c = load_results(new.out / "comparison.nc")
    md = (new.out / "report.md").read_text()
    number = int(re.search(r"\*\*Table (\d+)\. Do transferability estimators track the gain", md).group(1))
    header, rows = md_table(md, number)
    assert header[0] == "estimator" and len(rows) == len(ESTIMATORS)
    assert header[-4:] == ["pooled τ gain", "pooled 95 % CI", "sets with CI > 0", "sets with CI < 0"]
    for e, row in enumerate(rows):
        for k, name in enumerate(SETS):
            col = header.index(f"{name} τ gain")
            lo, hi = c["tau_gain_ci"].sel({S.DATASET: name}).values[e]
            assert row[col:col + 2] == [fmt.signed(c["tau_gain"].sel({S.DATASET: name}).values[e], 2),
                                        fmt.ci(lo, hi, digits=2)]
        assert row[-2:] == [f"{int(c['tau_gain_sets_above'][e])}/{len(SETS)}",
                            f"{int(c['tau_gain_sets_below'][e])}/{len(SETS)}"]
    assert check_table((new.out / "tables" / "transferability.tex").read_text()) == []
    assert "](figures/transferability_tau_by_set.png)" in md
    assert (new.out / "figures" / "transferability_tau_by_set.pdf").read_bytes().startswith(b"%PDF")


def test_tau_figure_is_labelled(studies, monkeypatch, tmp_path):
    _, new, _ = studies
    figs = _captured(monkeypatch, compare_figures)
    compare_figures.transferability_tau_by_set(load_results(new.out / "comparison.nc"), tmp_path / "f")
    _check_labels(figs[0])


def test_rebuilt_report_is_identical(studies, tmp_path, capsys):
    _, new, _ = studies
    assert main(["report", str(new.out / "comparison.nc"), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    for name in ("report.md", "tables/transferability.tex", "figures/transferability_tau_by_set.png"):
        assert (tmp_path / name).read_bytes() == (new.out / name).read_bytes(), name


def test_results_without_tau_compare_as_before(studies):
    """The committed runs have no tau tables: their comparison has the committed comparison's
    variables, no tau table or figure, and the same numbers as the comparison of the runs with tau."""
    _, new, old = studies
    before = load_results(old.out / "comparison.nc")
    committed = load_results(REPORTS / "comparison" / "comparison.nc")
    assert set(before.data_vars) == set(committed.data_vars) and S.ESTIMATOR not in before.dims
    assert not any(str(v).startswith(TAU_PREFIX) for v in before.data_vars)
    assert not (old.out / "tables" / "transferability.tex").exists()
    assert not (old.out / "figures" / "transferability_tau_by_set.png").exists()
    assert "τ" not in (old.out / "report.md").read_text()
    after = load_results(new.out / "comparison.nc")
    after = after.drop_vars([v for v in after.data_vars if str(v).startswith(TAU_PREFIX)])
    after = after.drop_dims(S.ESTIMATOR)
    for ds in (after, before):  # the runs' paths and the time differ
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "command", "runs")}
    xr.testing.assert_identical(after, before)


def test_a_run_without_tau_is_left_out_of_the_pool(studies):
    runs, _, _ = studies
    old = load_results(REPORTS / SETS[1] / "results.nc")
    mixed = tau_across_sets([runs[0], old], confidence=0.95, seed=0)
    alone = tau_across_sets([runs[0]], confidence=0.95, seed=0)
    assert np.isnan(mixed["tau_gain"].sel({S.DATASET: SETS[1]})).all()
    assert "no tau table" in mixed["tau_gain"].attrs["nan_reason"][SETS[1]]
    assert (mixed["tau_pooled_n_sets"] == 1).all() and (mixed["tau_gain_sets"] == 1).all()
    assert "no tau table" in mixed["tau_gain_pooled"].attrs["left_out"]["logme"][SETS[1]]
    np.testing.assert_allclose(mixed["tau_gain_pooled"], alone["tau_gain_pooled"], atol=1e-12)
    np.testing.assert_allclose(mixed["tau_gain_pooled"], runs[0]["tau_gain"].values, atol=1e-12)
