"""The two forms of the HSIC tables (feature and tiled Gram), the thread pool, and CPU torch input."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from layergain.similarity import _backend, _hsic, cka_matrix
from layergain.similarity._backend import NumpyOps, TorchOps, serial_blas
from layergain.similarity._hsic import form_costs, hsic_tables, use_gram_form

from . import reference as ref

FIELDS = ("f", "fx", "fy", "t", "tx", "ty", "rx", "ry", "sx", "sy")
LITE0 = [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320, 1280]


def _layers(rng: np.random.Generator, n: int, widths: list[int], dtype=np.float64) -> list[np.ndarray]:
    """Centred, correlated, non-negative layers (like pooled ReLU features)."""
    base = rng.standard_normal((n, 4))
    out = []
    for w in widths:
        a = np.maximum(base @ rng.standard_normal((4, w)) + rng.standard_normal((n, w)), 0) + 1.0
        out.append(NumpyOps().centre(a.astype(dtype)))
    return out


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gram tiles of 32 images: many tiles, and a shorter last row of tiles for n % 32 != 0."""
    monkeypatch.setattr(_hsic, "_TILE_MEMORY", 1)


@pytest.mark.parametrize("n", [37, 97, 130])
@pytest.mark.parametrize("symmetric", [False, True])
def test_tiled_gram_form_equals_feature_form(seed: int, n: int, symmetric: bool, small_tiles: None) -> None:
    rng = np.random.default_rng(seed)
    xs = _layers(rng, n, [3, 50, 7, 1])
    ys = None if symmetric else _layers(rng, n, [20, 5])
    assert _hsic.gram_tile_rows(n, 6, 8) == 32
    a = hsic_tables(NumpyOps(), xs, ys, form="feature")
    b = hsic_tables(NumpyOps(), xs, ys, form="gram")
    for name in FIELDS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-9, err_msg=name)


def test_gram_form_matches_the_reference(seed: int, small_tiles: None) -> None:
    """Debiased and linear CKA from the tiled Gram form equal the explicit n x n formulas."""
    rng = np.random.default_rng(seed)
    n = 70
    xs, ys = _layers(rng, n, [90, 4]), _layers(rng, n, [120])
    tables = hsic_tables(NumpyOps(), xs, ys, form="gram")
    for i, x in enumerate(xs):
        assert tables.linear_cka()[i, 0] == pytest.approx(ref.cka(x, ys[0]), rel=1e-10)
        assert tables.debiased_cka()[0][i, 0] == pytest.approx(ref.cka(x, ys[0], ref.hsic_unbiased), rel=1e-9)


@pytest.mark.parametrize("form", ["feature", "gram"])
def test_float32_products_agree_with_float64(seed: int, form: str, small_tiles: None) -> None:
    """float32 products, float64 sums: CKA within 1e-6 of the float64 computation."""
    rng = np.random.default_rng(seed)
    xs64, ys64 = _layers(rng, 300, [40, 200, 8]), _layers(rng, 300, [64, 300])
    xs32 = [a.astype(np.float32) for a in xs64]
    ys32 = [a.astype(np.float32) for a in ys64]
    a = hsic_tables(NumpyOps(), xs64, ys64, form=form)
    b = hsic_tables(NumpyOps(), xs32, ys32, form=form)
    np.testing.assert_allclose(b.linear_cka(), a.linear_cka(), atol=1e-6)
    np.testing.assert_allclose(b.debiased_cka()[0], a.debiased_cka()[0], atol=1e-6)


