"""Every number of the README's findings table comes from a committed results file.

The table in "Findings of the bundled study" is written by hand from reports/*/results.nc; this
test recomputes each cell's numbers from the files (as the data-card test checks counts), so a
rebuilt study with other numbers fails here until the README says what the files say.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "Kather 2016 CRC texture": "kather2016_crc_texture",
    "LC25000 lung": "lc25000_lung",
    "LC25000 colon": "lc25000_colon",
    "IDC breast 50 px": "idc_breast50",
}


def _rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Findings of the bundled study", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| \[([^\]]+)\]\(reports/", line)
        if m:
            rows[m.group(1)] = line
    return rows


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def _ci(lo: float, hi: float) -> str:
    return f"[{_signed(lo)}, {_signed(hi)}]"


@pytest.mark.parametrize("label", list(SETS))
def test_findings_row_matches_results(label):
    rows = _rows()
    assert label in rows, f"README findings table has no row for {label}"
    row = rows[label]
    ds = xr.load_dataset(ROOT / "reports" / SETS[label] / "results.nc")
    gain, ci = ds["gain"].values, ds["gain_ci"].values
    p_maxt = ds["gain_p_maxt"].values
    layers = [str(x) for x in ds["layer"].values]
    # stem gain with its CI and max-T p
    assert f"{_signed(gain[0])} {_ci(*ci[0])}" in row
    assert _p2(p_maxt[0]) in row
    # the largest gain, its layer, CI and p
    b = int(np.nanargmax(gain))
    assert f"{_signed(gain[b])} at `{layers[b]}` {_ci(*ci[b])}" in row
    assert _p2(p_maxt[b]) in row
    # how many layers are significant (max-T)
    n_sig = int(ds["significant"].values.sum())
    cell = row.split("|")[5]
    assert re.match(rf"{n_sig}\b", cell.strip()), (cell, n_sig)
    # depth slope
    slope = float(ds["gain_trend_slope"])
    lo, hi = ds["gain_trend_slope_ci"].values
    assert f"{slope:+.2f} [{lo:+.2f}, {hi:+.2f}]".replace("-", "−") in row
    # sweet spot: the layer, or "undetermined" with the best lower bound
    spot = str(ds["sweet_spot"].values)
    cell = row.split("|")[7]
    if spot:
        assert f"`{spot}`" in cell
    else:
        assert "undetermined" in cell and _signed(float(ds["sweet_spot_lower"].values.max()))[:-1] in cell


def _p2(p: float) -> str:
    """p as the README writes it: 2 significant decimals above 0.01, 3 below."""
    return f"p = {p:.2f}" if p >= 0.1 else f"p = {p:.3f}"
