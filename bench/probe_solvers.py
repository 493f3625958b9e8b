"""Probe solvers against the plain scikit-learn loop at the plain loop's speed: an experiment (issue 17).

Run from the repository root (features from the feature cache, extracted once if missing)::

    .venv/bin/python bench/probe_solvers.py                                   # the bundled sample
    .venv/bin/python bench/probe_solvers.py --images /work/shared/data/kather2016_crc_texture \
        --group-column slide_id --per-class 125                               # 1000 Kather images
    .venv/bin/python bench/probe_solvers.py --images /work/shared/data/kather2016_crc_texture \
        --group-column slide_id --networks 1 --no-tight                       # all 5000, pretrained

On the same features and the same 5 grouped folds, one BLAS thread each, it times

- ``plain``: the plain loop a user writes (standardise with the training fold, scikit-learn's
  ``LogisticRegression(C=1)``, lbfgs at its default ``tol=1e-4``), in float64;
- ``plain-f32``: the same loop on float32 features (scikit-learn's lbfgs keeps float32);
- ``newton``: layergain's ``ProbeSettings(solver="newton")``, solved to the optimum;
- ``batched@TOL``: the experiment below, every fold of a layer as one float32 problem, stopped at
  mean-gradient ``TOL`` (``--tols``);
- ``tight``: scikit-learn at ``tol=1e-10``, the optimum every solver approaches (``--no-tight``
  skips it and compares with ``plain`` only).

and prints each variant's time, its ratio to ``plain`` and its out-of-fold predictions' agreement
with ``plain`` and with ``tight``.

The batched solver
------------------

Each fold is scikit-learn's problem (:mod:`layergain.probes._newton` states the objective): the
features standardised with that training fold's mean and sd, the multinomial model for three or
more present classes, the binary one for two, intercepts unpenalised. The folds differ only in
which rows train and in their standardisation, which is affine per unit:

.. math::

    \tilde x_{fi} = (x_i - \mu_f) / \sigma_f = \hat x_i \odot a_f + c_f, \qquad
    \hat x_i = (x_i - \mu) / \sigma,\; a_f = \sigma / \sigma_f,\; c_f = (\mu - \mu_f) / \sigma_f,

with ``mu``, ``sigma`` the statistics of all images. So fold ``f``'s logits
``W_f^T x~_fi + b_f = (a_f * W_f)^T x^_i + (c_f W_f + b_f)`` for every image come from **one**
matrix product of the shared ``X^`` with the folds' weights side by side, and so do the
gradients (training rows weighted 1, test rows 0). A product with ``F K`` columns costs far less
per column than ``F`` products with ``K`` (skinny products are memory-bound), and it runs in
float32: 3x faster again, and its gradients are exact to ~1e-8 of the mean objective's scale,
100x below the stopping tolerance. Each fold keeps its own parameters, penalty, classes, L-BFGS
memory, line search and stopping test, so each fold's optimum is exactly scikit-learn's.

The L-BFGS start matrix is a preconditioner: per fold, the inverse of ``n_f s_f R + I / C``,
with ``R`` the correlation matrix of the features (its leading ``TOP_COMPONENTS`` eigenvectors
exact, the rest at the smallest of their eigenvalues) and ``s_f`` the fold's current mean
softmax curvature. It whitens the features, which is what makes scikit-learn's L-BFGS slow on
them (condition numbers of 1e4-1e6 on real network features).

It lives here, not in the package, because it did not beat the plain loop (bench/README.md,
"Probe solvers"): reaching the optimum costs more iterations than scikit-learn's lbfgs spends
at ``tol=1e-4``, and each batched iteration's element-wise softmax work is as large as the
plain loop's.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from layergain.data import load_image_set
from layergain.features import FeatureCache, extract_features
from layergain.features.cache import default_cache_dir
from layergain.models import load_backbone
from layergain.probes import ProbeSettings, cross_val_probe, make_folds

LAYERS = "blocks.2.0,blocks.4.0,blocks.5.3,blocks.6.0,head"  # 40, 112, 192, 320, 1280 units


#: Leading eigenvectors of the features' correlation matrix the preconditioner holds exactly.
TOP_COMPONENTS = 64
#: L-BFGS memory (scikit-learn's: 10).
MEMORY = 10
#: Armijo constant.
ARMIJO = 1e-4


def _top_eigen(xh: np.ndarray, m: int, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``m`` eigenpairs of ``xh^T xh / n`` (all of them for narrow ``xh``), descending."""
    n, d = xh.shape
    if d <= 3 * m or d <= 256:
        lam, q = np.linalg.eigh(xh.T @ xh / n)
        return lam[::-1], q[:, ::-1]
    # Randomised subspace iteration (float32 products, float64 Rayleigh-Ritz): the preconditioner
    # needs the leading directions roughly, not to machine precision.
    x32 = xh.astype(np.float32)
    omega = np.random.default_rng(rng_seed).standard_normal((d, m + 16)).astype(np.float32)
    basis = omega
    for _ in range(3):
        basis, _ = np.linalg.qr(x32.T @ (x32 @ basis))
    basis = basis.astype(np.float64)
    small = basis.T @ (xh.T @ (xh @ basis)) / n
    lam, v = np.linalg.eigh(small)
    return lam[::-1], (basis @ v)[:, ::-1]


