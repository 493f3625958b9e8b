r"""Linear and debiased CKA over image sets too large to hold in memory, one minibatch at a time.

The accumulators keep sufficient statistics, not per-batch estimates: the final values equal
:func:`~layergain.similarity.linear_cka` and :func:`~layergain.similarity.debiased_cka` on all
images (up to rounding), unlike the average of per-minibatch unbiased HSIC of Nguyen et al.
(2021), whose value depends on the batch size. For shifted features :math:`z_i = x_i - c`
(``c``: the mean of the first batch, for accuracy) the sums are

.. math::

    C_{xy} = \sum_i z^x_i {z^y_i}^\top,\quad S_x = \sum_i z^x_i,\quad
    d^x_i = \lVert z^x_i \rVert^2,\quad \sum_i d^x_i d^y_i,\quad \sum_i z^x_i d^y_i,\ \dots

and, since the unbiased HSIC is unchanged by a shift of either side,

.. math::

    \operatorname{tr}(\tilde K \tilde L) = \lVert C_{xy} \rVert_F^2 - \textstyle\sum_i d^x_i d^y_i,\quad
    \mathbf 1^\top \tilde K \mathbf 1 = \lVert S_x \rVert^2 - \textstyle\sum_i d^x_i,

    \mathbf 1^\top \tilde K \tilde L \mathbf 1 = S_x^\top C_{xy} S_y - S_x^\top \textstyle\sum_i z^x_i d^y_i
        - S_y^\top \textstyle\sum_i z^y_i d^x_i + \textstyle\sum_i d^x_i d^y_i .

Memory is that of the unit-by-unit products (p x q per pair of layers), independent of the
number of images. Batches are multiplied at their own precision and accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from layergain.errors import InputValueError
from layergain.similarity._backend import NumpyOps
from layergain.similarity._hsic import unbiased_hsic
from layergain.similarity.cka import check_debiased_rows, common_float, undefined_debiased
from layergain.similarity.matrix import KINDS, check_same_images, layer_items, matrix_array
from layergain.validation import as_float_matrix, check_choice, check_paired

__all__ = ["StreamingCKA", "StreamingCKAMatrix"]

_OPS = NumpyOps()


class _Side:
    """Running sums of the layers of one side (rows or columns of the matrix)."""

    def __init__(self, names: list[str], widths: list[int], first: list[np.ndarray]) -> None:
        self.names = names
        self.widths = widths
        self.starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp)
        self.shift = [a.mean(axis=0, dtype=np.float64) for a in first]
        total = sum(widths)
        self.s = np.zeros(total)
        self.cself = [np.zeros((w, w)) for w in widths]
        self.dd = np.zeros(len(widths))  # sum_i d_ai^2
        self.sd = np.zeros(len(widths))  # sum_i d_ai
        self.zd = np.zeros(total)  # sum_i z_ai d_ai, layer by layer

    def shifted(self, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        z = [a - c.astype(a.dtype) for a, c in zip(arrays, self.shift)]
        d = np.stack([_OPS.row_sq64(b) for b in z], axis=1)
        return z, d

    def add(self, z: list[np.ndarray], d: np.ndarray) -> None:
        for i, b in enumerate(z):
            lo = self.starts[i]
            self.s[lo : lo + b.shape[1]] += _OPS.col_sum64(b)
            self.cself[i] += _OPS.t_matmul(b, b).astype(np.float64)
            self.zd[lo : lo + b.shape[1]] += b.T.astype(np.float64) @ d[:, i]
        self.dd += np.einsum("ia,ia->a", d, d)
        self.sd += d.sum(axis=0)

    def blocks(self, v: np.ndarray) -> list[np.ndarray]:
        return [v[lo : lo + w] for lo, w in zip(self.starts, self.widths)]


class StreamingCKAMatrix:
    r"""Cross-layer linear and debiased CKA accumulated over minibatches of images.

    Feed batches of the same images to both sides with :meth:`update`; read the matrix with
    :meth:`cka_matrix`. The result equals :func:`~layergain.similarity.cka_matrix` on all images
    (up to rounding).

    Attributes
    ----------
    n_images_ : int
        Images seen so far.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> acc = StreamingCKAMatrix()
    >>> for _ in range(4):
    ...     a = rng.normal(size=(64, 10))
    ...     _ = acc.update({"a": a, "b": a[:, :5]}, {"c": a @ rng.normal(size=(10, 3))})
    >>> acc.cka_matrix(kind="debiased").shape
    (2, 1)
    """

    def __init__(self) -> None:
        self.n_images_ = 0
        self._x: _Side | None = None
        self._y: _Side | None = None

    def update(self, xs: Mapping[str, Any], ys: Mapping[str, Any]) -> StreamingCKAMatrix:
        """Add one batch: ``xs`` and ``ys`` map layer name -> array (batch_size, n_units).

        Every batch must have the same layer names, in the same order, with the same widths;
        numpy arrays or torch tensors (moved to the CPU).
        """
        names_x, arrays_x = layer_items(xs, "xs")
        names_y, arrays_y = layer_items(ys, "ys")
        dtype = common_float(_OPS, *arrays_x, *arrays_y)
        ax = self._validate(names_x, arrays_x, "xs", dtype)
        ay = self._validate(names_y, arrays_y, "ys", dtype)
        check_paired(ax[0], ay[0], ("xs", "ys"))
        if self._x is None or self._y is None:
            x = self._x = _Side(names_x, [a.shape[1] for a in ax], ax)
            y = self._y = _Side(names_y, [a.shape[1] for a in ay], ay)
            self._cross = np.zeros((sum(x.widths), sum(y.widths)))
            self._ddxy = np.zeros((len(names_x), len(names_y)))
            self._zxdy = np.zeros((sum(x.widths), len(names_y)))
            self._zydx = np.zeros((sum(y.widths), len(names_x)))
        else:
            x, y = self._x, self._y
            self._check_same_layers(x, names_x, ax, "xs")
            self._check_same_layers(y, names_y, ay, "ys")
        zx, dx = x.shifted(ax)
        zy, dy = y.shifted(ay)
        cx, cy = _OPS.concat(zx), _OPS.concat(zy)
        self._cross += _OPS.t_matmul(cx, cy).astype(np.float64)
        self._ddxy += dx.T @ dy
        self._zxdy += cx.T.astype(np.float64) @ dy
        self._zydx += cy.T.astype(np.float64) @ dx
        x.add(zx, dx)
        y.add(zy, dy)
        self.n_images_ += int(ax[0].shape[0])
        return self

    @staticmethod
    def _validate(names: list[str], arrays: list[Any], label: str, dtype: Any) -> list[np.ndarray]:
        out = [
            as_float_matrix(a, f"{label}[{name!r}]", min_rows=1, dtype=dtype)
            for name, a in zip(names, arrays)
        ]
        check_same_images(names, out, label)
        return out

    @staticmethod
    def _check_same_layers(side: _Side, names: list[str], arrays: list[np.ndarray], label: str) -> None:
        widths = [a.shape[1] for a in arrays]
        if names != side.names or widths != side.widths:
            raise InputValueError(
                f"Every batch must have the same layers in `{label}`: first batch "
                f"{dict(zip(side.names, side.widths))}, this batch {dict(zip(names, widths))} "
                "(name: units)."
            )

    def cka_matrix(self, *, kind: Literal["linear", "debiased"] = "linear") -> xr.DataArray:
        """CKA of every pair of layers over all images seen, as in :func:`cka_matrix`."""
        kind = check_choice(kind, "kind", KINDS)
        if self._x is None or self._y is None:
            raise InputValueError("No batch was added; call `update` with at least one batch first.")
        n = self.n_images_
        x, y = self._x, self._y
        if kind == "linear":
            values = self._linear(x, y, n)
        else:
            check_debiased_rows(n, "xs")
            values = self._debiased(x, y, n)
        return matrix_array(values, x.names, y.names, kind, n, streaming=1)

    def _block(self, x: _Side, y: _Side, a: int, b: int) -> np.ndarray:
        return self._cross[x.starts[a] : x.starts[a] + x.widths[a], y.starts[b] : y.starts[b] + y.widths[b]]

    def _linear(self, x: _Side, y: _Side, n: int) -> np.ndarray:
        mx, my = x.blocks(x.s / n), y.blocks(y.s / n)
        fx = self._self_norms(x, mx, n, "xs")
        fy = self._self_norms(y, my, n, "ys")
        out = np.empty((len(x.names), len(y.names)))
        for a in range(len(x.names)):
            for b in range(len(y.names)):
                centred = self._block(x, y, a, b) - n * np.outer(mx[a], my[b])
                out[a, b] = np.sum(centred**2)
        return out / np.sqrt(np.outer(fx, fy))

    @staticmethod
    def _self_norms(side: _Side, means: list[np.ndarray], n: int, label: str) -> np.ndarray:
        f = np.array([np.sum((c - n * np.outer(m, m)) ** 2) for c, m in zip(side.cself, means)])
        bad = np.flatnonzero(~(f > 0))
        if bad.size:
            raise InputValueError(
                f"`{label}[{side.names[bad[0]]!r}]` is constant across all images seen (every unit "
                "has zero variance); CKA is undefined. Check that the layer's features are not collapsed."
            )
        return f

    def _debiased(self, x: _Side, y: _Side, n: int) -> np.ndarray:
        self._self_norms(x, x.blocks(x.s / n), n, "xs")
        self._self_norms(y, y.blocks(y.s / n), n, "ys")
        sx, sy = x.blocks(x.s), y.blocks(y.s)
        hx = self._self_hsic(x, n, "xs")
        hy = self._self_hsic(y, n, "ys")
        out = np.empty((len(x.names), len(y.names)))
        zxdy, zydx = x.blocks(self._zxdy), y.blocks(self._zydx)
        for a in range(len(x.names)):
            for b in range(len(y.names)):
                c = self._block(x, y, a, b)
                trace = np.sum(c**2) - self._ddxy[a, b]
                sums = (sx[a] @ sx[a] - x.sd[a]) * (sy[b] @ sy[b] - y.sd[b])
                dots = sx[a] @ c @ sy[b] - sx[a] @ zxdy[a][:, b] - sy[b] @ zydx[b][:, a] + self._ddxy[a, b]
                out[a, b] = unbiased_hsic(n, trace, sums, dots) / np.sqrt(hx[a] * hy[b])
        return out

    @staticmethod
    def _self_hsic(side: _Side, n: int, label: str) -> np.ndarray:
        s, zd = side.blocks(side.s), side.blocks(side.zd)
        h = np.empty(len(side.names))
        for a, c in enumerate(side.cself):
            trace = np.sum(c**2) - side.dd[a]
            sums = (s[a] @ s[a] - side.sd[a]) ** 2
            dots = s[a] @ c @ s[a] - 2.0 * s[a] @ zd[a] + side.dd[a]
            h[a] = unbiased_hsic(n, trace, sums, dots)
            if not h[a] > 0:
                raise undefined_debiased(f"{label}[{side.names[a]!r}]", float(h[a]), n)
        return h


class StreamingCKA:
    r"""Linear and debiased CKA of one pair of representations, accumulated over minibatches.

    Equal to :func:`~layergain.similarity.linear_cka` and
    :func:`~layergain.similarity.debiased_cka` on all images, up to rounding; memory grows with
    units (p x q), not with images.

    Attributes
    ----------
    n_images_ : int
        Images seen so far.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> acc = StreamingCKA()
    >>> for _ in range(4):
    ...     x = rng.normal(size=(64, 10))
    ...     _ = acc.update(x, 2 * x)
    >>> round(acc.linear_cka(), 6)
    1.0
    """

    def __init__(self) -> None:
        self._matrix = StreamingCKAMatrix()

    @property
    def n_images_(self) -> int:
        return self._matrix.n_images_

    def update(self, x: Any, y: Any) -> StreamingCKA:
        """Add one batch of the same images: arrays of shape (batch_size, n_units_x / _y)."""
        self._matrix.update({"x": x}, {"y": y})
        return self

    def linear_cka(self) -> float:
        """Linear CKA over all images seen."""
        return float(self._matrix.cka_matrix(kind="linear").values[0, 0])

    def debiased_cka(self) -> float:
        """Debiased CKA over all images seen (needs at least 4)."""
        return float(self._matrix.cka_matrix(kind="debiased").values[0, 0])
