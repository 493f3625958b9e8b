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

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri


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


# --------------------------------------------------------------------------- a study's generator
#
# simulate_study: the model above, extended to what pathology studies have (issue 12): unequal
# slide sizes, several layers whose outcomes are correlated, the random networks' own effect per
# layer, a pretrained network that is itself one draw of a distribution of networks, and many
# simulated studies at once.


def latent_sd(*, image_sd: float = 1.0, group_sd: float = 0.0, gain_sd: float = 0.0, seed_sd: float = 0.0):
    """SD of the probit latent of one prediction: sqrt(1 + image_sd^2 + group_sd^2 + gain_sd^2 + seed_sd^2).

    The 1 is the prediction's own noise (the probit's N(0, 1)); pass ``gain_sd`` for the
    pretrained network only, and ``seed_sd`` for a random network, or for the pretrained one
    where it is drawn.
    """
    return float(np.sqrt(1.0 + image_sd**2 + group_sd**2 + gain_sd**2 + seed_sd**2))


def study_means(
    accuracy_pre,
    accuracy_rand,
    *,
    image_sd: float = 1.0,
    group_sd: float = 0.0,
    gain_sd: float = 0.0,
    seed_sd: float = 0.0,
    pretrained_drawn: bool = False,
    pretrained_seed_sd=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Probit means (mu_pre, mu_rand) that give these population accuracies in simulate_study.

    ``pretrained_seed_sd`` (default ``seed_sd``; float or per layer) is the SD of the pretrained
    network's effect where it is drawn.
    """
    common = {"image_sd": image_sd, "group_sd": group_sd}
    sd_b = np.asarray(seed_sd if pretrained_seed_sd is None else pretrained_seed_sd, float) if pretrained_drawn else 0.0
    sd_pre = np.sqrt(latent_sd(**common, gain_sd=gain_sd) ** 2 + sd_b**2)
    sd_rand = latent_sd(**common, seed_sd=seed_sd)
    return ndtri(np.asarray(accuracy_pre, float)) * sd_pre, ndtri(np.asarray(accuracy_rand, float)) * sd_rand


def network_accuracy_sd(mu, seed_sd, *, image_sd: float = 1.0, group_sd: float = 0.0, gain_sd: float = 0.0):
    """SD over networks of a network's population accuracy Phi((mu + b) / sqrt(1 + image_sd^2 + group_sd^2 + gain_sd^2)).

    b ~ N(0, seed_sd^2); Gauss-Hermite quadrature with 80 nodes (exact to ~1e-12 here); ``mu``
    and ``seed_sd`` broadcast (float in, float out). Pass ``gain_sd`` for the pretrained network.
    This is the "seed SD of accuracy" of an infinite image set; a finite set adds its own noise.
    """
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    mu, sd = np.broadcast_arrays(np.asarray(mu, float), np.asarray(seed_sd, float))
    acc = ndtr((mu[..., None] + sd[..., None] * x) / latent_sd(image_sd=image_sd, group_sd=group_sd, gain_sd=gain_sd))
    mean = np.sum(w * acc, axis=-1, keepdims=True)
    out = np.sqrt(np.maximum(np.sum(w * (acc - mean) ** 2, axis=-1), 0.0))
    return float(out) if out.ndim == 0 else out


def seed_sd_for(
    accuracy_sd: float, accuracy: float, *, image_sd: float = 1.0, group_sd: float = 0.0, gain_sd: float = 0.0
) -> float:
    """The network-effect SD at which networks of population accuracy ``accuracy`` have
    network-to-network accuracy SD ``accuracy_sd`` (see network_accuracy_sd; ``gain_sd`` for the
    pretrained network)."""
    if accuracy_sd == 0:
        return 0.0
    common = {"image_sd": image_sd, "group_sd": group_sd, "gain_sd": gain_sd}

    def excess(sd):
        mu = ndtri(accuracy) * latent_sd(**common, seed_sd=sd)
        return network_accuracy_sd(mu, sd, **common) - accuracy_sd

    return float(brentq(excess, 1e-9, 20.0, xtol=1e-12))


def matched_pretrained_sd(mu_pre, mu_rand, seed_sd: float, *, image_sd=1.0, group_sd=0.0, gain_sd=0.0) -> np.ndarray:
    """Per layer, the SD of the pretrained network's effect at which its accuracy varies over
    draws as much as a random network's at the same layer (network_accuracy_sd equal).

    That is gain_statistics' ``pretrained="draw"`` assumption: the pretrained network is one
    draw whose network-to-network spread (of accuracy) is that of its random twins. The same
    latent SD would not do: a network at another accuracy, or with the slide contrast's extra
    latent variance, spreads less or more in accuracy for the same latent spread.
    """
    mu_pre, mu_rand = np.broadcast_arrays(np.atleast_1d(np.asarray(mu_pre, float)), np.asarray(mu_rand, float))
    target = network_accuracy_sd(mu_rand, seed_sd, image_sd=image_sd, group_sd=group_sd)
    out = np.zeros(mu_pre.shape)
    common = {"image_sd": image_sd, "group_sd": group_sd, "gain_sd": gain_sd}
    for layer, (mu, spread) in enumerate(zip(mu_pre, target)):
        if spread > 0:
            out[layer] = brentq(lambda sd, mu=mu, t=spread: network_accuracy_sd(mu, sd, **common) - t, 1e-9, 50.0, xtol=1e-12)
    return out


def group_counts(n_images: int, n_groups: int, group_sizes="unequal", *, ratio: float = 0.75) -> np.ndarray:
    """Images per group: "equal" (sizes differ by at most 1), "unequal" (geometric proportions
    ratio^k, largest first, at least 2 images each: 10 groups of 500 images with ratio 0.75 give
    125 ... 10), or an explicit sequence of counts."""
    if not isinstance(group_sizes, str):
        counts = np.asarray(group_sizes, dtype=np.int64)
        if counts.shape != (n_groups,) or counts.sum() != n_images or counts.min() < 1:
            raise ValueError(f"group_sizes must be {n_groups} positive counts summing to {n_images}")
        return counts
    if n_images < 2 * n_groups:
        raise ValueError(f"{n_images} images cannot make {n_groups} groups of at least 2")
    if group_sizes == "equal":
        return np.full(n_groups, n_images // n_groups) + (np.arange(n_groups) < n_images % n_groups)
    if group_sizes != "unequal":
        raise ValueError(f"group_sizes must be 'equal', 'unequal' or counts, got {group_sizes!r}")
    share = ratio ** np.arange(n_groups)
    extra = (n_images - 2 * n_groups) * share / share.sum()
    counts = 2 + np.floor(extra).astype(np.int64)
    rest = n_images - counts.sum()  # largest remainders first
    counts[np.argsort(-(extra - np.floor(extra)), kind="stable")[:rest]] += 1
    return counts


def _correlated(rng: np.random.Generator, shape: tuple, correlations: dict[int, float]) -> np.ndarray:
    """Standard normals with equicorrelation ``rho`` along each axis of ``{axis: rho}``.

    Recursively z = sqrt(rho) * c + sqrt(1 - rho) * w along the first axis, with c (size 1 along
    it) and w independent and each correlated along the remaining axes: unit variances, and
    between two cells the product of the rho of every axis along which they differ (a Kronecker
    product of equicorrelation matrices).
    """
    items = [(a, r) for a, r in correlations.items() if r > 0 and shape[a] > 1]
    if not items:
        return rng.standard_normal(shape)
    (axis, rho), rest = items[0], dict(items[1:])
    common_shape = tuple(1 if a == axis else n for a, n in enumerate(shape))
    return np.sqrt(rho) * _correlated(rng, common_shape, rest) + np.sqrt(1.0 - rho) * _correlated(rng, shape, rest)


def draw_networks(
    rng: np.random.Generator,
    *,
    n_seeds: int,
    n_layers: int = 1,
    seed_sd: float = 0.0,
    layer_correlation: float = 0.0,
    pretrained_drawn: bool = False,
    pretrained_seed_sd=None,
    n_runs: int | None = None,
) -> dict:
    """Network effects: ``rand`` (*runs, n_layers, n_seeds) ~ N(0, seed_sd^2), correlated across
    layers; ``pre`` (*runs, n_layers) ~ N(0, pretrained_seed_sd^2) per layer (default
    ``seed_sd``; see matched_pretrained_sd) where ``pretrained_drawn``, else 0.

    Pass the result to several simulate_study calls to have "seed s is the same network in every
    image set".
    """
    lead = () if n_runs is None else (n_runs,)
    along_layers = {len(lead): layer_correlation}
    sd_pre = np.broadcast_to(np.asarray(seed_sd if pretrained_seed_sd is None else pretrained_seed_sd, float), (n_layers,))
    sd_pre = sd_pre if pretrained_drawn else np.zeros(n_layers)
    rand = seed_sd * _correlated(rng, (*lead, n_layers, n_seeds), along_layers)
    pre = sd_pre * _correlated(rng, (*lead, n_layers), along_layers)
    return {"rand": rand, "pre": pre, "pretrained_drawn": pretrained_drawn, "seed_sd": seed_sd, "pretrained_seed_sd": sd_pre}


def simulate_study(
    rng: np.random.Generator,
    *,
    n_images: int,
    n_seeds: int,
    mu_pre,
    mu_rand,
    n_layers: int = 1,
    n_groups: int | None = None,
    group_sizes="unequal",
    group_ratio: float = 0.75,
    n_classes: int = 2,
    n_repeats: int = 1,
    n_folds: int = 5,
    image_sd: float = 1.0,
    group_sd: float = 0.0,
    gain_sd: float = 0.0,
    seed_sd: float = 0.0,
    pretrained_drawn: bool = False,
    pretrained_seed_sd=None,
    layer_correlation: float = 0.0,
    repeat_correlation: float = 0.8,
    networks: dict | None = None,
    n_runs: int | None = None,
) -> dict:
    r"""Simulated probe outcomes of one study (or ``n_runs`` independent studies) with the true gain.

    Model (probit, all effects independent normals with mean 0): image i of group g is predicted
    correctly by network n at layer l in repeat r when

    .. math::

        \mu_{n,l} + b_{n,l} + e_i + u_g + [n = pre]\,\delta_{g,l} + \varepsilon_{n,l,r,i} > 0,

    with image ease :math:`e_i \sim N(0, \text{image\_sd}^2)` shared by all networks and layers;
    group (slide) effect :math:`u_g \sim N(0, \text{group\_sd}^2)`; slide-level pretrained-vs-random
    contrast :math:`\delta_{g,l} \sim N(0, \text{gain\_sd}^2)` (the gain varies by slide);
    network effect :math:`b_{s,l} \sim N(0, \text{seed\_sd}^2)` for random seed s, and for the
    pretrained network, where ``pretrained_drawn`` (else 0), :math:`N(0, \tau_l^2)` with
    :math:`\tau_l` = ``pretrained_seed_sd`` (default: :func:`matched_pretrained_sd`, at which its
    accuracy spreads over draws as a random network's at that layer does); the prediction's
    own noise :math:`\varepsilon \sim N(0, 1)`, independent between networks and images. Effects
    with a layer index have correlation ``layer_correlation`` between layers; ε has
    ``repeat_correlation`` between CV repeats (repeats of one image are highly correlated).
    Without groups every image is its own group (u and δ act per image).

    The true gain is the expectation over images, groups and networks (the pretrained network's
    effect included where it is drawn): since :math:`E[\Phi(m + \sigma Z)] = \Phi(m/\sqrt{1+\sigma^2})`,

    .. math::

        g_l = \Phi\bigl(\mu_{pre,l} / \sqrt{1 + \text{image\_sd}^2 + \text{group\_sd}^2
              + \text{gain\_sd}^2 + [\text{drawn}]\,\tau_l^2}\bigr)
            - \Phi\bigl(\mu_{rand,l} / \sqrt{1 + \text{image\_sd}^2 + \text{group\_sd}^2
              + \text{seed\_sd}^2}\bigr).

    Use :func:`study_means` to set mu from accuracies and :func:`seed_sd_for` to set seed_sd from a
    network-to-network accuracy SD.

    Parameters
    ----------
    mu_pre, mu_rand : float or array-like of shape (n_layers,)
    n_groups : int or None
        None: images are independent units (``groups`` is None).
    group_sizes : "unequal", "equal" or sequence of int, default="unequal"
        See :func:`group_counts` (``group_ratio`` is its ratio).
    networks : dict or None
        Network effects from :func:`draw_networks` (to share random seeds between image sets);
        None draws them here from ``seed_sd``, ``layer_correlation`` and ``pretrained_drawn``;
        given, their own ``seed_sd``, ``pretrained_drawn`` and ``pretrained_seed_sd`` apply (these
        arguments are then ignored).
    n_runs : int or None
        None: one study; an int: that many independent studies at once, every array with a
        leading run axis (labels and groups are the same in every run).

    Returns
    -------
    dict
        ``correct_pre`` bool (*runs, n_layers, n_repeats, n_images); ``correct_rand`` bool
        (*runs, n_layers, n_seeds, n_repeats, n_images); ``labels`` (n_images,); ``groups``
        (n_images,) or None; ``folds`` (*runs, n_repeats, n_images), group-respecting with
        groups; ``true_gain``, ``true_accuracy_pretrained``, ``true_accuracy_random`` (n_layers,);
        ``networks`` (the effects used).
    """
    lead = () if n_runs is None else (n_runs,)
    k = len(lead)
    mu_pre = np.broadcast_to(np.asarray(mu_pre, float), (n_layers,))
    mu_rand = np.broadcast_to(np.asarray(mu_rand, float), (n_layers,))
    common = {"image_sd": image_sd, "group_sd": group_sd}
    if networks is None:
        if pretrained_drawn and pretrained_seed_sd is None:
            pretrained_seed_sd = matched_pretrained_sd(mu_pre, mu_rand, seed_sd, **common, gain_sd=gain_sd)
        networks = draw_networks(
            rng, n_seeds=n_seeds, n_layers=n_layers, seed_sd=seed_sd, layer_correlation=layer_correlation,
            pretrained_drawn=pretrained_drawn, pretrained_seed_sd=pretrained_seed_sd, n_runs=n_runs,
        )
    if networks["rand"].shape != (*lead, n_layers, n_seeds):
        raise ValueError(f"networks['rand'] has shape {networks['rand'].shape}, expected {(*lead, n_layers, n_seeds)}")
    seed_sd, sd_pre = networks["seed_sd"], networks["pretrained_seed_sd"]

    labels = np.arange(n_images) % n_classes
    if n_groups is None:
        groups, unit, n_units = None, np.arange(n_images), n_images
        folds = rng.permuted(np.broadcast_to(np.arange(n_images) % n_folds, (*lead, n_repeats, n_images)), axis=-1)
    else:
        counts = group_counts(n_images, n_groups, group_sizes, ratio=group_ratio)
        groups = unit = np.repeat(np.arange(n_groups), counts)
        n_units = n_groups
        n_folds_g = min(n_folds, n_groups)
        fold_of_group = rng.permuted(
            np.broadcast_to(np.arange(n_groups) % n_folds_g, (*lead, n_repeats, n_groups)), axis=-1
        )
        folds = fold_of_group[..., groups]

    e = image_sd * rng.standard_normal((*lead, 1, 1, n_images))
    u = group_sd * rng.standard_normal((*lead, 1, 1, n_units))[..., unit]
    delta = gain_sd * _correlated(rng, (*lead, n_layers, 1, n_units), {k: layer_correlation})[..., unit]
    base = e + u  # (*runs, 1, 1, N)
    eps_pre = _correlated(rng, (*lead, n_layers, n_repeats, n_images), {k: layer_correlation, k + 1: repeat_correlation})
    latent_pre = (mu_pre[:, None, None] + networks["pre"][..., None, None]) + base + delta + eps_pre
    eps_rand = _correlated(
        rng, (*lead, n_layers, n_seeds, n_repeats, n_images), {k: layer_correlation, k + 2: repeat_correlation}
    )
    latent_rand = (mu_rand[:, None, None, None] + networks["rand"][..., None, None]) + base[..., None, :, :, :] + eps_rand

    acc_pre = ndtr(mu_pre / np.sqrt(latent_sd(**common, gain_sd=gain_sd) ** 2 + sd_pre**2))
    acc_rand = ndtr(mu_rand / latent_sd(**common, seed_sd=seed_sd))
    return {
        "correct_pre": latent_pre > 0,
        "correct_rand": latent_rand > 0,
        "labels": labels,
        "groups": groups,
        "folds": folds,
        "true_gain": acc_pre - acc_rand,
        "true_accuracy_pretrained": acc_pre,
        "true_accuracy_random": acc_rand,
        "networks": networks,
    }


def run_of(study: dict, r: int) -> dict:
    """Run r of a simulate_study(..., n_runs=...) result, as a one-study result."""
    out = dict(study)
    for key in ("correct_pre", "correct_rand", "folds"):
        out[key] = study[key][r]
    out["networks"] = {**study["networks"], "rand": study["networks"]["rand"][r], "pre": study["networks"]["pre"][r]}
    return out


# --------------------------------------------------------------------------- calibration scenarios
#
# The studies of issue 12's "What it must show", shared by tests/stats/test_calibration.py and
# bench/calibration.py (which runs them with more runs). Each scenario is a study (simulate_study
# arguments built from accuracies), the analysis (gain_statistics arguments) and what is counted.


def study_kwargs(
    accuracy_pre,
    accuracy_rand,
    *,
    network_sd: float = 0.0,
    image_sd: float = 1.0,
    group_sd: float = 0.0,
    gain_sd: float = 0.0,
    pretrained_drawn: bool = True,
    **rest,
) -> dict:
    """simulate_study arguments for population accuracies and a network-to-network accuracy SD
    ``network_sd`` of the random networks (at their median accuracy; see seed_sd_for).

    A drawn pretrained network gets, per layer, the effect SD at which its accuracy spreads as
    much as a random network's at that layer (gain_statistics' ``pretrained="draw"``), and the
    mu that then gives ``accuracy_pre`` in expectation over its draws.
    """
    common = {"image_sd": image_sd, "group_sd": group_sd}
    seed_sd = seed_sd_for(network_sd, float(np.median(accuracy_rand)), **common)
    acc_pre, acc_rand = np.broadcast_arrays(np.atleast_1d(np.asarray(accuracy_pre, float)), accuracy_rand)
    mu_rand = ndtri(acc_rand) * latent_sd(**common, seed_sd=seed_sd)
    spread = network_accuracy_sd(mu_rand, seed_sd, **common)
    sd_pre = np.array([seed_sd_for(t, a, **common, gain_sd=gain_sd) for t, a in zip(spread, acc_pre)])
    sd_pre = sd_pre if pretrained_drawn else np.zeros_like(sd_pre)
    mu_pre, _ = study_means(acc_pre, acc_rand, **common, gain_sd=gain_sd, seed_sd=seed_sd, pretrained_drawn=True,
                            pretrained_seed_sd=sd_pre)
    return {
        "mu_pre": mu_pre, "mu_rand": mu_rand, **common, "gain_sd": gain_sd, "seed_sd": seed_sd,
        "pretrained_drawn": pretrained_drawn, "pretrained_seed_sd": sd_pre, **rest,
    }


@dataclass(frozen=True)
class Scenario:
    """One calibration scenario.

    ``measure``: what a run counts — "coverage" (``gain_ci`` covers the true gain), "size" or
    "power" (``gain_p`` <= alpha), "fwer" (any ``gain_p_maxt`` <= alpha), "band" (``gain_band``
    covers every layer's true gain), "interaction" (``interaction_test(...).pvalue`` <= alpha),
    "sweet_spot_layer" (``sweet_spot`` is ``layer``). ``study``: simulate_study arguments;
    ``second_set``: for "interaction", the second set's arguments that differ (the networks are
    shared); ``analysis``: extra gain_statistics arguments.
    """

    name: str
    measure: str
    nominal: float
    description: str
    study: dict
    analysis: dict = field(default_factory=dict)
    second_set: dict = field(default_factory=dict)
    layer: str = "0"
    runs_of: str = ""  # count on the runs of that scenario (same study, same streams)
    target: str = ""  # issue 12's requirement, as the bench table quotes it

    @property
    def stream(self) -> str:
        """Name of the scenario whose simulated runs this one counts."""
        return self.runs_of or self.name


def _scenarios() -> dict[str, Scenario]:
    cov = {"n_images": 500, "n_seeds": 5, "n_repeats": 2, "network_sd": 0.01, "gain_sd": 0.5}
    grouped10 = {**cov, "n_groups": 10, "group_ratio": 0.75, "group_sd": 1.0, "gain_sd": 0.6}
    depth = np.linspace(0.60, 0.90, 18)
    sweet8 = {
        "n_images": 240, "n_classes": 8, "n_groups": 8, "group_ratio": 0.8, "n_seeds": 5, "n_layers": 18,
        "n_repeats": 2, "layer_correlation": 0.8, "group_sd": 0.8, "gain_sd": 0.3, "network_sd": 0.01,
        "pretrained_drawn": False,
    }
    drop = {
        "n_images": 500, "n_seeds": 5, "n_layers": 3, "n_repeats": 2, "layer_correlation": 0.8, "gain_sd": 0.3,
        "network_sd": 0.01, "pretrained_drawn": False,
    }
    found = [
        Scenario(
            "coverage_ungrouped", "coverage", 0.95,
            "CI coverage, N = 500 independent images, S = 5, accuracy 0.85 vs 0.78, seed SD of accuracy 0.01",
            study_kwargs(0.85, 0.78, **cov),
        ),
        Scenario(
            "coverage_40_groups", "coverage", 0.95,
            "CI coverage, N = 500 in 40 unequal groups (107 ... 2 images), group_sd 1, gain_sd 0.5, S = 5",
            study_kwargs(0.85, 0.78, **{**cov, "n_groups": 40, "group_ratio": 0.93, "group_sd": 1.0}),
        ),
        Scenario(
            "coverage_10_groups", "coverage", 0.95,
            "CI coverage, N = 500 in 10 unequal groups (129 ... 12 images), group_sd 1, gain_sd 0.6, S = 5",
            study_kwargs(0.85, 0.78, **grouped10),
        ),
        Scenario(
            "size_10_groups", "size", 0.05,
            "size, true gain 0 (slide gains vary, gain_sd 0.6), N = 500 in 10 unequal groups, S = 5",
            study_kwargs(0.78, 0.78, **grouped10),
        ),
        Scenario(
            "size_n60_accuracy95", "size", 0.05,
            "size, true gain 0, N = 60 independent images at accuracy 0.95, S = 5, gain_sd 0.5, no seed effect",
            study_kwargs(0.95, 0.95, n_images=60, n_seeds=5, n_repeats=2, gain_sd=0.5),
        ),
        Scenario(
            "size_drawn_s5", "size", 0.05,
            "size, pretrained = one more random draw (seed SD of accuracy 0.045), N = 300, accuracy 0.85, S = 5",
            study_kwargs(0.85, 0.85, n_images=300, n_seeds=5, n_repeats=2, network_sd=0.045),
        ),
        Scenario(
            "size_drawn_s2", "size", 0.05,
            "size, pretrained = one more random draw (seed SD of accuracy 0.045), N = 300, accuracy 0.85, S = 2",
            study_kwargs(0.85, 0.85, n_images=300, n_seeds=2, n_repeats=2, network_sd=0.045),
        ),
        Scenario(
            "power_gain05", "power", 0.60,
            "power, true gain 0.05 (0.85 vs 0.80), N = 500 independent images, S = 5, seed SD of accuracy 0.01",
            study_kwargs(0.85, 0.80, **cov),
        ),
        Scenario(
            "fwer_18_layers", "fwer", 0.05,
            "family-wise error of gain_p_maxt, 18 layers (correlation 0.9), all gains 0, accuracy 0.60 ... 0.90, "
            "N = 300 in 20 unequal groups, S = 5, seed SD of accuracy 0.02",
            study_kwargs(
                depth, depth, n_images=300, n_groups=20, group_ratio=0.9, n_seeds=5, n_layers=18, n_repeats=2,
                layer_correlation=0.9, group_sd=0.8, gain_sd=0.4, network_sd=0.02,
            ),
        ),
        Scenario(
            "interaction_10_groups", "interaction", 0.05,
            "interaction size, 2 sets (N = 300 and 200, 10 unequal groups each), the same true gain 0.07, "
            "shared seeds, S = 5, seed SD of accuracy 0.02",
            study_kwargs(
                0.85, 0.78, n_images=300, n_groups=10, group_ratio=0.8, n_seeds=5, n_repeats=2, group_sd=0.8,
                gain_sd=0.5, network_sd=0.02,
            ),
            second_set={"n_images": 200},
        ),
        Scenario(
            "sweet_spot_8_groups", "sweet_spot_layer", 0.0,
            "sweet spot is layer 0 (accuracy 0.48 vs 0.96 at layers 1-17), N = 240 in 8 unequal groups, S = 5",
            study_kwargs([0.48] + [0.96] * 17, [0.40] + [0.80] * 17, **sweet8),
        ),
        Scenario(
            "sweet_spot_drop", "sweet_spot_layer", 0.05,
            "sweet spot is the shallower layer 0 with a true 2-point drop (0.88 vs 0.90, 0.90), margin 0.02, "
            "N = 500 independent images, S = 5",
            study_kwargs([0.88, 0.90, 0.90], [0.75] * 3, **drop),
            analysis={"margin": 0.02},
        ),
    ]
    found.insert(
        9,
        Scenario(
            "band_18_layers", "band", 0.95,
            "simultaneous band covers all 18 true gains (the runs of fwer_18_layers)",
            found[8].study,
            runs_of="fwer_18_layers",
        ),
    )
    targets = {
        "coverage": "0.95 ± 0.02", "size": "≤ 0.05 (+ 2 MC SE)", "power": "≥ 0.60", "fwer": "≤ 0.05 (+ 2 MC SE)",
        "band": "≥ 0.95 (− 2 MC SE)", "interaction": "≤ 0.06", "sweet_spot_layer": "≤ 0.05 (+ 2 MC SE)",
    }
    found = [replace(s, target="0 runs" if s.nominal == 0 else targets[s.measure]) for s in found]
    return {s.name: s for s in found}


SCENARIOS = _scenarios()


def _outcomes(study: dict) -> tuple:
    return study["correct_pre"], study["correct_rand"], study["labels"], study["groups"], study["folds"]


def run_scenario(scenario: Scenario, seed: int, runs: int, *, n_draws: int = 2000, chunk: int = 100) -> dict:
    """Simulate ``runs`` studies of the scenario and analyse each; returns per-run results.

    Keys: ``gain_p``, ``gain_p_maxt`` (runs, n_layers), ``gain_ci``, ``gain_band`` (runs,
    n_layers, 2), ``sweet_spot`` (runs,) str, ``interaction_p`` (runs, n_layers) for
    "interaction" scenarios, ``true_gain`` (n_layers,), ``seconds`` (analysis time). The streams
    depend on (seed, scenario.stream) only; each run's analysis gets its own spawned seed.
    """
    import time

    from layergain.stats import ProbeOutcomes, gain_statistics, interaction_test

    root = np.random.SeedSequence([seed, zlib.crc32(scenario.stream.encode())])
    sim_seq, stat_seq = root.spawn(2)
    sim_rng = np.random.default_rng(sim_seq)
    stat_seeds = stat_seq.spawn(runs)
    analysis = {"n_draws": n_draws, **scenario.analysis}
    keys = ("gain_p", "gain_p_maxt", "gain_ci", "gain_band", "sweet_spot")
    out: dict = {k: [] for k in keys}
    out["interaction_p"] = []
    seconds = 0.0
    for start in range(0, runs, chunk):
        n = min(chunk, runs - start)
        kw = dict(scenario.study)
        if scenario.measure == "interaction":
            nets = draw_networks(
                sim_rng, n_seeds=kw["n_seeds"], n_layers=kw.get("n_layers", 1), seed_sd=kw["seed_sd"],
                layer_correlation=kw.get("layer_correlation", 0.0), pretrained_drawn=kw["pretrained_drawn"],
                pretrained_seed_sd=kw["pretrained_seed_sd"], n_runs=n,
            )
            a = simulate_study(sim_rng, **kw, networks=nets, n_runs=n)
            b = simulate_study(sim_rng, **{**kw, **scenario.second_set}, networks=nets, n_runs=n)
            truth = a["true_gain"]
            for r in range(n):
                sets = [
                    ProbeOutcomes(*_outcomes(run_of(s, r))[:4], name=name) for s, name in ((a, "a"), (b, "b"))
                ]
                t0 = time.perf_counter()
                test = interaction_test(sets, n_draws=n_draws, seed=np.random.default_rng(stat_seeds[start + r]))
                out["interaction_p"].append(np.asarray(test.pvalue, float))
                seconds += time.perf_counter() - t0
            continue
        study = simulate_study(sim_rng, **kw, n_runs=n)
        truth = study["true_gain"]
        for r in range(n):
            t0 = time.perf_counter()
            ds = gain_statistics(*_outcomes(run_of(study, r)), seed=np.random.default_rng(stat_seeds[start + r]), **analysis)
            seconds += time.perf_counter() - t0
            for k in keys:
                out[k].append(ds[k].values)
    res = {k: np.asarray(v) for k, v in out.items() if len(v)}
    if "sweet_spot" in res:
        res["sweet_spot"] = res["sweet_spot"].astype(str)
    res["true_gain"] = truth
    res["seconds"] = seconds
    res["runs"] = runs
    return res


def rate_of(scenario: Scenario, res: dict, alpha: float = 0.05) -> tuple[float, int]:
    """(measured rate, number of runs with NaN where a number was expected) of the scenario's measure.

    NaN never counts as an event: a NaN p-value does not reject, a NaN interval does not cover.
    """
    m = scenario.measure
    if m in ("size", "power"):
        p = res["gain_p"][:, 0]
        return float(np.mean(p <= alpha)), int(np.isnan(p).sum())
    if m == "coverage":
        ci, g = res["gain_ci"][:, 0], res["true_gain"][0]
        return float(np.mean((ci[:, 0] <= g) & (g <= ci[:, 1]))), int(np.isnan(ci).any(axis=1).sum())
    if m == "fwer":
        p = res["gain_p_maxt"]
        return float(np.mean((p <= alpha).any(axis=1))), int(np.isnan(p).any(axis=1).sum())
    if m == "band":
        band, g = res["gain_band"], res["true_gain"]
        inside = (band[..., 0] <= g) & (g <= band[..., 1])
        return float(np.mean(inside.all(axis=1))), int(np.isnan(band).any(axis=(1, 2)).sum())
    if m == "interaction":
        p = res["interaction_p"][:, 0]
        return float(np.mean(p <= alpha)), int(np.isnan(p).sum())
    if m == "sweet_spot_layer":
        return float(np.mean(res["sweet_spot"] == scenario.layer)), 0
    raise ValueError(f"unknown measure {m!r}")


def disagreements(res: dict, alpha: float = 0.05, tie: float = 1e-9) -> tuple[int, int]:
    """(runs x layers where "gain_p < alpha" differs from "0 outside gain_ci", cells compared).

    A (1 - alpha) interval and a test of the same construction agree exactly; cells within
    ``tie`` of the boundary (p at alpha, or a bound at 0) are not compared. NaN p and NaN
    interval together agree; one NaN without the other disagrees.
    """
    p, ci = res["gain_p"], res["gain_ci"]
    p_nan, ci_nan = np.isnan(p), np.isnan(ci).any(axis=-1)
    reject = p < alpha
    outside = (ci[..., 0] > 0) | (ci[..., 1] < 0)
    tied = (np.abs(p - alpha) < tie) | (np.abs(ci) < tie).any(axis=-1)
    compare = ~tied | p_nan | ci_nan
    differ = np.where(p_nan | ci_nan, p_nan != ci_nan, reject != outside)
    return int((differ & compare).sum()), int(compare.sum())


def mc_se(rate: float, runs: int) -> float:
    """Monte-Carlo (binomial) standard error of a rate measured over ``runs`` runs."""
    return float(np.sqrt(rate * (1 - rate) / runs))
