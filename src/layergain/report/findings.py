"""Sentences of a run report, generated from its numbers: findings, methods, data.

Nothing here is hard-coded about a result: every claim is chosen by a rule on the numbers
(significance after correction, the sign of an interval, an equality) and states its estimate,
interval and corrected p-value. A function returns ``None`` or ``[]`` when it has nothing to say.
"""

from __future__ import annotations

import numpy as np

from layergain.report import fmt
from layergain.report.fmt import est_ci, interval_name, p_is
from layergain.report.summary import RunSummary, json_attr

__all__ = ["data_text", "layer_runs", "methods", "run_findings"]


def layer_runs(names: list[str], mask) -> str:
    """Selected layers as runs of neighbours: ```a`–`c`, `e` and `g```."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    runs: list[list[int]] = []
    for j in idx:
        if runs and j == runs[-1][-1] + 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    parts = [f"`{names[r[0]]}`" if len(r) == 1 else f"`{names[r[0]]}`–`{names[r[-1]]}`" for r in runs]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _ci_words(s: RunSummary) -> str:
    return f"{fmt.level(s.confidence)} CI"


def _gain_at(s: RunSummary, j: int) -> str:
    """``+0.217 [95 % CI +0.100, +0.317], p(Holm) = 0.018, Cohen's h = 0.55``."""
    return (
        f"{fmt.signed(s.gain[j])} [{_ci_words(s)} {fmt.signed(s.gain_ci[j, 0])}, "
        f"{fmt.signed(s.gain_ci[j, 1])}], "
        f"Holm-adjusted {p_is(s.p_holm[j])}, Cohen's h = {fmt.signed(s.cohen_h[j], 2)}"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _significance(s: RunSummary) -> list[str]:
    L = len(s.layers)
    sig, neg = s.significant, s.significant_negative
    out = []
    if sig.any():
        j = int(np.flatnonzero(sig)[np.argmax(s.gain[sig])])
        out.append(
            f"**Pretraining gives a significant gain at {sig.sum()} of {L} layers** "
            f"({layer_runs(s.layers, sig)}; "
            f"two-sided paired sign-flip test, Holm-adjusted p ≤ {s.alpha:g}). The largest significant gain "
            "is at "
            f"`{s.layers[j]}`: {_gain_at(s, j)} (pretrained {fmt.num(s.acc_pre[j])}, random mean "
            f"{fmt.num(s.acc_rand[j])})."
        )
    else:
        finite = np.where(np.isfinite(s.p_holm), s.p_holm, np.inf)
        k = int(np.argmin(finite))
        j = int(np.nanargmax(s.gain))
        out.append(
            f"**No layer has a significant gain** after Holm correction across the {L} layers (smallest "
            "adjusted "
            f"{p_is(s.p_holm[k])}, at `{s.layers[k]}`). The largest estimate is at `{s.layers[j]}`: "
            f"{_gain_at(s, j)}."
        )
    excludes = (np.round(s.gain_ci[:, 0], 3) > 0) & ~sig  # as shown: +0.000 does not exclude 0
    if excludes.any():
        out.append(
            f"At {_plural(int(excludes.sum()), 'layer')} ({layer_runs(s.layers, excludes)}) the "
            f"{_ci_words(s)} of the "
            f"gain excludes 0 but the Holm-adjusted test does not reach {s.alpha:g}: the intervals are per "
            "layer, "
            "not adjusted for multiplicity."
        )
    if neg.any():
        j = int(np.flatnonzero(neg)[np.argmin(s.gain[neg])])
        out.append(
            f"**The random baseline beats the pretrained network** at {layer_runs(s.layers, neg)} "
            f"(largest at `{s.layers[j]}`: {_gain_at(s, j)})."
        )
    return out


def _secondary(s: RunSummary) -> str | None:
    bh = np.nan_to_num(s.p_bh, nan=1.0) <= s.alpha
    tt = np.nan_to_num(s.ttest_p_holm, nan=1.0) <= s.alpha
    if np.all(np.isnan(s.p_bh)) and np.all(np.isnan(s.ttest_p_holm)):
        return None

    def where(mask) -> str:
        return f"{mask.sum()} of {len(s.layers)} layers" + (
            f" ({layer_runs(s.layers, mask)})" if mask.any() else ""
        )

    return (
        f"Secondary tests at level {s.alpha:g}: Benjamini–Hochberg (FDR) on the sign-flip p-values flags "
        f"{where(bh)}; the Nadeau–Bengio corrected resampled t-test over CV folds, Holm-adjusted, flags "
        f"{where(tt)}."
    )


def _trend(s: RunSummary) -> str | None:
    ds = s.ds
    if "gain_trend_slope" not in ds:
        return None
    slope = float(ds["gain_trend_slope"])
    if np.isnan(slope):
        why = ds["gain_trend_slope"].attrs.get("nan_reason", "not computable")
        return f"**Depth trend not computed**: {why}."
    lo, hi = (float(v) for v in ds["gain_trend_slope_ci"].values)
    if lo > 0:
        head = "**Gain rises with depth**"
    elif hi < 0:
        head = "**Gain falls with depth**"
    else:
        head = "**No clear depth trend in the gain**"
    method = interval_name(ds["gain_trend_slope"].attrs.get("bootstrap_interval", s.interval))
    return (
        f"{head}: OLS slope of gain on relative depth (0 = first probe layer, 1 = last) "
        f"{est_ci(slope, lo, hi)} "
        f"({_ci_words(s)}, {method} bootstrap; bootstrap {p_is(float(ds['gain_trend_slope_p']))}), i.e. the "
        "gain "
        f"changes by about {fmt.signed(slope)} from the first to the last layer; Spearman's ρ = "
        f"{fmt.signed(float(ds['gain_trend_spearman_rho']), 2)} "
        f"({p_is(float(ds['gain_trend_spearman_p']))}). "
        "One test, no correction."
    )


def _sweet_spot(s: RunSummary) -> str | None:
    if s.sweet < 0 or s.best < 0:
        return None
    b, w = s.best, s.sweet
    best = (
        f"`{s.layers[b]}` ({fmt.params(s.params[b])} parameters, accuracy "
        f"{est_ci(s.acc_pre[b], *s.acc_pre_ci[b], sign=False)})"
    )
    if len(s.layers) == 1:
        return f"**One probe layer** ({best}): no sweet spot to look for."
    if w == b:
        return (
            f"**Sweet spot = best layer**: the best pretrained layer is {best}, and every shallower layer is "
            f"significantly below it (one-sided paired sign-flip, Holm-adjusted p ≤ {s.alpha:g})."
        )
    p_sweet = s.ds["sweet_spot_p_holm"].values[w] if "sweet_spot_p_holm" in s.ds else np.nan
    ratio = s.params[b] / s.params[w] if s.params[w] else np.nan
    times = f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"
    return (
        f"**Sweet spot: `{s.layers[w]}`** ({fmt.params(s.params[w])} parameters, {times} fewer than the best "
        "layer), the shallowest cut whose pretrained accuracy, "
        f"{est_ci(s.acc_pre[w], *s.acc_pre_ci[w], sign=False)}, is "
        f"not significantly below that of the best layer {best} (one-sided paired sign-flip, Holm-adjusted "
        f"{p_is(p_sweet)}). Not significantly lower is not the same as equivalent: the difference is "
        f"{fmt.signed(s.acc_pre[w] - s.acc_pre[b])}."
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
        out.append(
            f"**The random baseline collapses to chance** at {layer_runs(s.layers, near)}: its "
            f"{_ci_words(s)} reaches "
            f"the majority-class rate ({fmt.num(chance)}). There the gain says as much about the collapse of "
            "randomly "
            "initialised features under global pooling as about pretraining."
        )
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
            f"**{names} {verb} n/a** {scope} at {_plural(len(layers), 'layer')} "
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
        f"**{_plural(len(skipped), 'image')} could not be read and {verb} left out** of every number: {shown}"
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
        parts.append(f"{_plural(sum(odd.values()), 'image')} were not RGB ({listed}) and were converted to RGB")
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
        f"{_plural(n, 'probe fit')} did not converge within the iteration limit "
        f"({s.attrs.get('probe', '')}); "
        "their predictions are used as they are."
    )


def _files(a: dict) -> str:
    formats = json_attr(a, "image_formats", {}) or {}
    kinds = formats.get("kinds", {})
    if not kinds:
        return ""
    lo, hi = formats.get("min_size"), formats.get("max_size")
    size = "" if not lo else (f", {lo[0]} × {lo[1]} px" if lo == hi else f", {lo[0]} × {lo[1]} to {hi[0]} × {hi[1]} px")
    return "; files: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + size


def _test_resolution(s: RunSummary) -> str | None:
    """Say when an exact sign-flip test over few groups bounds what Holm can reach.

    With G groups the exact test has 2^G sign patterns and no two-sided p-value below 2 / 2^G;
    Holm multiplies the smallest by the number of layers. Said when that floor is within a
    factor 10 of the level, with the layers it keeps from significance.
    """
    attrs = s.ds["gain_p"].attrs if "gain_p" in s.ds else {}
    patterns = int(attrs.get("n_resamples", 0) or 0)
    if not int(attrs.get("exact", 0) or 0) or attrs.get("resampling_unit") != "group" or patterns < 2:
        return None
    L = int(np.isfinite(s.p).sum())
    floor = 2.0 / patterns
    if floor * L <= s.alpha / 10:
        return None
    held = (np.nan_to_num(s.p, nan=1.0) <= s.alpha) & ~s.significant & ~s.significant_negative
    groups = int(round(np.log2(patterns)))
    text = (
        f"**The test's resolution is limited by the number of groups**: the sign-flip test resamples "
        f"{groups} groups (`{s.attrs.get('group_column', '')}`) exactly, {patterns} sign patterns, so no "
        f"two-sided p-value falls below 2/{patterns} = {fmt.num(floor, 4)} and Holm over {L} layers "
        f"below {fmt.num(floor * L, 3)}."
    )
    if held.any():
        text += (
            f" {_plural(int(held.sum()), 'layer')} ({layer_runs(s.layers, held)}) "
            f"{'has' if held.sum() == 1 else 'have'} an unadjusted p ≤ {s.alpha:g} but not a Holm-adjusted one; "
            "more groups (slides, patients) would resolve them."
        )
    return text


def run_findings(s: RunSummary) -> list[str]:
    """The findings list of a run report, most important first."""
    items = _significance(s)
    items += [t for t in (_test_resolution(s),) if t]
    items += [t for t in (_secondary(s), _trend(s), _sweet_spot(s)) if t]
    items += _random_baseline(s)
    items += [t for t in (_similarity(s),) if t]
    items += _nan_measures(s)
    items += [t for t in (_convergence(s), _formats(s)) if t]
    items.append(_skipped(s))
    return items


# --------------------------------------------------------------------------- methods and data


def _versions(a: dict) -> str:
    versions = json_attr(a, "versions", {}) or {}
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v)


