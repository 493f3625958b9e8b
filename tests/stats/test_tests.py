"""Tests of the secondary per-layer tests: McNemar and the corrected resampled t-test."""

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import (
    corrected_resampled_ttest,
    mcnemar_tests,
    per_image_differences,
)

from .simulate import binomial_tolerance, simulate


def _data(rng, n_layers=3, n_seeds=2, n_repeats=2, n_images=12, p_pre=0.7, p_rand=0.5):
    pre = rng.random((n_layers, n_repeats, n_images)) < p_pre
    rand = rng.random((n_layers, n_seeds, n_repeats, n_images)) < p_rand
    return pre, rand


# --------------------------------------------------------------------------- differences


def test_per_image_differences_definition(seed):
    rng = np.random.default_rng(seed)
    pre, rand = _data(rng)
    d = per_image_differences(pre, rand)
    np.testing.assert_allclose(d, pre.mean(axis=1) - rand.mean(axis=(1, 2)), atol=1e-15)
    # Their mean is the gain.
    gain = pre.mean(axis=(1, 2)) - rand.mean(axis=(2, 3)).mean(axis=1)
    np.testing.assert_allclose(d.mean(axis=1), gain, atol=1e-15)


# --------------------------------------------------------------------------- sign flip


def test_mcnemar_counts_and_exact_binomial(seed):
    rng = np.random.default_rng(seed)
    pre, rand = _data(rng, n_images=40)
    res = mcnemar_tests(pre, rand)
    assert res.pvalue.shape == (3, 2, 2)
    for layer, s, r in itertools.product(range(3), range(2), range(2)):
        b = int(np.sum(pre[layer, r] & ~rand[layer, s, r]))
        c = int(np.sum(~pre[layer, r] & rand[layer, s, r]))
        assert (res.pre_only[layer, s, r], res.rand_only[layer, s, r]) == (b, c)
        # Exact McNemar = two-sided exact binomial test of b successes in b + c at 1/2.
        expected = 1.0 if b + c == 0 else sps.binomtest(b, b + c, 0.5).pvalue
        np.testing.assert_allclose(res.pvalue[layer, s, r], expected, rtol=1e-10)
        assert res.statistic[layer, s, r] == min(b, c)


def test_mcnemar_hand_computed():
    # b = 5 discordant for pretrained, c = 0: p = 2 * (1/2)^5 = 0.0625 (binomial formula).
    pre = np.r_[np.ones(5), np.zeros(3)].astype(bool)[None]
    rand = np.zeros((1, 1, 8), dtype=bool)
    res = mcnemar_tests(pre, rand)
    np.testing.assert_allclose(res.pvalue, [[[0.0625]]])


def test_mcnemar_not_liberal_under_null(seed):
    # 300 null simulations x 5 seeds x 2 repeats; the exact test is conservative: the mean
    # rejection rate must not exceed 0.05 + 4 binomial sds of 300 (observed 0.025-0.04).
    rng = np.random.default_rng(seed)
    rates = [
        np.mean(mcnemar_tests(d["correct_pre"], d["correct_rand"]).pvalue <= 0.05)
        for d in (simulate(rng, mu_pre=0.3, mu_rand=0.3) for _ in range(300))
    ]
    assert np.mean(rates) <= 0.05 + binomial_tolerance(0.05, 300)


# --------------------------------------------------------------------------- Nadeau-Bengio


def _slow_corrected_ttest(pre, rand, folds):
    """Loops over repeats and folds, straight from Nadeau & Bengio (2003), eq. for t."""
    xs, ratios = [], []
    n = pre.shape[-1]
    for r in range(folds.shape[0]):
        for k in np.unique(folds[r]):
            test = folds[r] == k
            acc_pre = pre[r, test].mean()
            acc_rand = np.mean([rand[s, r, test].mean() for s in range(rand.shape[0])])
            xs.append(acc_pre - acc_rand)
            ratios.append(test.sum() / (n - test.sum()))
    xs = np.array(xs)
    j = xs.size
    t = xs.mean() / np.sqrt((1 / j + np.mean(ratios)) * xs.var(ddof=1))
    return t, 2 * sps.t.sf(abs(t), j - 1)


