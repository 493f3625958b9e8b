"""CCA, SVCCA, PWCCA: reference values, invariances, errors, torch input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.similarity import canonical_correlations, cca, pwcca, svcca

from . import reference as ref


def _pair(rng: np.random.Generator, n: int, p: int, q: int, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, p)) @ np.diag(np.linspace(3, 0.2, p)) + 5.0
    y = x @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q))
    return x, y


@pytest.mark.parametrize(("n", "p", "q"), [(200, 5, 8), (60, 70, 20), (500, 40, 40)])
def test_canonical_correlations_match_references(seed: int, n: int, p: int, q: int) -> None:
    x, y = _pair(np.random.default_rng(seed), n, p, q)
    rho = canonical_correlations(x, y) if p + q < n else None
    if rho is not None:
        np.testing.assert_allclose(rho, ref.canonical_correlations(x, y), atol=1e-9)
        np.testing.assert_allclose(rho, ref.cca_by_covariance(x, y), atol=1e-7)
        assert cca(x, y) == pytest.approx(np.mean(ref.canonical_correlations(x, y)), abs=1e-10)
    for keep in (0.5, 0.9, 0.99):
        kx, ky = ref._basis(x, keep).shape[1], ref._basis(y, keep).shape[1]
        if kx + ky > n - 1:  # the subspaces would intersect: refused
            with pytest.raises(NotEnoughDataError, match=f"{kx} \\+ {ky} = {kx + ky} directions"):
                svcca(x, y, keep=keep)
            continue
        np.testing.assert_allclose(canonical_correlations(x, y, keep=keep), ref.canonical_correlations(x, y, keep), atol=1e-9)
        assert svcca(x, y, keep=keep) == pytest.approx(np.mean(ref.canonical_correlations(x, y, keep)), abs=1e-10)
        assert pwcca(x, y, keep=keep) == pytest.approx(ref.pwcca(x, y, keep), abs=1e-9)


def test_real_like_features(seed: int) -> None:
    """Dead (constant) units and mean >> std; float32 input matches the float64 reference."""
    rng = np.random.default_rng(seed)
    x = ref.real_like(rng, 600, 40)
    y = ref.real_like(rng, 600, 30) + 0.3 * x[:, :30]
    for keep in (0.9, 0.99):
        expected = np.mean(ref.canonical_correlations(x, y, keep))
        assert svcca(x, y, keep=keep) == pytest.approx(expected, abs=1e-9)
        assert svcca(x.astype(np.float32), y.astype(np.float32), keep=keep) == pytest.approx(expected, abs=1e-4)
        assert pwcca(x, y, keep=keep) == pytest.approx(ref.pwcca(x, y, keep), abs=1e-9)
    # Constant units carry no variance: CCA uses the rank, not the unit count.
    assert cca(x, y) == pytest.approx(np.mean(ref.canonical_correlations(x, y)), abs=1e-8)


@settings(max_examples=20, deadline=None)
@given(p=st.integers(1, 6), q=st.integers(1, 6), data_seed=st.integers(0, 2**32 - 1))
def test_cca_invariant_to_invertible_linear_maps(p: int, q: int, data_seed: int) -> None:
    rng = np.random.default_rng(data_seed)
    x, y = _pair(rng, 80, p, q)
    a = rng.standard_normal((p, p)) + 3 * np.eye(p)
    b = rng.standard_normal((q, q)) + 3 * np.eye(q)
    assert cca(x @ a + 2.0, y @ b - 1.0) == pytest.approx(cca(x, y), abs=1e-8)
    assert cca(x, y) == pytest.approx(cca(y, x), abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(1e-3, 1e3), data_seed=st.integers(0, 2**32 - 1))
def test_svcca_invariant_to_orthogonal_maps_and_scaling(scale: float, data_seed: int) -> None:
    rng = np.random.default_rng(data_seed)
    x, y = _pair(rng, 120, 6, 5)
    q = ortho_group.rvs(6, random_state=data_seed)
    assert svcca(scale * x @ q + 3.0, y, keep=0.95) == pytest.approx(svcca(x, y, keep=0.95), abs=1e-8)
    assert svcca(x, y) == pytest.approx(svcca(y, x), abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(1e-3, 1e3), data_seed=st.integers(0, 2**32 - 1))
def test_pwcca_invariant_to_scaling_and_signed_permutations(scale: float, data_seed: int) -> None:
    """PWCCA weighs by absolute projections on the units themselves, so unlike SVCCA it is not
    invariant to rotations of the units -- only to their permutations and sign flips."""
    rng = np.random.default_rng(data_seed)
    x, y = _pair(rng, 120, 6, 5)
    signed = np.eye(6)[rng.permutation(6)] * rng.choice([-1.0, 1.0], size=6)
    assert pwcca(scale * x @ signed + 3.0, y, keep=0.95) == pytest.approx(pwcca(x, y, keep=0.95), abs=1e-8)


def test_pwcca_depends_on_the_unit_basis() -> None:
    x, y = _pair(np.random.default_rng(0), 120, 6, 5)
    q = ortho_group.rvs(6, random_state=0)
    assert abs(pwcca(x @ q, y, keep=0.95) - pwcca(x, y, keep=0.95)) > 1e-4


def test_svcca_is_not_invariant_to_general_maps() -> None:
    """Rescaling units changes the singular values, hence which directions SVCCA keeps."""
    x, y = _pair(np.random.default_rng(0), 300, 6, 6)
    a = np.diag([1e-3, 1, 1, 1, 1, 30.0])
    assert abs(svcca(x @ a, y, keep=0.9) - svcca(x, y, keep=0.9)) > 1e-3


def test_identical_sides_give_one(seed: int) -> None:
    x, _ = _pair(np.random.default_rng(seed), 100, 6, 3)
    for fn in (cca, svcca, pwcca):
        assert fn(x, x) == pytest.approx(1.0, abs=1e-10)


def test_keep_counts_squared_singular_values() -> None:
    """Variances 9, 0.81, 0.0001 (shares 0.917, 0.9999...): keep=0.9 keeps one direction."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((200, 3)))
    x = q * np.array([3.0, 0.9, 0.01]) * np.sqrt(199)
    x -= x.mean(0)
    y = rng.standard_normal((200, 4))
    assert canonical_correlations(x, y, keep=0.9).shape == (1,)
    assert canonical_correlations(x, y, keep=0.99).shape == (2,)
    assert canonical_correlations(x, y, keep=1.0).shape == (3,)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [svcca, pwcca])
