"""Transferability estimators: slow references from the formulas, invariances, planted structure, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.transferability import (
    gbc,
    hscore,
    knn_accuracy,
    ledoit_wolf_shrinkage,
    logme,
    ncc_accuracy,
    nleep,
    transrate,
)
from layergain.transferability.estimators import _evidence

LABEL_ONLY = [logme, hscore, nleep, gbc, transrate]


def planted(rng: np.random.Generator, n_per: int = 30, n_classes: int = 3, width: int = 12, signal: float = 3.0):
    """A structured layer (class means apart by ``signal`` sd in 3 units) and a noise layer of the same shape."""
    labels = np.repeat(np.arange(n_classes), n_per)
    means = np.zeros((n_classes, width))
    means[:, :3] = rng.standard_normal((n_classes, 3)) * signal
    structured = means[labels] + rng.standard_normal((labels.size, width))
    noise = rng.standard_normal((labels.size, width))
    return structured, noise, labels


def folds_for(labels: np.ndarray, k: int = 5) -> np.ndarray:
    from layergain.probes import make_folds

    return make_folds(labels, folds=k, repeats=2, seed=0)


# --- slow references ------------------------------------------------------------------------


def logme_reference(f: np.ndarray, y: np.ndarray) -> float:
    """MacKay's fixed point with explicit D x D matrices, the evidence with explicit determinants."""
    n, d = f.shape
    out = []
    for c in np.unique(y):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        eig = np.linalg.eigvalsh(f.T @ f)
        for _ in range(500):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.solve(a, f.T @ t)
            gamma = np.sum(beta * eig / (alpha + beta * eig))
            alpha_new, beta_new = gamma / (m @ m), (n - gamma) / np.sum((t - f @ m) ** 2)
            if abs(alpha_new / beta_new - alpha / beta) < 1e-10 * alpha / beta:
                alpha, beta = alpha_new, beta_new
                break
            alpha, beta = alpha_new, beta_new
        a = alpha * np.eye(d) + beta * f.T @ f
        m = beta * np.linalg.solve(a, f.T @ t)
        ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
              - beta / 2 * np.sum((t - f @ m) ** 2) - alpha / 2 * m @ m - np.linalg.slogdet(a)[1] / 2)
        out.append(ev / n)
    return float(np.mean(out))


def hscore_reference(f: np.ndarray, y: np.ndarray) -> float:
    """Ibrahim et al.'s regularised H-score with scikit-learn's LedoitWolf and an explicit inverse (1/n covariances)."""
    fc = f - f.mean(axis=0)
    lw = LedoitWolf(assume_centered=True).fit(fc)
    g = np.zeros_like(fc)
    for c in np.unique(y):
        g[y == c] = fc[y == c].mean(axis=0)
    cov_g = g.T @ g / f.shape[0]
    return float(np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * cov_g)))


def gbc_reference(z: np.ndarray, y: np.ndarray) -> float:
    """Pándy et al.'s sum over ordered class pairs, with per-pair loops and explicit diagonal matrices."""
    total = 0.0
    classes = np.unique(y)
    for i in classes:
        for j in classes:
            if i == j:
                continue
            mi, mj = z[y == i].mean(0), z[y == j].mean(0)
            si, sj = np.diag(z[y == i].var(0)), np.diag(z[y == j].var(0))
            s = (si + sj) / 2
            db = (mi - mj) @ np.linalg.inv(s) @ (mi - mj) / 8 + 0.5 * np.log(
                np.linalg.det(s) / np.sqrt(np.linalg.det(si) * np.linalg.det(sj)))
            total += np.exp(-db)
    return -total


