"""The numbers a run's report shows, read once from its results Dataset.

Every figure, table and sentence of a run report takes its numbers from :class:`RunSummary`, so
the three never disagree. Nothing here computes a new statistic: it selects, averages over the
random seeds (the baseline is their mean, as in the gain) and reads settings from attrs. Reports are
built from results as read from their file (:func:`layergain.results.io.load_results`: the pipeline
writes results.nc, reads it back and reports from that), so a report written by a run and one
rebuilt from its results.nc are the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from layergain.report.fmt import plural
from layergain.results import schema as S
from layergain.results.io import decode_attr

__all__ = [
    "DEFAULT_ALPHA",
    "Difference",
    "RunSummary",
    "Transferability",
    "json_attr",
    "layer_reasons",
    "nan_reasons",
    "plain_attrs",
    "summarise_run",
]

#: Significance level where the results do not record one (sweet spot, and "significant" in text).
DEFAULT_ALPHA = 0.05
SIMILARITY = ("cka_linear", "cka_debiased", "svcca", "pwcca", "cka_rbf")


def plain_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy whose attrs (Dataset and variables) hold Python scalars and lists, not numpy's."""
    ds = ds.copy()
    ds.attrs = _plain(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = _plain(ds[name].attrs)
    return ds


def _plain(attrs: dict) -> dict:
    """numpy scalars to Python scalars, arrays to lists (netCDF gives back either)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def json_attr(attrs: dict, key: str, default=None):
    """An attr that holds JSON (lists, dicts) as a Python value; ``default`` when absent or empty."""
    return decode_attr(attrs.get(key, ""), default)


def int_list(value) -> list[int]:
    """``seeds``-like attrs: a list, a scalar (one element after netCDF) or a JSON string."""
    return [int(v) for v in np.atleast_1d(decode_attr(value, []))]


def nan_reasons(var: xr.DataArray) -> dict[str, dict[str, str]]:
    """``{layer: {init or pair: reason}}`` from a variable's ``nan_reason`` attr."""
    reasons = json_attr(var.attrs, "nan_reason", {}) or {}
    return reasons if isinstance(reasons, dict) else {}


def layer_reasons(*variables: xr.DataArray | None) -> dict[str, str]:
    """``{layer: reason}`` from the ``nan_reason`` attrs of statistics variables (first one wins).

    The statistics store ``{layer: reason}`` (a reason per layer where no calibrated statement
    could be made); the similarity measures ``{layer: {init: reason}}``, read by :func:`nan_reasons`.
    """
    out: dict[str, str] = {}
    for var in variables:
        if var is None:
            continue
        reasons = json_attr(var.attrs, "nan_reason", {}) or {}
        if isinstance(reasons, dict):
            for layer, reason in reasons.items():
                out.setdefault(str(layer), str(reason))
    return out


def _nanstat(fn, values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        return fn(values, axis=axis)


@dataclass
class Measure:
    """A similarity measure at every layer: pretrained vs random seeds, and random vs random."""

    name: str
    label: str
    mean: np.ndarray  # (layer,) mean over random seeds
    low: np.ndarray  # min over seeds
    high: np.ndarray  # max over seeds
    rr_mean: np.ndarray  # random-vs-random, mean over pairs (NaN without pairs)
    rr_low: np.ndarray
    rr_high: np.ndarray
    reasons: dict = field(default_factory=dict)  # layer -> {init: reason}
    method: str = ""


@dataclass
class Difference:
    """Similarity with inference at every layer: pretrained-vs-random minus random-vs-random."""

    name: str
    label: str
    difference: np.ndarray  # (layer,)
    ci: np.ndarray  # (layer, 2)
    p: np.ndarray  # one-sided: pretrained-vs-random less similar than random-vs-random
    pretrained_random: np.ndarray
    random_random: np.ndarray
    higher_is_similar: bool  # False for a distance (a positive difference is "less similar")
    reasons: dict = field(default_factory=dict)  # layer -> reason
    attrs: dict = field(default_factory=dict)  # how it was made (method, n_boot, confidence, …)


@dataclass
class Transferability:
    """The transferability estimators per (init, layer) and Kendall's tau of each across layers."""

    estimators: list[str]
    labels: dict[str, str]  # estimator -> its label
    methods: dict[str, str]  # estimator -> how it is computed
    pretrained: np.ndarray  # (estimator, layer): the pretrained network's value
    difference: np.ndarray  # (estimator, layer): pretrained minus mean random
    reasons: dict[str, dict]  # estimator -> {layer: {init: reason}}
    tau_accuracy: np.ndarray  # (estimator,)
    tau_accuracy_ci: np.ndarray  # (estimator, 2)
    tau_gain: np.ndarray
    tau_gain_ci: np.ndarray
    n_layers: np.ndarray
    tau_reasons: dict[str, str]  # estimator (or a variable) -> why its tau is n/a
    tau_attrs: dict  # method, n_boot, confidence, resampled


#: Labels of the similarity-with-inference measures and the transferability estimators.
DIFFERENCE_LABELS = {
    "cka_debiased": "debiased CKA",
    "cka_linear": "linear CKA",
    "mutual_knn": "mutual k-NN alignment",
    "angular_shape": "angular shape distance",
    "rsa": "RSA",
}
ESTIMATOR_LABELS = {
    "logme": "LogME",
    "hscore": "H-score",
    "nleep": "N-LEEP",
    "gbc": "GBC",
    "transrate": "TransRate",
    "knn_accuracy": "kNN accuracy",
    "ncc_accuracy": "NCC accuracy",
}


def _differences(ds: xr.Dataset, n_layers: int) -> dict[str, Difference]:
    """Every measure with a ``<m>_difference`` variable (none in files written before it existed)."""
    out = {}
    for name in DIFFERENCE_LABELS:
        var = name + "_difference"
        if var not in ds:
            continue
        p = ds.get(var + "_p")
        alternative = str(p.attrs.get("alternative", "")) if p is not None else ""
        reasons = json_attr(ds[var].attrs, "nan_reason", {}) or {}
        out[name] = Difference(
            name=name,
            label=DIFFERENCE_LABELS[name],
            difference=_var(ds, var, n_layers),
            ci=_ci(ds, var + "_ci", n_layers),
            p=_var(ds, var + "_p", n_layers),
            pretrained_random=_var(ds, name + "_pretrained_random", n_layers),
            random_random=_var(ds, name + "_random_random", n_layers),
            higher_is_similar="distance" not in alternative,
            reasons={str(k): str(v) for k, v in reasons.items()} if isinstance(reasons, dict) else {},
            attrs={k: v for k, v in ds[var].attrs.items() if k not in ("nan_reason", "long_name")},
        )
    return out


TRANSFER_PREFIX = "transfer_"


def _transferability(ds: xr.Dataset, layers: list[str]) -> Transferability | None:
    if "tau_gain" not in ds or S.ESTIMATOR not in ds.dims:
        return None
    names = [str(e) for e in ds[S.ESTIMATOR].values]
    kinds = ds["kind"].values
    pre, diff, reasons, methods = [], [], {}, {}
    for name in names:
        var = ds.get(TRANSFER_PREFIX + name)
        if var is None:
            pre.append(np.full(len(layers), np.nan))
            diff.append(np.full(len(layers), np.nan))
            continue
        v = var.transpose(S.INIT, S.LAYER).values.astype(float)
        pre.append(v[kinds == S.PRETRAINED][0])
        diff.append(v[kinds == S.PRETRAINED][0] - _nanstat(np.nanmean, v[kinds == "random"], 0))
        reasons[name] = nan_reasons(var)
        methods[name] = str(var.attrs.get("method", ""))
    tau_attrs = {k: v for k, v in ds["tau_gain"].attrs.items() if k != "nan_reason"}
    tau_reasons = json_attr(ds["tau_gain"].attrs, "nan_reason", {}) or {}

    def by_estimator(name: str) -> np.ndarray:
        return ds[name].values.astype(float)

    def ci(name: str) -> np.ndarray:
        return ds[name].transpose(S.ESTIMATOR, S.BOUND).sel({S.BOUND: list(S.BOUNDS)}).values.astype(float)

    return Transferability(
        estimators=names,
        labels={n: ESTIMATOR_LABELS.get(n, n) for n in names},
        methods=methods,
        pretrained=np.array(pre),
        difference=np.array(diff),
        reasons=reasons,
        tau_accuracy=by_estimator("tau_accuracy"),
        tau_accuracy_ci=ci("tau_accuracy_ci"),
        tau_gain=by_estimator("tau_gain"),
        tau_gain_ci=ci("tau_gain_ci"),
        n_layers=by_estimator("tau_n_layers") if "tau_n_layers" in ds else np.full(len(names), np.nan),
        tau_reasons={str(k): str(v) for k, v in tau_reasons.items()} if isinstance(tau_reasons, dict) else {},
        tau_attrs=tau_attrs,
    )


_LABELS = {
    "cka_linear": "linear CKA",
    "cka_debiased": "debiased CKA",
    "svcca": "SVCCA",
    "pwcca": "PWCCA",
    "cka_rbf": "RBF CKA",
}


@dataclass
class RunSummary:
    """Per-layer numbers and settings of one run (arrays are indexed by layer, shallow to deep)."""

    ds: xr.Dataset
    layers: list[str]
    params: np.ndarray
    relative_depth: np.ndarray
    seeds: list[int]
    n_random: int
    class_names: list[str]
    class_counts: dict[str, int]
    majority_rate: float
    acc_pre: np.ndarray
    acc_pre_ci: np.ndarray  # (layer, 2)
    acc_rand: np.ndarray  # mean over seeds
    acc_rand_sd: np.ndarray  # sd over seeds (ddof=1; NaN with one seed)
    acc_rand_low: np.ndarray
    acc_rand_high: np.ndarray
    acc_rand_ci: np.ndarray  # (layer, 2)
    gain: np.ndarray
    gain_ci: np.ndarray  # pointwise
    gain_band: np.ndarray  # (layer, 2), simultaneous over layers
    gain_se: np.ndarray
    gain_df: np.ndarray
    var_units: np.ndarray  # variance part from the images or groups
    var_seeds: np.ndarray  # variance part from the random initialisations
    rel_gain: np.ndarray
    rel_gain_ci: np.ndarray
    p: np.ndarray  # primary test, unadjusted
    p_maxt: np.ndarray  # primary family-wise adjustment (minP step-down over layers)
    p_holm: np.ndarray
    p_bh: np.ndarray
    ttest_p: np.ndarray
    ttest_p_holm: np.ndarray
    cohen_h: np.ndarray
    cohen_dz: np.ndarray
    alpha: float
    confidence: float
    unit: str  # "image" or "group": the resampling unit of the image population
    n_units: int
    units_df: str  # e.g. "7.9 df from 10 groups"
    stratified_by: str
    n_seeds: int  # random seeds the statistics saw
    n_draws: int
    target: str  # the population the gain speaks about
    gain_reasons: dict[str, str]  # layer -> why its inference is n/a
    margin: float  # non-inferiority margin of the sweet spot
    sweet_reason: str  # why the sweet spot is undetermined ("" when it is determined)
    sweet_lower: np.ndarray  # simultaneous lower bound against the strongest other layer
    sweet_lower_to_best: np.ndarray  # simultaneous lower bound against the best layer
    measures: dict[str, Measure]
    sweet: int
    best: int
    differences: dict[str, Difference] = field(default_factory=dict)  # similarity with inference, by measure
    transfer: Transferability | None = None  # transferability estimators and their tau table (None: not in the file)

    @property
    def significant(self) -> np.ndarray:
        """Layers with a positive gain whose max-T-adjusted p (family-wise over layers) is at most alpha."""
        return (np.nan_to_num(self.p_maxt, nan=1.0) <= self.alpha) & (self.gain > 0)

    @property
    def significant_negative(self) -> np.ndarray:
        return (np.nan_to_num(self.p_maxt, nan=1.0) <= self.alpha) & (self.gain < 0)

    @property
    def inference_na(self) -> np.ndarray:
        """Layers whose gain has no calibrated interval or test (NaN p or CI)."""
        return ~np.isfinite(self.p) | ~np.isfinite(self.gain_ci).all(axis=1)

    @property
    def random_near_chance(self) -> np.ndarray:
        """Layers whose random-baseline CI reaches down to the majority-class rate."""
        return np.nan_to_num(self.acc_rand_ci[:, 0], nan=np.inf) <= self.majority_rate

    @property
    def attrs(self) -> dict:
        return self.ds.attrs

    def units_text(self, extra: str = "") -> str:
        """``10 groups (`group`)`` or ``48 images (stratified by class)``, ``extra`` inside the brackets."""
        notes = []
        if self.unit == "group" and self.attrs.get("group_column", ""):
            notes.append(f"`{self.attrs.get('group_column')}`")
        if self.unit != "group" and self.stratified_by not in ("", "none"):
            notes.append(f"stratified by {self.stratified_by}")
        if extra:
            notes.append(extra)
        return plural(self.n_units, self.unit) + (f" ({'; '.join(notes)})" if notes else "")


def _ci(ds: xr.Dataset, name: str, n_layers: int) -> np.ndarray:
    if name not in ds:
        return np.full((n_layers, 2), np.nan)
    return ds[name].transpose(S.LAYER, S.BOUND).sel({S.BOUND: list(S.BOUNDS)}).values.astype(float)


def _var(ds: xr.Dataset, name: str, n_layers: int) -> np.ndarray:
    return ds[name].values.astype(float) if name in ds else np.full(n_layers, np.nan)


def _measure(ds: xr.Dataset, name: str, n_layers: int) -> Measure | None:
    if name not in ds:
        return None
    values = ds[name].transpose(S.INIT, S.LAYER).values.astype(float)
    rr = name + "_rr"
    if rr in ds and ds.sizes.get(S.PAIR, 0):
        pairs = ds[rr].transpose(S.PAIR, S.LAYER).values.astype(float)
    else:
        pairs = np.full((1, n_layers), np.nan)
    reasons = nan_reasons(ds[name])
    return Measure(
        name=name,
        label=_LABELS.get(name, name),
        mean=_nanstat(np.nanmean, values, 0),
        low=_nanstat(np.nanmin, values, 0),
        high=_nanstat(np.nanmax, values, 0),
        rr_mean=_nanstat(np.nanmean, pairs, 0),
        rr_low=_nanstat(np.nanmin, pairs, 0),
        rr_high=_nanstat(np.nanmax, pairs, 0),
        reasons=reasons,
        method=str(ds[name].attrs.get("method", "")),
    )


def _layer_index(ds: xr.Dataset, name: str, layers: list[str]) -> int:
    """Index of the layer a scalar variable names; -1 when absent or "" (undetermined)."""
    if name not in ds:
        return -1
    value = str(ds[name].values)
    return layers.index(value) if value in layers else -1


def summarise_run(ds: xr.Dataset) -> RunSummary:
    """Collect the report's numbers from a run's results (in memory or loaded from results.nc)."""
    ds = plain_attrs(ds)
    layers = [str(n) for n in ds[S.LAYER].values]
    n = len(layers)
    random = (
        ds["accuracy"].sel({S.INIT: ds["kind"] == "random"}).transpose(S.INIT, S.LAYER).values.astype(float)
    )
    class_names = [str(c) for c in ds[S.CLASS].values]
    counts = json_attr(ds.attrs, "class_counts", None)
    if not isinstance(counts, dict):
        labels = ds["label"].values
        counts = {c: int(np.sum(labels == k)) for k, c in enumerate(class_names)}
    total = sum(counts.values())
    inference = ds["gain_ci"].attrs
    sweet_attrs = ds["sweet_spot"].attrs if "sweet_spot" in ds else {}
    alpha = float(ds.attrs.get("alpha", DEFAULT_ALPHA))
    measures = {m: meas for m in SIMILARITY if (meas := _measure(ds, m, n)) is not None}
    return RunSummary(
        ds=ds,
        layers=layers,
        params=ds["params_to_layer"].values.astype(np.int64),
        relative_depth=ds["relative_depth"].values.astype(float),
        seeds=int_list(ds.attrs.get("seeds", [])),
        n_random=random.shape[0],
        class_names=class_names,
        class_counts={str(k): int(v) for k, v in counts.items()},
        majority_rate=max(counts.values()) / total if total else float("nan"),
        acc_pre=ds["accuracy"].sel({S.INIT: S.PRETRAINED}).values.astype(float),
        acc_pre_ci=_ci(ds, "accuracy_pretrained_ci", n),
        acc_rand=random.mean(axis=0),
        acc_rand_sd=random.std(axis=0, ddof=1) if random.shape[0] > 1 else np.full(n, np.nan),
        acc_rand_low=random.min(axis=0),
        acc_rand_high=random.max(axis=0),
        acc_rand_ci=_ci(ds, "accuracy_random_mean_ci", n),
        gain=_var(ds, "gain", n),
        gain_ci=_ci(ds, "gain_ci", n),
        gain_band=_ci(ds, "gain_band", n),
        gain_se=_var(ds, "gain_se", n),
        gain_df=_var(ds, "gain_df", n),
        var_units=_var(ds, "gain_var_images", n),
        var_seeds=_var(ds, "gain_var_seeds", n),
        rel_gain=_var(ds, "relative_gain", n),
        rel_gain_ci=_ci(ds, "relative_gain_ci", n),
        p=_var(ds, "gain_p", n),
        p_maxt=_var(ds, "gain_p_maxt", n),
        p_holm=_var(ds, "gain_p_holm", n),
        p_bh=_var(ds, "gain_p_bh", n),
        ttest_p=_var(ds, "gain_ttest_p", n),
        ttest_p_holm=_var(ds, "gain_ttest_p_holm", n),
        cohen_h=_var(ds, "gain_effect_size", n),
        cohen_dz=_var(ds, "gain_effect_size_paired", n),
        alpha=alpha,
        confidence=float(inference.get("confidence", ds.attrs.get("confidence", 0.95))),
        unit=str(inference.get("resampling_unit", "image")),
        n_units=int(inference.get("n_units", ds.attrs.get("n_images", 0)) or 0),
        units_df=str(inference.get("units_df", "")),
        stratified_by=str(inference.get("stratified_by", "")),
        n_seeds=int(inference.get("n_seeds", random.shape[0]) or 0),
        n_draws=int(inference.get("n_draws", ds.attrs.get("n_draws", 0)) or 0),
        target=str(inference.get("target", ds.attrs.get("statistics_target", ""))),
        gain_reasons=layer_reasons(*(ds.get(v) for v in ("gain_p", "gain_ci", "gain_se"))),
        margin=float(sweet_attrs.get("margin", ds.attrs.get("margin", float("nan")))),
        sweet_reason=str(sweet_attrs.get("undetermined", "")),
        sweet_lower=_var(ds, "sweet_spot_lower", n),
        sweet_lower_to_best=_var(ds, "sweet_spot_lower_to_best", n),
        measures=measures,
        sweet=_layer_index(ds, "sweet_spot", layers),
        best=_layer_index(ds, "best_layer", layers),
        differences=_differences(ds, n),
        transfer=_transferability(ds, layers),
    )
