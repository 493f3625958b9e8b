r"""Cross-layer CKA matrices: every layer of one network against every layer of another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.errors import InputTypeError, InputValueError
from layergain.similarity._backend import NumpyOps, ops_for
from layergain.similarity._hsic import hsic_tables
from layergain.similarity.cka import check_debiased_rows, common_float, n_rows, undefined_debiased
from layergain.validation import check_choice

__all__ = ["cka_matrix"]

Kind = Literal["linear", "debiased"]
KINDS: tuple[str, ...] = ("linear", "debiased")

METHODS = {
    "linear": "linear CKA, biased HSIC (Kornblith et al. 2019)",
    "debiased": "debiased linear CKA, unbiased HSIC (Song et al. 2012; Nguyen et al. 2021)",
}


def layer_items(layers: Any, name: str) -> tuple[list[str], list[Any]]:
    """Names and arrays of an ordered mapping layer name -> features."""
    if not isinstance(layers, Mapping):
        raise InputTypeError(
            f"`{name}` must be a mapping of layer name -> array of shape (n_images, n_units), "
            f"got {type(layers).__name__}."
        )
    if len(layers) == 0:
        raise InputValueError(f"`{name}` has no layers; pass at least one layer name -> array.")
    return [str(k) for k in layers], list(layers.values())


def prepare_layers(
    ops: NumpyOps, names: Sequence[str], arrays: Sequence[Any], label: str, *, min_rows: int, dtype: Any
) -> list[Any]:
    """Validate and centre each layer; all must describe the same number of images."""
    out = []
    for name, arr in zip(names, arrays):
        a = ops.validate(arr, f"{label}[{name!r}]", min_rows=min_rows, dtype=dtype)
        out.append(ops.centre(a))
    check_same_images(names, out, label)
    return out


def check_same_images(names: Sequence[str], arrays: Sequence[Any], label: str) -> None:
    rows = {name: int(a.shape[0]) for name, a in zip(names, arrays)}
    if len(set(rows.values())) > 1:
        raise InputValueError(
            f"Every layer in `{label}` must describe the same images, got image counts {rows}. "
            "Pass features of the same images, in the same order, for every layer."
        )


def cka_matrix(
    xs: Mapping[str, Any], ys: Mapping[str, Any] | None = None, *, kind: Kind = "linear"
) -> xr.DataArray:
    r"""CKA between every layer of ``xs`` and every layer of ``ys``.

    Entry :math:`(a, b)` is :func:`~layergain.similarity.linear_cka` (``kind="linear"``) or
    :func:`~layergain.similarity.debiased_cka` (``kind="debiased"``) of layer ``a`` of ``xs`` and
    layer ``b`` of ``ys``, equal to those functions up to rounding, but computed with shared work:
    each layer is centred once and, in feature space, all pairs come out of one product

    .. math::

        C = [\bar X_1, \dots, \bar X_A]^\top [\bar Y_1, \dots, \bar Y_B],\qquad
        \langle K_a, L_b \rangle = \lVert C_{ab} \rVert_F^2,

    of the concatenated centred layers (float32 products for float32 input, float64 block
    sums). When images are few compared with units, Gram matrices are used instead (the cheaper
    form is chosen from the shapes).

    Parameters
    ----------
    xs : mapping of str to array-like of shape (n_images, n_units)
        Layers of one network, in order (e.g. the pretrained network's probe layers).
    ys : mapping of str to array-like of shape (n_images, n_units), optional
        Layers of the other network, in order; default: ``xs`` against itself.
    kind : {"linear", "debiased"}, default="linear"
        Plain linear CKA or debiased (unbiased-HSIC) CKA.

    Returns
    -------
    xarray.DataArray of shape (len(xs), len(ys))
        Dims ``("layer_pretrained", "layer_other")`` with the layer names as coordinates; attrs
        ``kind``, ``method`` and ``n_images``.

    Raises
    ------
    InputValueError
        Layers with different image counts, NaN or infinite values, a constant layer, a bad
        ``kind``, or (debiased) a non-positive self-HSIC.
    NotEnoughDataError
        Too few images (2, or 4 for ``kind="debiased"``).

    References
    ----------
    .. [1] Kornblith, S., Norouzi, M., Lee, H., Hinton, G. (2019). Similarity of neural network
       representations revisited. ICML.
    .. [2] Nguyen, T., Raghu, M., Kornblith, S. (2021). Do wide and deep networks learn the same
       things? ICLR.
    """
    kind = check_choice(kind, "kind", KINDS)
    names_x, arrays_x = layer_items(xs, "xs")
    names_y, arrays_y = (names_x, None) if ys is None else layer_items(ys, "ys")
    every = arrays_x + (arrays_y or [])
    ops = ops_for(*every)
    dtype = common_float(ops, *every)
    min_rows = 4 if kind == "debiased" else 2
    if kind == "debiased":
        check_debiased_rows(n_rows(arrays_x[0]), f"xs[{names_x[0]!r}]")
    cx = prepare_layers(ops, names_x, arrays_x, "xs", min_rows=min_rows, dtype=dtype)
    cy = None if arrays_y is None else prepare_layers(ops, names_y, arrays_y, "ys", min_rows=min_rows, dtype=dtype)
    if cy is not None and cx[0].shape[0] != cy[0].shape[0]:
        raise InputValueError(
            f"`xs` and `ys` must describe the same images, got {cx[0].shape[0]} and "
            f"{cy[0].shape[0]} images. Pass features of the same images in the same order."
        )
    tables = hsic_tables(ops, cx, cy)
    if kind == "linear":
        values = tables.linear_cka()
    else:
        values, hx, hy = tables.debiased_cka()
        for label, names, h in (("xs", names_x, hx), ("ys", names_y, hy)):
            bad = np.flatnonzero(~(h > 0))
            if bad.size:
                raise undefined_debiased(f"{label}[{names[bad[0]]!r}]", float(h[bad[0]]), tables.n)
    return matrix_array(values, names_x, names_y, kind, int(tables.n))


def matrix_array(values: np.ndarray, names_x: Sequence[str], names_y: Sequence[str], kind: str, n: int,
                 **attrs: Any) -> xr.DataArray:
    """A cross-layer CKA matrix as :func:`cka_matrix` returns it (dims, coordinates, name, attrs)."""
    return xr.DataArray(
        values,
        dims=(S.LAYER_PRETRAINED, S.LAYER_OTHER),
        coords={S.LAYER_PRETRAINED: list(names_x), S.LAYER_OTHER: list(names_y)},
        name="cka_matrix" if kind == "linear" else "cka_debiased_matrix",
        attrs={"kind": kind, "method": METHODS[kind], "n_images": n, **attrs},
    )
