"""netCDF writing and reading: lossless round trip of attrs, atomic and ordinary files, errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from layergain.errors import DataError, OutputError
from layergain.results.io import decode_attr, encode_attr, load_results, netcdf_safe_attrs, save_results


def _dataset() -> xr.Dataset:
    ds = xr.Dataset(
        {"accuracy": (("init", "layer"), np.arange(6.0).reshape(2, 3)), "path": ("image", ["a b.png", "ü.png"])},
        coords={"init": ["pretrained", "random-0"], "layer": ["stem", "b", "head"], "image": [0, 1]},
    )
    ds.attrs = {"seeds": [0, 1], "flag": True, "config": {"a": 1}, "none": None, "name": "x", "c": 0.95}
    return ds


def test_round_trip_keeps_values_and_makes_attrs_netcdf_safe(tmp_path):
    path = save_results(_dataset(), tmp_path / "r.nc")
    back = load_results(path)
    np.testing.assert_array_equal(back["accuracy"].values, np.arange(6.0).reshape(2, 3))
    assert list(back["path"].values) == ["a b.png", "ü.png"]
    assert list(back.attrs["seeds"]) == [0, 1] and back.attrs["flag"] == 1 and back.attrs["c"] == 0.95
    assert json.loads(back.attrs["config"]) == {"a": 1} and back.attrs["none"] == ""
    assert netcdf_safe_attrs({"x": [1.0, 2.0]})["x"].tolist() == [1.0, 2.0]


def test_written_file_has_the_ordinary_mode_and_no_temporary_remains(tmp_path):
    path = save_results(_dataset(), tmp_path / "r.nc")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="results file does not exist"):
        load_results(tmp_path / "none.nc")
    bad = tmp_path / "bad.nc"
    bad.write_text("not netcdf")
    with pytest.raises(DataError, match="cannot read results file"):
        load_results(bad)
    # a folder means its results.nc
    save_results(_dataset(), tmp_path / "run" / "results.nc")
    assert "accuracy" in load_results(tmp_path / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="cannot write .*r.nc"):
        save_results(_dataset(), locked / "r.nc")


def test_encode_and_decode_attr() -> None:
    value = {"b": [1, "x"], "a": {"layer": "reason"}}
    assert encode_attr(value) == '{"b": [1, "x"], "a": {"layer": "reason"}}'  # keys keep their order
    assert encode_attr(value, sort_keys=True).startswith('{"a"')
    assert decode_attr(encode_attr(value)) == value
    assert decode_attr("", default={}) == {} and decode_attr("plain text") == "plain text"
    assert decode_attr(3) == 3 and encode_attr(Path("a/b")) == '"a/b"'
