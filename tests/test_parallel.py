"""Work units on Dask give the same results as the serial run (a real LocalCluster)."""

from __future__ import annotations

import pytest
import xarray as xr

from layergain.errors import InputValueError
from layergain.parallel import executor
from layergain.pipeline import RunConfig, run

pytest.importorskip("distributed")
SMALL = dict(max_per_class=6, seeds=2, folds=3, image_size=64, draws=2000)


@pytest.mark.slow
def test_local_cluster_gives_the_serial_results(tmp_path):
    # separate caches: each run extracts its features itself (on the workers, resp. in-process)
    serial = run(RunConfig(out=str(tmp_path / "serial"), cache=str(tmp_path / "c1"), jobs=1, **SMALL))
    dask = run(RunConfig(out=str(tmp_path / "dask"), cache=str(tmp_path / "c2"), workers=2, **SMALL))
    xr.testing.assert_identical(serial.results.drop_attrs(), dask.results.drop_attrs())
    assert (serial.out / "report.md").read_text() == (dask.out / "report.md").read_text()


@pytest.mark.slow
def test_executor_errors():
    with pytest.raises(InputValueError, match="either `workers` .* or `scheduler`"):
        with executor(workers=2, scheduler="tcp://localhost:1"):
            pass
    with pytest.raises(InputValueError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with executor(scheduler="tcp://127.0.0.1:9"):
            pass
