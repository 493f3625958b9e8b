"""Mutual k-NN alignment, Procrustes shape distances, RSA: slow references, invariances, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.similarity.measures import angular_shape_distance, mutual_knn_alignment, procrustes_distance, rsa


def pair(rng: np.random.Generator, n: int = 40, p: int = 6, q: int = 9):
    x = rng.standard_normal((n, p))
    return x, np.tanh(x @ rng.standard_normal((p, q))) + 0.3 * rng.standard_normal((n, q))


def knn_reference(x, y, k, metric):
    def sets(a):
        if metric == "cosine":
            u = a / np.linalg.norm(a, axis=1, keepdims=True)
            d = -(u @ u.T)
        else:
            d = np.array([[np.linalg.norm(r - s) for s in a] for r in a])
        out = []
        for i in range(len(a)):
            order = [j for j in np.argsort(d[i], kind="stable") if j != i]
            out.append(set(order[:k]))
        return out

    return np.mean([len(a & b) / k for a, b in zip(sets(x), sets(y))])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_mutual_knn_matches_the_set_loop(seed: int, metric: str) -> None:
    x, y = pair(np.random.default_rng(seed))
    assert mutual_knn_alignment(x, y, k=5, metric=metric) == pytest.approx(knn_reference(x, y, 5, metric))


def test_procrustes_matches_the_fitted_rotation(seed: int) -> None:
    """min_Q ||X - Y Q|| from scipy's orthogonal_procrustes on centred, unit-norm, zero-padded features."""
    x, y = pair(np.random.default_rng(seed))
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    xp = np.hstack([xc, np.zeros((40, 3))])  # pad to the common width 9
    r, _ = orthogonal_procrustes(yc, xp)
    expected = np.linalg.norm(xp - yc @ r)
    assert procrustes_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert angular_shape_distance(x, y) == pytest.approx(2 * np.arcsin(expected / 2), rel=1e-9)


def test_procrustes_wide_form_matches_the_direct_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((12, 30)), rng.standard_normal((12, 40))
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    nuc = np.linalg.svd(xc.T @ yc, compute_uv=False).sum()
    assert angular_shape_distance(x, y) == pytest.approx(np.arccos(nuc), rel=1e-9)


@pytest.mark.parametrize(("rdm", "compare"), [("correlation", "spearman"), ("euclidean", "pearson")])
def test_rsa_matches_scipy(seed: int, rdm: str, compare: str) -> None:
    x, y = pair(np.random.default_rng(seed))
    corr = spearmanr if compare == "spearman" else pearsonr
    expected = corr(pdist(x, rdm), pdist(y, rdm))[0]
    assert rsa(x, y, rdm=rdm, compare=compare) == pytest.approx(expected, rel=1e-9)


def test_invariances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = pair(rng)
    q, _ = np.linalg.qr(rng.standard_normal((9, 9)))
    moved = 3.0 * y @ q
    assert mutual_knn_alignment(x, moved) == pytest.approx(mutual_knn_alignment(x, y))
    assert mutual_knn_alignment(x, moved + 5.0, metric="euclidean") == pytest.approx(
        mutual_knn_alignment(x, y, metric="euclidean"))
    assert procrustes_distance(x, moved + 5.0) == pytest.approx(procrustes_distance(x, y), abs=1e-12)
    assert rsa(x, moved, rdm="euclidean") == pytest.approx(rsa(x, y, rdm="euclidean"))
    assert rsa(x, 4.0 * y) == pytest.approx(rsa(x, y))


def test_identity_and_independence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 8))
    other = rng.standard_normal((300, 8))
    assert mutual_knn_alignment(x, x) == 1.0
    assert procrustes_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert rsa(x, x) == pytest.approx(1.0)
    assert mutual_knn_alignment(x, other) < 0.1  # chance is k / (n - 1) = 0.033
    assert abs(rsa(x, other)) < 0.1


def test_structured_pair_is_more_similar_than_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = pair(rng, n=80)
    noise = rng.standard_normal(y.shape)
    assert mutual_knn_alignment(x, y) > mutual_knn_alignment(x, noise)
    assert procrustes_distance(x, y) < procrustes_distance(x, noise)
    assert rsa(x, y) > rsa(x, noise)


def test_errors() -> None:
    x = np.random.default_rng(0).standard_normal((8, 3))
    with pytest.raises(NotEnoughDataError, match=r"`k` = 10 nearest neighbours need at least k \+ 2 = 12 images"):
        mutual_knn_alignment(x, x)
    with pytest.raises(InputValueError, match="must have the same number of images"):
        procrustes_distance(x, x[:5])
    with pytest.raises(InputValueError, match="constant across images"):
        angular_shape_distance(x, np.ones((8, 2)))
    with pytest.raises(InputValueError, match="`compare` must be one of 'spearman', 'pearson'"):
        rsa(x, x, compare="kendall")
    bad = x.copy()
    bad[1, 1] = np.inf
    with pytest.raises(InputValueError, match="NaN or infinite"):
        rsa(x, bad)
