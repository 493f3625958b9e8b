"""Save and load results as netCDF (netCDF4 engine), atomically: the results' one JSON boundary.

Stages keep attrs as Python values (dicts, lists, numbers, str). Only this module encodes what
netCDF cannot hold (dicts, lists of str) as JSON text (:func:`encode_attr`, applied to every attr by
:func:`save_results`) and decodes it back (:func:`decode_attr`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from layergain._files import atomic_target
from layergain.errors import DataError, OutputError

__all__ = ["cannot_write", "decode_attr", "encode_attr", "load_results", "netcdf_safe_attrs", "save_results"]


def cannot_write(target: str | Path, exc: OSError) -> OutputError:
    """The error of a results or report file that could not be written to ``target`` (say why, and how to fix it)."""
    return OutputError(f"cannot write {target}: {exc.strerror or exc}. Choose a writable folder, `out=DIR`.")


def encode_attr(value: Any, *, sort_keys: bool = False) -> str:
    """``value`` (dict, list, str, number) as JSON text, for an attr netCDF cannot hold as it is.

    Parameters
    ----------
    value : any JSON-able value
        Values JSON does not know (paths, numpy scalars) are written as their ``str``.
    sort_keys : bool, default=False
        Sort the keys of dicts (otherwise they keep their order).
    """
    return json.dumps(value, sort_keys=sort_keys, default=str)


def decode_attr(value: Any, default: Any = None) -> Any:
    """An attr as a Python value: JSON text decoded, other values as they are.

    ``default`` for an empty string; text that is not JSON is returned as it is.
    """
    if not isinstance(value, str):
        return value
    if not value:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def netcdf_safe_attrs(attrs: dict) -> dict:
    """Attrs a netCDF file can hold: str, numbers, 1-D numeric lists; the rest as JSON strings."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif isinstance(value, (str, int, float, np.integer, np.floating)):
            out[key] = value
        elif value is None:
            out[key] = ""
        elif isinstance(value, (list, tuple, np.ndarray)) and len(value) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value
        ):
            out[key] = np.asarray(value)
        else:
            out[key] = encode_attr(value, sort_keys=True)
    return out


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiub" and var.ndim >= 2:
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def save_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` (netCDF4) through a temporary file and a rename.

    A reader never sees a half-written file, and an interrupted write leaves the previous file
    (if any) in place.
    """
    path = Path(path)
    ds = ds.copy()
    ds.attrs = netcdf_safe_attrs(ds.attrs)
    for name in list(ds.variables):
        ds[name].attrs = netcdf_safe_attrs(ds[name].attrs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(path, suffix=".tmp") as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=_encoding(ds))
    except OSError as exc:
        raise cannot_write(path, exc) from exc
    return path


def load_results(path: str | Path) -> xr.Dataset:
    """Read a results file written by :func:`save_results` fully into memory."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.is_file():
        raise DataError(f"results file does not exist: {path}. Pass a run folder or its results.nc.")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read results file {path}: {exc}") from exc
