"""Similarity with inference: the difference, its NaN cases, and its calibration by simulation.

Calibration scenario (``simulate``): n = 60 images with latent z ~ N(0, I_6); a network with
weights (A, c) gives features tanh(2 z A + c) of 12 units, A ~ N(0, 1/6), c ~ N(0, 0.25). The
"pretrained" network is one fixed draw with its units rescaled (0.3 to 2), the same in every
replicate; each replicate draws new images and S new random networks. The target is theta_P,
this pretrained network's expected difference, estimated by the mean of D over 1000 further
replicates (Monte-Carlo SE below 3 % of D's sd). Nominal level 95 % (two-sided interval) and 5 %
(one-sided test of the true value). Measured by bench-like runs of this simulation (400
replicates, 100 resamples, debiased CKA): coverage 0.975 (S = 2), 0.990 (S = 3), 0.985 (S = 5),
MC SE 0.008, 0.005, 0.006; one-sided size 0.022, 0.015, 0.018 (SE 0.007); mutual k-NN, S = 3:
0.990 (0.006). The tests below rerun smaller versions and require coverage within 3 MC SE of
95 % or above.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from layergain import schema as S
from layergain.errors import InputValueError
from layergain.similarity.inference import (
    _measure,
    _table,
    _contrast,
    similarity_difference,
    study_similarity_inference,
)
from layergain.similarity.measures import mutual_knn_alignment

Q, P = 6, 12


def _net(rng: np.random.Generator):
    return rng.standard_normal((Q, P)) / np.sqrt(Q), rng.standard_normal(P) * 0.5


def _features(z: np.ndarray, w) -> np.ndarray:
    return np.tanh(z @ w[0] * 2 + w[1])


def simulate(n_seeds: int, *, measure: str, replicates: int, n_boot: int, seed: int, n_truth: int = 1000):
    """Coverage and one-sided size of the true theta_P, with their Monte-Carlo SE."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    w0 = _net(np.random.default_rng(12345))
    pre = (w0[0] * np.linspace(0.3, 2, P), w0[1])
    m = _measure(measure, 10)
    truth = []
    for _ in range(n_truth):
        z = rng.standard_normal((60, Q))
        xs = [_features(z, pre)] + [_features(z, _net(rng)) for _ in range(n_seeds)]
        truth.append(_contrast(_table([m.prepare(x) for x in xs], m), np.arange(1, n_seeds + 1)))
    theta = float(np.mean(truth))
    cover, reject = [], []
    for _ in range(replicates):
        z = rng.standard_normal((60, Q))
        xs = [_features(z, pre)] + [_features(z, _net(rng)) for _ in range(n_seeds)]
        res = similarity_difference(xs, measure=measure, n_boot=n_boot, seed=rng)
        cover.append(res.lower <= theta <= res.upper)
        # The test at the true value: p of (D - theta) on the same variance parts.
        from layergain.similarity.inference import _p_lower

        se = np.hypot(res.se_images, res.se_seeds)
        reject.append(_p_lower((res.difference - theta) / se, res.se_images**2, res.se_seeds**2, res.df) < 0.05)
    rate = lambda v: (float(np.mean(v)), float(np.sqrt(np.mean(v) * (1 - np.mean(v)) / len(v))))  # noqa: E731
    del stats
    return rate(cover), rate(reject)


def _check(coverage, size):
    (cov, cov_se), (sz, sz_se) = coverage, size
    assert cov >= 0.95 - 3 * cov_se, f"coverage {cov:.3f} ± {cov_se:.3f} below the nominal 0.95"
    assert sz <= 0.05 + 3 * sz_se, f"one-sided size {sz:.3f} ± {sz_se:.3f} above the nominal 0.05"


def test_calibration_three_seeds() -> None:
    """S = 3, debiased CKA, 150 replicates x 50 resamples (about 10 s)."""
    _check(*simulate(3, measure="cka_debiased", replicates=150, n_boot=50, seed=0, n_truth=600))


