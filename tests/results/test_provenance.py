"""Provenance of a run: package versions and the extraction engine as attrs."""

from __future__ import annotations

import json

from layergain import __version__
from layergain.results.provenance import PACKAGES, _engine_attr, package_versions


def test_package_versions_name_every_package() -> None:
    versions = package_versions()
    assert list(versions) == ["python", "layergain", *PACKAGES]
    assert versions["layergain"] == __version__
    assert all(isinstance(v, str) for v in versions.values())
    assert versions["numpy"] and versions["xarray"]


def test_engine_attr_is_one_name_or_per_network() -> None:
    assert _engine_attr({"pretrained": "folded", "random-0": "folded"}) == "folded"
    mixed = {"pretrained": "folded", "random-0": "eager"}
    assert json.loads(_engine_attr(mixed)) == mixed
