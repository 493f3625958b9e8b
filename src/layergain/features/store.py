"""Read access to cached features, one layer or one block of images at a time.

A run keeps its features on disk (the feature cache) and each work unit reads only what it needs:
a probe reads one layer of one network, the similarity of a layer reads that layer of every
network, the cross-layer matrices read blocks of images. Memory then grows with one layer's
width (or one block of images), not with every layer of every network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layergain.errors import DataError
from layergain.features.cache import FeatureCache

__all__ = ["FeatureStore"]


@dataclass(frozen=True)
class FeatureStore:
    """Cached features of one image set for several networks.

    Attributes
    ----------
    root : str
        Cache folder.
    keys : dict of str to str
        Cache key of each network (init name -> key).
    sha256 : tuple of str
        Image checksums, in the order of the image set.
    layers : tuple of str
        Probe-layer names.

    A store holds only strings: it pickles cheaply to a worker process or a Dask worker.
    """

    root: str
    keys: dict
    sha256: tuple
    layers: tuple

    def _read(self, init: str, layers: list[str], sha256) -> dict[str, np.ndarray]:
        out, missing = FeatureCache(self.root).lookup(self.keys[init], sha256, layers)
        if missing.size:
            raise DataError(
                f"{missing.size} image(s) of {init} are missing from the feature cache {self.root}; it was changed "
                "during the run. Run again."
            )
        return out

    def layer(self, init: str, layer: str) -> np.ndarray:
        """Features of one layer of one network, shape (n_images, width)."""
        return self._read(init, [layer], self.sha256)[layer]

    def rows(self, init: str, index: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer of one network for the images at ``index``."""
        return self._read(init, list(self.layers), [self.sha256[i] for i in index])

    def blocks(self, size: int) -> list[np.ndarray]:
        """Image indices in consecutive blocks of at most ``size``."""
        n = len(self.sha256)
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]