class _Folds:
    """The batched objective of ``F`` folds; weights ``W`` are (D, F, K), intercepts ``b`` (F, K)."""

    def __init__(self, x, labels, train, present, binary, C):
        mu, sd = x.mean(axis=0), x.std(axis=0)
        units = sd > 1e-12 * np.maximum(1.0, np.abs(mu))
        x, mu, sd = x[:, units], mu[units], sd[units]
        xh = (x - mu) / sd
        self.n, self.d = xh.shape
        self.F, self.K = train.shape[0], present.shape[1]
        self.C = C
        a = np.zeros((self.d, self.F, 1))
        c = np.zeros((self.d, self.F, 1))
        for f in range(self.F):
            xt = x[train[f]]
            mf, sf = xt.mean(axis=0), xt.std(axis=0)
            keep = sf > 1e-12 * np.maximum(1.0, np.abs(mf))
            a[keep, f, 0] = sd[keep] / sf[keep]
            c[keep, f, 0] = (mu[keep] - mf[keep]) / sf[keep]
        self.xh = xh
        self.x32 = xh.astype(np.float32)
        self.a, self.c = a, c
        self.a32, self.c32 = a.astype(np.float32), c.astype(np.float32)
        self.weight = train.T.astype(np.float32)[:, :, None]  # (N, F, 1)
        self.train = train
        self.n_train = train.sum(axis=1).astype(np.float64)
        self.absent = np.where(present, 0.0, -np.inf).astype(np.float32)  # added to the logits
        free = present.copy()
        for f in np.flatnonzero(binary):  # binary model: the first present class is the reference
            free[f, np.flatnonzero(present[f])[0]] = False
        self.free = free.astype(np.float64)
        self.n_present = present.sum(axis=1)
        self.y = labels
        self.onehot = np.eye(self.K, dtype=np.float32)[labels][:, None, :]  # (N, 1, K)

    def zeros(self):
        return np.zeros((self.d, self.F, self.K)), np.zeros((self.F, self.K))

    def _logits(self, w, b, x, a, c, absent):
        v = (a * w).reshape(self.d, -1)
        z = (x @ v).reshape(self.n, self.F, self.K)
        z += (b + (c * w).sum(axis=0)).astype(z.dtype)
        if absent is not None:
            z += absent
        return z

    def value(self, w, b):
        """(objective (F,), gradient (W, b), curvature s (F,)) from float32 products."""
        w32, b32 = w.astype(np.float32), b.astype(np.float32)
        z = self._logits(w32, b32, self.x32, self.a32, self.c32, self.absent)
        z -= z.max(axis=2, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=2)
        p = e / total[:, :, None]
        own = z[np.arange(self.n), :, self.y]  # (N, F): the true class's shifted logit
        loss = (self.weight[:, :, 0] * (np.log(total) - np.where(self.train.T, own, 0))).sum(axis=0, dtype=np.float64)
        f = loss + 0.5 / self.C * np.einsum("dfk,dfk->f", w, w)
        r = (p - self.onehot) * self.weight
        g = (self.x32.T @ r.reshape(self.n, -1)).reshape(self.d, self.F, self.K).astype(np.float64)
        rs = r.sum(axis=0, dtype=np.float64)
        gw = (self.a * g + self.c * rs) + w / self.C
        # Mean curvature of the softmax per class dimension: 1/K at the start, smaller as fits sharpen.
        s = (self.weight * p * (1 - p)).sum(axis=(0, 2), dtype=np.float64) / self.n_train
        s /= np.maximum(self.n_present - 1, 1)
        return f, (gw * self.free, rs * self.free), s

    def probabilities(self, w, b):
        """float64 probabilities of every image under every fold's model, (N, F, K)."""
        z = self._logits(w, b, self.xh, self.a, self.c, self.absent.astype(np.float64))
        z -= z.max(axis=2, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=2, keepdims=True)

    def gradient64(self, w, b):
        """The float64 gradient's largest component of the mean objective, per fold (the final check)."""
        p = self.probabilities(w, b)
        r = (p - self.onehot) * self.weight.astype(np.float64)
        g = (self.xh.T @ r.reshape(self.n, -1)).reshape(self.d, self.F, self.K)
        rs = r.sum(axis=0)
        gw = (self.a * g + self.c * rs + w / self.C) * self.free
        return np.maximum(np.abs(gw).max(axis=(0, 2)), np.abs(rs * self.free).max(axis=1)) / self.n_train


