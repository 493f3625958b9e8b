"""Tests of the comparison of image sets."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats import (
    ProbeOutcomes,
    adjust_pvalues,
    bootstrap_gain,
    compare_sets,
    interaction_test,
    sign_flip_test,
)

from .simulate import binomial_tolerance, simulate


def _set(d, name=None):
    return ProbeOutcomes(d["correct_pre"], d["correct_rand"], d["labels"], d["groups"], name=name)


def _sets(rng, n_layers=3, params=({}, {}), **common):
    return [_set(simulate(rng, n_layers=n_layers, **common, **p), name=f"s{k}") for k, p in enumerate(params)]


# --------------------------------------------------------------------------- GLM interaction


def test_interaction_matches_statsmodels_formula_api(seed):
    # Independent construction of the same model with the formula API (patsy coding):
    # LRT = deviance(y ~ network + dataset) - deviance(y ~ network * dataset); the Wald test
    # of the interaction terms with cluster-robust covariance, clusters = image (or group).
    rng = np.random.default_rng(seed)
    sims = [
        simulate(rng, n_layers=1, n_images=80, mu_pre=0.9),
        simulate(rng, n_layers=1, n_images=60, mu_pre=0.4),
        simulate(rng, n_layers=1, n_images=70, mu_pre=0.6, n_groups=20, group_sd=0.5),
    ]
    res = interaction_test([_set(d) for d in sims])
    rows = []
    for k, d in enumerate(sims):
        n = d["labels"].size
        cluster = d["groups"] if d["groups"] is not None else np.arange(n)
        for network, y in (("pre", d["correct_pre"][0].mean(0)), ("rand", d["correct_rand"][0].mean((0, 1)))):
            cl = [f"{k}-{c}" for c in cluster]
            rows.append(pd.DataFrame({"y": y, "network": network, "dataset": f"d{k}", "cl": cl}))
    df = pd.concat(rows, ignore_index=True)
    fam = sm.families.Binomial()
    full = smf.glm("y ~ C(network, Treatment('rand')) * dataset", df, family=fam).fit()
    small = smf.glm("y ~ C(network, Treatment('rand')) + dataset", df, family=fam).fit()
    np.testing.assert_allclose(res.lrt_statistic[0], small.deviance - full.deviance, rtol=1e-6)
    codes = pd.factorize(df["cl"])[0]
    robust = smf.glm("y ~ C(network, Treatment('rand')) * dataset", df, family=fam).fit(
        cov_type="cluster", cov_kwds={"groups": codes}
    )
    names = [n for n in robust.params.index if ":" in n]
    wald = robust.wald_test(", ".join(f"{n} = 0" for n in names), use_f=False, scalar=True)
    np.testing.assert_allclose(res.wald_statistic[0], wald.statistic, rtol=1e-5)
    np.testing.assert_allclose(res.wald_pvalue[0], wald.pvalue, rtol=1e-5)
    assert res.df == 2 and res.failure[0] == ""


def test_interaction_reports_a_failed_layer():
    # Pretrained right on every image of set 0 at layer 0: perfect separation there only.
    rng = np.random.default_rng(0)
    a = simulate(rng, n_layers=2, n_images=50)
    a["correct_pre"][0] = True
    b = simulate(rng, n_layers=2, n_images=50)
    res = interaction_test([_set(a), _set(b)])
    assert np.isnan(res.wald_pvalue[0]) and res.failure[0].startswith("GLM fit")
    assert np.isfinite(res.wald_pvalue[1]) and res.failure[1] == ""


@pytest.mark.slow
def test_interaction_calibrated_and_powerful(seed):
    # 200 pairs of image sets (150 images each) from the same model: the cluster-robust Wald test
    # rejects at 0.05 within 4 binomial sds (+-0.062; observed 0.047); the LRT, which ignores the
    # pairing of the two rows of an image, must not exceed the level (observed 0.0). Different
    # pretraining effects (mu_pre 1.2 vs 0.6): Wald power >= 0.8 over 50 pairs (observed 0.99).
    rng = np.random.default_rng(seed)
    wald = lrt = 0
    for _ in range(200):
        res = interaction_test(_sets(rng, n_layers=1, n_images=150))
        wald += res.wald_pvalue[0] <= 0.05
        lrt += res.lrt_pvalue[0] <= 0.05
    tol = binomial_tolerance(0.05, 200)
    assert abs(wald / 200 - 0.05) <= tol
    assert lrt / 200 <= 0.05 + tol
    different = ({"mu_pre": 1.2}, {"mu_pre": 0.6})
    power = sum(
        interaction_test(_sets(rng, n_layers=1, params=different)).wald_pvalue[0] <= 0.05 for _ in range(50)
    )
    assert power >= 40


# --------------------------------------------------------------------------- compare_sets


def test_compare_sets_pieces_agree_with_the_per_set_functions(seed):
    rng = np.random.default_rng(seed)
    sets = _sets(rng, n_layers=4, params=({"mu_pre": 1.0}, {"mu_pre": 0.5}, {}), n_images=90)
    depth = np.array([0.0, 0.4, 0.8, 1.0])
    res = compare_sets(sets, depth, n_boot=300, n_resamples=199, seed=seed)
    # Set 0 is bootstrapped with stream 1 of the bootstrap stream (stream 0 draws the seeds),
    # exactly as bootstrap_gain does with that generator.
    boot_rng = np.random.default_rng(seed).spawn(3)[0]
    first = sets[0]
    alone = bootstrap_gain(first.correct_pre, first.correct_rand, first.labels, n_boot=300, seed=boot_rng)
    np.testing.assert_array_equal(res.bootstraps[0].gain_draws, alone.gain_draws)
    np.testing.assert_array_equal(res.gain[0], alone.gain)
    np.testing.assert_array_equal(res.pairs, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_allclose(res.difference[1], res.gain[0] - res.gain[2])
    np.testing.assert_allclose(res.difference_pvalue_holm, adjust_pvalues(res.difference_pvalue, axis=None))
    np.testing.assert_allclose(res.gain_pvalue_holm, adjust_pvalues(res.gain_pvalue, axis=-1))
    # Per-set p-values are those of the sign-flip test, run set after set on stream 1.
    flip_rng = np.random.default_rng(seed).spawn(3)[1]
    for k, s in enumerate(sets):
        sf = sign_flip_test(s.correct_pre, s.correct_rand, n_resamples=199, seed=flip_rng)
        np.testing.assert_array_equal(res.gain_pvalue[k], sf.pvalue)
    np.testing.assert_array_equal(res.deep_layers, [2, 3])
    expected = (res.gain_pvalue_holm <= 0.05) & (res.gain > 0)
    np.testing.assert_array_equal(res.significant, expected)
    np.testing.assert_array_equal(res.keeps_gain, expected[:, 2:].all(axis=1))
    np.testing.assert_allclose(res.slope_difference[0], res.slope[0] - res.slope[1])
    assert res.names == ("s0", "s1", "s2") and res.attrs()["datasets"] == "s0,s1,s2"


def test_seed_resample_is_shared_between_sets():
    # Every image alike: only the random seeds vary. Two identical sets then have identical gain
    # draws when (and only when) the seed resample is shared.
    n_images, n_seeds = 20, 4
    pre = np.ones((3, 1, n_images), dtype=bool)
    rand = np.zeros((3, n_seeds, 1, n_images), dtype=bool)
    rand[:, :2] = True  # seeds 0 and 1 right everywhere, 2 and 3 wrong
    labels = np.arange(n_images) % 2
    sets = [ProbeOutcomes(pre, rand, labels, name="a"), ProbeOutcomes(pre, rand, labels, name="b")]
    res = compare_sets(sets, [0.0, 0.5, 1.0], n_boot=200, n_resamples=9, seed=0)
    assert res.bootstraps[0].gain_draws.std() > 0.1
    np.testing.assert_array_equal(res.bootstraps[0].gain_draws, res.bootstraps[1].gain_draws)
    np.testing.assert_array_equal(res.difference_ci, 0.0)


@pytest.mark.slow
def test_difference_interval_covers_and_test_keeps_level(seed):
    # 150 pairs of sets from the same model (true difference 0; 150 images each, 5 seeds with a
    # seed spread), B = 500: the BCa interval of the difference covers 0 at 0.95 within 4 binomial
    # sds (+-0.071; observed 0.96-0.97) and the bootstrap p-value rejects at most
    # 0.05 + 4 sds (observed 0.02-0.04).
    rng = np.random.default_rng(seed)
    cover = reject = 0
    n_sim = 150
    for _ in range(n_sim):
        sets = _sets(rng, n_layers=1, n_images=150, seed_sd=0.1)
        res = compare_sets(sets, [1.0], n_boot=500, n_resamples=9, seed=rng)
        cover += res.difference_ci[0, 0, 0] <= 0 <= res.difference_ci[0, 0, 1]
        reject += res.difference_pvalue[0, 0] <= 0.05
    assert abs(cover / n_sim - 0.95) <= binomial_tolerance(0.95, n_sim)
    assert reject / n_sim <= 0.05 + binomial_tolerance(0.05, n_sim)


def test_bad_input():
    rng = np.random.default_rng(0)
    a, b = _sets(rng, n_layers=3, n_images=30)
    with pytest.raises(NotEnoughDataError, match=r"Comparing image sets needs at least 2 sets, got 1"):
        compare_sets([a], [0, 0.5, 1])
    with pytest.raises(InputTypeError, match=r"`sets` must be a sequence of ProbeOutcomes"):
        compare_sets(a, [0, 0.5, 1])
    with pytest.raises(InputTypeError, match=r"`sets\[1\]` must be a ProbeOutcomes, got dict"):
        compare_sets([a, {}], [0, 0.5, 1])
    fewer_layers = ProbeOutcomes(b.correct_pre[:2], b.correct_rand[:2], b.labels, name="c")
    with pytest.raises(InputValueError, match=r"same layers and random seeds.*\(3, 5\), \(2, 5\)"):
        compare_sets([a, fewer_layers], [0, 0.5, 1])
    fewer_seeds = ProbeOutcomes(b.correct_pre, b.correct_rand[:, :2], b.labels, name="c")
    with pytest.raises(InputValueError, match=r"same layers and random seeds"):
        interaction_test([a, fewer_seeds])
    with pytest.raises(InputValueError, match=r"Image set names must be distinct, got \['s0', 's0'\]"):
        compare_sets([a, a], [0, 0.5, 1])
    no_deep = r"No layer has relative depth >= deep_min_relative_depth = 0.9"
    with pytest.raises(InputValueError, match=no_deep):
        compare_sets([a, b], [0, 0.4, 0.8], deep_min_relative_depth=0.9)
    with pytest.raises(InputValueError, match=r"`relative_depth` must have shape \(3,\)"):
        compare_sets([a, b], [0, 1])
    with pytest.raises(InputValueError, match=r"`n_boot` must be >= 1"):
        compare_sets([a, b], [0, 0.5, 1], n_boot=0)
    with pytest.raises(InputValueError, match=r"`alpha` must lie in \(0, 1\)"):
        compare_sets([a, b], [0, 0.5, 1], alpha=1)
