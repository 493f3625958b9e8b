"""`layergain report`: its user errors (rebuilding is tested with each report's tests)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from layergain.cli import main


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip().splitlines()


def _old_results(folder):
    """A results file of the statistics before gain_statistics (bootstrap draws, no max-T p)."""
    ds = xr.Dataset(
        {
            "accuracy": (("init", "layer"), np.full((2, 2), 0.5)),
            "gain": ("layer", np.zeros(2)),
            "gain_ci": (("layer", "bound"), np.zeros((2, 2))),
            "gain_p": ("layer", np.ones(2)),
            "gain_p_holm": ("layer", np.ones(2)),
            "gain_boot": (("layer", "boot"), np.zeros((2, 3))),
            "params_to_layer": ("layer", [1, 2]),
        },
        coords={"layer": ["a", "b"], "init": ["pretrained", "random-0"]},
    )
    ds.to_netcdf(folder / "old.nc")
    return folder / "old.nc"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.nc", "results file does not exist"),
        (lambda p: p, "holds neither results.nc nor comparison.nc"),
        (
            lambda p: xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(p / "other.nc") or p / "other.nc",
            "not a layergain run result: it lacks accuracy",
        ),
        (lambda p: (p / "text.nc").write_text("not netCDF") and p / "text.nc", "cannot read results file"),
        (
            _old_results,
            "written by an older layergain (bootstrap and sign-flip statistics): it lacks gain_p_maxt. Recompute "
            "them from its stored predictions with `layergain stats RESULTS`",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, make, message):
    target = make(tmp_path)
    code, _, err = _run(["report", str(target), "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("layergain: error:") and message in err[0]
    assert not (tmp_path / "r").exists()
