r"""Variance components of the knowledge gain: images (or groups) and random initialisations.

The design is crossed: every network predicts every image. An estimate such as the gain
:math:`\hat g = A_{pre} - \frac1S \sum_s A_s` (accuracies :math:`A` over the N images) varies
for two reasons, and the population a result speaks about has both:

- **the images** (or the groups — patients, slides — where images are clustered): another draw
  of images from the same source gives other accuracies for every network at once;
- **the networks**: another draw of random initialisations gives other random accuracies, and
  (under ``pretrained_spread=True``) the pretrained network is treated as one draw of
  "pretrained networks" whose network-to-network spread is that of the random twins — under the
  null hypothesis "pretraining gives nothing" it *is* one more random draw.

Resampling images and seeds together counts the per-image noise of each random network twice
(it moves with the images and with the seed); here each part is estimated once:

.. math::

    \widehat{\mathrm{Var}}(\hat\theta) = V_{units} + V_{networks},\qquad
    V_{units} = \sum_u \frac{U_u^2}{1 - h_u},\qquad
    V_{networks} = \max\bigl(0,\; Q - Q_{int}\bigr),

where :math:`U_u` is the first-order contribution of unit u (an image, or a group) to the
estimate, :math:`h_u` its leverage (CR2, Bell & McCaffrey 2002: :math:`h_u = n_u / N` for a
group of :math:`n_u` images, :math:`1 / n_h` for an image in a class stratum of :math:`n_h`),
:math:`Q` the plug-in variance of the estimate's network part from the spread of the S random
networks' accuracies, and :math:`Q_{int}` the part of that spread which is only the
network-by-image noise already counted in :math:`V_{units}` (estimated from the units). The
reference distribution is a generalised pivotal quantity (:func:`pivot_draws`) with the units
part on G - 1 degrees of freedom (N - classes for images) and the networks part on S - 1,
so few groups or few seeds give wide intervals rather than wrong ones. Intervals and tests
come from the same estimate, standard error and degrees of freedom, so they agree exactly.

Every estimate handled here is a linear combination (or is linearised into one) of the
pretrained accuracy and the mean random accuracy of "columns" — (image set, layer) pairs:
:math:`\hat\theta = \sum_j \alpha_j A_{pre,j} + \beta_j \bar A_j`.

References
----------
Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression
with multi-stage samples. *Survey Methodology*, 28(2), 169-181.

Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance components.
*Biometrics Bulletin*, 2(6), 110-114.

Searle, S. R., Casella, G. and McCulloch, C. E. (1992). *Variance Components*. Wiley (ch. 4,
two-way crossed random models).

Westfall, P. H. and Young, S. S. (1993). *Resampling-Based Multiple Testing*. Wiley (minP
step-down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from layergain.stats._inputs import Outcomes

__all__ = [
    "Contrasts",
    "CrossedDesign",
    "Sample",
    "contrast_inference",
    "covariance",
    "design",
    "evaluate",
    "infer",
    "joint",
    "pivot_draws",
    "step_down",
    "too_few_units",
]

# Below this many units per sample (after strata) no calibrated statement is made.
MIN_UNIT_DF = 2.0


def too_few_units(samples: Sequence[Sample]) -> list[Sample]:
    """The samples whose units give fewer than :data:`MIN_UNIT_DF` degrees of freedom."""
    return [s for s in samples if s.df < MIN_UNIT_DF - 1e-9]


@dataclass(frozen=True)
class Sample:
    """One image set ready for the variance components.

    ``pre`` (n_units, n_layers) and ``rand`` (n_units, n_seeds, n_layers): contributions of each
    unit to the pretrained and each random network's accuracy, centred within strata;
    ``leverage`` (n_units,); ``df``: degrees of freedom of the units part (G - 1, or N - classes).
    """

    pre: np.ndarray
    rand: np.ndarray
    leverage: np.ndarray
    df: float
    kind: str  # "image" or "group"
    stratified_by: str
    n_units: int


@dataclass(frozen=True)
class CrossedDesign:
    """Image sets x layers x networks: accuracies and the samples' unit contributions."""

    samples: tuple[Sample, ...]
    acc_pre: np.ndarray  # (n_sets, n_layers)
    acc_rand: np.ndarray  # (n_seeds, n_sets, n_layers)

    @property
    def n_seeds(self) -> int:
        return self.acc_rand.shape[0]

    @property
    def n_layers(self) -> int:
        return self.acc_pre.shape[1]