def transrate_reference(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    """The authors' code: slogdet(I + Z^T Z / (n eps)) / 2, minus the class mean."""
    z = f - f.mean(axis=0)

    def rate(a):
        return 0.5 * np.linalg.slogdet(np.eye(a.shape[1]) + a.T @ a / (a.shape[0] * eps))[1]

    return float(rate(z) - np.mean([rate(z[y == c]) for c in np.unique(y)]))


def knn_reference(f, y, folds, k):
    accs = []
    for r in range(folds.shape[0]):
        pred = np.empty(y.size, dtype=int)
        for i in range(y.size):
            train = np.flatnonzero(folds[r] != folds[r, i])
            d = [np.sum((f[i] - f[j]) ** 2) for j in train]
            near = train[np.argsort(d, kind="stable")[:k]]
            pred[i] = np.bincount(y[near], minlength=y.max() + 1).argmax()
        accs.append(np.mean(pred == y))
    return float(np.mean(accs))


def ncc_reference(f, y, folds):
    accs = []
    for r in range(folds.shape[0]):
        pred = np.empty(y.size, dtype=int)
        for i in range(y.size):
            train = folds[r] != folds[r, i]
            mean = f[train].mean(0)
            cl2n = lambda v: (v - mean) / np.linalg.norm(v - mean)  # noqa: E731
            cents = {c: np.mean([cl2n(v) for v in f[train & (y == c)]], axis=0) for c in np.unique(y[train])}
            pred[i] = min(cents, key=lambda c: np.linalg.norm(cl2n(f[i]) - cents[c]))
        accs.append(np.mean(pred == y))
    return float(np.mean(accs))


def test_logme_matches_the_dense_fixed_point(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=15, width=8)
    assert logme(x, y, tol=1e-10, max_iter=500) == pytest.approx(logme_reference(x, y), rel=1e-6)


@pytest.mark.parametrize("width", [5, 80])  # fewer and more units than images
def test_logme_evidence_is_the_gaussian_marginal_likelihood_at_its_maximum(seed: int, width: int) -> None:
    """At the fixed point, L(alpha, beta) = log N(t; 0, I/beta + F F^T/alpha), and it is a maximum."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((40, width))
    t = (f[:, 0] + rng.standard_normal(40) > 0).astype(float)
    u, sv, _ = np.linalg.svd(f, full_matrices=False)
    value, alpha, beta = _evidence(t, u.T @ t, sv**2, 40, width, 1e-12, 1000)
    cov = np.eye(40) / beta + f @ f.T / alpha
    assert value == pytest.approx(multivariate_normal(np.zeros(40), cov).logpdf(t), rel=1e-8)
    for da, db in [(1.1, 1), (0.9, 1), (1, 1.1), (1, 0.9)]:
        other = np.eye(40) / (beta * db) + f @ f.T / (alpha * da)
        assert multivariate_normal(np.zeros(40), other).logpdf(t) <= value + 1e-9


def test_ledoit_wolf_shrinkage_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n, d in [(50, 10), (20, 60)]:
        x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
        xc = x - x.mean(0)
        assert ledoit_wolf_shrinkage(xc) == pytest.approx(LedoitWolf(assume_centered=True).fit(xc).shrinkage_, rel=1e-9)


@pytest.mark.parametrize("width", [6, 120])
def test_hscore_matches_the_explicit_inverse(seed: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=12, width=width)
    assert hscore(x, y) == pytest.approx(hscore_reference(x, y), rel=1e-7)


def test_gbc_matches_the_pairwise_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=10, width=5, signal=1.0)
    z = (x - x.mean(0)) @ np.linalg.svd(x - x.mean(0), full_matrices=False)[2].T  # all 5 PCA scores
    assert gbc(x, y, n_components=5) == pytest.approx(gbc_reference(z, y), rel=1e-9)


def test_transrate_matches_the_authors_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=10, width=7)
    assert transrate(x, y) == pytest.approx(transrate_reference(x, y), rel=1e-9)


def test_nleep_is_leep_of_the_mixture_posteriors(seed: int) -> None:
    """Recompute LEEP from the same (seeded) mixture with loops."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=20, width=4)
    xc = x - x.mean(0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.8) + 1)
    theta = GaussianMixture(6, random_state=3).fit(u[:, :k] * s[:k]).predict_proba(u[:, :k] * s[:k])
    joint = np.array([[theta[y == c, v].sum() / y.size for v in range(6)] for c in range(3)])
    cond = joint / joint.sum(0)
    expected = np.mean([np.log(sum(cond[y[i], v] * theta[i, v] for v in range(6))) for i in range(y.size)])
    assert nleep(x, y, components_per_class=2, seed=3) == pytest.approx(expected, rel=1e-7)


