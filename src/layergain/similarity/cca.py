r"""Canonical correlation measures: CCA, SVCCA (Raghu et al. 2017) and PWCCA (Morcos et al. 2018).

Every measure reduces each side to orthonormal directions in image space, ``U_x`` (n x k_x) and
``U_y`` (n x k_y), spanning its centred features (SVCCA and PWCCA: only the top singular
directions that keep a share ``keep`` of the variance). The canonical correlations are the
singular values of ``U_x^T U_y``.

A side is decomposed through its p x p covariance when images outnumber units and through its
n x n Gram matrix otherwise, in float64 whatever the input precision (the whitening divides by
small singular values). Directions whose variance is below ``1e-10`` times the largest (singular
value below ``1e-5`` times the largest) are treated as absent: collinear and constant units do
not break the decomposition.

With ``k_x + k_y > n - 1`` the two subspaces must intersect inside the (n - 1)-dimensional space
of centred image vectors, so some canonical correlations are 1 whatever the features are. The
functions refuse such input with :class:`~layergain.errors.NotEnoughDataError`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.similarity._backend import NumpyOps, one_blas_thread
from layergain.similarity.cka import prepare_pair

__all__ = ["Directions", "canonical_correlations", "cca", "directions", "pwcca", "svcca"]

#: Variance (eigenvalue) below this share of the largest counts as no direction.
RANK_RTOL = 1e-10


@dataclass(frozen=True)
class Directions:
    """Kept directions of one centred representation.

    Attributes
    ----------
    u : ndarray of shape (n_images, k)
        Orthonormal directions in image space (left singular vectors), largest variance first.
    loadings : ndarray of shape (n_units, k)
        ``X^T u``: how much each unit projects on each direction (singular value x right
        singular vector).
    rank : int
        Directions above the rank tolerance, before truncation by ``keep``.
    """

    u: np.ndarray
    loadings: np.ndarray
    rank: int

    @property
    def k(self) -> int:
        return int(self.u.shape[1])


def check_keep(keep: Any) -> float:
    """``keep`` must be a share of variance in (0, 1]."""
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
        raise InputTypeError(f"`keep` must be a number in (0, 1], got {type(keep).__name__} {keep!r}.")
    keep = float(keep)
    if not 0.0 < keep <= 1.0:
        raise InputValueError(
            f"`keep` must lie in (0, 1] (the share of variance the kept directions explain), got {keep}."
        )
    return keep


def directions(xc: np.ndarray, keep: float | None) -> Directions:
    """Top singular directions of centred float64 features keeping ``keep`` of the variance.

    ``keep=None`` keeps every direction above the rank tolerance.
    """
    n, p = xc.shape
    if p <= n:
        with one_blas_thread(n * p * p / 2):
            cov = xc.T @ xc
        lam, v = _eigh_desc(cov)
        rank = _rank(lam)
        k = _n_keep(lam, rank, keep)
        root = np.sqrt(lam[:k])
        with one_blas_thread(n * p * k):
            return Directions(xc @ (v[:, :k] / root), v[:, :k] * root, rank)
    with one_blas_thread(n * n * p / 2):
        gram = xc @ xc.T
    lam, u = _eigh_desc(gram)
    rank = _rank(lam)
    k = _n_keep(lam, rank, keep)
    with one_blas_thread(n * p * k):
        return Directions(u[:, :k], xc.T @ u[:, :k], rank)


def _eigh_desc(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with one_blas_thread():
        lam, vec = np.linalg.eigh(a)
    return np.maximum(lam[::-1], 0.0), vec[:, ::-1]


def _rank(lam: np.ndarray) -> int:
    return int(np.count_nonzero(lam > lam[0] * RANK_RTOL)) if lam[0] > 0 else 0


def _n_keep(lam: np.ndarray, rank: int, keep: float | None) -> int:
    """Smallest number of top directions whose variance reaches ``keep`` of the total."""
    if keep is None or keep >= 1.0:
        return rank
    share = np.cumsum(lam[:rank]) / lam.sum()
    return min(int(np.searchsorted(share, keep * (1 - 1e-12))) + 1, rank)


def check_directions(n: int, kx: int, ky: int, measure: str, keep: float | None) -> None:
    """Refuse when the kept directions force canonical correlations of 1."""
    if kx + ky <= n - 1:
        return
    fix = (
        f"a smaller `keep` (now {keep})" if keep is not None else "svcca/pwcca with `keep` below 1"
    )
    raise NotEnoughDataError(
        f"{measure} needs more images than kept directions: n_images - 1 = {n - 1} is less than "
        f"the {kx} + {ky} = {kx + ky} directions kept for `x` and `y`, so at least "
        f"{kx + ky - (n - 1)} canonical correlation(s) would be 1 by construction. Use at least "
        f"{kx + ky + 1} images, {fix}, or fewer units (e.g. PCA)."
    )


@dataclass(frozen=True)
class Canonical:
    """Canonical correlations of two sets of directions with their PWCCA weights."""

    rho: np.ndarray
    weights: np.ndarray


def canonical(dx: Directions, dy: Directions) -> Canonical:
    """Canonical correlations (descending) and the projection weights of Morcos et al. (2018).

    The weights come from the side with fewer directions (``x`` on a tie), so that every
    weighted canonical variate has a partner, as in the reference implementation
    (google/svcca ``pwcca.py``); each weight is the summed absolute projection of that side's
    centred units on the canonical variate, normalised to sum 1.
    """
    with one_blas_thread(dx.u.shape[0] * dx.k * dy.k):
        m = dx.u.T @ dy.u
    with one_blas_thread():
        a, s, bt = np.linalg.svd(m, full_matrices=False)
    rho = np.minimum(s, 1.0)
    proj = dx.loadings @ a if dx.k <= dy.k else dy.loadings @ bt.T
    alpha = np.abs(proj).sum(axis=0)
    return Canonical(rho, alpha / alpha.sum())


def _pair(x: Any, y: Any, keep: float | None, measure: str) -> Canonical:
    _, xc, yc = prepare_pair(x, y, min_rows=2, ops=_FLOAT64)
    xc, yc = xc.astype(np.float64, copy=False), yc.astype(np.float64, copy=False)
    dx, dy = directions(xc, keep), directions(yc, keep)
    check_directions(xc.shape[0], dx.k, dy.k, measure, keep)
    return canonical(dx, dy)


class _Float64Ops(NumpyOps):
    """numpy operations that validate into float64 (the CCA measures whiten in float64)."""

    def float_dtype(self, x: Any) -> Any:
        return np.float64


_FLOAT64 = _Float64Ops()


def canonical_correlations(x: Any, y: Any, *, keep: float | None = None) -> np.ndarray:
    r"""Canonical correlations of two representations, optionally after SVD truncation.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer (numpy array or torch tensor; computed with numpy in float64).
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    keep : float in (0, 1], optional
        Keep on each side the fewest top singular directions whose squared singular values reach
        this share of the total (SVCCA); default: every direction (plain CCA).

    Returns
    -------
    ndarray of shape (min(k_x, k_y),)
        Canonical correlations in [0, 1], descending.

    Raises
    ------
    NotEnoughDataError
        ``k_x + k_y > n_images - 1`` (see the module docstring).
    InputValueError
        Different image counts, NaN or infinite values, a constant layer, a bad ``keep``.
    """
    keep = None if keep is None else check_keep(keep)
    return _pair(x, y, keep, "CCA" if keep is None else "SVCCA").rho


def cca(x: Any, y: Any) -> float:
    r"""Mean canonical correlation, without truncation.

    .. math::

        \mathrm{CCA}(X, Y) = \frac{1}{m} \sum_{i=1}^{m} \rho_i,\qquad
        \rho_i = \sigma_i(U_x^\top U_y),\quad m = \min(\operatorname{rank} \bar X, \operatorname{rank} \bar Y)

    with :math:`U_x`, :math:`U_y` orthonormal bases of the column spaces of the centred features.
    Unchanged by any invertible linear map of either side.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer (numpy array or torch tensor).
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.

    Returns
    -------
    float
        Mean canonical correlation in [0, 1].

    Raises
    ------
    NotEnoughDataError
        ``rank(x) + rank(y) > n_images - 1``: some correlations would be 1 by construction.
    InputValueError
        Different image counts, NaN or infinite values, a constant layer.

    References
    ----------
    .. [1] Hotelling, H. (1936). Relations between two sets of variates. Biometrika 28, 321-377.
    .. [2] Raghu, M., Gilmer, J., Yosinski, J., Sohl-Dickstein, J. (2017). SVCCA: Singular
       vector canonical correlation analysis for deep learning dynamics and interpretability.
       NeurIPS.
    """
    return float(np.mean(_pair(x, y, None, "CCA").rho))


def svcca(x: Any, y: Any, *, keep: float = 0.99) -> float:
    r"""Singular vector canonical correlation analysis (Raghu et al. 2017).

    Each side is centred and reduced to its fewest top singular directions whose squared singular
    values reach ``keep`` of the total,

    .. math::

        k_x = \min\Big\{k : \textstyle\sum_{i \le k} s_i^2 \ge \mathrm{keep} \sum_i s_i^2\Big\},

    then the result is the mean of the :math:`\min(k_x, k_y)` canonical correlations of the
    reduced sides. Unchanged by orthogonal maps and isotropic scaling of either side (not by
    general invertible maps, which change the singular values).

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer (numpy array or torch tensor).
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    keep : float in (0, 1], default=0.99
        Share of variance the kept directions explain (``1`` keeps every direction: plain CCA).

    Returns
    -------
    float
        SVCCA in [0, 1].

    Raises
    ------
    NotEnoughDataError
        ``k_x + k_y > n_images - 1``: some correlations would be 1 by construction; use more
        images or a smaller ``keep``.
    InputValueError
        Different image counts, NaN or infinite values, a constant layer, a bad ``keep``.

    Notes
    -----
    google/svcca's ``cca_core`` truncates by the sum of singular values (not squared) and
    regularises; here the share is of variance, as in the paper, and nothing is regularised.

    References
    ----------
    .. [1] Raghu, M., Gilmer, J., Yosinski, J., Sohl-Dickstein, J. (2017). SVCCA: Singular
       vector canonical correlation analysis for deep learning dynamics and interpretability.
       NeurIPS.
    """
    keep = check_keep(keep)
    return float(np.mean(_pair(x, y, keep, "SVCCA").rho))


def pwcca(x: Any, y: Any, *, keep: float = 0.99) -> float:
    r"""Projection-weighted CCA (Morcos et al. 2018), after SVD truncation as in SVCCA.

    .. math::

        \mathrm{PWCCA} = \sum_i \alpha_i \rho_i,\qquad
        \alpha_i = \frac{\tilde\alpha_i}{\sum_j \tilde\alpha_j},\quad
        \tilde\alpha_i = \sum_{u} \lvert \langle h_i, \bar x_u \rangle \rvert,

    where :math:`h_i` is the i-th canonical variate (unit vector over images) of the side with
    fewer kept directions (``x`` on a tie) and :math:`\bar x_u` runs over that side's centred
    units. Canonical directions that account for more of the units weigh more. The weights
    depend on the unit basis: PWCCA is unchanged by isotropic scaling, shifts, permutations and
    sign flips of units, but not by rotations of them (unlike :func:`svcca`).

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer (numpy array or torch tensor).
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    keep : float in (0, 1], default=0.99
        Share of variance kept on each side before CCA (``1``: no truncation).

    Returns
    -------
    float
        PWCCA in [0, 1].

    Raises
    ------
    NotEnoughDataError
        ``k_x + k_y > n_images - 1``.
    InputValueError
        Different image counts, NaN or infinite values, a constant layer, a bad ``keep``.

    Notes
    -----
    google/svcca's ``pwcca.py`` projects the *uncentred* activations and regularises the CCA; here
    both sides are centred and truncated as in :func:`svcca`.

    References
    ----------
    .. [1] Morcos, A. S., Raghu, M., Bengio, S. (2018). Insights on representational similarity
       in neural networks with canonical correlation. NeurIPS.
    """
    keep = check_keep(keep)
    c = _pair(x, y, keep, "PWCCA")
    return float(np.sum(c.weights * c.rho))
