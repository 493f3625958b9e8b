"""Linear, debiased and RBF CKA: reference values, invariances, the bias, errors, torch input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.similarity import debiased_cka, linear_cka, rbf_cka
from layergain.similarity._backend import TorchOps
from layergain.similarity._hsic import hsic_tables, use_gram_form
from layergain.similarity.cka import median_bandwidth, prepare_pair

from . import reference as ref

# (n_images, units_x, units_y): feature-space and Gram-space forms are both exercised.
SHAPES = [(40, 5, 7), (25, 60, 90), (300, 30, 20)]


def _pair(rng: np.random.Generator, n: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, p)) + 3.0
    y = x[:, : min(p, q)] @ rng.standard_normal((min(p, q), q)) + rng.standard_normal((n, q))
    return x, y


def test_shapes_cover_both_forms() -> None:
    forms = {use_gram_form(n, [p], [q]) for n, p, q in SHAPES}
    assert forms == {True, False}


@pytest.mark.parametrize(("n", "p", "q"), SHAPES)
def test_linear_matches_reference(seed: int, n: int, p: int, q: int) -> None:
    x, y = _pair(np.random.default_rng(seed), n, p, q)
    assert linear_cka(x, y) == pytest.approx(ref.cka(x, y), rel=1e-10)
    assert linear_cka(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref.cka(x, y), abs=2e-6)


@pytest.mark.parametrize(("n", "p", "q"), SHAPES)
def test_debiased_matches_reference(seed: int, n: int, p: int, q: int) -> None:
    x, y = _pair(np.random.default_rng(seed), n, p, q)
    expected = ref.cka(x, y, ref.hsic_unbiased)
    assert debiased_cka(x, y) == pytest.approx(expected, rel=1e-8)
    assert debiased_cka(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(expected, abs=5e-6)


def test_song_closed_form_is_the_u_statistic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    k, ell = x @ x.T, y @ y.T
    assert ref.hsic_unbiased(k, ell) == pytest.approx(ref.hsic_u_statistic(k, ell), rel=1e-10)


def test_real_like_features(seed: int) -> None:
    """Non-negative, mean >> std, dead units: float32 input agrees with the float64 reference."""
    rng = np.random.default_rng(seed)
    x = ref.real_like(rng, 400, 64)
    y = ref.real_like(rng, 400, 48) + 0.5 * x[:, :48]
    for fn, hsic in ((linear_cka, ref.hsic_biased), (debiased_cka, ref.hsic_unbiased)):
        expected = ref.cka(x, y, hsic)
        assert fn(x, y) == pytest.approx(expected, rel=1e-9)
        assert fn(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(expected, abs=1e-5)


def test_feature_and_gram_forms_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = _pair(rng, 60, 50, 40)
    from layergain.similarity import _hsic

    _, xc, yc = prepare_pair(x, y, min_rows=4)
    from layergain.similarity._backend import NumpyOps

    a = _hsic.hsic_tables(NumpyOps(), [xc], [yc], form="feature")
    b = _hsic.hsic_tables(NumpyOps(), [xc], [yc], form="gram")
    np.testing.assert_allclose(a.linear_cka(), b.linear_cka(), rtol=1e-10)
    np.testing.assert_allclose(a.debiased_cka()[0], b.debiased_cka()[0], rtol=1e-8)


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka, rbf_cka])
def test_identity_and_symmetry(seed: int, fn) -> None:
    x, y = _pair(np.random.default_rng(seed), 50, 6, 9)
    assert fn(x, x) == pytest.approx(1.0, abs=1e-12)
    assert fn(x, y) == pytest.approx(fn(y, x), rel=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(8, 40),
    p=st.integers(1, 12),
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-100, 100),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_invariant_to_orthogonal_maps_scaling_and_shifts(n: int, p: int, scale: float, shift: float, data_seed: int) -> None:
    """CKA(X, c XQ + b) = 1 and CKA(X, Y) = CKA(c XQ + b, Y) for orthogonal Q (Kornblith et al.)."""
    rng = np.random.default_rng(data_seed)
    x = rng.standard_normal((n, p))
    y = rng.standard_normal((n, 5))
    q = ortho_group.rvs(p, random_state=data_seed) if p > 1 else np.ones((1, 1))
    xq = scale * x @ q + shift
    for fn in (linear_cka, debiased_cka):
        assert fn(x, xq) == pytest.approx(1.0, abs=1e-9)
        assert fn(xq, y) == pytest.approx(fn(x, y), abs=1e-9)


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka])
def test_not_invariant_to_general_linear_maps(fn) -> None:
    x = np.random.default_rng(0).standard_normal((60, 4))
    a = np.diag([1.0, 10.0, 0.1, 1.0])
    assert fn(x, x @ a) < 0.9


def test_bias_of_plain_cka_for_independent_features(seed: int) -> None:
    """Units >> images, independent Gaussians: plain CKA is far from 0, debiased is near 0."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((100, 4000)), rng.standard_normal((100, 4000))
    assert linear_cka(x, y) > 0.9  # plain CKA of independent features tends to 1 as p / n grows
    # The debiased value scatters around 0 with sd ~ 1.7 / n (0.017 here, 40 seeds): 6 sd.
    assert abs(debiased_cka(x, y)) < 0.1


