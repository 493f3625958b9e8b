"""The methods sections of the reports: every setting of a run or a comparison in citable prose.

:func:`run_methods` reads a :class:`~layergain.report.summary.RunSummary`,
:func:`comparison_methods` a :class:`~layergain.report.compare_summary.ComparisonSummary`; like
the findings, every sentence is built from the results file's numbers and attrs.
"""

from __future__ import annotations

import numpy as np

from layergain.report import fmt
from layergain.report.compare_summary import ComparisonSummary
from layergain.report.fmt import layer_runs, plural
from layergain.report.summary import RunSummary, int_list, json_attr

__all__ = ["comparison_methods", "run_methods"]


# --------------------------------------------------------------------------- run

def _files(a: dict) -> str:
    formats = json_attr(a, "image_formats", {}) or {}
    kinds = formats.get("kinds", {})
    if not kinds:
        return ""
    lo, hi = formats.get("min_size"), formats.get("max_size")
    size = "" if not lo else (f", {lo[0]} × {lo[1]} px" if lo == hi else f", {lo[0]} × {lo[1]} to {hi[0]} × {hi[1]} px")
    return "; files: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + size


def _versions(a: dict) -> str:
    versions = json_attr(a, "versions", {}) or {}
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v)


def run_methods(s: RunSummary) -> list[str]:
    """Methods paragraphs, every setting included, citable as they are."""
    a = s.attrs
    K = len(s.class_names)
    grouped = bool(a.get("group_column")) and int(a.get("n_groups", 0) or 0) > 0
    grouping = (
        f"grouped by `{a.get('group_column')}` ({a.get('n_groups')} groups), so that no group is split "
        "across folds"
        if grouped
        else "without grouping (no patient or slide ids)"
    )
    seeds = s.seeds
    weights = a.get("weights_source", "")
    sha = a.get("weights_sha256", "")
    first, last = s.layers[0], s.layers[-1]
    if a.get("features_source"):
        return _external_methods(s, grouping, seeds)
    p1 = (
        f"**Data and networks.** We used {a.get('n_images')} images of `{a.get('dataset')}` in {K} classes "
        f"({', '.join(f'{c}: {n}' for c, n in s.class_counts.items())}){_files(a)}. Each image was resized to "
        f"{a.get('image_size')} × {a.get('image_size')} px ({a.get('resize', '')}) and normalised with mean "
        f"{_fmt_list(a.get('input_mean'))} and sd {_fmt_list(a.get('input_std'))}. The backbone "
        f"`{a.get('backbone')}` was used with ImageNet-pretrained weights ({weights}; SHA-256 `{sha}`) and, "
        "as the "
        f"baseline, {len(seeds)} copies with random weights (seeds {', '.join(map(str, seeds))}; "
        f"{_baseline(a)}{a.get('random_init', '')}). Features were taken at {len(s.layers)} probe layers, from "
        f"`{first}` to `{last}`, and read out by {_readout(a)}."
    )
    return [p1, *_probes_and_rest(s, grouping)]


def _external_methods(s: RunSummary, grouping: str, seeds) -> list[str]:
    """Methods of a run from features computed elsewhere: what the features' file says of them."""
    a = s.attrs
    K = len(s.class_names)
    size = int(a.get("image_size") or 0)
    p1 = (
        f"**Data and features.** We used {a.get('n_images')} images of `{a.get('dataset')}` in {K} classes "
        f"({', '.join(f'{c}: {n}' for c, n in s.class_counts.items())}), labels and groups from the "
        f"{a.get('data_source', '')}. Their features were computed elsewhere and read from "
        f"`{a.get('features_source')}`: backbone `{a.get('backbone')}` "
        f"({a.get('weights_source', 'weights not recorded')}), "
        + (f"images at {size} × {size} px, " if size else "image size not recorded, ")
        + f"{len(s.layers)} probe layers from `{s.layers[0]}` to `{s.layers[-1]}`, read out by {_readout(a)}, "
        f"and {len(seeds)} random networks (seeds {', '.join(map(str, seeds))}; {_baseline(a)}"
        f"{a.get('random_init', '')}). The file's metadata is stored in results.nc (attribute `features_meta`)."
    )
    return [p1, *_probes_and_rest(s, grouping)]


def _probes_and_rest(s: RunSummary, grouping: str) -> list[str]:
    """The paragraphs after the first: probes and gain, statistics, similarity, software."""
    a = s.attrs
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
    p3 = _run_statistics(s)
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
    return [p2, p3, p4, *_inference_methods(s), *_transferability_methods(s), p5]


