"""The similarity inference per measure: every resample's matrix as a submatrix of the full one, against recomputing it.

Six networks' features of one layer (n images x width, Gaussian with a shared part so the measures
are not trivial); ``similarity_difference`` on 50 half-samples for each measure, first with each
resample's kernel / neighbours / RDM recomputed from the features (as before issue 17), then read
off the n x n matrix computed once per network (now). Prints both times, their ratio and the
largest difference of the results (difference, interval, p).

    .venv/bin/python bench/similarity_inference_full.py [--images 360] [--width 320] [--resamples 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from unittest import mock

import numpy as np

from layergain.similarity import inference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=360)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--resamples", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    common = rng.normal(size=(args.images, args.width))
    nets = [np.maximum(common + rng.normal(size=common.shape), 0) for _ in range(6)]
    original = inference._measure
    for name in ("cka_debiased", "cka_linear", "mutual_knn", "rsa"):
        out = {}
        for way in ("recomputed (before)", "submatrix (now)"):
            def measure(n, k, _way=way):
                m = original(n, k)
                return dataclasses.replace(m, full=None) if _way.startswith("recomputed") else m
            with mock.patch.object(inference, "_measure", measure):
                t = time.perf_counter()
                r = inference.similarity_difference(nets, measure=name, n_boot=args.resamples, seed=1)
                out[way] = (time.perf_counter() - t, np.array([r.difference, r.lower, r.upper, r.p_value]))
        (t0, a), (t1, b) = out.values()
        print(f"{name}: before {t0:.2f} s, now {t1:.2f} s, ratio {t0 / t1:.1f}x, "
              f"largest difference {np.nanmax(np.abs(a - b)):.2g}")


if __name__ == "__main__":
    main()
