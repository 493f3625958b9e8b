r"""Every estimator for every (network, layer) of a run, and whether they track the probe and the gain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from layergain import schema as S
from layergain.errors import InputValueError, LayergainError
from layergain.parallel import in_order
from layergain.transferability._spectrum import Layer
from layergain.transferability.estimators import _gbc, _hscore, _logme, _nleep, _transrate
from layergain.transferability.neighbours import knn_accuracy, ncc_accuracy
from layergain.validation import check_int, check_probability

__all__ = ["ESTIMATOR", "ESTIMATORS", "study_transferability", "tau_table"]

#: Dimension of :func:`tau_table`'s output (one entry per estimator).
ESTIMATOR = S.ESTIMATOR
#: The estimators of :func:`study_transferability`, in order (the names of its variables).
ESTIMATORS: tuple[str, ...] = ("logme", "hscore", "nleep", "gbc", "transrate", "knn_accuracy", "ncc_accuracy")

_METHODS = {
    "logme": "LogME (You et al. 2021): mean over classes of the per-image maximised log evidence, one-vs-rest targets",
    "hscore": "H-score with Ledoit-Wolf shrinkage covariance (Bao et al. 2019; Ibrahim et al. 2022)",
    "nleep": "N-LEEP (Li et al. 2021): PCA keeping 80% of the variance, GaussianMixture with 5 components per class",
    "gbc": "GBC (Pandy et al. 2022): minus the sum of Bhattacharyya coefficients of per-class diagonal Gaussians "
           "after PCA to 64 dimensions",
    "transrate": "TransRate (Huang et al. 2022): coding rate minus mean class coding rate, eps=1e-4",
    "knn_accuracy": "out-of-fold 10-nearest-neighbour accuracy (Euclidean, raw features) on the run's folds",
    "ncc_accuracy": "out-of-fold nearest-class-mean accuracy on centred, L2-normalised features (SimpleShot CL2N) "
                    "on the run's folds",
}


def _estimators(labels: np.ndarray, folds: np.ndarray, gmm_seed: int) -> dict[str, Callable[[Layer], float]]:
    """The estimators of one layer, each taking the :class:`Layer` they share (one spectrum per layer)."""
    return {
        "logme": lambda layer: _logme(layer, labels),
        "hscore": lambda layer: _hscore(layer, labels),
        "nleep": lambda layer: _nleep(layer, labels, seed=gmm_seed),
        "gbc": lambda layer: _gbc(layer, labels),
        "transrate": lambda layer: _transrate(layer, labels),
        "knn_accuracy": lambda layer: knn_accuracy(layer.check(labels, "knn_accuracy")[0], labels, folds),
        "ncc_accuracy": lambda layer: ncc_accuracy(layer.check(labels, "ncc_accuracy")[0], labels, folds),
    }


def study_transferability(
    store: Any,
    inits: Sequence[str],
    layers: Sequence[str],
    labels: Any,
    folds: Any,
    *,
    seed: int | np.random.Generator | None = 0,
    n_jobs: int | None = 1,
) -> xr.Dataset:
    r"""Every transferability estimator for every network and layer of a run.

    Parameters
    ----------
    store : FeatureStore or alike
        ``store.layer(init, layer)`` -> array of shape (n_images, n_units).
    inits : sequence of str
        Networks (the pretrained one and the random inits).
    layers : sequence of str
        Probe layers, shallow to deep.
    labels : array-like of int of shape (n_images,)
    folds : array-like of int of shape (n_repeats, n_images)
        The run's folds (for ``knn_accuracy`` and ``ncc_accuracy``).
    seed : int, numpy.random.Generator or None, default=0
        One ``random_state`` per (init, layer) for N-LEEP's Gaussian mixture is drawn from
        independent streams spawned from it.
    n_jobs : int, default=1
        joblib processes (or the Dask backend's workers), one (init, layer) each; the store must
        be picklable, as the probes' is. Results are identical to a serial run.

    Returns
    -------
    xarray.Dataset
        One variable per estimator of :data:`ESTIMATORS`, dims (init, layer), float64, with
        attrs ``long_name``, ``method`` and ``nan_reason`` (layer -> {init -> reason}; a value
        that cannot be computed is NaN, the run does not stop). Dataset attrs:
        ``transferability_estimators`` and ``transferability_seed`` (when an int was given).
    """
    inits, layers = [str(i) for i in inits], [str(layer) for layer in layers]
    labels = np.asarray(labels)
    folds = np.atleast_2d(np.asarray(folds))
    rng = np.random.default_rng(seed)
    streams = rng.spawn(len(inits) * len(layers))
    values = {e: np.full((len(inits), len(layers)), np.nan) for e in ESTIMATORS}
    reasons: dict[str, dict[str, dict[str, str]]] = {e: {} for e in ESTIMATORS}
    units = [(store, init, layer, labels, folds, int(streams[i * len(layers) + j].integers(2**31 - 1)))
             for i, init in enumerate(inits) for j, layer in enumerate(layers)]
    for k, (got, why) in enumerate(in_order(_unit, units, n_jobs)):
        i, j = divmod(k, len(layers))
        for name, value in got.items():
            values[name][i, j] = value
        for name, reason in why.items():
            reasons[name].setdefault(layers[j], {})[inits[i]] = reason
    ds = xr.Dataset(coords={S.INIT: inits, S.LAYER: layers})
    for name in ESTIMATORS:
        ds[name] = ((S.INIT, S.LAYER), values[name])
        ds[name].attrs = {"long_name": name.replace("_", " "), "method": _METHODS[name], "nan_reason": reasons[name]}
    ds.attrs["transferability_estimators"] = list(ESTIMATORS)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        ds.attrs["transferability_seed"] = int(seed)
    return ds


def _unit(unit: tuple) -> tuple[dict[str, float], dict[str, str]]:
    """Every estimator of one (init, layer), and the reason of each that cannot be computed
    (a work unit of :func:`study_transferability`)."""
    store, init, layer, labels, folds, gmm_seed = unit
    values, reasons = {}, {}
    with threadpool_limits(1):  # small problems: threaded BLAS only costs (as in the probe stage)
        features = Layer(store.layer(init, layer))
        for name, fn in _estimators(labels, folds, gmm_seed).items():
            try:
                values[name] = fn(features)
            except LayergainError as err:
                reasons[name] = str(err)
    return values, reasons


def tau_table(
    estimates: xr.Dataset,
    accuracy: xr.DataArray,
    gain: xr.DataArray,
    *,
    correct: xr.DataArray | None = None,
    pretrained: str = S.PRETRAINED,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> xr.Dataset:
    r"""Do the estimators predict the probe accuracy and the gain? Kendall's tau across layers.

    For each estimator :math:`e`:

    - ``tau_accuracy``: :math:`\tau_b` across layers between :math:`e(P, l)` and the probe
      accuracy :math:`\mathrm{acc}(P, l)` of the pretrained network :math:`P`;
    - ``tau_gain``: :math:`\tau_b` across layers between
      :math:`e(P, l) - \operatorname{mean}_s e(R_s, l)` and the gain :math:`g(l)`.

    Parameters
    ----------
    estimates : xarray.Dataset
        From :func:`study_transferability`: variables of dims (init, layer).
    accuracy : xarray.DataArray of dims (init, layer)
        Probe accuracy of every network (the same inits).
    gain : xarray.DataArray of dims (layer,)
        The run's gain (pretrained minus mean random accuracy).
    correct : xarray.DataArray of dims (init, layer, image), optional
        Per-image out-of-fold correctness (mean over CV repeats). When given, images are
        resampled too (see Notes).
    pretrained : str, default="pretrained"
    n_boot : int, default=2000
    confidence : float, default=0.95
    seed : int, numpy.random.Generator or None, default=0

    Returns
    -------
    xarray.Dataset
        Dim ``estimator``; variables ``tau_accuracy(estimator)``,
        ``tau_accuracy_ci(estimator, bound)``, ``tau_gain(estimator)``,
        ``tau_gain_ci(estimator, bound)`` and ``n_layers(estimator)`` (layers with finite
        values). attrs: ``method``, ``n_boot``, ``confidence``, ``seed``, ``resampled``,
        ``nan_reason``.

    Notes
    -----
    Layers are the units *of* tau, so they are not resampled. The percentile bootstrap
    resamples the random inits (with replacement; the estimator difference and the gain's
    random part are recomputed on the same resampled inits, the gain as
    :math:`g(l) + \Delta_b(l)` where :math:`\Delta_b` is the change of pretrained-minus-mean-random
    accuracy) and, when ``correct`` is given, the images for the accuracies (the probe's
    side). The estimators' own values are held at their full-sample values (recomputing them on
    every image resample would cost a run per draw). The interval is therefore conditional on
    the estimator values of these images and on this pretrained network; without ``correct``
    the interval of ``tau_accuracy`` has nothing to resample and is NaN (``nan_reason`` says so).
    """
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    confidence = check_probability(confidence, "confidence")
    est_names = [str(v) for v in estimates.data_vars if set(estimates[v].dims) == {S.INIT, S.LAYER}]
    if not est_names:
        raise InputValueError("`estimates` has no variable of dims (init, layer); pass study_transferability's result.")
    inits = [str(i) for i in estimates[S.INIT].values]
    if pretrained not in inits:
        raise InputValueError(f"`estimates` has no init {pretrained!r} (inits: {inits}).")
    randoms = [i for i in inits if i != pretrained]
    layers = [str(layer) for layer in estimates[S.LAYER].values]
    acc = accuracy.sel({S.INIT: [pretrained, *randoms], S.LAYER: layers}).transpose(S.INIT, S.LAYER).values
    g = gain.sel({S.LAYER: layers}).values.astype(float)
    corr = None
    if correct is not None:
        corr = correct.sel({S.INIT: [pretrained, *randoms], S.LAYER: layers}).transpose(S.INIT, S.LAYER, S.IMAGE).values
    rng = np.random.default_rng(seed)
    n_img = corr.shape[2] if corr is not None else 0
    seed_draws = rng.integers(0, len(randoms), size=(n_boot, len(randoms))) if randoms else None
    image_draws = rng.integers(0, n_img, size=(n_boot, n_img)) if corr is not None else None

    alpha = (1 - confidence) / 2
    out = {k: np.full(len(est_names), np.nan) for k in ("tau_accuracy", "tau_gain", "n_layers")}
    ci = {k: np.full((len(est_names), 2), np.nan) for k in ("tau_accuracy_ci", "tau_gain_ci")}
    reasons: dict[str, str] = {}
    # Every draw's accuracies at once, (draw, init, layer): the same for every estimator.
    acc_draws = _resampled_accuracy(corr, image_draws) if corr is not None else acc[None]
    draw = np.arange(n_boot)[:, None]
    for ei, name in enumerate(est_names):
        e = estimates[name].sel({S.INIT: [pretrained, *randoms], S.LAYER: layers}).values
        ok = np.isfinite(e).all(axis=0) & np.isfinite(acc).all(axis=0) & np.isfinite(g)
        out["n_layers"][ei] = int(ok.sum())
        if ok.sum() < 3:
            reasons[name] = f"{int(ok.sum())} layer(s) with finite values; Kendall's tau needs 3"
            continue
        out["tau_accuracy"][ei] = _taus(e[0, ok], acc[0, ok])
        if randoms:
            out["tau_gain"][ei] = _taus(e[0, ok] - e[1:, ok].mean(axis=0), g[ok])
        acc_b = np.broadcast_to(acc_draws[:, :, ok], (n_boot, len(inits), int(ok.sum())))
        if corr is not None:
            draws_a = _taus(e[0, ok], acc_b[:, 0])
        if randoms:
            pick = seed_draws + 1  # (draw, random init) -> row of acc and e
            base = acc[0, ok] - acc[1:, ok].mean(axis=0)
            g_b = g[ok] + (acc_b[:, 0] - acc_b[draw, pick].mean(axis=1)) - base
            draws_g = _taus(e[0, ok] - e[:, ok][pick].mean(axis=1), g_b)
        if corr is not None:
            ci["tau_accuracy_ci"][ei] = np.nanquantile(draws_a, [alpha, 1 - alpha])
        if randoms:
            ci["tau_gain_ci"][ei] = np.nanquantile(draws_g, [alpha, 1 - alpha])
    if corr is None:
        reasons["tau_accuracy_ci"] = ("no per-image correctness given (`correct`): the pretrained accuracy has "
                                      "nothing to resample")
    ds = xr.Dataset(coords={ESTIMATOR: est_names, S.BOUND: list(S.BOUNDS)})
    for k, v in out.items():
        ds[k] = ((ESTIMATOR,), v)
    for k, v in ci.items():
        ds[k] = ((ESTIMATOR, S.BOUND), v)
    ds.attrs = {
        "method": "Kendall's tau-b across layers; percentile bootstrap over random inits"
                  + (" and images (probe side)" if corr is not None else "")
                  + ", conditional on the estimators' full-sample values and on the pretrained network",
        "n_boot": n_boot,
        "confidence": confidence,
        "resampled": "random inits and images" if corr is not None else "random inits",
        "nan_reason": reasons,
    }
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        ds.attrs["seed"] = int(seed)
    return ds


def _taus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Kendall's :math:`\tau_b` of each row of ``a`` with the same row of ``b`` (rows broadcast).

    :math:`\tau_b = \sum_{i<j} s^a_{ij} s^b_{ij} / \sqrt{\sum |s^a_{ij}|} / \sqrt{\sum |s^b_{ij}|}`
    with :math:`s_{ij} = \operatorname{sign}(x_i - x_j)`: concordant minus discordant pairs over
    the pairs untied in each, the exact integers and the operations of scipy's ``kendalltau``
    (so the same values bit for bit); NaN where a row is constant.
    """
    i, j = np.triu_indices(np.shape(a)[-1], 1)
    sa, sb = np.sign(a[..., i] - a[..., j]), np.sign(b[..., i] - b[..., j])
    num = (sa * sb).sum(axis=-1)
    na, nb = np.abs(sa).sum(axis=-1), np.abs(sb).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.clip(num / np.sqrt(na) / np.sqrt(nb), -1.0, 1.0)
    return np.where((na > 0) & (nb > 0), tau, np.nan)


def _resampled_accuracy(correct: np.ndarray, image_draws: np.ndarray) -> np.ndarray:
    """Mean of ``correct`` (init, layer, image) over each draw's images, shape (draw, init, layer).

    One product with each draw's image counts instead of gathering the images draw by draw; for
    0/1 correctness the sums are exact integers, so the means are those of the gathered images.
    """
    n_boot, n_img = image_draws.shape
    flat_correct = correct.reshape(-1, n_img).astype(np.float64).T  # (image, init * layer)
    sums = np.empty((n_boot, flat_correct.shape[1]))
    step = max(1, 2**22 // n_img)  # draws per block: 32 MB of counts
    for start in range(0, n_boot, step):
        block = image_draws[start:start + step]
        flat = (block + np.arange(len(block))[:, None] * n_img).ravel()
        counts = np.bincount(flat, minlength=block.size).reshape(block.shape).astype(np.float64)
        sums[start:start + step] = counts @ flat_correct
    return (sums / n_img).reshape(n_boot, *correct.shape[:2])
