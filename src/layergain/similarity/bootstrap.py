r"""Bootstrap draws of CKA that a resample's duplicated images do not inflate.

Resampling images with replacement puts copies of one image in the resample. A copy paired with
itself looks perfectly dependent in both representations, so CKA computed on the resample is
pushed up -- even for independent features, and even debiased CKA (see
:func:`~layergain.similarity.linear_cka` and :func:`~layergain.similarity.debiased_cka`). Two remedies:

``method="exclude-duplicates"``
    Resample with replacement, but leave every pair of an image with its own copy out of the
    HSIC sums. With multiplicities :math:`w_i` (how often image *i* was drawn), the unbiased
    HSIC becomes a weighted U-statistic over tuples of *distinct* images,

    .. math::

        \mathrm{HSIC}_w = \frac{\sum_{i \ne j} w_i w_j k_{ij} l_{ij}}{c_2}
          + \frac{\sum_{(i,j,q,r)\ \mathrm{distinct}} w_i w_j w_q w_r k_{ij} l_{qr}}{c_4}
          - 2\,\frac{\sum_{(i,j,q)\ \mathrm{distinct}} w_i w_j w_q k_{ij} l_{iq}}{c_3},

    where :math:`c_m` is the sum of the weight products over the same tuples; with all
    :math:`w_i = 1` it is exactly the estimator of Song et al. (2012). Every sum reduces to
    products of the weight vector with fixed n x n matrices (:math:`\tilde K`, :math:`\tilde L`,
    :math:`\tilde K \circ \tilde L`, ...), so B draws cost a few (B x n)(n x n) products and the
    Gram matrices are formed once.
``method="subsample"``
    m-out-of-n subsampling without replacement (default m = n // 2): every draw is the ordinary
    estimator on m distinct images. For a statistic that is asymptotically linear, the spread of
    half-samples matches that of the full-sample estimate (Var ~ (n - m) / (m (n - 1)) x
    sigma^2); where the statistic is degenerate (independent features), the draws are wider
    than needed, i.e. conservative, never inflated.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.errors import InputValueError
from layergain.similarity._backend import NumpyOps
from layergain.similarity.cka import check_debiased_rows, n_rows, prepare_pair
from layergain.validation import check_choice, check_int

__all__ = ["bootstrap_cka"]

Method = Literal["exclude-duplicates", "subsample"]
_METHODS: tuple[str, ...] = ("exclude-duplicates", "subsample")
_DRAWS_PER_BLOCK = 128


def bootstrap_cka(
    x: Any,
    y: Any,
    *,
    kind: Literal["linear", "debiased"] = "debiased",
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = None,
    method: Method = "exclude-duplicates",
    subsample_size: int | None = None,
) -> xr.DataArray:
    r"""Bootstrap draws of linear or debiased CKA between two representations of the same images.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer (numpy array or torch tensor; computed with numpy).
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    kind : {"linear", "debiased"}, default="debiased"
        Debiased CKA (unbiased HSIC) or plain linear CKA. Plain CKA sums over each image paired
        with itself by definition, so it cannot tell a copy from the image and is available with
        ``method="subsample"`` only.
    n_boot : int, default=1000
        Number of draws.
    seed : int, numpy.random.Generator or None, default=None
        Seed of the resampling, converted once with :func:`numpy.random.default_rng`.
    method : {"exclude-duplicates", "subsample"}, default="exclude-duplicates"
        How duplicated images are kept from inflating the draws (see the module docstring).
    subsample_size : int, optional
        Images per draw for ``method="subsample"``; default ``n_images // 2``.

    Returns
    -------
    xarray.DataArray of shape (n_boot,)
        The draws along dim ``"boot"``; attrs ``kind``, ``method``, ``n_boot``, ``n_images``,
        ``estimate`` (the full-sample value), ``n_undefined`` (draws left NaN because a
        self-HSIC was not positive), ``subsample_size`` (subsample only) and ``seed`` (when an
        int was given). A percentile interval is ``draws.quantile([0.025, 0.975])``.

    Raises
    ------
    InputValueError
        Bad option, linear CKA with duplicates, or the input errors of
        :func:`~layergain.similarity.debiased_cka`.
    NotEnoughDataError
        Fewer than 4 images, or a subsample of fewer than 4.

    Notes
    -----
    Memory: five n x n matrices (float32 for float32 input). Time: eight (for subsampling,
    five) products of a (block of draws x n) weight matrix with them.

    References
    ----------
    .. [1] Song, L., Smola, A., Gretton, A., Bedo, J., Borgwardt, K. (2012). Feature selection
       via dependence maximization. JMLR 13, 1393-1434.
    .. [2] Politis, D. N., Romano, J. P. (1994). Large sample confidence regions based on
       subsamples under minimal assumptions. Annals of Statistics 22, 2031-2050.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(200, 50)), rng.normal(size=(200, 50))
    >>> draws = bootstrap_cka(x, y, n_boot=200, seed=0)
    >>> lo, hi = np.quantile(draws, [0.025, 0.975])
    >>> bool(lo < 0 < hi)
    True
    """
    kind = check_choice(kind, "kind", ("linear", "debiased"))
    method = check_choice(method, "method", _METHODS)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    if kind == "linear" and method == "exclude-duplicates":
        raise InputValueError(
            "Plain linear CKA sums over every image paired with itself, so a resample's copies "
            "cannot be left out of it. Use kind='debiased', or method='subsample'."
        )
    n = n_rows(x)
    check_debiased_rows(n, "x")
    _, xc, yc = prepare_pair(x, y, min_rows=4, ops=NumpyOps())
    m = _subsample_size(subsample_size, n) if method == "subsample" else n
    rng = np.random.default_rng(seed)
    weights = _draw_weights(rng, n, n_boot, method, m)

    mats = _WeightedGrams(xc, yc)
    statistic = mats.debiased if kind == "debiased" else mats.linear
    estimate = float(statistic(np.ones((1, n), dtype=mats.dtype), binary=True)[0])
    draws = np.concatenate(
        [
            statistic(weights[i : i + _DRAWS_PER_BLOCK], binary=method == "subsample")
            for i in range(0, n_boot, _DRAWS_PER_BLOCK)
        ]
    )
    attrs: dict[str, Any] = {
        "kind": kind,
        "method": method,
        "n_boot": n_boot,
        "n_images": n,
        "estimate": estimate,
        "n_undefined": int(np.isnan(draws).sum()),
    }
    if method == "subsample":
        attrs["subsample_size"] = m
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        attrs["seed"] = int(seed)
    return xr.DataArray(draws, dims=(S.BOOT,), coords={S.BOOT: np.arange(n_boot)}, name="cka_boot", attrs=attrs)


def _subsample_size(size: int | None, n: int) -> int:
    if size is None:
        size = n // 2
    size = check_int(size, "subsample_size", minimum=4)
    if size >= n:
        raise InputValueError(
            f"`subsample_size` must be smaller than the number of images ({n}), got {size}; "
            "a subsample of all images has no spread. The default is n_images // 2."
        )
    return size


def _draw_weights(rng: np.random.Generator, n: int, n_boot: int, method: str, m: int) -> np.ndarray:
    """Multiplicity of every image in every draw, shape (n_boot, n)."""
    if method == "subsample":
        chosen = np.argsort(rng.random((n_boot, n)), axis=1)[:, :m]
    else:
        chosen = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], chosen), 1.0)
    return counts


class _WeightedGrams:
    """The fixed n x n matrices of the weighted estimators, formed once per pair of layers."""

    def __init__(self, xc: np.ndarray, yc: np.ndarray) -> None:
        self.dtype = xc.dtype
        self.n = xc.shape[0]
        self.dx = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
        self.dy = np.einsum("ij,ij->i", yc, yc, dtype=np.float64)
        k = xc @ xc.T
        ell = yc @ yc.T
        np.fill_diagonal(k, 0)
        np.fill_diagonal(ell, 0)
        self.k, self.l = k, ell
        self.p = {"kl": k * ell, "kk": k * k, "ll": ell * ell}

    def _products(self, w: np.ndarray, binary: bool) -> dict[str, Any]:
        """Everything a block of draws needs, as float64 (draws x n) arrays or (draws,) sums."""
        wc = w.astype(self.dtype)
        out: dict[str, Any] = {"w": w, "ak": (wc @ self.k).astype(np.float64), "al": (wc @ self.l).astype(np.float64)}
        w2 = w * w
        w2c = wc if binary else w2.astype(self.dtype)
        for key, p in self.p.items():
            wp = (wc @ p).astype(np.float64)
            w2p = wp if binary else (w2c @ p).astype(np.float64)
            out["wPw", key] = np.einsum("bi,bi->b", w, wp)
            out["wPw2", key] = np.einsum("bi,bi->b", w2, wp)
            out["w2Pw2", key] = np.einsum("bi,bi->b", w2, w2p)
        return out

    def debiased(self, w: np.ndarray, *, binary: bool) -> np.ndarray:
        """Debiased CKA of each draw (rows of ``w``), duplicates excluded; NaN where undefined."""
        return _ratio(*self.unbiased(w, binary=binary))

    def unbiased(self, w: np.ndarray, *, binary: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted unbiased HSIC (x, y), (x, x), (y, y) of each draw (rows of ``w``)."""
        pr = self._products(w, binary)
        c2, c3, c4 = _tuple_weights(w)
        a = {"k": pr["ak"], "l": pr["al"]}
        q = {key: np.einsum("bi,bi->b", w, v) for key, v in a.items()}

        def hsic(u: str, v: str) -> np.ndarray:
            key = u + v
            wkl = np.einsum("bi,bi,bi->b", w, a[u], a[v])
            if not (c4 > 0).all():  # fewer than 4 distinct images in a draw: undefined there
                c2[c4 <= 0] = c3[c4 <= 0] = c4[c4 <= 0] = np.nan
            w2kl = np.einsum("bi,bi,bi->b", w * w, a[u], a[v])
            t1 = pr["wPw", key] / c2
            t2 = (q[u] * q[v] - 4.0 * w2kl + 2.0 * pr["w2Pw2", key]) / c4
            t3 = (wkl - pr["wPw2", key]) / c3
            return t1 + t2 - 2.0 * t3

        return hsic("k", "l"), hsic("k", "k"), hsic("l", "l")

    def linear(self, w: np.ndarray, *, binary: bool) -> np.ndarray:
        """Plain linear CKA of each subsample (rows of ``w`` are 0/1)."""
        pr = self._products(w, binary)
        m = w.sum(axis=1)
        a = {"k": pr["ak"] + w * self.dx, "l": pr["al"] + w * self.dy}
        d = {"k": self.dx, "l": self.dy}
        q = {key: np.einsum("bi,bi->b", w, v) for key, v in a.items()}

        def hsic(u: str, v: str) -> np.ndarray:
            key = u + v
            trace = pr["wPw", key] + (w * w) @ (d[u] * d[v])
            cross = np.einsum("bi,bi,bi->b", w, a[u], a[v])
            return trace - 2.0 * cross / m + q[u] * q[v] / m**2

        return _ratio(hsic("k", "l"), hsic("k", "k"), hsic("l", "l"))


def _tuple_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of weight products over ordered pairs, triples and quadruples of distinct images."""
    p1, p2, p3, p4 = (np.sum(w**k, axis=1) for k in (1, 2, 3, 4))
    c2 = p1**2 - p2
    c3 = p1**3 - 3 * p1 * p2 + 2 * p3
    c4 = p1**4 - 6 * p1**2 * p2 + 3 * p2**2 + 8 * p1 * p3 - 6 * p4
    return c2, c3, c4


def _ratio(cross: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
    den = hx * hy
    out = np.full(cross.shape, np.nan)
    ok = (hx > 0) & (hy > 0)
    out[ok] = cross[ok] / np.sqrt(den[ok])
    return out
