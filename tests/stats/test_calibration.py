"""Calibration of ``gain_statistics`` and ``interaction_test`` where pathology data live (issue 12).

Every scenario is simulated by :func:`tests.stats.simulate.simulate_study` (a probit model with
image difficulty, unequal slides, a slide-level pretrained-vs-random contrast, a random-init
network effect per network and layer, and a pretrained network drawn from the same distribution
of networks where the scenario says so) with the true gain in closed form; the scenarios
themselves are ``SCENARIOS`` in ``simulate.py``, shared with ``bench/calibration.py`` (which runs
them with more runs and prints the table).

Each test states its scenario, nominal level and tolerance, computes the Monte-Carlo SE of the
measured rate from the binomial, prints them (``pytest -s`` shows the lines) and asserts the rate
within about 2 MC SE on the side that matters (3 for coverage, the issue's 0.95 +- 0.02 at
1000 runs). The bounds are computed at the nominal rate, so they hold for any seed of the
``calibration_seed`` fixture in about 97.5 % of seeds at the worst (a procedure exactly at its
level).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from .simulate import (
    SCENARIOS,
    _correlated,
    disagreements,
    draw_networks,
    group_counts,
    latent_sd,
    mc_se,
    network_accuracy_sd,
    rate_of,
    run_of,
    run_scenario,
    seed_sd_for,
    simulate_study,
    study_kwargs,
    study_means,
)

# Runs per scenario in the suite (bench/calibration.py: --runs, 2000-4000). 1000 runs give an MC
# SE of 0.0069 at 0.95 / 0.05. The 18-layer scenarios run fewer: one gain_statistics call of 18
# layers costs ~0.5-1.3 s here (1 layer: ~40 ms), so 300 runs of fwer_18_layers are ~5 min.
RUNS = {
    "coverage_ungrouped": 1000,
    "coverage_40_groups": 1000,
    "coverage_10_groups": 1000,
    "size_10_groups": 1000,
    "size_n60_accuracy95": 1000,
    "size_drawn_s5": 1000,
    "size_drawn_s2": 1000,
    "power_gain05": 400,
    "fwer_18_layers": 300,
    "interaction_10_groups": 1000,
    "sweet_spot_8_groups": 100,
    "sweet_spot_drop": 600,
}
N_DRAWS = 2000  # Monte Carlo draws of the joint null (max-T, band, sweet spot)

_CACHE: dict[tuple[str, int], dict] = {}


@pytest.fixture(params=[int(os.environ.get("LAYERGAIN_CALIBRATION_SEED", "0"))])
def calibration_seed(request: pytest.FixtureRequest) -> int:
    """One seed for the calibration tests (the shared ``seed`` fixture has three: each test here
    is already 200-1000 simulated studies, and three seeds would triple the suite's slowest
    file). The bounds hold for any seed; LAYERGAIN_CALIBRATION_SEED=7 runs another, and
    bench/calibration.py --seed runs more runs of any."""
    return request.param


def _results(name: str, seed: int) -> dict:
    """The scenario's runs for this seed, simulated and analysed once per test session."""
    scenario = SCENARIOS[name]
    key = (scenario.stream, seed)
    if key not in _CACHE:
        _CACHE[key] = run_scenario(scenario, seed, RUNS[scenario.stream], n_draws=N_DRAWS)
    return _CACHE[key]


def _measure(name: str, seed: int) -> tuple[float, float, int, int]:
    """(measured rate, its MC SE, runs, runs with NaN) of a scenario, printed."""
    scenario = SCENARIOS[name]
    res = _results(name, seed)
    rate, n_nan = rate_of(scenario, res)
    runs = res["runs"]
    se = mc_se(rate, runs)
    print(
        f"\n[{name} seed={seed}] nominal {scenario.nominal:g}: measured {rate:.4f} (MC SE {se:.4f}), "
        f"{runs} runs, {n_nan} with NaN, analysis {res['seconds']:.1f} s -- {scenario.description}"
    )
    return rate, se, runs, n_nan


# =========================================================================== the simulator itself


