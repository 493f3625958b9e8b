"""A generative model of probe outcomes with a known true gain, for calibration tests.

Image i has an ease e_i ~ N(0, 1) (and, with groups, a group effect u_g ~ N(0, group_sd^2) shared
by both networks and a group-level pretraining advantage delta_g ~ N(0, gain_sd^2)). Its
probability of being right is Phi(mu_pre + e_i + u_g + delta_g) for the pretrained network and
Phi(mu_rand + b_s + e_i + u_g) for random seed s, with b_s ~ N(0, seed_sd^2). Repeats are
Bernoulli draws; with probability ``sticky`` a repeat copies repeat 0 (real CV repeats of one image
are highly correlated). Since E[Phi(m + sigma Z)] = Phi(m / sqrt(1 + sigma^2)), the population
accuracies, and the true gain, are

    acc_pre = Phi(mu_pre / sqrt(2 + group_sd^2 + gain_sd^2)),
    acc_rand = Phi(mu_rand / sqrt(2 + group_sd^2 + seed_sd^2)).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def _bernoulli(rng: np.random.Generator, prob: np.ndarray, n_repeats: int, sticky: float) -> np.ndarray:
    shape = prob.shape[:-1] + (n_repeats, prob.shape[-1])
    out = rng.random(shape) < prob[..., None, :]
    copy = rng.random(shape) < sticky
    return np.where(copy, out[..., :1, :], out)


def true_accuracies(mu_pre, mu_rand, *, seed_sd=0.0, group_sd=0.0, gain_sd=0.0):
    """Population accuracies (pretrained, random) of the model."""
    acc_pre = ndtr(np.asarray(mu_pre, float) / np.sqrt(2 + group_sd**2 + gain_sd**2))
    acc_rand = ndtr(np.asarray(mu_rand, float) / np.sqrt(2 + group_sd**2 + seed_sd**2))
    return acc_pre, acc_rand


def simulate(
    rng: np.random.Generator,
    *,
    n_images: int = 200,
    n_classes: int = 2,
    n_layers: int = 1,
    n_seeds: int = 5,
    n_repeats: int = 2,
    n_folds: int = 5,
    mu_pre=0.8,
    mu_rand=0.3,
    seed_sd: float = 0.0,
    n_groups: int | None = None,
    group_sd: float = 0.0,
    gain_sd: float = 0.0,
    sticky: float = 0.0,
) -> dict:
    """Simulated outcomes in the probes stage's contract, with ``true_gain`` (n_layers,)."""
    labels = np.arange(n_images) % n_classes
    if n_groups is None:
        groups = None
        u = delta = np.zeros(n_images)
    else:
        groups = rng.integers(0, n_groups, n_images)
        u = rng.normal(0, group_sd, n_groups)[groups]
        delta = rng.normal(0, gain_sd, n_groups)[groups]
    e = rng.normal(size=n_images)
    mu_pre = np.broadcast_to(np.asarray(mu_pre, float), (n_layers,))
    mu_rand = np.broadcast_to(np.asarray(mu_rand, float), (n_layers,))
    p_pre = ndtr(mu_pre[:, None] + e + u + delta)
    b = rng.normal(0, seed_sd, (n_layers, n_seeds))
    p_rand = ndtr(mu_rand[:, None, None] + b[:, :, None] + e + u)
    folds = np.stack([rng.permutation(np.arange(n_images) % n_folds) for _ in range(n_repeats)])
    acc_pre, acc_rand = true_accuracies(mu_pre, mu_rand, seed_sd=seed_sd, group_sd=group_sd, gain_sd=gain_sd)
    return {
        "correct_pre": _bernoulli(rng, p_pre, n_repeats, sticky),
        "correct_rand": _bernoulli(rng, p_rand, n_repeats, sticky),
        "labels": labels,
        "groups": groups,
        "folds": folds,
        "true_gain": acc_pre - acc_rand,
        "true_relative_gain": (acc_pre - acc_rand) / (1 - acc_rand),
    }


def binomial_tolerance(rate: float, n: int, k: float = 4.0) -> float:
    """k binomial standard deviations of an observed rate over n simulations (k = 4: a false
    alarm about once in 16 000 runs, so the test passes for any seed in practice)."""
    return k * np.sqrt(rate * (1 - rate) / n)
