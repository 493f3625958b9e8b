"""Forward hooks, readouts, batched extraction and the on-disk feature cache."""

from layergain.features.cache import FeatureCache, config_key, default_cache_dir
from layergain.features.extract import (
    Extraction,
    extract_features,
    feature_config,
    resolve_readouts,
    torch_threads,
)
from layergain.features.pooling import POOLINGS, pool
from layergain.features.readouts import LayerReader, read
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
