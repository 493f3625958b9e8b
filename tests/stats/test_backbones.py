"""Backbones side by side (issue 15): a larger model's best layer against a smaller model's sweet spot.

Calibration scenarios (simulated by :func:`tests.stats.simulate.simulate`: one simulation whose first
layers are the smaller backbone's and the others the larger's, so both see the same images, ease
and slide effects):

- ``size_slides_fixed``: 10 unequal slides, 200 images, 5 seeds, target ``fixed`` (the simulated
  pretrained networks have no network effect of their own). The smaller model (3 layers) has its
  sweet spot at its most accurate layer; the larger (5 layers) has *two* layers exactly as
  accurate as that sweet spot and the others below it: the least favourable null for a test
  that picks the best layer after seeing the data.
- ``size_images_draw_s2``: the same without slides (200 images) and with 2 seeds under target
  ``draw`` (the pretrained spread from the random twins' 1 degree of freedom).
- ``power``: 500 images, the larger model's best layer 0.05 more accurate than the smaller's
  sweet spot (accuracy 0.80 against 0.75), target ``fixed``.

Each prints scenario, nominal level, measured rate and Monte-Carlo SE (``pytest -s``) and asserts
the size <= 0.05 + 2 MC SE (computed at 0.05) and the power above a floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import compare_backbones
from layergain.stats.compare import ProbeOutcomes

from .simulate import mc_se, simulate

N_DRAWS = 2000


def _split(d, n_small: int):
    small = ProbeOutcomes(d["correct_pre"][:n_small], d["correct_rand"][:n_small], d["labels"], d["groups"])
    large = ProbeOutcomes(d["correct_pre"][n_small:], d["correct_rand"][n_small:], d["labels"], d["groups"])
    return small, large


def test_the_difference_is_the_best_layer_minus_the_sweet_spot():
    rng = np.random.default_rng(1)
    d = simulate(rng, n_images=150, n_layers=6, n_seeds=4, mu_pre=[0.2, 0.9, 0.7, 0.5, 1.1, 0.8], seed_sd=0.2)
    small, large = _split(d, 2)
    r = compare_backbones([large, small], ["L", "S"], size=[5e6, 1e6], sweet=[-1, 1], n_draws=N_DRAWS, seed=0)
    assert r.pairs == [(1, 0)]  # (smaller, larger) by size, whatever the order given
    acc_large = d["correct_pre"][2:].mean(axis=(1, 2))
    acc_sweet = d["correct_pre"][1].mean()
    assert r.best[0] == int(np.argmax(acc_large)) and r.sweet[0] == 1
    np.testing.assert_allclose(r.difference[0], acc_large.max() - acc_sweet, atol=1e-12)
    np.testing.assert_allclose(r.differences[0], acc_large - acc_sweet, atol=1e-12)
    lo, hi = r.difference_ci[0]
    assert lo < r.difference[0] < hi and r.reason[0] == ""
    assert 0 < r.p_best[0] <= 1 and 0 < r.p_any[0] <= 1


def test_with_one_layer_the_selection_costs_nothing():
    """A larger model with one layer: the minP over its layers is that layer's own one-sided p."""
    rng = np.random.default_rng(2)
    d = simulate(rng, n_images=200, n_layers=3, n_seeds=3, mu_pre=[0.6, 0.9, 1.2], seed_sd=0.1)
    small, large = _split(d, 2)
    r = compare_backbones([small, large], ["S", "L"], size=[1, 2], sweet=[1, 0], pretrained="fixed",
                          n_draws=N_DRAWS, seed=3)
    np.testing.assert_allclose(r.p_any, r.p_best)


def test_pairs_sizes_and_undetermined_sweet_spots():
    rng = np.random.default_rng(3)
    d = simulate(rng, n_images=80, n_layers=4, n_seeds=3)
    small, large = _split(d, 2)
    same = compare_backbones([small, large], ["A", "B"], size=[3, 3], sweet=[0, 0], n_draws=N_DRAWS, seed=0)
    assert same.pairs == []  # equal sizes: neither is the larger
    none = compare_backbones([small, large], ["A", "B"], size=[1, 3], sweet=[-1, 0], n_draws=N_DRAWS, seed=0)
    assert np.isnan(none.p_any[0]) and "sweet spot of `A` is undetermined" in none.reason[0]


