"""The statistics on real data: no gain where there can be none, a clear gain where there is one.

Both run the whole pipeline (real images, real weights); they are slow and run in CI.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from layergain.data import bundled_sample_path
from layergain.pipeline import RunConfig, run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# similarity_resamples: these tests are about the gain; the similarity inference is calibrated in
# tests/similarity and its 200 default resamples took most of these runs (18 of the suite's 39 min)
FAST = dict(seeds=2, folds=5, image_size=64, draws=2000, similarity_resamples=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def _shuffled_manifest(tmp_path: Path, shuffle_seed: int) -> Path:
    """The bundled sample with its labels permuted (groups kept): no layer can carry label information."""
    src = bundled_sample_path()
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = np.random.default_rng(shuffle_seed).permutation([r["label"] for r in rows])
    out = tmp_path / f"shuffled{shuffle_seed}" / "manifest.csv"
    out.parent.mkdir(parents=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "group"])
        w.writeheader()
        for row, label in zip(rows, labels):
            w.writerow({"path": str(src.parent / row["path"]), "label": label, "group": row["group"]})
    return out


@pytest.mark.slow
def test_shuffled_labels_give_no_significant_layer(tmp_path, cache):
    # 5 label permutations x 18 layers. Under this null each run's max-T-adjusted family rejects
    # with probability <= 0.05, so two or more runs with a "significant" layer happen with
    # probability < 0.023 (binomial, 5 runs). The features are cached after the first run.
    runs_with_false_gain = 0
    for shuffle_seed in range(5):
        manifest = _shuffled_manifest(tmp_path, shuffle_seed)
        out = run(RunConfig(data=str(manifest), out=str(tmp_path / f"out{shuffle_seed}"), cache=cache, **FAST))
        runs_with_false_gain += bool((out.results["gain_p_maxt"].values < 0.05).any())
        assert np.abs(out.results["gain"].values).max() < 0.25
    assert runs_with_false_gain <= 1


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "kather2016_crc_texture").is_dir(), reason="shared image sets not present")
def test_kather_middle_and_deep_layers_show_a_significant_gain(tmp_path, cache):
    # Reference: an independent quick probe here (30 images per class, 128 px, 2 random seeds) found
    # gains of about +0.2 to +0.3 in the middle and deep layers of EfficientNet-Lite0 (issue 4).
    # Same setting, ungrouped, as that probe, but 5 seeds: with 2 the spread between random
    # initialisations has 1 degree of freedom and no calibrated interval is narrow. Measured here
    # (seed 0): pointwise lower bounds +0.07..+0.21 (default target), max-T p < 0.01 at every middle
    # and deep layer conditional on this network (target "fixed").
    from layergain.pipeline import restatistics

    out = run(RunConfig(
        data=str(SHARED / "kather2016_crc_texture"), max_per_class=30, out=str(tmp_path / "k"), cache=cache,
        **{**FAST, "image_size": 128, "seeds": 5},
    ))
    ds = out.results
    middle_and_deep = ds["relative_depth"].values >= 0.4
    assert np.all(ds["gain"].values[middle_and_deep] > 0.1)
    assert ds["gain_ci"].sel(bound="lower").values[middle_and_deep].min() > 0
    fixed = restatistics(out.out, tmp_path / "fixed", target="fixed").results
    np.testing.assert_array_equal(fixed["gain"].values, ds["gain"].values)
    assert np.all(fixed["gain_p_maxt"].values[middle_and_deep] < 0.05)
    width = lambda d: np.diff(d["gain_ci"].values, axis=-1)[:, 0]  # noqa: E731
    assert np.all(width(ds)[middle_and_deep] > width(fixed)[middle_and_deep])
