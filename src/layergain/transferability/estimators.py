r"""Transferability estimators from one layer's features and the images' labels.

Each takes features of shape (n_images, n_units) and integer labels of shape (n_images,) and
returns a float; larger means "this layer's features suit these labels better". They need no
probe training: that is their point (see ``bench/transferability.py`` for what they cost).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.transferability._spectrum import Layer, Spectrum, singular_values
from layergain.validation import check_int, check_probability

__all__ = ["gbc", "hscore", "ledoit_wolf_shrinkage", "logme", "nleep", "transrate"]


# --- LogME -------------------------------------------------------------------------------------


def logme(features: Any, labels: Any, *, tol: float = 1e-3, max_iter: int = 100) -> float:
    r"""LogME: the maximised log evidence of a Bayesian linear model of the labels (You et al. 2021).

    For each class :math:`c`, the one-vs-rest target :math:`t = 1[y = c]` is modelled as
    :math:`t = F w + \varepsilon` with prior :math:`w \sim N(0, \alpha^{-1} I_D)` and noise
    :math:`\varepsilon \sim N(0, \beta^{-1} I_n)`, :math:`F` the (n, D) features. Its log evidence

    .. math::

        \mathcal L(\alpha, \beta) = \frac D2 \log\alpha + \frac n2 \log\beta - \frac n2 \log 2\pi
          - \frac\beta2 \lVert t - F m\rVert^2 - \frac\alpha2 \lVert m\rVert^2 - \frac12 \log\lvert A\rvert,
        \quad A = \alpha I + \beta F^\top F,\ m = \beta A^{-1} F^\top t,

    is maximised by MacKay's fixed point :math:`\gamma = \sum_k \beta s_k / (\alpha + \beta s_k)`,
    :math:`\alpha \leftarrow \gamma / \lVert m \rVert^2`,
    :math:`\beta \leftarrow (n - \gamma) / \lVert t - F m \rVert^2` (:math:`s_k` the eigenvalues
    of :math:`F^\top F`), from :math:`\alpha = \beta = 1`. LogME is
    :math:`\frac1C \sum_c \mathcal L_c / n`, the mean over classes of the per-image log evidence.

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
        Raw (not standardised) features, as in the paper.
    labels : array-like of int of shape (n_images,)
    tol : float, default=1e-3
        Stop when :math:`\lambda = \alpha / \beta` changes by less than this share.
    max_iter : int, default=100

    Returns
    -------
    float
        Mean log evidence per image (nats); larger is better.

    Raises
    ------
    InputValueError
        NaN features, labels of another length, or a bad option.
    NotEnoughDataError
        Fewer than 2 classes or a class with fewer than 2 images.

    Notes
    -----
    Everything is computed from one thin SVD of :math:`F` (cost :math:`n D \min(n, D)`), so each
    class's iterations cost :math:`O(\min(n, D))`. Where versions differ: the reference code
    stops after 11 iterations at a relative change of 1e-2 and evaluates the evidence with the
    new :math:`(\alpha, \beta)` but the previous :math:`m` (and an epsilon of 1e-5 in the
    updates); here it iterates to ``tol`` and evaluates :math:`\mathcal L` exactly at the final
    :math:`(\alpha, \beta)`, with :math:`m` recomputed (the two agree at convergence).

    References
    ----------
    .. [1] You, K., Liu, Y., Wang, J., Long, M. (2021). LogME: Practical assessment of
       pre-trained models for transfer learning. ICML.
    .. [2] MacKay, D. J. C. (1992). Bayesian interpolation. Neural Computation 4, 415-447.
    """
    return _logme(Layer(features), labels, tol=tol, max_iter=max_iter)


def _logme(layer: Layer, labels: Any, *, tol: float = 1e-3, max_iter: int = 100) -> float:
    x, y, _ = layer.check(labels, "logme")
    tol = check_probability(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    spectrum = layer.raw_spectrum
    s = spectrum.values**2
    n, d = x.shape
    targets = (y[:, None] == np.arange(int(y.max()) + 1)[None, :]).astype(np.float64)  # one-vs-rest, (n, C)
    z = spectrum.project(targets)
    values = [_evidence(targets[:, c], z[:, c], s, n, d, tol, max_iter)[0] / n for c in range(targets.shape[1])]
    return float(np.mean(values))


def _evidence(t: np.ndarray, z: np.ndarray, s: np.ndarray, n: int, d: int, tol: float,
              max_iter: int) -> tuple[float, float, float]:
    """Maximised log evidence of target ``t`` (z = U^T t, s = eigenvalues), and alpha, beta."""
    tt, zz = float(t @ t), float(z @ z)
    tiny = np.finfo(float).tiny
    # A layer wider than the images can fit the target exactly (residual 0, precision beta -> inf);
    # the residual is floored at a float-rounding share of ||t||^2 so the fixed point stays finite.
    floor = max(1e-12 * tt, tiny)

    def parts(alpha: float, beta: float) -> tuple[float, float]:
        m2 = float(np.sum((beta * np.sqrt(s) * z / (alpha + beta * s)) ** 2))
        res = max(tt - zz + float(np.sum((alpha * z / (alpha + beta * s)) ** 2)), floor)
        return m2, res

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        gamma = float(np.sum(beta * s / (alpha + beta * s)))
        m2, res = parts(alpha, beta)
        new_alpha, new_beta = gamma / max(m2, tiny), max(n - gamma, tiny) / res
        done = abs(new_alpha / new_beta - alpha / beta) <= tol * (alpha / beta)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2, res = parts(alpha, beta)
    logdet = float(np.sum(np.log(alpha + beta * s))) + (d - s.size) * np.log(alpha)
    value = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
             - beta / 2 * res - alpha / 2 * m2 - logdet / 2)
    return float(value), alpha, beta


# --- H-score -----------------------------------------------------------------------------------


def ledoit_wolf_shrinkage(xc: np.ndarray, eigenvalues: np.ndarray | None = None) -> float:
    r"""Ledoit-Wolf shrinkage intensity of centred features (the formula of scikit-learn's ``LedoitWolf``).

    With :math:`S = X^\top X / n`, :math:`\mu = \operatorname{tr} S / D`,
    :math:`\delta = \lVert S - \mu I \rVert_F^2 / D` and
    :math:`b = \min(\delta, \frac{1}{n^2 D} \sum_i \lVert x_i x_i^\top - S \rVert_F^2)`, the
    shrinkage is :math:`b / \delta`. Computed from the eigenvalues of :math:`S` and the row norms
    (no D x D matrix).
    """
    n, d = xc.shape
    lam = eigenvalues if eigenvalues is not None else np.linalg.svd(xc, compute_uv=False) ** 2 / n
    row4 = float(np.sum(np.einsum("ij,ij->i", xc, xc) ** 2))
    s_f2 = float(np.sum(lam**2))
    mu = float(np.sum(lam)) / d
    b = (row4 / n - s_f2) / (d * n)
    delta = (s_f2 - 2 * mu * float(np.sum(lam)) + d * mu**2) / d
    b = min(b, delta)
    return 0.0 if b <= 0 or delta <= 0 else b / delta


def hscore(features: Any, labels: Any) -> float:
    r"""H-score with a Ledoit-Wolf shrinkage covariance (Bao et al. 2019; Ibrahim et al. 2022).

    .. math::

        H_\alpha(f) = \operatorname{tr}\!\left(\Sigma_\alpha^{-1} (1 - \alpha)\, \Sigma_B\right),
        \quad \Sigma_\alpha = (1 - \alpha) \Sigma + \alpha \mu I,\ \mu = \operatorname{tr}\Sigma / D,

    where :math:`\Sigma` is the features' covariance, :math:`\Sigma_B = \sum_c (n_c/n)
    (\bar f_c - \bar f)(\bar f_c - \bar f)^\top` the covariance of the class-conditional means
    :math:`E[f \mid y]`, and :math:`\alpha` the Ledoit-Wolf shrinkage intensity
    (:func:`ledoit_wolf_shrinkage`).

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)

    Returns
    -------
    float
        In [0, C - 1] for C classes; larger is better.

    Raises
    ------
    InputValueError
        NaN features, labels of another length.
    NotEnoughDataError
        Fewer than 2 classes or a class with fewer than 2 images.

    Notes
    -----
    Where versions differ: Bao et al.'s H-score is :math:`\operatorname{tr}(\Sigma^{-1}
    \Sigma_B)`; ports invert :math:`\Sigma` with ``numpy.linalg.pinv`` at various cut-offs
    (``rcond=1e-15`` in the widely copied one) or with ``inv``, which with more units than
    images, or nearly collapsed units, is dominated by the smallest eigenvalues and unstable.
    This is the shrinkage form of Ibrahim et al. (2022), who showed the plain H-score's
    instability; both covariances use the 1/n normalisation of the Ledoit-Wolf estimator
    (the port of Ibrahim et al. takes :math:`\Sigma_B` with 1/(n-1), a factor n/(n-1)
    apart). Computed in the span of the centred features from one thin SVD (the class means lie
    in it), so no D x D inverse is formed.

    References
    ----------
    .. [1] Bao, Y., Li, Y., Huang, S.-L., Zhang, L., Zheng, L., Zamir, A., Guibas, L. (2019).
       An information-theoretic approach to transferability in task transfer learning. ICIP.
    .. [2] Ibrahim, S., Ponomareva, N., Mazumder, R. (2022). Newer is not always better:
       Rethinking transferability metrics, their peculiarities, stability and performance.
       ECML PKDD.
    .. [3] Ledoit, O., Wolf, M. (2004). A well-conditioned estimator for large-dimensional
       covariance matrices. J. Multivariate Analysis 88, 365-411.
    """
    return _hscore(Layer(features), labels)


def _hscore(layer: Layer, labels: Any) -> float:
    x, y, counts = layer.check(labels, "hscore")
    n, d = x.shape
    xc = layer.centred
    sv, vt = layer.centred_spectrum.values, layer.centred_spectrum.vt
    if sv.size == 0:
        return 0.0
    lam = sv**2 / n
    alpha = ledoit_wolf_shrinkage(xc, np.concatenate([lam, np.zeros(min(n, d) - lam.size)]))
    mu = float(np.sum(lam)) / d
    means = np.stack([xc[y == c].mean(axis=0) for c in range(counts.size)])  # (C, D)
    proj = means @ vt.T  # (C, k): coordinates in the span
    weight = counts / n
    denom = (1 - alpha) * lam + alpha * mu
    return float((1 - alpha) * np.sum(weight[:, None] * proj**2 / denom[None, :]))


# --- NLEEP -------------------------------------------------------------------------------------


def pca_scores(spectrum: Spectrum, n_components: int | float) -> np.ndarray:
    """Principal-component scores from the spectrum of centred features: a count, or the share of variance to keep."""
    sv = spectrum.values
    if isinstance(n_components, float):
        share = np.cumsum(sv**2) / np.sum(sv**2)
        k = int(np.searchsorted(share, n_components - 1e-12) + 1)
    else:
        k = n_components
    k = max(1, min(k, sv.size))
    return spectrum.scores(k)


def nleep(
    features: Any,
    labels: Any,
    *,
    variance: float = 0.8,
    components_per_class: int = 5,
    seed: int = 0,
) -> float:
    r"""N-LEEP: LEEP on the soft clusters of a Gaussian mixture on the features (Li et al. 2021).

    The features are reduced by PCA to the fewest components that keep ``variance`` of the
    variance; a Gaussian mixture with :math:`V` components (full covariances) is fitted to
    them, and its posteriors :math:`\theta_v(x_i)` play the part of a source classifier's
    outputs in LEEP (Nguyen et al. 2020):

    .. math::

        \hat P(y, v) = \frac1n \sum_{i: y_i = y} \theta_v(x_i),\quad
        \hat P(y \mid v) = \frac{\hat P(y, v)}{\sum_{y'} \hat P(y', v)},\quad
        \mathrm{NLEEP} = \frac1n \sum_i \log \sum_v \hat P(y_i \mid v)\, \theta_v(x_i).

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)
    variance : float in (0, 1], default=0.8
        Share of variance the PCA keeps (the paper's 80 %).
    components_per_class : int, default=5
        :math:`V = ` ``components_per_class`` x the number of classes, as in the paper (5 per
        class); where that is not below the number of images, one class's worth fewer at a time
        (as common ports do).
    seed : int, default=0
        ``random_state`` of scikit-learn's ``GaussianMixture`` (k-means initialisation).

    Returns
    -------
    float
        Mean log-likelihood of the labels, at most 0; larger is better.

    Raises
    ------
    InputValueError
        NaN features, labels of another length, a bad option.
    NotEnoughDataError
        Fewer than 2 classes, a class with fewer than 2 images, or too few images for a
        mixture of one component per class.

    References
    ----------
    .. [1] Li, Y., Jia, X., Sang, R., Zhu, Y., Green, B., Wang, L., Gong, B. (2021). Ranking
       neural checkpoints. CVPR.
    .. [2] Nguyen, C., Hassner, T., Seeger, M., Archambeau, C. (2020). LEEP: A new measure to
       evaluate transferability of learned representations. ICML.
    """
    return _nleep(Layer(features), labels, variance=variance, components_per_class=components_per_class, seed=seed)


def _nleep(layer: Layer, labels: Any, *, variance: float = 0.8, components_per_class: int = 5, seed: int = 0) -> float:
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    x, y, counts = layer.check(labels, "nleep")
    variance = check_probability(variance, "variance", open_interval=False)
    per = check_int(components_per_class, "components_per_class", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    n, n_classes = x.shape[0], counts.size
    v = per * n_classes
    while v >= n and v > n_classes:
        v -= n_classes
    if v >= n:
        raise NotEnoughDataError(
            f"`nleep` fits a mixture of at least one component per class ({n_classes}) and needs more images "
            f"than components, got {n}."
        )
    z = pca_scores(layer.centred_spectrum, float(variance) if variance < 1 else x.shape[1])
    with warnings.catch_warnings(), threadpool_limits(1):  # small fits: threads only cost here
        warnings.simplefilter("ignore")  # ConvergenceWarning: the posteriors are used as they are
        theta = GaussianMixture(n_components=v, covariance_type="full", random_state=seed).fit(z).predict_proba(z)
    joint = np.zeros((n_classes, v))
    np.add.at(joint, y, theta)
    joint /= n
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), np.finfo(float).tiny)
    p = np.einsum("iv,iv->i", theta, cond[y])
    return float(np.mean(np.log(np.maximum(p, np.finfo(float).tiny))))


# --- GBC ---------------------------------------------------------------------------------------


def gbc(features: Any, labels: Any, *, n_components: int = 64) -> float:
    r"""Gaussian Bhattacharyya coefficient: minus the overlap of the classes (Pándy et al. 2022).

    After PCA to ``n_components`` dimensions, each class :math:`c` is a Gaussian with diagonal
    covariance :math:`N(\mu_c, \operatorname{diag}\sigma_c^2)`. For two classes, with
    :math:`\sigma^2 = (\sigma_i^2 + \sigma_j^2)/2`,

    .. math::

        D_B(i, j) = \frac18 \sum_k \frac{(\mu_{ik} - \mu_{jk})^2}{\sigma_k^2}
          + \frac12 \sum_k \log \frac{\sigma_k^2}{\sqrt{\sigma_{ik}^2 \sigma_{jk}^2}},\qquad
        \mathrm{GBC} = -\sum_{i} \sum_{j \ne i} e^{-D_B(i, j)}.

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)
    n_components : int, default=64
        PCA dimension (the paper's 64; fewer where the features span fewer).

    Returns
    -------
    float
        In [-C(C-1), 0] for C classes (each ordered pair counted, as in the paper's sum);
        0 for perfectly separated classes; larger is better.

    Raises
    ------
    InputValueError
        NaN features, labels of another length.
    NotEnoughDataError
        Fewer than 2 classes or a class with fewer than 2 images (a variance needs two).

    Notes
    -----
    Class variances are the maximum-likelihood (1/n_c) ones, floored at 1e-10 times the mean
    variance of the reduced features, so that a direction constant within a class does not make
    the coefficient undefined.

    References
    ----------
    .. [1] Pándy, M., Agostinelli, A., Uijlings, J., Ferrari, V., Mensink, T. (2022).
       Transferability estimation using Bhattacharyya class separability. CVPR.
    """
    return _gbc(Layer(features), labels, n_components=n_components)


def _gbc(layer: Layer, labels: Any, *, n_components: int = 64) -> float:
    x, y, counts = layer.check(labels, "gbc")
    k = check_int(n_components, "n_components", minimum=1)
    z = pca_scores(layer.centred_spectrum, k)
    mu = np.stack([z[y == c].mean(axis=0) for c in range(counts.size)])
    var = np.stack([z[y == c].var(axis=0) for c in range(counts.size)])
    var = np.maximum(var, 1e-10 * max(float(z.var(axis=0).mean()), np.finfo(float).tiny))
    pooled = (var[:, None, :] + var[None, :, :]) / 2
    diff2 = (mu[:, None, :] - mu[None, :, :]) ** 2
    log_var = np.log(var)
    db = (diff2 / pooled).sum(-1) / 8 + 0.5 * (np.log(pooled) - (log_var[:, None, :] + log_var[None, :, :]) / 2).sum(-1)
    bc = np.exp(-db)
    np.fill_diagonal(bc, 0.0)
    return float(-bc.sum())


# --- TransRate ---------------------------------------------------------------------------------


def coding_rate(z: np.ndarray, eps: float, values: np.ndarray | None = None) -> float:
    r""":math:`\frac12 \log\det(I + Z^\top Z / (n \varepsilon))` from the singular values of Z (``values`` if known)."""
    sv = singular_values(z) if values is None else values
    return 0.5 * float(np.sum(np.log1p(sv**2 / (z.shape[0] * eps))))


def transrate(features: Any, labels: Any, *, eps: float = 1e-4) -> float:
    r"""TransRate: coding rate of the features minus their coding rate given the class (Huang et al. 2022).

    With :math:`Z` the centred features (n, D), :math:`Z_c` the rows of class :math:`c`
    (:math:`n_c` of them) and :math:`C` classes,

    .. math::

        R(Z, \varepsilon) = \frac12 \log\det\!\left(I_D + \frac{1}{n \varepsilon} Z^\top Z\right),\qquad
        \mathrm{TrR} = R(Z, \varepsilon) - \frac1C \sum_c R(Z_c, \varepsilon).

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)
    eps : float, default=1e-4
        Distortion :math:`\varepsilon` of the authors' code.

    Returns
    -------
    float
        Nats; larger is better. Depends on the features' scale (through :math:`\varepsilon`).

    Raises
    ------
    InputValueError
        NaN features, labels of another length, a bad ``eps``.
    NotEnoughDataError
        Fewer than 2 classes or a class with fewer than 2 images.

    Notes
    -----
    Where versions differ: the paper writes the rate of Ma et al.,
    :math:`\frac12\log\det(I + \frac{D}{n \varepsilon^2} Z^\top Z)`, and weights the class
    rates by :math:`n_c / n`; the authors' code, followed here, uses :math:`1/(n\varepsilon)` with
    :math:`\varepsilon = 10^{-4}` and the plain mean over classes. Each class's rows are used as
    centred with the overall mean (as in the code). Each log-determinant comes from singular
    values (:math:`\log\det(I + A^\top A / c) = \sum_k \log(1 + s_k^2 / c)`), no D x D matrix.

    References
    ----------
    .. [1] Huang, L.-K., Huang, J., Rong, Y., Yang, Q., Wei, Y. (2022). Frustratingly easy
       transferability estimation. ICML.
    .. [2] Ma, Y., Derksen, H., Hong, W., Wright, J. (2007). Segmentation of multivariate mixed
       data via lossy data coding and compression. IEEE TPAMI 29, 1546-1562.
    """
    return _transrate(Layer(features), labels, eps=eps)


def _transrate(layer: Layer, labels: Any, *, eps: float = 1e-4) -> float:
    x, y, counts = layer.check(labels, "transrate")
    eps = float(eps)
    if not eps > 0:
        raise InputValueError(f"`eps` must be > 0, got {eps}.")
    z = layer.centred
    classes = [coding_rate(z[y == c], eps) for c in range(counts.size)]
    return float(coding_rate(z, eps, layer.centred_spectrum.values) - np.mean(classes))