def test_knn_and_ncc_match_the_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=12, width=6, signal=0.8)
    folds = folds_for(y, 4)
    assert knn_accuracy(x, y, folds, k=5) == pytest.approx(knn_reference(x, y, folds, 5))
    assert ncc_accuracy(x, y, folds) == pytest.approx(ncc_reference(x, y, folds))


# --- invariances ----------------------------------------------------------------------------


def test_rotation_translation_and_scale_leave_the_neighbour_accuracies_unchanged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=15, width=6, signal=1.0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    moved = 2.5 * x @ q + 7.0
    folds = folds_for(y)
    assert knn_accuracy(moved, y, folds) == pytest.approx(knn_accuracy(x, y, folds))
    assert ncc_accuracy(moved, y, folds) == pytest.approx(ncc_accuracy(x, y, folds))


def test_rotation_leaves_the_rotation_invariant_estimators_unchanged(seed: int) -> None:
    """LogME, H-score, TransRate depend on F only through F^T F's spectrum and projections: rotations keep them."""
    rng = np.random.default_rng(seed)
    x, _, y = planted(rng, n_per=15, width=6)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    for fn in (logme, hscore, transrate):
        assert fn(x @ q, y) == pytest.approx(fn(x, y), rel=1e-8), fn.__name__
    # H-score is a ratio of covariances: unchanged by any isotropic scaling and translation too.
    assert hscore(3 * x + 1, y) == pytest.approx(hscore(x, y), rel=1e-8)


# --- planted structure ----------------------------------------------------------------------


@pytest.mark.parametrize("fn", LABEL_ONLY, ids=lambda f: f.__name__)
def test_structured_layer_ranks_above_noise(seed: int, fn) -> None:
    rng = np.random.default_rng(seed)
    structured, noise, y = planted(rng)
    assert fn(structured, y) > fn(noise, y)


@pytest.mark.parametrize("fn", [knn_accuracy, ncc_accuracy], ids=lambda f: f.__name__)
def test_structured_layer_ranks_above_noise_cross_validated(seed: int, fn) -> None:
    rng = np.random.default_rng(seed)
    structured, noise, y = planted(rng)
    folds = folds_for(y)
    assert fn(structured, y, folds) > fn(noise, y, folds) + 0.2


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", LABEL_ONLY, ids=lambda f: f.__name__)
def test_too_few_images_per_class(fn) -> None:
    x = np.random.default_rng(0).standard_normal((7, 3))
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(NotEnoughDataError, match=r"class 2 has 1 image\(s\), while `.*` needs at least 2 per class"):
        fn(x, y)


def test_errors_of_the_neighbour_accuracies() -> None:
    rng = np.random.default_rng(0)
    x, _, y = planted(rng, n_per=6, width=3)
    folds = folds_for(y, 3)
    with pytest.raises(NotEnoughDataError, match="class 2 has 1 image"):
        knn_accuracy(x[:13], y[:13], folds[:, :13])
    with pytest.raises(NotEnoughDataError, match=r"`k` = 50 exceeds the 12 training images"):
        knn_accuracy(x, y, folds, k=50)
    with pytest.raises(InputValueError, match="`folds` has 10 columns but `features` has 18 images"):
        ncc_accuracy(x, y, folds[:, :10])
    with pytest.raises(InputValueError, match=r"`folds` must be integers of shape \(n_repeats, n_images\)"):
        ncc_accuracy(x, y, folds.astype(float))


def test_input_errors() -> None:
    rng = np.random.default_rng(0)
    x, _, y = planted(rng, n_per=5, width=3)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputValueError, match=r"`features` contains 1 NaN or infinite value\(s\)"):
        logme(bad, y)
    with pytest.raises(InputValueError, match="`features` has 15 images .* but `labels` has 14"):
        hscore(x, y[:-1])
    with pytest.raises(InputTypeError, match="`labels` must be integer class codes"):
        gbc(x, y.astype(float))
    with pytest.raises(NotEnoughDataError, match="needs images of at least 2 classes"):
        transrate(x, np.zeros(15, dtype=int))
    with pytest.raises(InputValueError, match="`eps` must be > 0"):
        transrate(x, y, eps=0.0)
