"""bootstrap_cka: duplicates never pair with themselves; the CI of independent features covers 0."""

from __future__ import annotations

import numpy as np
import pytest

from layergain import schema as S
from layergain.errors import InputValueError, NotEnoughDataError
from layergain.similarity import bootstrap_cka, debiased_cka, linear_cka
from layergain.similarity.bootstrap import _draw_weights, _WeightedGrams

from . import reference as ref


def _dependent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 5)) + 2
    return x, x[:, :3] @ rng.standard_normal((3, 4)) + rng.standard_normal((n, 4))


def test_weighted_estimator_matches_the_distinct_tuple_u_statistic(seed: int) -> None:
    """With multiplicities w, the fast formula equals the U-statistic over distinct images."""
    rng = np.random.default_rng(seed)
    x, y = _dependent(rng, 8)
    w = rng.integers(0, 3, size=8).astype(float)
    w[:4] = np.maximum(w[:4], 1)  # at least 4 distinct images
    k, ell = x @ x.T, y @ y.T
    got = _WeightedGrams(x, y).unbiased(w[None, :], binary=False)
    for value, (a, b) in zip(got, [(k, ell), (k, k), (ell, ell)]):
        assert value[0] == pytest.approx(ref.hsic_u_statistic(a, b, w), rel=1e-9, abs=1e-12)


def test_unit_weights_give_the_full_sample_estimate(seed: int) -> None:
    x, y = _dependent(np.random.default_rng(seed), 50)
    draws = bootstrap_cka(x, y, n_boot=3, seed=seed)
    assert draws.attrs["estimate"] == pytest.approx(debiased_cka(x, y), rel=1e-10)


@pytest.mark.parametrize(("kind", "fn"), [("debiased", debiased_cka), ("linear", linear_cka)])
def test_subsample_draws_equal_the_estimator_on_the_subsample(seed: int, kind: str, fn) -> None:
    x, y = _dependent(np.random.default_rng(seed), 40)
    draws = bootstrap_cka(x, y, kind=kind, n_boot=6, seed=seed, method="subsample", subsample_size=15)
    weights = _draw_weights(np.random.default_rng(seed), 40, 6, "subsample", 15)
    expected = [fn(x[w > 0], y[w > 0]) for w in weights]
    np.testing.assert_allclose(draws.values, expected, rtol=1e-9)
    assert (weights.sum(axis=1) == 15).all() and weights.max() == 1


def test_with_replacement_draws_match_the_explicit_resample(seed: int) -> None:
    """Each draw equals the distinct-tuple U-statistic computed on the resample's indices."""
    rng = np.random.default_rng(seed)
    x, y = _dependent(rng, 9)
    draws = bootstrap_cka(x, y, n_boot=2, seed=seed)
    weights = _draw_weights(np.random.default_rng(seed), 9, 2, "exclude-duplicates", 9)
    assert (weights.sum(axis=1) == 9).all()
    k, ell = (x - x.mean(0)) @ (x - x.mean(0)).T, (y - y.mean(0)) @ (y - y.mean(0)).T
    h = ref.hsic_u_statistic
    for draw, w in zip(draws.values, weights):
        hx, hy = h(k, k, w), h(ell, ell, w)
        if hx > 0 and hy > 0:
            assert draw == pytest.approx(h(k, ell, w) / np.sqrt(hx * hy), rel=1e-8)
        else:  # undefined for this resample: NaN, counted in attrs
            assert np.isnan(draw) and draws.attrs["n_undefined"] >= 1


def test_ci_of_independent_features_covers_zero_and_naive_bootstrap_is_inflated(seed: int) -> None:
    """A resample must not pair an image with its own copy (layergain.similarity.bootstrap).

    Naively recomputing debiased CKA on a with-replacement resample treats each copy pair as a
    perfectly dependent pair of images, so for independent features its draws sit well above 0
    and the interval misses 0; both remedies keep the interval around 0.
    """
    rng = np.random.default_rng(seed)
    n = 200
    x, y = rng.standard_normal((n, 50)), rng.standard_normal((n, 50))
    for method in ("exclude-duplicates", "subsample"):
        draws = bootstrap_cka(x, y, n_boot=300, seed=seed, method=method)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo < 0 < hi, method
    idx = np.random.default_rng(seed).integers(0, n, size=(100, n))
    naive = np.array([debiased_cka(x[i], y[i]) for i in idx])
    assert np.quantile(naive, 0.025) > 0.05  # inflated: the naive interval excludes 0
    assert np.median(naive) > 5 * abs(debiased_cka(x, y))


def test_dependent_features_interval_contains_the_estimate(seed: int) -> None:
    x, y = _dependent(np.random.default_rng(seed), 150)
    draws = bootstrap_cka(x, y, n_boot=200, seed=seed)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert lo < draws.attrs["estimate"] < hi
    assert lo > 0.3


def test_reproducible_and_labelled(seed: int) -> None:
    x, y = _dependent(np.random.default_rng(seed), 30)
    a = bootstrap_cka(x, y, n_boot=5, seed=seed)
    b = bootstrap_cka(x, y, n_boot=5, seed=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.values, b.values)
    assert a.dims == (S.BOOT,) and a.attrs["seed"] == seed and a.attrs["method"] == "exclude-duplicates"
    assert "seed" not in b.attrs and a.attrs["n_undefined"] == 0
    c = bootstrap_cka(x, y, n_boot=5, seed=seed, method="subsample")
    assert c.attrs["subsample_size"] == 15


def test_float32_input(seed: int) -> None:
    x, y = _dependent(np.random.default_rng(seed), 100)
    a = bootstrap_cka(x, y, n_boot=20, seed=seed)
    b = bootstrap_cka(x.astype(np.float32), y.astype(np.float32), n_boot=20, seed=seed)
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)


def test_errors() -> None:
    x, y = _dependent(np.random.default_rng(0), 20)
    with pytest.raises(InputValueError, match="copies cannot be left out.*kind='debiased', or method='subsample'"):
        bootstrap_cka(x, y, kind="linear")
    with pytest.raises(InputValueError, match="`method` must be one of 'exclude-duplicates', 'subsample'"):
        bootstrap_cka(x, y, method="naive")
    with pytest.raises(InputValueError, match="`n_boot` must be >= 1"):
        bootstrap_cka(x, y, n_boot=0)
    with pytest.raises(InputValueError, match="`subsample_size` must be smaller than the number of images"):
        bootstrap_cka(x, y, method="subsample", subsample_size=20)
    with pytest.raises(InputValueError, match="`subsample_size` must be >= 4"):
        bootstrap_cka(x, y, method="subsample", subsample_size=3)
    with pytest.raises(NotEnoughDataError, match="at least 4 images"):
        bootstrap_cka(x[:3], y[:3])
    with pytest.raises(InputValueError, match="same number of images"):
        bootstrap_cka(x, y[:-1])