class _Preconditioner:
    """Per fold: ``(n_f s_f R + I / C)^-1`` on the weights, ``1 / (n_f s_f)`` on the intercepts."""

    def __init__(self, folds: _Folds):
        lam, q = _top_eigen(folds.xh, TOP_COMPONENTS)
        m = min(TOP_COMPONENTS, q.shape[1])
        self.q = q[:, :m]
        self.lam = np.maximum(lam[:m], 0.0)
        self.tail = max(float(lam[m]), 0.0) if lam.size > m else 0.0
        self.exact = lam.size == folds.d and m == folds.d
        self.folds = folds

    def set(self, s):
        fo = self.folds
        scale = fo.n_train * np.maximum(s, 1e-6)  # (F,)
        self.top = 1.0 / (scale[None, :] * self.lam[:, None] + 1.0 / fo.C)  # (m, F)
        self.rest = 1.0 / (scale * self.tail + 1.0 / fo.C)  # (F,)
        self.b = 1.0 / scale

    def __call__(self, gw, gb):
        fo = self.folds
        t = (self.q.T @ gw.reshape(fo.d, -1)).reshape(-1, fo.F, fo.K)
        if self.exact:
            out = (self.q @ (t * self.top[:, :, None]).reshape(t.shape[0], -1)).reshape(gw.shape)
        else:
            corrected = t * (self.top - self.rest)[:, :, None]
            out = gw * self.rest[None, :, None] + (self.q @ corrected.reshape(t.shape[0], -1)).reshape(gw.shape)
        return out * fo.free, gb * self.b[:, None] * fo.free


def _dot(aw, ab, bw, bb):
    return np.einsum("dfk,dfk->f", aw, bw) + np.einsum("fk,fk->f", ab, bb)


