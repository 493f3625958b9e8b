r"""Similarity measures beside CKA and CCA: mutual k-NN alignment, shape distances, RSA.

Pure functions on two arrays of shape (n_images, n_units) describing the same images (numpy arrays
or torch tensors, computed with numpy in float64). Each returns a float.

- :func:`mutual_knn_alignment`: overlap of each image's k nearest neighbours in the two
  representations (Huh et al. 2024).
- :func:`procrustes_distance`, :func:`angular_shape_distance`: orthogonal Procrustes shape
  metrics (Williams et al. 2021).
- :func:`rsa`: correlation of the representational dissimilarity matrices (Kriegeskorte et al. 2008).

Every measure is split into a per-representation preparation and a per-pair comparison
(``prepare_*`` / ``compare_*``, private), so that :mod:`layergain.similarity.inference` prepares
each network once per resample and compares all pairs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.similarity._backend import NumpyOps
from layergain.validation import check_choice, check_int, check_paired

__all__ = ["angular_shape_distance", "mutual_knn_alignment", "procrustes_distance", "rsa"]

KnnMetric = Literal["cosine", "euclidean"]
RdmMetric = Literal["correlation", "euclidean"]
RdmCompare = Literal["spearman", "pearson"]


def _pair(x: Any, y: Any, *, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    ops = NumpyOps()
    xa = ops.validate(x, "x", min_rows=min_rows, dtype=np.float64)
    ya = ops.validate(y, "y", min_rows=min_rows, dtype=np.float64)
    check_paired(xa, ya)
    return xa, ya


# --- mutual k-nearest neighbours -------------------------------------------------------------


def check_k(k: Any, n: int) -> int:
    """``k`` must leave at least one image outside each neighbourhood: 1 <= k <= n - 2."""
    k = check_int(k, "k", minimum=1)
    if k > n - 2:
        raise NotEnoughDataError(
            f"`k` = {k} nearest neighbours need at least k + 2 = {k + 2} images (an image is not its own "
            f"neighbour, and k = n - 1 makes every neighbourhood the same), got {n}. Use k <= {max(1, n - 2)}."
        )
    return k


def prepare_knn(x: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Indices of each image's k nearest neighbours (itself excluded), shape (n, k), sorted."""
    if metric == "cosine":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        u = x / np.where(norm > 0, norm, 1.0)
        score = u @ u.T  # larger is nearer
    else:
        sq = np.einsum("ij,ij->i", x, x)
        score = -(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T))
    return knn_from_score(score, k)


def knn_from_score(score: np.ndarray, k: int) -> np.ndarray:
    """Each row's k highest-scoring other columns (the diagonal excluded), sorted; ``score`` is overwritten."""
    np.fill_diagonal(score, -np.inf)
    idx = np.argpartition(-score, k - 1, axis=1)[:, :k]
    return np.sort(idx, axis=1)


