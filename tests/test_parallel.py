"""Work units: in order on local processes, within memory, and on Dask with the serial results
(a real LocalCluster)."""

from __future__ import annotations

import os

import pytest
import xarray as xr

from layergain import parallel
from layergain.errors import InputValueError
from layergain.parallel import executor, in_order, jobs_within_memory
from layergain.pipeline import RunConfig, run

SMALL = dict(max_per_class=6, seeds=2, folds=3, image_size=64, draws=2000)


def _unit(unit: tuple[int, int]) -> tuple[int, int]:
    value, _ = unit
    return value * value, os.getpid()


def test_in_order_yields_in_the_units_order_from_other_processes() -> None:
    units = [(v, 0) for v in range(7)]
    serial = list(in_order(_unit, units, 1))
    assert [v for v, _ in serial] == [v * v for v in range(7)]
    assert {pid for _, pid in serial} == {os.getpid()}
    spread = list(in_order(_unit, units, 2))
    assert [v for v, _ in spread] == [v * v for v in range(7)]
    assert os.getpid() not in {pid for _, pid in spread}  # the work ran in joblib's processes


def test_jobs_within_memory(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "_available_bytes", lambda: 10 * 2**30)
    assert jobs_within_memory(4, 2**30) == 4
    assert jobs_within_memory(4, 2 * 2**30) == 2  # half of 10 GiB holds two units of 2 GiB
    assert jobs_within_memory(4, 20 * 2**30) == 1  # never fewer than one
    assert jobs_within_memory(None, 2**30) == 1
    monkeypatch.setattr(parallel, "_available_bytes", lambda: None)
    assert jobs_within_memory(3, 2**40) == 3
    monkeypatch.undo()
    available = parallel._available_bytes()
    assert available is None or 0 < available <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.slow
def test_local_cluster_gives_the_serial_results(tmp_path):
    pytest.importorskip("distributed")
    # separate caches: each run extracts its features itself (on the workers, resp. in-process)
    serial = run(RunConfig(out=str(tmp_path / "serial"), cache=str(tmp_path / "c1"), jobs=1, **SMALL))
    dask = run(RunConfig(out=str(tmp_path / "dask"), cache=str(tmp_path / "c2"), workers=2, **SMALL))
    xr.testing.assert_identical(serial.results.drop_attrs(), dask.results.drop_attrs())
    assert (serial.out / "report.md").read_text() == (dask.out / "report.md").read_text()


@pytest.mark.slow
def test_executor_errors(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT", "2s")  # nothing listens there: no need to wait 20 s
    with pytest.raises(InputValueError, match="either `workers` .* or `scheduler`"):
        with executor(workers=2, scheduler="tcp://localhost:1"):
            pass
    with pytest.raises(InputValueError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with executor(scheduler="tcp://127.0.0.1:9"):
            pass
