"""cka_matrix: equals the pairwise functions, labelled dims, errors."""

from __future__ import annotations

import numpy as np
import pytest

from layergain import schema as S
from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.similarity import cka_matrix, debiased_cka, linear_cka

WIDTHS = [8, 3, 16, 40]


def _layers(rng: np.random.Generator, n: int, widths: list[int], base: np.ndarray | None = None) -> dict[str, np.ndarray]:
    base = rng.standard_normal((n, 6)) if base is None else base
    return {f"l{i}": base @ rng.standard_normal((6, w)) + rng.standard_normal((n, w)) for i, w in enumerate(widths)}


@pytest.mark.parametrize("n", [12, 30, 400])  # Gram form, mixed, feature form
@pytest.mark.parametrize(("kind", "fn"), [("linear", linear_cka), ("debiased", debiased_cka)])
def test_equals_pairwise_function(seed: int, n: int, kind: str, fn) -> None:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 6))
    xs, ys = _layers(rng, n, WIDTHS, base), _layers(rng, n, WIDTHS[::-1], base)
    m = cka_matrix(xs, ys, kind=kind)
    assert m.dims == (S.LAYER_PRETRAINED, S.LAYER_OTHER)
    assert list(m[S.LAYER_PRETRAINED].values) == list(xs) and list(m[S.LAYER_OTHER].values) == list(ys)
    expected = np.array([[fn(a, b) for b in ys.values()] for a in xs.values()])
    np.testing.assert_allclose(m.values, expected, rtol=1e-9, atol=1e-12)
    assert m.attrs["kind"] == kind and m.attrs["n_images"] == n


def test_float32_matches_float64(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs = _layers(rng, 300, WIDTHS)
    xs32 = {k: v.astype(np.float32) for k, v in xs.items()}
    for kind in ("linear", "debiased"):
        np.testing.assert_allclose(cka_matrix(xs32, kind=kind).values, cka_matrix(xs, kind=kind).values, atol=1e-5)


def test_against_itself_is_symmetric_with_unit_diagonal(seed: int) -> None:
    xs = _layers(np.random.default_rng(seed), 50, WIDTHS)
    m = cka_matrix(xs).values
    np.testing.assert_allclose(m, m.T, rtol=1e-10)
    np.testing.assert_allclose(np.diag(m), 1.0, rtol=1e-12)


def test_torch_tensors(seed: int) -> None:
    torch = pytest.importorskip("torch")
    xs = _layers(np.random.default_rng(seed), 40, WIDTHS)
    as_torch = {k: torch.from_numpy(v) for k, v in xs.items()}
    np.testing.assert_allclose(cka_matrix(as_torch, kind="debiased").values, cka_matrix(xs, kind="debiased").values, rtol=1e-12)


def test_errors() -> None:
    rng = np.random.default_rng(0)
    xs = _layers(rng, 20, WIDTHS)
    with pytest.raises(InputValueError, match="`kind` must be one of 'linear', 'debiased', got 'rbf'"):
        cka_matrix(xs, kind="rbf")
    with pytest.raises(InputTypeError, match="`xs` must be a mapping of layer name"):
        cka_matrix(list(xs.values()))
    with pytest.raises(InputValueError, match="`ys` has no layers"):
        cka_matrix(xs, {})
    uneven = dict(xs, l9=rng.standard_normal((19, 3)))
    with pytest.raises(InputValueError, match=r"same images, got image counts .*'l9': 19"):
        cka_matrix(uneven)
    with pytest.raises(InputValueError, match="`xs` and `ys` must describe the same images, got 20 and 19"):
        cka_matrix(xs, {"a": rng.standard_normal((19, 3))})
    bad = dict(xs, l1=np.full((20, 3), np.nan))
    with pytest.raises(InputValueError, match=r"`xs\['l1'\]` contains 60 NaN"):
        cka_matrix(bad)
    with pytest.raises(InputValueError, match=r"`ys\['c'\]` is constant across images"):
        cka_matrix(xs, {"c": np.ones((20, 2))})
    with pytest.raises(NotEnoughDataError, match=r"at least 4 images.*`xs\['a'\]` has 3"):
        cka_matrix({"a": rng.standard_normal((3, 2))}, kind="debiased")
