r"""Truncated Newton for L2-penalised logistic regression: scikit-learn's objective, solved to its optimum.

The objective is scikit-learn's (``LogisticRegression(C=C)``, lbfgs): for ``K > 2`` present
classes the multinomial model with one weight row per class, for two classes the binary model with
one weight vector, intercepts unpenalised,

.. math::

    f(W, b) = \sum_i \Big[\log \sum_k e^{w_k^\top x_i + b_k} - (w_{y_i}^\top x_i + b_{y_i})\Big]
              + \frac{1}{2C} \lVert W \rVert_F^2 .

It is strictly convex in ``W`` (and in ``b`` up to a common shift of the multinomial intercepts,
which changes no probability), so every solver that converges finds the same probabilities.

The features are first rotated onto their principal axes (exact: the penalty is invariant under
rotations; the rotation also drops directions without variance, which is the span reduction of
wide layers). Each Newton step solves ``H d = -g`` by preconditioned conjugate gradients with
Hessian-vector products; the preconditioner is the exact Hessian of the leading principal
components and the intercepts, and per further component its ``K x K`` class block. A backtracking
(Armijo) line search keeps every step a descent. Newton converges quadratically near the optimum,
so a tolerance far below scikit-learn's costs one or two steps more.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["NewtonFit", "fit_newton", "principal_rotation"]

#: Leading principal components whose Hessian block the preconditioner holds exactly.
TOP_COMPONENTS = 16
#: Problems with at most this many parameters get the exact Hessian (CG then takes one step).
EXACT_PARAMETERS = 300
MAX_CG = 250
#: The preconditioner of an earlier Newton step is reused while CG needs at most this many steps.
REBUILD_AFTER = 3


class NewtonFit:
    """A fitted model in rotated coordinates: ``coef`` (r, G), ``intercept`` (G,), ``n_iter``, ``converged``."""

    __slots__ = ("coef", "intercept", "n_iter", "converged", "binary")

    def __init__(self, coef, intercept, n_iter, converged, binary):
        self.coef, self.intercept, self.n_iter, self.converged, self.binary = coef, intercept, n_iter, converged, binary

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        """Class probabilities of rotated features ``z`` (n, r), shape (n, n_present_classes)."""
        logits = z @ self.coef + self.intercept
        if self.binary:
            p = _sigmoid(logits[:, 0])
            return np.stack([1 - p, p], axis=1)
        return _softmax(logits)


def principal_rotation(xt: np.ndarray, xv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(xt V, xv V)`` with ``V`` the principal axes of the centred training features ``xt``.

    Directions of zero variance are dropped (their weights are 0 at the optimum). Uses the
    eigendecomposition of the smaller of ``xt^T xt`` and ``xt xt^T``.
    """
    n, d = xt.shape
    if d <= n:
        lam, v = np.linalg.eigh(xt.T @ xt)
        lam, v = lam[::-1], v[:, ::-1]
        keep = lam > lam[0] * max(n, d) * np.finfo(float).eps
        v = v[:, keep]
        return xt @ v, xv @ v
    lam, u = np.linalg.eigh(xt @ xt.T)
    lam, u = lam[::-1], u[:, ::-1]
    keep = lam > lam[0] * max(n, d) * np.finfo(float).eps
    u, s = u[:, keep], np.sqrt(lam[keep])
    # xt = U S V^T, so xt V = U S and xv V = xv xt^T U / S.
    return u * s, (xv @ xt.T) @ (u / s)


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class _Objective:
    """Loss, gradient, curvature of one problem on ``z1`` = [rotated features, 1]."""

    def __init__(self, z: np.ndarray, y: np.ndarray, n_classes: int, C: float):
        self.n, self.r = z.shape
        self.z1 = np.hstack([z, np.ones((self.n, 1))])
        # Hessian-vector products in float32: they only choose the search direction (CG), the
        # gradient and the loss, and so the optimum and the stopping test, stay float64.
        self.z1_32 = self.z1.astype(np.float32)
        self.binary = n_classes == 2
        self.g = 1 if self.binary else n_classes
        self.target = (y == 1).astype(float)[:, None] if self.binary else np.eye(n_classes)[y]
        self.penalty = np.full((self.r + 1, 1), 1.0 / C)
        self.penalty[-1] = 0.0

    def value(self, theta):
        """``(f, gradient, d, u)``; the Hessian of the loss in the logits of image i is diag(d_i) - u_i u_i^T."""
        logits = self.z1 @ theta
        if self.binary:
            loss = np.logaddexp(0.0, logits) - self.target * logits
            p = _sigmoid(logits)
            d, u = p * (1 - p), None
        else:
            top = logits.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            loss = lse - (logits * self.target).sum(axis=1)
            p = np.exp(logits - lse[:, None])
            d, u = p, p
        f = float(loss.sum() + 0.5 * (self.penalty * theta**2).sum())
        grad = self.z1.T @ (p - self.target) + self.penalty * theta
        return f, grad, d, u

    def hessian_product(self, v, d, u):
        """``H v`` with ``d``, ``u`` from :meth:`curvature32`, in float32 (returned as float64)."""
        a = self.z1_32 @ v.astype(np.float32)
        b = d * a if u is None else d * a - u * (u * a).sum(axis=1, keepdims=True)
        return (self.z1_32.T @ b).astype(np.float64) + self.penalty * v

    @staticmethod
    def curvature32(d, u):
        return d.astype(np.float32), None if u is None else u.astype(np.float32)

    def preconditioner(self, d, u):
        """Solve with the exact Hessian of the leading components + intercept, class blocks elsewhere."""
        n, r, g = self.n, self.r, self.g
        m = r if g * (r + 1) <= EXACT_PARAMETERS else min(TOP_COMPONENTS, r)
        # Further components j >= m: the diagonal of H, sum_i z_ij^2 (d_i - u_i^2) + 1 / C.
        sq = self.z1[:, m:r] ** 2
        diagonal = sq.T @ (d if u is None else d - u**2) + self.penalty[m:r]
        lead = np.r_[np.arange(m), r]
        zs = self.z1[:, lead]
        full = (zs.T @ (zs[:, :, None] * d[:, None, :]).reshape(n, -1)).reshape(m + 1, m + 1, g)
        exact = np.zeros((m + 1, g, m + 1, g))
        exact[:, np.arange(g), :, np.arange(g)] = full.transpose(2, 0, 1)
        exact = exact.reshape((m + 1) * g, (m + 1) * g)
        if u is not None:
            t = (zs[:, :, None] * u[:, None, :]).reshape(n, -1)
            exact -= t.T @ t
        exact[np.arange(m * g), np.arange(m * g)] += self.penalty[0, 0]
        if not self.binary:
            # The multinomial intercepts are free along a common shift (a null direction of H): lift
            # it; residuals are orthogonal to it, so the CG iterates do not change.
            tail = slice(m * g, (m + 1) * g)
            exact[tail, tail] += np.trace(exact[tail, tail]) / g**2
        factor = scipy.linalg.cho_factor(exact, lower=True, check_finite=False)

        def solve(v):
            out = np.empty_like(v)
            out[m:r] = v[m:r] / diagonal
            out[lead] = scipy.linalg.cho_solve(factor, v[lead].ravel(), check_finite=False).reshape(m + 1, g)
            return out

        return solve


