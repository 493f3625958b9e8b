"""Rebuild a report from a results file alone (``layergain report``)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from layergain.errors import DataError
from layergain.results import schema as S
from layergain.results.io import cannot_write, load_results

__all__ = ["rebuild_report", "report_kind"]

_RUN_NEEDS = ("accuracy", "gain", "gain_ci", "gain_p", "gain_p_maxt", "params_to_layer")
# Variables only the statistics before layergain.stats.gain_statistics wrote (bootstrap, sign flips).
_OLD_STATISTICS = ("gain_boot", "sweet_spot_p", "gain_trend_spearman_p")
_COMPARISON_NEEDS = ("gain", "joint_gain_ci", "joint_gain_p_maxt", "interaction_wald_p")
_CONFIGURATIONS_NEEDS = ("gain", "paired_gain_ci", "difference", "difference_p_maxt", "holds")
_BACKBONES_NEEDS = ("accuracy_pretrained", "params_to_layer", "difference", "p_any", "holds")


def report_kind(ds: xr.Dataset) -> str:
    """``"comparison"`` for a comparison.nc, ``"configurations"`` for a configurations.nc,
    ``"backbones"`` for a backbones.nc, ``"run"`` for a run's results.nc.

    Raises
    ------
    DataError
        The Dataset is neither (variables missing).
    """
    if "backbone_pair" in ds.dims:
        missing = [name for name in _BACKBONES_NEEDS if name not in ds.variables]
        if missing:
            raise DataError(f"this file is not a layergain backbones result: it lacks {', '.join(missing)}.")
        return "backbones"
    if "configuration" in ds.dims:
        missing = [name for name in _CONFIGURATIONS_NEEDS if name not in ds.variables]
        if missing:
            raise DataError(f"this file is not a layergain configurations result: it lacks {', '.join(missing)}.")
        return "configurations"
    is_comparison = S.DATASET in ds.dims
    needs = _COMPARISON_NEEDS if is_comparison else _RUN_NEEDS
    missing = [name for name in needs if name not in ds.variables]
    if missing and not is_comparison and any(name in ds.variables for name in _OLD_STATISTICS):
        raise DataError(
            f"this results file was written by an older layergain (bootstrap and sign-flip statistics): it "
            f"lacks {', '.join(missing)}. Recompute them from its stored predictions with `layergain stats "
            "RESULTS` (no network or feature is needed); it writes the report too."
        )
    if missing:
        kind = "comparison" if is_comparison else "run"
        raise DataError(
            f"this file is not a layergain {kind} result: it lacks {', '.join(missing)}. Pass the results.nc "
            "of "
            "`layergain run` or the comparison.nc of `layergain compare`."
        )
    return "comparison" if is_comparison else "run"


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in ("results.nc", "comparison.nc", "configurations.nc", "backbones.nc"):
            if (path / name).is_file():
                return path / name
        raise DataError(
            f"{path} holds neither results.nc nor comparison.nc. Pass a run or comparison folder, or the "
            "file."
        )
    return path


def rebuild_report(path: str | Path, out: str | Path | None = None) -> tuple[str, list[Path]]:
    """Write the report of a results file into ``out`` (default: the file's folder).

    Returns the kind (``"run"``, ``"comparison"``, ``"configurations"`` or ``"backbones"``) and the
    files written.
    """
    from layergain.report.backbones_report import write_backbones_report
    from layergain.report.compare_report import write_comparison_report
    from layergain.report.configurations_report import write_configurations_report
    from layergain.report.run_report import write_report

    path = _resolve(Path(path))
    ds = load_results(path)
    kind = report_kind(ds)
    target = Path(out) if out is not None else path.parent
    if target.exists() and not target.is_dir():
        raise DataError(f"`out={target}` is a file; pass a folder.")
    writer = {"run": write_report, "comparison": write_comparison_report,
              "configurations": write_configurations_report, "backbones": write_backbones_report}[kind]
    try:
        return kind, writer(ds, target)
    except OSError as exc:
        raise cannot_write(target, exc) from exc
