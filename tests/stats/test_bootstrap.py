"""Tests of the hierarchical gain bootstrap and the interval / p-value helpers."""

import numpy as np
import pytest
from scipy import stats as sps

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats import bootstrap_gain, bootstrap_interval, bootstrap_pvalue
from layergain.stats.bootstrap import _CELLS_PER_CHUNK

from .simulate import binomial_tolerance, simulate


def _small(rng, n_layers=2, n_seeds=3, n_repeats=2, n_images=30):
    pre = rng.random((n_layers, n_repeats, n_images)) < 0.7
    rand = rng.random((n_layers, n_seeds, n_repeats, n_images)) < 0.5
    labels = np.arange(n_images) % 3
    return pre, rand, labels


# --------------------------------------------------------------------------- point estimates


def test_point_estimates_match_definition(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng)
    res = bootstrap_gain(pre, rand, labels, n_boot=10, seed=seed)
    # The definition in DESIGN.md: accuracy = mean over repeats and images.
    acc_pre = pre.mean(axis=(1, 2))
    acc_rand = rand.mean(axis=(2, 3)).mean(axis=1)
    np.testing.assert_allclose(res.accuracy_pre, acc_pre, rtol=1e-12)
    np.testing.assert_allclose(res.accuracy_rand, acc_rand, rtol=1e-12)
    np.testing.assert_allclose(res.gain, acc_pre - acc_rand, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.relative_gain, (acc_pre - acc_rand) / (1 - acc_rand), rtol=1e-12)


def test_single_layer_input_gets_a_layer_axis(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_layers=1)
    res = bootstrap_gain(pre[0], rand[0], labels, n_boot=20, seed=seed)
    assert res.gain.shape == (1,) and res.gain_ci.shape == (1, 2) and res.gain_draws.shape == (20, 1)


def test_zero_one_numbers_are_accepted_as_booleans(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng)
    a = bootstrap_gain(pre, rand, labels, n_boot=30, seed=seed)
    b = bootstrap_gain(pre.astype(float), rand.astype(int), labels, n_boot=30, seed=seed)
    np.testing.assert_array_equal(a.gain_draws, b.gain_draws)


# --------------------------------------------------------------------------- the resampling


def _dominant_labels(labels, groups):
    """Most frequent label of each group (the smallest on a tie)."""
    n_classes = labels.max() + 1
    counts = [np.bincount(labels[groups == g], minlength=n_classes) for g in range(groups.max() + 1)]
    return np.array([c.argmax() for c in counts])


def _naive_draws(pre, rand, labels, groups, n_boot, seed):
    """Slow, obvious bootstrap with the same random numbers as the fast one.

    Builds each resample explicitly (a list of images, a list of seeds) and averages.
    """
    seeds_rng, units_rng = np.random.default_rng(seed).spawn(2)
    n_layers, n_seeds, n_repeats, n_images = rand.shape
    seed_counts = seeds_rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)
    if groups is None:
        unit_of_image, unit_label = np.arange(n_images), labels
    else:
        unit_of_image = groups
        unit_label = _dominant_labels(labels, groups)
    n_units = unit_label.size
    strata = [np.flatnonzero(unit_label == c) for c in np.unique(unit_label)]
    chunk = max(1, _CELLS_PER_CHUNK // n_units)
    out_pre, out_rand = np.empty((n_boot, n_layers)), np.empty((n_boot, n_layers))
    b_global = 0
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        picks = [s[units_rng.integers(0, s.size, size=(b, s.size))] for s in strata]
        for row in range(b):
            units = np.concatenate([p[row] for p in picks])
            images = np.concatenate([np.flatnonzero(unit_of_image == u) for u in units])
            seeds = np.repeat(np.arange(n_seeds), seed_counts[b_global])
            for layer in range(n_layers):
                out_pre[b_global, layer] = pre[layer][:, images].mean()
                out_rand[b_global, layer] = np.mean([rand[layer, s][:, images].mean() for s in seeds])
            b_global += 1
    return out_pre, out_rand


@pytest.mark.parametrize("with_groups", [False, True])
def test_fast_draws_equal_slow_obvious_resampling(seed, with_groups):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_images=24)
    groups = np.arange(24) // 3 if with_groups else None  # 8 groups of 3 images, classes mixed
    res = bootstrap_gain(pre, rand, labels, groups, n_boot=40, seed=seed)
    slow_pre, slow_rand = _naive_draws(pre, rand, labels, groups, 40, seed)
    np.testing.assert_allclose(res.accuracy_pre_draws, slow_pre, rtol=1e-12)
    np.testing.assert_allclose(res.accuracy_rand_draws, slow_rand, rtol=1e-12)
    np.testing.assert_allclose(res.gain_draws, slow_pre - slow_rand, rtol=1e-10, atol=1e-14)


