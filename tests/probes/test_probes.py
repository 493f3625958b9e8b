"""Folds and linear probes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.probes import ProbeSettings, classification_metrics, cross_val_probe, make_folds
from layergain.probes.linear import _reduce_to_span


def _blobs(rng, n_per_class=20, classes=3, dim=10, shift=3.0):
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(size=(classes, dim)) * shift
    return centres[labels] + rng.normal(size=(labels.size, dim)), labels


def test_folds_are_stratified_seeded_and_keep_groups_together(seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 30)
    groups = rng.integers(0, 15, labels.size).astype(str)
    folds = make_folds(labels, None, folds=5, repeats=2, seed=seed)
    assert folds.shape == (2, 90) and set(np.unique(folds)) == set(range(5))
    for f in range(5):
        assert np.all(np.bincount(labels[folds[0] == f], minlength=3) == 6)  # exactly stratified
    np.testing.assert_array_equal(folds, make_folds(labels, None, folds=5, repeats=2, seed=seed))
    assert not np.array_equal(folds[0], folds[1])  # repeats reshuffle
    grouped = make_folds(labels, groups, folds=5, seed=seed)[0]
    for g in np.unique(groups):
        assert np.unique(grouped[groups == g]).size == 1


def test_fold_errors():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(NotEnoughDataError, match="class '1' has 3 image\\(s\\), fewer than the 5 folds.*`folds=3`"):
        make_folds(labels, folds=5)
    with pytest.raises(NotEnoughDataError, match="3 group\\(s\\), fewer than the 4 folds.*`folds=3`.*`group_column=NAME`"):
        make_folds(np.array([0, 1] * 6), np.array(list("abc") * 4), folds=4)
    with pytest.raises(NotEnoughDataError, match="at least 2 classes"):
        make_folds(np.zeros(10, dtype=int), folds=2)


def test_probe_learns_separable_classes_and_is_out_of_fold(seed):
    rng = np.random.default_rng(seed)
    x, y = _blobs(rng)
    folds = make_folds(y, folds=4, repeats=2, seed=seed)
    res = cross_val_probe(x, y, folds)
    assert res.prediction.shape == (2, y.size) and res.probability.shape == (2, y.size, 3)
    assert (res.prediction == y).mean() > 0.9
    np.testing.assert_allclose(res.probability.sum(-1), 1, atol=1e-5)
    # pure noise features: out-of-fold accuracy near chance, not the training fit
    noise = rng.normal(size=(y.size, 200))
    assert (cross_val_probe(noise, y, folds).prediction == y).mean() < 0.6


def test_probe_matches_a_plain_scikit_learn_fit_fold_by_fold(seed):
    # Obvious reference: standardise with the training fold, fit LogisticRegression on the raw
    # (not span-reduced) features, predict the test fold.
    rng = np.random.default_rng(seed)
    x, y = _blobs(rng, n_per_class=12, dim=60, shift=0.7)  # wider than the training folds
    folds = make_folds(y, folds=3, seed=seed)
    tight = cross_val_probe(x, y, folds, settings=ProbeSettings(tol=1e-10, max_iter=10000))
    default = cross_val_probe(x, y, folds)
    for f in range(3):
        test = folds[0] == f
        m, s = x[~test].mean(0), x[~test].std(0)
        ref = LogisticRegression(C=1.0, max_iter=10000, tol=1e-10).fit((x[~test] - m) / s, y[~test])
        p = ref.predict_proba((x[test] - m) / s)
        np.testing.assert_allclose(tight.probability[0, test], p, atol=1e-4)  # the same optimum
        np.testing.assert_allclose(default.probability[0, test], p, atol=1e-2)  # default tol=1e-4


def test_span_reduction_preserves_inner_products(seed):
    rng = np.random.default_rng(seed)
    xt, xv = rng.normal(size=(20, 50)), rng.normal(size=(7, 50))
    rt, rv = _reduce_to_span(xt, xv)
    assert rt.shape == (20, 20)
    np.testing.assert_allclose(rt @ rt.T, xt @ xt.T, atol=1e-9)
    np.testing.assert_allclose(rv @ rt.T, xv @ xt.T, atol=1e-9)


def test_constant_units_and_missing_training_class():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, n_per_class=10, classes=2)
    x[:, 0] = 5.0  # zero variance everywhere
    folds = make_folds(y, folds=2, seed=0)
    assert (cross_val_probe(x, y, folds).prediction == y).mean() > 0.9
    # a class absent from a training fold gets probability 0 there
    folds = np.where(y == 1, 0, np.arange(y.size) % 2)[None]
    res = cross_val_probe(x, y, folds, n_classes=2)
    assert np.all(res.probability[0, folds[0] == 0, 1] == 0)


def test_probe_input_errors():
    y = np.array([0, 1] * 5)
    folds = make_folds(y, folds=2, seed=0)
    with pytest.raises(InputValueError, match="NaN or infinite"):
        cross_val_probe(np.full((10, 3), np.nan), y, folds)
    with pytest.raises(InputValueError, match="must describe the same images"):
        cross_val_probe(np.ones((9, 3)), y, folds)


def test_metrics_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 40)
    pred = rng.integers(0, 4, (2, 3, 40))
    m = classification_metrics(pred, y, 4)
    for i in range(2):
        assert m["accuracy"][i] == pytest.approx(np.mean([accuracy_score(y, pred[i, r]) for r in range(3)]))
        assert m["balanced_accuracy"][i] == pytest.approx(
            np.mean([balanced_accuracy_score(y, pred[i, r]) for r in range(3)])
        )
        assert m["macro_f1"][i] == pytest.approx(np.mean([f1_score(y, pred[i, r], average="macro") for r in range(3)]))


class _Store:
    """An in-memory stand-in for FeatureStore: ``layer(init, layer)`` -> features."""

    def __init__(self, features):
        self.features = features

    def layer(self, init, layer):
        return self.features[init, layer]


def test_probe_study_is_cross_val_probe_of_every_network_and_layer(seed):
    from layergain.probes import probe_study

    rng = np.random.default_rng(seed)
    x, labels = _blobs(rng)
    inits, layers = ["pretrained", "random-0"], ["a", "b"]
    store = _Store({(i, layer): x + k * rng.normal(size=x.shape) for k, (i, layer) in
                    enumerate((i, layer) for i in inits for layer in layers)})
    folds = make_folds(labels, None, folds=3, repeats=2, seed=seed)
    settings = ProbeSettings(C=0.5)
    got = probe_study(store, inits, layers, labels, folds, 3, settings=settings, n_jobs=1)
    assert got.prediction.shape == (2, 2, 2, 60) and got.probability.shape == (2, 2, 2, 60, 3)
    for i, init in enumerate(inits):
        for j, layer in enumerate(layers):
            ref = cross_val_probe(store.layer(init, layer), labels, folds, n_classes=3, settings=settings)
            np.testing.assert_array_equal(got.prediction[i, j], ref.prediction)
            np.testing.assert_allclose(got.probability[i, j], ref.probability)
    assert got.settings is settings and got.not_converged >= 0
