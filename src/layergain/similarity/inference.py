r"""Similarity with inference: is pretrained-vs-random similarity lower than random-vs-random?

Per layer, with :math:`P` the pretrained network and :math:`R_1, \dots, R_S` random inits of the
same architecture, :math:`a_s = m(P, R_s)` and :math:`b_{st} = m(R_s, R_t)` for a measure
:math:`m`, the statistic is

.. math::

    D = \frac{1}{S} \sum_s a_s - \binom{S}{2}^{-1} \sum_{s<t} b_{st},

an unbiased estimate of :math:`\theta_P = E_s\, m(P, R_s) - E_{s \ne t}\, m(R_s, R_t)` for *this*
pretrained network (a fixed object) over the distribution of random inits, on images like these.

Two populations feed the spread of :math:`D`:

images
    Estimated by duplicate-free resampling of images: m-out-of-n subsampling without replacement
    (m = n // 2 by default; the CKA bootstrap's ``method="subsample"``, whose draws never pair an
    image with its own copy, which would inflate every measure here). The variance of a
    half-sample is rescaled to n images by :math:`m (n-1) / (n (n-m))` (finite-population
    correction of an asymptotically linear statistic).
seeds
    :math:`S \ge 3`: the delete-one-seed jackknife of :math:`D` (:math:`D` is a two-sample
    U-statistic in the seeds; the jackknife variance of a U-statistic is consistent and, if
    anything, conservative). :math:`S = 2`: one random pair, so the random-random term's own
    seed spread cannot be seen; under the additive model
    :math:`m_{jk} = \mu + u_j + u_k + \eta_{jk}` (network effects and pair noise)
    :math:`\operatorname{Var}(D \mid P) = \sigma_u^2 / S + \sigma_\eta^2 (S+1) / (S(S-1))
    \le \operatorname{Var}(a_s) (S+1) / (S(S-1))`, which is used (1 degree of freedom).
    :math:`S = 1`: no random-vs-random pair; the difference is NaN with that reason.

The seeds' spread seen on these images also contains the images' noise of each seed's value (the
seed-by-image interaction), which the image resampling counts as well: the sum
:math:`V = V_{img} + V_{seed}` counts it twice and errs wide. Taking the interaction off (measured
on the resamples, as :math:`MS_A + MS_B - MS_E` in a two-way random model) was measured too and
under-covered with 2 or 3 seeds (0.865 and 0.935 at 95 %), so it is not used. The interval is
:math:`D \pm q \sqrt{V}` with Banerjee's quantile
:math:`q = \sqrt{(V_{img} z^2 + V_{seed} t_{S-1}^2) / V}` (the seeds' part on its :math:`S - 1`
degrees of freedom, the images' on infinitely many; Satterthwaite's approximate degrees of
freedom under-covered, 0.905 with 2 seeds, because a seed variance on 1-2 degrees of freedom is
often small by chance). The test of :math:`H_0`: "pretrained-vs-random similarity is not lower
than random-vs-random" (:math:`\theta_P \ge 0` for a similarity, :math:`\theta_P \le 0` for a
distance) is the one-sided test on the same :math:`V` and quantiles, so interval and test agree.
Its calibration is measured in ``tests/similarity/test_inference.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import xarray as xr
from scipy import optimize, stats

from layergain import schema as S
from layergain.errors import InputValueError, LayergainError, NotEnoughDataError
from layergain.parallel import in_order
from layergain.similarity._backend import NumpyOps
from layergain.similarity.bootstrap import _draw_weights
from layergain.similarity.measures import (
    check_k,
    compare_knn,
    compare_rdm,
    knn_from_score,
    prepare_knn,
    prepare_rdm,
    prepare_shape,
    rdm_matrix,
    rdm_vector,
)
from layergain.validation import check_int, check_probability

__all__ = ["INFERENCE_MEASURES", "SimilarityDifference", "similarity_difference", "study_similarity_inference"]

InferenceMeasure = Literal["cka_debiased", "cka_linear", "mutual_knn", "angular_shape", "rsa"]
#: Measures :func:`similarity_difference` supports.
INFERENCE_MEASURES: tuple[str, ...] = ("cka_debiased", "cka_linear", "mutual_knn", "angular_shape", "rsa")


@dataclass(frozen=True)
class _Measure:
    prepare: Callable[[np.ndarray], Any]
    compare: Callable[[Any, Any], float]
    higher_is_similar: bool
    long_name: str
    min_rows: int
    #: Optional: an n x n matrix of all images computed once per network (``full``), from which
    #: ``sub(full, idx)`` gives ``prepare(x[idx])`` for a resample without touching the features.
    full: Callable[[np.ndarray], np.ndarray] | None = None
    sub: Callable[[np.ndarray, np.ndarray], Any] | None = None


def _gram(x: np.ndarray) -> np.ndarray:
    return x @ x.T


def _centred(g: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(x[idx] - its column means) (x[idx] - its column means)^T from the Gram matrix g = x x^T."""
    gs = g[np.ix_(idx, idx)]
    r = gs.mean(axis=0)
    return gs - r[:, None] - r[None, :] + r.mean()


