"""The leakage guard in a run, end to end: planted near-duplicates of real tiles are found and grouped
(no cluster spans two folds), the results and the report's Data section say what was found, and a set
without patient or slide ids gets the hidden-structure (file order) check."""

from __future__ import annotations

import numpy as np
import pytest

from layergain.data import load_image_set
from layergain.leakage import clusters_across_folds, plant_duplicates
from layergain.pipeline import RunConfig, run
from layergain.results.io import load_results
from tests.helpers import make_folder_set

pytestmark = pytest.mark.slow  # whole runs

SMALL = dict(seeds=2, folds=2, image_size=64, draws=1000, layers=["blocks.2.0", "blocks.4.0"])
N_COPIES = 4


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 real Kather tiles without groups (5 per class) and 4 planted copies (flip or rotation, crop,
    rescaling, colour jitter, JPEG) of 4 of them, listed in one manifest."""
    root = tmp_path_factory.mktemp("planted")
    originals = load_image_set(make_folder_set(root / "tiles", per_class=5))
    image_set, source = plant_duplicates(originals, root / "with-copies", n_copies=N_COPIES, seed=3)
    return root / "with-copies" / "manifest.csv", image_set, np.asarray(source)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def test_planted_copies_are_grouped_so_no_cluster_spans_two_folds(planted, tmp_path, cache):
    manifest, image_set, _ = planted
    out = run(RunConfig(data=str(manifest), out=str(tmp_path / "grouped"), cache=cache, **SMALL)).out
    ds = load_results(out)
    assert int(ds.attrs["duplicates_grouped"]) == 1
    assert int(ds.attrs["duplicates_n_clusters"]) >= N_COPIES - 1  # a flat (fat) original can't be compared
    cluster = ds["duplicate_cluster"].values
    assert (cluster >= 0).sum() >= 2 * (N_COPIES - 1)
    assert clusters_across_folds(cluster, ds["fold"].values).size == 0
    assert ds.attrs["group_column"] == "near-duplicate clusters"
    text = (out / "report.md").read_text()
    assert "**Near-duplicates.**" in text and "Each cluster was made a group" in text


def test_without_grouping_the_clusters_are_reported_and_the_order_is_checked(planted, tmp_path, cache):
    manifest, _, _ = planted
    out = run(RunConfig(data=str(manifest), out=str(tmp_path / "apart"), cache=cache, keep_duplicates_apart=True,
                        **SMALL)).out
    ds = load_results(out)
    assert int(ds.attrs["duplicates_grouped"]) == 0 and int(ds.attrs["duplicates_n_clusters"]) >= N_COPIES - 1
    assert ds.attrs["group_column"] == ""
    # no patient or slide ids: the hidden-structure check ran on the pretrained network
    for key in ("order_check_gap", "order_check_p_value", "order_check_flagged"):
        assert key in ds.attrs, key
    assert 0 < float(ds.attrs["order_check_p_value"]) <= 1
    assert "Hidden structure" in (out / "report.md").read_text()
