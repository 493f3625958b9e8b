"""Forward hooks, pooling, batched extraction and the on-disk feature cache."""

from layergain.features.cache import FeatureCache, config_key, default_cache_dir
from layergain.features.extract import Extraction, extract_features, feature_config, torch_threads
from layergain.features.pooling import POOLINGS, pool
from layergain.features.store import FeatureStore

__all__ = [
    "POOLINGS",
    "Extraction",
    "FeatureCache",
    "FeatureStore",
    "config_key",
    "default_cache_dir",
    "extract_features",
    "feature_config",
    "pool",
    "torch_threads",
]
