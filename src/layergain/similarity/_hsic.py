"""HSIC sums for many layer pairs at once (private engine behind every linear-CKA function).

For centred features ``X`` (n x p) and ``Y`` (n x q) with linear kernels ``K = X X^T`` and
``L = Y Y^T``, everything linear and debiased CKA need is

- ``<K, L> = ||X^T Y||_F^2`` (the biased HSIC numerator, up to ``(n - 1)^-2``),
- ``tr(K~ L~)``, ``K~ 1`` and ``1^T K~ 1`` where ``K~`` is ``K`` with its diagonal set to 0
  (the pieces of the unbiased HSIC of Song et al. 2012).

Two ways to get them, chosen by cost: the *feature* form (products ``X^T Y`` of size p x q, cost
n p q) and the *Gram* form (``K``, ``L`` of size n x n, cost n^2 (p + q) plus n^2 per pair).
With many layers, the feature form makes one product of the concatenated centred layers, so each
layer is centred once and every pair comes out of a single GEMM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.similarity._backend import NumpyOps

__all__ = ["HsicTables", "hsic_tables", "unbiased_hsic"]

# Gram matrices of all layers are kept at once only below this many bytes.
_GRAM_MEMORY = 1 << 30


@dataclass(frozen=True)
class HsicTables:
    """HSIC sums between layers ``a`` (rows) and ``b`` (columns), all float64.

    ``f[a, b] = <K_a, L_b>``, ``t[a, b] = tr(K~_a L~_b)``; ``fx``, ``tx`` (``fy``, ``ty``) the same
    of each row (column) layer with itself; ``rx[a] = K~_a 1``, ``sx[a] = 1^T K~_a 1``.
    """

    n: int
    f: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    t: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    rx: np.ndarray
    ry: np.ndarray
    sx: np.ndarray
    sy: np.ndarray

    def linear_cka(self) -> np.ndarray:
        """Linear CKA (Kornblith et al. 2019) of every pair."""
        return self.f / np.sqrt(np.outer(self.fx, self.fy))

    def unbiased(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unbiased HSIC of every pair, and of each row and column layer with itself."""
        cross = unbiased_hsic(self.n, self.t, np.outer(self.sx, self.sy), self.rx @ self.ry.T)
        hx = unbiased_hsic(self.n, self.tx, self.sx**2, np.einsum("ai,ai->a", self.rx, self.rx))
        hy = unbiased_hsic(self.n, self.ty, self.sy**2, np.einsum("ai,ai->a", self.ry, self.ry))
        return cross, hx, hy

    def debiased_cka(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Debiased CKA of every pair (NaN where a self-HSIC is not positive), and the self-HSICs."""
        cross, hx, hy = self.unbiased()
        den = np.outer(hx, hy)
        out = np.full(cross.shape, np.nan)
        ok = den > 0
        out[ok] = cross[ok] / np.sqrt(den[ok])
        return out, hx, hy


def unbiased_hsic(n: int, trace: Any, sums: Any, dots: Any) -> Any:
    r"""Song et al. (2012), eq. 5, from ``tr(K~ L~)``, ``(1^T K~ 1)(1^T L~ 1)`` and ``1^T K~ L~ 1``."""
    return (trace + sums / ((n - 1) * (n - 2)) - 2.0 * dots / (n - 2)) / (n * (n - 3))


def _starts(widths: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp)


# Cost model, in multiply-adds: a product element costs 1; an element of an n x n Gram matrix
# costs about _PER_GRAM_ELEMENT more in passes over memory (zero diagonal, row sums, chunked
# inner products), and an element of a p x q product about _PER_PRODUCT_ELEMENT (float64 block
# sums of squares). Calibrated on 2 cores with EfficientNet-Lite0 widths, n = 500 ... 2000.
_PER_GRAM_ELEMENT = 100
_PER_PRODUCT_ELEMENT = 10


def use_gram_form(n: int, wx: Sequence[int], wy: Sequence[int] | None, itemsize: int) -> bool:
    """Whether the Gram (n x n) form is cheaper than the feature (p x q) form, and fits memory."""
    sx = sum(wx)
    n_mats = len(wx) + (0 if wy is None else len(wy))
    if n_mats * n * n * itemsize > _GRAM_MEMORY:
        return False
    if wy is None:
        feature = (n + _PER_PRODUCT_ELEMENT) * sx * sx / 2
        pairs = len(wx) * (len(wx) + 1) / 2
        gram = n * n * sx / 2
    else:
        sy = sum(wy)
        squares = sum(w * w for w in wx) + sum(w * w for w in wy)
        feature = (n + _PER_PRODUCT_ELEMENT) * (sx * sy + squares / 2)
        pairs = len(wx) * len(wy) + n_mats
        gram = n * n * (sx + sy) / 2
    gram += n * n * (_PER_GRAM_ELEMENT * n_mats + 2 * pairs)
    return gram < feature


def hsic_tables(ops: NumpyOps, xs: Sequence[Any], ys: Sequence[Any] | None = None) -> HsicTables:
    """HSIC sums between the centred layers ``xs`` and ``ys`` (``ys=None``: ``xs`` with itself).

    Every array has shape (n_images, n_units), is centred, and is of one float dtype.
    """
    n = int(xs[0].shape[0])
    wx = [int(a.shape[1]) for a in xs]
    wy = None if ys is None else [int(b.shape[1]) for b in ys]
    itemsize = 4 if "32" in str(xs[0].dtype) else 8
    if use_gram_form(n, wx, wy, itemsize):
        return _gram_tables(ops, xs, ys)
    return _feature_tables(ops, xs, ys)


def _side_vectors(ops: NumpyOps, blocks: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row squared norms ``d``, ``K~ 1`` and ``1^T K~ 1`` of each layer, from its features."""
    d = np.stack([ops.row_sq64(a) for a in blocks])
    r = np.empty_like(d)
    s = np.empty(len(blocks))
    for i, a in enumerate(blocks):
        u = ops.col_sum64(a)  # ~0 for centred features, kept so the formula is exact
        r[i] = ops.matvec64(a, u) - d[i]
        s[i] = u @ u - d[i].sum()
    return d, r, s


def _feature_tables(ops: NumpyOps, xs: Sequence[Any], ys: Sequence[Any] | None) -> HsicTables:
    n = int(xs[0].shape[0])
    zx = ops.concat(xs)
    ex = _starts([a.shape[1] for a in xs])
    dx, rx, sx = _side_vectors(ops, xs)
    if ys is None:
        f = ops.block_sumsq64(ops.t_matmul(zx, zx), ex, ex)
        fx = fy = np.diag(f).copy()
        dy, ry, sy = dx, rx, sx
    else:
        zy = ops.concat(ys)
        f = ops.block_sumsq64(ops.t_matmul(zx, zy), ex, _starts([b.shape[1] for b in ys]))
        fx = _self_sumsq(ops, xs)
        fy = _self_sumsq(ops, ys)
        dy, ry, sy = _side_vectors(ops, ys)
    t = f - dx @ dy.T
    tx = fx - np.einsum("ai,ai->a", dx, dx)
    ty = fy - np.einsum("ai,ai->a", dy, dy)
    return HsicTables(n, f, fx, fy, t, tx, ty, rx, ry, sx, sy)


def _self_sumsq(ops: NumpyOps, blocks: Sequence[Any]) -> np.ndarray:
    zero = np.zeros(1, dtype=np.intp)
    return np.array([ops.block_sumsq64(ops.t_matmul(a, a), zero, zero)[0, 0] for a in blocks])


def _gram_tables(ops: NumpyOps, xs: Sequence[Any], ys: Sequence[Any] | None) -> HsicTables:
    n = int(xs[0].shape[0])
    kx, dx, rx, sx = _grams(ops, xs)
    if ys is None:
        t = ops.inner64(kx, None)
        tx = ty = np.diag(t).copy()
        dy, ry, sy = dx, rx, sx
    else:
        ky, dy, ry, sy = _grams(ops, ys)
        t = ops.inner64(kx, ky)
        tx = np.array([ops.inner64([k], None)[0, 0] for k in kx])
        ty = np.array([ops.inner64([k], None)[0, 0] for k in ky])
    f = t + dx @ dy.T
    fx = tx + np.einsum("ai,ai->a", dx, dx)
    fy = ty + np.einsum("ai,ai->a", dy, dy)
    return HsicTables(n, f, fx, fy, t, tx, ty, rx, ry, sx, sy)


def _grams(ops: NumpyOps, blocks: Sequence[Any]) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    """Zero-diagonal Gram matrices ``K~`` of the layers, with ``d``, ``K~ 1`` and ``1^T K~ 1``."""
    ks = [ops.zero_diagonal(ops.gram(a)) for a in blocks]
    d = np.stack([ops.row_sq64(a) for a in blocks])
    r = np.stack([ops.row_sum64(k) for k in ks])
    return ks, d, r, r.sum(axis=1)