def test_stratified_resamples_keep_class_counts(seed):
    n_images = 30
    labels = np.repeat([0, 1, 2], [5, 10, 15])
    # Pretrained right only on class 2: a stratified resample always has 15/30 right.
    pre = np.broadcast_to(labels == 2, (1, 2, n_images))
    rand = np.zeros((1, 2, 2, n_images), dtype=bool)
    res = bootstrap_gain(pre, rand, labels, n_boot=200, seed=seed)
    np.testing.assert_allclose(res.accuracy_pre_draws, 0.5)
    unstrat = bootstrap_gain(pre, rand, labels, n_boot=200, seed=seed, stratify=False)
    assert unstrat.accuracy_pre_draws.std() > 0.02


def test_layers_share_draws_and_do_not_change_them(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_layers=3)
    joint = bootstrap_gain(pre, rand, labels, n_boot=100, seed=seed)
    for layer in range(3):
        alone = bootstrap_gain(pre[layer], rand[layer], labels, n_boot=100, seed=seed)
        np.testing.assert_array_equal(joint.gain_draws[:, layer], alone.gain_draws[:, 0])


def test_same_seed_same_result_and_generator_accepted(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng)
    a = bootstrap_gain(pre, rand, labels, n_boot=50, seed=seed)
    b = bootstrap_gain(pre, rand, labels, n_boot=50, seed=seed)
    c = bootstrap_gain(pre, rand, labels, n_boot=50, seed=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.gain_draws, b.gain_draws)
    np.testing.assert_array_equal(a.gain_draws, c.gain_draws)
    d = bootstrap_gain(pre, rand, labels, n_boot=50, seed=seed + 1000)
    assert not np.array_equal(a.gain_draws, d.gain_draws)


def test_one_seed_has_no_seed_variance(seed):
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_seeds=1)
    res = bootstrap_gain(pre, rand, labels, n_boot=50, seed=seed)
    np.testing.assert_array_equal(res.gain_influence.seeds, 0.0)


# --------------------------------------------------------------------------- influence values / BCa


def _weighted_statistics(pre, rand, unit_of_image, f, h):
    """Accuracies for unit weights f and seed weights h (the plug-in functional), per layer."""
    w = f[unit_of_image]
    p = pre.mean(axis=1)
    q = rand.mean(axis=2)
    acc_pre = (p * w).sum(axis=-1) / w.sum()
    acc_rand_s = (q * w).sum(axis=-1) / w.sum()
    acc_rand = (acc_rand_s * h).sum(axis=-1) / h.sum()
    gain = acc_pre - acc_rand
    return gain, gain / (1 - acc_rand)


def _centred_gradient(fun, n, strata, eps=1e-6):
    """Central differences of ``fun(weights)`` at weights = 1, centred within each stratum."""
    grad = []
    for j in range(n):
        hi, lo = np.ones(n), np.ones(n)
        hi[j] += eps
        lo[j] -= eps
        grad.append((fun(hi) - fun(lo)) / (2 * eps))
    grad = np.array(grad)
    for c in np.unique(strata):
        grad[strata == c] -= grad[strata == c].mean(axis=0)
    return grad