def test_threads_do_not_change_the_result(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks on the thread pool give bit-identical tables to the same tasks run in order."""
    monkeypatch.setattr(_hsic, "_TILE_MEMORY", 1 << 16)
    rng = np.random.default_rng(seed)
    xs, ys = _layers(rng, 400, [30, 700, 60], np.float32), _layers(rng, 400, [500, 40], np.float32)
    ops = NumpyOps()
    assert min(form_costs(400, [30, 700, 60], [500, 40])) >= _backend._SMALL_WORK / 4  # pooled
    pooled = {form: hsic_tables(ops, xs, ys, form=form) for form in ("feature", "gram")}
    monkeypatch.setattr(_backend, "_executor", lambda: None)
    for form, tables in pooled.items():
        serial = hsic_tables(ops, xs, ys, form=form)
        for name in FIELDS:
            np.testing.assert_array_equal(
                getattr(tables, name), getattr(serial, name), err_msg=f"{form} {name}"
            )


def test_form_chosen_by_shape() -> None:
    # The 17 x 17 Lite0 matrix: Gram form at n = 2000 (ΣD = 3088 units per side), feature form
    # at n = 10 000; one pair: Gram form when images are fewer than about twice the units.
    assert use_gram_form(2000, LITE0, LITE0)
    assert not use_gram_form(10_000, LITE0, LITE0)
    assert use_gram_form(2000, [2048], [2048]) and not use_gram_form(2000, [512], [512])
    assert not use_gram_form(10_000, [2048], [2048])
    # symmetric tables (several inits of one layer): half the feature product is computed
    assert use_gram_form(2000, [1280] * 6, None) and not use_gram_form(2000, [192] * 6, None)


def _blas_threads() -> list[int]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [
        lib.num_threads
        for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    ]


def test_serial_blas_limits_and_restores() -> None:
    before = _blas_threads()
    assert len(before) >= 2  # numpy's and scipy's OpenBLAS, both under the limit
    with serial_blas():
        with serial_blas():
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def _matrix_in_child(queue: multiprocessing.Queue) -> None:
    rng = np.random.default_rng(0)
    xs = {f"l{i}": rng.standard_normal((400, w)) for i, w in enumerate([300, 600])}
    queue.put(cka_matrix(xs, kind="debiased").values)


def test_works_in_a_forked_child() -> None:
    """The pool's threads are not inherited by fork: a child makes its own (no hang)."""
    rng = np.random.default_rng(0)
    xs = {f"l{i}": rng.standard_normal((400, w)) for i, w in enumerate([300, 600])}
    expected = cka_matrix(xs, kind="debiased").values  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_matrix_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(queue.get(timeout=5), expected)


# --- torch tensors on the CPU ---------------------------------------------------------------


@pytest.mark.parametrize("n", [150, 2000])  # Gram form and feature form for these widths
def test_cpu_tensors_give_the_numpy_values(seed: int, n: int) -> None:
    """CPU tensors are read as numpy arrays: cka_matrix equals the numpy result to 1e-6 (float32)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    widths = [16, 24, 80, 192]
    xs = {f"a{i}": a.astype(np.float32) for i, a in enumerate(_layers(rng, n, widths))}
    ys = {f"b{i}": a.astype(np.float32) + 1 for i, a in enumerate(_layers(rng, n, widths[::-1]))}
    assert use_gram_form(n, widths, widths) == (n == 150)
    tx = {k: torch.from_numpy(v) for k, v in xs.items()}
    ty = {k: torch.from_numpy(v) for k, v in ys.items()}
    x64 = {k: v.astype(np.float64) for k, v in xs.items()}
    y64 = {k: v.astype(np.float64) for k, v in ys.items()}
    for kind in ("linear", "debiased"):
        from_tensors = cka_matrix(tx, ty, kind=kind).values
        np.testing.assert_array_equal(from_tensors, cka_matrix(xs, ys, kind=kind).values)
        np.testing.assert_allclose(from_tensors, cka_matrix(x64, y64, kind=kind).values, atol=1e-6)


@pytest.mark.parametrize("form", ["feature", "gram"])
def test_torch_ops_gram_tiles_match_numpy(seed: int, form: str, small_tiles: None) -> None:
    """The accelerator code path (run here on CPU tensors) through many tiles equals numpy's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    xs, ys = _layers(rng, 97, [3, 50, 7]), _layers(rng, 97, [20, 5])
    a = hsic_tables(NumpyOps(), xs, ys, form=form)
    tx, ty = [torch.from_numpy(v) for v in xs], [torch.from_numpy(v) for v in ys]
    b = hsic_tables(TorchOps(torch), tx, ty, form=form)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-9, err_msg=name)
