"""Paired comparison of configurations on the same images (issue 15): exactness and calibration.

Calibration scenarios (simulated by :func:`tests.stats.simulate.simulate`: probit model with image
difficulty shared by every network, a slide effect, a network effect per random seed and layer):

- ``shared``: a comparison of two random baselines. One pretrained network, 2S random networks
  from one distribution split into configuration A (the first S) and B (the others): the two
  configurations' gains are equal (H0 true). 10 unequal slides, 200 images.
- ``unshared``: a comparison of two readouts. Two "layers" of one simulation with the same means
  (two readouts of equal quality on the same images and seeds): H0 true, pretrained not shared,
  target ``fixed`` (the simulated pretrained network has no network effect).
- ``power``: ``shared`` with configuration B's random networks planted 0.05 less accurate
  (N = 500, S = 5, no slides, a network effect of SD 0.05 on the probit scale: about 0.014 in
  accuracy between networks). With S = 5 the seeds' spread is on 4 degrees of freedom (pairing
  by seed index; independent baselines would allow 8), which bounds the power.

Each prints scenario, nominal level, measured rate and Monte-Carlo SE (``pytest -s``) and
asserts the size <= 0.05 + 2 MC SE (computed at 0.05) and the power above a floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import gain_statistics
from layergain.stats.compare import ProbeOutcomes
from layergain.stats.configurations import compare_configurations

from .simulate import mc_se, simulate

N_DRAWS = 2000


def _split(d, s: int, shared: bool = True):
    """Configurations A and B of one simulation: the pretrained network shared (baselines) or
    layers 0 and 1 as two readouts."""
    if shared:
        a = ProbeOutcomes(d["correct_pre"], d["correct_rand"][:, :s], d["labels"], d["groups"])
        b = ProbeOutcomes(d["correct_pre"], d["correct_rand"][:, s:], d["labels"], d["groups"])
    else:
        a = ProbeOutcomes(d["correct_pre"][:1], d["correct_rand"][:1], d["labels"], d["groups"])
        b = ProbeOutcomes(d["correct_pre"][1:], d["correct_rand"][1:], d["labels"], d["groups"])
    return a, b


def test_differences_are_the_gains_of_each_configuration_and_the_shared_pretrained_term_cancels():
    rng = np.random.default_rng(3)
    d = simulate(rng, n_images=120, n_layers=3, n_seeds=6, seed_sd=0.2, n_groups=8, group_sd=0.4)
    a, b = _split(d, 3)
    r = compare_configurations([a, b], ["A", "B"], n_draws=N_DRAWS, seed=0)
    ga = gain_statistics(a.correct_pre, a.correct_rand, d["labels"], groups=d["groups"], n_draws=2000, seed=0)
    gb = gain_statistics(b.correct_pre, b.correct_rand, d["labels"], groups=d["groups"], n_draws=2000, seed=0)
    np.testing.assert_allclose(r.gain, np.stack([ga["gain"].values, gb["gain"].values]), atol=1e-12)
    np.testing.assert_allclose(r.difference[0], ga["gain"].values - gb["gain"].values, atol=1e-12)
    assert r.shared_pretrained.tolist() == [True]
    # the interval and the test agree exactly; the family-wise p is never below the pointwise one
    outside = (r.difference_ci[..., 0] > 0) | (r.difference_ci[..., 1] < 0)
    np.testing.assert_array_equal(outside, r.difference_p < 0.05)
    ok = np.isfinite(r.difference_p)
    assert np.all(r.difference_p_maxt[ok] >= r.difference_p[ok] - 1e-12)
    assert all(r.reason[~ok]) and not any(r.reason[ok])  # a NaN cell says why
    # shared pretrained: no pretrained spread at all, so target "draw" and "fixed" agree
    fixed = compare_configurations([a, b], ["A", "B"], pretrained="fixed", n_draws=N_DRAWS, seed=0)
    np.testing.assert_allclose(fixed.difference_se, r.difference_se)


def test_the_pairing_takes_the_shared_image_noise_off_the_difference():
    rng = np.random.default_rng(4)
    d = simulate(rng, n_images=300, n_layers=1, n_seeds=10, seed_sd=0.05)
    a, b = _split(d, 5)
    r = compare_configurations([a, b], ["A", "B"], n_draws=N_DRAWS, seed=1)
    ga = gain_statistics(a.correct_pre, a.correct_rand, d["labels"], n_draws=2000, seed=0)
    gb = gain_statistics(b.correct_pre, b.correct_rand, d["labels"], n_draws=2000, seed=0)
    unpaired = float(ga["gain_var_images"][0] + gb["gain_var_images"][0])  # as if two independent image sets
    # the same images (and the same pretrained network) under both: their part nearly cancels
    assert r.difference_var_images[0, 0] < 0.25 * unpaired


def test_errors():
    rng = np.random.default_rng(5)
    d = simulate(rng, n_images=60, n_layers=2, n_seeds=4)
    a, b = _split(d, 2)
    with pytest.raises(NotEnoughDataError, match="at least 2"):
        compare_configurations([a], ["A"])
    with pytest.raises(InputValueError, match="name each configuration once"):
        compare_configurations([a, b], ["A", "A"])
    other = ProbeOutcomes(d["correct_pre"], d["correct_rand"][:, :2], np.roll(d["labels"], 1))
    with pytest.raises(InputValueError, match="same images"):
        compare_configurations([a, other], ["A", "B"])
    fewer = ProbeOutcomes(d["correct_pre"][:1], d["correct_rand"][:1, :2], d["labels"])
    with pytest.raises(InputValueError, match="must share images, layers"):
        compare_configurations([a, fewer], ["A", "B"])


def test_one_seed_is_nan_with_a_reason():
    rng = np.random.default_rng(6)
    d = simulate(rng, n_images=80, n_seeds=2)
    a, b = _split(d, 1)
    r = compare_configurations([a, b], ["A", "B"], n_draws=N_DRAWS, seed=0)
    assert np.isnan(r.difference_p).all() and "1 random seed" in r.reason[0, 0]


def _rate(scenario: str, runs: int, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        if scenario == "power":
            n_seeds, kw = 5, dict(n_images=500, n_layers=2, mu_pre=0.8, seed_sd=0.05)
            # layer 1's random accuracy 0.05 below layer 0's: B's random networks are layer 1's
            acc0 = 0.60
            kw["mu_rand"] = np.array([ndtri(acc0), ndtri(acc0 - 0.05)]) * np.sqrt(2 + 0.05**2)
            d = simulate(rng, n_seeds=2 * n_seeds, **kw)
            a = ProbeOutcomes(d["correct_pre"][:1], d["correct_rand"][:1, :n_seeds], d["labels"])
            b = ProbeOutcomes(d["correct_pre"][:1], d["correct_rand"][1:, n_seeds:], d["labels"])
            pretrained = "draw"
        else:
            s = 2 if scenario.endswith("s2") else 5
            shared = scenario.startswith("shared")
            d = simulate(rng, n_images=200, n_layers=1 if shared else 2, n_seeds=2 * s if shared else s,
                         mu_pre=1.0, mu_rand=0.4, seed_sd=0.25, n_groups=10, group_sd=0.5, sticky=0.6)
            a, b = _split(d, s, shared)
            pretrained = "draw" if shared else "fixed"
        r = compare_configurations([a, b], ["A", "B"], pretrained=pretrained, n_draws=N_DRAWS,
                                   seed=rng.integers(2**32))
        hits += bool(r.difference_p[0, 0] < 0.05)
    return hits / runs, runs


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["shared_s2", "shared_s5", "unshared_s5"])
def test_size_of_the_paired_configuration_test(scenario):
    rate, runs = _rate(scenario, 600, seed=11)
    se = mc_se(0.05, runs)
    print(f"\n{scenario}: nominal 0.05, measured size {rate:.3f} (MC SE {mc_se(rate, runs):.3f}, {runs} runs)")
    assert rate <= 0.05 + 2 * se + 1e-9


@pytest.mark.slow
def test_power_of_the_paired_configuration_test_under_a_planted_difference():
    rate, runs = _rate("power", 200, seed=12)
    print(f"\npower (N 500, S 5, random accuracy 0.05 lower in B): measured {rate:.3f} "
          f"(MC SE {mc_se(rate, runs):.3f}, {runs} runs)")
    assert rate >= 0.80  # measured 0.890 at seed 12