@pytest.mark.parametrize("with_groups", [False, True])
def test_influence_values_are_centred_derivatives(seed, with_groups):
    # Independent check: numerical derivatives of the plug-in statistic with respect to unit and
    # seed weights, centred within each resampling stratum.
    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_images=24)
    groups = np.arange(24) // 2 if with_groups else None
    res = bootstrap_gain(pre, rand, labels, groups, n_boot=5, seed=seed)
    unit_of_image = np.arange(24) if groups is None else groups
    n_units, n_seeds = unit_of_image.max() + 1, rand.shape[1]
    unit_label = labels  # strata: classes, or a group's dominant class (smallest on a tie)
    if groups is not None:
        unit_label = _dominant_labels(labels, groups)
    ones_u, ones_s = np.ones(n_units), np.ones(n_seeds)
    for which, stat in (("gain_influence", 0), ("relative_gain_influence", 1)):
        du = _centred_gradient(
            lambda f: _weighted_statistics(pre, rand, unit_of_image, f, ones_s)[stat], n_units, unit_label
        )
        ds = _centred_gradient(
            lambda h: _weighted_statistics(pre, rand, unit_of_image, ones_u, h)[stat], n_seeds, ones_s
        )
        infl = getattr(res, which)
        np.testing.assert_allclose(infl.units, du, atol=1e-7)
        np.testing.assert_allclose(infl.seeds, ds, atol=1e-7)


def test_acceleration_equals_jackknife_formula_for_a_mean(seed):
    # For one unstratified sample and the mean, the jackknife acceleration
    # a = sum(J^3) / (6 sum(J^2)^1.5), J_i = mean(theta_(-i)) - theta_(-i)
    # (Efron & Tibshirani 1993, eq. 14.15) equals the one from influence values.
    from layergain.stats.bootstrap import _acceleration

    rng = np.random.default_rng(seed)
    pre, rand, labels = _small(rng, n_layers=1, n_seeds=1, n_images=40)
    res = bootstrap_gain(pre, rand, labels, n_boot=5, seed=seed, stratify=False)
    d = pre[0].mean(axis=0) - rand[0, 0].mean(axis=0)
    loo = np.array([np.delete(d, i).mean() for i in range(d.size)])
    jack = loo.mean() - loo
    a_jack = np.sum(jack**3) / (6 * np.sum(jack**2) ** 1.5)
    np.testing.assert_allclose(_acceleration(res.gain_influence.combined()), [a_jack], rtol=1e-10)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_interval_agrees_with_scipy_bootstrap(seed, method):
    # One unstratified sample of images, one seed: the hierarchical bootstrap reduces to the
    # ordinary bootstrap of the mean per-image difference, which scipy.stats.bootstrap computes.
    # Different random numbers: bounds agree within Monte Carlo error (B = 20000 each; the
    # quantiles' MC sd is about 0.03 standard errors, the tolerance 0.25).
    rng = np.random.default_rng(seed)
    n = 120
    pre = rng.random((1, 3, n)) < 0.75
    rand = rng.random((1, 1, 3, n)) < 0.5
    labels = np.arange(n) % 2
    ours = bootstrap_gain(
        pre, rand, labels, n_boot=20000, seed=seed, stratify=False,
        method="bca" if method == "BCa" else "percentile",
    )
    d = pre[0].mean(axis=0) - rand[0, 0].mean(axis=0)
    ref = sps.bootstrap((d,), np.mean, n_resamples=20000, method=method, rng=seed + 1)
    se = d.std(ddof=1) / np.sqrt(n)
    expected = [ref.confidence_interval.low, ref.confidence_interval.high]
    np.testing.assert_allclose(ours.gain_ci[0], expected, atol=0.25 * se)


def test_bca_differs_from_percentile_where_skewed():
    # A skewed statistic: BCa moves both bounds; percentile does not know the skew.
    draws = np.random.default_rng(0).normal(size=(4000, 1))
    influence = np.r_[np.full(99, -0.01), [0.99]][:, None]  # strong positive skew
    pct = bootstrap_interval(draws, [0.0], method="percentile")
    bca = bootstrap_interval(draws, [0.0], method="bca", influence=influence)
    assert bca[0, 0] > pct[0, 0] and bca[0, 1] > pct[0, 1]


def test_degenerate_data_give_a_point_interval():
    pre = np.ones((1, 2, 20), dtype=bool)
    rand = np.ones((1, 3, 2, 20), dtype=bool)
    res = bootstrap_gain(pre, rand, np.arange(20) % 2, n_boot=100, seed=0)
    np.testing.assert_array_equal(res.gain_ci, [[0.0, 0.0]])
    # The random baseline makes no error: no relative gain.
    assert np.isnan(res.relative_gain[0]) and np.all(np.isnan(res.relative_gain_ci))


