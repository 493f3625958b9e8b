"""The similarity inference's angular shape distance: one factor per network and resample against two SVDs per pair.

Six networks (a pretrained one and five random), one 1280-wide layer (EfficientNet-Lite0's head)
of 360 images, five 180-image half-samples as ``layergain.similarity.study_similarity_inference``
draws them: every pair's distance, the way before issue 17 (``prepare_shape`` + ``compare_angular``:
two n x p SVDs per pair on a wide layer) and now (``_prepare_shape_factor`` once per network and
resample, from the n x n Gram matrix, then an n x n SVD per pair). Prints both times, their
ratio and the largest difference of the distances.

    .venv/bin/python bench/similarity_inference.py [--width 1280] [--images 360] [--resamples 5]
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import numpy as np

from layergain.similarity.inference import _compare_shape_factor, _prepare_shape_factor
from layergain.similarity.measures import compare_angular, prepare_shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--images", type=int, default=360)
    ap.add_argument("--resamples", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    nets = [rng.normal(size=(args.images, args.width)) for _ in range(6)]
    ways = {"two SVDs per pair (before)": (prepare_shape, compare_angular),
            "one factor per network (now)": (_prepare_shape_factor, _compare_shape_factor)}
    results = {}
    for name, (prepare, compare) in ways.items():
        draw = np.random.default_rng(1)
        t = time.perf_counter()
        out = []
        for _ in range(args.resamples):
            idx = np.sort(draw.choice(args.images, args.images // 2, replace=False))
            prepared = [prepare(x[idx]) for x in nets]
            out += [compare(prepared[i], prepared[j]) for i, j in combinations(range(len(nets)), 2)]
        results[name] = (time.perf_counter() - t, np.asarray(out))
        print(f"{name}: {results[name][0]:.2f} s")
    (before, a), (now, b) = results.values()
    print(f"ratio {before / now:.1f}x, largest difference {np.abs(a - b).max():.2g}")


if __name__ == "__main__":
    main()