def _units(labels: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, tuple[np.ndarray, ...], str, str]:
    """(unit of each image, strata of units, kind, stratified_by).

    Images are stratified by class (class counts are fixed by the way most sets are built);
    groups are not stratified (a patient's images may span classes).
    """
    if groups is None:
        strata = tuple(np.flatnonzero(labels == c) for c in np.unique(labels))
        return np.arange(labels.shape[0]), strata, "image", "class"
    n_groups = int(groups.max()) + 1
    return groups, (np.arange(n_groups),), "group", "none"


def sample(outcomes: Outcomes, labels: np.ndarray, groups: np.ndarray | None) -> Sample:
    """Unit contributions of one image set (repeats averaged per image first)."""
    of_image, strata, kind, by = _units(labels, groups)
    n_units = int(of_image.max()) + 1
    size = np.bincount(of_image, minlength=n_units).astype(np.float64)
    n = size.sum()
    p = outcomes.per_image_pre()  # (L, N)
    q = outcomes.per_image_rand()  # (L, S, N)
    if kind == "image":
        t_pre, t_rand = p.T, np.moveaxis(q, -1, 0)  # (U, L), (U, L, S)
    else:
        onehot = np.zeros((n_units, p.shape[1]))
        onehot[of_image, np.arange(p.shape[1])] = 1.0
        t_pre = onehot @ p.T
        t_rand = np.einsum("un,lsn->uls", onehot, q)
    pre = (t_pre - size[:, None] * (t_pre.sum(0) / n)) / n
    rand = (t_rand - size[:, None, None] * (t_rand.sum(0) / n)) / n
    leverage = np.empty(n_units)
    for stratum in strata:
        pre[stratum] -= pre[stratum].mean(axis=0)
        rand[stratum] -= rand[stratum].mean(axis=0)
        leverage[stratum] = 1.0 / stratum.size if kind == "image" else size[stratum] / n
    # images: N minus the class strata; groups: G - 1 (CR2 with t(G - 1), Cameron & Miller 2015).
    # The Bell-McCaffrey df (7.2 for Kather's 10 unequal slides) was tried and measured
    # conservative in the calibration scenarios (coverage 0.967 with 10 and 0.973 with 40 unequal
    # groups, against 0.954 and 0.970 with G - 1; size with 10 groups 0.027 against 0.043).
    df = float(n_units - len(strata))
    return Sample(
        pre=pre,
        rand=np.swapaxes(rand, 1, 2),  # (U, S, L)
        leverage=leverage,
        df=df,
        kind=kind,
        stratified_by=by,
        n_units=n_units,
    )


def design(sets: Sequence[tuple[Outcomes, np.ndarray, np.ndarray | None]]) -> CrossedDesign:
    """The crossed design of one or several image sets that share layers and random seeds."""
    samples = tuple(sample(o, labels, groups) for o, labels, groups in sets)
    acc_pre = np.stack([o.per_image_pre().mean(axis=1) for o, _, _ in sets])
    acc_rand = np.stack([o.per_image_rand().mean(axis=2).T for o, _, _ in sets], axis=1)  # (S, K, L)
    return CrossedDesign(samples=samples, acc_pre=acc_pre, acc_rand=acc_rand)