def test_interval_is_nan_where_every_draw_is_on_one_side():
    draws = np.linspace(1, 2, 100)[:, None]
    out = bootstrap_interval(draws, [0.0], method="bca", influence=np.zeros((3, 1)))
    assert np.all(np.isnan(out))


def test_pvalue_inverts_the_interval():
    # p < alpha exactly when the (1 - alpha) interval excludes 0, for both methods.
    rng = np.random.default_rng(3)
    draws = rng.normal(loc=[0.5, 2.5, 1.96, -3.0], size=(20000, 4))
    est = np.array([0.5, 2.5, 1.96, -3.0])
    infl = rng.normal(size=(50, 4)) * 0.01
    for method in ("percentile", "bca"):
        p = bootstrap_pvalue(draws, est, method=method, influence=infl)
        for k in range(4):
            ci = bootstrap_interval(
                draws[:, k], est[k], confidence=1 - p[k], method=method, influence=infl[:, k]
            )
            # 0 sits on a bound, to the spacing of the draws in the tail (~0.03 at p = 0.003)
            assert min(abs(ci[0]), abs(ci[1])) < 0.06
    p = bootstrap_pvalue(draws, est, method="percentile")
    # Normal draws: p = 2 * Phi(-|mean|) (to MC error).
    np.testing.assert_allclose(p, 2 * sps.norm.sf(np.abs(est)), atol=0.01)


# --------------------------------------------------------------------------- calibration


def test_interval_covers_true_gain(seed):
    # 300 simulated image sets (200 images, 2 classes, 5 random seeds with a seed spread, 2 repeats),
    # B = 1000 each. Nominal 95 %; tolerance 4 binomial sds (+-0.050). Observed while building:
    # BCa 0.94, percentile 0.94 (seed_sd = 0); about 0.93 with seed_sd = 0.15, because 5 seeds
    # resampled understate the seed spread by (S - 1) / S.
    rng = np.random.default_rng(seed)
    n_sim = 300
    hits = {"bca": 0, "percentile": 0, "relative": 0}
    for i in range(n_sim):
        d = simulate(rng, seed_sd=0.1)
        res = bootstrap_gain(d["correct_pre"], d["correct_rand"], d["labels"], n_boot=1000, seed=rng)
        pct = bootstrap_interval(res.gain_draws, res.gain, method="percentile")
        hits["bca"] += res.gain_ci[0, 0] <= d["true_gain"][0] <= res.gain_ci[0, 1]
        hits["percentile"] += pct[0, 0] <= d["true_gain"][0] <= pct[0, 1]
        lo, hi = res.relative_gain_ci[0]
        hits["relative"] += lo <= d["true_relative_gain"][0] <= hi
    tol = binomial_tolerance(0.95, n_sim)
    for name, count in hits.items():
        assert abs(count / n_sim - 0.95) <= tol, (name, count / n_sim)


def test_interval_covers_true_gain_with_groups(seed):
    # Clustered images: 40 patients with patient effects on ease and on the pretraining advantage.
    # 200 simulations, B = 1000, tolerance 4 binomial sds (+-0.062). Observed: 0.955.
    rng = np.random.default_rng(seed)
    n_sim = 200
    hits = 0
    for _ in range(n_sim):
        d = simulate(rng, n_groups=40, group_sd=0.5, gain_sd=0.3)
        res = bootstrap_gain(
            d["correct_pre"], d["correct_rand"], d["labels"], d["groups"], n_boot=1000, seed=rng
        )
        hits += res.gain_ci[0, 0] <= d["true_gain"][0] <= res.gain_ci[0, 1]
    assert abs(hits / n_sim - 0.95) <= binomial_tolerance(0.95, n_sim)


# --------------------------------------------------------------------------- bad input


def test_attrs_are_netcdf_safe(seed):
    rng = np.random.default_rng(seed)
    res = bootstrap_gain(*_small(rng), n_boot=10, seed=seed)
    attrs = res.attrs()
    assert attrs["bootstrap_interval"] == "bca" and attrs["n_boot"] == 10
    assert all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in attrs.values())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_boot": 0}, InputValueError, r"`n_boot` must be >= 1, got 0"),
        ({"n_boot": 2.5}, InputTypeError, r"`n_boot` must be an integer"),
        ({"confidence": 1.0}, InputValueError, r"`confidence` must lie in \(0, 1\), got 1.0"),
        ({"confidence": 0.0}, InputValueError, r"`confidence` must lie in \(0, 1\)"),
        ({"method": "bc"}, InputValueError, r"`method` must be one of 'bca', 'percentile', got 'bc'"),
        ({"seed": "x"}, InputTypeError, r"`seed` must be an int, a numpy.random.Generator or None"),
        ({"seed": -1}, InputValueError, r"`seed` must be a non-negative integer"),
    ],
)
def test_bad_settings(kwargs, error, match):
    pre, rand, labels = _small(np.random.default_rng(0))
    with pytest.raises(error, match=match):
        bootstrap_gain(pre, rand, labels, **kwargs)


