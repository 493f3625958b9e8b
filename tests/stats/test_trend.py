"""Tests of the depth trend."""

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats import bootstrap_gain, depth_trend

from .simulate import binomial_tolerance, simulate, true_accuracies


def _boot(seed, n_layers=5, n_boot=200):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_layers=n_layers, mu_pre=np.linspace(1.2, 0.2, n_layers), n_images=120)
    return bootstrap_gain(d["correct_pre"], d["correct_rand"], d["labels"], n_boot=n_boot, seed=seed)


def test_slope_and_draws_are_ols(seed):
    boot = _boot(seed)
    depth = np.array([0.0, 0.2, 0.5, 0.7, 1.0])
    res = depth_trend(boot, depth, seed=seed)
    fit = sps.linregress(depth, boot.gain)
    np.testing.assert_allclose([res.slope, res.intercept], [fit.slope, fit.intercept], rtol=1e-10)
    # Slow and obvious: an OLS fit per bootstrap draw.
    slow = np.array([sps.linregress(depth, row).slope for row in boot.gain_draws])
    np.testing.assert_allclose(res.slope_draws, slow, rtol=1e-9, atol=1e-14)
    assert res.slope_ci[0] <= res.slope <= res.slope_ci[1]
    assert res.attrs()["bootstrap_interval"] == "bca"


def test_spearman_matches_scipy_and_exact_enumeration(seed):
    boot = _boot(seed)
    depth = np.linspace(0, 1, 5)
    res = depth_trend(boot, depth, seed=seed)
    ref = sps.spearmanr(depth, boot.gain)
    np.testing.assert_allclose(res.spearman_rho, ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(res.spearman_pvalue, ref.pvalue, rtol=1e-12)
    # 5 layers: all 120 orderings, two-sided p = share with |rho*| >= |rho|.
    orders = itertools.permutations(range(5))
    rhos = np.array([sps.spearmanr(depth, boot.gain[list(order)]).statistic for order in orders])
    expected = np.mean(np.abs(rhos) >= abs(ref.statistic) - 1e-12)
    np.testing.assert_allclose(res.spearman_pvalue_permutation, expected, rtol=1e-12)


def test_relative_gain_and_settings_override(seed):
    boot = _boot(seed)
    depth = np.linspace(0, 1, 5)
    res = depth_trend(boot, depth, statistic="relative_gain", method="percentile", confidence=0.9)
    fit = sps.linregress(np.linspace(0, 1, 5), boot.relative_gain)
    np.testing.assert_allclose(res.slope, fit.slope, rtol=1e-10)
    np.testing.assert_allclose(res.slope_ci, np.quantile(res.slope_draws, [0.05, 0.95]))
    assert res.method == "percentile" and res.confidence == 0.9


def test_slope_interval_covers_true_slope(seed):
    # 200 simulated image sets with 4 layers whose true gains fall with depth; the true slope is
    # the OLS slope of the true gains. B = 500, BCa; tolerance 4 binomial sds (+-0.062).
    # Observed while building: about 0.95.
    rng = np.random.default_rng(seed)
    depth = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    mu_pre = np.array([1.0, 0.9, 0.6, 0.4])
    acc_pre, acc_rand = true_accuracies(mu_pre, 0.3)
    true_slope = sps.linregress(depth, acc_pre - acc_rand).slope
    n_sim, hits = 200, 0
    for _ in range(n_sim):
        d = simulate(rng, n_layers=4, mu_pre=mu_pre, n_images=150)
        boot = bootstrap_gain(d["correct_pre"], d["correct_rand"], d["labels"], n_boot=500, seed=rng)
        res = depth_trend(boot, depth, n_resamples=1)
        hits += res.slope_ci[0] <= true_slope <= res.slope_ci[1]
    assert abs(hits / n_sim - 0.95) <= binomial_tolerance(0.95, n_sim)


def test_bad_input():
    boot = _boot(0)
    with pytest.raises(InputTypeError, match=r"`bootstrap` must be a GainBootstrap"):
        depth_trend({"gain": 1}, [0, 1])
    with pytest.raises(InputValueError, match=r"`relative_depth` must have shape \(5,\)"):
        depth_trend(boot, [0, 1])
    with pytest.raises(InputValueError, match=r"`relative_depth` is the same for every layer"):
        depth_trend(boot, np.full(5, 0.5))
    with pytest.raises(InputValueError, match=r"`relative_depth` contains NaN or infinite values"):
        depth_trend(boot, [0, 0.1, np.nan, 0.5, 1])
    with pytest.raises(InputValueError, match=r"`statistic` must be one of 'gain', 'relative_gain'"):
        depth_trend(boot, np.linspace(0, 1, 5), statistic="acc")
    with pytest.raises(NotEnoughDataError, match=r"A depth trend needs at least 3 layers, got 2"):
        depth_trend(_boot(0, n_layers=2), [0, 1])
    with pytest.raises(InputValueError, match=r"`confidence` must lie in \(0, 1\)"):
        depth_trend(boot, np.linspace(0, 1, 5), confidence=2)
