"""HSIC sums for many layer pairs at once (private engine behind every linear-CKA function).

For centred features ``X`` (n x p) and ``Y`` (n x q) with linear kernels ``K = X X^T`` and
``L = Y Y^T``, everything linear and debiased CKA need is

- ``<K, L> = ||X^T Y||_F^2`` (the biased HSIC numerator, up to ``(n - 1)^-2``),
- ``tr(K~ L~)``, ``K~ 1`` and ``1^T K~ 1`` where ``K~`` is ``K`` with its diagonal set to 0
  (the pieces of the unbiased HSIC of Song et al. 2012).

Two ways to get them, chosen by cost (:func:`form_costs`), in multiply-adds:

- the *feature* form: products ``X^T Y`` of size p x q, n p q, plus ``X^T X`` and ``Y^T Y``
  (n (p^2 + q^2) / 2, symmetric); with many layers one product of the concatenated centred layers
  (cut into column panels), so each layer is centred once;
- the *Gram* form: the upper triangles of ``K`` and ``L`` by symmetric rank-k products (``syrk``),
  n^2 (p + q) / 2, in tiles that stay in cache, and for every pair the sum over the triangle of
  the tiles' products, n^2 / 2 per pair: all pairs of a tile are one product of the stacked,
  flattened tiles.

For the 17 x 17 EfficientNet-Lite0 matrix (3088 units a side) at n = 2000: feature form
1.91e10 + 0.39e10 = 2.30e10, Gram form 1.24e10 + 0.06e10 = 1.30e10 (one GEMM of the
concatenated features: 1.91e10); at n = 10 000: 1.15e11 against 3.25e11.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layergain.similarity._backend import NumpyOps, n_workers, one_blas_thread, serial_blas

__all__ = ["HsicTables", "hsic_tables", "unbiased_hsic"]

# Bytes of the buffer that holds a tile of every layer's Gram matrix (one per worker; small
# enough that the pair sums read it from cache right after the products wrote it).
_TILE_MEMORY = 1 << 24

# Elements of Gram tiles per float32 product when the pair sums are accumulated (float64
# between chunks keeps the sums of float32 products accurate).
_PAIR_CHUNK = 1 << 16

# Feature form: column panels of the cross product, at least this wide, about this many per worker.
_MIN_PANEL = 128
_PANELS_PER_WORKER = 2


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
        with one_blas_thread():  # (layers x n) (n x layers): tiny, and two threads wait for each other
            dots = self.rx @ self.ry.T
        cross = unbiased_hsic(self.n, self.t, np.outer(self.sx, self.sy), dots)
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


# Cost model, in multiply-adds of a float32 product on one core. Feature form: the products
# plus about _PER_PRODUCT_ELEMENT per element of them (float64 block sums of squares). Gram form:
# the symmetric rank-k tiles, a layer narrower than _MIN_GRAM_WIDTH costing as much as one that
# wide (writing the n x n tiles dominates), plus _PER_PAIR_ELEMENT per Gram element and pair for
# the pair sums (products with few rows, memory-bound). Calibrated on the 2-core machine of
# bench/README.md, float32, n = 500 ... 4000 (bench/similarity.py --calibrate).
_PER_PRODUCT_ELEMENT = 10
_MIN_GRAM_WIDTH = 96
_PER_PAIR_ELEMENT = 4


def form_costs(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> tuple[float, float]:
    """Modelled cost (multiply-adds) of the feature form and of the Gram form."""
    sx = sum(wx)
    mats = list(wx) if wy is None else list(wx) + list(wy)
    if wy is None:
        feature = (n + _PER_PRODUCT_ELEMENT) * float(np.dot(np.cumsum(wx), wx))  # rows a <= b
        pairs = len(wx) * (len(wx) + 1) / 2
    else:
        squares = sum(w * w for w in mats)
        feature = (n + _PER_PRODUCT_ELEMENT) * (sx * sum(wy) + squares / 2)
        pairs = len(wx) * len(wy) + len(mats)
    gram = n * n / 2 * (sum(max(w, _MIN_GRAM_WIDTH) for w in mats) + _PER_PAIR_ELEMENT * pairs)
    return feature, gram


def use_gram_form(n: int, wx: Sequence[int], wy: Sequence[int] | None) -> bool:
    """Whether the Gram (n x n) form is cheaper than the feature (p x q) form for these shapes."""
    feature, gram = form_costs(n, wx, wy)
    return gram < feature


def hsic_tables(
    ops: NumpyOps, xs: Sequence[Any], ys: Sequence[Any] | None = None, *, form: str = "auto"
) -> HsicTables:
    """HSIC sums between the centred layers ``xs`` and ``ys`` (``ys=None``: ``xs`` with itself).

    Every array has shape (n_images, n_units), is centred, and is of one float dtype. ``form``:
    ``"auto"`` (the cheaper by :func:`use_gram_form`), ``"feature"`` or ``"gram"``. The products
    run as single-threaded tasks on all cores (:func:`serial_blas`).
    """
    n = int(xs[0].shape[0])
    wx = [int(a.shape[1]) for a in xs]
    wy = None if ys is None else [int(b.shape[1]) for b in ys]
    costs = form_costs(n, wx, wy)
    gram = costs[1] < costs[0] if form == "auto" else form == "gram"
    tables = _gram_tables if gram else _feature_tables
    with serial_blas():
        return tables(ops, ops.pool(min(costs)), list(xs), None if ys is None else list(ys))


Map = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


def _by_size(pmap: Map, fn: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[float]) -> list[Any]:
    """``pmap(fn, items)`` with the largest tasks started first (balance); results in item order."""
    order = sorted(range(len(items)), key=lambda i: -sizes[i])
    done = pmap(fn, [items[i] for i in order])
    out: list[Any] = [None] * len(items)
    for i, r in zip(order, done):
        out[i] = r
    return out


def _side_vectors(
    ops: NumpyOps, pmap: Map, blocks: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row squared norms ``d``, ``K~ 1`` and ``1^T K~ 1`` of each layer, from its features."""

    def one(a: Any) -> tuple[np.ndarray, np.ndarray, float]:
        d = ops.row_sq64(a)
        u = ops.col_sum64(a)  # ~0 for centred features, kept so the formula is exact
        return d, ops.matvec64(a, u) - d, float(u @ u - d.sum())

    parts = _by_size(pmap, one, blocks, [a.shape[1] for a in blocks])
    return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), np.array([p[2] for p in parts])


