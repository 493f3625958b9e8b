"""Real small runs for the report tests: the bundled Kather sample, and two ungrouped sets for a comparison.

The runs are package-scoped: every report test reads the same three runs and one comparison.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from layergain.data import bundled_sample_path
from layergain.pipeline import RunConfig, compare, run
from layergain.results.io import load_results

SMALL = dict(max_per_class=6, seeds=2, folds=3, image_size=64, draws=2000, similarity_resamples=50)
# The comparison's runs probe a chosen subset of layers: fewer probe fits, and a custom layer list.
COMPARISON_LAYERS = [
    "blocks.1.0",
    "blocks.2.1",
    "blocks.3.2",
    "blocks.4.2",
    "blocks.5.1",
    "blocks.5.3",
    "blocks.6.0",
    "bn2",
]


@pytest.fixture(scope="package")
def report_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("report-cache"))


@pytest.fixture(scope="package")
def kather_run(tmp_path_factory, report_cache):
    """The bundled sample (grouped by slide), as ``layergain run`` makes it."""
    out = tmp_path_factory.mktemp("kather") / "out"
    return run(RunConfig(out=str(out), cache=report_cache, **SMALL))


@pytest.fixture(scope="package")
def kather_results(kather_run):
    """The run's results as read back from results.nc."""
    return load_results(kather_run.out / "results.nc")


def _class_subset(root: Path, name: str, classes: list[str]) -> Path:
    """Real tiles of some classes of the bundled sample, copied into an ImageFolder set (no groups)."""
    manifest = bundled_sample_path()
    with open(manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in classes]
    for row in rows:
        dst = root / name / row["label"] / Path(row["path"]).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest.parent / row["path"], dst)
    return root / name


@pytest.fixture(scope="package")
def comparison_run(tmp_path_factory, report_cache):
    """Two real image sets (Kather classes 1-4 and 5-8, ungrouped) and ``layergain compare`` of both.

    Ungrouped because ``compare`` cannot yet bootstrap the grouped sample (some classes lie on one slide).
    """
    base = tmp_path_factory.mktemp("compare")
    with open(bundled_sample_path(), newline="") as f:
        labels = sorted({r["label"] for r in csv.DictReader(f)})
    runs = []
    for name, classes in (("crc_first_half", labels[:4]), ("crc_second_half", labels[4:])):
        data = _class_subset(base / "sets", name, classes)
        config = RunConfig(
            data=str(data), out=str(base / name), cache=report_cache, layers=COMPARISON_LAYERS, **SMALL
        )
        runs.append(run(config).out)
    return compare(runs, base / "comparison", draws=2000)
