"""Sentences of a run report, generated from its numbers: findings and data (methods:
:mod:`layergain.report.methods`).

Nothing here is hard-coded about a result: every claim is chosen by a rule on the numbers
(significance after correction, the sign of an interval, an equality) and states its estimate,
interval and corrected p-value. A function returns ``None`` or ``[]`` when it has nothing to say.
"""

from __future__ import annotations

import numpy as np

from layergain.report import fmt
from layergain.report.fmt import est_ci, layer_runs, p_is, plural
from layergain.report.summary import Difference, RunSummary, json_attr

__all__ = ["data_text", "run_findings"]


def _ci_words(s: RunSummary) -> str:
    return f"pointwise {fmt.level(s.confidence)} CI"


def _reason(s: RunSummary, j: int) -> str:
    return s.gain_reasons.get(s.layers[j], "no reason was recorded")


def _gain_at(s: RunSummary, j: int) -> str:
    """``+0.217 [pointwise 95 % CI +0.100, +0.317], max-T-adjusted p = 0.018, Cohen's h = 0.55``."""
    if s.inference_na[j]:
        return (
            f"{fmt.signed(s.gain[j])} (CI and test n/a: {_reason(s, j)}), "
            f"Cohen's h = {fmt.signed(s.cohen_h[j], 2)}"
        )
    return (
        f"{fmt.signed(s.gain[j])} [{_ci_words(s)} {fmt.signed(s.gain_ci[j, 0])}, "
        f"{fmt.signed(s.gain_ci[j, 1])}], "
        f"max-T-adjusted {p_is(s.p_maxt[j])}, Cohen's h = {fmt.signed(s.cohen_h[j], 2)}"
    )


def _family(s: RunSummary) -> str:
    return f"max-T-adjusted, family-wise over the {len(s.layers)} layers"


def _significance(s: RunSummary) -> list[str]:
    L = len(s.layers)
    sig, neg = s.significant, s.significant_negative
    out = []
    tested = np.isfinite(s.p_maxt)
    if sig.any():
        j = int(np.flatnonzero(sig)[np.argmax(s.gain[sig])])
        out.append(
            f"**Pretraining gives a significant gain at {sig.sum()} of {L} layers** "
            f"({layer_runs(s.layers, sig)}; two-sided test over images and random initialisations, "
            f"{_family(s)}, p ≤ {s.alpha:g}). The largest significant gain is at "
            f"`{s.layers[j]}`: {_gain_at(s, j)} (pretrained {fmt.num(s.acc_pre[j])}, random mean "
            f"{fmt.num(s.acc_rand[j])})."
        )
    elif not tested.any():
        out.append(
            f"**No layer's gain could be tested**: at every one of the {L} layers the interval and test are "
            f"n/a ({_reason(s, 0)})."
        )
        return out
    else:
        k = int(np.argmin(np.where(tested, s.p_maxt, np.inf)))
        j = int(np.nanargmax(s.gain))
        out.append(
            f"**No layer has a significant gain** after max-T adjustment (family-wise over the {L} layers; "
            f"smallest adjusted {p_is(s.p_maxt[k])}, at `{s.layers[k]}`). The largest estimate is at "
            f"`{s.layers[j]}`: {_gain_at(s, j)}."
        )
    lo, hi = np.round(s.gain_ci[:, 0], 3), np.round(s.gain_ci[:, 1], 3)  # as shown: +0.000 does not exclude 0
    excludes = ((lo > 0) | (hi < 0)) & ~sig & ~neg
    if excludes.any():
        in_band = excludes & (s.gain_band[:, 0] <= 0) & (s.gain_band[:, 1] >= 0)
        band = (
            f"; the simultaneous band, adjusted for the {L} layers, includes 0 there"
            if in_band.sum() == excludes.sum()
            else ""
        )
        out.append(
            f"At {plural(int(excludes.sum()), 'layer')} ({layer_runs(s.layers, excludes)}) the "
            f"{_ci_words(s)} of the gain excludes 0 (unadjusted p < {1 - s.confidence:.2g}) but the "
            f"max-T-adjusted p does not reach {s.alpha:g}: the pointwise intervals are per layer, not "
            f"adjusted for multiplicity{band}."
        )
    if neg.any():
        j = int(np.flatnonzero(neg)[np.argmin(s.gain[neg])])
        out.append(
            f"**The random baseline beats the pretrained network** at {layer_runs(s.layers, neg)} "
            f"(largest at `{s.layers[j]}`: {_gain_at(s, j)})."
        )
    return out