def _feature_tables(ops: NumpyOps, pmap: Map, xs: list[Any], ys: list[Any] | None) -> HsicTables:
    n = int(xs[0].shape[0])
    dx, rx, sx = _side_vectors(ops, pmap, xs)
    if ys is None:
        f = _cross_sumsq(ops, pmap, xs, None)
        fx = fy = np.diag(f).copy()
        dy, ry, sy = dx, rx, sx
    else:
        f = _cross_sumsq(ops, pmap, xs, ys)
        fx = _self_sumsq(ops, pmap, xs)
        fy = _self_sumsq(ops, pmap, ys)
        dy, ry, sy = _side_vectors(ops, pmap, ys)
    t = f - dx @ dy.T
    tx = fx - np.einsum("ai,ai->a", dx, dx)
    ty = fy - np.einsum("ai,ai->a", dy, dy)
    return HsicTables(n, f, fx, fy, t, tx, ty, rx, ry, sx, sy)


def _cross_sumsq(ops: NumpyOps, pmap: Map, xs: list[Any], ys: list[Any] | None) -> np.ndarray:
    r"""``f[a, b] = ||X_a^T Y_b||_F^2`` from the product of the concatenated layers, in column panels.

    The product :math:`[X_1 \dots X_A]^\top [Y_1 \dots Y_B]` is cut into panels of the columns
    of one layer ``b`` (wide layers into several), one task each; ``ys=None``: ``xs`` with
    itself, only the panels' rows of layers ``a <= b`` (half the multiply-adds), mirrored.
    """
    wx = [int(a.shape[1]) for a in xs]
    sym = ys is None
    wy = wx if sym else [int(b.shape[1]) for b in ys]
    zx = ops.concat(xs)
    zy = zx if sym else ops.concat(ys)
    ex, ey = _starts(wx), _starts(wy)
    width = max(_MIN_PANEL, -(-sum(wy) // (_PANELS_PER_WORKER * n_workers())))
    panels = [(b, lo, min(lo + width, w)) for b, w in enumerate(wy) for lo in range(0, w, width)]
    zero = np.zeros(1, dtype=np.intp)

    def one(panel: tuple[int, int, int]) -> np.ndarray:
        b, lo, hi = panel
        rows = int(ex[b] + wx[b]) if sym else int(zx.shape[1])
        c = ops.t_matmul(zx[:, :rows], zy[:, ey[b] + lo : ey[b] + hi])
        return ops.block_sumsq64(c, ex[: b + 1] if sym else ex, zero)[:, 0]

    rows_of = [(ex[b] + wx[b] if sym else sum(wx)) * (hi - lo) for b, lo, hi in panels]
    f = np.zeros((len(wx), len(wy)))
    for (b, _, _), col in zip(panels, _by_size(pmap, one, panels, rows_of)):
        f[: col.shape[0], b] += col
    if sym:
        f = np.triu(f) + np.triu(f, 1).T
    return f


def _self_sumsq(ops: NumpyOps, pmap: Map, blocks: Sequence[Any]) -> np.ndarray:
    zero = np.zeros(1, dtype=np.intp)

    def one(a: Any) -> float:
        return float(ops.block_sumsq64(ops.t_matmul(a, a), zero, zero)[0, 0])

    return np.array(_by_size(pmap, one, blocks, [a.shape[1] for a in blocks]))


def _gram_tables(ops: NumpyOps, pmap: Map, xs: list[Any], ys: list[Any] | None) -> HsicTables:
    n = int(xs[0].shape[0])
    dx, rx, sx = _side_vectors(ops, pmap, xs)
    if ys is None:
        t = 2.0 * _upper_inner(ops, pmap, xs, None)[0]
        tx = ty = np.diag(t).copy()
        dy, ry, sy = dx, rx, sx
    else:
        dy, ry, sy = _side_vectors(ops, pmap, ys)
        cross, ux, uy = _upper_inner(ops, pmap, xs, ys)
        t, tx, ty = 2.0 * cross, 2.0 * ux, 2.0 * uy
    f = t + dx @ dy.T
    fx = tx + np.einsum("ai,ai->a", dx, dx)
    fy = ty + np.einsum("ai,ai->a", dy, dy)
    return HsicTables(n, f, fx, fy, t, tx, ty, rx, ry, sx, sy)


def gram_tile_rows(n: int, n_mats: int, itemsize: int) -> int:
    """Side of the Gram tiles: a diagonal and an off-diagonal tile of every layer fill ``_TILE_MEMORY``."""
    return int(min(n, max(32, int(np.sqrt(_TILE_MEMORY / (2 * n_mats * itemsize))))))


def _upper_inner(ops: NumpyOps, pmap: Map, xs: list[Any], ys: list[Any] | None) -> tuple[np.ndarray, ...]:
    r"""Sums over the strict upper triangle, :math:`\sum_{i<j} K_{a,ij} L_{b,ij}`, of every pair.

    ``ys=None``: the full table of ``xs`` with itself (one array). Otherwise: the cross table
    ``xs`` x ``ys`` and each layer with itself (three arrays). The upper triangle of the Gram
    matrices is cut into tiles of image rows ``p:q`` x columns ``c:d`` (a task each): every layer's
    tile goes into one buffer small enough to stay in cache (a symmetric rank-k product for a
    diagonal tile, a product for the others), and the pair sums of the task are products of that
    buffer with itself (float32 products in chunks, float64 between chunks). Results are added
    in task order, so they do not depend on which thread ran what.
    """
    mats = xs if ys is None else xs + ys
    nx = len(xs)
    n = int(mats[0].shape[0])
    side = gram_tile_rows(n, len(mats), 4 if "32" in str(mats[0].dtype) else 8)
    buffers = _Buffers(lambda: ops.zeros((len(mats), 2 * side * side), mats[0]))
    # (p, q, c, d): rows p:q, columns c:d beyond the diagonal tile, which c == q marks as included
    tasks = [
        (p, min(p + side, n), c, min(c + side, n))
        for p in range(0, n, side)
        for c in range(min(p + side, n), max(n, min(p + side, n) + 1), side)
    ]

    def tile(task: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        p, q, c, d = task
        b = q - p
        diagonal = c == q
        buf, last = buffers.take()
        try:
            if diagonal and last is not None and b != last:  # earlier tiles of another size
                buf[:, : b * b] = 0
            for a, m in zip(mats, buf):
                if diagonal:
                    ops.gram_upper(a[p:q], m[: b * b].reshape(b, b))
                if d > c:
                    ops.mm_t_into(a[p:q], a[c:d], m[b * b : b * b + b * (d - c)].reshape(b, d - c))
            total = np.zeros((nx, nx) if ys is None else (nx, len(mats) - nx))
            selfs = np.zeros(len(mats))
            for lo in range(0 if diagonal else b * b, b * b + b * (d - c), _PAIR_CHUNK):
                chunk = buf[:, lo : min(lo + _PAIR_CHUNK, b * b + b * (d - c))]
                if ys is None:
                    total += ops.mm_t64(chunk, chunk)
                else:
                    total += ops.mm_t64(chunk[:nx], chunk[nx:])
                    selfs += ops.row_dot64(chunk)
        finally:
            buffers.give(buf, b if diagonal else last)
        return total, selfs

    parts = pmap(tile, tasks)
    total = functools.reduce(np.add, [t for t, _ in parts])
    if ys is None:
        return (total,)
    selfs = functools.reduce(np.add, [u for _, u in parts])
    return total, selfs[:nx], selfs[nx:]


class _Buffers:
    """Strip buffers for the blocks in flight: one per running task, reused, made on demand."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._free: list[tuple[Any, int | None]] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[Any, int | None]:
        """A buffer and the size of the diagonal tiles last written in it (``None``: all zeros)."""
        with self._lock:
            if self._free:
                return self._free.pop()
        return self._make(), None

    def give(self, buf: Any, tile: int | None) -> None:
        with self._lock:
            self._free.append((buf, tile))
