"""The statistics stage of a committed run, before (hierarchical bootstrap + sign-flip, commit 10e5be5)
and after (variance components + generalised pivotal reference), side by side in one run.

Usage::

    .venv/bin/python bench/stats_stage.py [RESULTS.nc] [--rounds 3]

Default input: the Kather 2016 study (reports/kather2016_crc_texture/results.nc: 5000 images,
10 slides, 18 layers, 5 random seeds). The "before" code is taken from git (``git archive
10e5be5 src``) into a temporary folder and run in its own process with the settings of the
committed study (B = 2000 BCa, 9999 permutations); "after" runs this checkout's
``layergain.results.outcomes.run_statistics`` with the default draws (20 000). Both read the same stored predictions.
Rounds alternate the two, each in a fresh process, single-threaded BLAS; the ratio is of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "10e5be5"

_CHILD = r'''
import json, sys, time, types
import numpy as np, xarray as xr
ds = xr.load_dataset(sys.argv[2], engine="netcdf4")
labels = ds["label"].values
groups = ds["group"].values
groups = groups if (groups != "").all() else None
correct = ds["prediction"].values == labels
folds = ds["fold"].values
inits = [str(i) for i in ds["init"].values]
from layergain import pipeline
t = time.perf_counter()
if sys.argv[1] == "before":
    layers = [types.SimpleNamespace(name=str(n), relative_depth=float(d), params_to_layer=int(p))
              for n, d, p in zip(ds["layer"].values, ds["relative_depth"].values, ds["params_to_layer"].values)]
    config = types.SimpleNamespace(boot=2000, permutations=9999, confidence=0.95, progress=False)
    image_set = types.SimpleNamespace(labels=labels, groups=groups)
    pipeline._statistics(config, image_set, correct, folds, layers, inits, pipeline._streams(0))
else:
    from layergain.config import streams
    from layergain.results.outcomes import run_outcomes, run_statistics

    run_statistics(run_outcomes(ds), confidence=0.95, margin=0.02, draws=20000, target="draw",
                   seed=streams(0)["statistics"])
print(json.dumps({"seconds": time.perf_counter() - t}))
'''


def _before_source(tmp: Path) -> Path:
    archive = tmp / "before.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "src"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "src"


def _time(impl: str, results: Path, src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _CHILD, impl, str(results)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(ROOT / "reports/kather2016_crc_texture/results.nc"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before_src = _before_source(Path(tmp))
        times = {"before": [], "after": []}
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for impl in order:
                src = before_src if impl == "before" else ROOT / "src"
                times[impl].append(_time(impl, Path(args.results), src))
                print(f"round {r}: {impl} {times[impl][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nstatistics stage of {args.results}: before {med['before']:.1f} s, after {med['after']:.1f} s, "
          f"after/before = {med['after'] / med['before']:.2f}")


if __name__ == "__main__":
    main()