def _inference_na(s: RunSummary) -> list[str]:
    """One line per reason for which some layers' gain has no calibrated interval or test."""
    na = s.inference_na
    if not na.any() or not np.isfinite(s.p).any():
        return []  # none, or all (said by _significance)
    by_reason: dict[str, list[int]] = {}
    for j in np.flatnonzero(na):
        by_reason.setdefault(_reason(s, j), []).append(int(j))
    out = []
    for reason, idx in by_reason.items():
        mask = np.zeros(len(s.layers), dtype=bool)
        mask[idx] = True
        out.append(
            f"**Gain CI and test are n/a** at {plural(len(idx), 'layer')} ({layer_runs(s.layers, mask)}): "
            f"{reason}."
        )
    return out


def _precision(s: RunSummary) -> str | None:
    """Which variance part, the images' (or groups') or the random seeds', limits the gain's intervals."""
    finite = np.isfinite(s.var_units) & np.isfinite(s.var_seeds) & ~s.inference_na
    if not finite.any():
        return None
    seeds = finite & (s.var_seeds > s.var_units)
    L = len(s.layers)
    head = (
        f"**Where the uncertainty comes from**: the variance of each layer's gain has a part from the "
        f"{s.units_text(s.units_df)} and a part from the "
        f"{plural(s.n_seeds, 'random seed')} ({s.n_seeds - 1} df)."
    )
    if not seeds.any():
        return head + (
            f" The {s.unit}s' part is the larger at every layer: more {s.unit}s would narrow the intervals, "
            "more random seeds little."
        )
    df = s.gain_df[seeds]
    return head + (
        f" The random seeds' part is the larger at {int(seeds.sum())} of {L} layers "
        f"({layer_runs(s.layers, seeds)}), where the degrees of freedom fall to "
        f"{fmt.num(np.nanmin(df), 1)} and the intervals widen: more random seeds would narrow them most."
    )


def _secondary(s: RunSummary) -> str | None:
    if np.all(np.isnan(s.p_holm)) and np.all(np.isnan(s.p_bh)) and np.all(np.isnan(s.ttest_p_holm)):
        return None
    holm = np.nan_to_num(s.p_holm, nan=1.0) <= s.alpha
    bh = np.nan_to_num(s.p_bh, nan=1.0) <= s.alpha
    tt = np.nan_to_num(s.ttest_p_holm, nan=1.0) <= s.alpha

    def where(mask) -> str:
        return f"{mask.sum()} of {len(s.layers)} layers" + (
            f" ({layer_runs(s.layers, mask)})" if mask.any() else ""
        )

    text = (
        f"Secondary adjustments of the same p-values at level {s.alpha:g}: Holm (family-wise, ignores the "
        f"dependence between layers) flags {where(holm)}; Benjamini–Hochberg (false discovery rate) flags "
        f"{where(bh)}"
    )
    if not np.all(np.isnan(s.ttest_p_holm)):
        text += (
            "; the Nadeau–Bengio corrected resampled t-test over CV folds (conditional on the drawn "
            f"seeds), Holm-adjusted, flags {where(tt)}"
        )
    return text + "."


def _trend(s: RunSummary) -> str | None:
    ds = s.ds
    if "gain_trend_slope" not in ds:
        return None
    slope = float(ds["gain_trend_slope"])
    if np.isnan(slope):
        reasons = json_attr(ds["gain_trend_slope"].attrs, "nan_reason", {}) or {}
        why = "; ".join(map(str, reasons.values())) if isinstance(reasons, dict) else str(reasons)
        return f"**Depth trend not computed**: {why or 'no reason was recorded'}."
    lo, hi = (float(v) for v in ds["gain_trend_slope_ci"].values)
    if lo > 0:
        head = "**Gain rises with depth**"
    elif hi < 0:
        head = "**Gain falls with depth**"
    else:
        head = "**No clear depth trend in the gain**"
    rho = float(ds["gain_trend_spearman_rho"]) if "gain_trend_spearman_rho" in ds else np.nan
    return (
        f"{head}: OLS slope of gain on relative depth (0 = first probe layer, 1 = last) "
        f"{est_ci(slope, lo, hi)} ({fmt.level(s.confidence)} CI and two-sided "
        f"{p_is(float(ds['gain_trend_slope_p']))}, a contrast of the layers' gains in the same "
        "variance-components model; one test, no correction), i.e. the gain changes by about "
        f"{fmt.signed(slope)} from the first to the last layer. Spearman's ρ of gain and depth = "
        f"{fmt.signed(rho, 2)}, a description only: the layers share images and networks and are not "
        "independent observations, so it has no p-value."
    )


