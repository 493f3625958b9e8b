"""Settings written once (layergain.config): defaults, choices, minimums, the CLI built from them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from layergain import config as C
from layergain.cli import build_parser
from layergain.errors import InputTypeError, InputValueError


def test_choices_agree_with_the_stages_that_define_them():
    from layergain.features.extract import ENGINES
    from layergain.models import DEFAULT_MODEL
    from layergain.models.readouts import READOUTS

    from layergain.models.baselines import BASELINES

    assert C.READOUTS == READOUTS and set(C.ENGINES) == set(ENGINES) and C.DEFAULT_MODEL == DEFAULT_MODEL
    assert C.BASELINES == BASELINES and set(C.BASELINE_METHODS) == set(BASELINES)


def test_streams_are_the_spawned_seed_sequences_in_fixed_order():
    for seed in (0, 7):
        got = C.streams(seed)
        # appended names leave the earlier streams as they were (spawn keys 0, 1, ...)
        assert list(got) == ["folds", "statistics", "transferability", "similarity_inference", "leakage"]
        expected = np.random.SeedSequence(seed).spawn(2)
        for ss, ref in zip(got.values(), expected):
            assert np.array_equal(ss.generate_state(4), ref.generate_state(4))


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"seeds": 0}, InputValueError, r"`seeds` must be >= 1, got 0"),
        ({"folds": 1}, InputValueError, r"`folds` must be >= 2, got 1"),
        ({"image_size": 16}, InputValueError, r"`image_size` must be >= 32, got 16"),
        ({"draws": 999}, InputValueError, r"`draws` must be >= 1000, got 999"),
        ({"margin": 1.5}, InputValueError, r"`margin` must lie in \(0, 1\) \(an accuracy difference\), got 1.5"),
        ({"confidence": 1.0}, InputValueError, r"`confidence` must lie in \(0, 1\), got 1.0"),
        ({"target": "both"}, InputValueError, r"`target` must be one of 'draw', 'fixed', got 'both'"),
        ({"readout": ["sum"]}, InputValueError, r"`readout` must be one of 'avg', 'max', 'avgmax', 'gem'"),
        ({"readout": "avg"}, InputTypeError, r"`readout` must be a list of names, got str 'avg'"),
        ({"readout": []}, InputValueError, r"`readout` must be a non-empty list"),
        ({"readout": ["avg", "max", "avg"]}, InputValueError, r"`readout` names 'avg' more than once"),
        ({"baseline": ["shuffled"]}, InputValueError, r"`baseline` must be one of 'default', 'bn-recalibrated'"),
        ({"engine": "jit"}, InputValueError, r"`engine` must be one of 'folded', 'traced', 'eager'"),
        ({"probe_c": 0.0}, InputValueError, r"`probe_c` must be > 0, got 0.0"),
        ({"max_per_class": 1}, InputValueError, r"`max_per_class` must be >= 2, got 1"),
        ({"seed": -1}, InputValueError, r"`seed` must be >= 0, got -1"),
        ({"seeds": 2.5}, InputTypeError, r"`seeds` must be an integer, got float 2.5"),
        ({"margin": "x"}, InputTypeError, r"`margin` must be a number, got str 'x'"),
    ],
)
def test_run_config_validates_every_setting(changes, error, message):
    C.RunConfig().validate()
    with pytest.raises(error, match=message):
        C.RunConfig(**changes).validate()


def test_compare_and_stats_configs_share_the_run_limits():
    with pytest.raises(InputValueError, match=r"needs at least 2 runs, got 1"):
        C.CompareConfig(runs=["a"]).validate()
    with pytest.raises(InputValueError, match=r"`draws` must be >= 1000"):
        C.CompareConfig(runs=["a", "b"], draws=10).validate()
    with pytest.raises(InputValueError, match=r"`deep_from` must lie in \[0, 1\], got 1.5"):
        C.CompareConfig(runs=["a", "b"], deep_from=1.5).validate()
    assert C.CompareConfig.draws == C.RunConfig.draws and C.CompareConfig.seed == C.RunConfig.seed
    attrs = {"n_draws": 5000, "margin": 0.05, "confidence": 0.9, "statistics_target": "fixed"}
    assert C.StatsConfig().resolve(attrs) == {"draws": 5000, "margin": 0.05, "confidence": 0.9, "target": "fixed"}
    assert C.StatsConfig(draws=3000).resolve({})["draws"] == 3000
    assert C.StatsConfig().resolve({}) == {"draws": 20000, "margin": 0.02, "confidence": 0.95, "target": "draw"}
    with pytest.raises(InputValueError, match=r"`target` must be one of"):
        C.StatsConfig(target="x").resolve(attrs)


def _options(parser, command):
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[command]
    return {a.dest: a for a in sub._actions if a.option_strings}


@pytest.mark.parametrize("command, cls", [("run", C.RunConfig), ("extract", C.RunConfig), ("compare", C.CompareConfig)])
def test_cli_defaults_and_choices_are_the_configs(command, cls):
    options = _options(build_parser(), command)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = 0
    for dest, action in options.items():
        if dest in fields and "setting" in fields[dest].metadata:
            assert action.default == fields[dest].default, dest
            spec = fields[dest].metadata["setting"]
            # a list's items are checked by validate(): argparse would compare the whole list
            assert action.choices == (None if spec.kind == "list" else spec.choices), dest
            checked += 1
    assert checked >= 5


def test_cli_minimums_are_the_configs(capsys):
    parser = build_parser()
    for flag, minimum in (("--folds", 2), ("--image-size", 32), ("--draws", 1000), ("--seeds", 1)):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", flag, str(minimum - 1)])
        assert f"expected a number >= {minimum}" in capsys.readouterr().err
        assert getattr(parser.parse_args(["run", flag, str(minimum)]), flag[2:].replace("-", "_")) == minimum
    assert parser.parse_args(["run", "--layers", "a,b"]).layers == ["a", "b"]
