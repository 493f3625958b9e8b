"""Readout names, parameters and widths (the computation is tested in tests/features/test_readouts.py)."""

from __future__ import annotations

import pytest

from layergain.errors import InputTypeError, InputValueError
from layergain.models.readouts import READOUTS, Readout, parse_readout, parse_readouts


def test_canonical_names_and_default_parameters():
    assert parse_readout("grid") == Readout("grid", 2) == parse_readout("grid:2")
    assert parse_readout("grid:2").name == "grid" and parse_readout("grid:3").name == "grid:3"
    assert parse_readout("cov").param == 64 and parse_readout("cov:16").name == "cov:16"
    assert parse_readout("gem").param == 3 and parse_readout("gem:4").name == "gem:4"
    assert [parse_readout(r).name for r in ("avg", "max", "avgmax", "cls", "mean", "cls+mean")] == [
        "avg", "max", "avgmax", "cls", "mean", "cls+mean"
    ]
    # one per canonical name, in the order given
    assert [r.name for r in parse_readouts(["grid:2", "avg", "grid", "cov:64", "cov"])] == ["grid", "avg", "cov"]
    assert [r.name for r in parse_readouts("max")] == ["max"]


@pytest.mark.parametrize(
    ("spec", "channels", "width"),
    [
        ("avg", 40, 40), ("max", 40, 40), ("gem", 40, 40), ("avgmax", 40, 80),
        ("grid", 40, 160), ("grid:3", 40, 360),
        ("cov", 40, 40 * 41 // 2), ("cov", 1280, 64 * 65 // 2), ("cov:8", 5, 15), ("cov:8", 9, 36),
    ],
)
def test_map_widths(spec, channels, width):
    r = parse_readout(spec)
    assert r.width("nchw", channels) == r.width("nhwc", channels) == width


def test_token_widths_and_layouts():
    assert parse_readout("cls").width("tokens", 192) == parse_readout("mean").width("tokens", 192) == 192
    assert parse_readout("cls+mean").width("tokens", 192) == 384
    assert parse_readout("cls").layouts == ("tokens",)
    assert "tokens" not in parse_readout("avg").layouts and "vector" in parse_readout("avg").layouts
    assert "vector" not in parse_readout("cov").layouts
    assert set(READOUTS) == {"avg", "max", "avgmax", "gem", "grid", "cov", "cls", "mean", "cls+mean"}


def test_settings_name_what_determines_the_numbers():
    assert parse_readout("avg").settings() == {}
    assert parse_readout("grid:3").settings()["cells"] == 3
    cov = parse_readout("cov").settings()
    assert cov["dims"] == 64 and "seed" in cov and cov["ddof"] == 1
    assert parse_readout("gem").settings() == {"p": 3, "eps": 1e-6}


def test_readout_errors():
    with pytest.raises(InputValueError, match=r"`readout` must be one of 'avg', .*got 'median'"):
        parse_readout("median")
    with pytest.raises(InputValueError, match=r"`pooling` must be one of"):
        parse_readout("median", "pooling")
    with pytest.raises(InputValueError, match=r"readout 'cls' takes no parameter, got 'cls:2'"):
        parse_readout("cls:2")
    with pytest.raises(InputValueError, match=r"the cells after ':' must be an integer >= 1, got 'x'"):
        parse_readout("grid:x")
    with pytest.raises(InputValueError, match=r"the dims after ':' must be an integer >= 2, got '1'"):
        parse_readout("cov:1")
    with pytest.raises(InputValueError, match=r"`readouts` is empty"):
        parse_readouts([])
    with pytest.raises(InputTypeError, match=r"`readout` must be a string"):
        parse_readout(3)
