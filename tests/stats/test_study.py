"""Tests of gain_statistics: the statistics variables of a run, from correctness arrays."""

import json

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import gain_statistics, mcnemar_tests

from .simulate import simulate


def _stats(d, **kw):
    kw.setdefault("n_draws", 2000)
    return gain_statistics(d["correct_pre"], d["correct_rand"], d["labels"], d["groups"], d["folds"], **kw)


def test_estimates_and_secondary_columns(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=120, n_layers=5, n_seeds=3, mu_pre=np.linspace(0, 1, 5), mu_rand=0.2)
    names = [f"l{i}" for i in range(5)]
    ds = _stats(d, layers=names, seed=seed)
    pre, rand = d["correct_pre"], d["correct_rand"]
    acc_pre = pre.mean(axis=(1, 2))
    acc_rand = rand.mean(axis=(2, 3)).mean(axis=1)
    assert list(ds["layer"].values) == names and list(ds["bound"].values) == ["lower", "upper"]
    np.testing.assert_allclose(ds["accuracy_pretrained"], acc_pre)
    np.testing.assert_allclose(ds["accuracy_random_mean"], acc_rand)
    np.testing.assert_allclose(ds["gain"], acc_pre - acc_rand)
    np.testing.assert_allclose(ds["relative_gain"], (acc_pre - acc_rand) / (1 - acc_rand))
    p = ds["gain_p"].values
    np.testing.assert_allclose(ds["gain_p_holm"], multipletests(p, method="holm")[1])
    np.testing.assert_allclose(ds["gain_p_bh"], multipletests(p, method="fdr_bh")[1])
    assert np.all(ds["gain_p_maxt"].values >= p)
    np.testing.assert_allclose(ds["mcnemar_p"].transpose("layer", "init", "repeat"),
                               mcnemar_tests(pre, rand).pvalue)
    np.testing.assert_allclose(ds["gain_se"] ** 2, ds["gain_var_images"] + ds["gain_var_seeds"])
    ci, band = ds["gain_ci"].values, ds["gain_band"].values
    assert np.all(ci[:, 0] <= ds["gain"].values) and np.all(ds["gain"].values <= ci[:, 1])
    assert np.all(band[:, 0] <= ci[:, 0] + 1e-12) and np.all(band[:, 1] >= ci[:, 1] - 1e-12)
    np.testing.assert_array_equal(ds["significant"], (ds["gain_p_maxt"] <= 0.05) & (ds["gain"] > 0))
    rel, rel_ci = ds["relative_gain"].values, ds["relative_gain_ci"].values
    np.testing.assert_allclose(rel_ci.mean(axis=1), rel)  # centred on the ratio, not its linearisation
    assert np.all(rel_ci[:, 1] <= 1.0)


def test_intervals_stay_where_the_quantities_can_be(seed):
    # 2 seeds with a large spread: the pivot's 1-df tail reaches past [0, 1]; the intervals are cut there
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=40, n_layers=3, n_seeds=2, seed_sd=1.5, mu_pre=2.0, mu_rand=0.0)
    ds = _stats(d, seed=seed)
    for name in ("accuracy_pretrained_ci", "accuracy_random_mean_ci"):
        assert np.all((ds[name].values >= 0) & (ds[name].values <= 1))
    for name in ("gain_ci", "gain_band"):
        assert np.all(np.abs(ds[name].values) <= 1)


def test_trend_is_the_ols_slope_of_the_gains(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=150, n_layers=6, n_seeds=3, mu_pre=np.linspace(-0.5, 1.5, 6))
    depth = np.array([0.0, 0.1, 0.3, 0.5, 0.8, 1.0])
    ds = _stats(d, relative_depth=depth, seed=seed)
    fit = sps.linregress(depth, ds["gain"].values)
    assert float(ds["gain_trend_slope"]) == pytest.approx(fit.slope, rel=1e-10)
    assert float(ds["gain_trend_spearman_rho"]) == pytest.approx(sps.spearmanr(depth, ds["gain"]).statistic)
    lo, hi = ds["gain_trend_slope_ci"].values
    assert lo < fit.slope < hi
    assert (float(ds["gain_trend_slope_p"]) < 0.05) == (lo > 0 or hi < 0)


