"""Backbones by name, weights sources, random twins and probe-layer lists."""

from layergain.models.backbones import DEFAULT_MODEL, Backbone, load_backbone, resolve_model
from layergain.models.layers import ProbeLayer, probe_layers

__all__ = ["Backbone", "load_backbone", "resolve_model", "DEFAULT_MODEL", "ProbeLayer", "probe_layers"]
