"""Publishing a result: every file written into a staging folder, then moved into ``out``.

:func:`check_writable` finds an unwritable folder before any work; :func:`publish` writes the
results file, reads it back, writes the report from what was read (so a report is always the
report of its file) and moves everything into ``out`` only when all succeeded: an error or an
interruption leaves ``out`` as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from layergain import _interrupt as interrupt
from layergain.errors import OutputError
from layergain.results.io import cannot_write, load_results, save_results

__all__ = ["check_writable", "publish"]


def check_writable(folder: Path, what: str, parameter: str) -> None:
    """Fail before any work if ``folder`` (or the nearest existing folder above it) cannot be written.

    Tries what a run will do, creating and removing a hidden folder, since permission bits do not
    tell (root, read-only file systems). Nothing is left behind. ``what`` names the folder in the
    message (``"output path"``), ``parameter`` the setting that chooses it (``"`out=DIR`"``).
    """
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file; pass a folder with {parameter}.")
    existing = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("."))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".layergain-check-", dir=existing))
    except OSError as exc:
        raise OutputError(
            f"{what} {folder} is not writable ({exc.strerror or exc} in {existing}); choose another {parameter}."
        ) from exc


def publish(
    out: Path,
    results: xr.Dataset,
    write_report: Callable[[xr.Dataset, Path], list[Path]],
    *,
    name: str = "results.nc",
    log: Callable[[str], None] = lambda message: None,
) -> tuple[list[Path], xr.Dataset]:
    """Write ``results`` as ``out/name`` and its report, atomically as a folder.

    Parameters
    ----------
    out : Path
        The folder to publish into (created if needed).
    results : xarray.Dataset
        Attrs as Python values; :func:`~layergain.results.io.save_results` encodes them.
    write_report : callable
        ``write_report(ds, folder) -> files``, given the results as read back from the file.
    name : str, default="results.nc"
        The results file's name; it is moved in last, so its presence marks a complete output.
    log : callable, default=no messages

    Returns
    -------
    files : list of Path
        Every file moved into ``out``.
    written : xarray.Dataset
        The results as read back from the file.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise cannot_write(out, exc) from exc
    try:
        written = load_results(save_results(results, staging / name))
        write_report(written, staging)
        interrupt.check()  # a Ctrl-C whose exception was lost still publishes nothing
        moved = []
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == name)  # the results file last
        for src in files:
            dst = out / src.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved.append(dst)
        log(f"wrote {len(moved)} files to {out}")
        return moved, written
    except OSError as exc:
        raise cannot_write(out, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
