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