def test_corrected_ttest_equals_slow_formula(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_layers=2, n_images=53, n_repeats=3, n_folds=4)  # unequal folds
    res = corrected_resampled_ttest(d["correct_pre"], d["correct_rand"], d["folds"])
    assert res.df == 11 and res.differences.shape == (2, 12)
    for layer in range(2):
        t, p = _slow_corrected_ttest(d["correct_pre"][layer], d["correct_rand"][layer], d["folds"])
        np.testing.assert_allclose([res.statistic[layer], res.pvalue[layer]], [t, p], rtol=1e-10)


def test_corrected_ttest_relation_to_scipy_ttest(seed):
    # Without the correction term the statistic is scipy's one-sample t of the differences;
    # the correction scales it by sqrt((1/J) / (1/J + n_test/n_train)).
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=100, n_repeats=2, n_folds=5)
    res = corrected_resampled_ttest(d["correct_pre"], d["correct_rand"], d["folds"], alternative="greater")
    naive = sps.ttest_1samp(res.differences[0], 0.0)
    j = res.differences.shape[1]
    np.testing.assert_allclose(res.test_train_ratio, 0.25)
    shrink = np.sqrt((1 / j) / (1 / j + 0.25))
    np.testing.assert_allclose(res.statistic[0], naive.statistic * shrink, rtol=1e-12)
    np.testing.assert_allclose(res.pvalue[0], sps.t.sf(res.statistic[0], j - 1), rtol=1e-12)


def test_corrected_ttest_constant_differences_give_nan():
    pre = np.ones((1, 2, 10), dtype=bool)
    rand = np.ones((1, 2, 2, 10), dtype=bool)
    folds = np.tile(np.arange(10) % 2, (2, 1))
    res = corrected_resampled_ttest(pre, rand, folds)
    assert np.isnan(res.statistic[0]) and np.isnan(res.pvalue[0])


def test_corrected_ttest_level_and_power(seed):
    # 300 null simulations with highly correlated repeats (5 repeats, sticky 0.9): rejection
    # must not exceed 0.05 + 4 binomial sds (observed 0.03; the test is conservative when
    # training sets hardly matter). Planted gain 0.13: power >= 0.8 over 100 (observed 0.97).
    rng = np.random.default_rng(seed)
    null = sum(
        corrected_resampled_ttest(d["correct_pre"], d["correct_rand"], d["folds"]).pvalue[0] <= 0.05
        for d in (simulate(rng, mu_pre=0.3, mu_rand=0.3, n_repeats=5, sticky=0.9) for _ in range(300))
    )
    assert null / 300 <= 0.05 + binomial_tolerance(0.05, 300)
    power = sum(
        corrected_resampled_ttest(d["correct_pre"], d["correct_rand"], d["folds"]).pvalue[0] <= 0.05
        for d in (simulate(rng, n_repeats=5, sticky=0.9) for _ in range(100))
    )
    assert power >= 80


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    rng = np.random.default_rng(0)
    pre, rand = _data(rng)
    with pytest.raises(InputValueError, match=r"must describe the same layers, repeats and images"):
        mcnemar_tests(pre, rand[:, :, :1])
    folds = np.tile(np.arange(12) % 3, (2, 1))
    with pytest.raises(InputValueError, match=r"`folds` must have shape \(n_repeats, n_images\) = \(2, 12\)"):
        corrected_resampled_ttest(pre, rand, folds[:1])
    with pytest.raises(NotEnoughDataError, match=r"`folds` has a single fold in repeat 1"):
        corrected_resampled_ttest(pre, rand, np.stack([folds[0], np.zeros(12, int)]))
    with pytest.raises(InputValueError, match=r"`folds` must hold integer fold indices"):
        corrected_resampled_ttest(pre, rand, folds + 0.5)
    with pytest.raises(InputValueError, match=r"`alternative` must be one of"):
        corrected_resampled_ttest(pre, rand, folds, alternative="two")