@pytest.mark.parametrize(
    "config",
    [
        {"n_images": 40, "n_seeds": 3, "network_sd": 0.03, "gain_sd": 0.5},
        {
            "n_images": 60,
            "n_seeds": 2,
            "n_groups": 6,
            "group_sd": 0.8,
            "gain_sd": 0.6,
            "network_sd": 0.05,
            "n_repeats": 2,
        },
        {
            "n_images": 50,
            "n_seeds": 4,
            "n_groups": 5,
            "group_sd": 0.5,
            "network_sd": 0.06,
            "pretrained_drawn": False,
        },
    ],
    ids=["ungrouped-drawn", "grouped-drawn", "grouped-fixed"],
)
def test_simulated_accuracies_are_unbiased_for_the_closed_form(seed, config):
    # The observed accuracies are means of Bernoulli outcomes whose marginal probability is the
    # closed form, so their expectation is exact at any N: the mean over 4000 simulated studies
    # must be within 4 MC SE of true_accuracy_* and true_gain (per layer, 3 layers with
    # different accuracies and correlated effects).
    kw = study_kwargs([0.6, 0.75, 0.9], [0.55, 0.6, 0.8], n_layers=3, layer_correlation=0.6, **config)
    d = simulate_study(np.random.default_rng(seed), **kw, n_runs=4000)
    acc_pre = d["correct_pre"].mean(axis=(-2, -1))
    acc_rand = d["correct_rand"].mean(axis=(-3, -2, -1))
    for observed, truth in (
        (acc_pre, d["true_accuracy_pretrained"]),
        (acc_rand, d["true_accuracy_random"]),
        (acc_pre - acc_rand, d["true_gain"]),
    ):
        se = observed.std(axis=0, ddof=1) / np.sqrt(observed.shape[0])
        assert np.all(np.abs(observed.mean(axis=0) - truth) <= 4 * se), (observed.mean(axis=0), truth, se)
    np.testing.assert_allclose(d["true_accuracy_pretrained"], [0.6, 0.75, 0.9], rtol=1e-12)
    np.testing.assert_allclose(d["true_accuracy_random"], [0.55, 0.6, 0.8], rtol=1e-12)


def test_pretrained_drawn_from_the_random_distribution_is_a_zero_gain():
    # mu_pre = mu_rand, no slide contrast, pretrained drawn: the pretrained network is one more
    # random draw, so the latent laws are equal and the true gain is exactly 0.
    kw = study_kwargs(0.85, 0.85, n_images=10, n_seeds=2, network_sd=0.045)
    np.testing.assert_allclose(kw["mu_pre"], kw["mu_rand"], rtol=1e-12)
    np.testing.assert_allclose(kw["pretrained_seed_sd"], kw["seed_sd"], rtol=1e-9)
    d = simulate_study(np.random.default_rng(0), **kw)
    np.testing.assert_allclose(d["true_gain"], 0.0, atol=1e-12)


def test_drawn_pretrained_network_spreads_like_its_random_twins():
    # gain_statistics' pretrained="draw": the pretrained network's accuracy varies over draws as
    # a random network's does at the same layer, although it sits at another accuracy and has the
    # slide contrast's extra latent variance (so its latent SD must differ from seed_sd).
    common = {"image_sd": 1.0, "group_sd": 0.8}
    kw = study_kwargs([0.6, 0.9], [0.55, 0.7], n_layers=2, network_sd=0.03, gain_sd=0.6, **common)
    pre = network_accuracy_sd(kw["mu_pre"], kw["pretrained_seed_sd"], **common, gain_sd=0.6)
    rand = network_accuracy_sd(kw["mu_rand"], kw["seed_sd"], **common)
    np.testing.assert_allclose(pre, rand, rtol=1e-9)
    assert not np.allclose(kw["pretrained_seed_sd"], kw["seed_sd"], rtol=0.05)
    # simulate_study's default (pretrained_seed_sd=None) finds the same SDs from the means
    rest = {k: v for k, v in kw.items() if k != "pretrained_seed_sd"}
    d = simulate_study(np.random.default_rng(0), n_images=10, n_seeds=2, **rest)
    np.testing.assert_allclose(d["networks"]["pretrained_seed_sd"], kw["pretrained_seed_sd"], rtol=1e-9)
    np.testing.assert_allclose(d["true_accuracy_pretrained"], [0.6, 0.9], rtol=1e-12)


