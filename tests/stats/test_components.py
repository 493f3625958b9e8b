"""Tests of the variance components (layergain.stats.components) against slow, explicit formulas."""

import numpy as np
import pytest
from scipy import stats as sps

from layergain.stats import components as C
from layergain.stats._inputs import check_outcomes

from .simulate import simulate


def _model(d):
    o = check_outcomes(d["correct_pre"], d["correct_rand"])
    return o, C.design([(o, np.asarray(d["labels"]), d["groups"])])


def _gain(n_layers):
    a = np.eye(n_layers)[:, None, :]
    return a, -a


def test_image_units_are_the_stratified_variance(seed):
    # Slow formula: d_i = pre_i - mean_s rand_si; Var = sum_h n_h/(n_h-1) sum_{i in h} (d_i - dbar_h)^2 / N^2
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=90, n_classes=3, n_layers=2, n_seeds=3, n_repeats=2)
    o, model = _model(d)
    c = C.evaluate(model, *_gain(2), pretrained_spread=False)
    diff = o.pre.mean(axis=1) - o.rand.mean(axis=(1, 2))  # (L, N)
    ref = np.zeros(2)
    for h in np.unique(d["labels"]):
        x = diff[:, d["labels"] == h]
        ref += x.shape[1] / (x.shape[1] - 1) * np.sum((x - x.mean(axis=1, keepdims=True)) ** 2, axis=1)
    np.testing.assert_allclose(c.var_units, ref / diff.shape[1] ** 2, rtol=1e-10)
    np.testing.assert_allclose(c.estimate, diff.mean(axis=1), rtol=1e-12)
    assert model.samples[0].df == 90 - 3


def test_group_units_are_cr2_cluster_variance(seed):
    # Slow formula: T_g = sum_{i in g} d_i; Var = sum_g (T_g - n_g g_hat)^2 / (1 - n_g / N) / N^2
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=120, n_layers=1, n_seeds=4, n_groups=9, group_sd=0.7)
    o, model = _model(d)
    c = C.evaluate(model, *_gain(1), pretrained_spread=False)
    diff = (o.pre.mean(axis=1) - o.rand.mean(axis=(1, 2)))[0]
    groups = d["groups"]
    codes = np.unique(groups, return_inverse=True)[1]
    n = diff.size
    g_hat = diff.mean()
    ref = 0.0
    for g in np.unique(codes):
        m = codes == g
        ref += (diff[m].sum() - m.sum() * g_hat) ** 2 / (1 - m.sum() / n)
    np.testing.assert_allclose(c.var_units[0], ref / n**2, rtol=1e-10)


@pytest.mark.parametrize("spread", [False, True])
def test_network_part_is_the_seed_spread_less_its_image_share(seed, spread):
    # q = (1/S + [draw]) * var_s(A_s) (ddof 1) for the gain; q_int = the units' estimate of the
    # network-by-image noise in A_s: mean over s of sum_u e_us^2 / (1 - h_u) / (S - 1) scaled alike.
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=80, n_layers=1, n_seeds=4, seed_sd=0.3)
    o, model = _model(d)
    c = C.evaluate(model, *_gain(1), pretrained_spread=spread)
    acc = o.rand.mean(axis=(2, 3))[0]  # (S,)
    factor = 1 / 4 + (1.0 if spread else 0.0)
    assert c.q[0] == pytest.approx(factor * acc.var(ddof=1), rel=1e-10)
    r = o.rand.mean(axis=2)[0]  # (S, N) per-image correctness of each seed
    n = r.shape[1]
    e = (r - r.mean(axis=1, keepdims=True)) / n  # each seed's image contributions
    labels = np.asarray(d["labels"])
    for h in np.unique(labels):  # centred within class strata, as the units are
        e[:, labels == h] -= e[:, labels == h].mean(axis=1, keepdims=True)
    e = e - e.mean(axis=0, keepdims=True)
    lev = np.array([1 / np.sum(labels == labels[i]) for i in range(n)])
    share = np.sum(e**2 / (1 - lev)) / (4 - 1)
    assert c.q_int[0] == pytest.approx(factor * share, rel=1e-8)
    assert c.var_networks[0] == pytest.approx(max(c.q[0] - c.q_int[0], 0.0))


def test_one_seed_has_no_calibrated_gain_but_a_pretrained_accuracy(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=60, n_layers=2, n_seeds=1)
    _, model = _model(d)
    gain = C.evaluate(model, *_gain(2), pretrained_spread=True)
    assert np.isnan(gain.se).all() and all("at least 2 seeds" in r for r in gain.reason)
    acc = C.evaluate(model, _gain(2)[0], np.zeros((2, 1, 2)), pretrained_spread=False)
    assert (acc.reason == "").all() and np.isfinite(acc.se).all()


