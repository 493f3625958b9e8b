"""Probe stage: layergain's probe (Newton solver) against the plain scikit-learn loop, side by side.

Run from the repository root::

    .venv/bin/python bench/probes.py                                   # the bundled sample
    .venv/bin/python bench/probes.py --images /work/shared/data/kather2016_crc_texture \\
        --group-column slide_id --per-class 125                        # 1000 Kather images

The plain loop is what a user writes: for every fold, standardise with the training fold's mean
and sd, ``LogisticRegression(C=1)`` (scikit-learn's lbfgs, tol=1e-4), predict the test fold.
layergain's probe is ``cross_val_probe(..., settings=ProbeSettings(solver="newton"))``. Both run
on one BLAS thread, on the same real EfficientNet-Lite0 features (pretrained and two random
networks, read from the feature cache, extracted once if missing) and the same 5 grouped folds;
they alternate ``--rounds`` times and the medians of their times give the ratio. Agreement is
with the plain loop and with scikit-learn run tight (tol=1e-9), which sits at the optimum.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from layergain.data import load_image_set
from layergain.features import FeatureCache, extract_features
from layergain.features.cache import default_cache_dir
from layergain.models import load_backbone
from layergain.probes import ProbeSettings, cross_val_probe, make_folds

LAYERS = "blocks.2.0,blocks.4.0,blocks.5.3,blocks.6.0,head"  # 40, 112, 192, 320, 1280 units


def plain_loop(x, labels, folds, tol=1e-4, max_iter=1000):
    """The plain scikit-learn probe: out-of-fold predictions and probabilities of one repeat."""
    n_classes = labels.max() + 1
    prediction, probability = np.empty(labels.size, dtype=np.int64), np.zeros((labels.size, n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in np.unique(folds[0]):
            test = folds[0] == f
            mean, sd = x[~test].mean(0), x[~test].std(0)
            sd[sd == 0] = 1
            model = LogisticRegression(C=1.0, tol=tol, max_iter=max_iter).fit((x[~test] - mean) / sd, labels[~test])
            p = model.predict_proba((x[test] - mean) / sd)
            probability[np.ix_(test, model.classes_)] = p
            prediction[test] = model.classes_[p.argmax(1)]
    return prediction, probability


def features(args):
    image_set = load_image_set(args.images, group_column=args.group_column, max_per_class=args.per_class, seed=0)
    layers = args.layers.split(",")
    out = {}
    for weights, seed in [("pretrained", None), (None, 0), (None, 1)]:
        backbone = load_backbone(weights=weights, seed=seed)
        feats = extract_features(backbone, image_set, cache=FeatureCache(default_cache_dir())).features
        out.update({(backbone.init, layer): feats[layer].astype(np.float64) for layer in layers})
    return out, image_set.labels, image_set.groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=None, help="image set (default: the bundled sample)")
    parser.add_argument("--group-column", default=None)
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--layers", default=LAYERS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    feats, labels, groups = features(args)
    folds = make_folds(labels, groups, folds=5, seed=0)
    newton = ProbeSettings(solver="newton")
    times = {"plain": {k: [] for k in feats}, "layergain": {k: [] for k in feats}}
    with threadpool_limits(1):
        for _ in range(args.rounds):
            for key, x in feats.items():
                t = time.perf_counter()
                plain = plain_loop(x, labels, folds)
                times["plain"][key].append(time.perf_counter() - t)
                t = time.perf_counter()
                ours = cross_val_probe(x, labels, folds, settings=newton)
                times["layergain"][key].append(time.perf_counter() - t)
        print(f"{labels.size} images, {labels.max() + 1} classes, 5 grouped folds, one thread, medians of {args.rounds}")
        print(f"{'network':<11} {'layer':<11} {'units':>5} {'plain s':>8} {'ours s':>8} {'ratio':>6} "
              f"{'same pred':>9} {'|d acc|':>8} {'vs tight: same':>14} {'max|dp|':>8}")
        total = {"plain": 0.0, "layergain": 0.0}
        agree, tight_agree = [], []
        for key, x in feats.items():
            med = {k: statistics.median(times[k][key]) for k in times}
            for k in total:
                total[k] += med[k]
            plain_pred, _ = plain_loop(x, labels, folds)
            tight_pred, tight_p = plain_loop(x, labels, folds, tol=1e-9, max_iter=20000)
            ours = cross_val_probe(x, labels, folds, settings=newton)
            same = (ours.prediction[0] == plain_pred).mean()
            dacc = abs((ours.prediction[0] == labels).mean() - (plain_pred == labels).mean())
            same_tight = (ours.prediction[0] == tight_pred).mean()
            agree.append(same), tight_agree.append(same_tight)
            print(f"{key[0]:<11} {key[1]:<11} {x.shape[1]:>5} {med['plain']:>8.3f} {med['layergain']:>8.3f} "
                  f"{med['plain'] / med['layergain']:>6.2f} {same:>9.4f} {dacc:>8.4f} {same_tight:>14.4f} "
                  f"{np.abs(ours.probability[0] - tight_p).max():>8.1e}")
    print(f"total: plain {total['plain']:.2f} s, layergain {total['layergain']:.2f} s, "
          f"ratio {total['plain'] / total['layergain']:.2f}x; predictions identical to the plain loop "
          f"{np.mean(agree):.4f} (min {min(agree):.4f}), to tight scikit-learn {np.mean(tight_agree):.4f}")


if __name__ == "__main__":
    main()