def test_debiased_can_be_negative_and_is_not_clamped() -> None:
    values = [debiased_cka(*np.random.default_rng(s).standard_normal((2, 30, 40))) for s in range(20)]
    assert min(values) < 0 < max(values)


def test_rbf_matches_reference(seed: int) -> None:
    x, y = _pair(np.random.default_rng(seed), 40, 5, 7)
    assert rbf_cka(x, y) == pytest.approx(ref.rbf_cka(x, y), rel=1e-10)
    assert rbf_cka(x, y, bandwidth=2.5) == pytest.approx(ref.rbf_cka(x, y, 2.5, 2.5), rel=1e-10)
    assert rbf_cka(x, y, bandwidth=(1.5, 4.0)) == pytest.approx(ref.rbf_cka(x, y, 1.5, 4.0), rel=1e-10)
    assert rbf_cka(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref.rbf_cka(x, y), abs=1e-5)


def test_rbf_invariant_to_orthogonal_maps_and_shifts(seed: int) -> None:
    x, y = _pair(np.random.default_rng(seed), 40, 6, 7)
    q = ortho_group.rvs(6, random_state=seed)
    assert rbf_cka(x @ q + 7.0, y) == pytest.approx(rbf_cka(x, y), rel=1e-9)
    assert rbf_cka(3.0 * x, y) == pytest.approx(rbf_cka(x, y), rel=1e-9)  # median bandwidth scales


def test_median_bandwidth_excludes_the_diagonal() -> None:
    pts = np.array([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4 -> median 4
    sq = (pts - pts.T) ** 2
    assert median_bandwidth(sq) == pytest.approx(2.0)
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])  # 1, 9, 49, 4, 36, 16 -> (9 + 16) / 2
    assert median_bandwidth((pts - pts.T) ** 2) == pytest.approx(np.sqrt(12.5))


@pytest.mark.parametrize("n", [600, 601])  # 179 700 and 180 300 pairs: an even and an odd count
def test_median_bandwidth_is_the_exact_median_of_the_pairs_on_large_matrices(seed: int, n: int) -> None:
    # Large enough (n^2 > 16 x BRACKET_SAMPLE) for the bracketed selection; reference: numpy's
    # median of the upper triangle, float64.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 7)).astype(np.float32)
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(sq, 0)
    pairs = sq[np.triu_indices(n, 1)].astype(np.float64)
    assert median_bandwidth(sq) == np.sqrt(np.median(pairs))