def test_one_variance_part_gives_student_t(seed):
    # Only the units part (pretrained accuracy, no network part): the pivot is se * t_df.
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=40, n_layers=1, n_seeds=2, n_groups=6, group_sd=0.5)
    _, model = _model(d)
    c = C.evaluate(model, np.ones((1, 1, 1)), np.zeros((1, 1, 1)), pretrained_spread=False)
    draws = C.pivot_draws(c, 200_000, rng)
    half = np.quantile(np.abs(draws[:, 0]), 0.95)
    ref = sps.t.ppf(0.975, model.samples[0].df) * c.se[0]
    assert half == pytest.approx(ref, rel=0.02)


def test_interval_and_test_agree_exactly(seed):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        d = simulate(rng, n_images=50, n_layers=4, n_seeds=3, mu_pre=rng.normal(0.5, 0.3, 4), seed_sd=0.2)
        _, model = _model(d)
        c = C.evaluate(model, *_gain(4), pretrained_spread=True)
        draws = C.pivot_draws(c, 2000, rng)
        p, ci = C.infer(c, draws, confidence=0.95)
        outside = (ci[:, 0] > 0) | (ci[:, 1] < 0)
        np.testing.assert_array_equal(outside, p < 0.05)


def test_step_down_equals_brute_force_min_p(seed):
    # Westfall-Young minP by its definition: for the j-th smallest observed p, the adjusted p is
    # max over i <= j of P*(min over the not-yet-rejected set {(i),...,(m)} of p* <= p_(i)).
    rng = np.random.default_rng(seed)
    null = np.abs(rng.standard_normal((500, 4)) @ rng.normal(size=(4, 4)))
    obs = np.abs(rng.normal(2.0, 1.0, 4))
    p = np.array([np.mean(null[:, j] >= obs[j]) for j in range(4)])
    adjusted, p_null = C.step_down(null, p)
    ranks = np.array([[np.mean(null[:, j] >= null[b, j]) for j in range(4)] for b in range(500)])
    np.testing.assert_allclose(p_null, ranks)
    order = np.argsort(p, kind="stable")
    ref = np.empty(4)
    running = 0.0
    for pos, j in enumerate(order):
        rest = order[pos:]
        running = max(running, np.mean(ranks[:, rest].min(axis=1) <= p[j]), p[j])
        ref[j] = running
    np.testing.assert_allclose(adjusted, ref)


def test_joint_band_is_wider_than_the_pointwise_interval(seed):
    rng = np.random.default_rng(seed)
    d = simulate(rng, n_images=200, n_layers=6, n_seeds=3)
    _, model = _model(d)
    c = C.evaluate(model, *_gain(6), pretrained_spread=True)
    draws = C.pivot_draws(c, 4000, rng)
    p, ci = C.infer(c, draws, confidence=0.95)
    adjusted, band = C.joint(c, draws, p, confidence=0.95)
    assert np.all(band[:, 0] <= ci[:, 0]) and np.all(band[:, 1] >= ci[:, 1])
    assert np.all(adjusted >= p)


def test_pairs_of_sets_share_the_seeds(seed):
    # A difference of gain between two sets: its network part is the spread over seeds of the
    # difference of the seeds' accuracies (the same random network in both sets).
    rng = np.random.default_rng(seed)
    d1 = simulate(rng, n_images=60, n_layers=1, n_seeds=4, seed_sd=0.4)
    d2 = simulate(rng, n_images=70, n_layers=1, n_seeds=4, seed_sd=0.4)
    sets = []
    for d in (d1, d2):
        o = check_outcomes(d["correct_pre"], d["correct_rand"])
        sets.append((o, np.asarray(d["labels"]), None))
    model = C.design(sets)
    alpha = np.array([[[1.0], [-1.0]]])
    c = C.evaluate(model, alpha, -alpha, pretrained_spread=False)
    a1 = sets[0][0].rand.mean(axis=(2, 3))[0]
    a2 = sets[1][0].rand.mean(axis=(2, 3))[0]
    assert c.q[0] == pytest.approx(np.var(a1 - a2, ddof=1) / 4, rel=1e-10)
    single = [C.evaluate(C.design([s]), np.ones((1, 1, 1)), -np.ones((1, 1, 1)), pretrained_spread=False)
              for s in sets]
    assert c.var_units[0] == pytest.approx(single[0].var_units[0] + single[1].var_units[0], rel=1e-10)


def test_too_few_groups_give_a_reason():
    # 2 groups: df = G - 1 = 1 < 2, no calibrated interval; 3 groups: df = 2.
    rng = np.random.default_rng(0)
    for n_groups, calibrated in ((2, False), (3, True)):
        d = simulate(rng, n_images=42, n_layers=1, n_seeds=3, n_groups=n_groups)
        d["groups"] = np.arange(42) % n_groups
        _, model = _model(d)
        c = C.evaluate(model, *_gain(1), pretrained_spread=True)
        assert model.samples[0].df == pytest.approx(n_groups - 1)
        if calibrated:
            assert c.reason[0] == "" and np.isfinite(c.se[0])
        else:
            assert "degrees of freedom" in c.reason[0] and np.isnan(c.se[0])
