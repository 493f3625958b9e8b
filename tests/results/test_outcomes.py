"""results.nc -> the statistics' inputs, and the one comparable-runs check (no torch, simulated runs)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from layergain import stats
from layergain.errors import InputValueError
from layergain.results.build import probe_dataset
from layergain.results.io import load_results, save_results
from layergain.results.outcomes import check_comparable, run_outcomes, run_statistics


def _run(rng, *, name="set_a", n_images=24, n_layers=3, n_seeds=2, groups=True, layer_prefix="l"):
    layers = [
        SimpleNamespace(name=f"{layer_prefix}{j}", module=f"m{j}", depth=j + 1, relative_depth=j / max(n_layers - 1, 1),
                        width=8, params_to_layer=100 * (j + 1))
        for j in range(n_layers)
    ]
    inits = ["pretrained"] + [f"random-{s}" for s in range(n_seeds)]
    labels = np.arange(n_images) % 2
    folds = (np.arange(n_images) % 3)[None, :]
    prediction = rng.integers(0, 2, size=(len(inits), n_layers, 1, n_images))
    ds = probe_dataset(
        inits=inits, seeds=[-1, *range(n_seeds)], layers=layers, relpaths=tuple(f"{i}.png" for i in range(n_images)),
        labels=labels, class_names=("a", "b"), groups=np.array([f"g{i % 6}" for i in range(n_images)]) if groups else None,
        sha256=tuple("0" * 64 for _ in range(n_images)), folds=folds, prediction=prediction,
        probability=np.full((*prediction.shape, 2), 0.5), metrics={"accuracy": (prediction == labels).mean(axis=(-2, -1))},
    )
    ds.attrs = {"dataset": name, "backbone": "net", "weights_sha256": "abc"}
    return ds


def test_outcomes_of_a_run_as_the_statistics_read_them(seed, tmp_path):
    rng = np.random.default_rng(seed)
    ds = _run(rng)
    out = run_outcomes(ds)
    assert out.correct.shape == (3, 3, 1, 24) and out.correct_pre.shape == (3, 1, 24)
    assert out.correct_rand.shape == (3, 2, 1, 24)
    np.testing.assert_array_equal(out.correct_rand[:, 1], out.correct[2])
    assert out.inits == ["pretrained", "random-0", "random-1"] and out.layers == ["l0", "l1", "l2"]
    assert out.groups is not None and out.name == "set_a"
    assert run_outcomes(_run(rng, groups=False)).groups is None
    # the same inputs from the file as from memory
    loaded = run_outcomes(load_results(save_results(ds, tmp_path / "results.nc")))
    for field in ("correct", "labels", "groups", "folds", "relative_depth"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(out, field))


def test_run_statistics_are_gain_statistics_labelled(seed):
    ds = _run(np.random.default_rng(seed))
    out = run_outcomes(ds)
    got = run_statistics(out, confidence=0.9, margin=0.05, draws=1000, target="fixed", seed=np.random.SeedSequence(3))
    ref = stats.gain_statistics(
        out.correct_pre, out.correct_rand, out.labels, out.groups, out.folds, layers=out.layers,
        relative_depth=out.relative_depth, confidence=0.9, margin=0.05, n_draws=1000, pretrained="fixed",
        seed=np.random.default_rng(np.random.SeedSequence(3)),
    )
    assert got.attrs == {} and list(got["init"].values) == ["random-0", "random-1"]
    xr.testing.assert_equal(got.drop_vars("init", errors="ignore"), ref.drop_vars("init", errors="ignore"))
    po = out.probe_outcomes()
    assert po.name == "set_a" and po.correct_rand.shape == (3, 2, 1, 24)


def test_check_comparable_names_parameters(seed):
    rng = np.random.default_rng(seed)
    a, b = _run(rng), _run(rng, name="set_b")
    check_comparable([a, b], ["A", "B"])
    with pytest.raises(InputValueError, match=r"same image set"):
        check_comparable([a, a], ["A", "A"])
    other = b.copy()
    other.attrs = {**b.attrs, "weights_sha256": "xyz"}
    with pytest.raises(InputValueError, match=r"run B has weights_sha256='xyz'"):
        check_comparable([a, other], ["A", "B"])
    with pytest.raises(InputValueError, match=r"rerun with the same `model`, `layers` and `seeds`"):
        check_comparable([a, _run(rng, name="set_c", n_seeds=3)], ["A", "C"])
    with pytest.raises(InputValueError, match=r"pretrained network first"):
        run_outcomes(a.isel(init=[1, 0, 2]))