def _margin(s: RunSummary) -> str:
    return f"{s.margin:g} ({100 * s.margin:g} percentage points of accuracy)"


def _sweet_spot(s: RunSummary) -> str | None:
    if s.best < 0:
        return None
    b, w = s.best, s.sweet
    level = fmt.level(s.confidence)
    best = (
        f"`{s.layers[b]}` ({fmt.params(s.params[b])} parameters, accuracy "
        f"{est_ci(s.acc_pre[b], *s.acc_pre_ci[b], sign=False)})"
    )
    if len(s.layers) == 1:
        return f"**One probe layer** ({best}): no sweet spot to look for."
    if w < 0:
        reason = s.sweet_reason or "no reason was recorded"
        return (
            f"**Sweet spot undetermined**, because {reason}. The sweet spot is the shallowest layer shown "
            f"within {_margin(s)} of the best layer at {level} simultaneous confidence; the best "
            f"pretrained layer is {best}."
        )
    if w == b:
        return (
            f"**Sweet spot = best layer** {best}: its {level} simultaneous lower bound against every other "
            f"layer is {fmt.signed(s.sweet_lower[w])}, above −{s.margin:g}, and no shallower layer is "
            f"shown within {_margin(s)} of the best."
        )
    ratio = s.params[b] / s.params[w] if s.params[w] else np.nan
    times = f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"
    return (
        f"**Sweet spot: `{s.layers[w]}`** ({fmt.params(s.params[w])} parameters, {times} fewer than the best "
        f"layer) is within {_margin(s)} of the best layer {best}: its accuracy, "
        f"{est_ci(s.acc_pre[w], *s.acc_pre_ci[w], sign=False)}, is "
        f"{fmt.signed(s.acc_pre[w] - s.acc_pre[b])} from the best's, with a {level} simultaneous lower bound "
        f"of {fmt.signed(s.sweet_lower_to_best[w])} against the best layer and "
        f"{fmt.signed(s.sweet_lower[w])} against its strongest rival, both above −{s.margin:g} "
        "(non-inferiority; the choice of the best layer on the same data is accounted for). It is the "
        "shallowest such layer."
    )


def _random_baseline(s: RunSummary) -> list[str]:
    peak = int(np.argmax(s.acc_rand))
    last = len(s.layers) - 1
    chance = s.majority_rate
    above_peak = s.acc_rand[peak] - chance
    kept = (s.acc_rand[last] - chance) / above_peak if above_peak > 0 else np.nan
    out = []
    if peak < last and s.acc_rand[last] < s.acc_rand[peak]:
        out.append(
            f"**The random baseline falls with depth**: its mean accuracy peaks at `{s.layers[peak]}` "
            f"({fmt.num(s.acc_rand[peak])}) and is "
            f"{est_ci(s.acc_rand[last], *s.acc_rand_ci[last], sign=False)} at "
            f"`{s.layers[last]}`, the deepest layer (chance, the majority-class rate: {fmt.num(chance)}); it "
            "keeps "
            f"{fmt.pct(kept, 0)} of its accuracy above chance."
        )
        j = int(np.nanargmax(s.gain))
        drop = s.acc_rand[peak] - s.acc_rand[j]
        if j > peak and drop > 0 and s.gain[j] > 0:
            out.append(
                f"Of the largest gain ({fmt.signed(s.gain[j])} at `{s.layers[j]}`), {fmt.num(drop)} is the "
                "random "
                f"baseline's drop below its own best layer and {fmt.signed(s.acc_pre[j] - s.acc_rand[peak])} "
                "the "
                "pretrained network's accuracy above that best random layer: part of the deep-layer gain "
                "measures "
                "the weakness of deep random features rather than what pretraining adds."
            )
    near = s.random_near_chance
    if near.any():
        means = s.acc_rand[near]
        text = (
            f"**The random baseline cannot be told apart from chance** at {layer_runs(s.layers, near)}: its "
            f"{_ci_words(s)} reaches the majority-class rate ({fmt.num(chance)}), with mean accuracies "
            f"{fmt.num(means.min())}–{fmt.num(means.max())} there."
        )
        collapsed = near & (s.acc_rand_low <= chance)
        wide = near & ~collapsed
        if collapsed.any():
            text += (
                f" At {layer_runs(s.layers, collapsed)} at least one random seed is at or below chance: "
                "there the gain says as much about the collapse of randomly initialised features under "
                "global pooling as about pretraining."
            )
        if wide.any():
            text += (
                f" At {layer_runs(s.layers, wide)} every random seed is above chance: the interval reaches "
                "it because it is wide."
            )
        out.append(text)
    return out