def test_network_accuracy_sd_matches_monte_carlo(seed):
    # Quadrature against direct simulation of b ~ N(0, seed_sd^2): 200 000 draws, SE of the SD
    # ~ sd / sqrt(2 * 200 000) = 0.0016 sd; tolerance 1 %.
    rng = np.random.default_rng(seed)
    mu, seed_sd, scale = 1.2, 0.4, latent_sd(image_sd=1.0, group_sd=0.5)  # without seed_sd: b is drawn here
    b = rng.normal(0, seed_sd, 200_000)
    from scipy.special import ndtr

    mc = ndtr((mu + b) / scale).std()
    np.testing.assert_allclose(network_accuracy_sd(mu, seed_sd, image_sd=1.0, group_sd=0.5), mc, rtol=0.01)


def test_seed_sd_for_inverts_network_accuracy_sd():
    for target, acc in ((0.045, 0.85), (0.01, 0.78), (0.02, 0.95)):
        sd = seed_sd_for(target, acc, group_sd=0.8)
        _, mu = study_means(acc, acc, group_sd=0.8, seed_sd=sd)
        np.testing.assert_allclose(network_accuracy_sd(mu, sd, group_sd=0.8), target, rtol=1e-9)
    assert seed_sd_for(0.0, 0.9) == 0.0


def test_correlated_normals_have_the_stated_correlations(seed):
    # Kronecker structure: 0.6 along axis 1, 0.3 along axis 2, 0.18 along both; 100 000 draws
    # give correlations within 0.01 (SE ~ 0.003).
    z = _correlated(np.random.default_rng(seed), (100_000, 3, 4), {1: 0.6, 2: 0.3})
    c = np.corrcoef(z.reshape(100_000, -1).T)
    np.testing.assert_allclose([c[0, 4], c[0, 1], c[0, 5], z.var()], [0.6, 0.3, 0.18, 1.0], atol=0.01)


def test_group_counts():
    unequal = group_counts(500, 10)
    assert unequal.sum() == 500 and unequal.min() >= 2 and np.all(np.diff(unequal) <= 0)
    assert unequal[0] / unequal[-1] > 8  # Kather-like: very unequal slides
    np.testing.assert_array_equal(group_counts(62, 10, "equal"), [7, 7] + [6] * 8)
    np.testing.assert_array_equal(group_counts(6, 2, [1, 5]), [1, 5])
    with pytest.raises(ValueError, match="cannot make 10 groups"):
        group_counts(15, 10)
    with pytest.raises(ValueError, match="group_sizes must be"):
        group_counts(10, 2, "uneven")


def test_shapes_folds_and_shared_networks(seed):
    rng = np.random.default_rng(seed)
    nets = draw_networks(rng, n_seeds=3, n_layers=2, seed_sd=0.5, pretrained_drawn=True, n_runs=4)
    kw = {
        "n_seeds": 3,
        "mu_pre": 1.0,
        "mu_rand": 0.5,
        "n_layers": 2,
        "n_groups": 6,
        "n_repeats": 2,
        "networks": nets,
    }
    kw["n_runs"] = 4
    a = simulate_study(rng, n_images=30, **kw)
    b = simulate_study(rng, n_images=20, **kw)
    assert a["correct_pre"].shape == (4, 2, 2, 30) and a["correct_rand"].shape == (4, 2, 3, 2, 30)
    assert b["folds"].shape == (4, 2, 20) and a["groups"].shape == (30,)
    assert a["networks"] is b["networks"] is nets  # seed s is the same network in both sets
    # folds respect groups: one fold per group in every run and repeat
    for r in range(4):
        for rep in range(2):
            per_group = [np.unique(a["folds"][r, rep, a["groups"] == g]).size for g in range(6)]
            assert per_group == [1] * 6
    one = run_of(a, 2)
    np.testing.assert_array_equal(one["correct_pre"], a["correct_pre"][2])
    assert one["networks"]["rand"].shape == (2, 3)


