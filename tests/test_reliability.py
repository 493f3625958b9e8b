"""Reliability: odd images, interruption, a shared cache, reproducibility (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from layergain.data import load_image_set
from layergain.errors import DataError
from layergain.features import extract_features
from layergain.models import load_backbone
from layergain.pipeline import RunConfig, run
from layergain.results.io import load_results

ARGS = ["--max-per-class", "6", "--seeds", "2", "--folds", "3", "--image-size", "64", "--draws", "2000",
        "--quiet"]


def _cli(*args: str) -> subprocess.Popen:
    # SIGINT back to Python's default in the child, as for a command in a terminal: when the tests
    # run as a background job of a non-interactive shell, SIGINT is ignored and children inherit
    # that, so Python would never raise KeyboardInterrupt. (Set in the child's own code: a
    # preexec_fn is unsafe in a process with threads.)
    return subprocess.Popen([sys.executable, "-c", _START, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


_START = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "from layergain.cli import main; sys.exit(main(sys.argv[1:]))")


def _write_odd_images(root: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        d = root / label
        d.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (40, 60, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
        Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8), "L").save(d / "grey.png")
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).convert("P").save(d / "palette.png")
        Image.fromarray(rng.integers(0, 255, (20, 25, 4), dtype=np.uint8), "CMYK").save(d / "cmyk.jpg")
        Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16)).save(d / "sixteen.png")  # I;16
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / "tiny 8px.png")
        Image.fromarray(rng.integers(0, 255, (40, 300, 3), dtype=np.uint8)).save(d / "wide.tif")


def test_odd_but_valid_images_are_converted_and_used(tmp_path):
    _write_odd_images(tmp_path / "odd")
    s = load_image_set(tmp_path / "odd")
    assert len(s) == 14 and not s.skipped
    feats = extract_features(load_backbone(weights=None, seed=0), s, image_size=64).features
    assert all(np.isfinite(v).all() and v.shape[0] == 14 for v in feats.values())


@pytest.mark.slow
def test_non_utf8_and_spaced_file_names_reach_the_results(tmp_path):
    root = tmp_path / "names"
    rng = np.random.default_rng(1)
    for label in ("x", "y"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            name = os.fsdecode(f"{label} img {i}".encode() + b"\xff.png")  # not valid UTF-8
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / label / name)
    out = run(RunConfig(data=str(root), out=str(tmp_path / "out"), cache=str(tmp_path / "c"), seeds=2, folds=3,
                        image_size=32, draws=2000))
    paths = load_results(out.out)["path"].values
    assert any("\\xff" in p and " img " in p for p in paths)


def test_decompression_bomb_is_named(tmp_path, monkeypatch):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.new("RGB", (100, 100), (i, 0, 0)).save(tmp_path / label / f"{i}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 100x100 > 2 x 2000: Pillow refuses
    with pytest.raises(DataError, match="cannot read image .*decompression bomb"):
        load_image_set(tmp_path)


@pytest.mark.slow
def test_skipped_images_are_recorded_in_results_and_report(tmp_path):
    root = tmp_path / "set"
    rng = np.random.default_rng(2)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = run(RunConfig(data=str(root), out=str(tmp_path / "out"), cache=str(tmp_path / "c"), seeds=2, folds=3,
                        image_size=32, draws=2000, skip_bad_images=True))
    ds = load_results(out.out)
    assert ds.attrs["n_images"] == 8 and "a/broken.png" in ds.attrs["skipped_images"]
    assert "broken.png" in (out.out / "report.md").read_text()


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.02)


def _chunks(cache: Path) -> int:
    return len([p for p in cache.rglob("*.npz") if not p.name.startswith(".")])


@pytest.mark.slow
def test_killed_and_interrupted_runs_leave_nothing_and_resume_identically(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    # 1. SIGKILL during extraction: after the first network's chunk is on disk.
    proc = _cli("run", "--out", str(out), "--cache", str(cache), *ARGS)
    _wait_for(lambda: _chunks(cache) >= 1, proc)
    proc.kill()
    proc.wait()
    assert not out.exists() or not any(out.iterdir())
    cached_before = _chunks(cache)
    assert 1 <= cached_before < 3
    # 2. Ctrl-C (SIGINT) after extraction, during probing/statistics.
    proc = _cli("run", "--out", str(out), "--cache", str(cache), *ARGS)
    _wait_for(lambda: _chunks(cache) >= 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".out.staging-*"))
    # 3. A rerun uses the cache and gives exactly what an uninterrupted run gives.
    proc = _cli("run", "--out", str(out), "--cache", str(cache), *ARGS)
    assert proc.wait(timeout=600) == 0, proc.communicate()
    assert _chunks(cache) == 3
    fresh = _cli("run", "--out", str(tmp_path / "fresh"), "--cache", str(tmp_path / "fresh-cache"), *ARGS)
    assert fresh.wait(timeout=600) == 0, fresh.communicate()
    a, b = load_results(out), load_results(tmp_path / "fresh")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.slow
def test_two_runs_sharing_a_cache_do_not_corrupt_it(tmp_path):
    cache = tmp_path / "cache"
    procs = [_cli("run", "--out", str(tmp_path / f"out{i}"), "--cache", str(cache), *ARGS) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=900) == 0, p.communicate()
    a, b = load_results(tmp_path / "out0"), load_results(tmp_path / "out1")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert not list(cache.rglob("*.partial"))  # no temporary files left behind
    # the cache they wrote is complete and valid: a third run computes nothing new
    before = sorted(p.name for p in cache.rglob("*.npz"))
    third = _cli("run", "--out", str(tmp_path / "out2"), "--cache", str(cache), *ARGS)
    assert third.wait(timeout=600) == 0
    assert sorted(p.name for p in cache.rglob("*.npz")) == before
    xr.testing.assert_identical(a.drop_attrs(), load_results(tmp_path / "out2").drop_attrs())


@pytest.mark.slow
def test_report_says_which_images_were_converted(tmp_path):
    _write_odd_images(tmp_path / "odd")
    out = run(RunConfig(data=str(tmp_path / "odd"), out=str(tmp_path / "out"), cache=str(tmp_path / "c"), seeds=2,
                        folds=3, image_size=32, draws=2000))
    formats = json.loads(load_results(out.out).attrs["image_formats"])
    assert formats["kinds"]["PNG RGBA"] == 2 and formats["kinds"]["JPEG CMYK"] == 2
    assert formats["min_size"] == [8, 8] and formats["max_size"] == [300, 40]
    report = (out.out / "report.md").read_text()
    assert "were not RGB" in report and "2 JPEG CMYK" in report and "converted to RGB" in report
    assert "from 8 × 8 to 300 × 40 px" in report


@pytest.mark.slow
def test_no_progress_bars_when_not_on_a_terminal_and_silence_with_quiet(tmp_path):
    args = ["extract", "--max-per-class", "2", "--seeds", "1", "--image-size", "32", "--cache", str(tmp_path / "c")]
    loud = _cli(*args)
    out, err = loud.communicate(timeout=300)
    assert loud.returncode == 0 and "features pretrained" in err  # messages, one per line
    assert "\r" not in err and "img/s" not in err  # but no progress bar: stderr is not a terminal
    quiet = _cli(*args, "--quiet")
    out, err = quiet.communicate(timeout=300)
    assert quiet.returncode == 0 and out == "" and err == ""


@pytest.mark.slow
def test_a_lost_interrupt_still_publishes_nothing(tmp_path):
    """Python drops a KeyboardInterrupt raised inside a __del__ ("Exception ignored"); the CLI's
    handler also records the request, and the pipeline checks it before moving files into --out.
    Here the request is recorded without any exception (as if it had been lost): nothing is published."""
    from layergain import _interrupt
    from layergain.report import write_report
    from layergain.results.publish import publish

    results = load_results(Path(__file__).resolve().parents[1] / "reports" / "kather2016_sample" / "results.nc")
    out = tmp_path / "out"
    _interrupt.request()
    try:
        with pytest.raises(KeyboardInterrupt):
            publish(out, results, write_report)
    finally:
        _interrupt.clear()
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".out.staging-*"))
    assert {p.name for p in publish(out, results, write_report)[0]} >= {"results.nc", "report.md"}
