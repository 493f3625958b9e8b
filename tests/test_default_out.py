"""The README's first command (`layergain run`, no --out) writes where git does not look."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from layergain.data import load_image_set
from layergain.pipeline import DEFAULT_OUT, RunConfig

ROOT = Path(__file__).resolve().parents[1]


def test_default_out_is_outside_the_committed_reports():
    image_set = load_image_set(None, max_per_class=2)
    assert RunConfig().out_dir(image_set.name) == Path(DEFAULT_OUT) / "kather2016_sample"
    assert RunConfig(out="reports/x").out_dir(image_set.name) == Path("reports/x")


def test_git_ignores_the_default_out():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    target = f"{DEFAULT_OUT}/kather2016_sample/results.nc"
    res = subprocess.run(["git", "check-ignore", "-q", target], cwd=ROOT, check=False)
    assert res.returncode == 0, f"{target} is not ignored by git"
