"""Runs of several configurations (readouts × baselines) and of any backbone, end to end on real images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from layergain import schema as S
from layergain.cli import main
from layergain.pipeline import RunConfig, run
from layergain.results.io import load_results

pytestmark = pytest.mark.slow  # real extraction and whole runs

LAYERS = ["blocks.2.0", "blocks.5.0"]
SMALL = dict(max_per_class=5, seeds=2, folds=2, image_size=64, draws=1000, layers=LAYERS)
#: Variables computed from the features (everything but attrs, timings and the similarity's
#: seconds): equal in two runs of one configuration.
NUMBERS = ("accuracy", "prediction", "probability", "gain", "gain_ci", "gain_p_maxt", "cka_linear")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def two_readouts(tmp_path_factory, cache):
    lines: list[str] = []
    out = tmp_path_factory.mktemp("grid") / "out"
    output = run(RunConfig(out=str(out), cache=cache, readout=["avg", "cov:16"], **SMALL), log=lines.append)
    return output, lines


def test_each_configuration_is_a_complete_run_in_its_folder(two_readouts):
    output, lines = two_readouts
    assert sorted(output.runs) == ["avg_default", "cov-16_default"]
    for name, part in output.runs.items():
        assert part.out == output.out / name
        for file in ("results.nc", "report.md", "report.html"):
            assert (part.out / file).is_file(), (name, file)
        ds = load_results(part.out)
        assert ds.attrs["readout"] == name.split("_")[0].replace("-", ":") and ds.attrs["baseline"] == "default"
    assert not (output.out / "results.nc").exists()  # no top-level result: a folder per configuration


def test_every_readout_of_a_network_comes_from_its_one_forward_pass(two_readouts):
    _, lines = two_readouts
    passes = [line for line in lines if line.startswith("features ")]
    assert len(passes) == 1 + SMALL["seeds"]  # one line (one extraction) per network, not per readout
    assert all("avg, cov:16" in line for line in passes)


def test_the_widths_are_the_readouts_and_the_avg_configuration_equals_a_plain_run(two_readouts, tmp_path, cache):
    output, _ = two_readouts
    cov = load_results(output.runs["cov-16_default"].out)
    assert cov["width"].values.tolist() == [16 * 17 // 2] * 2  # 40 and 192 channels, projected to 16
    plain = run(RunConfig(out=str(tmp_path / "plain"), cache=cache, **SMALL)).results
    avg = load_results(output.runs["avg_default"].out)
    assert avg["width"].values.tolist() == [40, 192]
    for name in NUMBERS:
        xr.testing.assert_equal(avg[name], plain[name])
    assert not np.array_equal(cov["accuracy"].values, avg["accuracy"].values)
    # the second configuration's numbers (statistics' draws included) are those of a run of it alone
    alone = run(RunConfig(out=str(tmp_path / "cov"), cache=cache, readout=["cov:16"], **SMALL)).results
    for name in NUMBERS:
        xr.testing.assert_equal(cov[name], alone[name])
    assert "channel covariance" in (output.runs["cov-16_default"].out / "report.md").read_text()


def test_a_readout_that_cannot_read_a_layer_is_one_line_and_writes_nothing(tmp_path, capsys, cache):
    out = tmp_path / "out"
    code = main(["run", "--readout", "cls", "--out", str(out), "--cache", cache, "--max-per-class", "3",
                 "--folds", "2", "--image-size", "64", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "readout 'cls' does not apply to layer 'stem'" in err
    assert not out.exists()


@pytest.mark.slow
def test_a_vit_from_a_local_state_dict_on_the_cli(tmp_path, capsys, cache):
    """A tiny timm ViT (2 blocks at 32 px, random weights saved as the "pretrained" file): its layers
    are read as tokens, every width is the embedding dimension, the readout is the model's own."""
    import timm

    kwargs = {"img_size": 32, "depth": 2}
    torch.manual_seed(123)
    state = timm.create_model("vit_tiny_patch16_224", **kwargs).state_dict()
    weights = tmp_path / "vit.pth"
    torch.save(state, weights)
    out = tmp_path / "vit"
    code = main(["run", "--model", "timm:vit_tiny_patch16_224", "--model-kwargs", json.dumps(kwargs),
                 "--weights", str(weights), "--image-size", "32", "--max-per-class", "4", "--seeds", "2",
                 "--folds", "2", "--draws", "1000", "--out", str(out), "--cache", cache, "--quiet"])
    assert code == 0, capsys.readouterr().err
    ds = load_results(out)
    assert ds[S.LAYER].values.tolist() == ["blocks.0", "blocks.1", "norm"]
    assert ds["width"].values.tolist() == [192, 192, 192]
    assert ds.attrs["readout"] == "cls" and ds.attrs["weights_source"] == str(weights)
    assert json.loads(ds.attrs["config"])["model_kwargs"] == json.dumps(kwargs)


