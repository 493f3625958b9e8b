"""Probe-stage speed: the choices made in layergain.probes, measured side by side.

Run from the repository root:   .venv/bin/python bench/probe.py [--repeats 3]

On the bundled sample's real features (160 images, EfficientNet-Lite0 pretrained, 18 layers,
5-fold grouped CV, so 90 logistic-regression fits), each variant measured `--repeats` times
interleaved; median times and ratios from the same run:

- sklearn-default   LogisticRegression on standardised features, BLAS/OpenMP threads as they come
- one-thread        the same inside threadpool_limits(1)
- layergain         cross_val_probe: one thread + wide features rotated onto the training span
- after-torch       layergain's probe after a torch forward pass with torch's default threads
                    (what the pipeline did before it set torch to one thread for this stage)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from layergain.data import load_image_set
from layergain.features import FeatureCache, extract_features
from layergain.models import load_backbone
from layergain.probes import cross_val_probe, make_folds


def plain_probe(features, labels, folds, limit):
    warnings.simplefilter("ignore")
    with threadpool_limits(limit):
        for f in np.unique(folds[0]):
            test = folds[0] == f
            m, s = features[~test].mean(0), features[~test].std(0)
            s[s == 0] = 1
            LogisticRegression(C=1.0, max_iter=1000, tol=1e-4).fit((features[~test] - m) / s, labels[~test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    image_set = load_image_set()
    backbone = load_backbone()
    with tempfile.TemporaryDirectory() as tmp:
        feats = extract_features(backbone, image_set, cache=FeatureCache(tmp)).features
    feats = {k: v.astype(np.float64) for k, v in feats.items()}
    folds = make_folds(image_set.labels, image_set.groups, folds=5, seed=0)
    y = image_set.labels
    threads = torch.get_num_threads()

    def torch_forward():
        with torch.inference_mode():
            backbone.module(torch.zeros(8, 3, 224, 224))

    def variant(kind):
        if kind == "sklearn-default":
            for x in feats.values():
                plain_probe(x, y, folds, None)
        elif kind == "one-thread":
            for x in feats.values():
                plain_probe(x, y, folds, 1)
        else:
            for x in feats.values():
                cross_val_probe(x, y, folds)

    kinds = ["sklearn-default", "one-thread", "layergain", "after-torch"]
    times = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for k in kinds:
            # "after-torch": torch keeps its default threads after a forward pass, as the pipeline
            # did before it set torch to one thread for this stage; the others run with torch at 1.
            torch.set_num_threads(threads)
            torch_forward()
            if k != "after-torch":
                torch.set_num_threads(1)
            t = time.perf_counter()
            variant("layergain" if k == "after-torch" else k)
            times[k].append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"90 fits (18 layers x 5 folds), 160 images, median of {args.repeats}")
    for k in kinds:
        print(f"  {k:<16} {med[k]:6.2f} s   {med[k] / med['layergain']:.2f}x layergain")


if __name__ == "__main__":
    main()
