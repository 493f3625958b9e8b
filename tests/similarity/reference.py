"""Slow, obvious implementations of every measure, written from the papers' formulas.

Each is the textbook expression with explicit n x n matrices or explicit loops, in float64,
and is used only to check the fast code on small inputs.
"""

from __future__ import annotations

import itertools

import numpy as np


def centring(n: int) -> np.ndarray:
    """H = I - 11^T / n."""
    return np.eye(n) - np.ones((n, n)) / n


def hsic_biased(k: np.ndarray, ell: np.ndarray) -> float:
    """Gretton et al. (2005): HSIC_0 = tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = centring(n)
    return float(np.trace(k @ h @ ell @ h)) / (n - 1) ** 2


def hsic_unbiased(k: np.ndarray, ell: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, with explicit zero-diagonal matrices."""
    n = k.shape[0]
    kt, lt = k.copy(), ell.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return float(
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ kt @ lt @ one)
    ) / (n * (n - 3))


def hsic_u_statistic(k: np.ndarray, ell: np.ndarray, w: np.ndarray | None = None) -> float:
    """HSIC as the U-statistic over tuples of distinct images (Song et al. 2012, Theorem 2),

    E[k_ij l_ij] + E[k_ij] E[l_qr] - 2 E[k_ij l_iq], each expectation over distinct indices,
    optionally weighted by multiplicities ``w`` (a resample in which copies of one image are
    never paired with each other). O(n^4): for n <= 9 only.
    """
    n = k.shape[0]
    w = np.ones(n) if w is None else w

    def mean(order: int, term) -> float:
        num = den = 0.0
        for idx in itertools.permutations(range(n), order):
            weight = np.prod(w[list(idx)])
            num += weight * term(*idx)
            den += weight
        return num / den

    return (
        mean(2, lambda i, j: k[i, j] * ell[i, j])
        + mean(4, lambda i, j, q, r: k[i, j] * ell[q, r])
        - 2 * mean(3, lambda i, j, q: k[i, j] * ell[i, q])
    )


def cka(x: np.ndarray, y: np.ndarray, hsic=hsic_biased) -> float:
    """Kornblith et al. (2019), eq. 2 with linear kernels (any HSIC estimator)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    k, ell = x @ x.T, y @ y.T
    return hsic(k, ell) / np.sqrt(hsic(k, k) * hsic(ell, ell))


def rbf_gram(x: np.ndarray, sigma: float | None) -> np.ndarray:
    """exp(-||x_i - x_j||^2 / (2 sigma^2)), sigma^2 = median over i < j by default."""
    x = np.asarray(x, float)
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if sigma is None:
        sigma = np.sqrt(np.median(sq[np.triu_indices(len(x), 1)]))
    return np.exp(-sq / (2 * sigma**2))


def rbf_cka(x: np.ndarray, y: np.ndarray, sigma_x: float | None = None, sigma_y: float | None = None) -> float:
    k, ell = rbf_gram(x, sigma_x), rbf_gram(y, sigma_y)
    return hsic_biased(k, ell) / np.sqrt(hsic_biased(k, k) * hsic_biased(ell, ell))


def _basis(x: np.ndarray, keep: float | None) -> np.ndarray:
    """Orthonormal basis of the centred columns; with ``keep``, of the top singular directions."""
    xc = np.asarray(x, float) - np.mean(x, axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    if keep is None:
        k = int(np.sum(s > s[0] * 1e-8))
    else:
        share = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.argmax(share >= keep - 1e-12)) + 1
    return u[:, :k]


def canonical_correlations(x: np.ndarray, y: np.ndarray, keep: float | None = None) -> np.ndarray:
    """Hotelling (1936): singular values of Qx^T Qy for orthonormal bases of the centred sides."""
    return np.linalg.svd(_basis(x, keep).T @ _basis(y, keep), compute_uv=False)


def cca_by_covariance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Canonical correlations as sqrt of the eigenvalues of Sxx^-1 Sxy Syy^-1 Syx (full rank)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    ev = np.sort(np.linalg.eigvals(m).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(ev, 0, None))


def pwcca(x: np.ndarray, y: np.ndarray, keep: float) -> float:
    """Morcos et al. (2018): sum_i alpha_i rho_i, alpha_i ~ sum_j |<h_i, x_j>| on the side with
    fewer kept directions (x on a tie); h_i the canonical variates, x_j the centred units."""
    bx, by = _basis(x, keep), _basis(y, keep)
    if bx.shape[1] > by.shape[1]:
        x, bx, by = y, by, bx
    a, rho, _ = np.linalg.svd(bx.T @ by, full_matrices=False)
    h = bx @ a  # canonical variates, one unit vector per column
    xc = x - x.mean(0)
    alpha = np.array([np.sum(np.abs(h[:, i] @ xc)) for i in range(h.shape[1])])
    return float(np.sum(alpha / alpha.sum() * np.minimum(rho, 1)))


def real_like(rng: np.random.Generator, n: int, units: int, rank: int = 12) -> np.ndarray:
    """Pooled-ReLU-like features: non-negative, mean >> std, a decaying spectrum, dead units."""
    latent = rng.standard_normal((n, rank)) * (1.0 / np.arange(1, rank + 1))
    x = np.maximum(latent @ rng.standard_normal((rank, units)) + 0.3 * rng.standard_normal((n, units)) + 1.0, 0)
    x[:, : max(1, units // 10)] = 0.0  # dead units: constant zero
    return 50.0 + 10.0 * x
