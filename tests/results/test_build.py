"""Assembling a run's results: the stages' Datasets merged without overwriting one another."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from layergain import schema as S
from layergain.results.build import per_image_correct, run_dataset, with_statistics


def _parts():
    inits, layers = ["pretrained", "random-0", "random-1"], ["a", "b", "c"]
    probes = xr.Dataset(
        {"accuracy": ((S.INIT, S.LAYER), np.full((3, 3), 0.5)),
         "prediction": ((S.INIT, S.LAYER, S.REPEAT, S.IMAGE), np.zeros((3, 3, 2, 4), dtype=np.int16))},
        coords={S.INIT: inits, S.LAYER: layers, "label": (S.IMAGE, [0, 1, 0, 1])},
    )
    stats = xr.Dataset({"gain": ((S.LAYER,), np.zeros(3))}, coords={S.LAYER: layers})
    similarity = xr.Dataset({"cka_linear": ((S.INIT, S.LAYER), np.ones((3, 3)))}, coords={S.INIT: inits, S.LAYER: layers})
    inference = xr.Dataset({"rsa_difference": ((S.LAYER,), np.zeros(3))}, coords={S.LAYER: layers},
                           attrs={"similarity_inference_n_boot": 50, "similarity_inference_method": "m"})
    estimates = xr.Dataset({"logme": ((S.INIT, S.LAYER), np.ones((3, 3)))}, coords={S.INIT: inits, S.LAYER: layers},
                           attrs={"transferability_seed": 3})
    estimates["logme"].attrs = {"method": "LogME", "nan_reason": {}}
    tau = xr.Dataset({"tau_gain": ((S.ESTIMATOR,), [0.5]), "n_layers": ((S.ESTIMATOR,), [3.0])},
                     coords={S.ESTIMATOR: ["logme"]}, attrs={"n_boot": 2000, "confidence": 0.95})
    return probes, stats, similarity, inits, inference, estimates, tau


def test_stage_variables_are_renamed_and_carry_their_stage_attrs():
    probes, stats, similarity, inits, inference, estimates, tau = _parts()
    ds = run_dataset(probes, stats, similarity, inits, similarity_inference=inference, transferability=estimates,
                     tau=tau)
    assert {"transfer_logme", "tau_gain", "tau_n_layers", "rsa_difference"} <= set(ds.data_vars)
    assert "logme" not in ds and "n_layers" not in ds and ds.attrs == {}
    assert ds["rsa_difference"].attrs == {"n_boot": 50, "method": "m"}
    assert ds["transfer_logme"].attrs["seed"] == 3 and ds["transfer_logme"].attrs["method"] == "LogME"
    assert ds["tau_gain"].attrs == {"n_boot": 2000, "confidence": 0.95}
    # `layergain stats` keeps them all
    kept = with_statistics(ds, stats)
    assert {"transfer_logme", "tau_gain", "tau_n_layers", "rsa_difference"} <= set(kept.data_vars)


def test_two_stages_naming_one_variable_is_an_error():
    probes, stats, similarity, inits, *_ = _parts()
    clash = xr.Dataset({"gain": ((S.LAYER,), np.ones(3))}, coords={S.LAYER: ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"variable 'gain' is made by two stages of a run"):
        run_dataset(probes, stats, similarity, inits, similarity_inference=clash)


def test_per_image_correct_is_the_mean_over_repeats():
    probes = _parts()[0]
    probes["prediction"][0, 0, 1, :] = 1  # repeat 1 of (pretrained, a): every prediction is class 1
    correct = per_image_correct(probes)
    assert correct.dims == (S.INIT, S.LAYER, S.IMAGE)
    np.testing.assert_allclose(correct.values[0, 0], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(correct.values[1, 0], [1, 0, 1, 0])
