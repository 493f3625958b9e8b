"""study_transferability and tau_table on simulated stores."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import kendalltau

from layergain import schema as S
from layergain.probes import make_folds
from layergain.transferability import ESTIMATORS, logme, study_transferability, tau_table


class _Store:
    def __init__(self, feats):
        self.feats = feats

    def layer(self, init, layer):
        return self.feats[init][layer]


def _run(rng, n_layers=5, n_per=12):
    labels = np.repeat(np.arange(3), n_per)
    inits = ["pretrained", "random-0", "random-1"]
    layers = [f"l{i}" for i in range(n_layers)]
    means = rng.standard_normal((3, 6))
    feats = {}
    for k, init in enumerate(inits):
        strength = 2.0 if k == 0 else 0.5
        feats[init] = {layer: strength * (j + 1) / n_layers * means[labels] + rng.standard_normal((labels.size, 6))
                       for j, layer in enumerate(layers)}
    return _Store(feats), inits, layers, labels, make_folds(labels, folds=3, seed=0)


def test_study_has_every_estimator_and_nan_reasons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    store, inits, layers, labels, folds = _run(rng, n_layers=3)
    store.feats["random-1"]["l0"] = store.feats["random-1"]["l0"].copy()
    store.feats["random-1"]["l0"][0, 0] = np.nan
    ds = study_transferability(store, inits, layers, labels, folds, seed=seed)
    assert list(ds.data_vars) == list(ESTIMATORS)
    assert all(ds[e].dims == (S.INIT, S.LAYER) for e in ESTIMATORS)
    assert ds["logme"].sel(init="pretrained", layer="l1") == pytest.approx(
        logme(store.layer("pretrained", "l1"), labels))
    assert np.isnan(ds["hscore"].sel(init="random-1", layer="l0"))
    assert "NaN" in ds["hscore"].attrs["nan_reason"]["l0"]["random-1"]
    xr.testing.assert_identical(ds, study_transferability(store, inits, layers, labels, folds, seed=seed))
    if seed == 0:  # one (init, layer) per process: the same numbers, reasons and N-LEEP seeds
        xr.testing.assert_identical(ds, study_transferability(store, inits, layers, labels, folds, seed=seed,
                                                              n_jobs=2))


def test_tau_table(seed: int) -> None:
    rng = np.random.default_rng(seed)
    store, inits, layers, labels, folds = _run(rng, n_layers=4)
    est = study_transferability(store, inits, layers, labels, folds, seed=seed)
    acc = est["ncc_accuracy"] + 0.01 * rng.standard_normal(est["ncc_accuracy"].shape)  # a stand-in accuracy
    gain = acc.sel(init="pretrained") - acc.sel(init=["random-0", "random-1"]).mean(S.INIT)
    correct = xr.DataArray(rng.random((3, 4, labels.size)) < acc.values[..., None],
                           dims=(S.INIT, S.LAYER, S.IMAGE), coords={S.INIT: inits, S.LAYER: layers}).astype(float)
    tau = tau_table(est, acc, gain, correct=correct, n_boot=200, seed=seed)
    e = est["logme"]
    expected = kendalltau(e.sel(init="pretrained"), acc.sel(init="pretrained")).statistic
    assert float(tau["tau_accuracy"].sel(estimator="logme")) == pytest.approx(expected)
    diff = e.sel(init="pretrained") - e.sel(init=["random-0", "random-1"]).mean(S.INIT)
    assert float(tau["tau_gain"].sel(estimator="logme")) == pytest.approx(kendalltau(diff, gain).statistic)
    lo, hi = tau["tau_gain_ci"].sel(estimator="logme").values
    assert lo <= hi and tau["tau_accuracy_ci"].dims == ("estimator", S.BOUND)
    without = tau_table(est, acc, gain, n_boot=50, seed=seed)
    assert np.isnan(without["tau_accuracy_ci"]).all() and "tau_accuracy_ci" in without.attrs["nan_reason"]


def _tau_ci_draw_by_draw(e, acc, g, corr, seed, n_boot, confidence=0.95):
    """tau_table's bootstrap as first written: one draw at a time, scipy's kendalltau on each."""
    def tau(a, b):
        return np.nan if np.ptp(a) == 0 or np.ptp(b) == 0 else kendalltau(a, b).statistic

    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, e.shape[0] - 1, size=(n_boot, e.shape[0] - 1))
    image_draws = rng.integers(0, corr.shape[2], size=(n_boot, corr.shape[2]))
    base = acc[0] - acc[1:].mean(axis=0)
    draws_a, draws_g = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        acc_b = corr[:, :, image_draws[b]].mean(axis=2)
        draws_a[b] = tau(e[0], acc_b[0])
        pick = seed_draws[b] + 1
        draws_g[b] = tau(e[0] - e[pick].mean(axis=0), g + (acc_b[0] - acc_b[pick].mean(axis=0)) - base)
    alpha = (1 - confidence) / 2
    return np.nanquantile(draws_a, [alpha, 1 - alpha]), np.nanquantile(draws_g, [alpha, 1 - alpha])


@pytest.mark.parametrize("n_images", [40, 400])
def test_tau_bootstrap_all_draws_at_once_equals_the_draw_by_draw_loop(n_images: int) -> None:
    """All draws at once (one product with each draw's image counts, Kendall's tau of every draw
    from sign products) gives the draw-by-draw loop's intervals bit for bit, ties included:
    0/1 correctness over few images makes many resampled accuracies equal."""
    rng = np.random.default_rng(n_images)
    inits = ["pretrained", "random-0", "random-1", "random-2"]
    layers = [f"l{i}" for i in range(12)]
    corr = (rng.random((4, 12, n_images)) < np.linspace(0.5, 0.9, 12)[None, :, None]).astype(float)
    coords = {S.INIT: inits, S.LAYER: layers}
    acc = xr.DataArray(corr.mean(axis=2), dims=(S.INIT, S.LAYER), coords=coords)
    gain = acc.sel(init="pretrained") - acc.sel(init=inits[1:]).mean(S.INIT)
    values = np.round(rng.standard_normal((4, 12)), 1)  # ties in the estimator too
    est = xr.Dataset({"e": ((S.INIT, S.LAYER), values)}, coords=coords)
    correct = xr.DataArray(corr, dims=(S.INIT, S.LAYER, S.IMAGE), coords=coords)
    tau = tau_table(est, acc, gain, correct=correct, n_boot=300, seed=7)
    ci_a, ci_g = _tau_ci_draw_by_draw(values, acc.values, gain.values, corr, 7, 300)
    np.testing.assert_array_equal(tau["tau_accuracy_ci"].sel(estimator="e").values, ci_a)
    np.testing.assert_array_equal(tau["tau_gain_ci"].sel(estimator="e").values, ci_g)