def test_errors():
    rng = np.random.default_rng(4)
    d = simulate(rng, n_images=60, n_layers=3, n_seeds=3)
    small, large = _split(d, 1)
    with pytest.raises(NotEnoughDataError, match="at least 2"):
        compare_backbones([small], ["A"], size=[1], sweet=[0])
    with pytest.raises(InputValueError, match="name each backbone once"):
        compare_backbones([small, large], ["A", "A"], size=[1, 2], sweet=[0, 0])
    with pytest.raises(InputValueError, match="layer index of its backbone"):
        compare_backbones([small, large], ["A", "B"], size=[1, 2], sweet=[1, 0])
    other = ProbeOutcomes(d["correct_pre"][1:], d["correct_rand"][1:], np.roll(d["labels"], 1))
    with pytest.raises(InputValueError, match="same images"):
        compare_backbones([small, other], ["A", "B"], size=[1, 2], sweet=[0, 0])
    fewer = ProbeOutcomes(d["correct_pre"][1:], d["correct_rand"][1:, :2], d["labels"])
    with pytest.raises(InputValueError, match="must share images, random seeds"):
        compare_backbones([small, fewer], ["A", "B"], size=[1, 2], sweet=[0, 0])


def _mu(acc: float, extra_var: float = 0.0) -> float:
    """Probit mean of a simulated network of population accuracy ``acc`` (see simulate's docstring)."""
    return float(ndtri(acc) * np.sqrt(2 + extra_var))


def _rate(scenario: str, runs: int, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        if scenario == "power":
            mu = [_mu(0.6), _mu(0.75), _mu(0.7), _mu(0.8), _mu(0.72)]
            d = simulate(rng, n_images=500, n_layers=5, n_seeds=5, mu_pre=mu, seed_sd=0.1)
            pretrained = "fixed"
        else:
            slides = scenario.startswith("size_slides")
            g = 0.5 if slides else 0.0
            mu = [_mu(0.7, g**2), _mu(0.85, g**2), _mu(0.8, g**2),  # smaller: sweet spot at layer 1
                  _mu(0.75, g**2), _mu(0.85, g**2), _mu(0.85, g**2), _mu(0.8, g**2), _mu(0.6, g**2)]
            d = simulate(rng, n_images=200, n_layers=8, n_seeds=5 if slides else 2, mu_pre=mu, mu_rand=0.3,
                         seed_sd=0.2, n_groups=10 if slides else None, group_sd=g, sticky=0.6)
            pretrained = "fixed" if slides else "draw"
        small, large = _split(d, 2 if scenario == "power" else 3)
        r = compare_backbones([small, large], ["S", "L"], size=[1, 2], sweet=[1, -1], pretrained=pretrained,
                              n_draws=N_DRAWS, seed=rng.integers(2**32))
        hits += bool(r.p_any[0] < 0.05)
    return hits / runs, runs


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["size_slides_fixed", "size_images_draw_s2"])
def test_size_of_the_best_against_sweet_spot_test(scenario):
    rate, runs = _rate(scenario, 500, seed=21)
    se = mc_se(0.05, runs)
    print(f"\n{scenario}: nominal 0.05, measured size {rate:.3f} (MC SE {mc_se(rate, runs):.3f}, {runs} runs)")
    assert rate <= 0.05 + 2 * se + 1e-9


@pytest.mark.slow
def test_power_of_the_best_against_sweet_spot_test():
    rate, runs = _rate("power", 200, seed=22)
    print(f"\npower: nominal 0.05, measured power {rate:.3f} (MC SE {mc_se(rate, runs):.3f}, {runs} runs)")
    assert rate >= 0.7