def fit_folds(x, labels, train, present, binary, *, C: float, tol: float, max_iter: int, stats=None):
    """Fit every fold by batched preconditioned L-BFGS.

    Parameters
    ----------
    x : ndarray of float64 of shape (N, D)
        The features of every image (raw: each fold standardises with its training rows).
    labels : ndarray of int of shape (N,)
    train : ndarray of bool of shape (F, N)
        The training rows of each fold.
    present : ndarray of bool of shape (F, K)
        The classes present in each fold's training rows (at least 2).
    binary : ndarray of bool of shape (F,)
        Folds with exactly two present classes get scikit-learn's binary model.
    C, tol, max_iter
        Inverse penalty; stop a fold when the largest gradient component of its mean objective
        is at most ``tol`` (checked in float64); at most ``max_iter`` iterations.

    Returns
    -------
    probability : ndarray of shape (N, F, K)
        Every image's class probabilities under each fold's model (absent classes 0).
    converged : ndarray of bool of shape (F,)
    """
    fo = _Folds(x, labels, train, present, binary, C)
    precondition = _Preconditioner(fo)
    w, b = fo.zeros()
    f, (gw, gb), s = fo.value(w, b)
    memory: list[tuple] = []  # (sw, sb, yw, yb, rho) per past step, each batched over folds
    done = np.zeros(fo.F, dtype=bool)
    gamma = np.ones(fo.F)
    evaluations = 1
    for iteration in range(max_iter):
        gmax = np.maximum(np.abs(gw).max(axis=(0, 2)), np.abs(gb).max(axis=1)) / fo.n_train
        near = gmax <= tol
        if near.any():  # confirm in float64 (the float32 gradient is the search's, not the verdict)
            check = fo.gradient64(w, b) <= tol
            done |= near & check
        if done.all():
            break
        active = ~done
        # Two-loop recursion with the preconditioner as the start matrix.
        qw, qb = -gw, -gb
        alphas = []
        for sw, sb, yw, yb, rho in reversed(memory):
            alpha = rho * _dot(sw, sb, qw, qb)
            qw, qb = qw - alpha[None, :, None] * yw, qb - alpha[:, None] * yb
            alphas.append(alpha)
        precondition.set(s)
        dw, db = precondition(qw, qb)
        if memory:  # scale the start matrix to the latest curvature pair (Nocedal & Wright 7.20)
            dw, db = dw * gamma[None, :, None], db * gamma[:, None]
        for (sw, sb, yw, yb, rho), alpha in zip(memory, reversed(alphas)):
            beta = rho * _dot(yw, yb, dw, db)
            dw, db = dw + (alpha - beta)[None, :, None] * sw, db + (alpha - beta)[:, None] * sb
        dw *= active[None, :, None]
        db *= active[:, None]
        slope = _dot(gw, gb, dw, db)
        # Per-fold backtracking: accept sufficient decrease, or, where the float32 objective's
        # change is below its rounding, a step whose directional derivative shows it descends.
        t = active.astype(float)
        pending = active.copy()
        new = [w.copy(), b.copy(), f.copy(), gw.copy(), gb.copy(), s.copy()]
        while pending.any():
            cw, cb = w + t[None, :, None] * dw, b + t[:, None] * db
            cf, (cgw, cgb), cs = fo.value(cw, cb)
            evaluations += 1
            noise = 1e-6 * np.abs(f) + 1e-9
            decrease = cf <= f + ARMIJO * t * slope
            flat = (np.abs(cf - f) <= noise) & (_dot(cgw, cgb, dw, db) <= 0.5 * np.abs(slope))
            ok = pending & (decrease | flat | (t < 1e-10))
            for target, value in zip(new, (cw, cb, cf, cgw, cgb, cs)):
                if target.ndim == 3:
                    target[:, ok] = value[:, ok]
                else:
                    target[ok] = value[ok]
            pending &= ~ok
            t = np.where(pending, t * 0.5, t)
        nw, nb, f, ngw, ngb, s = new
        sw, sb, yw, yb = nw - w, nb - b, ngw - gw, ngb - gb
        sy = _dot(sw, sb, yw, yb)
        good = sy > 1e-12 * np.sqrt(_dot(sw, sb, sw, sb) * _dot(yw, yb, yw, yb))
        rho = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        memory.append((sw * good[None, :, None], sb * good[:, None], yw * good[None, :, None], yb * good[:, None], rho))
        precondition.set(s)
        pyw, pyb = precondition(yw, yb)
        ypy = _dot(yw, yb, pyw, pyb)
        fresh = good & (ypy > 0)
        gamma = np.where(fresh, sy / np.where(fresh, ypy, 1.0), gamma)
        if len(memory) > MEMORY:
            memory.pop(0)
        w, b, gw, gb = nw, nb, ngw, ngb
    if stats is not None:
        stats.update(iterations=iteration, evaluations=evaluations)
    return fo.probabilities(w, b), done


def plain_loop(x, labels, folds, tol=1e-4, max_iter=10000, dtype=np.float64):
    """The plain scikit-learn probe on the first repeat: out-of-fold predictions, probabilities, iterations."""
    n_classes = labels.max() + 1
    prediction, probability = np.empty(labels.size, dtype=np.int64), np.zeros((labels.size, n_classes))
    iterations = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in np.unique(folds[0]):
            test = folds[0] == f
            mean, sd = x[~test].mean(0), x[~test].std(0)
            sd[sd == 0] = 1
            model = LogisticRegression(C=1.0, tol=tol, max_iter=max_iter)
            model.fit(((x[~test] - mean) / sd).astype(dtype), labels[~test])
            p = model.predict_proba(((x[test] - mean) / sd).astype(dtype))
            probability[np.ix_(test, model.classes_)] = p
            prediction[test] = model.classes_[p.argmax(1)]
            iterations.append(int(model.n_iter_[0]))
    return prediction, probability, iterations