def _inference_methods(s: RunSummary) -> list[str]:
    """Similarity with inference: the difference, its two variance parts, interval and test (from the attrs)."""
    if not s.differences:
        return []
    first = next(iter(s.differences.values()))
    a = first.attrs
    labels = ", ".join(d.label for d in s.differences.values())
    n_random = int(a.get("n_random", s.n_random) or 0)
    return [
        f"**Similarity with inference.** For {labels} (mutual k-NN with k = {a.get('k', '')}), per layer: "
        f"{a.get('method', '')}. {fmt.count(a.get('n_boot'))} image resamples, "
        f"{fmt.level(a.get('confidence', s.confidence))} two-sided intervals, {n_random} random networks; "
        "the one-sided p-values are per layer and unadjusted across layers. Random stream "
        f"`similarity_inference` of the run's seed {s.attrs.get('seed', '')}."
    ]


def _transferability_methods(s: RunSummary) -> list[str]:
    """The transferability estimators (each's method) and Kendall's tau with its bootstrap interval."""
    t = s.transfer
    if t is None:
        return []
    estimators = "; ".join(t.methods[e] for e in t.estimators if t.methods.get(e))
    a = t.tau_attrs
    return [
        f"**Transferability.** For every network and layer, from its features and the labels: {estimators}. "
        "Whether they track the probe: Kendall's τ across layers between each estimator on the pretrained "
        "network and its probe accuracy, and between each estimator's pretrained-minus-mean-random difference "
        f"and the gain ({a.get('method', '')}; {fmt.count(a.get('n_boot'))} draws, "
        f"{fmt.level(a.get('confidence', s.confidence))} percentile intervals, resampling {a.get('resampled', '')}). "
        "Layers are the units of τ and are not resampled; the estimators are not recomputed per draw, so the "
        "intervals are conditional on their values on these images. Random stream `transferability` of the "
        f"run's seed {s.attrs.get('seed', '')}."
    ]


def _run_statistics(s: RunSummary) -> str:
    """The statistics paragraph: populations, interval, tests and corrections, sweet spot, trend."""
    a = s.attrs
    L, S_ = len(s.layers), s.n_seeds
    level = fmt.level(s.confidence)
    if s.unit == "group":
        units = (
            f"its {s.units_text()}, the units of resampling (a {s.unit}'s images move together; not "
            "stratified)"
        )
    else:
        units = f"its {s.units_text()}, each image a unit of resampling"
    target = f" Target of the gain: the {s.target}." if s.target else ""
    text = (
        f"**Statistics.** Every interval and test speaks about two populations at once: the images of "
        f"`{a.get('dataset')}`, represented by {units}, and the random initialisations of "
        f"`{a.get('backbone')}`, represented by {plural(S_, 'seed')}.{target} The variance of each "
        f"estimate is the sum of a part from the {s.unit}s (CR2 leverage-corrected contributions, "
        f"Bell & McCaffrey 2002; {s.units_df or 'n/a'}) and a part from the random seeds ({S_ - 1} df), "
        "the network-by-image noise counted once; the interval is a generalised pivotal quantity "
        "(Weerahandi 1993) that draws each part's chi-square at its own degrees of freedom "
        f"({fmt.count(s.n_draws)} Monte Carlo draws), so few {s.unit}s or few seeds give wide intervals "
        f"rather than wrong ones. {level} CIs are pointwise (per layer). The primary test of each layer's "
        "gain is two-sided and reads the same draws as its interval, so 0 lies outside the CI exactly "
        f"when p < {1 - s.confidence:.2g}. Family-wise error over the {L} layers is controlled by the "
        "minP step-down over the layers' joint draws (max-T; Westfall & Young 1993), which uses the "
        "dependence between layers; the same draws give a simultaneous "
        f"{level} band over the layers. Holm and Benjamini–Hochberg adjustments of the same p-values are "
        "secondary. Also reported: exact McNemar tests of the pretrained network against each random seed, "
        "unadjusted and conditional on that seed; the corrected resampled t-test of Nadeau and Bengio "
        "(2003) across CV folds (Holm; conditional on the drawn seeds); Cohen's h for the two accuracies "
        "and Cohen's d_z for the per-image differences. The depth trend is the OLS slope of the gains on "
        "relative depth, a contrast of the same model with its CI and p; Spearman's ρ of gain and depth "
        "is descriptive only (the layers are not independent observations). "
        f"{_sweet_spot_method(s)} Significance means a max-T-adjusted p ≤ {s.alpha:g}."
    )
    return text


def _sweet_spot_method(s: RunSummary) -> str:
    level = fmt.level(s.confidence)
    text = (
        "The sweet spot is the shallowest layer shown non-inferior to the best: for every pair of "
        f"layers a {level} simultaneous lower bound of the difference in pretrained accuracy (a critical "
        "value over all pairs, so the choice of the best layer on the same data is accounted for; Hsu "
        f"1996), and a layer qualifies when its bounds against every other layer lie above −{s.margin:g} "
        f"(the margin, {100 * s.margin:g} percentage points)."
    )
    if s.sweet < 0 and len(s.layers) > 1:
        text += f" Here it is undetermined, because {s.sweet_reason or 'no reason was recorded'}."
    return text


def _repeats(repeats) -> str:
    r = int(repeats or 1)
    return "run once" if r == 1 else f"repeated {r} times with new fold assignments"