# =========================================================================== calibration


@pytest.mark.slow
@pytest.mark.parametrize("name", ["coverage_ungrouped", "coverage_40_groups", "coverage_10_groups"])
def test_ci_covers_the_true_gain(calibration_seed, name):
    """Pointwise 95 % CI (`gain_ci`) covers the true gain (images, groups and networks).

    Scenarios: N = 500 independent images; 40 unequal groups; 10 unequal groups with strong
    within-group correlation (issue 12 item 1: BCa covered 0.85-0.86). Nominal 0.95; tolerance
    0.95 +- 0.02 (the issue's; 2.9 MC SE at 1000 runs). A NaN interval counts as a miss.
    """
    rate, se, runs, n_nan = _measure(name, calibration_seed)
    assert n_nan == 0
    # the bound is the issue's, inclusive; 1e-9 only absorbs float rounding of |0.97 - 0.95| (measured
    # at seed 0: 0.950 ungrouped, 0.970 with 40 and 0.954 with 10 unequal groups, 1000 runs each)
    assert abs(rate - 0.95) <= 0.02 + 1e-9, f"{name}: coverage {rate:.4f} (MC SE {se:.4f}, {runs} runs)"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["size_10_groups", "size_n60_accuracy95", "size_drawn_s5", "size_drawn_s2"])
def test_primary_test_keeps_its_size_under_a_zero_gain(calibration_seed, name):
    """Two-sided size of `gain_p <= 0.05` under a true zero gain.

    Scenarios (issue 12 items 1, 3, 4): 10 unequal groups with slide gains that vary around 0;
    N = 60 images at accuracy 0.95 with S = 5 (the skewed per-image differences); the pretrained
    network one more draw of the random distribution (seed SD of accuracy 0.045) with S = 5 and
    S = 2 (the old test rejected 18 % / 25 %). Nominal 0.05; bound 0.05 + 2 MC SE at 0.05. A NaN
    p (no calibrated statement possible) does not reject.
    """
    rate, se, runs, n_nan = _measure(name, calibration_seed)
    bound = 0.05 + 2 * mc_se(0.05, runs)
    assert rate <= bound, f"{name}: size {rate:.4f} > {bound:.4f} (MC SE {se:.4f}, {runs} runs, {n_nan} NaN)"


@pytest.mark.slow
def test_ci_and_test_agree(calibration_seed):
    """`gain_p < 0.05` exactly when 0 lies outside the 95 % `gain_ci`, in every run.

    Counted over all runs of the coverage, size and power scenarios (item 4: the old CI and test
    disagreed in 12 % of runs). Cells within 1e-9 of the boundary are not compared; a NaN p
    must come with a NaN interval. Tolerance: 0 disagreements.
    """
    names = [n for n, s in SCENARIOS.items() if s.measure in ("coverage", "size", "power")]
    total_differ = total = 0
    for name in names:
        differ, compared = disagreements(_results(name, calibration_seed))
        print(f"\n[{name} seed={calibration_seed}] CI/test disagreements: {differ} of {compared}")
        total_differ, total = total_differ + differ, total + compared
    assert total > 0.99 * sum(RUNS[n] for n in names)  # ties are rare
    assert total_differ == 0


@pytest.mark.slow
def test_power_is_kept(calibration_seed):
    """Power of `gain_p <= 0.05` at N = 500, true gain 0.05 (0.85 vs 0.80), S = 5, a small seed
    effect (seed SD of accuracy 0.01), pretrained drawn.

    Issue 12 requires >= 0.60; bound 0.60 - 2 MC SE (at 0.60, 400 runs: 0.551), so a procedure
    with power 0.60 passes for any seed.
    """
    rate, se, runs, _ = _measure("power_gain05", calibration_seed)
    bound = 0.60 - 2 * mc_se(0.60, runs)
    assert rate >= bound, f"power {rate:.4f} < {bound:.4f} (MC SE {se:.4f}, {runs} runs)"


