"""Where the similarity stage's time goes, and the inference one layer per process against serially.

Synthetic features with the shapes of EfficientNet-Lite0's 18 probe layers (global average
readout: 16-1280 units), the pretrained network and ``--seeds`` random ones (each a shared
Gaussian part plus its own, through a ReLU, so no measure is trivial), in a store of ``.npy``
files (it pickles small, as the run's file-backed store does). Times, in one run:

- the descriptive similarity (:func:`layergain.similarity.study_similarity`: CKA, SVCCA, PWCCA,
  their bootstrap and the 18 x 18 matrices), as the run calls it;
- the similarity inference of each default measure alone, serially;
- the whole inference (all default measures) serially and with ``--jobs`` processes, one layer
  each, alternated ``--rounds`` times (medians), with the largest difference of their results
  (0: every layer runs on one BLAS thread wherever it runs).

    .venv/bin/python bench/similarity_stage.py [--images 240] [--resamples 50] [--jobs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import xarray as xr

from layergain.similarity import study_similarity, study_similarity_inference

WIDTHS = (32, 16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320, 1280)


class Store:
    """The feature store's interface (``layers``, ``sha256``, ``layer``, ``rows``, ``blocks``) over
    ``.npy`` files, so that it pickles as small as the run's file-backed store does."""

    def __init__(self, folder: str, layers: list[str], n: int):
        self.folder, self.layers, self.sha256 = folder, layers, [f"{i:064x}" for i in range(n)]

    def layer(self, init: str, layer: str) -> np.ndarray:
        return np.load(os.path.join(self.folder, f"{init}.{layer}.npy"))

    def rows(self, init: str, index: np.ndarray) -> dict[str, np.ndarray]:
        return {layer: self.layer(init, layer)[index] for layer in self.layers}

    def blocks(self, size: int) -> list[np.ndarray]:
        n = len(self.sha256)
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]


def make_store(n: int, seeds: int, folder: str) -> tuple[Store, list[str], list[str]]:
    rng = np.random.default_rng(0)
    inits = ["pretrained"] + [f"random-{s}" for s in range(seeds)]
    layers = [f"layer{i:02d}" for i in range(len(WIDTHS))]
    for layer, w in zip(layers, WIDTHS):
        common = rng.normal(size=(n, w))
        for init in inits:
            x = np.maximum(common + rng.normal(size=(n, w)), 0).astype(np.float32)
            np.save(os.path.join(folder, f"{init}.{layer}.npy"), x)
    return Store(folder, layers, n), inits, layers


def timed(f, *a, **kw):
    t = time.perf_counter()
    out = f(*a, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--resamples", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="layergain-bench-")
    store, inits, layers = make_store(args.images, args.seeds, folder)
    print(f"{args.images} images, {len(inits)} networks, {len(layers)} layers, {args.resamples} resamples, "
          f"load average {os.getloadavg()[0]:.1f}")
    t, _ = timed(study_similarity, store, inits)
    print(f"descriptive similarity (study_similarity): {t:.1f} s")
    for m in ("cka_debiased", "mutual_knn", "angular_shape", "rsa"):
        t, _ = timed(study_similarity_inference, store, inits, layers, measures=(m,), n_boot=args.resamples)
        print(f"inference, {m} alone: {t:.1f} s")
    serial, parallel = [], []
    for _ in range(args.rounds):
        t1, a = timed(study_similarity_inference, store, inits, layers, n_boot=args.resamples)
        t2, b = timed(study_similarity_inference, store, inits, layers, n_boot=args.resamples, n_jobs=args.jobs)
        serial.append(t1)
        parallel.append(t2)
        diff = max(float(np.nanmax(np.abs(a[v].values - b[v].values))) for v in a.data_vars)
    s, p = float(np.median(serial)), float(np.median(parallel))
    print(f"inference, all measures: serial {s:.1f} s, {args.jobs} processes {p:.1f} s, ratio {s / p:.2f}x "
          f"(largest difference {diff:.2g}); load average {os.getloadavg()[0]:.1f}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
