r"""Configurations on the same images: does the gain depend on the readout, the baseline, the backbone?

Runs that differ in readout or random baseline but share the images are **paired**: every
configuration predicts every image, so the images' part of a difference of gains is the spread of
per-image *differences* — far smaller than that of each gain when the configurations agree on
which images are hard. This is a different design from :mod:`layergain.stats.compare` (image sets
are independent samples there). The construction is the same crossed design
(:mod:`layergain.stats.components`): one sample of units (images, or groups where the set has
them) whose columns are the (configuration, layer) pairs, and the random seeds crossed with them.

The difference of gains of configurations a and b at layer l,

.. math::

    \hat\delta_l = \hat g_{a,l} - \hat g_{b,l}
    = (A^{pre}_{a,l} - A^{pre}_{b,l}) - (\bar A_{a,l} - \bar A_{b,l}),

is a linear contrast of the columns; its variance has a units part (CR2 contributions of the
paired differences) and a networks part: the spread over seed indices s of
:math:`A_{a,l,s} - A_{b,l,s}` (S - 1 degrees of freedom). Pairing by seed index is valid whether
the two configurations' seed-s networks are the same network (two readouts of one network:
positively correlated, a smaller spread) or independent draws (two baselines): the differences
are independent across s either way. Where the two configurations share the pretrained
network's features (the same readout of one backbone: a comparison of baselines) its term
cancels exactly and carries no spread; otherwise, under ``pretrained="draw"``, the pretrained
difference is one draw whose spread is that of the random twins' difference (as in
:func:`layergain.stats.gain_statistics`).

Interval and two-sided test per (pair, layer) read the same generalised pivotal draws (they
agree exactly); a cell whose observed variance parts do not hold the network-by-image share the
pivot takes off (two seeds that happen to score alike) is NaN with that reason, not a zero-width
interval; ``p_maxt`` is the minP step-down over every pair and layer (family-wise), with
Holm beside it. Calibration: ``tests/stats/test_configurations.py`` (size under "two
configurations equal", power under a planted difference; the scenarios and rates are printed
there and quoted in bench/README.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import components as C
from layergain.stats._inputs import Outcomes, check_groups, check_labels, check_outcomes
from layergain.stats._random import SeedLike, spawn_generators
from layergain.stats.compare import ProbeOutcomes
from layergain.stats.multiple import adjust_pvalues
from layergain.validation import check_choice, check_int, check_probability

__all__ = ["ConfigurationComparison", "compare_configurations"]


@dataclass(frozen=True)
class ConfigurationComparison:
    """Gains of several configurations on one image set and their paired differences.

    ``names`` (C,); ``gain`` (C, L) with ``gain_ci`` (C, L, 2) and ``gain_p`` (C, L) (pointwise,
    from the joint design); ``pairs`` (P,) of (a, b) index pairs, a < b; ``shared_pretrained``
    (P,); ``difference`` (P, L) = gain[a] - gain[b] with ``difference_ci`` (P, L, 2),
    ``difference_p`` (P, L) two-sided, ``difference_p_maxt`` (P, L) minP step-down over all
    pairs and layers, ``difference_p_holm`` (P, L), ``difference_se`` and ``difference_df`` (P, L)
    (a summary of the reference), ``difference_var_images`` / ``difference_var_seeds`` (P, L);
    ``reason`` (P, L): "" or why a cell has no calibrated inference (its numbers NaN).
    """

    names: list[str]
    gain: np.ndarray
    gain_ci: np.ndarray
    gain_p: np.ndarray
    pairs: list[tuple[int, int]]
    shared_pretrained: np.ndarray
    difference: np.ndarray
    difference_ci: np.ndarray
    difference_p: np.ndarray
    difference_p_maxt: np.ndarray
    difference_p_holm: np.ndarray
    difference_se: np.ndarray
    difference_df: np.ndarray
    difference_var_images: np.ndarray
    difference_var_seeds: np.ndarray
    reason: np.ndarray
    pretrained: str
    confidence: float
    n_draws: int
    unit: str
    n_units: int


def stack_same_images(
    configs: Sequence[ProbeOutcomes], *, same_layers: bool = True, subject: str = "configurations",
    one: str = "configuration", why: str = "paired configurations are runs on the same images, in the same order",
) -> tuple[Outcomes, np.ndarray, np.ndarray | None, np.ndarray]:
    """One Outcomes whose layers are every configuration's layer columns, configuration-major, and
    each configuration's first column (``offsets``, length C + 1).

    The configurations must share images, labels, groups, random seeds and CV repeats (and, with
    ``same_layers``, the number of layers); ``subject``, ``one`` and ``why`` word the errors.
    """
    checked = [check_outcomes(c.correct_pre, c.correct_rand) for c in configs]
    first = checked[0]
    labels = check_labels(configs[0].labels, first.n_images)
    groups = check_groups(configs[0].groups, first.n_images)

    def shape(o) -> tuple[int, ...]:
        return (o.n_images, o.n_layers, o.n_seeds, o.n_repeats) if same_layers else (o.n_images, o.n_seeds,
                                                                                      o.n_repeats)

    names = "(images, layers, seeds, repeats)" if same_layers else "(images, seeds, repeats)"
    shared = "images, layers, random seeds and repeats" if same_layers else "images, random seeds and repeats"
    for k, (c, o) in enumerate(zip(configs, checked)):
        if shape(o) != shape(first):
            raise InputValueError(
                f"{subject} must share {shared}; {one} {k} has {names} = {shape(o)}, {one} 0 {shape(first)}."
            )
        other = check_groups(c.groups, o.n_images)
        same_groups = (other is None) == (groups is None) and (groups is None or np.array_equal(other, groups))
        if not np.array_equal(check_labels(c.labels, o.n_images), labels) or not same_groups:
            raise InputValueError(f"{one} {k} has other labels or groups than {one} 0: {why}.")
    offsets = np.concatenate([[0], np.cumsum([o.n_layers for o in checked])])
    pre = np.concatenate([o.pre for o in checked], axis=0)
    rand = np.concatenate([o.rand for o in checked], axis=0)
    return Outcomes(pre=pre, rand=rand), labels, groups, offsets


def compare_configurations(
    configs: Sequence[ProbeOutcomes],
    names: Sequence[str],
    *,
    shared_pretrained: np.ndarray | None = None,
    pretrained: str = "draw",
    n_draws: int = 20000,
    confidence: float = 0.95,
    seed: SeedLike = None,
) -> ConfigurationComparison:
    """Per layer, whether the gain differs between configurations run on the same images.

    Parameters
    ----------
    configs : sequence of ProbeOutcomes
        Two or more configurations (readouts, baselines) of one image set: the same images in the
        same order, labels, groups, layers, number of random seeds and CV repeats (the same folds).
    names : sequence of str
        Their names, distinct.
    shared_pretrained : array-like of bool of shape (C, C), default=None
        ``[a, b]`` True where configurations a and b read the *same* pretrained features (the same
        readout of the same backbone: they differ in the baseline only); the pretrained term then
        cancels from their difference. None: configurations whose pretrained correctness is
        identical on every image, layer and repeat are taken to share it.
    pretrained : {"draw", "fixed"}, default="draw"
        As in :func:`layergain.stats.gain_statistics`.
    n_draws : int, default=20000
        Draws of the pivotal reference.
    confidence : float, default=0.95
    seed : int or Generator, default=None

    Returns
    -------
    ConfigurationComparison
    """
    if len(configs) < 2:
        raise NotEnoughDataError(f"comparing configurations needs at least 2, got {len(configs)}.")
    names = [str(n) for n in names]
    if len(names) != len(configs) or len(set(names)) != len(names):
        raise InputValueError(f"`names` must name each configuration once, got {names} for {len(configs)}.")
    check_choice(pretrained, "pretrained", ("draw", "fixed"))
    check_int(n_draws, "n_draws", minimum=1000)
    check_probability(confidence, "confidence")
    outcomes, labels, groups, offsets = stack_same_images(configs)
    n_layers = int(offsets[1])
    n_conf = len(configs)
    if shared_pretrained is None:
        pre = outcomes.pre.reshape(n_conf, n_layers, *outcomes.pre.shape[1:])
        shared = np.array([[np.array_equal(pre[a], pre[b]) for b in range(n_conf)] for a in range(n_conf)])
    else:
        shared = np.asarray(shared_pretrained, dtype=bool)
        if shared.shape != (n_conf, n_conf):
            raise InputValueError(f"`shared_pretrained` must have shape {(n_conf, n_conf)}, got {shared.shape}.")
    model = C.design([(outcomes, labels, groups)])
    spread = pretrained == "draw"
    rng_gain, rng_diff = spawn_generators(seed, 2)

    # per configuration and layer: the gain (pointwise, from the joint design)
    cols = n_conf * n_layers
    alpha = np.eye(cols)[:, None, :]
    gains, _, gain_p, gain_ci = C.contrast_inference(model, alpha, -alpha, pretrained_spread=spread,
                                                     n_draws=n_draws, confidence=confidence, rng=rng_gain,
                                                     degenerate="nan")

    pairs = list(itertools.combinations(range(n_conf), 2))
    k = len(pairs) * n_layers
    alpha = np.zeros((k, 1, cols))
    beta = np.zeros((k, 1, cols))
    for p, (a, b) in enumerate(pairs):
        for layer in range(n_layers):
            row, ca, cb = p * n_layers + layer, a * n_layers + layer, b * n_layers + layer
            beta[row, 0, ca], beta[row, 0, cb] = -1.0, 1.0
            if not shared[a, b]:  # the same pretrained features cancel exactly
                alpha[row, 0, ca], alpha[row, 0, cb] = 1.0, -1.0
    diff, draws, p_diff, ci_diff = C.contrast_inference(model, alpha, beta, pretrained_spread=spread,
                                                        n_draws=n_draws, confidence=confidence, rng=rng_diff,
                                                        degenerate="nan")
    p_maxt, _ = C.joint(diff, draws, p_diff, confidence=confidence)
    p_holm = np.full(k, np.nan)
    ok = diff.ok
    if ok.size:
        p_holm[ok] = adjust_pvalues(p_diff[ok], "holm")

    def grid(values: np.ndarray) -> np.ndarray:
        return values.reshape(len(pairs), n_layers, *values.shape[1:])

    smp = model.samples[0]
    return ConfigurationComparison(
        names=names,
        gain=gains.estimate.reshape(n_conf, n_layers),
        gain_ci=gain_ci.reshape(n_conf, n_layers, 2),
        gain_p=gain_p.reshape(n_conf, n_layers),
        pairs=pairs,
        shared_pretrained=np.array([shared[a, b] for a, b in pairs], dtype=bool),
        difference=grid(diff.estimate),
        difference_ci=grid(ci_diff),
        difference_p=grid(p_diff),
        difference_p_maxt=grid(p_maxt),
        difference_p_holm=grid(p_holm),
        difference_se=grid(diff.se),
        difference_df=grid(diff.df),
        difference_var_images=grid(diff.var_units),
        difference_var_seeds=grid(diff.var_networks),
        reason=grid(diff.reason.astype(str)),
        pretrained=pretrained,
        confidence=float(confidence),
        n_draws=int(n_draws),
        unit=smp.kind,
        n_units=int(smp.n_units),
    )
