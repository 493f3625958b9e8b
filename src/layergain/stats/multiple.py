"""Corrections for testing every layer: Holm (primary) and Benjamini-Hochberg."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

from layergain.errors import InputTypeError, InputValueError
from layergain.validation import check_choice

__all__ = ["CorrectionMethod", "adjust_pvalues"]

CorrectionMethod = Literal["holm", "fdr_bh"]


def _adjust_family(p: np.ndarray, method: str) -> np.ndarray:
    out = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method=method)[1]
    return out


def adjust_pvalues(
    pvalues: Any,
    method: CorrectionMethod = "holm",
    *,
    axis: int | None = -1,
) -> np.ndarray:
    r"""Adjust p-values for multiple testing with Holm or Benjamini-Hochberg.

    Parameters
    ----------
    pvalues : array-like of float
        p-values in [0, 1]; NaN (a test that could not be computed) is passed through as NaN and
        is not counted in the family of the others.
    method : {"holm", "fdr_bh"}, default="holm"
        ``"holm"``: Holm's step-down procedure, controlling the family-wise error rate under any
        dependence between the tests (the primary correction across layers). ``"fdr_bh"``:
        Benjamini-Hochberg, controlling the false discovery rate (valid under independence or
        positive regression dependence).
    axis : int or None, default=-1
        Axis along which the families lie (e.g. layers); ``None`` makes every element one family.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values of the same shape, from
        :func:`statsmodels.stats.multitest.multipletests`. A test is rejected at level
        :math:`\alpha` where the adjusted p-value is at most :math:`\alpha`.

    Raises
    ------
    InputTypeError
        If ``pvalues`` is not numeric.
    InputValueError
        If a p-value lies outside [0, 1] or ``method`` is unknown.

    Notes
    -----
    With sorted p-values :math:`p_{(1)} \le \dots \le p_{(m)}`, Holm gives
    :math:`\tilde p_{(i)} = \max_{j \le i} \min\{1, (m - j + 1) p_{(j)}\}` and
    Benjamini-Hochberg :math:`\tilde p_{(i)} = \min_{j \ge i} \min\{1, m p_{(j)} / j\}`.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
    Journal of Statistics*, 6(2), 65-70.

    Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical and
    powerful approach to multiple testing. *Journal of the Royal Statistical Society B*, 57(1),
    289-300.
    """
    method = check_choice(method, "method", ("holm", "fdr_bh"))
    p = np.asarray(pvalues)
    if p.dtype == object or not (np.issubdtype(p.dtype, np.number) or p.dtype == np.bool_):
        raise InputTypeError(f"`pvalues` must be numeric, got dtype {p.dtype}.")
    p = p.astype(np.float64)
    outside = ~np.isnan(p) & ((p < 0) | (p > 1))
    if outside.any():
        raise InputValueError(
            f"`pvalues` must lie in [0, 1] (NaN allowed for tests that could not be computed), got "
            f"{int(outside.sum())} value(s) outside, e.g. {float(p[outside].flat[0])!r}."
        )
    if p.ndim == 0:
        return _adjust_family(p.reshape(1), method).reshape(())
    if axis is None:
        return _adjust_family(p.ravel(), method).reshape(p.shape)
    if not -p.ndim <= axis < p.ndim:
        raise InputValueError(f"`axis` must be None or in [{-p.ndim}, {p.ndim - 1}], got {axis}.")
    return np.apply_along_axis(_adjust_family, axis, p, method)
