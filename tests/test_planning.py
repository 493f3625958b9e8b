"""`layergain.planning.plan`: exact counts of a small run, a calibrated estimate, no image read.

What is asserted of the estimate: it is positive and finite, and the probe stage's cost model
(time per L-BFGS iteration, fitted to a few timed synthetic fits) predicts the time of timed fits
at another shape within a factor of 3. Whole-run estimates against measured runs are in
bench/README.md ("Planning"), not here: on a shared machine they vary with its load.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest

from layergain.config import RunConfig
from layergain.errors import InputValueError
from layergain.planning import LBFGS_ITERATIONS, _fit_seconds, _probe_cost_model, plan

SMALL = dict(image_size=64, seeds=2, folds=3, repeats=2, max_per_class=4, baseline=["default", "permuted"])


def test_counts_of_a_small_run_are_exact(monkeypatch):
    import layergain.data.imageset as imageset

    real = imageset.load_image_set

    def counting_only(*args, **kwargs):
        assert kwargs.get("images") is False  # the plan never reads the images
        return real(*args, **kwargs)

    monkeypatch.setattr(imageset, "load_image_set", counting_only)
    monkeypatch.setattr("layergain.data.load_image_set", counting_only)
    p = plan(RunConfig(**SMALL), calibrate=False)
    n_layers = len(p.layers)
    assert (p.n_images, p.n_classes) == (32, 8)  # bundled sample, 4 images of each of 8 classes
    assert p.networks == 1 + 2 * 2
    assert p.forward_passes == 5 * 32
    assert p.configurations == 1 * 2
    assert p.probe_fits == 2 * (1 + 2) * n_layers * 3 * 2
    assert p.similarity_pairs == 3
    assert (p.similarity_resamples, p.draws) == (RunConfig.similarity_resamples, RunConfig.draws)
    assert p.seconds == {} and p.widths["avg"][0] > 0


def test_estimate_is_positive_and_described():
    p = plan(RunConfig(**SMALL))
    assert all(math.isfinite(s) and s > 0 for s in p.seconds.values())
    assert p.seconds_parallel["probes"] == pytest.approx(p.seconds["probes"] / p.jobs)
    inference_jobs = min(p.jobs, len(p.layers))  # one layer per process
    assert p.seconds_parallel["similarity_inference"] == pytest.approx(p.seconds["similarity_inference"] / inference_jobs)
    text = p.describe()
    assert f"probe fits: {p.probe_fits}" in text and f"forward passes: {p.forward_passes}" in text
    assert "similarity inference" in text and p.seconds["similarity_inference"] > 0
    bare = plan(RunConfig(**SMALL, similarity_resamples=0))  # the inference left out: no time, said so
    assert bare.seconds["similarity_inference"] == 0 and "no inference (--similarity-resamples 0)" in bare.describe()


def test_the_similarity_inference_estimate_scales_with_resamples_and_images():
    from layergain.planning import _inference_seconds

    base = _inference_seconds(240, 64, 3, 50)
    assert _inference_seconds(240, 64, 3, 101) == pytest.approx(base * 102 / 51)
    assert _inference_seconds(480, 64, 3, 50) == pytest.approx(base * 4)  # timed once, scaled (n / 240)^2
    assert _inference_seconds(240, 64, 1, 50) == 0.0  # one seed: no random-vs-random pair, nothing to resample


def test_probe_cost_model_predicts_timed_fits_within_a_factor_of_3():
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    model = _probe_cost_model(n_train=300, n_classes=4, widths=[16, 64, 200])
    rng = np.random.default_rng(0)
    y = np.arange(600) % 4
    x = rng.normal(size=(600, 120)) + 0.3 * y[:, None]
    best = float("inf")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            t = time.perf_counter()
            LogisticRegression(max_iter=LBFGS_ITERATIONS, tol=0.0).fit(x, y)
            best = min(best, time.perf_counter() - t)
    predicted = _fit_seconds(model, 600, 120, 4)
    assert best / 3 <= predicted <= 3 * best


def test_features_from_elsewhere_are_refused(tmp_path):
    with pytest.raises(InputValueError, match="`plan` counts the forward passes of a network; `features`"):
        plan(RunConfig(features=str(tmp_path / "f.npz")), calibrate=False)