def _similarity(s: RunSummary) -> str | None:
    name = "cka_debiased" if "cka_debiased" in s.measures else "cka_linear"
    if name not in s.measures:
        return None
    m = s.measures[name]
    finite = np.isfinite(m.mean)
    if not finite.any():
        return None
    first, last = int(np.flatnonzero(finite)[0]), int(np.flatnonzero(finite)[-1])
    text = (
        f"**Similarity to random weights** ({m.label}, pretrained vs random, mean over seeds; descriptive, "
        "no test): "
        f"{fmt.num(m.mean[first])} at `{s.layers[first]}` and {fmt.num(m.mean[last])} at `{s.layers[last]}`"
    )
    if np.isfinite(m.rr_mean).any():
        below = np.isfinite(m.high) & np.isfinite(m.rr_low) & (m.high < m.rr_low)
        text += (
            f", where two random networks reach {fmt.num(m.rr_mean[last])} "
            f"(range {fmt.num(m.rr_low[last])}–{fmt.num(m.rr_high[last])}). "
        )
        text += (
            f"At {below.sum()} of {len(s.layers)} layers"
            + (f" ({layer_runs(s.layers, below)})" if below.any() else "")
            + " the pretrained network differs from every random seed more than any two random seeds differ "
            "from each other."
        )
    else:
        text += "; with one random seed there is no random-vs-random reference."
    return text


def _difference_at(s: RunSummary, d: Difference, j: int) -> str:
    """``−0.123 [95 % CI −0.200, −0.050], one-sided p = 0.004 (0.412 vs 0.535)`` at layer ``j``."""
    level = fmt.level(d.attrs.get("confidence", s.confidence))
    return (
        f"{fmt.signed(d.difference[j])} [{level} two-sided CI {fmt.signed(d.ci[j, 0])}, "
        f"{fmt.signed(d.ci[j, 1])}], one-sided {p_is(d.p[j])} ({fmt.num(d.pretrained_random[j])} pretrained vs "
        f"random, {fmt.num(d.random_random[j])} random vs random)"
    )


def _similarity_inference(s: RunSummary) -> list[str]:
    """One sentence per measure: at which layers pretrained-vs-random similarity is lower than
    random-vs-random (one-sided test at each layer), the largest difference with its CI and p."""
    out = []
    L = len(s.layers)
    for d in s.differences.values():
        tested = np.isfinite(d.p)
        than = "lower than" if d.higher_is_similar else "larger than"
        what = f"pretrained-vs-random {d.label}"
        if not tested.any():
            why = next(iter(d.reasons.values()), "no reason was recorded")
            out.append(f"**The test of {what} against random-vs-random is n/a** at every layer: {why}.")
            continue
        sig = tested & (d.p <= s.alpha)
        scope = (f"one-sided test over images and random seeds at each layer, p ≤ {s.alpha:g}, unadjusted "
                 f"across the {L} layers")
        if sig.any():
            j = int(np.flatnonzero(sig)[np.argmax(np.abs(d.difference[sig]))])
            text = (
                f"**{what[0].upper() + what[1:]} is {than} random-vs-random at {sig.sum()} of {L} layers** "
                f"({layer_runs(s.layers, sig)}; {scope}); the largest difference is at `{s.layers[j]}`: "
                f"{_difference_at(s, d, j)}."
            )
        else:
            j = int(np.flatnonzero(tested)[-1])
            text = (
                f"**{what[0].upper() + what[1:]} is not shown {than} random-vs-random** at any of the "
                f"{int(tested.sum())} tested layers ({scope}); at `{s.layers[j]}`: {_difference_at(s, d, j)}."
            )
        untested = ~tested
        if untested.any():
            layer = next((s.layers[k] for k in np.flatnonzero(untested) if s.layers[k] in d.reasons), None)
            text += (f" n/a at {layer_runs(s.layers, untested)}"
                     + (f" ({d.reasons[layer]})" if layer else "") + ".")
        out.append(text)
    return out


def _tau_words(t, names: list[int], tau: np.ndarray, ci: np.ndarray) -> str:
    return ", ".join(f"{t.labels[t.estimators[e]]} ({fmt.signed(tau[e], 2)} {fmt.ci(*ci[e], digits=2)})"
                     for e in names)