@pytest.mark.slow
@pytest.mark.parametrize("n_seeds", [2, 5])
def test_calibration_two_and_five_seeds(n_seeds: int) -> None:
    _check(*simulate(n_seeds, measure="cka_debiased", replicates=300, n_boot=80, seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("measure", ["mutual_knn", "angular_shape", "rsa"])
def test_calibration_other_measures(measure: str) -> None:
    _check(*simulate(3, measure=measure, replicates=200, n_boot=60, seed=2))


def _layer(rng, n=60, n_random=3, shift=0.0):
    z = rng.standard_normal((n, Q))
    pre = np.tanh(z @ rng.standard_normal((Q, P)) * 2) + shift * rng.standard_normal((n, P))
    return [pre] + [_features(z, _net(rng)) for _ in range(n_random)]


def test_difference_is_the_mean_of_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs = _layer(rng, n_random=3)
    res = similarity_difference(xs, measure="mutual_knn", n_boot=10, seed=seed)
    pr = np.mean([mutual_knn_alignment(xs[0], x) for x in xs[1:]])
    rr = np.mean([mutual_knn_alignment(xs[a], xs[b]) for a, b in [(1, 2), (1, 3), (2, 3)]])
    assert res.pretrained_random == pytest.approx(pr)
    assert res.random_random == pytest.approx(rr)
    assert res.difference == pytest.approx(pr - rr)
    assert res.lower < res.difference < res.upper


def test_interval_and_test_agree(seed: int) -> None:
    """The one-sided p is below 2.5 % exactly when the 95 % interval lies below 0."""
    rng = np.random.default_rng(seed)
    for shift in (0.0, 3.0):  # a pretrained layer drowned in noise is far less similar to the random ones
        res = similarity_difference(_layer(rng, shift=shift), n_boot=40, seed=seed)
        assert (res.p_value < 0.025) == (res.upper < 0)
    assert res.upper < 0 and res.p_value < 0.025


def test_one_seed_is_nan_with_a_reason() -> None:
    res = similarity_difference(_layer(np.random.default_rng(0), n_random=1), n_boot=10)
    assert np.isnan(res.difference) and np.isnan(res.p_value)
    assert "no random-vs-random pair" in res.reason


def test_errors() -> None:
    xs = _layer(np.random.default_rng(0))
    with pytest.raises(InputValueError, match="`measure` must be one of"):
        similarity_difference(xs, measure="cka_rbf")
    with pytest.raises(InputValueError, match="same images; got image counts"):
        similarity_difference([xs[0], xs[1][:50]])
    with pytest.raises(InputValueError, match="at least one\nrandom|at least one random"):
        similarity_difference([xs[0]])


class _Store:
    def __init__(self, feats):
        self.feats = feats

    def layer(self, init, layer):
        return self.feats[init][layer]


def test_study_dataset(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inits = ["pretrained", "random-0", "random-1", "random-2"]
    per_layer = {layer: _layer(rng) for layer in ("stem", "head")}
    bad = per_layer["head"][0].copy()
    bad[0, 0] = np.nan
    feats = {init: {layer: per_layer[layer][i] for layer in per_layer} for i, init in enumerate(inits)}
    feats["pretrained"]["head"] = bad
    ds = study_similarity_inference(_Store(feats), inits, ["stem", "head"], n_boot=20, seed=seed)
    assert isinstance(ds, xr.Dataset)
    assert ds["rsa_difference_ci"].dims == (S.LAYER, S.BOUND)
    assert ds["cka_debiased_difference"].dims == (S.LAYER,)
    assert np.isfinite(ds["angular_shape_difference"].sel(layer="stem"))
    assert np.isnan(ds["angular_shape_difference"].sel(layer="head"))
    assert "NaN" in ds["angular_shape_difference"].attrs["nan_reason"]["head"]
    again = study_similarity_inference(_Store(feats), inits, ["stem", "head"], n_boot=20, seed=seed)
    xr.testing.assert_identical(ds, again)
    # one layer per process (issue 17): the same streams, so the same numbers and reasons
    parallel = study_similarity_inference(_Store(feats), inits, ["stem", "head"], n_boot=20, seed=seed, n_jobs=2)
    xr.testing.assert_identical(ds, parallel)


@pytest.mark.parametrize("width", [7, 300])  # narrower and wider than the 40 images
def test_the_inference_angular_factor_gives_the_public_distance(width):
    """The inference's angular shape distance (one SVD per network and resample, issue 17) equals
    :func:`angular_shape_distance` (two SVDs per pair on wide layers)."""
    from layergain.similarity.inference import _compare_shape_factor, _prepare_shape_factor
    from layergain.similarity.measures import angular_shape_distance

    rng = np.random.default_rng(width)
    x = rng.normal(size=(40, width))
    y = x[:, ::-1] @ rng.normal(size=(width, width)) * 0.3 + rng.normal(size=(40, width))
    fast = _compare_shape_factor(_prepare_shape_factor(x), _prepare_shape_factor(y))
    np.testing.assert_allclose(fast, angular_shape_distance(x, y), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("measure", ["cka_debiased", "cka_linear", "mutual_knn", "rsa"])
def test_resamples_read_off_the_full_matrix_equal_recomputing_them(measure, monkeypatch):
    """Each resample's kernel, neighbours or RDM as a submatrix of the one computed once per network
    (issue 17) gives the same inference as recomputing it from the resample's features."""
    import dataclasses

    from layergain.similarity import inference

    rng = np.random.default_rng(7)
    common = rng.normal(size=(60, 30))
    nets = [np.maximum(common + rng.normal(size=common.shape), 0) for _ in range(4)]
    fast = inference.similarity_difference(nets, measure=measure, n_boot=30, seed=3, k=5)
    original = inference._measure
    monkeypatch.setattr(inference, "_measure", lambda n, k: dataclasses.replace(original(n, k), full=None))
    slow = inference.similarity_difference(nets, measure=measure, n_boot=30, seed=3, k=5)
    for field in ("difference", "lower", "upper", "p_value", "se_images", "se_seeds"):
        np.testing.assert_allclose(getattr(fast, field), getattr(slow, field), rtol=1e-9, atol=1e-12)