def test_too_few_images_for_the_kept_directions(fn) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 40)), rng.standard_normal((30, 40))
    with pytest.raises(NotEnoughDataError, match=r"n_images - 1 = 29 is less than.*by construction.*smaller `keep`"):
        fn(x, y)


def test_cca_too_few_images_names_the_fix() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 12)), rng.standard_normal((20, 12))
    with pytest.raises(NotEnoughDataError, match=r"CCA needs more images.*12 \+ 12 = 24.*at least 25 images.*svcca/pwcca"):
        cca(x, y)


@pytest.mark.parametrize("fn", [cca, svcca, pwcca, canonical_correlations])
def test_input_errors(fn) -> None:
    x = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(InputValueError, match="same number of images"):
        fn(x, x[:-1])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputValueError, match="`y` contains 1 NaN"):
        fn(x, bad)
    with pytest.raises(InputValueError, match="`x` is constant across images"):
        fn(np.ones((30, 2)), x)


@pytest.mark.parametrize("keep", [0.0, 1.5, -0.1])
def test_bad_keep_value(keep: float) -> None:
    x = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(InputValueError, match=r"`keep` must lie in \(0, 1\]"):
        svcca(x, x, keep=keep)


def test_bad_keep_type() -> None:
    x = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(InputTypeError, match="`keep` must be a number"):
        pwcca(x, x, keep="0.99")


def test_torch_input_gives_the_numpy_result(seed: int) -> None:
    torch = pytest.importorskip("torch")
    x, y = _pair(np.random.default_rng(seed), 100, 6, 5)
    for fn in (cca, svcca, pwcca):
        assert fn(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(fn(x, y), rel=1e-12)