def _transferability(s: RunSummary) -> list[str]:
    """Which estimators track the probe accuracy and the gain across layers (Kendall's tau with its CI)."""
    t = s.transfer
    if t is None:
        return []
    level = fmt.level(t.tau_attrs.get("confidence", s.confidence))
    resampled = t.tau_attrs.get("resampled", "random inits")
    out = []
    for what, tau, ci, against in (
        ("gain", t.tau_gain, t.tau_gain_ci, "each estimator's pretrained-minus-random difference and the gain"),
        ("accuracy", t.tau_accuracy, t.tau_accuracy_ci, "each estimator on the pretrained network and its probe "
         "accuracy"),
    ):
        finite = np.isfinite(tau) & np.isfinite(ci).all(axis=1)
        if not finite.any():
            continue
        above = [e for e in np.flatnonzero(finite) if ci[e, 0] > 0]
        below = [e for e in np.flatnonzero(finite) if ci[e, 1] < 0]
        neither = [e for e in np.flatnonzero(finite) if e not in above and e not in below]
        head = ("**Which transferability estimators track the gain**" if what == "gain"
                else "**Which transferability estimators track the pretrained probe accuracy**")
        parts = []
        if above:
            parts.append(f"τ above 0 for {_tau_words(t, above, tau, ci)}")
        if below:
            parts.append(f"τ below 0 for {_tau_words(t, below, tau, ci)}")
        if neither:
            parts.append(f"the CI includes 0 for {_tau_words(t, neither, tau, ci)}")
        n_layers = int(np.nanmax(t.n_layers)) if np.isfinite(t.n_layers).any() else len(s.layers)
        out.append(
            f"{head} (Kendall's τ across {n_layers} layers between {against}; {level} percentile CI over "
            f"{resampled}, conditional on the estimators' values on these images and on this pretrained "
            f"network): " + "; ".join(parts) + "."
        )
    missing = [e for e in t.estimators if e in t.tau_reasons]
    if missing:
        out.append("**τ is n/a** for " + "; ".join(f"{t.labels[e]}: {t.tau_reasons[e]}" for e in missing) + ".")
    return out


def _nan_measures(s: RunSummary) -> list[str]:
    """One line per group of measures that are n/a at the same layers, with a recorded reason."""
    groups: dict[tuple, list] = {}
    for m in s.measures.values():
        missing = ~np.isfinite(m.mean)
        partly = ~np.isfinite(m.low) | ~np.isfinite(m.high)
        if not (missing.any() or partly.any()):
            continue
        where = missing if missing.any() else partly
        groups.setdefault((tuple(where), bool(missing.any())), []).append(m)
    out = []
    for (where, all_seeds), members in groups.items():
        where = np.array(where)
        layers = [s.layers[j] for j in np.flatnonzero(where)]
        why = "no reason was recorded"
        for m in members:
            reason_layer = next((layer for layer in reversed(layers) if layer in m.reasons), None)
            if reason_layer is not None:
                init, reason = next(iter(sorted(m.reasons[reason_layer].items())))
                why = f"the reason, for example at `{reason_layer}` ({init}): {reason}"
                break
        names = " and ".join(m.label for m in members)
        verb = "are" if len(members) > 1 else "is"
        scope = "for every random seed" if all_seeds else "for some random seeds"
        out.append(
            f"**{names} {verb} n/a** {scope} at {plural(len(layers), 'layer')} "
            f"({layer_runs(s.layers, where)}); {why}"
        )
    return out


def _skipped(s: RunSummary) -> str:
    skipped = json_attr(s.attrs, "skipped_images", []) or []
    if not skipped:
        return "No image was skipped: every listed image was read and used."
    shown = "; ".join(f"`{item}`" for item in skipped[:5]) + ("; …" if len(skipped) > 5 else "")
    verb = "was" if len(skipped) == 1 else "were"
    return (
        f"**{plural(len(skipped), 'image')} could not be read and {verb} left out** of every number: {shown}"
    )


