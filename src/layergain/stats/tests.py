r"""Tests of "gain = 0" per layer: sign-flip permutation (primary), McNemar, corrected t-test.

All networks predict the same images in the same folds, so every test is paired per image.

- :func:`sign_flip_test` (primary): paired sign-flip permutation test on per-image differences
  :math:`d_i = \bar c^{pre}_i - \bar c^{rand}_i` (hand-written: scipy's
  :func:`scipy.stats.permutation_test` flips signs per observation but cannot flip per group,
  share the flips across layers in one matrix product, or count ties exactly on integers).
- :func:`mcnemar_tests`: exact McNemar test, pretrained vs each random seed, per repeat
  (:func:`statsmodels.stats.contingency_tables.mcnemar`).
- :func:`corrected_resampled_ttest`: the corrected resampled t-test of Nadeau & Bengio (2003)
  over the (repeat, fold) accuracy differences (hand-written: no library provides it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from layergain.stats._inputs import check_folds, check_groups, check_outcomes
from layergain.stats._random import SeedLike, as_generator
from layergain.validation import check_choice, check_int

__all__ = [
    "Alternative",
    "CorrectedTTestResult",
    "McNemarResult",
    "SignFlipResult",
    "corrected_resampled_ttest",
    "mcnemar_tests",
    "per_image_differences",
    "sign_flip_test",
]

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")
_CELLS_PER_CHUNK = 1 << 21


def per_image_differences(correct_pre: Any, correct_rand: Any) -> np.ndarray:
    r"""Per-image differences of correctness, pretrained minus mean random.

    .. math:: d_i = \frac1R \sum_r c^{pre}_{ri} - \frac{1}{SR} \sum_{s,r} c^{rand}_{sri}

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.bootstrap.bootstrap_gain`.

    Returns
    -------
    numpy.ndarray of shape (n_layers, n_images)
        Their mean over images is the gain.
    """
    outcomes = check_outcomes(correct_pre, correct_rand)
    return outcomes.scaled_differences() / (outcomes.n_seeds * outcomes.n_repeats)


# --------------------------------------------------------------------------- sign flip


@dataclass(frozen=True)
class SignFlipResult:
    """Paired sign-flip permutation test per layer.

    ``statistic`` and ``pvalue`` have shape (n_layers,); ``statistic`` is the mean per-image
    difference (the gain, or for :func:`~layergain.stats.sweetspot.sweet_spot` the accuracy
    difference).
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    alternative: str
    n_resamples: int
    exact: bool
    resampling_unit: str
    n_units: int

    def attrs(self) -> dict[str, str | int]:
        """Settings as netCDF-safe attributes."""
        return {
            "test": "paired sign-flip permutation",
            "alternative": self.alternative,
            "n_resamples": self.n_resamples,
            "permutation_p": "exact enumeration" if self.exact else "Monte Carlo, (1 + k) / (1 + n)",
            "resampling_unit": self.resampling_unit,
            "n_units": self.n_units,
        }


def _exceedances(t_star: np.ndarray, t_obs: np.ndarray, alternative: str) -> np.ndarray:
    if alternative == "two-sided":
        return np.sum(np.abs(t_star) >= np.abs(t_obs), axis=0)
    if alternative == "greater":
        return np.sum(t_star >= t_obs, axis=0)
    return np.sum(t_star <= t_obs, axis=0)


def sign_flip_pvalues(
    unit_sums: np.ndarray, alternative: str, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool, int]:
    """p-values of the sign-flip test on (n_layers, n_units) sums; exact if 2**n_units <= n_resamples.

    The statistic is the sum over units; flips are shared by all layers (each layer's p-value is
    valid on its own, and Holm is valid under any dependence). Returns (p, exact, n_used). Sums
    should be exact (integers as float64) so that ties are counted exactly.
    """
    n_units = unit_sums.shape[1]
    t_obs = unit_sums.sum(axis=1)
    if n_units < 63 and 2**n_units <= n_resamples:
        codes = np.arange(2**n_units, dtype=np.int64)[:, None]
        signs = ((codes >> np.arange(n_units)) & 1) * 2.0 - 1.0
        count = _exceedances(signs @ unit_sums.T, t_obs, alternative)
        return count / 2**n_units, True, 2**n_units
    chunk = max(1, _CELLS_PER_CHUNK // n_units)
    count = np.zeros(unit_sums.shape[0], dtype=np.int64)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        signs = rng.integers(0, 2, size=(b, n_units), dtype=np.int8) * 2.0 - 1.0
        count += _exceedances(signs @ unit_sums.T, t_obs, alternative)
    return (1.0 + count) / (1.0 + n_resamples), False, n_resamples


def group_sums(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Sum (n_layers, n_images) values over the images of each group (identity without groups)."""
    if groups is None:
        return values
    n_groups = int(groups.max()) + 1
    return np.stack([np.bincount(groups, weights=row, minlength=n_groups) for row in values])


def sign_flip_test(
    correct_pre: Any,
    correct_rand: Any,
    groups: Any | None = None,
    *,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    seed: SeedLike = None,
) -> SignFlipResult:
    r"""Paired sign-flip permutation test of "gain = 0" per layer (the primary test).

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.bootstrap.bootstrap_gain`.
    groups : array-like of shape (n_images,), default=None
        Patient / slide ids. Where given, the signs are flipped per group on group sums of the
        differences (the clustered test).
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        ``"greater"``: pretrained better than random (gain > 0).
    n_resamples : int, default=9999
        Number of random sign vectors (>= 1). If :math:`2^{n_{units}}` is not larger, every sign
        vector is enumerated instead and the p-value is exact.
    seed : int, numpy.random.Generator or None, default=None
        Randomness of the sign vectors.

    Returns
    -------
    SignFlipResult
        ``statistic`` (the gain) and ``pvalue``, each of shape (n_layers,).

    Notes
    -----
    With per-image differences :math:`d_i` (:func:`per_image_differences`), or group sums
    :math:`D_g = \sum_{i \in g} d_i`, the statistic is :math:`T = \sum_u D_u` and

    .. math::

        T^*_b = \sum_u \varepsilon_{bu} D_u,\quad \varepsilon_{bu} \in \{-1, +1\},\qquad
        p = \frac{1 + \#\{b : |T^*_b| \ge |T|\}}{1 + n_{resamples}}

    (two-sided; one-sided with :math:`T^*_b \ge T` or :math:`\le T`). The +1 keeps the Monte
    Carlo p-value valid (Phipson & Smyth 2010). Flipping the sign of :math:`d_i` swaps
    "pretrained" and "random" for image i, which is exchangeable under the null hypothesis that
    the pretrained network is no better than the random ones on each image; the studentised
    statistic gives the same test because :math:`\sum D_u^2` does not change under flips, and
    the test stays asymptotically valid when the :math:`d_i` have mean 0 but are not symmetric.

    Groups: images of one patient are not independent, so their differences are summed and the
    sum's sign is flipped (Monte Carlo over groups; few groups give a coarse but exact test).

    The test is conditional on the S random networks that were drawn: it asks whether the
    pretrained network beats the mean of these networks on these images. The spread between
    random initialisations enters the bootstrap interval (:func:`~layergain.stats.bootstrap.bootstrap_gain`).
    The per-image differences are treated as independent given the groups; images that share
    training folds are weakly dependent, as in every per-image test of a cross-validated model.

    References
    ----------
    Good, P. (2005). *Permutation, Parametric and Bootstrap Tests of Hypotheses* (3rd ed.).
    Springer (one-sample / paired permutation tests).

    Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero.
    *Statistical Applications in Genetics and Molecular Biology*, 9(1), article 39.
    """
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    outcomes = check_outcomes(correct_pre, correct_rand)
    group_codes = check_groups(groups, outcomes.n_images)
    scaled = outcomes.scaled_differences()
    unit_sums = group_sums(scaled, group_codes)
    pvalue, exact, n_used = sign_flip_pvalues(unit_sums, alternative, n_resamples, as_generator(seed))
    return SignFlipResult(
        statistic=scaled.mean(axis=1) / (outcomes.n_seeds * outcomes.n_repeats),
        pvalue=pvalue,
        alternative=alternative,
        n_resamples=n_used,
        exact=exact,
        resampling_unit="image" if group_codes is None else "group",
        n_units=unit_sums.shape[1],
    )


# --------------------------------------------------------------------------- McNemar


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar tests, pretrained vs each random seed, per layer and repeat.

    Arrays have shape (n_layers, n_seeds, n_repeats). ``pre_only``: images the pretrained
    network gets right and the random one wrong; ``rand_only``: the reverse; ``statistic``:
    min(pre_only, rand_only), the statistic of the exact test.
    """

    pre_only: np.ndarray
    rand_only: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray


def mcnemar_tests(correct_pre: Any, correct_rand: Any) -> McNemarResult:
    r"""Exact McNemar test of pretrained vs each random seed, per layer and CV repeat.

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.bootstrap.bootstrap_gain`.

    Returns
    -------
    McNemarResult
        Discordant counts, statistic and two-sided exact p-value, each of shape
        (n_layers, n_seeds, n_repeats).

    Notes
    -----
    Per (layer, seed, repeat) the discordant counts :math:`b` (pretrained right, random wrong)
    and :math:`c` (the reverse) give

    .. math:: p = \min\Bigl(1,\; 2 \sum_{k=0}^{\min(b,c)} \binom{b+c}{k} 2^{-(b+c)}\Bigr),

    computed by :func:`statsmodels.stats.contingency_tables.mcnemar` with ``exact=True``. Each
    repeat's out-of-fold predictions give one prediction per image, the setting the test assumes;
    repeats reuse the images, so their p-values are not independent and are reported per repeat,
    not combined. The test compares the pretrained network with one random network; the
    sign-flip test compares it with the mean of all seeds.

    References
    ----------
    McNemar, Q. (1947). Note on the sampling error of the difference between correlated
    proportions or percentages. *Psychometrika*, 12(2), 153-157.

    Dietterich, T. G. (1998). Approximate statistical tests for comparing supervised
    classification learning algorithms. *Neural Computation*, 10(7), 1895-1923.
    """
    outcomes = check_outcomes(correct_pre, correct_rand)
    pre = outcomes.pre[:, None]  # (L, 1, R, N)
    rand = outcomes.rand
    both = np.sum(pre & rand, axis=-1)
    pre_only = np.sum(pre & ~rand, axis=-1)
    rand_only = np.sum(~pre & rand, axis=-1)
    neither = np.sum(~pre & ~rand, axis=-1)
    statistic = np.empty(pre_only.shape)
    pvalue = np.empty(pre_only.shape)
    for idx in np.ndindex(pre_only.shape):
        table = [[both[idx], pre_only[idx]], [rand_only[idx], neither[idx]]]
        res = mcnemar(table, exact=True)
        statistic[idx], pvalue[idx] = res.statistic, res.pvalue
    return McNemarResult(pre_only=pre_only, rand_only=rand_only, statistic=statistic, pvalue=pvalue)


# --------------------------------------------------------------------------- Nadeau-Bengio


@dataclass(frozen=True)
class CorrectedTTestResult:
    """Corrected resampled t-test per layer.

    ``statistic``, ``pvalue`` and ``mean_difference`` have shape (n_layers,);
    ``differences`` has shape (n_layers, n_repeats * n_folds) (repeat-major).
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    mean_difference: np.ndarray
    differences: np.ndarray
    df: int
    test_train_ratio: float
    alternative: str


def _fold_differences(pre: np.ndarray, rand: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, float]:
    """Accuracy differences per (repeat, fold) -> (n_layers, J) and the mean n_test / n_train."""
    n_images = pre.shape[-1]
    diffs, ratios = [], []
    rand_mean = rand.mean(axis=1)  # (L, R, N) mean over seeds
    for r in range(folds.shape[0]):
        onehot = np.eye(int(folds[r].max()) + 1)[folds[r]]  # (N, K)
        n_test = onehot.sum(axis=0)
        acc_pre = (pre[:, r, :] @ onehot) / n_test
        acc_rand = (rand_mean[:, r, :] @ onehot) / n_test
        diffs.append(acc_pre - acc_rand)
        ratios.append(n_test / (n_images - n_test))
    return np.concatenate(diffs, axis=1), float(np.mean(np.concatenate(ratios)))


def corrected_resampled_ttest(
    correct_pre: Any,
    correct_rand: Any,
    folds: Any,
    *,
    alternative: Alternative = "two-sided",
) -> CorrectedTTestResult:
    r"""Corrected resampled t-test (Nadeau & Bengio 2003) of "gain = 0" over CV folds.

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.bootstrap.bootstrap_gain`.
    folds : array-like of int of shape (n_repeats, n_images)
        The CV fold of each image in each repeat (at least 2 folds per repeat).
    alternative : {"two-sided", "greater", "less"}, default="two-sided"

    Returns
    -------
    CorrectedTTestResult
        t statistic, p-value and mean difference per layer, the J = n_repeats * n_folds
        differences, the degrees of freedom J - 1 and the ratio used.

    Notes
    -----
    With :math:`x_j` the accuracy of the pretrained network minus the mean accuracy of the random
    networks on the test fold of split j (all folds of all repeats, :math:`J` in total),

    .. math::

        t = \frac{\bar x}{\sqrt{\left(\frac1J + \frac{n_{test}}{n_{train}}\right)\hat\sigma^2}},
        \qquad \hat\sigma^2 = \frac{1}{J-1}\sum_j (x_j - \bar x)^2,

    referred to Student's t with :math:`J - 1` degrees of freedom. The term
    :math:`n_{test}/n_{train}` (here the mean over splits of the fold's ratio) corrects the
    variance for the overlap of training sets between splits, which the naive
    :math:`1/J` ignores; used over repeated k-fold CV it is the "corrected repeated k-fold
    cv test" of Bouckaert & Frank (2004). :math:`\bar x` is the unweighted mean of fold
    accuracies, equal to the gain when folds have equal size. Where every :math:`x_j` is the
    same, :math:`\hat\sigma = 0` and the statistic and p-value are NaN (as
    :func:`scipy.stats.ttest_1samp` gives).

    References
    ----------
    Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error. *Machine
    Learning*, 52(3), 239-281.

    Bouckaert, R. R. and Frank, E. (2004). Evaluating the replicability of significance tests
    for comparing learning algorithms. *PAKDD 2004*, LNCS 3056, 3-12.
    """
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    outcomes = check_outcomes(correct_pre, correct_rand)
    fold_codes = check_folds(folds, outcomes.n_repeats, outcomes.n_images)
    x, ratio = _fold_differences(outcomes.pre.astype(float), outcomes.rand.astype(float), fold_codes)
    n_splits = x.shape[1]
    mean = x.mean(axis=1)
    var = x.var(axis=1, ddof=1)
    scale = np.sqrt((1.0 / n_splits + ratio) * var)
    t = np.full(mean.shape, np.nan)
    np.divide(mean, scale, out=t, where=scale > 0)
    df = n_splits - 1
    if alternative == "two-sided":
        p = 2.0 * sps.t.sf(np.abs(t), df)
    elif alternative == "greater":
        p = sps.t.sf(t, df)
    else:
        p = sps.t.cdf(t, df)
    return CorrectedTTestResult(
        statistic=t,
        pvalue=np.minimum(p, 1.0),
        mean_difference=mean,
        differences=x,
        df=df,
        test_train_ratio=ratio,
        alternative=alternative,
    )
