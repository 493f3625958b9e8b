"""Backbones by name, weights sources, random twins and probe-layer lists."""

from layergain.models.backbones import DEFAULT_MODEL, Backbone, load_backbone, resolve_model
from layergain.models.layers import ProbeLayer, probe_layers

__all__ = ["DEFAULT_MODEL", "Backbone", "ProbeLayer", "load_backbone", "probe_layers", "resolve_model"]
