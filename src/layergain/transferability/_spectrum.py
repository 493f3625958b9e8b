r"""One layer's features and their spectra, computed once and shared by the estimators (private).

LogME, H-score, N-LEEP, GBC and TransRate all start from a singular value decomposition of the
same (n_images, n_units) matrix, centred or not. :class:`Layer` holds the features of one
layer and computes each decomposition the first time an estimator asks for it, so that
:func:`layergain.transferability.study_transferability` pays for one per layer instead of one
per estimator.

:class:`Spectrum` takes the decomposition from the eigendecomposition of the smaller Gram matrix
(:math:`A^\top A` when there are more images than units, :math:`A A^\top` otherwise), as the
authors' LogME code does: one matrix product and a :math:`\min(n, D)`-square ``eigh``, 4x faster
than LAPACK's SVD of the tall matrix at 5000 x 1280 (bench/README.md, "Transferability"). The
price is precision in the smallest directions: an eigenvalue is known to about
:math:`\max(n, D)\,\epsilon\,\lambda_1`, so directions below that (singular values under about
:math:`10^{-6}\,s_1` at n = 5000) are dropped as numerically zero. They carry less than
:math:`10^{-12}` of the variance; every estimator here weights a direction by its variance.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from layergain.transferability._checks import check_features_labels

__all__ = ["Layer", "Spectrum", "singular_values"]


def _gram_eigh(a: np.ndarray, vectors: bool) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Eigenvalues (descending, numerically zero ones dropped) of the smaller Gram matrix of ``a``.

    Returns the eigenvalues, the eigenvectors (or None) and whether they are the right singular
    vectors (``A^T A``) rather than the left ones (``A A^T``).
    """
    n, d = a.shape
    right = d <= n
    gram = a.T @ a if right else a @ a.T
    if vectors:
        lam, vec = np.linalg.eigh(gram)
        lam, vec = lam[::-1], vec[:, ::-1]
    else:
        lam, vec = np.linalg.eigvalsh(gram)[::-1], None
    top = lam[0] if lam.size else 0.0
    keep = lam > top * max(n, d) * np.finfo(float).eps if top > 0 else np.zeros(lam.size, bool)
    return lam[keep], (vec[:, keep] if vec is not None else None), right


def singular_values(a: np.ndarray) -> np.ndarray:
    """Singular values of ``a`` (descending), numerically zero ones dropped, without vectors."""
    lam, _, _ = _gram_eigh(a, vectors=False)
    return np.sqrt(lam)


class Spectrum:
    r"""Thin SVD :math:`A = U \operatorname{diag}(s) V^\top` of one matrix, numerically zero directions dropped.

    ``values`` (k,) and ``vt`` (k, D) are held; :meth:`scores` gives :math:`U_{:k} s_{:k} = A V_{:k}`
    (principal-component scores when ``A`` is centred) and :meth:`project` gives :math:`U^\top B`.
    """

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        lam, vec, right = _gram_eigh(a, vectors=True)
        self.values = np.sqrt(lam)
        if right:
            self.vt, self._u = vec.T, None
        else:
            self._u = vec
            self.vt = (vec.T @ a) / self.values[:, None] if lam.size else np.zeros((0, a.shape[1]))

    def scores(self, k: int) -> np.ndarray:
        """The first ``k`` columns of :math:`U s` (n, k)."""
        if self._u is not None:
            return self._u[:, :k] * self.values[:k]
        return self._a @ self.vt[:k].T

    def project(self, b: np.ndarray) -> np.ndarray:
        r""":math:`U^\top B` for ``b`` of shape (n,) or (n, m)."""
        if self._u is not None:
            return self._u.T @ b
        return (self.vt @ (self._a.T @ b)) / (self.values if b.ndim == 1 else self.values[:, None])


class Layer:
    """One layer's features, validated once, with their centred form and spectra computed on first use."""

    def __init__(self, features: Any) -> None:
        self._features = features
        self._x: np.ndarray | None = None

    def check(self, labels: Any, estimator: str, *, min_per_class: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`check_features_labels` in the words of ``estimator``; the float64 features are kept."""
        x, y, counts = check_features_labels(self._x if self._x is not None else self._features, labels,
                                             estimator, min_per_class=min_per_class)
        self._x = x
        return x, y, counts

    @property
    def x(self) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Layer.check must run before the features are used.")
        return self._x

    @cached_property
    def centred(self) -> np.ndarray:
        return self.x - self.x.mean(axis=0)

    @cached_property
    def raw_spectrum(self) -> Spectrum:
        return Spectrum(self.x)

    @cached_property
    def centred_spectrum(self) -> Spectrum:
        return Spectrum(self.centred)
