"""Transferability estimators, their tau table and similarity with inference in a run and its report."""

from __future__ import annotations

import numpy as np
import pytest

from layergain import schema as S
from layergain.report import write_report
from layergain.report.findings import run_findings
from layergain.report.run_report import run_tables
from layergain.report.summary import summarise_run
from layergain.results.io import load_results, save_results
from layergain.transferability import ESTIMATORS

MEASURES = ("cka_debiased", "mutual_knn", "angular_shape", "rsa")
NEW_PREFIXES = ("transfer_", "tau_", *(m + "_" for m in MEASURES[1:]), "cka_debiased_difference",
                "cka_debiased_pretrained_random", "cka_debiased_random_random")


def test_run_stores_the_estimators_with_dims_and_finite_values(kather_results):
    ds = kather_results
    for name in ESTIMATORS:
        var = ds[f"transfer_{name}"]
        assert var.dims == (S.INIT, S.LAYER) and var.dtype == np.float64
        assert list(var[S.INIT].values) == list(ds[S.INIT].values)
        reasons = var.attrs["nan_reason"]
        # finite wherever no reason was recorded (the attr is JSON text after the round trip)
        assert np.isfinite(var.values).all() or reasons not in ("", "{}"), name
        assert var.attrs["method"]
    assert list(ds[S.ESTIMATOR].values) == list(ESTIMATORS)
    for name in ("tau_accuracy", "tau_gain", "tau_n_layers"):
        assert ds[name].dims == (S.ESTIMATOR,)
    for name in ("tau_accuracy_ci", "tau_gain_ci"):
        assert ds[name].dims == (S.ESTIMATOR, S.BOUND)
        lo, hi = ds[name].sel(bound="lower").values, ds[name].sel(bound="upper").values
        assert np.isfinite(lo).all() and np.all(lo <= hi)
    assert np.all(np.abs(ds["tau_gain"].values) <= 1) and np.all(ds["tau_n_layers"].values == ds.sizes[S.LAYER])
    assert ds["tau_gain"].attrs["n_boot"] == 2000 and "conditional" in ds["tau_gain"].attrs["method"]
    assert ds["tau_gain"].attrs["resampled"] == "random inits and images"


def test_run_stores_similarity_with_inference(kather_results):
    ds = kather_results
    for m in MEASURES:
        for suffix in ("_difference", "_difference_p", "_pretrained_random", "_random_random",
                       "_difference_se_images", "_difference_se_seeds", "_difference_df"):
            assert ds[m + suffix].dims == (S.LAYER,), m + suffix
        ci = ds[m + "_difference_ci"]
        assert ci.dims == (S.LAYER, S.BOUND)
        d = ds[m + "_difference"].values
        assert np.isfinite(d).all() and np.isfinite(ci.values).all(), m
        assert np.all(ci.sel(bound="lower").values <= d) and np.all(d <= ci.sel(bound="upper").values)
        p = ds[m + "_difference_p"].values
        assert np.all((p >= 0) & (p <= 1))
        np.testing.assert_allclose(d, ds[m + "_pretrained_random"] - ds[m + "_random_random"], atol=1e-12)
        assert ds[m + "_difference"].attrs["n_boot"] == 50  # the tests' similarity_resamples
        assert "jackknife" in ds[m + "_difference"].attrs["method"]
    assert (ds["cka_debiased_difference_df"].values == 1).all()  # two random seeds: S - 1


def test_report_has_the_tau_table_and_the_similarity_test(kather_run, kather_results):
    md = (kather_run.out / "report.md").read_text()
    assert "Kendall's τ across layers" in md and "| LogME |" in md and "| NCC accuracy |" in md
    assert (kather_run.out / "tables" / "transferability.tex").is_file()
    assert (kather_run.out / "tables" / "per_layer_similarity.tex").is_file()
    assert (kather_run.out / "figures" / "transferability_tau.png").is_file()
    assert (kather_run.out / "figures" / "similarity_difference_by_layer.pdf").is_file()
    assert "descriptive, no test" not in md
    assert "Pretrained-vs-random debiased CKA is" in md and "than random-vs-random" in md
    assert "**Similarity with inference.**" in md and "**Transferability.**" in md
    tex = (kather_run.out / "tables" / "transferability.tex").read_text()
    assert "$\\tau$" in tex and "τ" not in tex  # pdfLaTeX needs no unicode package


def test_similarity_sentence_states_its_numbers(kather_results):
    s = summarise_run(kather_results)
    d = s.differences["cka_debiased"]
    line = next(f for f in run_findings(s) if "debiased CKA is" in f)
    sig = d.p <= s.alpha
    if sig.any():
        j = int(np.flatnonzero(sig)[np.argmax(np.abs(d.difference[sig]))])
        assert f"{sig.sum()} of {len(s.layers)} layers" in line
        assert f"{d.difference[j]:+.3f} [95 % two-sided CI {d.ci[j, 0]:+.3f}, {d.ci[j, 1]:+.3f}]" in line
    else:
        assert "is not shown lower" in line


def test_tau_table_rows_are_the_file_numbers(kather_results):
    spec = run_tables(summarise_run(kather_results))["transferability"]
    ds = kather_results
    for row, name in zip(spec.rows, ds[S.ESTIMATOR].values):
        assert row[1] == pytest.approx(float(ds["tau_accuracy"].sel(estimator=name)))
        assert row[3] == pytest.approx(float(ds["tau_gain"].sel(estimator=name)))
        assert row[4] == pytest.approx(tuple(ds["tau_gain_ci"].sel(estimator=name).values))
        assert "estimator values" in row[6]


def test_results_without_the_new_variables_still_render(kather_results, tmp_path):
    new = [v for v in kather_results.data_vars if str(v).startswith(NEW_PREFIXES)]
    old = kather_results.drop_vars(new).drop_dims(S.ESTIMATOR)
    save_results(old, tmp_path / "results.nc")
    files = write_report(load_results(tmp_path / "results.nc"), tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "descriptive, no test" in md and "Kendall" not in md
    assert not any("transferability" in f.name or "similarity_difference" in f.name for f in files)
    assert not (tmp_path / "report" / "tables" / "transferability.tex").exists()