def test_order_statistics_are_exact_with_ties_and_where_the_bracket_misses(seed: int) -> None:
    from layergain.similarity import cka

    rng = np.random.default_rng(seed)
    tied = rng.integers(0, 5, 400_000).astype(np.float64)  # five values: the bracket is all ties
    ranks = [199_999, 200_000]
    np.testing.assert_array_equal(cka.order_statistics(tied, ranks), np.sort(tied)[ranks])
    skewed = np.concatenate([np.zeros(399_990), rng.random(10)])  # a rank in the extreme tail
    ranks = [399_995]
    np.testing.assert_array_equal(cka.order_statistics(skewed, ranks), np.sort(skewed)[ranks])
    small = rng.random(1000)  # below the size where bracketing pays: a plain partition
    np.testing.assert_array_equal(cka.order_statistics(small, [0, 999]), [small.min(), small.max()])


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka, rbf_cka])
def test_different_image_counts(fn) -> None:
    with pytest.raises(InputValueError, match="same number of images.*got 10 and 9"):
        fn(np.ones((10, 3)).cumsum(0), np.ones((9, 3)).cumsum(0))


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka, rbf_cka])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(fn, bad: float) -> None:
    x = np.random.default_rng(0).standard_normal((10, 3))
    x[2, 1] = bad
    with pytest.raises(InputValueError, match=r"`x` contains 1 NaN or infinite.*nan_to_num"):
        fn(x, np.abs(x) + 1)


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka, rbf_cka])
def test_constant_features(fn) -> None:
    y = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(InputValueError, match="`x` is constant across images.*collapsed"):
        fn(np.full((10, 4), 2.0), y)


def test_one_dead_unit_is_fine() -> None:
    x = np.random.default_rng(0).standard_normal((30, 4))
    x[:, 0] = 5.0
    assert linear_cka(x, x[:, 1:]) == pytest.approx(1.0)


def test_debiased_needs_four_images() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(NotEnoughDataError, match="at least 4 images.*has 3.*linear_cka"):
        debiased_cka(x, x)


def test_debiased_undefined_self_hsic() -> None:
    x = np.array([[0.0], [0.0], [0.0], [1.0]])
    y = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(InputValueError, match="unbiased HSIC of `x` with itself.*<= 0.*use more images"):
        debiased_cka(x, y)


def test_bad_shapes_and_types() -> None:
    with pytest.raises(InputValueError, match="must be 2-D of shape"):
        linear_cka(np.ones(5), np.ones((5, 1)))
    with pytest.raises(InputTypeError, match="numeric array"):
        linear_cka(np.array([["a"], ["b"]]), np.ones((2, 1)))
    with pytest.raises(NotEnoughDataError, match="minimum of 2"):
        linear_cka(np.ones((1, 3)), np.ones((1, 3)))


@pytest.mark.parametrize(
    ("bandwidth", "error", "match"),
    [
        ("mean", InputValueError, "'median', a positive number"),
        (-1.0, InputValueError, "positive and finite"),
        ((1.0, 2.0, 3.0), InputValueError, "2 numbers"),
        ("", InputValueError, "'median'"),
        ((1.0, "a"), InputTypeError, "'median', a positive number"),
    ],
)
def test_bad_bandwidth(bandwidth, error, match: str) -> None:
    x = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(error, match=match):
        rbf_cka(x, x, bandwidth=bandwidth)


def test_rbf_zero_median_distance() -> None:
    x = np.zeros((10, 2))
    x[-1] = 1.0
    y = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(InputValueError, match="median distance between images of `x` is 0"):
        rbf_cka(x, y)


