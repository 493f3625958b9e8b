"""Tests of the multiple-testing corrections."""

import numpy as np
import pytest

from layergain.errors import InputTypeError, InputValueError
from layergain.stats import adjust_pvalues


def _holm_by_hand(p):
    """Holm (1979): p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), written out."""
    m = p.size
    order = np.argsort(p)
    out = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def _bh_by_hand(p):
    """Benjamini & Hochberg (1995): p~_(i) = min_{j >= i} min(1, m p_(j) / j)."""
    m = p.size
    order = np.argsort(p)
    out = np.empty(m)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        idx = order[rank]
        running = min(running, m * p[idx] / (rank + 1))
        out[idx] = running
    return out


def test_holm_and_bh_reference_values():
    # Hand-computed: p = (0.01, 0.04, 0.03, 0.005), m = 4.
    # Holm: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06.
    # BH: 0.04*4/4 = 0.04, 0.03*4/3 = 0.04, 0.01*4/2 = 0.02, 0.005*4/1 = 0.02.
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjust_pvalues(p, "fdr_bh"), [0.02, 0.04, 0.04, 0.02])


def test_agrees_with_hand_formulas(seed):
    p = np.random.default_rng(seed).random(15) ** 3
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), _holm_by_hand(p), rtol=1e-12)
    np.testing.assert_allclose(adjust_pvalues(p, "fdr_bh"), _bh_by_hand(p), rtol=1e-12)


def test_nan_passes_through_and_is_not_counted(seed):
    p = np.random.default_rng(seed).random(6) / 10
    with_nan = np.r_[p[:3], np.nan, p[3:]]
    out = adjust_pvalues(with_nan, "holm")
    assert np.isnan(out[3])
    np.testing.assert_allclose(np.delete(out, 3), _holm_by_hand(p))
    assert np.all(np.isnan(adjust_pvalues([np.nan, np.nan])))


def test_axis_families():
    p = np.array([[0.01, 0.02, 0.03], [0.04, 0.05, 0.5]])
    rows = adjust_pvalues(p, "holm")  # default axis=-1: one family per row
    np.testing.assert_allclose(rows[0], _holm_by_hand(p[0]))
    np.testing.assert_allclose(rows[1], _holm_by_hand(p[1]))
    cols = adjust_pvalues(p, "holm", axis=0)
    np.testing.assert_allclose(cols[:, 2], _holm_by_hand(p[:, 2]))
    whole = adjust_pvalues(p, "holm", axis=None)
    np.testing.assert_allclose(whole.ravel(), _holm_by_hand(p.ravel()))
    np.testing.assert_allclose(adjust_pvalues(0.2), 0.2)


def test_bad_input():
    with pytest.raises(InputValueError, match=r"`pvalues` must lie in .*got 1 value\(s\) outside, e.g. 1.5"):
        adjust_pvalues([0.1, 1.5])
    with pytest.raises(InputValueError, match=r"outside, e.g. -0.1"):
        adjust_pvalues([-0.1])
    with pytest.raises(InputTypeError, match=r"`pvalues` must be numeric, got dtype"):
        adjust_pvalues(["a"])
    with pytest.raises(InputValueError, match=r"`method` must be one of 'holm', 'fdr_bh', got 'bonferroni'"):
        adjust_pvalues([0.1], "bonferroni")
    with pytest.raises(InputValueError, match=r"`axis` must be None or in \[-1, 0\], got 2"):
        adjust_pvalues([0.1], axis=2)
