"""Linear probe: multinomial logistic regression on standardised features, out-of-fold."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from layergain.errors import InputValueError
from layergain.probes._newton import fit_newton, principal_rotation
from layergain.validation import as_float_matrix, check_choice

__all__ = ["ProbeResult", "ProbeSettings", "cross_val_probe"]


#: The Newton solver stops at this fraction of ``tol`` (its last steps converge quadratically).
NEWTON_TOL_FACTOR = 1e-2
SOLVERS = ("lbfgs", "newton")


@dataclass(frozen=True)
class ProbeSettings:
    """Settings of the linear probe (recorded in results attrs).

    Attributes
    ----------
    C : float, default=1.0
        Inverse L2 penalty, scikit-learn's ``C``.
    max_iter : int, default=1000
        Iteration limit of the lbfgs solver; the Newton solver takes at most ``max_iter // 10``
        Newton steps (it needs 5-15).
    tol : float, default=1e-4
        lbfgs: scikit-learn's ``tol`` (``gtol`` of L-BFGS-B on the mean objective). newton: stops
        when the largest gradient component of the same mean objective is at most
        ``tol * NEWTON_TOL_FACTOR``, far closer to the optimum than lbfgs at ``tol``.
    solver : {"lbfgs", "newton"}, default="lbfgs"
        ``"lbfgs"``: scikit-learn's ``LogisticRegression`` itself, the reference. ``"newton"``:
        layergain's truncated Newton (:mod:`layergain.probes._newton`) on the same objective,
        solved to its optimum (scikit-learn's lbfgs stops short of it at ``tol=1e-4``: its
        probabilities differ from the optimum's by up to 0.35 on real features, see
        ``tests/probes/test_newton.py``).
    """

    C: float = 1.0
    max_iter: int = 1000
    tol: float = 1e-4
    solver: Literal["lbfgs", "newton"] = "lbfgs"

    def __post_init__(self) -> None:
        check_choice(self.solver, "solver", SOLVERS)

    def describe(self) -> str:
        what = "multinomial logistic regression ({}) on features standardised with the training fold's mean and sd"
        if self.solver == "lbfgs":  # unchanged text: the runs made before the solver option read the same
            return f"{what.format('scikit-learn')}, L2 penalty C={self.C}, max_iter={self.max_iter}, tol={self.tol}"
        return (
            f"{what.format('binary for two classes; layergain truncated Newton on scikit-learn objective')}, "
            f"L2 penalty C={self.C}, intercept unpenalised, gradient tol {self.tol * NEWTON_TOL_FACTOR:g}, "
            f"at most {max(1, self.max_iter // 10)} Newton steps"
        )


@dataclass
class ProbeResult:
    """Out-of-fold probe output.

    Attributes
    ----------
    prediction : ndarray of int of shape (n_repeats, n_images)
    probability : ndarray of float32 of shape (n_repeats, n_images, n_classes)
    not_converged : int
        Number of fits that stopped at ``max_iter``.
    """

    prediction: np.ndarray
    probability: np.ndarray
    not_converged: int


def _reduce_to_span(xt: np.ndarray, xv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate wide features onto the span of the training images; the probe is unchanged.

    With more units than training images, an L2-penalised linear model's weights lie in the row
    space of the training features (representer theorem), and the L2 penalty is invariant under
    the rotation ``V``: fitting on ``X V`` (thin SVD ``X = U S V^T``) gives the same decision
    function on ``X_test V`` at a fraction of the cost.
    """
    if xt.shape[1] <= xt.shape[0]:
        return xt, xv
    _, s, vt = np.linalg.svd(xt, full_matrices=False)
    rank = int((s > s[0] * max(xt.shape) * np.finfo(float).eps).sum())
    v = vt[:rank].T
    return xt @ v, xv @ v


