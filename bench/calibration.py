"""Calibration of the gain statistics: issue 12's scenarios with more runs than the test suite.

Run from the repository root:   .venv/bin/python bench/calibration.py [--runs 2000] [--seed 0]

The scenarios (studies, analyses, what is counted) are ``SCENARIOS`` in tests/stats/simulate.py,
the same that tests/stats/test_calibration.py asserts on with 200-1000 runs. Each scenario is
simulated ``--runs`` times and analysed by ``layergain.stats.gain_statistics`` (or
``interaction_test``); the script prints a Markdown table: scenario, what is counted, nominal
level, issue 12's target, measured rate, its Monte-Carlo SE sqrt(rate (1 - rate) / runs),
runs, runs with NaN, and the analysis time per run; then the CI/test agreement over the
coverage, size and power runs. Everything is also written to bench/out/calibration.json.

One analysis costs ~40 ms for one layer and ~0.5-1.3 s for 18 layers on this 2-core machine, so
the 18-layer scenarios (fwer/band, sweet_spot_8_groups) dominate: see bench/README.md for the
time a run took.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.stats.simulate holds the scenarios

from tests.stats.simulate import SCENARIOS, disagreements, mc_se, rate_of, run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per scenario (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--n-draws", type=int, default=5000, help="joint-null draws per analysis (default 5000)"
    )
    parser.add_argument(
        "--scenarios", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default all)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "calibration.json")
    args = parser.parse_args()
    # statsmodels' Holm calls gc.collect() on every call; freezing the heap makes that cheap and
    # changes no result (as tests/stats/conftest.py does for the suite).
    gc.freeze()
    names = [n for n in args.scenarios.split(",") if n] or list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")

    started = time.perf_counter()
    results: dict[str, dict] = {}
    rows = []
    for name in names:
        scenario = SCENARIOS[name]
        if scenario.stream not in results:
            t0 = time.perf_counter()
            results[scenario.stream] = run_scenario(scenario, args.seed, args.runs, n_draws=args.n_draws)
            print(f"{scenario.stream}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        res = results[scenario.stream]
        rate, n_nan = rate_of(scenario, res)
        rows.append(
            {
                "scenario": name,
                "description": scenario.description,
                "measure": scenario.measure,
                "nominal": scenario.nominal,
                "target": scenario.target,
                "rate": rate,
                "mc_se": mc_se(rate, res["runs"]),
                "runs": res["runs"],
                "nan_runs": n_nan,
                "seconds_per_run": res["seconds"] / res["runs"],
            }
        )

    print(f"\nseed {args.seed}, n_draws {args.n_draws}, total {time.perf_counter() - started:.0f} s\n")
    print(
        "| scenario | counted | nominal | target (issue 12) | measured | MC SE | runs | NaN runs | s / run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['measure']} | {r['nominal']:g} | {r['target']} | {r['rate']:.4f} | "
            f"{r['mc_se']:.4f} | {r['runs']} | {r['nan_runs']} | {r['seconds_per_run']:.3f} |"
        )
    agree = [n for n in names if SCENARIOS[n].measure in ("coverage", "size", "power")]
    differ = compared = 0
    for n in agree:
        d, c = disagreements(results[SCENARIOS[n].stream])
        differ, compared = differ + d, compared + c
    if agree:
        print(f"\nCI and test disagree in {differ} of {compared} (run, layer) cells of {', '.join(agree)}.")
    print("\nScenarios:")
    for r in rows:
        print(f"- {r['scenario']}: {r['description']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "seed": args.seed,
                "n_draws": args.n_draws,
                "runs": args.runs,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "rows": rows,
                "ci_test_disagreements": {"differ": differ, "compared": compared},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