# --- torch -------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [linear_cka, debiased_cka, rbf_cka])
def test_torch_input_gives_the_numpy_result(seed: int, fn) -> None:
    torch = pytest.importorskip("torch")
    x, y = _pair(np.random.default_rng(seed), 50, 8, 6)
    assert fn(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(fn(x, y), rel=1e-12)
    x32 = torch.from_numpy(x.astype(np.float32))
    assert fn(x32, y.astype(np.float32)) == pytest.approx(fn(x, y), abs=1e-5)
    assert fn(x32.to(torch.bfloat16), y) == pytest.approx(fn(x, y), abs=0.05)


@pytest.mark.parametrize(("n", "p", "q"), SHAPES)
def test_torch_backend_matches_numpy(seed: int, n: int, p: int, q: int) -> None:
    """The accelerator path, run here on CPU tensors: same values as the numpy path."""
    torch = pytest.importorskip("torch")
    x, y = _pair(np.random.default_rng(seed), n, p, q)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 5e-6)):
        ops = TorchOps(torch)
        _, xc, yc = prepare_pair(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype), min_rows=4, ops=ops)
        tables = hsic_tables(ops, [xc], [yc])
        assert tables.linear_cka()[0, 0] == pytest.approx(linear_cka(x, y), abs=tol)
        assert tables.debiased_cka()[0][0, 0] == pytest.approx(debiased_cka(x, y), abs=tol)


def test_torch_backend_errors() -> None:
    torch = pytest.importorskip("torch")
    ops = TorchOps(torch)
    bad = torch.ones((6, 2))
    bad[0, 0] = float("nan")
    with pytest.raises(InputValueError, match="contains 1 NaN"):
        ops.validate(bad, "x", min_rows=2, dtype=np.float32)
    with pytest.raises(InputValueError, match="constant across images"):
        ops.validate(torch.ones((6, 2)), "x", min_rows=2, dtype=np.float32)
    with pytest.raises(InputValueError, match="2-D"):
        ops.validate(torch.ones(6), "x", min_rows=2, dtype=np.float32)
    with pytest.raises(InputTypeError, match="numeric"):
        ops.validate(torch.ones((6, 2), dtype=torch.complex64), "x", min_rows=2, dtype=np.float32)



def _rbf_whole_matrix(sq: np.ndarray, xc: np.ndarray, sigma: float) -> np.ndarray:
    """rbf_gram_centred as first written, from the Gram product ``sq``: every operation on the
    whole n x n matrix at once."""
    d = np.einsum("ij,ij->i", xc, xc, dtype=np.float64).astype(xc.dtype)
    sq = sq.copy()
    sq *= -2
    sq += d[:, None]
    sq += d[None, :]
    np.maximum(sq, 0, out=sq)
    np.fill_diagonal(sq, 0)
    sq *= -1.0 / (2.0 * sigma * sigma)
    k = np.exp(sq, out=sq)
    row = k.mean(axis=1, dtype=np.float64)
    k -= row.astype(k.dtype)[:, None]
    k -= (row - row.mean()).astype(k.dtype)[None, :]
    return k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rbf_kernel_in_blocks_of_rows_is_the_whole_matrix_form(monkeypatch, dtype) -> None:
    """The element-wise passes in blocks of rows (7 rows of 301 here: 43 blocks) give the
    whole-matrix form's kernel bit for bit, after either Gram product: numpy's ``a @ a.T`` (syrk)
    for wide layers, a GEMM with a contiguous transpose below GEMM_GRAM_WIDTH units. The two
    products agree to rounding (bit for bit in float32 here; OpenBLAS's float64 kernels differ
    in the last bit at this size)."""
    from threadpoolctl import threadpool_limits

    from layergain.similarity import _backend, cka

    monkeypatch.setattr(cka, "RBF_BLOCK", 7 * 301)
    x = np.maximum(np.random.default_rng(3).standard_normal((301, 24)), 0).astype(dtype)
    xc = x - x.mean(axis=0)
    with threadpool_limits(1):  # as rbf_gram_centred runs products of this size
        products = {0: xc @ xc.T, 10_000: xc @ np.ascontiguousarray(xc.T)}
    for gemm_width, sq in products.items():
        monkeypatch.setattr(_backend, "GEMM_GRAM_WIDTH", gemm_width)
        k, sigma = cka.rbf_gram_centred(xc, None, "x")
        np.testing.assert_array_equal(k, _rbf_whole_matrix(sq, xc, sigma))
    np.testing.assert_allclose(products[0], products[10_000], rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert dtype == np.float64 or np.array_equal(products[0], products[10_000])
