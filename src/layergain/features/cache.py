"""On-disk feature cache: per (network configuration, image content), written atomically.

Layout::

    <root>/features/<config key>/config.json        what the key stands for (for humans)
    <root>/features/<config key>/<chunk id>.npz     sha256 (n,) + one array (n, width) per layer

A configuration is everything that determines a network's features (backbone identity, weights
checksum or seed and library versions, image size, pooling, probe layers). Images are keyed by the
SHA-256 of their bytes, so a subset, a superset or a reordering of an image set reuses what is
cached, and an interrupted extraction resumes from its last finished chunk. Every file is written
to a temporary name and renamed, so a reader never sees half a chunk and two runs sharing a cache
at most compute a chunk twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from layergain._files import atomic_target
from layergain.errors import OutputError

__all__ = ["FeatureCache", "config_key", "default_cache_dir"]

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/layergain``, else ``~/.cache/layergain``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layergain"


def config_key(config: dict) -> str:
    """Stable hash of a JSON-serialisable configuration."""
    text = json.dumps({"format": CACHE_FORMAT, **config}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FeatureCache:
    """Feature cache under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def _dir(self, key: str) -> Path:
        return self.root / "features" / key

    def lookup(self, key: str, sha256: list[str] | tuple[str, ...], layers: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Cached features of the images with these checksums.

        Returns
        -------
        features : dict of str to ndarray of shape (n_images, width)
            Rows of images not in the cache are NaN (or absent if nothing is cached yet).
        missing : ndarray of int
            Indices of the images not in the cache.
        """
        where = {digest: i for i, digest in enumerate(sha256)}
        positions = {}  # image index -> None, rows filled below
        out: dict[str, np.ndarray] = {}
        for chunk in self._chunks(key):
            try:
                with np.load(chunk) as data:
                    digests = data["sha256"]
                    hit = [(row, where[d]) for row, d in enumerate(digests.tolist()) if d in where]
                    if not hit:
                        continue
                    rows = np.array([r for r, _ in hit])
                    targets = np.array([t for _, t in hit])
                    for layer in layers:
                        block = data[layer]
                        if layer not in out:
                            out[layer] = np.full((len(sha256), block.shape[1]), np.nan, dtype=np.float32)
                        out[layer][targets] = block[rows]
                    positions.update(dict.fromkeys(targets.tolist()))
            except Exception:  # noqa: BLE001 - zip, npy and OS errors alike: recompute, never trust
                continue
        missing = np.array([i for i in range(len(sha256)) if i not in positions], dtype=np.intp)
        return out, missing

    def missing(self, key: str, sha256: list[str] | tuple[str, ...]) -> np.ndarray:
        """Indices of the images with these checksums that are not cached (reads no features)."""
        have: set[str] = set()
        for chunk in self._chunks(key):
            try:
                with np.load(chunk) as data:
                    have.update(data["sha256"].tolist())
            except Exception:  # noqa: BLE001 - an unreadable chunk counts as absent
                continue
        return np.array([i for i, d in enumerate(sha256) if d not in have], dtype=np.intp)

    def _chunks(self, key: str) -> list[Path]:
        folder = self._dir(key)
        return sorted(p for p in folder.glob("*.npz") if not p.name.startswith(".")) if folder.is_dir() else []

    def store(self, key: str, config: dict, sha256: list[str], features: dict[str, np.ndarray]) -> Path:
        """Write one chunk atomically; returns its path."""
        folder = self._dir(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            meta = folder / "config.json"
            if not meta.exists():
                _atomic_write(meta, json.dumps(config, indent=1, sort_keys=True).encode())
            chunk_id = hashlib.sha256("\n".join(sha256).encode()).hexdigest()[:24]
            path = folder / f"{chunk_id}.npz"
            arrays = {"sha256": np.array(sha256)} | {k: np.asarray(v, dtype=np.float32) for k, v in features.items()}
            with atomic_target(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
            return path
        except OSError as exc:
            raise OutputError(
                f"cannot write to the feature cache {self.root}: {exc.strerror or exc}. "
                "Pass a writable folder with `cache=DIR`."
            ) from exc


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
