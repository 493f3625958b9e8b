"""Transferability estimators against the probe stage, on the same features.

Run from the repository root::

    .venv/bin/python bench/transferability.py [--n-images 160] [--repeats 1]     # synthetic
    .venv/bin/python bench/transferability.py --images /work/shared/data/kather2016_crc_texture \
        --group-column slide_id --cache .cache/study --engine eager --no-probe   # real, 5000 images

Synthetic features of the shapes of a run (stated in bench/README.md): 6 networks x 18 layers with
EfficientNet-Lite0's probe-layer widths, n images of 8 classes with class structure that grows with
depth, 5-fold CV (layergain.probes.make_folds). With ``--images``: the real Lite0 features of that
image set (pretrained and ``--networks - 1`` random inits, the 18 default probe layers, from the
feature cache, extracted once if missing) and the run's grouped folds. Times every estimator of
layergain.transferability.study_transferability (one pass over all 108 (network, layer) units)
and the probe stage (layergain.probes.probe_study, serial, one BLAS thread) on the same store,
each measured --repeats times, medians, and prints the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from layergain.probes import ProbeSettings, make_folds, probe_study
from layergain.transferability import study_transferability
from layergain.transferability._spectrum import Layer
from layergain.transferability.study import ESTIMATORS, _estimators

# Output widths of the 18 default probe layers of tf_efficientnet_lite0 (stem, 16 blocks, head).
WIDTHS = (32, 16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320, 1280)


class Store:
    def __init__(self, feats):
        self.feats = feats

    def layer(self, init, layer):
        return self.feats[init][layer]


def make_store(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(8), n // 8)
    inits = ["pretrained"] + [f"random-{s}" for s in range(5)]
    feats = {}
    for k, init in enumerate(inits):
        feats[init] = {}
        for j, w in enumerate(WIDTHS):
            means = rng.standard_normal((8, w)) * (1.0 if k == 0 else 0.3) * (j + 1) / len(WIDTHS)
            x = np.maximum(means[labels] + rng.standard_normal((labels.size, w)), 0).astype(np.float32)
            feats[init][f"layer{j}"] = x
    return Store(feats), inits, [f"layer{j}" for j in range(len(WIDTHS))], labels


def real_store(args):
    from layergain.data import load_image_set
    from layergain.features import FeatureCache, extract_features
    from layergain.features.cache import default_cache_dir
    from layergain.models import load_backbone

    image_set = load_image_set(args.images, group_column=args.group_column, max_per_class=args.per_class, seed=0)
    cache = FeatureCache(args.cache or default_cache_dir())
    feats = {}
    for weights, seed in [("pretrained", None)] + [(None, s) for s in range(args.networks - 1)]:
        backbone = load_backbone(weights=weights, seed=seed)
        feats[backbone.init] = extract_features(backbone, image_set, cache=cache, engine=args.engine,
                                                progress=False).features
    inits = list(feats)
    layers = list(feats[inits[0]])
    folds = make_folds(image_set.labels, folds=5, groups=image_set.groups, seed=0)
    return Store(feats), inits, layers, image_set.labels, folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--images", default=None, help="real features of this image set (default: synthetic)")
    parser.add_argument("--group-column", default=None)
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--networks", type=int, default=6, help="pretrained and N-1 random inits (with --images)")
    parser.add_argument("--cache", default=None, help="feature cache (default: layergain's)")
    parser.add_argument("--engine", default="folded")
    parser.add_argument("--no-probe", action="store_true", help="skip the probe stage")
    args = parser.parse_args()
    if args.images:
        store, inits, layers, labels, folds = real_store(args)
    else:
        store, inits, layers, labels = make_store(args.n_images)
        folds = make_folds(labels, folds=5, seed=0)
    study_transferability(store, inits, layers[:1], labels, folds, seed=0)  # imports, warm-up
    per = {e: [] for e in ESTIMATORS}
    t_est, t_probe = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        study_transferability(store, inits, layers, labels, folds, seed=0)
        t_est.append(time.perf_counter() - t0)
        fns = _estimators(labels, folds, 0)
        for e in ESTIMATORS:
            with threadpool_limits(1):
                t0 = time.perf_counter()
                for init in inits:
                    for layer in layers:
                        fns[e](Layer(store.layer(init, layer)))  # each on its own: its own spectrum
                per[e].append(time.perf_counter() - t0)
        if not args.no_probe:
            t0 = time.perf_counter()
            probe_study(store, inits, layers, labels, folds, int(labels.max()) + 1, settings=ProbeSettings())
            t_probe.append(time.perf_counter() - t0)
    med = statistics.median
    print(f"n_images={labels.size}, {len(inits)} networks x {len(layers)} layers, 5-fold CV, repeats={args.repeats}")
    for e in ESTIMATORS:
        print(f"  {e:14s} {med(per[e]):8.2f} s")
    print(f"  all estimators {med(t_est):8.2f} s (study_transferability)")
    if t_probe:
        print(f"  probe stage    {med(t_probe):8.2f} s (probe_study, serial)")
        print(f"  ratio probe / estimators = {med(t_probe) / med(t_est):.2f}")


if __name__ == "__main__":
    main()