def test_one_seed_gives_nan_with_the_reason(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=60, n_layers=3, n_seeds=1)
    ds = _stats(d, seed=seed)
    assert np.isnan(ds["gain_p"]).all() and np.isnan(ds["gain_ci"]).all()
    reasons = ds["gain_p"].attrs["nan_reason"]
    assert set(reasons) == {"0", "1", "2"} and "at least 2 seeds" in reasons["0"]
    assert np.isfinite(ds["accuracy_pretrained_ci"]).all()  # the pretrained accuracy needs no seeds


def test_few_layers_have_no_trend_and_one_layer_no_sweet_spot():
    rng = np.random.default_rng(0)
    d = simulate(rng, n_images=60, n_layers=2, n_seeds=2)
    ds = _stats(d, seed=0)
    assert np.isnan(float(ds["gain_trend_slope"]))
    assert "at least 3 layers" in ds["gain_trend_slope"].attrs["nan_reason"]["all layers"]
    one = simulate(rng, n_images=60, n_layers=1, n_seeds=2)
    ds1 = _stats(one, seed=0)
    assert str(ds1["sweet_spot"].values) == "0" and str(ds1["best_layer"].values) == "0"


def test_same_seed_same_numbers_and_targets_differ_where_seeds_spread(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=200, n_layers=3, n_seeds=4, seed_sd=0.4)
    a, b = _stats(d, seed=1), _stats(d, seed=1)
    for name in ("gain_p", "gain_ci", "gain_p_maxt", "gain_band"):
        np.testing.assert_array_equal(a[name], b[name])
    fixed = _stats(d, seed=1, pretrained="fixed")
    # the pretrained network counted as a draw adds its own spread: never narrower
    assert np.all(fixed["gain_se"].values <= a["gain_se"].values + 1e-15)
    assert a.attrs["statistics_target"] != fixed.attrs["statistics_target"]


def test_roundtrip_of_attrs_through_netcdf(tmp_path):
    from layergain.results.io import decode_attr, load_results, save_results

    rng = np.random.default_rng(0)
    d = simulate(rng, n_images=60, n_layers=2, n_seeds=1)
    ds = _stats(d, seed=0)
    assert isinstance(ds["gain_p"].attrs["nan_reason"], dict)  # Python values until saved
    back = load_results(save_results(ds, tmp_path / "s.nc"))
    for name in ("gain_p", "gain_trend_slope"):
        assert decode_attr(back[name].attrs["nan_reason"]) == ds[name].attrs["nan_reason"]
    assert back["gain_p"].attrs["nan_reason"] == json.dumps(ds["gain_p"].attrs["nan_reason"], sort_keys=True)


def test_bad_input():
    rng = np.random.default_rng(0)
    d = simulate(rng, n_images=30, n_layers=2, n_seeds=2)
    with pytest.raises(InputValueError, match=r"`margin` must lie in \(0, 1\)"):
        _stats(d, margin=2)
    with pytest.raises(InputValueError, match=r"`pretrained` must be one of 'draw', 'fixed'"):
        _stats(d, pretrained="both")
    with pytest.raises(InputValueError, match=r"`n_draws` must be >= 1000"):
        _stats(d, n_draws=10)
    with pytest.raises(InputValueError, match=r"`layers` must name the 2 layers, got 1 names"):
        _stats(d, layers=["a"])
    with pytest.raises(InputValueError, match=r"`groups` must have shape \(n_images,\) = \(30,\)"):
        gain_statistics(d["correct_pre"], d["correct_rand"], d["labels"], np.arange(5))
    with pytest.raises(NotEnoughDataError, match=r"`labels` has a single class"):
        gain_statistics(d["correct_pre"], d["correct_rand"], np.zeros(30))