def _conjugate_gradient(hv, precondition, rhs, tolerance):
    x = np.zeros_like(rhs)
    residual = rhs.copy()
    z = precondition(residual)
    p = z.copy()
    rz = float((residual * z).sum())
    stop = tolerance * np.sqrt(float((residual**2).sum()))
    for k in range(MAX_CG):
        hp = hv(p)
        curvature = float((p * hp).sum())
        if curvature <= 0:
            break
        step = rz / curvature
        x += step * p
        residual -= step * hp
        if np.sqrt(float((residual**2).sum())) <= stop:
            return x, k + 1
        z = precondition(residual)
        rz_next = float((residual * z).sum())
        p = z + (rz_next / rz) * p
        rz = rz_next
    return x, MAX_CG


def fit_newton(z: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, tol: float, max_iter: int) -> NewtonFit:
    """Minimise scikit-learn's logistic objective on rotated features by truncated Newton.

    Parameters
    ----------
    z : ndarray of shape (n, r)
        Training features (standardised, rotated by :func:`principal_rotation`).
    y : ndarray of int of shape (n,)
        Labels in ``0..n_classes-1``, every class present.
    n_classes : int
        2 for the binary model, more for the multinomial one.
    C, tol, max_iter
        Inverse penalty; stop when the largest gradient component of the mean objective
        (scikit-learn's ``gtol`` scale) is at most ``tol``; at most ``max_iter`` Newton steps.
    """
    problem = _Objective(z, y, n_classes, C)
    theta = np.zeros((problem.r + 1, problem.g))
    f, grad, d, u = problem.value(theta)
    n = problem.n
    precondition, cg_steps = None, 0
    for iteration in range(max_iter + 1):
        gmax = np.abs(grad).max() / n
        if gmax <= tol:
            return NewtonFit(theta[:-1], theta[-1], iteration, True, problem.binary)
        if iteration == max_iter:
            break
        if precondition is None or cg_steps > REBUILD_AFTER:
            # Rebuilt when it stops working well: a lagged preconditioner changes no step's target.
            precondition = problem.preconditioner(d, u)
        forcing = min(0.5, np.sqrt(gmax))  # Eisenstat-Walker: exact steps only near the optimum
        d32, u32 = problem.curvature32(d, u)
        step, cg_steps = _conjugate_gradient(lambda v: problem.hessian_product(v, d32, u32), precondition, -grad, forcing)
        slope = float((grad * step).sum())
        t = 1.0
        while True:
            candidate = theta + t * step
            f_new, grad_new, d_new, u_new = problem.value(candidate)
            if f_new <= f + 1e-4 * t * slope or t < 1e-8:
                break
            t *= 0.5
        theta, f, grad, d, u = candidate, f_new, grad_new, d_new, u_new
    return NewtonFit(theta[:-1], theta[-1], max_iter, False, problem.binary)
