"""Every number of the README's extended-study tables comes from a committed results file.

The tables under "Findings of the bundled study" that follow a ``<!-- findings:NAME -->`` marker
(one per claim, the robustness table and the transferability table) hold one row per
configuration of ``reports/extended/`` (or per estimator) and one column per image set. This test
recomputes every cell from the committed results.nc / configurations.nc / comparison.nc, as the
data-card test checks counts: a rebuilt study with other numbers fails here until the README says
what the files say.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
EXTENDED = ROOT / "reports" / "extended"
#: README column header -> folder under reports/extended/
SETS = {
    "Kather 2016 (480, 10 slides)": "kather2016_crc_texture",
    "LC25000 lung (360)": "lc25000_lung",
    "LC25000 colon (240)": "lc25000_colon",
    "IDC breast (240, patients)": "idc_breast50",
}
EARLY, DEEP = 0.25, 0.75  # the robustness table's relative depths (layergain.results.configurations)


def _folder(label: str, set_dir: str) -> Path:
    """``Lite0 · cov · matched`` -> reports/extended/<set>/lite0/cov_matched; ``Lite1`` -> <set>/lite1."""
    parts = [p.strip() for p in label.split("·")]
    model = parts[0].lower()
    if len(parts) == 1:
        return EXTENDED / set_dir / model
    return EXTENDED / set_dir / model / f"{parts[1]}_{parts[2]}"


def _signed(x: float, digits: int = 3) -> str:
    return f"{x:+.{digits}f}".replace("-", "−")


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return f"[{_signed(lo, digits)}, {_signed(hi, digits)}]"


def early_cell(ds: xr.Dataset) -> str:
    """Stem gain [CI], and how many layers of relative depth <= 0.25 have a significant gain."""
    early = ds["relative_depth"].values <= EARLY
    sig = np.asarray(ds["significant"].values, dtype=bool)
    g, (lo, hi) = float(ds["gain"].values[0]), ds["gain_ci"].values[0]
    return f"{_signed(g)} {_ci(lo, hi)} · {int(sig[early].sum())}/{int(early.sum())}"


def deep_cell(ds: xr.Dataset) -> str:
    """Significant layers of relative depth >= 0.75, and the depth slope of the gain [CI]."""
    deep = ds["relative_depth"].values >= DEEP
    sig = np.asarray(ds["significant"].values, dtype=bool)
    lo, hi = ds["gain_trend_slope_ci"].values
    return f"{int(sig[deep].sum())}/{int(deep.sum())} · {_signed(float(ds['gain_trend_slope']), 2)} {_ci(lo, hi, 2)}"


def sweet_cell(ds: xr.Dataset) -> str:
    """The sweet spot with its share of the parameters, or "undetermined" with the best lower bound."""
    spot = str(ds["sweet_spot"].values)
    if spot:
        params = ds["params_to_layer"].values
        share = float(params[list(ds["layer"].values).index(spot)] / params[-1])
        return f"`{spot}` ({share:.0%})"
    return f"undetermined ({_signed(float(np.nanmax(ds['sweet_spot_lower'].values)))})"


CELLS = {"early": early_cell, "deep": deep_cell, "sweet": sweet_cell}


def robust_cell(ds: xr.Dataset, conclusion: str) -> str:
    """Under how many configurations a conclusion holds, and where its per-layer verdict flips."""
    holds = ds["holds"].sel(conclusion=conclusion).values
    text = f"{int((holds == 1).sum())}/{holds.size}"
    flips = str(ds["flips_at"].sel(conclusion=conclusion).values)
    return f"{text} (flips at {flips})" if flips else text


def tau_cell(ds: xr.Dataset, estimator: str) -> str:
    """Pooled Kendall tau of an estimator's difference against the gain [CI], sets above / below 0."""
    t = ds.sel(estimator=estimator)
    lo, hi = t["tau_gain_pooled_ci"].values
    return (f"{_signed(float(t['tau_gain_pooled']), 2)} {_ci(lo, hi, 2)} · "
            f"{int(t['tau_gain_sets_above'])}↑ {int(t['tau_gain_sets_below'])}↓")


def tables() -> dict[str, tuple[list[str], list[list[str]]]]:
    """The README's marked tables: name -> (header cells, rows of cells)."""
    text = (ROOT / "README.md").read_text()
    out = {}
    for m in re.finditer(r"<!-- findings:(\w+) -->\n((?:\|.*\n)+)", text):
        lines = [line for line in m.group(2).splitlines() if not re.match(r"\|\s*-", line)]
        cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
        out[m.group(1)] = (cells[0], cells[1:])
    return out


@pytest.mark.parametrize("claim", list(CELLS))
def test_claim_tables_match_the_results(claim):
    marked = tables()
    assert claim in marked, f"README has no table marked <!-- findings:{claim} -->"
    header, rows = marked[claim]
    assert [h for h in header[1:]] == list(SETS), header
    assert len(rows) >= 11  # Lite0 x 3 readouts x 3 baselines, Lite1, Lite2
    for row in rows:
        for column, cell in zip(header[1:], row[1:]):
            ds = xr.load_dataset(_folder(row[0], SETS[column]) / "results.nc")
            assert cell == CELLS[claim](ds), (claim, row[0], column)


def test_robustness_table_matches_the_configurations_files():
    header, rows = tables()["robust"]
    assert header[1:] == list(SETS)
    assert len(rows) == 4
    for row in rows:
        for column, cell in zip(header[1:], row[1:]):
            ds = xr.load_dataset(EXTENDED / SETS[column] / "lite0" / "configurations" / "configurations.nc")
            conclusion = row[0].strip("`")
            assert cell == robust_cell(ds, conclusion), (conclusion, column)


def test_transferability_table_matches_the_comparisons():
    header, rows = tables()["tau"]
    # columns: estimator, then one configuration's comparison across the four sets each
    for row in rows:
        for column, cell in zip(header[1:], row[1:]):
            ds = xr.load_dataset(EXTENDED / "comparison" / column.strip("`") / "comparison.nc")
            assert ds.sizes["dataset"] == len(SETS)
            assert cell == tau_cell(ds, row[0].strip("`")), (row[0], column)
