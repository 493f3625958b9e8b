"""Backbones side by side (issue 15) end to end: two real runs of different backbones on the same images,
`layergain compare` recognises them, writes backbones.nc and its report, and every number in it is
read off the two runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layergain import schema as S
from layergain.cli import main
from layergain.report.rebuild import rebuild_report
from layergain.results.io import load_results

pytestmark = pytest.mark.slow  # real extraction and whole runs


@pytest.fixture(scope="module")
def two_backbones(tmp_path_factory):
    """Tiny timm ViTs of depth 2 and 4 at 32 px (random weights saved as the "pretrained" files) on 4
    images per class of the bundled sample: a smaller and a larger backbone with other layers."""
    import timm

    root = tmp_path_factory.mktemp("backbones")
    runs = []
    for depth in (2, 4):
        kwargs = {"img_size": 32, "depth": depth}
        torch.manual_seed(depth)
        weights = root / f"vit{depth}.pth"
        torch.save(timm.create_model("vit_tiny_patch16_224", **kwargs).state_dict(), weights)
        out = root / f"vit{depth}"
        code = main(["run", "--model", "timm:vit_tiny_patch16_224", "--model-kwargs", json.dumps(kwargs),
                     "--weights", str(weights), "--image-size", "32", "--max-per-class", "4", "--seeds", "2",
                     "--folds", "2", "--draws", "1000", "--similarity-resamples", "2", "--out", str(out),
                     "--cache", str(root / "cache"), "--quiet"])
        assert code == 0
        runs.append(out)
    cmp = root / "cmp"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(cmp), "--draws", "2000", "--quiet"]) == 0
    return runs, cmp


def test_compare_recognises_backbones_and_reads_every_number_off_the_runs(two_backbones):
    (small_dir, large_dir), cmp = two_backbones
    assert (cmp / "backbones.nc").is_file() and not (cmp / "configurations.nc").exists()
    side = load_results(cmp / "backbones.nc")
    small, large = load_results(small_dir), load_results(large_dir)
    assert side["n_layers"].values.tolist() == [3, 5]
    assert side["n_params"].values.tolist() == [int(small["params_to_layer"].max()), int(large["params_to_layer"].max())]
    assert side["n_params"].values[0] < side["n_params"].values[1]
    np.testing.assert_array_equal(side["accuracy_pretrained"].values[1], large["accuracy_pretrained"].values)
    assert np.isnan(side["accuracy_pretrained"].values[0, 3:]).all()  # the shorter backbone is padded
    assert side["layer_name"].values[0].tolist() == [*small[S.LAYER].values.tolist(), "", ""]
    # one pair, the smaller first; the difference is the larger's best layer minus the smaller's sweet spot
    # both are "timm:vit_tiny_patch16_224" with other weights: named by their run folders
    assert side["configuration"].values.tolist() == ["vit2", "vit4"]
    assert side["smaller"].values.tolist() == ["vit2"] and side["larger"].values.tolist() == ["vit4"]
    best = str(side["best_of_larger"].values[0])
    acc_large = large["accuracy_pretrained"].to_series()
    assert best == str(acc_large.idxmax())
    sweet = str(small["sweet_spot"].values)
    if sweet:
        expected = float(acc_large[best]) - float(small["accuracy_pretrained"].sel({S.LAYER: sweet}))
        np.testing.assert_allclose(float(side["difference"].values[0]), expected, atol=1e-12)
        assert str(side["sweet_of_smaller"].values[0]) == sweet
    else:  # an undetermined sweet spot gives no test, and says why
        assert np.isnan(float(side["p_any"].values[0])) and "undetermined" in str(side["reason"].values[0])
    assert side.attrs["statistics_target"] == small.attrs["statistics_target"]


def test_the_backbones_report_shows_the_tradeoff_and_rebuilds_from_the_file(two_backbones, tmp_path):
    _, cmp = two_backbones
    html = (cmp / "report.html").read_text()
    md = (cmp / "report.md").read_text()
    assert "layergain backbones" in html and "backbone_tradeoff.png" in md and "backbone_gain_by_depth.png" in md
    assert "Robustness" in md and "sweet spot" in md
    for stem in ("backbone_tradeoff", "backbone_gain_by_depth"):
        assert (cmp / "figures" / f"{stem}.png").stat().st_size > 5000
    assert (cmp / "tables" / "backbones.tex").is_file()
    kind, _ = rebuild_report(cmp / "backbones.nc", tmp_path / "again")
    assert kind == "backbones"
    assert (tmp_path / "again" / "report.md").read_text() == md


def test_runs_of_other_images_are_not_backbones_side_by_side(two_backbones, tmp_path, capsys):
    (small_dir, _), _ = two_backbones
    other = tmp_path / "other"
    assert main(["run", "--max-per-class", "3", "--seeds", "2", "--folds", "2", "--image-size", "32",
                 "--draws", "1000", "--similarity-resamples", "2", "--layers", "blocks.2.0,blocks.5.0",
                 "--out", str(other), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["compare", str(small_dir), str(other), "--out", str(tmp_path / "cmp"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("layergain: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cmp").exists()