def cross_val_probe(
    features, labels: np.ndarray, folds: np.ndarray, *, n_classes: int | None = None, settings: ProbeSettings = ProbeSettings()
) -> ProbeResult:
    """Out-of-fold predictions of a linear probe for every image and CV repeat.

    Parameters
    ----------
    features : array-like of shape (n_images, n_units)
    labels : ndarray of int of shape (n_images,)
    folds : ndarray of int of shape (n_repeats, n_images)
        From :func:`layergain.probes.make_folds`; the same folds for every network.
    n_classes : int, default=None
        Number of classes (columns of ``probability``); default ``labels.max() + 1``.
    settings : ProbeSettings

    Notes
    -----
    Everything runs on one BLAS thread: these problems are small (threaded BLAS made them 10×
    slower here), and results must not depend on the thread count; parallelism comes from
    running layers in separate processes. Wide features are first rotated onto
    the span of the training images (exact, see ``_reduce_to_span``).
    Units constant within a training fold are dropped for that fold (standardising them would
    divide by zero). A class absent from a training fold (possible with grouped folds) gets
    probability 0 there.
    """
    x = as_float_matrix(features, "features", dtype=np.float64)
    labels = np.asarray(labels)
    folds = np.atleast_2d(folds)
    if x.shape[0] != labels.size or folds.shape[1] != labels.size:
        raise InputValueError(
            f"`features` ({x.shape[0]} rows), `labels` ({labels.size}) and `folds` ({folds.shape[1]} "
            "columns) must describe the same images."
        )
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    # One BLAS thread for everything: small problems run faster, and the numbers do not depend on
    # the thread count (serial, parallel and cluster runs give identical files).
    with threadpool_limits(1):
        return _cross_val_probe(x, labels, folds, n_classes, settings)


def _cross_val_probe(x, labels, folds, n_classes, settings) -> ProbeResult:
    prediction = np.empty(folds.shape, dtype=np.int64)
    probability = np.zeros((*folds.shape, n_classes), dtype=np.float32)
    not_converged = 0
    for r in range(folds.shape[0]):
        for f in np.unique(folds[r]):
            test = folds[r] == f
            train = ~test
            mean = x[train].mean(axis=0)
            sd = x[train].std(axis=0)
            keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
            classes = np.unique(labels[train])
            if classes.size == 1 or not keep.any():
                # Nothing to learn from: predict the training fold's only (or majority) class.
                major = np.bincount(labels[train], minlength=n_classes).argmax()
                prediction[r, test] = major
                probability[r, test, major] = 1.0
                continue
            xt = (x[train][:, keep] - mean[keep]) / sd[keep]
            xv = (x[test][:, keep] - mean[keep]) / sd[keep]
            fit = _fit_lbfgs if settings.solver == "lbfgs" else _fit_newton
            p, converged = fit(xt, xv, labels[train], classes, settings)
            not_converged += not converged
            probability[r][np.ix_(np.flatnonzero(test), classes)] = p
            prediction[r, test] = classes[p.argmax(axis=1)]
    return ProbeResult(prediction, probability, not_converged)


def _fit_lbfgs(xt, xv, y, classes, settings) -> tuple[np.ndarray, bool]:
    """scikit-learn's LogisticRegression: test-fold probabilities of the present classes, converged."""
    xt, xv = _reduce_to_span(xt, xv)
    model = LogisticRegression(C=settings.C, max_iter=settings.max_iter, tol=settings.tol)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(xt, y)
    return model.predict_proba(xv), not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _fit_newton(xt, xv, y, classes, settings) -> tuple[np.ndarray, bool]:
    """The truncated Newton solver on the principal axes: test-fold probabilities, converged."""
    zt, zv = principal_rotation(xt, xv)
    fit = fit_newton(zt, np.searchsorted(classes, y), classes.size, C=settings.C,
                     tol=settings.tol * NEWTON_TOL_FACTOR, max_iter=max(1, settings.max_iter // 10))
    return fit.predict_proba(zv), fit.converged
