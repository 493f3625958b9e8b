"""Forward hooks, readouts, batched extraction, the on-disk feature cache and features from elsewhere.

The cache, the store and :mod:`layergain.features.external` need no torch, and importing this
package does not import it: the extraction names (``extract_features``, ``torch_threads`` …) load
their torch modules on first use (PEP 562), so a run from precomputed features never imports torch.
"""

from importlib import import_module
from typing import Any

from layergain.features.cache import FeatureCache, config_key, default_cache_dir
from layergain.features.store import FeatureStore

__all__ = [
    "POOLINGS",
    "Extraction",
    "FeatureCache",
    "FeatureStore",
    "LayerReader",
    "config_key",
    "default_cache_dir",
    "extract_features",
    "feature_config",
    "pool",
    "read",
    "resolve_readouts",
    "torch_threads",
]

#: Names served from a torch module, by the submodule that defines them.
_LAZY = {
    "Extraction": "extract", "extract_features": "extract", "feature_config": "extract",
    "resolve_readouts": "extract", "torch_threads": "extract", "POOLINGS": "pooling", "pool": "pooling",
    "LayerReader": "readouts", "read": "readouts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"layergain.features.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'layergain.features' has no attribute {name!r}")
