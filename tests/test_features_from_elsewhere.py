"""Features from elsewhere, end to end: `extract --export` then `run --features` gives the run from
images, without torch; broken feature files are one clear line and write nothing.

The features are real: EfficientNet-Lite0 (bundled weights) and two random twins on a subset of
the bundled Kather sample, exported by the package itself.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from layergain.cli import main
from layergain.features.external import read_features
from layergain.results.io import load_results

pytestmark = pytest.mark.slow  # real extraction and whole runs

SET = ["--max-per-class", "6", "--seeds", "2"]
EXTRACT = [*SET, "--layers", "blocks.1.0,blocks.4.0", "--image-size", "64"]
STATS = ["--folds", "2", "--draws", "1000"]
#: attrs that say how (not what) a run was made: when, by which command, how long, from where.
HOW = {"created", "timings_s", "command", "config", "feature_engine", "features_source", "features_meta",
       "image_formats", "leakage_note"}
#: attrs of the near-duplicate search, which only a run from images makes.
GUARD = "duplicates_"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The run from images and the exported features (netCDF and an HDF5 folder) of the same networks."""
    root = tmp_path_factory.mktemp("elsewhere")
    cache = str(root / "cache")
    for path in ("f.nc", "h5"):
        assert main(["extract", *EXTRACT, "--cache", cache, "--export", str(root / path), "--quiet"]) == 0
    assert main(["run", *EXTRACT, *STATS, "--cache", cache, "--out", str(root / "images"), "--quiet"]) == 0
    return root


@pytest.mark.parametrize("exported", ["f.nc", "h5"])
def test_a_run_from_exported_features_equals_the_run_from_images(runs, exported):
    out = runs / f"from-{exported}"
    assert main(["run", "--features", str(runs / exported), *SET, *STATS, "--out", str(out), "--quiet"]) == 0
    a, b = load_results(out), load_results(runs / "images")
    # the near-duplicate search reads images: a run from features has none to read (and says so)
    assert "duplicate_cluster" in b and "duplicate_cluster" not in a
    assert "features computed elsewhere" in a.attrs["leakage_note"]
    b = b.drop_vars("duplicate_cluster")
    assert set(a.variables) == set(b.variables)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())  # every variable, coordinate and its attrs
    for name in b.variables:
        assert a[name].attrs == b[name].attrs, name
    differ = {k for k in set(a.attrs) | set(b.attrs) if str(a.attrs.get(k)) != str(b.attrs.get(k))
              and not k.startswith(GUARD)}
    assert differ <= HOW, differ - HOW
    assert a.attrs["features_source"] == str(runs / exported)
    assert "computed elsewhere and read from" in (out / "report.md").read_text()


def test_the_export_holds_what_the_cache_holds(runs):
    ext = read_features(runs / "f.nc")
    assert ext.inits == ["pretrained", "random-0", "random-1"] and ext.layers == ["blocks.1.0", "blocks.4.0"]
    assert ext.widths == {"blocks.1.0": 24, "blocks.4.0": 112}
    assert ext.meta["model"] == "efficientnet_lite0" and ext.meta["readout"] == "avg"
    h5 = read_features(runs / "h5")
    assert h5.image_ids == ext.image_ids and h5.sha256 == ext.sha256
    for init in ext.inits:
        for layer in ext.layers:
            np.testing.assert_array_equal(h5.features[init][layer], ext.features[init][layer])


def test_a_run_from_features_never_imports_torch(runs, tmp_path):
    # Any import of torch, torchvision or timm fails in this interpreter (as where they are not installed).
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm"):
            raise ImportError("no " + name + " here")
sys.meta_path.insert(0, NoTorch())
from layergain.pipeline import RunConfig, run
out = run(RunConfig(features={str(runs / 'f.nc')!r}, max_per_class=6, seeds=2, folds=2, draws=1000,
                    out={str(tmp_path / 'no-torch')!r}, jobs=1))
print(float(out.results["accuracy"].sel(init="pretrained").mean()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = float(load_results(runs / "images")["accuracy"].sel(init="pretrained").mean())
    assert float(done.stdout.strip()) == expected


def _manifest(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group"])
        writer.writerows(rows)
    return path


def _rows(sample):
    """(path, label, group) of each image of a run, as its manifest had them."""
    classes = json.loads(sample.attrs["class_names"])
    return [(p, classes[c], g) for p, c, g in zip(sample["path"].values.tolist(), sample["label"].values.tolist(),
                                                  sample["group"].values.tolist())]


def _npz(source, path, change):
    """The exported features as an npz, changed by ``change(arrays)``."""
    ext = read_features(source)
    arrays = {"image_ids": np.array(ext.image_ids), "inits": np.array(ext.inits), "layers": np.array(ext.layers),
              "meta": np.array(json.dumps(ext.meta))}
    for init in ext.inits:
        for layer in ext.layers:
            arrays[f"{init}/{layer}"] = np.array(ext.features[init][layer])
    change(arrays)
    np.savez(path, **arrays)
    return path


def _nan(arrays):
    arrays["random-1/blocks.4.0"][3, 5] = np.nan


def _one_random(arrays):
    arrays["inits"] = arrays["inits"][:2]
    for layer in arrays["layers"]:
        del arrays[f"random-1/{layer}"]


def _layer_missing(arrays):
    del arrays["random-0/blocks.1.0"]


@pytest.mark.parametrize("change, message", [
    (_nan, r"'random-1', layer 'blocks\.4\.0'.*NaN or inf"),
    (_one_random, r"has 1 random network.*at least 2 are needed"),
    (_layer_missing, r"blocks\.1\.0.*missing|missing.*blocks\.1\.0"),
])
def test_a_broken_feature_file_is_one_line_and_writes_nothing(runs, tmp_path, capsys, change, message):
    broken = _npz(runs / "f.nc", tmp_path / "broken.npz", change)
    out = tmp_path / "out"
    code = main(["run", "--features", str(broken), *SET, *STATS, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("layergain: error: "), err
    assert re.search(message, err), err
    assert not out.exists()


def test_ids_that_do_not_match_the_manifest_are_one_line_and_write_nothing(runs, tmp_path, capsys):
    sample = load_results(runs / "images")
    rows = _rows(sample)
    first = rows[0][0]
    rows[0] = ("renamed.png", *rows[0][1:])
    manifest = _manifest(tmp_path / "manifest.csv", rows)
    out = tmp_path / "out"
    code = main(["run", "--features", str(runs / "f.nc"), "--data", str(manifest), "--seeds", "2", *STATS,
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert "do not match the manifest" in err and "renamed.png" in err and first in err
    assert not out.exists()


def test_a_manifest_of_ids_alone_runs_without_image_files(runs, tmp_path):
    """The manifest's paths are ids: no file needs to exist beside it."""
    sample = load_results(runs / "images")
    rows = _rows(sample)
    manifest = _manifest(tmp_path / "ids-only.csv", rows)
    assert not (tmp_path / rows[0][0]).exists()
    out = tmp_path / "out"
    assert main(["run", "--features", str(runs / "f.nc"), "--data", str(manifest), "--seeds", "2", *STATS,
                 "--out", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(load_results(out)["accuracy"].values, sample["accuracy"].values)
