"""Tests of the comparison of image sets."""

import numpy as np
import pytest

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats import ProbeOutcomes, compare_sets, gain_statistics, interaction_test
from layergain.stats import components as C
from layergain.stats._inputs import check_outcomes

from .simulate import simulate


def _set(d, name=None):
    return ProbeOutcomes(d["correct_pre"], d["correct_rand"], d["labels"], d["groups"], name=name)


def _sets(rng, n_layers=3, params=({}, {}), **common):
    return [_set(simulate(rng, n_layers=n_layers, **common, **p), name=f"s{k}") for k, p in enumerate(params)]


def test_pieces_agree_with_the_single_set_statistics(seed):
    rng = np.random.default_rng(seed)
    sets = _sets(rng, n_layers=4, n_images=150, n_seeds=3, params=({"mu_pre": 0.9}, {"mu_pre": 0.3}, {}))
    depth = np.linspace(0, 1, 4)
    res = compare_sets(sets, depth, n_draws=2000, seed=seed)
    for k, s in enumerate(sets):
        alone = gain_statistics(s.correct_pre, s.correct_rand, s.labels, n_draws=2000, seed=seed)
        np.testing.assert_allclose(res.gain[k], alone["gain"].values)
        np.testing.assert_allclose(res.slope[k], float(alone["gain_trend_slope"]), rtol=1e-10)
    for p, (i, j) in enumerate(res.pairs):
        np.testing.assert_allclose(res.difference[p], res.gain[i] - res.gain[j])
    np.testing.assert_array_equal(res.significant, (res.gain_pvalue_maxt <= 0.05) & (res.gain > 0))
    np.testing.assert_array_equal(res.keeps_gain, res.significant[:, res.deep_layers].all(axis=1))
    assert np.all(res.gain_pvalue_maxt >= res.gain_pvalue)
    assert np.all(res.difference_pvalue_maxt >= res.difference_pvalue)


def test_a_set_in_the_joint_design_has_its_own_standard_error(seed):
    # Other sets add columns, not variance: a set's gain has the same variance parts alone and jointly.
    rng = np.random.default_rng(seed)
    d1 = simulate(rng, n_images=80, n_layers=2, n_seeds=3, seed_sd=0.3)
    d2 = simulate(rng, n_images=90, n_layers=2, n_seeds=3, seed_sd=0.3)
    parts = [(check_outcomes(d["correct_pre"], d["correct_rand"]), np.asarray(d["labels"]), None) for d in (d1, d2)]
    joint = C.design(parts)
    alpha = np.zeros((2, 2, 2))
    alpha[0, 0, 0] = alpha[1, 0, 1] = 1.0
    c = C.evaluate(joint, alpha, -alpha, pretrained_spread=True)
    alone = C.evaluate(C.design(parts[:1]), alpha[:, :1], -alpha[:, :1], pretrained_spread=True)
    np.testing.assert_allclose(c.se, alone.se, rtol=1e-12)


def test_interaction_of_two_sets_is_their_pairwise_difference_test(seed):
    rng = np.random.default_rng(seed)
    sets = _sets(rng, n_layers=3, n_images=120, n_seeds=3, params=({"mu_pre": 1.0}, {"mu_pre": 0.6}))
    res = compare_sets(sets, [0, 0.5, 1], n_draws=20000, seed=seed)
    # W = d^2 / var(d) has the reference of (D / sd)^2: the same test, read off other draws
    np.testing.assert_allclose(res.interaction.pvalue, res.difference_pvalue[0], atol=0.02)
    assert res.interaction.df == 1


def test_interaction_statistic_is_the_wald_form(seed):
    rng = np.random.default_rng(seed)
    sets = _sets(rng, n_layers=1, n_images=100, n_seeds=3, params=({}, {"mu_pre": 0.4}, {"mu_pre": 1.2}))
    res = interaction_test(sets, n_draws=2000, seed=seed)
    parts = [(check_outcomes(s.correct_pre, s.correct_rand), np.asarray(s.labels), None) for s in sets]
    model = C.design(parts)
    alpha = np.zeros((2, 3, 1))
    alpha[0, 1, 0], alpha[0, 0, 0] = 1.0, -1.0
    alpha[1, 2, 0], alpha[1, 0, 0] = 1.0, -1.0
    c = C.evaluate(model, alpha, -alpha, pretrained_spread=True)
    cov = C.covariance(c)
    ref = c.estimate @ np.linalg.inv(cov) @ c.estimate
    assert res.statistic[0] == pytest.approx(ref, rel=1e-8)
    assert res.df == 2 and 0 < res.pvalue[0] <= 1


def test_an_uncalibrated_layer_reports_why():
    rng = np.random.default_rng(0)
    sets = _sets(rng, n_layers=2, n_images=40, n_seeds=1)
    res = interaction_test(sets, n_draws=1000, seed=0)
    assert np.isnan(res.pvalue).all() and all("at least 2 seeds" in f for f in res.failure)


def test_bad_input():
    rng = np.random.default_rng(0)
    a, b = _sets(rng, n_layers=3, n_images=30)
    with pytest.raises(NotEnoughDataError, match=r"Comparing image sets needs at least 2 sets, got 1"):
        compare_sets([a], [0, 0.5, 1])
    with pytest.raises(InputTypeError, match=r"`sets` must be a sequence of ProbeOutcomes"):
        compare_sets(a, [0, 0.5, 1])
    with pytest.raises(InputTypeError, match=r"`sets\[1\]` must be a ProbeOutcomes, got dict"):
        compare_sets([a, {}], [0, 0.5, 1])
    fewer_layers = ProbeOutcomes(b.correct_pre[:2], b.correct_rand[:2], b.labels, name="c")
    with pytest.raises(InputValueError, match=r"same layers and random seeds.*\(3, 5\), \(2, 5\)"):
        compare_sets([a, fewer_layers], [0, 0.5, 1])
    fewer_seeds = ProbeOutcomes(b.correct_pre, b.correct_rand[:, :2], b.labels, name="c")
    with pytest.raises(InputValueError, match=r"same layers and random seeds"):
        interaction_test([a, fewer_seeds])
    with pytest.raises(InputValueError, match=r"Image set names must be distinct, got \['s0', 's0'\]"):
        compare_sets([a, a], [0, 0.5, 1])
    no_deep = r"No layer has relative depth >= deep_min_relative_depth = 0.9"
    with pytest.raises(InputValueError, match=no_deep):
        compare_sets([a, b], [0, 0.4, 0.8], deep_min_relative_depth=0.9)
    with pytest.raises(InputValueError, match=r"`relative_depth` must have shape \(3,\)"):
        compare_sets([a, b], [0, 1])
    with pytest.raises(InputValueError, match=r"`n_draws` must be >= 1000"):
        compare_sets([a, b], [0, 0.5, 1], n_draws=10)
    with pytest.raises(InputValueError, match=r"`alpha` must lie in \(0, 1\)"):
        compare_sets([a, b], [0, 0.5, 1], alpha=1)
