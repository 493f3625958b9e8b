"""Features from elsewhere: the layouts round-trip, CLAM-style HDF5 reads, every error is clear, no torch."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import layergain
from layergain.errors import DataError, InputValueError, OutputError

try:  # layergain.features/__init__ imports torch today; the module itself does not (see the no-torch tests)
    from layergain.features import external as E
except ImportError:  # pragma: no cover
    pytest.skip("layergain.features cannot be imported", allow_module_level=True)

h5py = pytest.importorskip("h5py")

IDS = [f"slide{i // 4}/tile_{i:02d}.png" for i in range(11)]
INITS = ["pretrained", "random-0", "random-1"]
WIDTHS = {"stem": 3, "layer2": 6, "head": 5}
LAYERS = list(WIDTHS)
SHA = [f"{i:064x}" for i in range(len(IDS))]
META = {"model": "resnet18", "readout": "avg", "baseline": "default-init",
        "relative_depth": {"stem": 0.0, "layer2": 0.5, "head": 1.0}, "module": {"stem": "conv1"}, "note": [1, 2]}
FORMATS = ["features.nc", "features.npz", "features", "features.zarr"]


@pytest.fixture
def arrays(seed: int) -> dict[tuple[str, str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {(i, l): rng.normal(size=(len(IDS), w)).astype(np.float32) for i in INITS for l, w in WIDTHS.items()}


def _export(path: Path, arrays, **kwargs) -> Path:
    kwargs = {"image_ids": IDS, "inits": INITS, "layers": LAYERS, "meta": META, "sha256": SHA, **kwargs}
    return E.export_features(path, read_layer=lambda i, l: arrays[i, l], **kwargs)


def _need(name: str) -> None:
    if name.endswith(".zarr"):
        pytest.importorskip("zarr")


def _npz(path: Path, ids=IDS, inits=INITS, layers=LAYERS, arrays=None, drop=(), **extra) -> Path:
    """An npz written with numpy directly, as a user would."""
    rng = np.random.default_rng(0)
    out = {"image_ids": np.asarray(ids), "inits": np.asarray(inits), "layers": np.asarray(layers)}
    for i in inits:
        for l in layers:
            if (i, l) not in drop:
                out[f"{i}/{l}"] = rng.normal(size=(len(ids), WIDTHS.get(l, 2))).astype(np.float32)
    out.update(arrays or {})
    out.update(extra)
    np.savez(path, **out)
    return path


# ----------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip(tmp_path, arrays, name):
    _need(name)
    path = _export(tmp_path / name, arrays, inits=["random-1", "pretrained", "random-0"])
    got = E.read_features(path)
    assert got.image_ids == tuple(IDS)
    assert got.inits == INITS  # pretrained first, then by seed, whatever the order given
    assert got.layers == LAYERS
    assert got.seeds == (0, 1)
    assert got.widths == WIDTHS
    assert got.sha256 == tuple(SHA)
    assert got.meta == META
    for (i, l), a in arrays.items():
        assert got.features[i][l].dtype == np.float32
        np.testing.assert_array_equal(got.features[i][l], a)
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary left beside it


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_without_optional_parts_and_overwrite(tmp_path, arrays, name):
    _need(name)
    _export(tmp_path / name, arrays)
    path = _export(tmp_path / name, arrays, meta=None, sha256=None, layers=["head"])
    got = E.read_features(path)
    assert got.sha256 is None and got.meta == {} and got.layers == ["head"]
    np.testing.assert_array_equal(got.features["random-1"]["head"], arrays["random-1", "head"])
    assert sorted(os.listdir(tmp_path)) == [name]


def test_float64_input_is_stored_float32(tmp_path, arrays):
    doubles = {k: a.astype(np.float64) for k, a in arrays.items()}
    got = E.read_features(_export(tmp_path / "f.npz", doubles))
    np.testing.assert_array_equal(got.features["pretrained"]["stem"], arrays["pretrained", "stem"])


def test_netcdf_layout_names(tmp_path, arrays):
    """The documented names, read with plain xarray."""
    import xarray as xr

    with xr.open_dataset(_export(tmp_path / "f.nc", arrays)) as ds:
        assert ds["features__layer2"].dims == ("init", "image", "unit__layer2")
        assert ds["features__layer2"].dtype == np.float32
        assert list(ds["init"].values) == INITS and list(ds["image"].values) == IDS
        assert list(ds["sha256"].values) == SHA
        assert json.loads(ds.attrs["layers"]) == LAYERS
        assert ds.attrs["layergain_features"] == "1" and ds.attrs["model"] == "resnet18"
        assert json.loads(ds.attrs["relative_depth"]) == META["relative_depth"]
        assert json.loads(ds.attrs["meta"]) == {"note": [1, 2]}


def test_npz_layout_names(tmp_path, arrays):
    with np.load(_export(tmp_path / "f.npz", arrays), allow_pickle=False) as z:
        assert list(z["layers"]) == LAYERS and list(z["image_ids"]) == IDS and list(z["inits"]) == INITS
        np.testing.assert_array_equal(z["random-0/layer2"], arrays["random-0", "layer2"])
        assert json.loads(str(z["meta"])) == META


def test_npz_written_by_numpy_reads(tmp_path):
    got = E.read_features(_npz(tmp_path / "f.npz"))
    assert got.inits == INITS and got.layers == LAYERS and got.sha256 is None


# ----------------------------------------------------------------------------------------------
# HDF5 as WSI patch-feature toolkits write it


def _clam(path: Path, features: np.ndarray, coords: np.ndarray, **datasets) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=features)
        c = f.create_dataset("coords", data=coords)
        c.attrs["patch_size"], c.attrs["patch_level"] = 256, 0
        for name, data in datasets.items():
            f.create_dataset(name, data=data)


def test_clam_per_slide_files(tmp_path):
    """PATH/<init>/<layer>/<slide>.h5, ids '<slide>:<x>_<y>'; one network lists its patches in another order."""
    rng = np.random.default_rng(0)
    coords = {"s1": np.array([[0, 0], [256, 0], [0, 256]]), "s2": np.array([[512, 768], [1024, 0]])}
    want = {}
    for init in INITS:
        for slide, xy in coords.items():
            feats = rng.normal(size=(len(xy), 4)).astype(np.float32)
            order = np.arange(len(xy))[::-1] if init == "random-1" else np.arange(len(xy))
            _clam(tmp_path / "h5" / init / "uni" / f"{slide}.h5", feats[order], xy[order])
            want[init, slide] = feats
    got = E.read_features(tmp_path / "h5")
    assert got.image_ids == ("s1:0_0", "s1:256_0", "s1:0_256", "s2:512_768", "s2:1024_0")
    assert got.layers == ["uni"] and got.inits == INITS
    for init in INITS:
        np.testing.assert_array_equal(got.features[init]["uni"], np.concatenate([want[init, "s1"], want[init, "s2"]]))


def test_clam_one_file_per_layer_with_index(tmp_path, arrays):
    """PATH/<init>/<layer>.h5 with float coords; layergain.json gives the depth order and the metadata."""
    xy = np.stack([np.arange(len(IDS)) * 224.0, np.zeros(len(IDS))], axis=1)
    for (init, layer), a in arrays.items():
        _clam(tmp_path / "h5" / init / f"{layer}.h5", a, xy)
    (tmp_path / "h5" / "layergain.json").write_text(json.dumps({"inits": INITS, "layers": LAYERS, "meta": META}))
    got = E.read_features(tmp_path / "h5")
    assert got.image_ids[:2] == ("0_0", "224_0") and got.layers == LAYERS and got.meta == META
    np.testing.assert_array_equal(got.features["random-0"]["layer2"], arrays["random-0", "layer2"])


def test_clam_image_ids_dataset_wins_over_coords(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.array([b"a.png", b"b.png"])
    for init in INITS:
        _clam(tmp_path / "h5" / init / "head.h5", rng.normal(size=(2, 3)), np.zeros((2, 2)), image_ids=ids)
    assert E.read_features(tmp_path / "h5").image_ids == ("a.png", "b.png")


def test_hdf5_errors(tmp_path):
    rng = np.random.default_rng(0)
    for init in INITS:
        for layer in ("a", "b"):
            _clam(tmp_path / "h5" / init / f"{layer}.h5", rng.normal(size=(3, 2)), np.arange(6).reshape(3, 2))
    with pytest.raises(DataError, match=r"holds 2 layers \('a', 'b'\) but no layergain.json: the order"):
        E.read_features(tmp_path / "h5")
    _clam(tmp_path / "h5" / "random-1" / "a.h5", rng.normal(size=(3, 2)), np.arange(6).reshape(3, 2) + 1)
    (tmp_path / "h5" / "layergain.json").write_text(json.dumps({"inits": INITS, "layers": ["a", "b"]}))
    with pytest.raises(DataError, match=r"random-1/a holds other images .* 3 missing \('0_1', '2_3', '4_5'\), 3 extra \('1_2'"):
        E.read_features(tmp_path / "h5")
    os.remove(tmp_path / "h5" / "random-1" / "a.h5")
    with pytest.raises(DataError, match=r"layer 'a' is missing for network\(s\) 'random-1' .*every network needs"):
        E.read_features(tmp_path / "h5")
    _clam(tmp_path / "one.h5", rng.normal(size=(3, 2)), np.zeros((3, 2)))
    with pytest.raises(DataError, match="is one HDF5 file; HDF5 features are read from a folder"):
        E.read_features(tmp_path / "one.h5")
    with h5py.File(tmp_path / "h5" / "random-1" / "a.h5", "w") as f:
        f.create_dataset("features", data=np.zeros((3, 2)))
    with pytest.raises(DataError, match="has neither an 'image_ids' nor a 'coords' dataset"):
        E.read_features(tmp_path / "h5")


# ----------------------------------------------------------------------------------------------
# Validation: one clear error each


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ids": IDS[:-1] + IDS[:1]}, r"1 image id\(s\) occur more than once in .*: 'slide0/tile_00.png'; each image"),
        ({"inits": ["random-0", "random-1", "random-2"]}, r"no 'pretrained' network in .*under init 'pretrained'"),
        ({"inits": ["pretrained", "random-0"]},
         r"has 1 random network\(s\) \('random-0'\); at least 2 are needed: the random-vs-random similarity is the "
         r"reference .* spread over seeds"),
        ({"inits": ["pretrained", "random-0", "noise"]}, r"init names 'noise' .* are neither 'pretrained' nor"),
        ({"drop": [("random-1", "head")]}, r"layer 'head' is missing for network\(s\) 'random-1' .*present for "
                                           r"'pretrained', 'random-0'"),
        ({"arrays": {"random-0/layer2": np.zeros((11, 7), np.float32)}},
         r"layer 'layer2' has different widths between networks .*pretrained 6, random-0 7, random-1 6"),
        ({"arrays": {"random-0/stem": np.where(np.eye(11, 3) > 0, np.nan, 1.0)}},
         r"init 'random-0', layer 'stem' in .* have 3 non-finite value\(s\) \(NaN or inf\) in 3 image\(s\)"),
        ({"arrays": {"pretrained/stem": np.full((11, 3), np.inf)}}, r"33 non-finite value\(s\)"),
        ({"arrays": {"pretrained/head": np.zeros((11, 5, 2))}},
         r"layer 'head' in .* have shape \(11, 5, 2\); each network's layer needs a 2-D array"),
        ({"arrays": {"pretrained/head": np.zeros((10, 5))}}, r"have 10 row\(s\) but there are 11 image ids"),
        ({"sha256": np.asarray(SHA[:3])}, r"has 3 sha256 checksum\(s\) for 11 images"),
        ({"meta": np.asarray(json.dumps({"relative_depth": {"nope": 1}}))},
         r"meta 'relative_depth' .* names layers that are not in the features: 'nope'"),
    ],
)
def test_read_errors(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        E.read_features(_npz(tmp_path / "f.npz", **kwargs))
    assert os.listdir(tmp_path) == ["f.npz"]


def test_npz_with_objects_or_missing_arrays(tmp_path):
    np.savez(tmp_path / "a.npz", image_ids=np.asarray(IDS, dtype=object), inits=INITS, layers=LAYERS)
    with pytest.raises(DataError, match=r"Store ids and names as str arrays"):
        E.read_features(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", features=np.zeros(3))
    with pytest.raises(DataError, match=r"lacks the array\(s\) 'image_ids', 'inits', 'layers'"):
        E.read_features(tmp_path / "b.npz")


def test_netcdf_errors(tmp_path, arrays):
    import xarray as xr

    path = _export(tmp_path / "f.nc", arrays)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    del ds.attrs["layers"]
    ds.to_netcdf(tmp_path / "g.nc")
    with pytest.raises(DataError, match=r"3 feature variables but no 'layers' attribute: the order .* cannot be guessed"):
        E.read_features(tmp_path / "g.nc")
    ds.attrs["layers"] = json.dumps(["stem", "layer2", "head", "fc"])
    ds.to_netcdf(tmp_path / "h.nc")
    with pytest.raises(DataError, match=r"disagree; no variable for layer\(s\) 'fc'"):
        E.read_features(tmp_path / "h.nc")
    ds.attrs["layers"] = json.dumps(LAYERS)
    ds["features__stem"] = ds["features__stem"].where(ds["image"] != IDS[4])
    ds.to_netcdf(tmp_path / "i.nc")
    with pytest.raises(DataError, match=r"init 'pretrained', layer 'stem' .* 3 non-finite value\(s\) .* in 1 image"):
        E.read_features(tmp_path / "i.nc")


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("missing.nc", DataError, "does not exist"),
        ("bad.nc", DataError, "cannot read .* as netCDF features"),
        ("bad.npz", DataError, "cannot read .* as npz features"),
        ("feats.csv", InputValueError, r"cannot tell the features layout .* suffix '.csv': use '.nc'"),
    ],
)
def test_unreadable_or_unknown(tmp_path, name, error, message):
    if name.startswith("bad") or name.endswith(".csv"):
        (tmp_path / name).write_bytes(b"not a features file")
    with pytest.raises(error, match=message):
        E.read_features(tmp_path / name)


def test_zarr_needs_the_package(tmp_path, arrays, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    (tmp_path / "f.zarr").mkdir()
    with pytest.raises(DataError, match=r"zarr layout needs the optional 'zarr' package.* use '.nc' or '.npz'"):
        E.read_features(tmp_path / "f.zarr")
    with pytest.raises(DataError, match="optional 'zarr' package"):
        _export(tmp_path / "g.zarr", arrays)
    assert os.listdir(tmp_path) == ["f.zarr"]


# ----------------------------------------------------------------------------------------------
# Export: errors leave nothing behind


@pytest.mark.parametrize("name", FORMATS)
def test_export_error_leaves_nothing(tmp_path, arrays, name):
    _need(name)
    bad = dict(arrays)
    bad["random-1", "head"] = np.full_like(arrays["random-1", "head"], np.nan)
    with pytest.raises(InputValueError, match=r"init 'random-1', layer 'head' in the exported features have 55 non"):
        _export(tmp_path / name, bad)
    assert os.listdir(tmp_path) == []


def test_export_error_keeps_the_previous_export(tmp_path, arrays):
    path = _export(tmp_path / "f.npz", arrays)
    with pytest.raises(RuntimeError, match="boom"):
        E.export_features(path, image_ids=IDS, inits=INITS, layers=LAYERS,
                          read_layer=lambda i, l: (_ for _ in ()).throw(RuntimeError("boom")))
    assert os.listdir(tmp_path) == ["f.npz"]
    np.testing.assert_array_equal(E.read_features(path).features["pretrained"]["head"], arrays["pretrained", "head"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inits": ["pretrained", "random-0"]}, r"at least 2 are needed"),
        ({"image_ids": IDS[:2] * 2}, r"occur more than once in the exported features"),
        ({"layers": ["stem", "a/b"]}, r"layer names .* without '/'"),
        ({"sha256": SHA[:1]}, r"`sha256` has 1 checksum\(s\) for 11 images"),
        ({"meta": {"model": 3}}, r"meta 'model' .* must be a string"),
    ],
)
def test_export_errors(tmp_path, arrays, kwargs, message):
    with pytest.raises(InputValueError, match=message):
        _export(tmp_path / "f.nc", arrays, **kwargs)
    assert os.listdir(tmp_path) == []


def test_export_width_mismatch(tmp_path, arrays):
    bad = dict(arrays)
    bad["random-0", "stem"] = np.zeros((len(IDS), 4), np.float32)
    with pytest.raises(InputValueError, match=r"layer 'stem' has width 4 for random-0 but 3 for pretrained"):
        _export(tmp_path / "f", bad)
    assert os.listdir(tmp_path) == []


def test_export_refuses_a_foreign_folder(tmp_path, arrays):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not a previous features export; remove it"):
        _export(tmp_path / "data", arrays)
    assert os.listdir(tmp_path / "data") == ["keep.txt"] and os.listdir(tmp_path) == ["data"]


# ----------------------------------------------------------------------------------------------
# Matching to a manifest


def test_match_reorders(tmp_path, arrays, seed):
    got = E.read_features(_export(tmp_path / "f.npz", arrays))
    order = np.random.default_rng(seed).permutation(len(IDS))
    manifest = [IDS[i] for i in order]
    matched = E.match(got, manifest)
    assert matched.image_ids == tuple(manifest)
    assert matched.sha256 == tuple(SHA[i] for i in order)
    for (i, l), a in arrays.items():
        np.testing.assert_array_equal(matched.features[i][l], a[order])
    assert E.match(got, IDS) is got


def test_match_errors(tmp_path, arrays):
    got = E.read_features(_export(tmp_path / "f.npz", arrays))
    manifest = IDS[3:] + [f"other_{i}.png" for i in range(7)]
    with pytest.raises(
        DataError,
        match=r"do not match the manifest: 7 manifest image\(s\) have no features \('other_0.png', 'other_1.png', "
        r"'other_2.png', 'other_3.png', 'other_4.png', \.\.\.\); 3 featured image\(s\) are not in the manifest "
        r"\('slide0/tile_00.png', 'slide0/tile_01.png', 'slide0/tile_02.png'\)\. The ids are matched exactly",
    ):
        E.match(got, manifest)
    with pytest.raises(InputValueError, match=r"occur more than once in the manifest"):
        E.match(got, IDS + IDS[:1])


# ----------------------------------------------------------------------------------------------
# The store


def test_store_equivalence(tmp_path, arrays):
    got = E.read_features(_export(tmp_path / "f.npz", arrays))
    store = pickle.loads(pickle.dumps(got.store))  # as a joblib worker receives it
    assert store.layers == tuple(LAYERS) and store.sha256 == tuple(SHA) and set(store.keys) == set(INITS)
    for (i, l), a in arrays.items():
        np.testing.assert_array_equal(store.layer(i, l), a)
    blocks = store.blocks(4)
    assert [b.tolist() for b in blocks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    for init in INITS:
        for block in blocks:
            rows = store.rows(init, block)
            assert list(rows) == LAYERS
            for l in LAYERS:
                np.testing.assert_array_equal(rows[l], arrays[init, l][block])
    x = store.layer("pretrained", "stem")
    x += 1  # a caller may work in place on what it gets
    np.testing.assert_array_equal(store.layer("pretrained", "stem"), arrays["pretrained", "stem"])
    assert E.read_features(_export(tmp_path / "g.npz", arrays, sha256=None)).store.sha256 == tuple(IDS)


def test_similarity_stage_reads_the_store(tmp_path, arrays):
    """The similarity stage runs on the store, unchanged by a consistent reordering of the images."""
    from layergain.similarity.study import study_similarity

    got = E.read_features(_export(tmp_path / "f.npz", arrays))
    shuffled = E.match(got, IDS[::-1])
    a, b = study_similarity(got.store, got.inits), study_similarity(shuffled.store, got.inits)
    np.testing.assert_allclose(a["cka_linear"].values, b["cka_linear"].values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a["cka_matrix"].values, b["cka_matrix"].values, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# No torch


_NO_TORCH = """
import sys, types, pathlib
sys.modules["torch"] = None
{prelude}
from layergain.features.external import read_features, export_features, match
import numpy as np, tempfile, os
d = tempfile.mkdtemp()
rng = np.random.default_rng(0)
p = export_features(os.path.join(d, "f.nc"), image_ids=["a", "b", "c"], inits=["pretrained", "random-0", "random-1"],
                    layers=["x"], read_layer=lambda i, l: rng.normal(size=(3, 2)))
assert match(read_features(p), ["c", "b", "a"]).image_ids == ("c", "b", "a")
assert sys.modules["torch"] is None
"""

# Stand in for layergain.features/__init__ (which imports the extraction stack), so that only this
# module's own imports are checked.
_STUB_PACKAGE = f"""
pkg = types.ModuleType("layergain.features")
pkg.__path__ = [{str(Path(layergain.__file__).parent / "features")!r}]
sys.modules["layergain.features"] = pkg
"""


def _run_without_torch(prelude: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(_NO_TORCH.format(prelude=prelude))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_module_imports_no_torch():
    done = _run_without_torch(_STUB_PACKAGE)
    assert done.returncode == 0, done.stderr


def test_package_import_needs_no_torch():
    done = _run_without_torch("")
    assert done.returncode == 0, done.stderr
