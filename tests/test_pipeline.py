"""End to end: the pipeline and the CLI on real images with the real weights (small subsets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from layergain.cli import main
from layergain.pipeline import RunConfig, run
from layergain.results.io import load_results
from tests.helpers import make_folder_set

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SMALL = dict(max_per_class=6, seeds=2, folds=3, image_size=64, draws=2000, similarity_resamples=50)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("run") / "out"
    return run(RunConfig(out=str(out), cache=cache, **SMALL))


def test_run_writes_results_report_and_figures(small_run):
    out = small_run.out
    for name in ("results.nc", "report.md", "report.html", "figures/accuracy_by_layer.png", "figures/accuracy_by_layer.pdf"):
        assert (out / name).is_file(), name
    assert not [p for p in out.parent.iterdir() if "staging" in p.name]  # staging folder removed


def test_results_round_trip_losslessly(small_run):
    loaded = load_results(small_run.out / "results.nc")
    expected = small_run.results.copy()
    from layergain.results.io import netcdf_safe_attrs

    expected.attrs = netcdf_safe_attrs(expected.attrs)
    for name in expected.variables:
        expected[name].attrs = netcdf_safe_attrs(expected[name].attrs)
    xr.testing.assert_identical(loaded, expected)


def test_numbers_are_consistent(small_run):
    ds = load_results(small_run.out)
    labels = ds["label"].values
    correct = ds["prediction"].values == labels
    acc = correct.mean(axis=(-2, -1))
    np.testing.assert_allclose(ds["accuracy"].values, acc)
    pre = ds["accuracy"].sel(init="pretrained")
    rand = ds["accuracy"].sel(init=ds["kind"] == "random").mean("init")
    np.testing.assert_allclose(ds["gain"].values, (pre - rand).values, atol=1e-12)
    np.testing.assert_allclose(ds["relative_gain"].values, ((pre - rand) / (1 - rand)).values, atol=1e-12)
    lo, hi = ds["gain_ci"].sel(bound="lower").values, ds["gain_ci"].sel(bound="upper").values
    assert np.all(lo <= hi)
    assert np.all(ds["gain_p_holm"].values >= ds["gain_p"].values - 1e-15)
    # folds are grouped by slide: no slide in two folds
    for g in np.unique(ds["group"].values):
        assert np.unique(ds["fold"].values[0][ds["group"].values == g]).size == 1


def test_attrs_record_how_the_run_was_made(small_run):
    a = load_results(small_run.out).attrs
    assert a["backbone"] == "efficientnet_lite0" and len(a["weights_sha256"]) == 64
    assert list(a["seeds"]) == [0, 1] and a["folds"] == 3 and a["n_draws"] == 2000
    assert a["data_card"] == "kather2016_sample" and "Kather" in a["data_card_summary"]
    assert json.loads(a["versions"])["torch"]
    assert a["created"].endswith("+00:00")


def test_same_seeds_give_identical_results(small_run, tmp_path, cache):
    again = run(RunConfig(out=str(tmp_path / "again"), cache=cache, **SMALL))
    a, b = load_results(small_run.out), load_results(again.out)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert (small_run.out / "report.md").read_text() == (again.out / "report.md").read_text()


def _cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--folds", "1"], "--folds: expected a number >= 2"),
        (["--seeds", "0"], "--seeds: expected a number >= 1"),
        (["--image-size", "-3"], "--image-size: expected a number >= 32"),
        (["--max-per-class", "2", "--folds", "5"], "fewer than the 5 folds"),
        (["--data", "/does/not/exist"], "data path does not exist"),
        (["--model", "nonet"], "unknown model 'nonet'"),
        (["--similarity-resamples", "1"], "use 2 or more, or 0 to leave the similarity inference out"),
    ],
)
def test_cli_user_errors_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    try:
        code, err = _cli(["run", "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet", *extra], capsys)
    except SystemExit as exc:  # argparse errors
        code, err = exc.code, capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and err[0].startswith("layergain: error:")
    assert not out.exists() or not any(out.iterdir())


def test_cli_output_path_is_a_file_or_unwritable(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, err = _cli(["run", "--out", str(target), "--quiet", "--max-per-class", "3", "--folds", "3"], capsys)
    assert code == 2 and "is a file" in err[0] and target.read_text() == "keep me"
    # /proc refuses new folders even to root: found before any work, one line
    for option, what in (("--out", "output path"), ("--cache", "feature cache")):
        code, err = _cli(["run", option, "/proc/layergain-test/x", "--quiet", "--max-per-class", "3", "--folds", "3"], capsys)
        assert code == 2 and len(err) == 1 and f"{what} /proc/layergain-test/x is not writable" in err[0]
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = _cli(["run", "--out", str(locked / "out"), "--quiet"], capsys)
        assert code == 2 and "not writable" in err[0]


def test_cli_single_class_set(tmp_path, capsys):
    root = make_folder_set(tmp_path / "one", per_class=4, classes=1)
    code, err = _cli(["run", "--data", str(root), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert code == 2 and "minimum of 2 is required" in err[0]
    assert not (tmp_path / "o").exists()


def test_console_script_lists_layers():
    exe = Path(sys.executable).parent / "layergain"
    res = subprocess.run([str(exe), "layers"], capture_output=True, text=True, check=True)
    lines = res.stdout.strip().splitlines()
    assert lines[1].split()[:2] == ["stem", "bn1"] and lines[-1].split()[0] == "head" and len(lines) == 19


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "lc25000_lung").is_dir(), reason="shared image sets not present")
def test_cli_on_a_shared_set(tmp_path, capsys, cache):
    out = tmp_path / "lung"
    code, _ = _cli(
        ["run", "--data", str(SHARED / "lc25000_lung"), "--max-per-class", "10", "--seeds", "2", "--folds", "3",
         "--image-size", "64", "--draws", "2000", "--out", str(out), "--cache", cache, "--quiet"],
        capsys,
    )
    assert code == 0
    ds = load_results(out)
    assert ds.attrs["n_images"] == 30 and list(ds["class"].values) == ["lung_aca", "lung_n", "lung_scc"]
    gain = ds["accuracy"].sel(init="pretrained") - ds["accuracy"].sel(init=["random-0", "random-1"]).mean("init")
    np.testing.assert_allclose(ds["gain"].values, gain.values, atol=1e-12)


def test_compare_a_grouped_set_with_single_slide_classes(small_run, tmp_path, cache):
    # The bundled sample is grouped by slide and some of its classes lie on one slide: slides are the
    # units of each set (never stratified by class), and the comparison says how many.
    from layergain.pipeline import compare

    other = run(RunConfig(out=str(tmp_path / "other"), cache=cache, **{**SMALL, "max_per_class": 7}))
    other.results.attrs["dataset"] = "kather_other"
    from layergain.results.io import save_results

    save_results(other.results, other.out / "results.nc")
    out = compare([small_run.out, other.out], tmp_path / "cmp", draws=2000)
    ds = load_results(out.out / "comparison.nc")
    assert json.loads(ds.attrs["resampling_unit"]) == {"kather2016_sample": "group", "kather_other": "group"}
    slides = int(np.unique(small_run.results["group"].values).size)
    assert json.loads(ds.attrs["n_units"])["kather2016_sample"] == slides
    assert list(ds["dataset"].values) == ["kather2016_sample", "kather_other"]
    assert (out.out / "report.html").is_file() and (out.out / "report.md").is_file()
    assert "nan_reason" in ds["svcca"].attrs


def test_similarity_resamples_0_leaves_only_the_inference_out(small_run, tmp_path, cache):
    # The inference's cost grows with the cube of the image count (`layergain plan`: 21 h for 5000
    # images); 0 leaves it out. Everything else is the small run's, bit for bit.
    bare = run(RunConfig(out=str(tmp_path / "bare"), cache=cache, **{**SMALL, "similarity_resamples": 0}))
    full, ds = load_results(small_run.out), load_results(bare.out)
    # what goes: the four measures of the inference, their differences and their point values
    # (they are computed only there); the CKA family of the similarity stage stays
    measures = ("cka_debiased", "mutual_knn", "angular_shape", "rsa")
    suffixes = ("_difference", "_difference_p", "_difference_ci", "_difference_se_images", "_difference_se_seeds",
                "_difference_df", "_pretrained_random", "_random_random")
    inference = {m + x for m in measures for x in suffixes}
    assert set(ds.data_vars) == set(full.data_vars) - inference and inference <= set(full.data_vars)
    assert {"cka_linear", "cka_debiased", "svcca", "pwcca"} <= {str(v) for v in ds.data_vars}
    for name in ds.data_vars:
        xr.testing.assert_identical(ds[name].drop_attrs(), full[name].drop_attrs())
    assert "similarity_inference" not in json.loads(ds.attrs["timings_s"])
    assert "similarity_inference" in json.loads(full.attrs["timings_s"])
    report = (bare.out / "report.md").read_text()
    assert "Similarity with inference" not in report
    assert "Similarity with inference" in (small_run.out / "report.md").read_text()


@pytest.mark.parametrize("layers", [["blocks.3.0"], ["blocks.2.0", "blocks.4.0"]])
@pytest.mark.slow
def test_runs_with_one_or_two_layers(tmp_path, cache, layers):
    # A depth trend needs 3 layers and a sweet spot 2: fewer are stored as NaN with the reason, not an error.
    out = run(RunConfig(out=str(tmp_path / "o"), cache=cache, layers=layers, **SMALL))
    ds = load_results(out.out)
    assert list(ds["layer"].values) == layers
    assert np.isnan(float(ds["gain_trend_slope"])) and "at least 3 layers" in ds["gain_trend_slope"].attrs["nan_reason"]
    spot = str(ds["sweet_spot"].values)
    assert spot in layers or (spot == "" and "within" in ds["sweet_spot"].attrs["undetermined"])
    report = (out.out / "report.md").read_text()
    assert "Depth trend not computed" in report


def test_restatistics_from_the_file_equals_the_run(small_run, tmp_path):
    # `layergain stats` recomputes the statistics from the stored predictions with the run's seed:
    # the same numbers as the run itself stored, and the probes/similarity variables untouched.
    from layergain.pipeline import restatistics

    out = restatistics(small_run.out / "results.nc", tmp_path / "again")
    a, b = load_results(small_run.out), load_results(out.out)
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        xr.testing.assert_identical(a[name].drop_attrs(), b[name].drop_attrs())
    assert b.attrs["statistics_recomputed"].startswith("from the stored predictions")
    assert (out.out / "report.md").is_file()
    changed = restatistics(small_run.out / "results.nc", tmp_path / "wider", margin=0.2, target="fixed")
    assert float(changed.results.attrs["margin"]) == 0.2 and changed.results.attrs["statistics_target"] == "fixed"
    assert not np.allclose(changed.results["gain_se"].values, a["gain_se"].values)
