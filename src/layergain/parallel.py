"""Where independent work units run: local processes (default) or a Dask cluster.

The units are the feature extraction of one network (one image set × backbone × init) and the
probes of one (init, layer). They go through :mod:`joblib`; with ``workers`` or ``scheduler`` the
joblib backend is ``dask.distributed``, so the same code runs on a laptop's processes, a
``LocalCluster`` or an existing cluster. Every unit is deterministic and single-threaded in its
numerics, so results are identical whichever runs them.

The statistics (bootstrap, permutations) stay in the calling process: they are vectorised and
take seconds; splitting them would change their random streams for no gain.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from layergain.errors import InputValueError

__all__ = ["Executor", "executor"]


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
        Local processes for the probes when no cluster is used (default: the CPU count, at most 8).
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
                client = Client(scheduler, timeout="20s")
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
