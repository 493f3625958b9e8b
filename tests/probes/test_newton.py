"""The Newton probe solver against scikit-learn's on real EfficientNet-Lite0 features.

Reference: ``solver="lbfgs"`` is scikit-learn's ``LogisticRegression`` itself. Run tight
(``tol=1e-9``) it sits at the optimum of the objective both solvers minimise, so the Newton
solver must match it closely; run at scikit-learn's default ``tol=1e-4`` it stops short of the
optimum (its probabilities differ from the tight fit's by up to 0.36 on the random network's head
of the bundled sample, and up to 1 image in 100 changes its predicted class), so the comparison
with the default is looser.

Stated tolerances, measured on these features (Newton vs tight scikit-learn): probabilities within
``PROBABILITY_ATOL`` (largest difference seen: 2e-4), predictions 100 % identical here and
required >= 99 %, accuracies within 0.002.
"""

from __future__ import annotations

import numpy as np
import pytest

from layergain.data import load_image_set
from layergain.features import extract_features
from layergain.models import load_backbone
from layergain.probes import ProbeSettings, cross_val_probe, make_folds

SIZE = 96  # small images keep the extraction fast; the probes see real Lite0 features all the same
LAYERS = ["blocks.2.0", "blocks.4.0", "head"]  # 40, 112 and 1280 units (head: wider than the images)
PROBABILITY_ATOL = 2e-3
NEWTON = ProbeSettings(solver="newton")
TIGHT = ProbeSettings(solver="lbfgs", tol=1e-9, max_iter=20000)
DATA = "/work/shared/data"


def _features(image_set, networks=(("pretrained", None), (None, 0))):
    """Real features of ``LAYERS`` for the pretrained and one random Lite0: {(init, layer): array}."""
    out = {}
    for weights, seed in networks:
        backbone = load_backbone(weights=weights, seed=seed)
        feats = extract_features(backbone, image_set, image_size=SIZE).features
        out.update({(backbone.init, layer): feats[layer] for layer in LAYERS})
    return out


@pytest.fixture(scope="module")
def kather():
    """The bundled Kather sample, 8 images per class: 64 images, 8 classes, grouped by slide."""
    image_set = load_image_set(max_per_class=8, seed=0)
    return _features(image_set), image_set.labels, image_set.groups


@pytest.fixture(scope="module")
def idc():
    """Two classes: 20 IDC and 20 non-IDC breast patches (50 x 50 px), grouped by patient."""
    image_set = load_image_set(f"{DATA}/idc_breast50", max_per_class=20, seed=0)
    return _features(image_set, (("pretrained", None),)), image_set.labels, image_set.groups


@pytest.fixture(scope="module")
def lung():
    """Three classes of LC25000 lung tiles, 10 each."""
    image_set = load_image_set(f"{DATA}/lc25000_lung", max_per_class=10, seed=0)
    return _features(image_set, (("pretrained", None),)), image_set.labels


def _check_agreement(fast, reference, labels, atol=PROBABILITY_ATOL, identical=0.99):
    assert (fast.prediction == reference.prediction).mean() >= identical
    accuracy = lambda res: (res.prediction == labels).mean()  # noqa: E731
    assert abs(accuracy(fast) - accuracy(reference)) <= 0.002
    np.testing.assert_allclose(fast.probability, reference.probability, atol=atol)
    assert fast.not_converged == 0


def test_newton_is_scikit_learns_optimum_on_8_classes_and_wide_layers(kather):
    features, labels, groups = kather
    folds = make_folds(labels, groups, folds=5, seed=0)
    for (init, layer), x in features.items():  # head: 1280 units, about 51 training images
        fast = cross_val_probe(x, labels, folds, settings=NEWTON)
        _check_agreement(fast, cross_val_probe(x, labels, folds, settings=TIGHT), labels)


def test_newton_agrees_with_scikit_learns_default_fit(kather):
    # The plain loop's own fit stops at tol=1e-4; what it changes stays within these bounds here.
    features, labels, groups = kather
    folds = make_folds(labels, groups, folds=5, seed=0)
    fast = np.stack([cross_val_probe(x, labels, folds, settings=NEWTON).prediction for x in features.values()])
    default = np.stack([cross_val_probe(x, labels, folds).prediction for x in features.values()])
    assert (fast == default).mean() >= 0.99


def test_newton_binary_model_on_two_classes(idc):
    features, labels, groups = idc
    folds = make_folds(labels, groups, folds=3, seed=0)
    for x in features.values():
        fast = cross_val_probe(x, labels, folds, settings=NEWTON)
        assert fast.probability.shape[-1] == 2
        _check_agreement(fast, cross_val_probe(x, labels, folds, settings=TIGHT), labels)


def test_newton_with_a_class_absent_from_a_training_fold(lung):
    # Every image of class 2 in fold 0 (as when all its patients land in one fold): fold 0 trains
    # on the two other classes (the binary model) and gives class 2 probability 0.
    features, labels = lung
    folds = make_folds(labels, folds=3, seed=0)
    folds[0, labels == 2] = 0
    for x in features.values():
        fast = cross_val_probe(x, labels, folds, settings=NEWTON)
        assert np.all(fast.probability[0, folds[0] == 0, 2] == 0)
        _check_agreement(fast, cross_val_probe(x, labels, folds, settings=TIGHT), labels)


def test_newton_keeps_the_documented_edge_cases():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 8)
    x = rng.normal(size=(24, 5)) + labels[:, None]
    x[:, 0] = 3.0  # constant everywhere: dropped in every fold
    folds = make_folds(labels, folds=2, seed=0)
    fast = cross_val_probe(x, labels, folds, settings=NEWTON)
    _check_agreement(fast, cross_val_probe(x, labels, folds, settings=TIGHT), labels, identical=1.0)
    # one-class training fold: that class is predicted with probability 1
    one = np.where(labels == 0, 1, 0)[None]
    res = cross_val_probe(x, labels, one, n_classes=3, settings=NEWTON)
    assert np.all(res.prediction[0, one[0] == 0] == 0)
    assert np.all(res.probability[0, one[0] == 0, 0] == 1)


def test_newton_counts_fits_at_the_step_limit():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    x = rng.normal(size=(30, 20)) + labels[:, None]
    folds = make_folds(labels, folds=3, seed=0)
    assert cross_val_probe(x, labels, folds, settings=ProbeSettings(solver="newton", max_iter=10)).not_converged == 3


def test_solver_is_validated_and_described():
    with pytest.raises(ValueError, match="`solver` must be one of 'lbfgs', 'newton', got 'irls'"):
        ProbeSettings(solver="irls")
    assert "truncated Newton" in NEWTON.describe() and "scikit-learn" in ProbeSettings().describe()
