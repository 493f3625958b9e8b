"""Tests of the effect sizes."""

import numpy as np
import pytest

from layergain.errors import InputTypeError, InputValueError
from layergain.stats import cohen_h, gain_effect_sizes


def test_cohen_h_reference_values():
    # h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)) (Cohen 1988, ch. 6), computed here by hand:
    # p1 = 0.5, p2 = 0.4: 2 (pi/4 - asin(sqrt(0.4))) = 2 (0.785398 - 0.684719) = 0.201358.
    np.testing.assert_allclose(cohen_h(0.5, 0.4), 0.20135792079033088, rtol=1e-12)
    np.testing.assert_allclose(cohen_h(1.0, 0.0), np.pi)
    h = 2 * np.arcsin(np.sqrt(0.3)) - 2 * np.arcsin(np.sqrt(0.9))
    np.testing.assert_allclose(cohen_h([0.3, 0.9], 0.9), [h, 0.0])


def test_gain_effect_sizes_match_formulas(seed):
    rng = np.random.default_rng(seed)
    pre = rng.random((2, 3, 60)) < 0.75
    rand = rng.random((2, 4, 3, 60)) < 0.55
    res = gain_effect_sizes(pre, rand)
    x = pre.mean(axis=1)
    y = rand.mean(axis=(1, 2))
    d = x - y
    np.testing.assert_allclose(res.cohen_dz, d.mean(axis=1) / d.std(axis=1, ddof=1), rtol=1e-12)
    dav = (x.mean(axis=1) - y.mean(axis=1)) / np.sqrt((x.var(axis=1, ddof=1) + y.var(axis=1, ddof=1)) / 2)
    np.testing.assert_allclose(res.cohen_dav, dav, rtol=1e-12)
    h = 2 * np.arcsin(np.sqrt(x.mean(1))) - 2 * np.arcsin(np.sqrt(y.mean(1)))
    np.testing.assert_allclose(res.cohen_h, h, rtol=1e-12)


def test_effect_sizes_degenerate():
    pre = np.ones((1, 1, 10), dtype=bool)
    same = gain_effect_sizes(pre, np.ones((1, 2, 1, 10), dtype=bool))
    assert same.cohen_h[0] == 0.0 and np.isnan(same.cohen_dz[0])
    better = gain_effect_sizes(pre, np.zeros((1, 2, 1, 10), dtype=bool))
    assert better.cohen_dz[0] == np.inf


def test_bad_input():
    with pytest.raises(InputValueError, match=r"`p1` must hold proportions in \[0, 1\]"):
        cohen_h(1.2, 0.5)
    with pytest.raises(InputValueError, match=r"`p2` must hold proportions in \[0, 1\] without NaN"):
        cohen_h(0.5, np.nan)
    with pytest.raises(InputTypeError, match=r"`p1` must be numeric"):
        cohen_h("a", 0.5)
    with pytest.raises(InputValueError, match=r"`correct_rand` must have shape \(n_seeds, n_repeats,"):
        gain_effect_sizes(np.ones((2, 5), bool), np.ones((2, 5), bool))
