"""Publishing: staged writes, the report built from the file read back, unwritable folders found first."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from layergain.errors import OutputError
from layergain.results.publish import check_writable, publish


def _results():
    ds = xr.Dataset({"gain": (("layer",), np.array([0.1, 0.2]))}, coords={"layer": ["a", "b"]})
    ds.attrs = {"dataset": "x", "seeds": [0, 1], "class_counts": {"a": 2}}
    ds["gain"].attrs["nan_reason"] = {"b": "test"}
    return ds


def test_publish_writes_the_file_and_a_report_of_what_was_read_back(tmp_path):
    seen = []

    def write_report(ds, folder):
        seen.append(ds)
        (folder / "report.md").write_text(str(ds.attrs["class_counts"]))
        return [folder / "report.md"]

    files, written = publish(tmp_path / "out", _results(), write_report, name="r.nc")
    assert [p.name for p in files] == ["report.md", "r.nc"]  # the results file last
    assert seen[0] is written and written.attrs["class_counts"] == '{"a": 2}'  # as in the file
    assert written["gain"].attrs["nan_reason"] == '{"b": "test"}'
    assert (tmp_path / "out" / "report.md").read_text() == '{"a": 2}'
    assert not list(tmp_path.glob(".out.staging-*"))


def test_a_failing_report_publishes_nothing(tmp_path):
    def broken(ds, folder):
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write .*out: No space left on device.*`out=DIR`"):
        publish(tmp_path / "out", _results(), broken)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.staging-*"))


def test_check_writable_names_the_parameter(tmp_path):
    check_writable(tmp_path / "new" / "deeper", "output path", "`out=DIR`")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"output path .*file is a file; pass a folder with `out=DIR`"):
        check_writable(tmp_path / "file", "output path", "`out=DIR`")
    assert not list(tmp_path.glob(".layergain-check-*"))