def test_bad_arrays():
    pre, rand, labels = _small(np.random.default_rng(0))
    with pytest.raises(InputValueError, match=r"`correct_rand` must have one axis more than `correct_pre`"):
        bootstrap_gain(pre, rand[0], labels)
    with pytest.raises(InputValueError, match=r"must describe the same layers, repeats and images"):
        bootstrap_gain(pre, rand[..., :-1], labels)
    with pytest.raises(InputValueError, match=r"`correct_pre` must have shape \(n_repeats, n_images\)"):
        bootstrap_gain(pre[0, 0], rand, labels)
    nan = pre.astype(float)
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputValueError, match=r"`correct_pre` contains 1 NaN or infinite value"):
        bootstrap_gain(nan, rand, labels)
    with pytest.raises(InputValueError, match=r"`correct_rand` must hold booleans or 0/1"):
        bootstrap_gain(pre, rand * 0.7, labels)
    with pytest.raises(InputTypeError, match=r"`correct_pre` must be a boolean array"):
        bootstrap_gain(pre.astype(str), rand, labels)
    with pytest.raises(NotEnoughDataError, match=r"`correct_pre` has 1 image\(s\)"):
        bootstrap_gain(pre[..., :1], rand[..., :1], labels[:1])
    with pytest.raises(NotEnoughDataError, match=r"`correct_pre` is empty"):
        bootstrap_gain(pre[..., :0], rand[..., :0], labels[:0])


def test_bad_labels_and_groups():
    pre, rand, labels = _small(np.random.default_rng(0))
    with pytest.raises(NotEnoughDataError, match=r"`labels` has a single class \(0\)"):
        bootstrap_gain(pre, rand, np.zeros(30, dtype=int))
    with pytest.raises(InputValueError, match=r"`labels` must have shape \(n_images,\) = \(30,\)"):
        bootstrap_gain(pre, rand, labels[:-1])
    with pytest.raises(InputValueError, match=r"`labels` contains 1 missing value"):
        bootstrap_gain(pre, rand, np.r_[labels[:-1], np.nan])
    with pytest.raises(InputValueError, match=r"`groups` contains 1 missing value"):
        bootstrap_gain(pre, rand, labels, np.r_[np.arange(29.0), np.nan])
    with pytest.raises(NotEnoughDataError, match=r"`groups` has a single group"):
        bootstrap_gain(pre, rand, labels, np.zeros(30))
    # One group per class -> a stratum with one unit.
    with pytest.raises(NotEnoughDataError, match=r"at least 2 groups per class.*stratify=False"):
        bootstrap_gain(pre, rand, labels, labels)


def test_interval_helpers_bad_input():
    with pytest.raises(InputValueError, match=r"`influence` is required for method='bca'"):
        bootstrap_interval(np.zeros((10, 2)), np.zeros(2))
    with pytest.raises(InputValueError, match=r"`influence` is required for method='bca'"):
        bootstrap_pvalue(np.zeros((10, 2)), np.zeros(2))
    with pytest.raises(InputValueError, match=r"`draws` must have shape \(n_boot,\) \+ estimate.shape"):
        bootstrap_interval(np.zeros((10, 2)), np.zeros(3), method="percentile")
    with pytest.raises(InputValueError, match=r"`influence` must have shape \(n_units,\) \+ \(2,\)"):
        bootstrap_interval(np.zeros((10, 2)), np.zeros(2), influence=np.zeros((5, 3)))
    with pytest.raises(InputValueError, match=r"`confidence` must lie in \(0, 1\), got 1.5"):
        bootstrap_interval(np.zeros((10, 2)), np.zeros(2), confidence=1.5, method="percentile")
