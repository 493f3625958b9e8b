r"""Backbones side by side on the same images: does a larger model's best layer beat a smaller one's sweet spot?

The third claim of the study is a trade-off between the transferred network's complexity and its
accuracy: the sweet spot (the shallowest layer as good as the best) of a small model may already
be as accurate as anything a larger model offers. Backbones have different numbers of layers, so
they are not compared layer by layer (:mod:`layergain.stats.configurations`) but by the question
itself. For a smaller model a (fewer parameters in all) with sweet spot :math:`s_a` and a larger
model b with layers :math:`l = 1..L_b`,

.. math::

    \hat\delta_l = A^{pre}_{b,l} - A^{pre}_{a,s_a},

the difference of pretrained probe accuracies, a linear contrast of the columns of one crossed
design (:mod:`layergain.stats.components`: the same images under both, so the images' part is
the spread of per-image *differences*; under ``pretrained="draw"`` the random twins' spread at
both columns as the pretrained networks' own). The test is one-sided — "some layer of b beats
a's sweet spot" — and accounts for choosing b's best layer after seeing the data: the p-value is
the single-step minP over all of b's layers (Westfall & Young 1993) read from the same pivotal
draws, :math:`p = \Pr^*(\min_l p^*_l \le \min_l p_l)`, so picking the layer with the smallest
p-value costs nothing in size. The reported layer is b's most accurate one (``best``), with its
difference, pointwise two-sided interval and one-sided p conditional on that layer.

The sweet spot of a is taken from a's own run (it is itself chosen from the data, on a's
columns; the test is conditional on it). A smaller model whose sweet spot is undetermined has no
comparison (NaN with the reason). Calibration: ``tests/stats/test_backbones.py`` (size where
b's best layer equals a's sweet spot and the others are worse, power under a planted advantage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.stats import components as C
from layergain.stats._random import SeedLike, spawn_generators
from layergain.stats.compare import ProbeOutcomes
from layergain.stats.configurations import stack_same_images
from layergain.validation import check_choice, check_int, check_probability

__all__ = ["BackboneComparison", "compare_backbones"]


@dataclass(frozen=True)
class BackboneComparison:
    """Every (smaller, larger) pair of backbones: the larger's best layer against the smaller's sweet spot.

    ``pairs`` (P,) of (a, b) indices with ``size[a] < size[b]``; ``best`` (P,) the larger's most
    accurate layer and ``sweet`` (P,) the smaller's sweet spot (layer indices, -1 where
    undetermined); ``difference`` (P,) = accuracy(b, best) - accuracy(a, sweet) with
    ``difference_ci`` (P, 2) pointwise two-sided and ``p_best`` (P,) one-sided at the best layer
    (conditional on it); ``p_any`` (P,) one-sided minP over every layer of b (the primary test:
    some layer of b beats a's sweet spot); ``differences`` (P,) arrays of shape (L_b,) per layer of
    b; ``reason`` (P,) "" or why a pair has no calibrated test.
    """

    names: list[str]
    size: np.ndarray
    pairs: list[tuple[int, int]]
    best: np.ndarray
    sweet: np.ndarray
    difference: np.ndarray
    difference_ci: np.ndarray
    p_best: np.ndarray
    p_any: np.ndarray
    differences: list[np.ndarray]
    reason: np.ndarray
    pretrained: str
    confidence: float
    n_draws: int
    unit: str
    n_units: int


def _one_sided(contrasts: C.Contrasts, draws: np.ndarray) -> tuple[np.ndarray, float]:
    """One-sided p-values (H1: contrast > 0) of the calibrated contrasts and their single-step minP."""
    est = contrasts.estimate[contrasts.ok]
    b = draws.shape[0]
    p = np.maximum(np.sum(draws >= est[None, :], axis=0), 1) / b
    # each draw's own one-sided p-values: the share of draws at least as large (ranks per column)
    order = np.argsort(-draws, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, b + 1)[:, None].repeat(draws.shape[1], axis=1), axis=0)
    p_null = ranks.min(axis=1) / b
    return p, float(max(np.mean(p_null <= p.min() + 1e-12), 1.0 / b))


def compare_backbones(
    configs: Sequence[ProbeOutcomes],
    names: Sequence[str],
    *,
    size: Sequence[float],
    sweet: Sequence[int],
    pretrained: str = "draw",
    n_draws: int = 20000,
    confidence: float = 0.95,
    seed: SeedLike = None,
) -> BackboneComparison:
    """For each smaller/larger pair of backbones: does the larger model's best layer beat the smaller's sweet spot?

    Parameters
    ----------
    configs : sequence of ProbeOutcomes
        Two or more backbones' probe outcomes on the same images (labels, groups, number of seeds
        and CV repeats); their numbers of layers may differ.
    names : sequence of str
        Their names, distinct.
    size : sequence of float
        Each backbone's number of parameters (what "larger" means); equal sizes form no pair.
    sweet : sequence of int
        Each backbone's sweet-spot layer index from its own run, -1 where undetermined.
    pretrained : {"draw", "fixed"}, default="draw"
        As in :func:`layergain.stats.gain_statistics`.
    n_draws : int, default=20000
    confidence : float, default=0.95
    seed : int or Generator, default=None

    Returns
    -------
    BackboneComparison
    """
    if len(configs) < 2:
        raise NotEnoughDataError(f"comparing backbones needs at least 2, got {len(configs)}.")
    names = [str(n) for n in names]
    if len(names) != len(configs) or len(set(names)) != len(names):
        raise InputValueError(f"`names` must name each backbone once, got {names} for {len(configs)}.")
    size = np.asarray(size, dtype=float)
    sweet = np.asarray(sweet, dtype=int)
    if size.shape != (len(configs),) or sweet.shape != (len(configs),):
        raise InputValueError(f"`size` and `sweet` need one value per backbone ({len(configs)}).")
    check_choice(pretrained, "pretrained", ("draw", "fixed"))
    check_int(n_draws, "n_draws", minimum=1000)
    check_probability(confidence, "confidence")
    outcomes, labels, groups, offsets = stack_same_images(
        configs, same_layers=False, subject="backbones compared side by side", one="backbone",
        why="backbones are compared side by side on the same images, in the same order")
    n_layers = np.diff(offsets)
    if np.any((sweet < -1) | (sweet >= n_layers)):
        raise InputValueError(f"`sweet` must be a layer index of its backbone or -1, got {sweet.tolist()}.")
    model = C.design([(outcomes, labels, groups)])
    cols = int(offsets[-1])
    pairs = [(a, b) for a in range(len(configs)) for b in range(len(configs)) if size[a] < size[b]]
    rngs = spawn_generators(seed, max(len(pairs), 1))
    acc = model.acc_pre[0]
    n_pairs = len(pairs)
    out = {
        "best": np.full(n_pairs, -1), "difference": np.full(n_pairs, np.nan), "ci": np.full((n_pairs, 2), np.nan),
        "p_best": np.full(n_pairs, np.nan), "p_any": np.full(n_pairs, np.nan),
        "reason": np.full(n_pairs, "", dtype=object),
    }
    per_layer = []
    for i, (a, b) in enumerate(pairs):
        lb = range(offsets[b], offsets[b + 1])
        best = int(np.argmax(acc[offsets[b]:offsets[b + 1]]))
        out["best"][i] = best
        if sweet[a] < 0:
            out["reason"][i] = f"the sweet spot of `{names[a]}` is undetermined in its run"
            per_layer.append(np.full(n_layers[b], np.nan))
            continue
        alpha = np.zeros((n_layers[b], 1, cols))
        for row, col in enumerate(lb):
            alpha[row, 0, col] += 1.0
            alpha[row, 0, offsets[a] + sweet[a]] -= 1.0
        contrasts = C.evaluate(model, alpha, np.zeros_like(alpha), pretrained_spread=pretrained == "draw",
                               degenerate="nan")
        per_layer.append(contrasts.estimate.copy())
        out["difference"][i] = contrasts.estimate[best]
        ok = contrasts.ok
        if best not in ok:
            out["reason"][i] = str(contrasts.reason[best])
            continue
        draws = C.pivot_draws(contrasts, n_draws, rngs[i])
        _, ci = C.infer(contrasts, draws, confidence=confidence)
        p, p_any = _one_sided(contrasts, draws)
        out["ci"][i] = ci[best]
        out["p_best"][i] = p[int(np.flatnonzero(ok == best)[0])]
        out["p_any"][i] = p_any
    smp = model.samples[0]
    return BackboneComparison(
        names=names, size=size, pairs=pairs, best=out["best"],
        sweet=np.array([sweet[a] for a, _ in pairs], dtype=int), difference=out["difference"],
        difference_ci=out["ci"], p_best=out["p_best"], p_any=out["p_any"], differences=per_layer,
        reason=out["reason"].astype(str), pretrained=pretrained, confidence=float(confidence),
        n_draws=int(n_draws), unit=smp.kind, n_units=int(smp.n_units),
    )