def compare_knn(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of neighbours two neighbour tables have in common."""
    n, k = a.shape
    offset = (np.arange(n) * n)[:, None]
    common = np.intersect1d(a + offset, b + offset, assume_unique=True).size
    return common / (n * k)


def mutual_knn_alignment(x: Any, y: Any, *, k: int = 10, metric: KnnMetric = "cosine") -> float:
    r"""Mutual k-nearest-neighbour alignment of two representations of the same images.

    For each image :math:`i`, :math:`N_X(i)` is the set of its :math:`k` nearest other images in
    representation :math:`X`, and likewise :math:`N_Y(i)`;

    .. math::

        m_{kNN}(X, Y) = \frac{1}{n} \sum_{i=1}^{n} \frac{\lvert N_X(i) \cap N_Y(i) \rvert}{k}.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
        Features of one layer.
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    k : int, default=10
        Neighbours per image (Huh et al. use 10).
    metric : {"cosine", "euclidean"}, default="cosine"
        Nearness. ``"cosine"``: inner product of L2-normalised features, as in the reference
        code of Huh et al. (their features are normalised before the neighbour search);
        ``"euclidean"``: Euclidean distance. Both are unchanged by rotations of either
        representation and by isotropic scaling; Euclidean also by translations.

    Returns
    -------
    float
        In [0, 1]: 1 when both representations order every image's neighbours alike; about
        :math:`k / (n - 1)` for independent representations.

    Raises
    ------
    NotEnoughDataError
        Fewer than ``k + 2`` images.
    InputValueError
        Different numbers of images, NaN or infinite values, a bad ``k`` or ``metric``.

    Notes
    -----
    Ties in distance are broken by numpy's partition (arbitrary but deterministic).

    References
    ----------
    .. [1] Huh, M., Cheung, B., Wang, T., Isola, P. (2024). The Platonic representation
       hypothesis. ICML.
    """
    metric = check_choice(metric, "metric", ("cosine", "euclidean"))
    xa, ya = _pair(x, y, min_rows=3)
    k = check_k(k, xa.shape[0])
    return compare_knn(prepare_knn(xa, k, metric), prepare_knn(ya, k, metric))


# --- Procrustes shape metrics -----------------------------------------------------------------


def prepare_shape(x: np.ndarray) -> np.ndarray:
    """Centred features scaled to unit Frobenius norm (raises for a constant layer)."""
    xc = x - x.mean(axis=0)
    norm = np.linalg.norm(xc)
    if not norm > 0:
        raise InputValueError(
            "The features are constant across images, so their shape (centred, unit-norm) is undefined. "
            "Check that the layer's features are not collapsed."
        )
    return xc / norm


def nuclear_cross(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`\lVert A^\top B \rVert_*` (sum of singular values), in the cheaper of two forms."""
    n, p = a.shape
    q = b.shape[1]
    if min(p, q) <= n:
        return float(np.linalg.svd(a.T @ b, compute_uv=False).sum())
    # Wide features: A^T B = V_a S_a U_a^T U_b S_b V_b^T has the singular values of the n x n core.
    ua, sa, _ = np.linalg.svd(a, full_matrices=False)
    ub, sb, _ = np.linalg.svd(b, full_matrices=False)
    core = (sa[:, None] * (ua.T @ ub)) * sb[None, :]
    return float(np.linalg.svd(core, compute_uv=False).sum())


def compare_angular(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip(nuclear_cross(a, b), -1.0, 1.0)))


def compare_procrustes(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(max(2.0 - 2.0 * nuclear_cross(a, b), 0.0)))


def procrustes_distance(x: Any, y: Any) -> float:
    r"""Orthogonal Procrustes distance between two representations of the same images.

    With :math:`\bar X`, :math:`\bar Y` the column-centred features scaled to unit Frobenius norm
    (zero-padded to a common width, which changes nothing below),

    .. math::

        d_P(X, Y) = \min_{Q^\top Q = I} \lVert \bar X - \bar Y Q \rVert_F
            = \sqrt{2 - 2 \lVert \bar X^\top \bar Y \rVert_*},

    where :math:`\lVert\cdot\rVert_*` is the nuclear norm (sum of singular values).

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.

    Returns
    -------
    float
        In [0, sqrt(2)]; 0 when ``y`` is a rotation (or reflection) of ``x`` up to translation
        and isotropic scale. A distance: larger is *less* similar.

    Raises
    ------
    InputValueError
        Different numbers of images, NaN or infinite values, or a constant layer.
    NotEnoughDataError
        Fewer than 2 images.

    Notes
    -----
    This is the metric of Williams et al. with partial whitening :math:`\alpha = 1` (no
    whitening: the Procrustes end of their family; :math:`\alpha = 0` would be CCA, see
    :func:`~layergain.similarity.cca`). The unit-norm scaling makes it a metric on shapes
    (invariant to isotropic scaling), as in their size-and-shape-free form.

    References
    ----------
    .. [1] Williams, A. H., Kunz, E., Kornblith, S., Linderman, S. W. (2021). Generalized shape
       metrics on neural representations. NeurIPS.
    .. [2] Gower, J. C. (1975). Generalized Procrustes analysis. Psychometrika 40, 33-51.
    """
    xa, ya = _pair(x, y, min_rows=2)
    return compare_procrustes(prepare_shape(xa), prepare_shape(ya))


def angular_shape_distance(x: Any, y: Any) -> float:
    r"""Angular Procrustes shape distance (Williams et al. 2021) between two representations.

    .. math::

        \theta(X, Y) = \arccos \frac{\lVert \bar X^\top \bar Y \rVert_*}
            {\lVert \bar X \rVert_F \, \lVert \bar Y \rVert_F}

    with :math:`\bar X`, :math:`\bar Y` the column-centred features: the angle between the two
    shapes after the best rotation, a metric in [0, pi/2] (partial whitening :math:`\alpha = 1`).
    It relates to :func:`procrustes_distance` by :math:`d_P = 2 \sin(\theta / 2)`.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.

    Returns
    -------
    float
        Radians in [0, pi/2]. A distance: larger is *less* similar.

    Raises
    ------
    InputValueError
        Different numbers of images, NaN or infinite values, or a constant layer.
    NotEnoughDataError
        Fewer than 2 images.

    References
    ----------
    .. [1] Williams, A. H., Kunz, E., Kornblith, S., Linderman, S. W. (2021). Generalized shape
       metrics on neural representations. NeurIPS (eq. 4, angular distance).
    """
    xa, ya = _pair(x, y, min_rows=2)
    return compare_angular(prepare_shape(xa), prepare_shape(ya))


