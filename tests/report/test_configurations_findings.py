"""The configurations report's findings on a real comparison with uncalibrated cells.

``reports/extended/lc25000_colon/lite0/configurations/configurations.nc`` (the committed extended
study: 9 configurations, 5 seeds) has differences whose seeds' spread is below the share the
pivot takes off; they are NaN with that reason. The findings count them once with the reason and
never quote an n/a interval as a pair's largest difference when a tested one exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from layergain.report.configurations_report import configurations_findings

FILE = (Path(__file__).resolve().parents[2] / "reports" / "extended" / "lc25000_colon" / "lite0" / "configurations"
        / "configurations.nc")


@pytest.mark.skipif(not FILE.exists(), reason="the extended study is not in this checkout")
def test_untested_differences_are_counted_with_their_reason():
    ds = xr.load_dataset(FILE)
    diff = ds["difference"].values
    untested = int((np.isfinite(diff) & ~np.isfinite(ds["difference_p_maxt"].values)).sum())
    assert untested > 0  # what this file is here for
    items = configurations_findings(ds)
    counted = [t for t in items if "have no calibrated interval or test" in t]
    assert len(counted) == 1 and counted[0].startswith(f"**{untested} of {diff.size} differences")
    assert "too few seeds" in counted[0]
    for text in items:
        if "no layer's gain differs" in text:
            assert "[n/a, n/a]" not in text, text
    # a pair whose largest difference is untested names its largest *tested* one
    assert any(re.search(r"the largest tested difference is at `[^`]+`: [-+]?\d", t) for t in items)