@dataclass(frozen=True)
class Contrasts:
    """Estimates of k linear contrasts with their variance components.

    Arrays have shape (k,) unless said. ``var_units`` (and ``var_units_by_set`` (n_sets, k) with
    ``df_sets`` (n_sets,)) is the spread between images or groups; ``q`` the plug-in network
    part with ``df_q`` degrees of freedom, ``q_int`` its network-by-image share;
    ``var_networks`` = max(0, q - q_int). ``se`` is the root of their sum and ``df`` its
    Welch–Satterthwaite degrees of freedom (a summary; the reference distribution is
    :func:`pivot_draws`). ``corr_units`` and ``corr_networks`` (k, k) correlate the contrasts'
    two parts. ``reason`` is "" or why a contrast has no calibrated inference (se, df NaN).
    """

    estimate: np.ndarray
    var_units: np.ndarray
    var_units_by_set: np.ndarray
    df_sets: np.ndarray
    q: np.ndarray
    q_int: np.ndarray
    df_q: np.ndarray
    var_networks: np.ndarray
    se: np.ndarray
    df: np.ndarray
    corr_units: np.ndarray
    corr_networks: np.ndarray
    reason: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Indices of the contrasts with a calibrated inference."""
        return np.flatnonzero(self.reason == "")


def _corr(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    zero = sd == 0
    sd[zero] = 1.0
    corr = cov / np.outer(sd, sd)
    corr[zero, :] = 0.0
    corr[:, zero] = 0.0
    corr[zero, zero] = 1.0
    return corr


def evaluate(
    model: CrossedDesign,
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    pretrained_spread: bool,
    degenerate: str = "keep",
) -> Contrasts:
    r"""Estimates and variance components of contrasts.

    Parameters
    ----------
    model : CrossedDesign
    alpha, beta : numpy.ndarray of shape (k, n_sets, n_layers)
        Coefficients of the pretrained accuracy and of the mean random accuracy of each column.
    pretrained_spread : bool
        Count the pretrained network's own network-to-network spread (the random twins' spread
        at the same columns, loaded by ``alpha``): the target is then the gain of pretraining
        over the distribution of random initialisations. False: conditional on this pretrained
        network (its accuracy is a fixed quantity).
    degenerate : {"keep", "nan"}, default="keep"
        A contrast whose observed parts do not hold the network-by-image share the pivot takes
        off (``var_units + q <= q_int``) gets a zero-width reference; ``"nan"`` marks it
        uncalibrated with its reason instead.

    Notes
    -----
    With :math:`\tilde A_s = A_s - \bar A` (S x columns), :math:`a = \beta` and
    :math:`b = \alpha` (or 0), the network part is
    :math:`Q = \frac1S a^\top \hat C a + b^\top \hat C b` with
    :math:`\hat C = \frac{1}{S-1}\sum_s \tilde A_s \tilde A_s^\top`, a Wishart quadratic form
    with :math:`(S-1)\,Q^2 / \operatorname{tr}((B\hat C)^2)` degrees of freedom (S - 1 for a
    gain); :math:`Q_{int}` is the same form with :math:`\hat C` replaced by the units' estimate
    of the network-by-image noise in :math:`\tilde A_s`.
    """
    k = alpha.shape[0]
    n_sets = len(model.samples)
    n_seeds = model.n_seeds
    estimate = np.einsum("kjl,jl->k", alpha, model.acc_pre) + np.einsum(
        "kjl,jl->k", beta, model.acc_rand.mean(axis=0)
    )
    cov_units = np.zeros((k, k))
    by_set = np.zeros((n_sets, k))
    cov_int = np.zeros((k, k))
    df_int = 0.0
    for j, smp in enumerate(model.samples):
        scale = 1.0 / np.sqrt(1.0 - smp.leverage)
        u = (smp.pre @ alpha[:, j, :].T + smp.rand.mean(axis=1) @ beta[:, j, :].T) * scale[:, None]
        cov = u.T @ u
        cov_units += cov
        by_set[j] = np.diag(cov)
        if n_seeds >= 2:
            resid = (smp.rand - smp.rand.mean(axis=1, keepdims=True)) * scale[:, None, None]  # (U, S, L)
            e = np.einsum("usl,kl->usk", resid, beta[:, j, :]) / n_seeds**0.5
            if pretrained_spread:  # the two quadratic forms add
                e = np.concatenate([e, np.einsum("usl,kl->usk", resid, alpha[:, j, :])], axis=1)
            cov_int += np.einsum("usk,usm->km", e, e) / (n_seeds - 1)
            df_int += (smp.n_units - 1) * (n_seeds - 1)
    df_sets = np.array([s.df for s in model.samples])
    var_units = np.diag(cov_units).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        df_units = var_units**2 / np.sum(by_set**2 / df_sets[:, None], axis=0)

    reason = np.full(k, "", dtype=object)
    needs_networks = np.any(beta != 0, axis=(1, 2)) | (pretrained_spread & np.any(alpha != 0, axis=(1, 2)))
    if n_seeds < 2:
        reason[needs_networks] = (
            f"{n_seeds} random seed: the spread between random initialisations cannot be estimated; "
            "use at least 2 seeds"
        )
        beta = np.zeros_like(beta)
        pretrained_spread = False
        n_seeds_q = 2  # the network part below is then 0
    else:
        n_seeds_q = n_seeds
    centred = (model.acc_rand - model.acc_rand.mean(axis=0)).reshape(n_seeds, -1)
    ya = centred @ beta.reshape(k, -1).T  # (S, k)
    yb = centred @ alpha.reshape(k, -1).T if pretrained_spread else np.zeros_like(ya)
    c_aa = ya.T @ ya / (n_seeds_q - 1)
    c_bb = yb.T @ yb / (n_seeds_q - 1)
    c_ab = ya.T @ yb / (n_seeds_q - 1)
    cov_q = c_aa / n_seeds + c_bb
    q = np.diag(cov_q).copy()
    q_int = np.diag(cov_int).copy()
    tr2 = np.diag(c_aa) ** 2 / n_seeds**2 + 2 * np.diag(c_ab) ** 2 / n_seeds + np.diag(c_bb) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        df_q = np.where(tr2 > 0, (n_seeds_q - 1) * q**2 / tr2, n_seeds_q - 1.0)
    var_networks = np.maximum(q - q_int, 0.0)
    variance = var_units + var_networks
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = np.where(var_units > 0, var_units**2 / df_units, 0.0) + np.where(
            var_networks > 0, q**2 / df_q + q_int**2 / max(df_int, 1.0), 0.0
        )
        df = variance**2 / denom
    low = too_few_units(model.samples)
    if low:
        reason[reason == ""] = (
            f"{low[0].n_units} {low[0].kind}s give {low[0].df:.1f} degrees of freedom for the spread "
            f"between {low[0].kind}s; at least {MIN_UNIT_DF:g} are needed for a calibrated interval"
        )
    reason[(variance <= 0) & (reason == "")] = (
        "no variation between images or networks: every network is right or wrong alike on every image"
    )
    # The pivot takes the network-by-image share off the sum of both parts; where the observed parts
    # do not even hold that share (S = 2 seeds that happen to score alike, their per-image noise all
    # in the images' part) it would say the estimate is exactly known (a zero-width interval).
    # ``degenerate="nan"`` says so instead (the configurations' comparison); the run's statistics
    # keep the calibrated behaviour measured in tests/stats/test_calibration.py for now.
    degenerate_cells = (var_units + q <= q_int) & (q_int > 0) & (reason == "")
    reason[degenerate_cells & (degenerate == "nan")] = (
        f"the {n_seeds} random seeds' accuracies are closer than their per-image disagreement allows (the "
        "seeds' spread is below the network-by-image share it contains): too few seeds for a calibrated "
        "interval here; use more seeds"
    )
    bad = reason != ""
    return Contrasts(
        estimate=estimate,
        var_units=var_units,
        var_units_by_set=by_set,
        df_sets=df_sets,
        q=q,
        q_int=q_int,
        df_q=df_q,
        var_networks=var_networks,
        se=np.where(bad, np.nan, np.sqrt(variance)),
        df=np.where(bad, np.nan, df),
        corr_units=_corr(cov_units),
        corr_networks=_corr(cov_q),
        reason=reason,
    )


def _psd(matrix: np.ndarray) -> np.ndarray:
    """Nearest positive semi-definite matrix (negative eigenvalues set to 0)."""
    sym = (matrix + matrix.T) / 2.0
    values, vectors = np.linalg.eigh(sym)
    return (vectors * np.maximum(values, 0.0)) @ vectors.T


def _normal(rng: np.random.Generator, corr: np.ndarray, n_draws: int) -> np.ndarray:
    values, vectors = np.linalg.eigh(corr)
    root = vectors * np.sqrt(np.maximum(values, 0.0))
    return rng.standard_normal((n_draws, corr.shape[0])) @ root.T


def pivot_draws(contrasts: Contrasts, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    r"""Draws of the estimation error of every calibrated contrast, shape (n_draws, n_ok).

    A generalised pivotal quantity (Weerahandi 1993; Krishnamoorthy & Mathew 2004 for sums of
    variance components): each variance part is replaced by its observed value divided by a
    chi-square over its degrees of freedom,

    .. math::

        D = \sqrt{\frac{\max(0,\; U + N - Q_{int})}{U + N}}\,\bigl(\sqrt{U}\, Z_1 + \sqrt{N}\, Z_2\bigr),
        \qquad U = \textstyle\sum_j V_j \nu_j / \chi^2_{\nu_j},\quad N = Q\,\nu_Q / \chi^2_{\nu_Q},

    the network-by-image share :math:`Q_{int}` (estimated with many degrees of freedom) taken off
    the sum of both parts, as in the two-way random model's :math:`MS_A + MS_B - MS_E`, not off
    the seeds' part alone (which, truncated at 0 with S - 1 = 4 degrees of freedom, made the
    intervals too wide: coverage 0.974 where 0.95 was asked),

    so that :math:`\hat\theta - D` is distributed as the contrast given the data. With one part it
    is exactly Student's t; with a network part from S = 2 seeds it has the heavy tail of one
    degree of freedom, weighted by how much of the variance the seeds' spread carries. The
    interval and the p-value both read these draws, so they agree exactly. Contrasts share their
    chi-squares (one per image set, one for the seeds: the same units and seeds) and their
    normals are correlated as the estimates are, so joint statements over contrasts (max-T,
    simultaneous bands) read the same draws.
    """
    ok = contrasts.ok
    b = n_draws
    z1 = _normal(rng, contrasts.corr_units[np.ix_(ok, ok)], b)
    z2 = _normal(rng, contrasts.corr_networks[np.ix_(ok, ok)], b)
    v_units = np.zeros((b, ok.size))
    for j, nu in enumerate(contrasts.df_sets):
        v_units += contrasts.var_units_by_set[j, ok][None, :] * (nu / rng.chisquare(nu, b))[:, None]
    u = rng.random(b)
    v_net = np.zeros((b, ok.size))
    q, q_int, df_q = contrasts.q[ok], contrasts.q_int[ok], contrasts.df_q[ok]
    for nu in np.unique(df_q[q > 0]):  # one quantile per distinct df (a gain's is S - 1)
        cols = np.flatnonzero((df_q == nu) & (q > 0))
        chi = np.maximum(sps.chi2.ppf(u, nu), 1e-300)
        v_net[:, cols] = q[cols][None, :] * (nu / chi)[:, None]
    # the network-by-image share is subtracted from the sum of both parts (the two-way random
    # model's MS_A + MS_B - MS_E), never from the seeds' part alone
    total = v_units + v_net
    shrink = np.sqrt(np.maximum(total - q_int[None, :], 0.0) / np.where(total > 0, total, 1.0))
    return shrink * (np.sqrt(v_units) * z1 + np.sqrt(v_net) * z2)


def _order_statistic(abs_draws: np.ndarray, level: np.ndarray | float) -> np.ndarray:
    """Half-widths h with "p < 1 - level" exactly when |estimate| > h (see :func:`infer`)."""
    b = abs_draws.shape[0]
    m = b - np.ceil((1.0 - np.asarray(level)) * b - 1e-9).astype(int)  # 0-based index of d_(m+1)
    srt = np.sort(abs_draws, axis=0)
    m = np.clip(m, 0, b - 1)
    return np.take_along_axis(srt, np.broadcast_to(m, (1, abs_draws.shape[1])), axis=0)[0]


def infer(
    contrasts: Contrasts, draws: np.ndarray, *, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values (k,) and intervals (k, 2) from :func:`pivot_draws`; NaN where not calibrated.

    p is the share of draws with :math:`|D| \\ge |\\hat\\theta|` (at least 1/B: the resolution of B
    draws); the interval is :math:`\\hat\\theta \\pm h` with h the order statistic of :math:`|D|`
    chosen so that 0 lies outside it exactly when p < 1 - confidence.
    """
    k = contrasts.estimate.shape[0]
    ok = contrasts.ok
    p = np.full(k, np.nan)
    ci = np.full((k, 2), np.nan)
    if ok.size == 0:
        return p, ci
    est = contrasts.estimate[ok]
    absd = np.abs(draws)
    count = np.sum(absd >= np.abs(est)[None, :], axis=0)
    p[ok] = np.maximum(count, 1) / draws.shape[0]
    half = _order_statistic(absd, confidence)
    ci[ok] = np.stack([est - half, est + half], axis=-1)
    return p, ci


