r"""Secondary tests of "gain = 0" per layer: McNemar and the corrected resampled t-test.

All networks predict the same images in the same folds, so every test is paired per image. Both
are conditional on the random networks that were drawn (they compare the pretrained network
with these seeds); the primary test, about the distribution of random initialisations, is
:func:`layergain.stats.gain_statistics`. The former primary test, a sign flip of per-image
differences :math:`\bar c^{pre}_i - \bar c^{rand}_i`, was removed: it is conditional on the seeds and,
for S > 1, not exact (the differences are skewed under the null at high accuracy).

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

from layergain.stats._inputs import check_folds, check_outcomes
from layergain.validation import check_choice

__all__ = [
    "Alternative",
    "CorrectedTTestResult",
    "McNemarResult",
    "corrected_resampled_ttest",
    "mcnemar_tests",
    "per_image_differences",
]

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")


def per_image_differences(correct_pre: Any, correct_rand: Any) -> np.ndarray:
    r"""Per-image differences of correctness, pretrained minus mean random.

    .. math:: d_i = \frac1R \sum_r c^{pre}_{ri} - \frac{1}{SR} \sum_{s,r} c^{rand}_{sri}

    Parameters
    ----------
    correct_pre, correct_rand : array-like of bool
        Pretrained correctness (n_repeats, n_images) and random correctness
        (n_seeds, n_repeats, n_images), optionally with a leading layer axis, as in
        :func:`~layergain.stats.gain_statistics`.

    Returns
    -------
    numpy.ndarray of shape (n_layers, n_images)
        Their mean over images is the gain.
    """
    outcomes = check_outcomes(correct_pre, correct_rand)
    return outcomes.scaled_differences() / (outcomes.n_seeds * outcomes.n_repeats)


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
        :func:`~layergain.stats.gain_statistics`.

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
    not combined. The test compares the pretrained network with one random network and is
    conditional on it; p-values are not adjusted across layers or seeds.

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
        :func:`~layergain.stats.gain_statistics`.
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
