"""The shared spectrum of a layer: LAPACK's SVD as the reference, and the study's estimators on real features.

``Spectrum`` takes a thin SVD from the eigendecomposition of the smaller Gram matrix, and
``study_transferability`` computes it once per layer for all the estimators. References: numpy's
``linalg.svd`` (LAPACK gesdd) for the decomposition; the dense formulas of ``test_estimators``
(explicit D x D inverses and determinants) and each public estimator called on its own for the
study's values, on real EfficientNet-Lite0 features, including a layer wider than the images.
"""

from __future__ import annotations

import numpy as np
import pytest

from layergain.data import load_image_set
from layergain.features import extract_features
from layergain.models import load_backbone
from layergain.probes import make_folds
from layergain.transferability import ESTIMATORS
from layergain.transferability import gbc, hscore, knn_accuracy, logme, ncc_accuracy, nleep, transrate
from layergain.transferability._spectrum import Spectrum, singular_values
from layergain.transferability.study import _unit
from tests.transferability.test_estimators import hscore_reference, logme_reference, transrate_reference

LAYERS = ["blocks.2.0", "head"]  # 40 units (fewer than the images) and 1280 (more)


def _projector(vt: np.ndarray) -> np.ndarray:
    return vt.T @ vt  # sign- and rotation-free: the same for any basis of the span


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
def test_spectrum_is_the_thin_svd(seed: int, shape) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) * np.geomspace(1, 1e-3, shape[1])  # spread singular values
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    spec = Spectrum(a)
    np.testing.assert_allclose(spec.values, s, rtol=1e-9)
    np.testing.assert_allclose(_projector(spec.vt), _projector(vt), atol=1e-9)
    k = 5
    np.testing.assert_allclose(np.abs(spec.scores(k)), np.abs(u[:, :k] * s[:k]), rtol=1e-8, atol=1e-12)
    b = rng.standard_normal((shape[0], 3))
    # U^T B up to the signs of U's columns: compare U U^T B, the projection on the span
    np.testing.assert_allclose((a @ spec.vt.T / spec.values) @ spec.project(b), u @ (u.T @ b), atol=1e-8)
    np.testing.assert_allclose(singular_values(a), s, rtol=1e-9)


def test_spectrum_drops_numerically_zero_directions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 30))  # rank 6 in 30 units
    spec = Spectrum(a - a.mean(axis=0))
    assert spec.values.size == 6 and spec.vt.shape == (6, 30)
    assert Spectrum(np.zeros((10, 4))).values.size == 0


@pytest.fixture(scope="module")
def real():
    """Real Lite0 features of the bundled sample (64 images, 8 classes), pretrained and random-0."""
    image_set = load_image_set(max_per_class=8, seed=0)
    feats = {}
    for weights, seed in (("pretrained", None), (None, 0)):
        backbone = load_backbone(weights=weights, seed=seed)
        got = extract_features(backbone, image_set, image_size=96).features
        feats[backbone.init] = {layer: got[layer] for layer in LAYERS}
    folds = make_folds(image_set.labels, image_set.groups, folds=4, seed=0)
    return feats, image_set.labels, folds


class _Store:
    def __init__(self, feats):
        self.feats = feats

    def layer(self, init, layer):
        return self.feats[init][layer]


def test_shared_spectrum_gives_each_estimator_alone_and_the_dense_formulas(real) -> None:
    feats, labels, folds = real
    inits = list(feats)
    gmm_seeds = [int(s.integers(2**31 - 1)) for s in np.random.default_rng(0).spawn(len(inits) * len(LAYERS))]
    values = {e: np.full((len(inits), len(LAYERS)), np.nan) for e in ESTIMATORS}
    for i, init in enumerate(inits):
        for j, layer in enumerate(LAYERS):  # one work unit of study_transferability each
            got, why = _unit((_Store(feats), init, layer, labels, folds, gmm_seeds[i * len(LAYERS) + j]))
            assert why == {}
            for name, value in got.items():
                values[name][i, j] = value
    for i, init in enumerate(inits):
        for j, layer in enumerate(LAYERS):
            x = feats[init][layer].astype(np.float64)
            alone = {"logme": logme(x, labels), "hscore": hscore(x, labels), "gbc": gbc(x, labels),
                     "nleep": nleep(x, labels, seed=gmm_seeds[i * len(LAYERS) + j]),
                     "transrate": transrate(x, labels),
                     "knn_accuracy": knn_accuracy(x, labels, folds), "ncc_accuracy": ncc_accuracy(x, labels, folds)}
            for name, value in alone.items():  # one spectrum for all: the same numbers as one each
                assert values[name][i, j] == pytest.approx(value, rel=1e-12), (init, layer, name)
            # the Gram route against the dense formulas (LAPACK inverses and determinants)
            assert values["hscore"][i, j] == pytest.approx(hscore_reference(x, labels), rel=1e-7)
            assert values["transrate"][i, j] == pytest.approx(transrate_reference(x, labels), rel=1e-7)
            if x.shape[1] < 100:  # the dense LogME iterates D x D solves: the narrow layer only
                assert logme(x, labels, tol=1e-10, max_iter=500) == pytest.approx(logme_reference(x, labels), rel=1e-6)
