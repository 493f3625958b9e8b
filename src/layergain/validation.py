"""Checks of user input shared by every public entry point.

Messages say which argument, what is allowed, what was received and how to fix it.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError

__all__ = [
    "as_float_matrix",
    "check_choice",
    "check_feature_shape",
    "check_int",
    "check_paired",
    "check_probability",
]


def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU.

    torch is never imported here: a tensor is recognised by its methods.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def as_float_matrix(
    x: Any,
    name: str,
    *,
    min_rows: int = 2,
    dtype: type = np.float64,
    allow_constant: bool = True,
) -> np.ndarray:
    """Validate a feature matrix of shape (n_images, n_units) and return it as ``dtype``.

    Raises
    ------
    InputTypeError
        If ``x`` is not numeric.
    InputValueError
        If ``x`` is not 2-D, has non-finite values, fewer than ``min_rows`` rows, or (with
        ``allow_constant=False``) every column is constant.
    """
    arr = _to_numpy(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise InputTypeError(f"`{name}` must be a numeric array, got dtype {arr.dtype}.")
    check_feature_shape(arr.shape, name, min_rows=min_rows)
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputValueError(
            f"`{name}` contains {bad} NaN or infinite value(s). Remove the affected images or "
            "units, or replace the values (e.g. numpy.nan_to_num) before computing."
        )
    if not allow_constant and np.all(np.ptp(arr, axis=0) == 0):
        raise InputValueError(
            f"`{name}` is constant across images (every unit has zero variance); "
            "the measure is undefined. Check that the layer's features are not collapsed."
        )
    return arr


def check_feature_shape(shape: tuple[int, ...], name: str, *, min_rows: int = 2) -> None:
    """Raise unless ``shape`` is (n_images, n_units) with ``n_images >= min_rows`` and a unit.

    Shared by :func:`as_float_matrix` and by code that checks arrays it must not copy (tensors
    on an accelerator).
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise InputValueError(
            f"`{name}` must be 2-D of shape (n_images, n_units), got shape {shape}. "
            "Flatten or pool each image's feature map to a vector first."
        )
    if shape[0] < min_rows:
        raise NotEnoughDataError(
            f"`{name}` has {shape[0]} image(s) (shape={shape}) while a minimum of "
            f"{min_rows} is required."
        )
    if shape[1] < 1:
        raise InputValueError(f"`{name}` has no units (shape={shape}).")


def check_paired(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise if ``x`` and ``y`` do not describe the same images (same number of rows)."""
    if x.shape[0] != y.shape[0]:
        raise InputValueError(
            f"`{names[0]}` and `{names[1]}` must have the same number of images (rows), got "
            f"{x.shape[0]} and {y.shape[0]}. Pass features of the same images in the same order."
        )


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int if it is an integer within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"`{name}` must be an integer, got {type(value).__name__} {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputValueError(f"`{name}` must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise InputValueError(f"`{name}` must be <= {maximum}, got {value}.")
    return value


def check_probability(value: Any, name: str, *, open_interval: bool = True) -> float:
    """Return ``value`` as float if it lies in (0, 1) (or [0, 1] with ``open_interval=False``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}.")
    value = float(value)
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise InputValueError(f"`{name}` must lie in {interval}, got {value}.")
    return value


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise InputValueError(f"`{name}` must be one of {allowed}, got {value!r}.")
    return value