def methods(s: RunSummary) -> list[str]:
    """Methods paragraphs, every setting included, citable as they are."""
    a, ds = s.attrs, s.ds
    K = len(s.class_names)
    grouped = bool(a.get("group_column")) and int(a.get("n_groups", 0) or 0) > 0
    grouping = (
        f"grouped by `{a.get('group_column')}` ({a.get('n_groups')} groups), so that no group is split "
        "across folds"
        if grouped
        else "without grouping (no patient or slide ids)"
    )
    seeds = s.seeds
    sign = ds["gain_p"].attrs if "gain_p" in ds else {}
    boot = ds["gain_ci"].attrs
    unit = boot.get("resampling_unit", "image")
    strat = boot.get("stratified_by", "")
    strat_text = "not stratified" if strat in ("", "none") else f"stratified by {strat}"
    weights = a.get("weights_source", "")
    sha = a.get("weights_sha256", "")
    first, last = s.layers[0], s.layers[-1]
    p1 = (
        f"**Data and networks.** We used {a.get('n_images')} images of `{a.get('dataset')}` in {K} classes "
        f"({', '.join(f'{c}: {n}' for c, n in s.class_counts.items())}){_files(a)}. Each image was resized to "
        f"{a.get('image_size')} × {a.get('image_size')} px ({a.get('resize', '')}) and normalised with mean "
        f"{_fmt_list(a.get('input_mean'))} and sd {_fmt_list(a.get('input_std'))}. The backbone "
        f"`{a.get('backbone')}` was used with ImageNet-pretrained weights ({weights}; SHA-256 `{sha}`) and, "
        "as the "
        f"baseline, {len(seeds)} copies with random weights (seeds {', '.join(map(str, seeds))}; "
        f"{a.get('random_init', '')}). Features were taken at {len(s.layers)} probe layers, from `{first}` "
        "to "
        f"`{last}`, and pooled per channel ({_pooling(a.get('pooling'))})."
    )
    p2 = (
        f"**Probes and gain.** For every network and layer a linear probe ({a.get('probe', '')}) was trained "
        "and "
        f"evaluated with {a.get('folds')}-fold cross-validation ({a.get('cv', '')}), {grouping}, "
        f"{_repeats(a.get('repeats'))}; all networks saw the same folds. Accuracy is the out-of-fold "
        "proportion "
        "correct. The knowledge gain of a layer is the pretrained accuracy minus the mean accuracy of the "
        "random "
        "networks; the relative gain divides it by the random networks' mean error."
    )
    p3 = (
        f"**Statistics.** {fmt.level(s.confidence)} confidence intervals come from a hierarchical bootstrap "
        f"({interval_name(s.interval)} interval, B = {s.n_boot}) resampling {unit}s "
        f"({boot.get('n_units', '')} units, "
        f"{strat_text}) and, independently, the {boot.get('n_seeds', len(seeds))} random seeds. The gain of "
        "each "
        "layer was tested with a two-sided paired sign-flip permutation test on "
        f"per-{sign.get('resampling_unit', unit)} "
        "differences (pretrained correct minus mean random correct; "
        f"{sign.get('n_resamples', a.get('n_permutations'))} "
        f"{'enumerated sign patterns' if int(sign.get('exact', 0) or 0) else 'random sign flips'}), with "
        "Holm "
        f"correction across the {len(s.layers)} layers (primary) and Benjamini–Hochberg (secondary). Also "
        "reported: "
        "exact McNemar tests of the pretrained network against each random seed, the corrected resampled "
        "t-test of "
        "Nadeau and Bengio (2003) across CV folds (Holm), Cohen's h for the two accuracies and Cohen's d_z "
        "for the "
        "per-image differences. The depth trend is the OLS slope of gain on relative depth with a bootstrap "
        "CI, and "
        "Spearman's ρ. The sweet spot is the shallowest layer whose pretrained accuracy is not significantly "
        "below "
        f"the best layer's (one-sided paired sign-flip, Holm, α = {s.alpha:g}). Significance means "
        "Holm-adjusted "
        f"p ≤ {s.alpha:g}."
    )
    sims = [m.method for m in s.measures.values() if m.method]
    p4 = (
        "**Similarity.** Between each pretrained layer and the same layer of each random network: "
        + "; ".join(sims)
        + ". The reference is the same measure between every pair of random networks; cross-layer CKA "
        "matrices "
        "compare every pretrained layer with every random layer."
    )
    p5 = (
        f"**Software.** {_versions(a)}. Resampling seed {a.get('seed', '')}. The command line, timings and "
        "creation time are stored in results.nc (attributes `command`, `timings_s`, `created`)."
    )
    return [p1, p2, p3, p4, p5]


def _repeats(repeats) -> str:
    r = int(repeats or 1)
    return "run once" if r == 1 else f"repeated {r} times with new fold assignments"


def _fmt_list(value) -> str:
    if value is None or value == "":
        return "n/a"
    return "(" + ", ".join(f"{float(v):g}" for v in np.atleast_1d(value)) + ")"


def _pooling(pooling) -> str:
    return {
        "avg": "global average pooling",
        "max": "global max pooling",
        "avgmax": "global average and max pooling, concatenated",
    }.get(str(pooling), str(pooling))


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
    return out
