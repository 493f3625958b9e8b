"""Accuracy, balanced accuracy and macro-F1 of out-of-fold predictions, vectorised."""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics", "confusion"]


def confusion(prediction: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts of shape (..., n_classes, n_classes) [true, predicted] over the last axis."""
    prediction = np.asarray(prediction)
    lead = prediction.shape[:-1]
    flat = prediction.reshape(-1, prediction.shape[-1])
    codes = labels[None, :] * n_classes + flat + (np.arange(flat.shape[0]) * n_classes**2)[:, None]
    counts = np.bincount(codes.ravel(), minlength=flat.shape[0] * n_classes**2)
    return counts.reshape(*lead, n_classes, n_classes)


def classification_metrics(prediction: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro-F1 per CV repeat, averaged over repeats.

    Parameters
    ----------
    prediction : ndarray of int of shape (..., n_repeats, n_images)
    labels : ndarray of int of shape (n_images,)

    Returns
    -------
    dict with ``accuracy``, ``balanced_accuracy``, ``macro_f1``, each of shape ``prediction.shape[:-2]``.
    Balanced accuracy is the mean recall over the classes present; macro-F1 the mean F1 over the
    classes present (a class never predicted and absent has no F1 and is left out, as in
    scikit-learn's ``labels=`` restricted to present classes).
    """
    labels = np.asarray(labels)
    cm = confusion(prediction, labels, n_classes).astype(np.float64)
    true = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    hit = np.diagonal(cm, axis1=-2, axis2=-1)
    present = np.bincount(labels, minlength=n_classes) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(true > 0, hit / np.where(true > 0, true, 1), 0.0)
        denominator = true + predicted
        f1 = np.where(denominator > 0, 2 * hit / np.where(denominator > 0, denominator, 1), 0.0)
    accuracy = hit.sum(axis=-1) / labels.size
    balanced = recall[..., present].mean(axis=-1)
    macro_f1 = f1[..., present].mean(axis=-1)
    return {
        "accuracy": accuracy.mean(axis=-1),
        "balanced_accuracy": balanced.mean(axis=-1),
        "macro_f1": macro_f1.mean(axis=-1),
    }
