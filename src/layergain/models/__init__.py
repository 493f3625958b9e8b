"""Backbones by name, weights sources, random twins, probe-layer lists and their readouts."""

from layergain.models.backbones import DEFAULT_MODEL, Backbone, load_backbone, resolve_model
from layergain.models.layers import ProbeLayer, probe_layers
from layergain.models.readouts import LAYOUTS, READOUTS, Readout, parse_readout, parse_readouts

__all__ = [
    "DEFAULT_MODEL",
    "LAYOUTS",
    "READOUTS",
    "Backbone",
    "ProbeLayer",
    "Readout",
    "load_backbone",
    "parse_readout",
    "parse_readouts",
    "probe_layers",
    "resolve_model",
]
