r"""Cross-validated nearest-neighbour and nearest-class-mean accuracy on the run's folds.

Both train nothing but a lookup, on the same folds as the linear probe
(:func:`layergain.probes.make_folds`), so they are comparable to its out-of-fold accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layergain.errors import NotEnoughDataError
from layergain.transferability._checks import check_features_labels, check_folds
from layergain.validation import check_int

__all__ = ["knn_accuracy", "ncc_accuracy"]


def _sq_distances(test: np.ndarray, train: np.ndarray) -> np.ndarray:
    d = np.einsum("ij,ij->i", test, test)[:, None] + np.einsum("ij,ij->i", train, train)[None, :]
    return np.maximum(d - 2.0 * (test @ train.T), 0.0)


def knn_accuracy(features: Any, labels: Any, folds: Any, *, k: int = 10) -> float:
    r"""Out-of-fold accuracy of a k-nearest-neighbour classifier, mean over CV repeats.

    Each test image gets the majority label of its :math:`k` nearest training images in
    Euclidean distance on the raw features,

    .. math::

        \hat y(x) = \arg\max_c \sum_{j \in N_k(x)} 1[y_j = c],

    with ties broken towards the smallest class code (as scikit-learn's
    ``KNeighborsClassifier``). The accuracy of repeat :math:`r` is the share of images whose
    out-of-fold prediction is right; the result is the mean over repeats.

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)
    folds : array-like of int of shape (n_repeats, n_images)
        The run's folds (:func:`layergain.probes.make_folds`).
    k : int, default=10
        Neighbours; at most the size of the smallest training fold.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Raises
    ------
    InputValueError
        NaN features, mismatched lengths, folds of another shape.
    NotEnoughDataError
        Fewer than 2 classes, a class with fewer than 2 images, a repeat with one fold, or
        ``k`` larger than a training fold.

    Notes
    -----
    Unchanged by rotations, translations and isotropic scaling of the features (up to
    floating-point ties in distance). Features are not standardised: per-unit scaling would
    break the rotation invariance and is not what the DINO/SimCLR-style kNN evaluation does.

    References
    ----------
    .. [1] Cover, T., Hart, P. (1967). Nearest neighbor pattern classification. IEEE Trans.
       Information Theory 13, 21-27.
    .. [2] Wu, Z., Xiong, Y., Yu, S. X., Lin, D. (2018). Unsupervised feature learning via
       non-parametric instance discrimination. CVPR (kNN evaluation of representations).
    """
    x, y, counts = check_features_labels(features, labels, "knn_accuracy")
    f = check_folds(folds, x.shape[0])
    k = check_int(k, "k", minimum=1)
    n_classes = counts.size
    acc = []
    for r in range(f.shape[0]):
        right = 0
        for fold in np.unique(f[r]):
            test = f[r] == fold
            train = ~test
            if train.sum() < k:
                raise NotEnoughDataError(
                    f"`k` = {k} exceeds the {int(train.sum())} training images of fold {fold} (repeat {r}); "
                    f"use k <= {int(train.sum())}."
                )
            # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b: the test image's own norm does not change
            # which training images are nearest, so it is left out (one GEMM and one addition).
            reference = x[train]
            d = x[test] @ reference.T
            d *= -2.0
            d += np.einsum("ij,ij->i", reference, reference)[None, :]
            near = np.argpartition(d, k - 1, axis=1)[:, :k]
            votes = np.zeros((near.shape[0], n_classes))
            np.add.at(votes, (np.arange(near.shape[0])[:, None], y[train][near]), 1.0)
            right += int(np.sum(votes.argmax(axis=1) == y[test]))
        acc.append(right / x.shape[0])
    return float(np.mean(acc))


def ncc_accuracy(features: Any, labels: Any, folds: Any) -> float:
    r"""Out-of-fold accuracy of the nearest class mean on centred, L2-normalised features (SimpleShot).

    In each training fold, with :math:`\bar x` the training mean, every feature vector becomes
    :math:`\tilde x = (x - \bar x) / \lVert x - \bar x \rVert` ("CL2N"); each class's centroid
    is :math:`\mu_c = \operatorname{mean}_{y_j = c} \tilde x_j` over the training images, and a
    test image gets :math:`\hat y = \arg\min_c \lVert \tilde x - \mu_c \rVert`. The result is
    the mean over repeats of the out-of-fold accuracy.

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : array-like of int of shape (n_images,)
    folds : array-like of int of shape (n_repeats, n_images)
        The run's folds (:func:`layergain.probes.make_folds`).

    Returns
    -------
    float
        Accuracy in [0, 1].

    Raises
    ------
    InputValueError
        NaN features, mismatched lengths, folds of another shape.
    NotEnoughDataError
        Fewer than 2 classes, a class with fewer than 2 images, or a repeat with one fold.

    Notes
    -----
    Unchanged by rotations, translations and isotropic scaling of the features. The centroids
    are not re-normalised (as in SimpleShot). A class absent from a training fold (possible
    with grouped folds) has no centroid there and is never predicted in that fold. An image
    equal to the training mean is left at the origin.

    References
    ----------
    .. [1] Wang, Y., Chao, W.-L., Weinberger, K. Q., van der Maaten, L. (2019). SimpleShot:
       Revisiting nearest-neighbor classification for few-shot learning. arXiv:1911.04623.
    """
    x, y, counts = check_features_labels(features, labels, "ncc_accuracy")
    f = check_folds(folds, x.shape[0])
    acc = []
    for r in range(f.shape[0]):
        right = 0
        for fold in np.unique(f[r]):
            test = f[r] == fold
            train = ~test
            mean = x[train].mean(axis=0)
            xt, xv = _cl2n(x[train] - mean), _cl2n(x[test] - mean)
            present = np.unique(y[train])
            centroids = np.stack([xt[y[train] == c].mean(axis=0) for c in present])
            pred = present[_sq_distances(xv, centroids).argmin(axis=1)]
            right += int(np.sum(pred == y[test]))
        acc.append(right / x.shape[0])
    return float(np.mean(acc))


def _cl2n(xc: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(xc, axis=1, keepdims=True)
    return xc / np.where(norm > 0, norm, 1.0)