def _linear_from_kernel(k: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(k)
    if not norm > 0:
        raise InputValueError("The features are constant across images; CKA is undefined.")
    return k / norm


def _knn_sub(g: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """:func:`prepare_knn` (cosine) of x[idx] from the Gram matrix of x."""
    gs = g[np.ix_(idx, idx)]
    norm = np.sqrt(np.maximum(np.diag(gs), 0.0))
    norm = np.where(norm > 0, norm, 1.0)
    return knn_from_score(gs / norm[:, None] / norm[None, :], k)


def _prepare_linear(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    return _linear_from_kernel(xc @ xc.T)


def _prepare_unbiased(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    xc = x - x.mean(axis=0)
    return _unbiased_from_kernel(xc @ xc.T)


def _unbiased_from_kernel(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    np.fill_diagonal(k, 0.0)
    r = k.sum(axis=1)
    out = (k, r, float(r.sum()), 0.0)
    h = _hsic_u(out, out)
    if not h > 0:
        raise InputValueError(f"The unbiased HSIC of the features with themselves is {h:.3g} <= 0; "
                              "debiased CKA is undefined (too few images or collapsed features).")
    return (k, r, out[2], h)


def _prepare_shape_factor(x: np.ndarray) -> np.ndarray:
    """:func:`prepare_shape`'s unit-norm centred features as their factor U S (n x min(n, p)).

    With :math:`\bar X = U_x S_x V_x^\top`, :math:`\bar X^\top \bar Y` has the singular values of
    :math:`(U_x S_x)^\top (U_y S_y)`: one SVD per network and resample instead of two per pair
    (:func:`layergain.similarity.measures.nuclear_cross` on wide layers), the same distance; on
    wide layers the factor comes from the eigendecomposition of the n x n Gram matrix.
    """
    xs = prepare_shape(x)
    n, p = xs.shape
    if p <= n:
        u, s, _ = np.linalg.svd(xs, full_matrices=False)
        return u * s
    # wide: from the n x n Gram matrix (U S^2 U^T), far cheaper than the n x p SVD
    ev, u = np.linalg.eigh(xs @ xs.T)
    return u * np.sqrt(np.clip(ev, 0.0, None))


def _compare_shape_factor(a: np.ndarray, b: np.ndarray) -> float:
    """The angular shape distance of two :func:`_prepare_shape_factor` factors."""
    return float(np.arccos(np.clip(np.linalg.svd(a.T @ b, compute_uv=False).sum(), -1.0, 1.0)))


def _hsic_u(a: tuple, b: tuple) -> float:
    k, rk, sk, _ = a
    ell, rl, sl, _ = b
    n = k.shape[0]
    value = np.einsum("ij,ij->", k, ell) + sk * sl / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(rk @ rl)
    return float(value) / (n * (n - 3))


def _measure(name: str, k: int) -> _Measure:
    if name == "cka_debiased":
        return _Measure(_prepare_unbiased, lambda a, b: _hsic_u(a, b) / np.sqrt(a[3] * b[3]), True,
                        "debiased linear CKA", 4, _gram, lambda g, idx: _unbiased_from_kernel(_centred(g, idx)))
    if name == "cka_linear":
        return _Measure(_prepare_linear, lambda a, b: float(np.einsum("ij,ij->", a, b)), True, "linear CKA", 2,
                        _gram, lambda g, idx: _linear_from_kernel(_centred(g, idx)))
    if name == "mutual_knn":
        return _Measure(lambda x: prepare_knn(x, k, "cosine"), compare_knn, True,
                        f"mutual {k}-nearest-neighbour alignment (cosine)", k + 2, _gram,
                        lambda g, idx: _knn_sub(g, idx, k))
    if name == "angular_shape":
        return _Measure(_prepare_shape_factor, _compare_shape_factor, False,
                        "angular Procrustes shape distance (radians)", 2)
    return _Measure(lambda x: prepare_rdm(x, "correlation", "spearman"), compare_rdm, True,
                    "RSA (Spearman correlation of correlation-distance RDMs)", 3,
                    lambda x: rdm_matrix(x, "correlation"), lambda d, idx: rdm_vector(d[np.ix_(idx, idx)], "spearman"))


@dataclass(frozen=True)
class SimilarityDifference:
    """Pretrained-vs-random minus random-vs-random similarity of one layer, with inference.

    Attributes
    ----------
    difference : float
        :math:`D` (module docstring); NaN where it cannot be computed (``reason`` says why).
    pretrained_random, random_random : float
        Mean over random inits of m(P, R_s), mean over pairs of m(R_s, R_t).
    lower, upper : float
        Confidence interval of the difference.
    p_value : float
        One-sided p of "pretrained-vs-random similarity is not lower than random-vs-random".
    se_images, se_seeds, df : float
        Standard error of the images' and the seeds' parts, and the seeds' degrees of freedom
        (S - 1).
    reason : str
        Empty, or why the difference or its inference is NaN.
    """

    difference: float
    pretrained_random: float
    random_random: float
    lower: float
    upper: float
    p_value: float
    se_images: float
    se_seeds: float
    df: float
    reason: str = ""


def _table(preps: list[Any], m: _Measure) -> np.ndarray:
    size = len(preps)
    t = np.full((size, size), np.nan)
    for i, j in combinations(range(size), 2):
        t[i, j] = t[j, i] = m.compare(preps[i], preps[j])
    return t


def _contrast(t: np.ndarray, seeds: np.ndarray) -> float:
    """D on the random inits ``seeds`` (indices >= 1 into the table)."""
    a = t[0, seeds].mean()
    rr = t[np.ix_(seeds, seeds)][np.triu_indices(seeds.size, k=1)]
    return float(a - rr.mean())


def _seed_part(t: np.ndarray) -> tuple[float, np.ndarray]:
    """Seed variance of D from one table, and the per-seed deviations it is built on."""
    n_seeds = t.shape[0] - 1
    seeds = np.arange(1, n_seeds + 1)
    if n_seeds >= 3:
        jack = np.array([_contrast(t, np.delete(seeds, s)) for s in range(n_seeds)])
        dev = jack - jack.mean()
        return float((n_seeds - 1) / n_seeds * np.sum(dev**2)), dev * np.sqrt((n_seeds - 1) / n_seeds)
    a = t[0, seeds]
    dev = a - a.mean()
    scale = (n_seeds + 1) / (n_seeds * (n_seeds - 1))
    return float(scale * np.sum(dev**2) / (n_seeds - 1)), dev * np.sqrt(scale / (n_seeds - 1))


def _nan(reason: str, d: float = np.nan, pr: float = np.nan, rr: float = np.nan) -> SimilarityDifference:
    return SimilarityDifference(d, pr, rr, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, reason)


def similarity_difference(
    features: Sequence[Any],
    *,
    measure: InferenceMeasure = "cka_debiased",
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = None,
    subsample_size: int | None = None,
    k: int = 10,
) -> SimilarityDifference:
    r"""Pretrained-vs-random minus random-vs-random similarity of one layer, with a CI and a test.

    Parameters
    ----------
    features : sequence of array-like of shape (n_images, n_units)
        The layer's features of the pretrained network first, then of every random init; the
        same images in the same order.
    measure : {"cka_debiased", "cka_linear", "mutual_knn", "angular_shape", "rsa"}, default="cka_debiased"
        Debiased or linear CKA, mutual k-NN alignment (cosine, :func:`mutual_knn_alignment`),
        the angular Procrustes distance (:func:`angular_shape_distance`; a distance, so a
        pretrained network *less* similar to random gives a positive difference) or RSA
        (Spearman correlation of correlation-distance RDMs, :func:`rsa`).
    n_boot : int, default=200
        Image resamples (each recomputes every pair's measure on a subsample).
    confidence : float, default=0.95
    seed : int, numpy.random.Generator or None, default=None
        Seed of the image resampling.
    subsample_size : int, optional
        Images per resample, default ``n_images // 2``.
    k : int, default=10
        Neighbours of ``"mutual_knn"`` (on the subsample too).

    Returns
    -------
    SimilarityDifference
        The difference, its parts, interval, one-sided p-value and variance parts (see the
        module docstring for the construction).

    Raises
    ------
    InputValueError
        Different image counts, NaN features, a bad option.
    NotEnoughDataError
        Fewer images than the measure needs on a subsample.
    """
    m = _check_options(measure, n_boot, confidence, k)
    arrays = _validate(features, m)
    n = arrays[0].shape[0]
    size = subsample_size if subsample_size is not None else n // 2
    size = check_int(size, "subsample_size", minimum=m.min_rows, maximum=n - 1)
    if measure == "mutual_knn":
        check_k(k, size)
    parts = _parts(arrays, m, n_boot, size, seed)
    if isinstance(parts, SimilarityDifference):
        return parts
    d, pr, rr, v_img, v_seed, _ = parts
    return _interval(d, pr, rr, v_img, v_seed, len(arrays) - 1, confidence, m.higher_is_similar)


def _parts(arrays: list[np.ndarray], m: _Measure, n_boot: int, size: int,
           seed: int | np.random.Generator | None) -> tuple[float, ...] | SimilarityDifference:
    """D, its two means, and the images', seeds' and interaction's variance (or a NaN result)."""
    n = arrays[0].shape[0]
    preps = [m.prepare(x) for x in arrays]
    t = _table(preps, m)
    n_seeds = len(arrays) - 1
    pr = float(t[0, 1:].mean())
    if n_seeds < 2:
        return _nan("one random init: no random-vs-random pair to compare with; use two or more seeds",
                    pr=pr)
    seeds = np.arange(1, n_seeds + 1)
    d = _contrast(t, seeds)
    rr = pr - d
    v_seed, _ = _seed_part(t)

    rng = np.random.default_rng(seed)
    weights = _draw_weights(rng, n, n_boot, "subsample", size)
    draws = np.empty(n_boot)
    devs = np.empty((n_boot, n_seeds))
    # Every resample's kernel, neighbours or RDM is a submatrix of the full one: computed once per
    # network (issue 17), unless the n x n matrices of all networks would take more than 1 GiB.
    fulls = [m.full(x) for x in arrays] if m.full is not None and 8 * n * n * len(arrays) <= 2**30 else None
    for b in range(n_boot):
        idx = np.flatnonzero(weights[b])
        if fulls is not None:
            tb = _table([m.sub(f, idx) for f in fulls], m)
        else:
            tb = _table([m.prepare(x[idx]) for x in arrays], m)
        draws[b] = _contrast(tb, seeds)
        devs[b] = _seed_part(tb)[1]
    correction = size * (n - 1) / (n * (n - size))
    v_img = float(np.var(draws, ddof=1)) * correction
    # The images' noise inside the seeds' spread (the interaction), counted by both parts once.
    v_inter = float(np.sum(np.var(devs, axis=0, ddof=1))) * correction
    return d, pr, rr, v_img, v_seed, v_inter


def _interval(d: float, pr: float, rr: float, v_img: float, v_seed: float, n_seeds: int,
              confidence: float, higher_is_similar: bool) -> SimilarityDifference:
    v = v_img + v_seed
    if not v > 0:
        return _nan("no spread over images or seeds (identical networks?)", d, pr, rr)
    df = float(n_seeds - 1)
    se = np.sqrt(v)
    q = _quantile(0.5 + confidence / 2, v_img, v_seed, df)
    z = d / se if higher_is_similar else -d / se
    return SimilarityDifference(d, pr, rr, d - q * se, d + q * se, _p_lower(z, v_img, v_seed, df),
                                float(np.sqrt(v_img)), float(np.sqrt(v_seed)), df)


def _quantile(level: float, v_img: float, v_seed: float, df: float) -> float:
    """Banerjee's combination: sqrt((v_img z^2 + v_seed t_df^2) / (v_img + v_seed)) at ``level``."""
    zq, tq = stats.norm.ppf(level), stats.t.ppf(level, df)
    # a part without variance adds nothing (not 0 * inf = NaN at level 1, where brentq starts)
    parts = (v_img * zq**2 if v_img > 0 else 0.0) + (v_seed * tq**2 if v_seed > 0 else 0.0)
    return float(np.sqrt(parts / (v_img + v_seed)))


def _p_lower(z: float, v_img: float, v_seed: float, df: float) -> float:
    """One-sided p of a statistic z whose null quantiles are :func:`_quantile` (small when z << 0)."""
    if z == 0:
        return 0.5
    target = abs(z)
    tail = optimize.brentq(lambda a: _quantile(1 - a, v_img, v_seed, df) - target, 1e-300, 0.5)
    return float(tail if z < 0 else 1 - tail)


def _check_options(measure: str, n_boot: Any, confidence: Any, k: Any) -> _Measure:
    if measure not in INFERENCE_MEASURES:
        raise InputValueError(
            f"`measure` must be one of {', '.join(map(repr, INFERENCE_MEASURES))}, got {measure!r}."
        )
    check_int(n_boot, "n_boot", minimum=2)
    check_probability(confidence, "confidence")
    return _measure(measure, check_int(k, "k", minimum=1))


def _validate(features: Sequence[Any], m: _Measure) -> list[np.ndarray]:
    if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or len(features) < 2:
        raise InputValueError(
            "`features` must be a sequence of the pretrained network's features followed by at least one "
            f"random init's, got {type(features).__name__} of length {len(features) if hasattr(features, '__len__') else '?'}."
        )
    ops = NumpyOps()
    arrays = [ops.validate(x, f"features[{i}]", min_rows=2 * m.min_rows, dtype=np.float64)
              for i, x in enumerate(features)]
    rows = {a.shape[0] for a in arrays}
    if len(rows) != 1:
        raise InputValueError(
            f"Every network's features must describe the same images; got image counts "
            f"{[a.shape[0] for a in arrays]}."
        )
    return arrays


def study_similarity_inference(
    store: Any,
    inits: Sequence[str],
    layers: Sequence[str],
    *,
    measures: Sequence[str] = ("cka_debiased", "mutual_knn", "angular_shape", "rsa"),
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    k: int = 10,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> xr.Dataset:
    r"""Similarity with inference for every layer of a run, read from cached features.

    Parameters
    ----------
    store : FeatureStore or alike
        ``store.layer(init, layer)`` -> array of shape (n_images, n_units).
    inits : sequence of str
        The pretrained network first, then every random init.
    layers : sequence of str
        Probe layers, shallow to deep.
    measures : sequence of str, default=("cka_debiased", "mutual_knn", "angular_shape", "rsa")
        Any of :data:`INFERENCE_MEASURES`.
    n_boot, confidence, k
        As in :func:`similarity_difference`.
    seed : int, numpy.random.Generator or None, default=0
        One independent stream per (measure, layer) is spawned from it.
    n_jobs : int, default=1
        joblib processes, one layer each (the store must be picklable, as the probes' is);
        results are identical to a serial run.
    progress : bool, default=False
        Show a progress bar over the layers.

    Returns
    -------
    xarray.Dataset
        Coordinates ``layer`` and ``bound`` ("lower", "upper"). Per measure ``m``:
        ``m_difference(layer)``, ``m_difference_ci(layer, bound)``, ``m_difference_p(layer)``
        (one-sided), ``m_pretrained_random(layer)``, ``m_random_random(layer)``,
        ``m_difference_se_images(layer)``, ``m_difference_se_seeds(layer)`` and
        ``m_difference_df(layer)``. Each variable's attrs hold ``long_name`` and ``nan_reason``
        (layer -> reason, ``{}`` when nothing is missing); the Dataset's attrs hold the method,
        ``n_boot``, ``confidence``, ``seed``, ``n_random`` and the measures.
        A layer whose measure fails (NaN features, too few images) is NaN with its reason.
    """
    inits, layers = list(inits), list(layers)
    measures = [m for m in dict.fromkeys(measures)]
    for name in measures:
        _check_options(name, n_boot, confidence, k)
    rng = np.random.default_rng(seed)
    streams = rng.spawn(len(measures) * len(layers))
    fields = ("difference", "pretrained_random", "random_random", "p_value", "se_images", "se_seeds", "df")
    values = {m: {f: np.full(len(layers), np.nan) for f in (*fields, "lower", "upper")} for m in measures}
    reasons: dict[str, dict[str, str]] = {m: {} for m in measures}
    # One work unit per layer, each with its own streams (measure-major within the layer as in a
    # serial run), so the results are identical whichever process computes them.
    units = [(store, inits, layer, measures, streams[li * len(measures):(li + 1) * len(measures)], n_boot,
              confidence, k) for li, layer in enumerate(layers)]
    results = in_order(_layer_unit, units, n_jobs)
    from tqdm.auto import tqdm

    for li, per_measure in enumerate(tqdm(results, total=len(layers), desc="similarity inference", unit="layer",
                                          disable=not progress, leave=False)):
        for name, res in zip(measures, per_measure):
            for f in (*fields, "lower", "upper"):
                values[name][f][li] = getattr(res, f)
            if res.reason:
                reasons[name][layers[li]] = res.reason
    return _dataset(values, reasons, measures, layers, inits, n_boot, confidence, seed, k)


def _layer_unit(unit: tuple) -> list[SimilarityDifference]:
    """Every measure's difference of one layer (a work unit of :func:`study_similarity_inference`)."""
    from layergain.similarity._backend import one_blas_thread

    store, inits, layer, measures, streams, n_boot, confidence, k = unit
    feats = [store.layer(init, layer) for init in inits]
    out = []
    # one BLAS thread wherever the unit runs (this process, a joblib or a Dask worker), so the
    # numbers are the same bits whichever runs it; its matrices are small (at most n x n)
    with one_blas_thread():
        for name, stream in zip(measures, streams):
            try:
                out.append(similarity_difference(feats, measure=name, n_boot=n_boot, confidence=confidence,
                                                 seed=stream, k=k))
            except LayergainError as err:
                out.append(_nan(str(err)))
    return out


_SUFFIX = {"difference": "_difference", "p_value": "_difference_p", "pretrained_random": "_pretrained_random",
           "random_random": "_random_random", "se_images": "_difference_se_images",
           "se_seeds": "_difference_se_seeds", "df": "_difference_df"}


def _dataset(values, reasons, measures, layers, inits, n_boot, confidence, seed, k) -> xr.Dataset:
    ds = xr.Dataset(coords={S.LAYER: layers, S.BOUND: list(S.BOUNDS)})
    for name in measures:
        v = values[name]
        long = _measure(name, k).long_name
        for field, suffix in _SUFFIX.items():
            ds[name + suffix] = ((S.LAYER,), v[field])
            ds[name + suffix].attrs = {"long_name": f"{long}: {field.replace('_', ' ')}",
                                       "nan_reason": dict(reasons[name])}
        ds[name + "_difference_ci"] = ((S.LAYER, S.BOUND), np.stack([v["lower"], v["upper"]], axis=1))
        ds[name + "_difference_ci"].attrs = {"long_name": f"{long}: CI of the difference",
                                             "nan_reason": dict(reasons[name])}
        ds[name + "_difference_p"].attrs["alternative"] = (
            "pretrained-vs-random similarity lower than random-vs-random"
            + ("" if _measure(name, k).higher_is_similar else " (distance: difference > 0)"))
    ds.attrs = {
        "similarity_inference_method": (
            "difference = mean_s m(pretrained, random_s) - mean_{s<t} m(random_s, random_t); variance = images "
            "(m-out-of-n subsampling without replacement, m = n // 2, rescaled to n) + seeds (delete-one-seed "
            "jackknife for S >= 3, Var(a_s)(S+1)/(S(S-1)) for S = 2), summed; Banerjee quantile "
            "sqrt((V_img z^2 + V_seed t_{S-1}^2) / V); one-sided test on the same quantiles"),
        "similarity_inference_measures": list(measures),
        "similarity_inference_n_boot": int(n_boot),
        "similarity_inference_confidence": float(confidence),
        "similarity_inference_n_random": len(inits) - 1,
        "similarity_inference_k": int(k),
    }
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        ds.attrs["similarity_inference_seed"] = int(seed)
    return ds