# --- representational similarity analysis ---------------------------------------------------


def prepare_rdm(x: np.ndarray, rdm: str, compare: str) -> np.ndarray:
    """Upper triangle of the RDM (ranked for Spearman), centred and scaled to unit norm."""
    return rdm_vector(rdm_matrix(x, rdm), compare)


def rdm_matrix(x: np.ndarray, rdm: str) -> np.ndarray:
    """The n x n dissimilarity matrix of the images (an entry depends on its two images only)."""
    if rdm == "correlation":
        z = x - x.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        if not np.all(norm > 0):
            raise InputValueError(
                "An image's feature vector is constant across units, so its correlation distance is "
                "undefined. Use rdm='euclidean', or check the layer."
            )
        z = z / norm
        d = 1.0 - z @ z.T
    else:
        sq = np.einsum("ij,ij->i", x, x)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    return d


def rdm_vector(d: np.ndarray, compare: str) -> np.ndarray:
    """An RDM's upper triangle (ranked for Spearman), centred and scaled to unit norm."""
    v = d[np.triu_indices(d.shape[0], k=1)]
    if compare == "spearman":
        v = rankdata(v)
    v = v - v.mean()
    norm = np.linalg.norm(v)
    if not norm > 0:
        raise InputValueError("Every pair of images is equally dissimilar (a constant RDM); RSA is undefined.")
    return v / norm


def compare_rdm(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def rsa(x: Any, y: Any, *, rdm: RdmMetric = "correlation", compare: RdmCompare = "spearman") -> float:
    r"""Representational similarity analysis: correlation of the two dissimilarity matrices.

    With :math:`D^X_{ij}` the dissimilarity of images :math:`i` and :math:`j` in representation
    :math:`X` (the representational dissimilarity matrix, RDM) and likewise :math:`D^Y`,

    .. math::

        \mathrm{RSA}(X, Y) = \operatorname{corr}\bigl(\{D^X_{ij}\}_{i<j}, \{D^Y_{ij}\}_{i<j}\bigr),

    the correlation of the :math:`n(n-1)/2` entries of the upper triangles.

    Parameters
    ----------
    x : array-like of shape (n_images, n_units_x)
    y : array-like of shape (n_images, n_units_y)
        Features of the same images, in the same order.
    rdm : {"correlation", "euclidean"}, default="correlation"
        Dissimilarity: ``"correlation"`` is :math:`1 - r` between two images' feature vectors
        (across units; the usual choice of Kriegeskorte et al. and rsatoolbox),
        ``"euclidean"`` the Euclidean distance. Only the Euclidean RDM is unchanged by rotations
        of the features; both are unchanged by isotropic scaling.
    compare : {"spearman", "pearson"}, default="spearman"
        Correlation of the RDMs: Spearman's rank correlation (the default: it assumes only
        a monotonic relation between dissimilarities, as Kriegeskorte et al. recommend) or
        Pearson's. Ties get average ranks.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical (or, with Spearman, monotonically related) RDMs.

    Raises
    ------
    NotEnoughDataError
        Fewer than 3 images (fewer than 2 pairs).
    InputValueError
        Different numbers of images, NaN or infinite values, a bad option, an image constant
        across units (correlation RDM), or a constant RDM.

    References
    ----------
    .. [1] Kriegeskorte, N., Mur, M., Bandettini, P. (2008). Representational similarity
       analysis -- connecting the branches of systems neuroscience. Frontiers in Systems
       Neuroscience 2, 4.
    .. [2] Nili, H., Wingfield, C., Walther, A., Su, L., Marslen-Wilson, W., Kriegeskorte, N.
       (2014). A toolbox for representational similarity analysis. PLoS Comput. Biol. 10, e1003553.
    """
    rdm = check_choice(rdm, "rdm", ("correlation", "euclidean"))
    compare = check_choice(compare, "compare", ("spearman", "pearson"))
    xa, ya = _pair(x, y, min_rows=3)
    return compare_rdm(prepare_rdm(xa, rdm, compare), prepare_rdm(ya, rdm, compare))