def batched_loop(x, labels, folds, tol):
    """The batched experiment on the first repeat's folds: predictions, probabilities, iterations."""
    n_classes = labels.max() + 1
    fold_ids = np.unique(folds[0])
    train = np.stack([folds[0] != f for f in fold_ids])
    present = np.stack([np.bincount(labels[t], minlength=n_classes) > 0 for t in train])
    stats = {}
    p, _ = fit_folds(x, labels, train, present, present.sum(1) == 2, C=1.0, tol=tol, max_iter=5000, stats=stats)
    probability = np.zeros((labels.size, n_classes))
    for i, f in enumerate(fold_ids):
        probability[folds[0] == f] = p[folds[0] == f, i]
    return probability.argmax(1), probability, stats["iterations"]


def features(args):
    image_set = load_image_set(args.images, group_column=args.group_column, max_per_class=args.per_class, seed=0)
    cache = FeatureCache(args.cache or default_cache_dir())
    out = {}
    for weights, seed in [("pretrained", None), (None, 0), (None, 1)][: args.networks]:
        backbone = load_backbone(weights=weights, seed=seed)
        feats = extract_features(backbone, image_set, cache=cache, engine=args.engine, progress=False).features
        out.update({(backbone.init, layer): feats[layer].astype(np.float64) for layer in args.layers.split(",")})
    return out, image_set.labels, image_set.groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=None, help="image set (default: the bundled sample)")
    parser.add_argument("--group-column", default=None)
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--networks", type=int, default=3, help="pretrained, random-0, random-1: the first N")
    parser.add_argument("--layers", default=LAYERS)
    parser.add_argument("--tols", default="1e-4,1e-6", help="stopping tolerances of the batched solver")
    parser.add_argument("--no-tight", action="store_true", help="skip the tight scikit-learn reference")
    parser.add_argument("--cache", default=None, help="feature cache (default: layergain's)")
    parser.add_argument("--engine", default="folded")
    args = parser.parse_args()
    feats, labels, groups = features(args)
    folds = make_folds(labels, groups, folds=5, seed=0)
    tols = [float(t) for t in args.tols.split(",")]
    names = ["plain", "plain-f32", "newton", *[f"batched@{t:g}" for t in tols]]
    total = dict.fromkeys(names, 0.0)
    agree = {name: [] for name in names}
    print(f"{labels.size} images, {labels.max() + 1} classes, 5 grouped folds, one thread")
    with threadpool_limits(1):
        for key, x in feats.items():
            runs = {}
            t = time.perf_counter()
            pred, prob, its = plain_loop(x, labels, folds)
            runs["plain"] = (pred, prob, time.perf_counter() - t, f"{min(its)}-{max(its)} it")
            t = time.perf_counter()
            pred, prob, its = plain_loop(x, labels, folds, dtype=np.float32)
            runs["plain-f32"] = (pred, prob, time.perf_counter() - t, f"{min(its)}-{max(its)} it")
            t = time.perf_counter()
            res = cross_val_probe(x, labels, folds, settings=ProbeSettings(solver="newton"))
            runs["newton"] = (res.prediction[0], res.probability[0], time.perf_counter() - t, "")
            for tol in tols:
                t = time.perf_counter()
                pred, prob, iterations = batched_loop(x, labels, folds, tol)
                runs[f"batched@{tol:g}"] = (pred, prob, time.perf_counter() - t, f"{iterations} it")
            ref = runs["plain"] if args.no_tight else plain_loop(x, labels, folds, tol=1e-10, max_iter=100000)
            line = [f"{key[0]:<10} {key[1]:<10} {x.shape[1]:>4}"]
            if not args.no_tight:
                line[0] += f" (tight {min(ref[2])}-{max(ref[2])} it)"
            for name, (pred, prob, seconds, note) in runs.items():
                total[name] += seconds
                same_plain = (pred == runs["plain"][0]).mean()
                same_ref = (pred == ref[0]).mean()
                agree[name].append((same_plain, same_ref))
                line.append(f"{name} {seconds:.2f}s {runs['plain'][2] / seconds:.2f}x "
                            f"={same_plain:.4f}/{same_ref:.4f} dp{np.abs(prob - ref[1]).max():.0e} {note}".rstrip())
            print(" | ".join(line), flush=True)
    print("total (seconds, plain / variant, predictions identical to plain / to "
          f"{'plain' if args.no_tight else 'tight'}: mean, min):")
    for name in names:
        a = np.array(agree[name])
        print(f"  {name:<14} {total[name]:8.2f} s  {total['plain'] / total[name]:5.2f}x  "
              f"{a[:, 0].mean():.4f} (min {a[:, 0].min():.4f}) / {a[:, 1].mean():.4f} (min {a[:, 1].min():.4f})")


if __name__ == "__main__":
    main()