def _formats(s: RunSummary) -> str | None:
    """Say so where images were not RGB or came in several sizes: they were converted and used."""
    formats = json_attr(s.attrs, "image_formats", {}) or {}
    kinds = formats.get("kinds", {})
    odd = {k: n for k, n in kinds.items() if not k.endswith(" RGB")}
    lo, hi = formats.get("min_size"), formats.get("max_size")
    parts = []
    if odd:
        listed = ", ".join(f"{n} {k}" for k, n in odd.items())
        parts.append(f"{plural(sum(odd.values()), 'image')} were not RGB ({listed}) and were converted to RGB")
    if lo and hi and lo != hi:
        parts.append(f"image sizes ranged from {lo[0]} × {lo[1]} to {hi[0]} × {hi[1]} px; every image was resized "
                     f"to {s.attrs.get('image_size')} × {s.attrs.get('image_size')} px")
    if not parts:
        return None
    return "**Image conversion:** " + "; ".join(parts) + "."


def _convergence(s: RunSummary) -> str | None:
    n = int(s.attrs.get("probe_not_converged", 0) or 0)
    if n <= 0:
        return None
    return (
        f"{plural(n, 'probe fit')} did not converge within the iteration limit "
        f"({s.attrs.get('probe', '')}); "
        "their predictions are used as they are."
    )


def _robustness(s: RunSummary) -> str | None:
    """Which conclusions of this run hold under every configuration it was run with, and which do not."""
    ds = s.ds
    if "robustness_holds" not in ds:
        return None
    holds = ds["robustness_holds"].transpose("conclusion", "sibling").values
    siblings = [str(v) for v in ds["sibling"].values]
    same, differ = [], []
    for k, text in enumerate(ds["conclusion_text"].values):
        row = holds[k]
        if np.all(row == row[0]) and row[0] >= 0:
            same.append(f"{text} ({'holds under every one' if row[0] == 1 else 'holds under none'})")
        elif np.any(row >= 0):
            yes = [siblings[c] for c in np.flatnonzero(row == 1)]
            flips = str(ds["robustness_flips_at"].values[k])
            differ.append(f"{text}: holds under {', '.join(f'`{n}`' for n in yes) or 'none'}"
                          + (f" (the per-layer verdict flips at {flips})" if flips else ""))
    parts = [f"**Robustness across the {len(siblings)} configurations run together** (Table "
             "“robustness”, comparison in `../configurations/`):"]
    if differ:
        parts.append("depends on the configuration — " + "; ".join(differ) + ".")
    if same:
        parts.append(("The same under every configuration — " if differ else "every conclusion is the same under "
                      "every configuration — ") + "; ".join(same) + ".")
    return " ".join(parts)


def run_findings(s: RunSummary) -> list[str]:
    """The findings list of a run report, most important first."""
    items = _significance(s)
    items += _inference_na(s)
    items += [t for t in (_precision(s),) if t]
    items += [t for t in (_secondary(s), _trend(s), _sweet_spot(s)) if t]
    items += _random_baseline(s)
    items += _similarity_inference(s) if s.differences else [t for t in (_similarity(s),) if t]
    items += _nan_measures(s)
    items += _transferability(s)
    items += [t for t in (_robustness(s), _convergence(s), _formats(s)) if t]
    items.append(_skipped(s))
    return items


# --------------------------------------------------------------------------- data


def data_text(s: RunSummary) -> list[str]:
    """The data card summary and what of the set this run used."""
    a = s.attrs
    out = []
    card, summary = a.get("data_card", ""), a.get("data_card_summary", "")
    if summary:
        out.append(f"**Data card `{card}`.** {summary}")
    else:
        out.append(
            f"No data card was found for `{a.get('dataset')}`; add one (`data_cards/{a.get('dataset')}.md` "
            "with a `## Summary` section) so that reports say where the images come from."
        )
    used = f"This run used {a.get('n_images')} images"
    per_class = int(a.get("max_per_class", 0) or 0)
    used += (
        f" (at most {per_class} per class, a stratified random subset)"
        if per_class
        else " (all listed images)"
    )
    sha = a.get("data_content_sha256", "")
    out.append(used + (f"; SHA-256 of their content: `{sha}`." if sha else "."))
    return out + _leakage_text(a)


def _leakage_text(a: dict) -> list[str]:
    """What the leakage guard found (near-duplicates; the order check of a set without groups)."""
    out = []
    if a.get("duplicates_summary"):
        out.append(f"**Near-duplicates.** {a['duplicates_summary']}")
    elif a.get("leakage_note"):
        out.append(f"**Near-duplicates.** {str(a['leakage_note'])[0].upper()}{str(a['leakage_note'])[1:]}.")
    if a.get("order_check_summary"):
        head = "**Hidden structure: flagged.**" if int(a.get("order_check_flagged", 0) or 0) else "**Hidden structure.**"
        out.append(f"{head} {a['order_check_summary']}")
    return out
