"""Tests of the sweet spot."""

import numpy as np
import pytest
from scipy import stats as sps

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import adjust_pvalues, sweet_spot

from .simulate import binomial_tolerance, simulate


def test_exact_p_values_match_scipy_and_holm(seed):
    # 10 images: 2**10 sign vectors, enumerated. Each layer vs the best: scipy's paired
    # permutation test, one-sided "less", on per-image correctness.
    rng = np.random.default_rng(seed)
    pre = rng.random((3, 2, 10)) < np.array([0.4, 0.9, 0.6])[:, None, None]
    res = sweet_spot(pre, params_to_layer=[10.0, 200.0, 3000.0], n_resamples=5000)
    acc = pre.mean(axis=(1, 2))
    assert res.best_layer == int(np.argmax(acc)) and res.exact
    np.testing.assert_allclose(res.accuracy, acc)
    np.testing.assert_allclose(res.difference, acc - acc.max())
    x = pre.mean(axis=1)
    for layer in range(3):
        if layer == res.best_layer:
            assert np.isnan(res.pvalue[layer])
            continue
        ref = sps.permutation_test(
            (x[layer], x[res.best_layer]), lambda a, b: np.mean(a - b), permutation_type="samples",
            alternative="less", n_resamples=np.inf,
        )
        np.testing.assert_allclose(res.pvalue[layer], ref.pvalue, rtol=1e-12)
    np.testing.assert_allclose(res.pvalue_holm, adjust_pvalues(res.pvalue, "holm"))
    qualifies = np.flatnonzero((res.pvalue_holm > 0.05) | (np.arange(3) == res.best_layer))
    assert res.layer == qualifies[0]
    assert res.params_to_layer == [10.0, 200.0, 3000.0][res.layer]
    params = [10.0, 200.0, 3000.0]
    np.testing.assert_allclose(res.params_fraction, params[res.layer] / params[res.best_layer])


def test_picks_the_first_layer_as_good_as_the_best(seed):
    # Layers 0 and 1 clearly worse, 2-4 equal: the sweet spot is layer 2 in >= 80 of 100
    # simulations (observed 0.91; misses are layer 3 or 4 chosen as best with layer 2 just
    # failing, or layer 1 not detected).
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(100):
        d = simulate(rng, n_layers=5, mu_pre=[0.0, 0.2, 1.0, 1.0, 1.0])
        hits += sweet_spot(d["correct_pre"], n_resamples=499, seed=rng).layer == 2
    assert hits >= 80


def test_family_wise_error_under_equal_layers(seed):
    # 4 layers with equal accuracy: any layer other than 0 as sweet spot is a family-wise error.
    # 300 simulations; must not exceed 0.05 + 4 binomial sds (observed 0.03-0.05 for 3-10 layers).
    rng = np.random.default_rng(seed)
    errors = sum(
        sweet_spot(d["correct_pre"], n_resamples=499, seed=rng).layer != 0
        for d in (simulate(rng, n_layers=4, mu_pre=0.5) for _ in range(300))
    )
    assert errors / 300 <= 0.05 + binomial_tolerance(0.05, 300)


def test_ties_and_groups():
    pre = np.ones((3, 1, 12), dtype=bool)
    res = sweet_spot(pre, groups=np.arange(12) // 4)
    assert res.best_layer == 0 and res.layer == 0 and res.resampling_unit == "group"
    assert res.params_to_layer is None and res.params_fraction is None
    assert res.attrs()["sweet_spot_layer"] == 0


def test_bad_input():
    pre = np.ones((3, 1, 12), dtype=bool)
    with pytest.raises(InputValueError, match=r"`correct_pre` must have shape \(n_layers, n_repeats,"):
        sweet_spot(pre[0])
    with pytest.raises(NotEnoughDataError, match=r"`correct_pre` has 1 layer\(s\)"):
        sweet_spot(pre[:1])
    with pytest.raises(NotEnoughDataError, match=r"`correct_pre` has 1 image\(s\)"):
        sweet_spot(pre[..., :1])
    with pytest.raises(InputValueError, match=r"`params_to_layer` must have shape \(3,\)"):
        sweet_spot(pre, params_to_layer=[1, 2])
    with pytest.raises(InputValueError, match=r"`alpha` must lie in \(0, 1\), got 0.0"):
        sweet_spot(pre, alpha=0.0)
