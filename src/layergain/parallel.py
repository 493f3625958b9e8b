"""Where independent work units run: local processes (default) or a Dask cluster.

The units are the feature extraction of one network (one image set × backbone × init), the
probes and the transferability estimators of one (init, layer), and the similarity measures
and their inference of one layer. They go through :mod:`joblib`; with ``workers`` or ``scheduler`` the
joblib backend is ``dask.distributed``, so the same code runs on a laptop's processes, a
``LocalCluster`` or an existing cluster. Every unit is deterministic and single-threaded in its
numerics, so results are identical whichever runs them.

The statistics (bootstrap, permutations) stay in the calling process: they are vectorised and
take seconds; splitting them would change their random streams for no gain.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from layergain.errors import InputValueError

__all__ = ["Executor", "executor", "in_order", "jobs_within_memory"]

T = TypeVar("T")
#: How long :func:`executor` waits for a Dask scheduler before it says it cannot reach it.
SCHEDULER_TIMEOUT = "20s"


@dataclass(frozen=True)
class Executor:
    """How to run work units: ``kind`` is ``"local"`` or ``"dask"``; ``n_jobs`` for joblib."""

    kind: str
    n_jobs: int
    description: str


@contextmanager
def executor(workers: int | None = None, scheduler: str | None = None, jobs: int | None = None) -> Iterator[Executor]:
    """Set up where work units run for the duration of the block.

    Parameters
    ----------
    workers : int, default=None
        Start a ``dask.distributed.LocalCluster`` with this many single-threaded worker processes.
    scheduler : str, default=None
        Address of an existing Dask scheduler (``tcp://host:8786``); the workers must see the
        image files and the feature cache at the same paths (a shared file system).
    jobs : int, default=None
        Local processes of the work units when no cluster is used (default: the CPU count, at most 8).
    """
    if workers is not None and scheduler is not None:
        raise InputValueError("pass either `workers` (a local Dask cluster) or `scheduler` (an existing one), not both.")
    if workers is None and scheduler is None:
        n = jobs if jobs else max(1, min(os.cpu_count() or 1, 8))
        yield Executor("local", n, f"{n} local process(es)")
        return
    try:
        import joblib
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputValueError(
            "running on Dask needs dask.distributed; install it with `pip install 'layergain[dask]'`."
        ) from exc
    cluster = None
    try:
        if workers is not None:
            if workers < 1:
                raise InputValueError(f"`workers` must be >= 1, got {workers}.")
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
            description = f"Dask LocalCluster, {workers} worker(s)"
        else:
            try:
                client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise InputValueError(
                    f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); check the address and that it runs."
                ) from exc
            description = f"Dask scheduler {scheduler}"
        n = max(1, sum(client.nthreads().values()))
        with client, joblib.parallel_config(backend="dask"):
            yield Executor("dask", n, description)
    finally:
        if cluster is not None:
            cluster.close()


def in_order(fn: Callable[[Any], T], units: Iterable[Any], n_jobs: int | None = 1) -> Iterator[T]:
    """``fn(unit)`` for every unit, yielded in the units' order as each is done.

    One job (or one unit) runs them here, one after the other; more go to joblib's processes,
    or to the Dask cluster inside :func:`executor`'s block. ``fn`` must be a module-level
    function and the units picklable.
    """
    units = list(units)
    if not n_jobs or n_jobs == 1 or len(units) < 2:
        return map(fn, units)
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(unit) for unit in units)


def jobs_within_memory(n_jobs: int | None, unit_bytes: float, share: float = 0.5) -> int:
    """At most ``n_jobs``, and no more units at once than fit in ``share`` of the memory available now.

    Where the available memory cannot be read (no ``/proc/meminfo``), ``n_jobs`` as given.
    """
    n = max(1, int(n_jobs or 1))
    available = _available_bytes()
    if available is None or unit_bytes <= 0:
        return n
    return max(1, min(n, int(share * available // unit_bytes)))


def _available_bytes() -> int | None:
    """MemAvailable of ``/proc/meminfo`` in bytes (free memory plus what the page cache can give back)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