def _fmt_list(value) -> str:
    if value is None or value == "":
        return "n/a"
    return "(" + ", ".join(f"{float(v):g}" for v in np.atleast_1d(value)) + ")"


def _readout(a: dict) -> str:
    """The readout of a run: its recorded description (``readout``), or the pooling of older files."""
    if a.get("readout_description"):
        return f"{a['readout_description']} (readout `{a.get('readout')}`)"
    return {
        "avg": "global average pooling per channel",
        "max": "global max pooling per channel",
        "avgmax": "global average and max pooling per channel, concatenated",
    }.get(str(a.get("pooling")), str(a.get("pooling")))


def _baseline(a: dict) -> str:
    baseline = a.get("baseline")
    return f"random baseline `{baseline}`: " if baseline else ""


# --------------------------------------------------------------------------- comparison

# What a gain is about, by the comparison's `statistics_target` (see layergain.stats.gain_statistics).
_TARGET = {
    "draw": "the gain of pretraining over the distribution of random initialisations, the pretrained network "
    "counted as one draw with the random networks' network-to-network spread",
    "fixed": "the gain of this pretrained network over the distribution of random initialisations",
}


def comparison_methods(v: ComparisonSummary) -> list[str]:
    """Methods paragraphs of a comparison: the shared design, the statistics, the software."""
    a = v.ds.attrs
    seeds = int_list(a.get("seeds", []))
    return [
        (
            f"**Comparison.** {len(v.sets)} image sets ({', '.join(f'`{n}`' for n in v.sets)}) were analysed "
            f"with the same backbone `{a.get('backbone', '')}` (pretrained weights SHA-256 "
            f"`{a.get('weights_sha256', '')}`), the same {len(v.layers)} probe layers and the same "
            f"{len(seeds)} random-weight networks (seeds {', '.join(map(str, seeds))}), so a random network is "
            "the same network for every set."
        ),
        _comparison_statistics(v),
        "**Software.** "
        + _versions(a)
        + f". Seed of the Monte Carlo draws {a.get('seed', '')}. The command line and creation time are stored in "
        "comparison.nc "
        "(attributes `command`, `created`).",
    ]


def _comparison_statistics(v: ComparisonSummary) -> str:
    """The statistics paragraph: the population of each number, the interval, the draws, the tests."""
    a = v.ds.attrs
    n_seeds = len(int_list(a.get("seeds", [])))
    images = {r.get("dataset"): r.get("n_images") for r in json_attr(a, "runs", []) or []}
    units = "; ".join(
        f"`{name}`: {v.units(name)}"
        + (f" of its {images[name]} images" if v.unit_kind.get(name) == "group" and images.get(name) else "")
        for name in v.sets
    )
    target = str(a.get("statistics_target", ""))
    floor = f"1/n_draws = {1.0 / v.n_draws:.2g}" if v.n_draws else "1/n_draws"
    depth = a.get("deep_min_relative_depth", "")
    kinds = set(v.unit_kind.values())
    df = [
        *(["G − 1 for sets resampled by group (CR2)"] if "group" in kinds else []),
        *(["images − classes for sets resampled by image (stratified by class)"] if "image" in kinds else []),
        f"S − 1 = {max(n_seeds - 1, 0)} for the seeds",
    ]
    return (
        "**Statistics.** Each number speaks about two populations: the images of each set's source, "
        f"represented by that set's resampling units ({units}), independent between sets; and the random "
        f"initialisations of `{a.get('backbone', '')}`, represented by the {n_seeds} random seeds shared by "
        "every set, so a difference of gain between sets carries the seeds' spread of that difference. "
        f"Target: {_TARGET.get(target, target)}. Intervals and tests: {a.get('interval', '')} (CR2 leverage "
        f"correction; degrees of freedom: {'; '.join(df)}); "
        f"pointwise {v.level} intervals and two-sided p-values from {fmt.count(v.n_draws)} Monte Carlo draws "
        f"of that reference (n_draws; no p-value is below {floor}). Gain per set and layer: test of gain = "
        f"0, max-T-adjusted (minP step-down, Westfall & Young 1993) family-wise over the {len(v.layers)} "
        'layers of each set (primary; stars and "significant"), Holm over the same layers as a secondary '
        "column. Does the gain differ between sets: Wald test of equal gains in all K = "
        f"{len(v.sets)} sets, statistic W with K − 1 = {len(v.sets) - 1} df, small-sample (generalised "
        "pivotal) reference instead of χ², max-T-adjusted over the layers (primary), Holm secondary. "
        f"Pairwise differences of gain: max-T-adjusted family-wise over all {v.n_pairs()} × "
        f"{len(v.layers)} layers (primary), Holm secondary. Depth slopes: OLS slope of gain on relative depth; "
        "their pairwise differences Holm-adjusted over the pairs. "
        f"Deep layers: relative depth ≥ {depth} ({layer_runs(v.layers, v.deep)}). Significance level α = "
        f"{v.alpha:g}."
    )
