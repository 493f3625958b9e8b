"""stratified_tau and pooled_tau: Kendall's tau of the transferability estimators across image sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from layergain import schema as S
from layergain.errors import InputTypeError, InputValueError, NotEnoughDataError
from layergain.stats.compare import TauInputs, pooled_tau, stratified_tau
from layergain.transferability import tau_table


def slow_stratified_tau(xs, ys) -> float:
    """Count every pair of every stratum by hand: sum(C - D) / sqrt(sum untied x * sum untied y).

    A stratum whose x or y is constant (no tau-b of its own) is left out.
    """
    score = untied_x = untied_y = 0
    for x, y in zip(xs, ys):
        if len(set(x)) < 2 or len(set(y)) < 2:
            continue
        for i in range(len(x)):
            for j in range(i + 1, len(x)):
                dx, dy = x[i] - x[j], y[i] - y[j]
                untied_x += dx != 0
                untied_y += dy != 0
                score += (dx * dy > 0) - (dx * dy < 0)
    return score / math.sqrt(untied_x * untied_y) if untied_x and untied_y else math.nan


_stratum = st.integers(3, 7).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, 3), min_size=n, max_size=n),
                        st.lists(st.integers(0, 3), min_size=n, max_size=n)))


@settings(max_examples=60, deadline=None)
@given(st.lists(_stratum, min_size=1, max_size=4))
def test_stratified_tau_counts_the_pairs_of_each_stratum(strata) -> None:
    # small integers: many ties, and strata that are constant
    xs, ys = [s[0] for s in strata], [s[1] for s in strata]
    expected = slow_stratified_tau(xs, ys)
    got = stratified_tau(xs, ys)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_stratified_tau_of_one_stratum_is_kendalls_tau_b(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, 12), rng.integers(0, 4, 12)  # ties on both sides
    # scipy.stats.kendalltau(x, y, variant="b")
    assert stratified_tau([x], [y]) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)


def test_without_ties_it_is_the_pair_weighted_mean_of_the_strata(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs, ys = [rng.standard_normal(n) for n in (4, 6, 9)], [rng.standard_normal(n) for n in (4, 6, 9)]
    taus = np.array([kendalltau(x, y).statistic for x, y in zip(xs, ys)])
    pairs = np.array([n * (n - 1) / 2 for n in (4, 6, 9)])
    assert stratified_tau(xs, ys) == pytest.approx(np.sum(taus * pairs) / pairs.sum(), abs=1e-12)
    assert stratified_tau(xs, ys) != pytest.approx(taus.mean(), abs=1e-6)  # not the plain mean


def test_stratified_tau_errors() -> None:
    with pytest.raises(InputValueError, match="as many strata, got 2 and 1"):
        stratified_tau([[1, 2, 3], [1, 2, 3]], [[1, 2, 3]])
    with pytest.raises(InputValueError, match=r"stratum 0: .* got shapes \(3,\) and \(2,\)"):
        stratified_tau([[1, 2, 3]], [[1, 2]])
    with pytest.raises(InputValueError, match="stratum 1 holds NaN"):
        stratified_tau([[1, 2, 3], [1, np.nan, 3]], [[1, 2, 3], [3, 2, 1]])


def _set(rng, n_layers=6, n_images=40):
    """A simulated run: three estimators (one tracking the accuracy, one against it, one noise), its
    accuracy and gain, per-image correctness; the inputs of tau_table as test_study makes them."""
    inits, layers = ["pretrained", "random-0", "random-1", "random-2"], [f"l{j}" for j in range(n_layers)]
    depth = np.linspace(0.2, 1.0, n_layers)
    random = 0.3 + 0.2 * depth + 0.05 * rng.standard_normal((3, n_layers))
    p = np.clip(np.vstack([0.3 + 0.6 * depth, random]), 0, 1)
    correct = xr.DataArray((rng.random((4, n_layers, n_images)) < p[..., None]).astype(float),
                           dims=(S.INIT, S.LAYER, S.IMAGE), coords={S.INIT: inits, S.LAYER: layers})
    acc = correct.mean(S.IMAGE)
    gain = acc.sel(init="pretrained") - acc.sel(init=inits[1:]).mean(S.INIT)
    est = xr.Dataset({name: ((S.INIT, S.LAYER), sign * acc.values + scale * rng.standard_normal(acc.shape))
                      for name, sign, scale in (("up", 1, 0.05), ("down", -1, 0.05), ("noise", 0, 1.0))},
                     coords={S.INIT: inits, S.LAYER: layers})
    return est, acc, gain, correct


def _inputs(est, acc, gain, correct, name=None) -> TauInputs:
    names = list(est.data_vars)
    return TauInputs(np.stack([est[n].values for n in names]), acc.values, gain.values, correct.values, name)


def test_one_set_is_its_tau_table(seed: int) -> None:
    """With one set and its tau table's seed, the draws are the tau table's: same taus, same intervals."""
    est, acc, gain, correct = _set(np.random.default_rng(seed))
    tau = tau_table(est, acc, gain, correct=correct, n_boot=300, seed=seed)
    pooled = pooled_tau([_inputs(est, acc, gain, correct)], n_boot=300, seed=seed)
    for what in ("tau_accuracy", "tau_gain"):
        np.testing.assert_allclose(getattr(pooled, what), tau[what].values, atol=1e-12)
        np.testing.assert_allclose(getattr(pooled, what + "_ci"), tau[what + "_ci"].values, atol=1e-12)
    assert (pooled.n_sets == 1).all() and pooled.failure == ("",) * len(est.data_vars)


def test_pooled_is_the_stratified_tau_of_the_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sets = [_set(rng, n_layers=n) for n in (5, 7)]
    pooled = pooled_tau([_inputs(*s, name=f"s{k}") for k, s in enumerate(sets)], n_boot=200, seed=seed)
    for e, name in enumerate(sets[0][0].data_vars):
        diffs = [s[0][name].sel(init="pretrained") - s[0][name].drop_sel(init="pretrained").mean(S.INIT)
                 for s in sets]
        gains = [s[2].values.tolist() for s in sets]
        expected = slow_stratified_tau([d.values.tolist() for d in diffs], gains)
        assert pooled.tau_gain[e] == pytest.approx(expected, abs=1e-12)
        pre = [s[0][name].sel(init="pretrained").values.tolist() for s in sets]
        acc = [s[1].sel(init="pretrained").values.tolist() for s in sets]
        assert pooled.tau_accuracy[e] == pytest.approx(slow_stratified_tau(pre, acc), abs=1e-12)
        lo, hi = pooled.tau_gain_ci[e]
        assert -1 <= lo <= hi <= 1


def test_a_set_with_too_few_layers_is_left_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    (est_a, *rest_a), b = _set(rng), _set(rng)
    est_a = est_a.copy()
    est_a["up"][:, 2:] = np.nan  # 2 finite layers left
    a = (est_a, *rest_a)
    pooled = pooled_tau([_inputs(*a, name="a"), _inputs(*b, name="b")], n_boot=100, seed=seed)
    alone = pooled_tau([_inputs(*b, name="b")], n_boot=100, seed=seed)
    assert pooled.n_sets[0] == 1
    assert pooled.left_out[0] == {"a": "2 layer(s) with finite values; Kendall's tau needs 3"}
    assert pooled.tau_gain[0] == pytest.approx(alone.tau_gain[0], abs=1e-12)
    assert pooled.n_sets[1] == 2 and pooled.left_out[1] == {}
    nowhere = pooled_tau([_inputs(*a, name="a")], n_boot=100, seed=seed)
    assert np.isnan(nowhere.tau_gain[0]) and np.isnan(nowhere.tau_gain_ci[0]).all()
    assert "no set has 3 or more layers" in nowhere.failure[0]


def test_pooled_tau_errors(seed: int) -> None:
    est, acc, gain, correct = _set(np.random.default_rng(seed))
    good = _inputs(est, acc, gain, correct)
    with pytest.raises(InputTypeError, match="`sets` must be a non-empty sequence of TauInputs"):
        pooled_tau(good)
    with pytest.raises(InputTypeError, match=r"`sets\[1\]` must be a TauInputs, got dict"):
        pooled_tau([good, {}])
    bad = TauInputs(good.estimates, good.accuracy[:, :-1], good.gain, good.correct)
    with pytest.raises(InputValueError, match=r"`sets\[0\]`: estimates .* got \(3, 4, 6\), \(4, 5\)"):
        pooled_tau([bad])
    fewer = TauInputs(good.estimates[:, :2], good.accuracy[:2], good.gain, good.correct[:2])
    with pytest.raises(InputValueError, match=r"the same estimators and networks .* \[\(3, 4\), \(3, 2\)\]"):
        pooled_tau([good, fewer])
    alone = TauInputs(good.estimates[:, :1], good.accuracy[:1], good.gain, good.correct[:1])
    with pytest.raises(NotEnoughDataError, match="needs a random init .* n_inits = 1"):
        pooled_tau([alone])
    with pytest.raises(InputValueError, match="n_boot"):
        pooled_tau([good], n_boot=0)


def test_random_inits_are_drawn_once_for_every_set(seed: int) -> None:
    """The random network with seed s is the same network in every set: one draw of inits serves all.

    Every image of a set equally often correct leaves the inits as the only thing resampled; two
    copies of one set then move together in every draw, so their pooled interval is the set's own
    (independent draws per set would average out and narrow it).
    """
    est, acc, gain, correct = _set(np.random.default_rng(seed))
    flat = xr.broadcast(acc, correct)[0].transpose(*correct.dims)  # each image correct with rate acc
    one = _inputs(est, acc, gain, flat, "a")
    single = pooled_tau([one], n_boot=300, seed=seed)
    twice = pooled_tau([one, TauInputs(one.estimates, one.accuracy, one.gain, one.correct, "b")], n_boot=300,
                       seed=seed)
    np.testing.assert_allclose(twice.tau_gain, single.tau_gain, atol=1e-12)
    np.testing.assert_allclose(twice.tau_gain_ci, single.tau_gain_ci, atol=1e-12)
    assert np.ptp(single.tau_gain_ci, axis=1).max() > 0  # the inits do move the gain's tau
