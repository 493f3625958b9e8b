"""Backbones by name, weights sources, random twins and baselines, probe-layer lists and their readouts.

:mod:`layergain.models.readouts` needs no torch, and importing this package does not import it:
the other names load their torch modules on first use (PEP 562).
"""

from importlib import import_module
from typing import Any

from layergain.models.readouts import LAYOUTS, READOUTS, Readout, parse_readout, parse_readouts

__all__ = [
    "BASELINES",
    "DEFAULT_MODEL",
    "LAYOUTS",
    "READOUTS",
    "Backbone",
    "ProbeLayer",
    "Readout",
    "baseline_backbone",
    "load_backbone",
    "parse_readout",
    "parse_readouts",
    "probe_layers",
    "resolve_model",
]

#: Names served from a torch module, by the submodule that defines them.
_LAZY = {
    "DEFAULT_MODEL": "backbones", "Backbone": "backbones", "load_backbone": "backbones",
    "resolve_model": "backbones", "ProbeLayer": "layers", "probe_layers": "layers",
    "BASELINES": "baselines", "baseline_backbone": "baselines",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"layergain.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'layergain.models' has no attribute {name!r}")