def test_baselines_are_configurations_and_default_is_todays_random_network(tmp_path, cache):
    lines: list[str] = []
    output = run(RunConfig(out=str(tmp_path / "b"), cache=cache, baseline=["default", "permuted"], **SMALL),
                 log=lines.append)
    assert sorted(output.runs) == ["avg_default", "avg_permuted"]
    # one extraction per network: the pretrained one once, each baseline's seeds once
    assert len([line for line in lines if line.startswith("features ")]) == 1 + 2 * SMALL["seeds"]
    plain = run(RunConfig(out=str(tmp_path / "plain"), cache=cache, **SMALL)).results
    default, permuted = (load_results(output.runs[n].out) for n in ("avg_default", "avg_permuted"))
    for name in NUMBERS:
        xr.testing.assert_equal(default[name], plain[name])
    pre = dict(init=S.PRETRAINED)
    xr.testing.assert_equal(permuted["accuracy"].sel(pre), default["accuracy"].sel(pre))  # shared pretrained net
    assert not np.array_equal(permuted["accuracy"].values[1:], default["accuracy"].values[1:])
    assert permuted.attrs["baseline"] == "permuted" and "shuffled" in permuted.attrs["random_init"]
    assert "random baseline `permuted`" in (output.runs["avg_permuted"].out / "report.md").read_text()


def test_a_run_of_several_configurations_writes_their_paired_comparison(two_readouts, tmp_path, capsys):
    output, _ = two_readouts
    folder = output.out / "configurations"
    ds = load_results(folder / "configurations.nc")
    assert ds["configuration"].values.tolist() == ["avg_default", "cov-16_default"]
    assert ds["difference"].dims == ("config_pair", S.LAYER) and ds["shared_pretrained"].values.tolist() == [0]
    np.testing.assert_allclose(  # the paired design's gains are the runs' gains
        ds["gain"].values, [load_results(output.runs[n].out)["gain"].values for n in ("avg_default", "cov-16_default")])
    np.testing.assert_allclose(ds["difference"].values[0], ds["gain"].values[0] - ds["gain"].values[1])
    assert ds["holds"].dims == ("conclusion", "configuration")
    text = (folder / "report.md").read_text()
    assert "Robustness" in text and "`avg_default` − `cov-16_default`" in text
    # the same comparison from the two run folders on the command line, and its report rebuilt alone
    out = tmp_path / "cmp"
    assert main(["compare", *(str(r.out) for r in output.runs.values()), "--out", str(out), "--draws", "1000",
                 "--quiet"]) == 0
    again = load_results(out / "configurations.nc")
    np.testing.assert_allclose(again["difference"].values, ds["difference"].values)
    assert main(["report", str(out), "--out", str(tmp_path / "rebuilt"), "--quiet"]) == 0
    assert (tmp_path / "rebuilt" / "report.html").is_file()


def test_each_configurations_run_report_holds_the_robustness_table(two_readouts):
    """The robustness table of the configurations.nc is in every configuration's results and run report."""
    output, _ = two_readouts
    paired = load_results(output.out / "configurations" / "configurations.nc")
    for name, run_output in output.runs.items():
        ds = load_results(run_output.out)
        np.testing.assert_array_equal(ds["robustness_holds"].transpose("conclusion", "sibling").values,
                                      paired["holds"].transpose("conclusion", "configuration").values)
        assert ds["sibling"].values.tolist() == paired["configuration"].values.tolist()
        assert ds["robustness_holds"].attrs["configuration"] == name
        text = (run_output.out / "report.md").read_text()
        assert "**Robustness across the 2 configurations run together**" in text
        assert f"{name} (this run)" in text and (run_output.out / "tables" / "robustness.tex").is_file()