def contrast_inference(
    model: CrossedDesign, alpha: np.ndarray, beta: np.ndarray, *, pretrained_spread: bool, n_draws: int,
    confidence: float, rng: np.random.Generator, degenerate: str = "keep",
) -> tuple[Contrasts, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`evaluate`, :func:`pivot_draws` and :func:`infer` in one: (contrasts, draws, p, interval)."""
    contrasts = evaluate(model, alpha, beta, pretrained_spread=pretrained_spread, degenerate=degenerate)
    draws = pivot_draws(contrasts, n_draws, rng)
    p, ci = infer(contrasts, draws, confidence=confidence)
    return contrasts, draws, p, ci


def joint(
    contrasts: Contrasts, draws: np.ndarray, pvalues: np.ndarray, *, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Family-wise adjusted p-values (minP step-down) and a simultaneous band, from the same draws.

    Returns (adjusted p (k,), band (k, 2)); contrasts without a calibrated inference are left out
    of the family (NaN). The band's half-width at contrast k is the quantile of :math:`|D_k|` at
    :math:`1 - c`, with c the :math:`1 - \\text{confidence}` quantile of a draw's smallest p: all
    contrasts lie in it together with probability ``confidence``. See :func:`step_down`.
    """
    k = contrasts.estimate.shape[0]
    ok = contrasts.ok
    adjusted = np.full(k, np.nan)
    band = np.full((k, 2), np.nan)
    if ok.size == 0:
        return adjusted, band
    absd = np.abs(draws)
    adjusted[ok], p_null = step_down(absd, pvalues[ok])
    c = np.quantile(p_null.min(axis=1), 1.0 - confidence)
    half = _order_statistic(absd, 1.0 - c)
    est = contrasts.estimate[ok]
    band[ok] = np.stack([est - half, est + half], axis=-1)
    return adjusted, band


def step_down(null_statistics: np.ndarray, pvalues: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """minP step-down adjusted p-values of a family (Westfall & Young 1993, Algorithm 2.8).

    ``null_statistics`` (n_draws, m): joint draws of the m statistics under their reference
    distribution (larger is more extreme); ``pvalues`` (m,): the observed p-values, read off the
    same draws. A draw's p of statistic j is its rank among the draws of j; the adjusted p-value
    of the j-th smallest observed p is the share of draws in which the smallest p among the
    statistics not yet rejected falls at or below it, made monotone. Returns (adjusted (m,),
    the draws' p-values (n_draws, m)).
    """
    b = null_statistics.shape[0]
    ranks = np.argsort(np.argsort(-null_statistics, axis=0, kind="stable"), axis=0)  # 0 = largest
    p_null = (ranks + 1) / b
    order = np.argsort(pvalues, kind="stable")
    tail_min = np.minimum.accumulate(p_null[:, order][:, ::-1], axis=1)[:, ::-1]
    adj = np.mean(tail_min <= pvalues[order][None, :], axis=0)
    adjusted = np.empty_like(adj)
    adjusted[order] = np.maximum(np.maximum.accumulate(adj), pvalues[order])
    return adjusted, p_null


def covariance(contrasts: Contrasts) -> np.ndarray:
    """Point estimate of the contrasts' covariance (units part plus network part), (k, k)."""
    su = np.sqrt(contrasts.var_units)
    sn = np.sqrt(np.nan_to_num(contrasts.var_networks))
    return contrasts.corr_units * np.outer(su, su) + contrasts.corr_networks * np.outer(sn, sn)