@pytest.mark.slow
def test_max_t_controls_the_family_wise_error_over_18_layers(calibration_seed):
    """Family-wise error of `gain_p_maxt <= 0.05`: 18 layers with correlation 0.9 (images,
    slide contrasts, network effects and prediction noise all correlated), every true gain 0,
    N = 300 in 20 unequal groups, S = 5, pretrained drawn. Nominal 0.05; bound 0.05 + 2 MC SE.
    """
    rate, se, runs, _ = _measure("fwer_18_layers", calibration_seed)
    bound = 0.05 + 2 * mc_se(0.05, runs)
    assert rate <= bound, f"FWER {rate:.4f} > {bound:.4f} (MC SE {se:.4f}, {runs} runs)"


@pytest.mark.slow
def test_simultaneous_band_covers_all_18_layers(calibration_seed):
    """`gain_band` covers all 18 true gains at once (the runs of the family-wise test).
    Nominal 0.95; bound 0.95 - 2 MC SE.
    """
    rate, se, runs, _ = _measure("band_18_layers", calibration_seed)
    bound = 0.95 - 2 * mc_se(0.95, runs)
    assert rate >= bound, f"band coverage {rate:.4f} < {bound:.4f} (MC SE {se:.4f}, {runs} runs)"


@pytest.mark.slow
def test_interaction_size_with_10_clusters_per_set(calibration_seed):
    """Size of `interaction_test(...).pvalue <= 0.05`: 2 sets (N = 300 and 200, 10 unequal
    groups each), the same true gain, seeds shared between sets (item 6: cluster-robust Wald
    0.092). Issue 12 asks <= 0.06; the bound is 0.05 + 2 MC SE (0.064 at 1000 runs), the
    tolerance of the other size tests; bench/calibration.py measures it with more runs.
    """
    rate, se, runs, n_nan = _measure("interaction_10_groups", calibration_seed)
    bound = 0.05 + 2 * mc_se(0.05, runs)
    assert rate <= bound, (
        f"interaction size {rate:.4f} > {bound:.4f} (MC SE {se:.4f}, {runs} runs, {n_nan} NaN)"
    )


@pytest.mark.slow
def test_sweet_spot_is_never_the_poor_layer_with_8_groups(calibration_seed):
    """Sweet spot with 8 unequal groups: layer 0 at accuracy 0.48, layers 1-17 at 0.96 (item 7:
    the p-value floor made layer 0 "the sweet spot"). It may be a deeper layer or "" but never
    "0": tolerance 0 runs.
    """
    rate, _, _, _ = _measure("sweet_spot_8_groups", calibration_seed)
    spots = _results("sweet_spot_8_groups", calibration_seed)["sweet_spot"]
    print(f"  sweet spots: {dict(zip(*np.unique(spots, return_counts=True)))}")
    assert rate == 0.0


@pytest.mark.slow
def test_sweet_spot_rarely_picks_a_layer_two_points_worse(calibration_seed):
    """Non-inferiority with margin 0.02: layer 0 is 2 points below layers 1 and 2 (0.88 vs
    0.90), N = 500 independent images, S = 5 (item 7: the old rule picked it in 99 % of runs).
    A true drop equal to the margin is the boundary of non-inferiority, so a level-0.05 rule
    picks layer 0 in at most 5 %: bound 0.05 + 2 MC SE.
    """
    rate, se, runs, _ = _measure("sweet_spot_drop", calibration_seed)
    spots = _results("sweet_spot_drop", calibration_seed)["sweet_spot"]
    print(f"  sweet spots: {dict(zip(*np.unique(spots, return_counts=True)))}")
    bound = 0.05 + 2 * mc_se(0.05, runs)
    assert rate <= bound, f"layer 0 picked in {rate:.4f} > {bound:.4f} (MC SE {se:.4f}, {runs} runs)"
