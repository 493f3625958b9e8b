"""Near-duplicate images: the same tissue up to flips, 90° rotations, small crops, rescaling,
JPEG re-encoding and colour jitter; and groups that keep each duplicate cluster in one fold."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from layergain.data import ImageSet
from layergain.errors import InputTypeError, InputValueError
from layergain.leakage.descriptors import WINDOWS, Descriptors, describe_images, dihedral_stack
from layergain.validation import check_int

__all__ = [
    "DEFAULT_COARSE_THRESHOLD",
    "DEFAULT_FLAT_RMS",
    "DEFAULT_NEIGHBOURS",
    "DEFAULT_THRESHOLD",
    "DuplicateReport",
    "clusters_across_folds",
    "find_duplicates",
    "group_duplicates",
    "match_descriptors",
]

#: Fine similarity (max over windows and the 8 flips/rotations) at which two images are joined.
#: Calibrated in bench/leakage.py --calibrate (see bench/README.md, "Leakage guard").
DEFAULT_THRESHOLD = 0.625
#: Coarse similarity a candidate pair must reach before the fine comparison.
DEFAULT_COARSE_THRESHOLD = 0.5
#: Candidates per image from the coarse search (its nearest neighbours).
DEFAULT_NEIGHBOURS = 5
#: Images whose low-passed grey levels vary by less than this RMS (0-255 scale) are "flat"
#: (background, fat): their descriptor is mostly noise, so they are neither joined nor checked.
DEFAULT_FLAT_RMS = 4.0

METHOD = (
    "dihedral-invariant DCT descriptors of grey-level windows (whole image; 90 % and 95 % sub-windows): "
    "candidates from the whole-image 6x6 low-frequency block (nearest neighbours), joined when the "
    "frequency-weighted 16x16 block of one image's whole view matches any window of the other under any of the 8 "
    "flips/90-degree rotations; clusters are connected components of joined pairs"
)


@dataclass(frozen=True)
class DuplicateReport:
    """What :func:`find_duplicates` found.

    Attributes
    ----------
    cluster : ndarray of int of shape (n_images,)
        Index into ``clusters`` of each image's duplicate cluster; ``-1`` for an image with no
        near-duplicate (a singleton, flat images included).
    clusters : tuple of tuple of str
        Relative paths of each cluster of two or more images, in order of first member.
    pairs : ndarray of int of shape (n_pairs, 2)
        Image indices of the joined pairs (``i < j``); clusters are their connected components.
    similarity : ndarray of float of shape (n_pairs,)
        Fine similarity of each joined pair (1 = identical low-passed image).
    flat : ndarray of bool of shape (n_images,)
        Images too flat to compare (texture RMS below ``thresholds["flat_rms"]``).
    cross_group : tuple of int or None
        Clusters whose images lie in more than one manifest group (a data problem: the grouping
        does not keep the same tissue together); ``None`` when the set has no groups.
    cross_class : tuple of int
        Clusters whose images carry more than one label.
    method : str
        How the images were compared.
    thresholds : dict
        ``threshold``, ``coarse_threshold``, ``neighbours``, ``flat_rms``.
    """

    cluster: np.ndarray
    clusters: tuple[tuple[str, ...], ...]
    pairs: np.ndarray
    similarity: np.ndarray
    flat: np.ndarray
    cross_group: tuple[int, ...] | None
    cross_class: tuple[int, ...]
    method: str = METHOD
    thresholds: dict = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        """Images in the set."""
        return int(self.cluster.size)

    @property
    def n_duplicated(self) -> int:
        """Images that belong to a cluster."""
        return int((self.cluster >= 0).sum())

    def attrs(self, prefix: str = "duplicates_") -> dict:
        """netCDF-safe attributes (numbers, strings, JSON strings) describing the search."""
        sizes = [len(c) for c in self.clusters]
        return {
            f"{prefix}method": self.method,
            f"{prefix}threshold": float(self.thresholds.get("threshold", np.nan)),
            f"{prefix}coarse_threshold": float(self.thresholds.get("coarse_threshold", np.nan)),
            f"{prefix}neighbours": int(self.thresholds.get("neighbours", -1)),
            f"{prefix}flat_rms": float(self.thresholds.get("flat_rms", np.nan)),
            f"{prefix}n_clusters": len(self.clusters),
            f"{prefix}n_images": self.n_duplicated,
            f"{prefix}n_flat": int(self.flat.sum()),
            f"{prefix}cluster_sizes": json.dumps(sizes),
            f"{prefix}cross_group": json.dumps(None if self.cross_group is None else list(self.cross_group)),
            f"{prefix}cross_class": json.dumps(list(self.cross_class)),
        }

    def summary(self) -> str:
        """One paragraph for a report's Data section."""
        n, flat = self.n_images, int(self.flat.sum())
        if not self.clusters:
            text = f"No near-duplicates among the {n} images"
        else:
            largest = max(len(c) for c in self.clusters)
            text = (
                f"{self.n_duplicated} of {n} images fall in {len(self.clusters)} near-duplicate "
                f"cluster(s) (largest {largest} images)"
            )
        text += (
            f" (flips, 90-degree rotations, crops to 90 % of the side, rescaling, JPEG and colour jitter; "
            f"similarity >= {self.thresholds.get('threshold')})"
        )
        text += f"; {flat} flat image(s) (background, fat) could not be compared." if flat else "."
        if self.cross_class:
            text += f" {len(self.cross_class)} cluster(s) carry more than one label."
        if self.cross_group:
            text += (
                f" {len(self.cross_group)} cluster(s) span more than one manifest group: the grouping "
                "does not keep the same tissue together (a data problem)."
            )
        return text


def _coarse_candidates(coarse: np.ndarray, usable: np.ndarray, neighbours: int, threshold: float, block: int):
    """Pairs (i < j) where j is among i's ``neighbours`` nearest (or vice versa) above ``threshold``."""
    idx = np.flatnonzero(usable)
    x = coarse[idx].reshape(idx.size, -1)
    stack = dihedral_stack(coarse[idx])  # (8, m, d)
    k = min(neighbours, idx.size - 1)
    rows, cols = [], []
    if k < 1:
        return np.zeros((0, 2), dtype=np.int64)
    for start in range(0, idx.size, block):
        part = x[start : start + block]
        sim = part @ stack[0].T
        for g in range(1, 8):
            np.maximum(sim, part @ stack[g].T, out=sim)
        sim[np.arange(part.shape[0]), np.arange(start, start + part.shape[0])] = -np.inf
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        keep = np.take_along_axis(sim, top, axis=1) >= threshold
        r = np.repeat(np.arange(start, start + part.shape[0]), k)[keep.ravel()]
        rows.append(r)
        cols.append(top.ravel()[keep.ravel()])
    a, b = np.concatenate(rows), np.concatenate(cols)
    pairs = np.unique(np.sort(np.stack([idx[a], idx[b]], axis=1), axis=1), axis=0)
    return pairs


def _fine_similarity(fine: np.ndarray, pairs: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Max over the 8 transforms of one image's whole view and the windows of the other, both ways round."""
    n, w, k, _ = fine.shape
    whole = dihedral_stack(fine[:, 0]).transpose(1, 0, 2)  # (n, 8, k*k)
    windows = fine.reshape(n, w, k * k)
    out = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), chunk):
        a, b = pairs[start : start + chunk, 0], pairs[start : start + chunk, 1]
        ab = np.matmul(whole[a], windows[b].transpose(0, 2, 1)).max(axis=(1, 2))
        ba = np.matmul(whole[b], windows[a].transpose(0, 2, 1)).max(axis=(1, 2))
        out[start : start + chunk] = np.maximum(ab, ba)
    return out


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected component of each of ``n`` nodes under the edges ``pairs`` (union-find)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def match_descriptors(
    descriptors: Descriptors,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    coarse_threshold: float = DEFAULT_COARSE_THRESHOLD,
    neighbours: int = DEFAULT_NEIGHBOURS,
    flat_rms: float = DEFAULT_FLAT_RMS,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joined pairs of images from their descriptors.

    Returns
    -------
    pairs : ndarray of int of shape (n_pairs, 2)
    similarity : ndarray of float of shape (n_pairs,)
    flat : ndarray of bool of shape (n_images,)
    """
    flat = descriptors.texture < flat_rms
    candidates = _coarse_candidates(descriptors.coarse, ~flat, neighbours, coarse_threshold, block)
    sim = _fine_similarity(descriptors.fine, candidates) if len(candidates) else np.zeros(0)
    keep = sim >= threshold
    return candidates[keep], sim[keep], flat


def _clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    comp = _components(n, pairs)
    sizes = np.bincount(comp, minlength=n)
    cluster = np.full(n, -1, dtype=np.int64)
    multi = sizes[comp] >= 2
    # number clusters in order of their first member
    _, first = np.unique(comp[multi], return_index=True)
    order = np.unique(comp[multi])[np.argsort(first)]
    remap = {c: k for k, c in enumerate(order)}
    cluster[multi] = [remap[c] for c in comp[multi]]
    return cluster


def _spanning(cluster: np.ndarray, values: np.ndarray) -> tuple[int, ...]:
    """Clusters whose members take more than one of ``values``."""
    member = cluster >= 0
    if not member.any():
        return ()
    _, codes = np.unique(values[member], return_inverse=True)
    pairs = np.unique(np.stack([cluster[member], codes], axis=1), axis=0)
    ids, counts = np.unique(pairs[:, 0], return_counts=True)
    return tuple(int(c) for c in ids[counts > 1])


def find_duplicates(
    image_set: ImageSet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    coarse_threshold: float = DEFAULT_COARSE_THRESHOLD,
    neighbours: int = DEFAULT_NEIGHBOURS,
    flat_rms: float = DEFAULT_FLAT_RMS,
    descriptors: Descriptors | None = None,
) -> DuplicateReport:
    """Clusters of near-duplicate images in an image set.

    Two images are joined when one, under some flip or 90° rotation, matches the whole or a
    90 %/95 % window of the other (:mod:`layergain.leakage.descriptors`) with similarity
    ``>= threshold``; clusters are connected components of joined pairs (union-find). The
    search costs a few milliseconds of decoding per image and a blocked matrix product over
    all images (no pairwise Python loop): about 5 s for 5000 images (bench/leakage.py).

    Parameters
    ----------
    image_set : ImageSet
    threshold : float, default=0.625
        Fine similarity to join two images. Calibrated on planted copies of real images
        (bench/leakage.py --calibrate, 300 copies among 1000 images of each shared set): at
        0.625, 96.9-100 % of the copies of non-flat images (flip/rotation, crop to 90-100 % of
        the side, rescaling by 0.7-1.3, colour jitter, JPEG 70-90, all at once) are found and
        0-0.2 % of distinct images of one class are joined with another, on Kather 2016,
        LC25000 lung and colon and IDC (bench/README.md, "Leakage guard").
    coarse_threshold : float, default=0.5
        Similarity of the whole-image coarse descriptors a candidate pair needs.
    neighbours : int, default=5
        Candidates per image from the coarse search.
    flat_rms : float, default=4.0
        Images whose low-passed grey levels vary less (RMS, 0-255 scale) are flat and not joined.
    descriptors : Descriptors, default=None
        Precomputed :func:`~layergain.leakage.descriptors.describe_images` of the set's paths.

    Returns
    -------
    DuplicateReport
    """
    if not isinstance(image_set, ImageSet):
        raise InputTypeError(
            f"`image_set` must be a layergain ImageSet, got {type(image_set).__name__}; "
            "load one with layergain.data.load_image_set(path)."
        )
    for name, value in (("threshold", threshold), ("coarse_threshold", coarse_threshold)):
        if not -1.0 <= float(value) <= 1.0:
            raise InputValueError(f"`{name}` is a cosine similarity and must lie in [-1, 1], got {value}.")
    check_int(neighbours, "neighbours", minimum=1)
    if descriptors is None:
        descriptors = describe_images(image_set.paths)
    if descriptors.coarse.shape[0] != len(image_set) or descriptors.fine.shape[1] != len(WINDOWS):
        raise InputValueError(
            f"`descriptors` describe {descriptors.coarse.shape[0]} images, the image set has "
            f"{len(image_set)}; compute them with describe_images(image_set.paths)."
        )
    pairs, sim, flat = match_descriptors(
        descriptors, threshold=threshold, coarse_threshold=coarse_threshold, neighbours=neighbours, flat_rms=flat_rms
    )
    n = len(image_set)
    cluster = _clusters(n, pairs)
    members = [np.flatnonzero(cluster == k) for k in range(int(cluster.max()) + 1)] if n else []
    return DuplicateReport(
        cluster=cluster,
        clusters=tuple(tuple(image_set.relpaths[i] for i in m) for m in members),
        pairs=pairs,
        similarity=sim,
        flat=flat,
        cross_group=None if image_set.groups is None else _spanning(cluster, image_set.groups),
        cross_class=_spanning(cluster, image_set.labels),
        thresholds={
            "threshold": float(threshold),
            "coarse_threshold": float(coarse_threshold),
            "neighbours": int(neighbours),
            "flat_rms": float(flat_rms),
        },
    )


def _cluster_ids(clusters, n: int | None) -> np.ndarray:
    if isinstance(clusters, DuplicateReport):
        clusters = clusters.cluster
    cluster = np.asarray(clusters)
    if cluster.ndim != 1 or not np.issubdtype(cluster.dtype, np.integer):
        raise InputValueError(
            "`clusters` must be a DuplicateReport or an integer array of shape (n_images,) with one "
            f"cluster id per image (-1 for none), got {cluster.dtype} of shape {cluster.shape}."
        )
    if n is not None and cluster.size != n:
        raise InputValueError(f"`clusters` has {cluster.size} entries but `groups` has {n}; give one per image.")
    return cluster


def group_duplicates(groups, clusters) -> np.ndarray | None:
    """Groups under which no duplicate cluster spans two folds.

    Every cluster is merged with the groups of its images (union-find over groups and
    clusters): a group joined to another through a cluster becomes one group. Pass the result
    as ``groups`` to :func:`layergain.probes.make_folds`.

    Parameters
    ----------
    groups : array-like of str of shape (n_images,) or None
        Manifest groups, or ``None`` for a set without them.
    clusters : DuplicateReport or array-like of int of shape (n_images,)
        Cluster id of each image, ``-1`` for none.

    Returns
    -------
    ndarray of str of shape (n_images,) or None
        A merged group keeps the smallest of its groups' names. Without manifest groups, a
        cluster's images get ``"duplicates-<first image index>"`` and other images
        ``"image-<index>"``. Unchanged ``groups`` (``None`` stays ``None``) when there are no
        clusters, so folds stay what they were.
    """
    n = None if groups is None else len(groups)
    cluster = _cluster_ids(clusters, n)
    if not (cluster >= 0).any():
        return None if groups is None else np.asarray(groups)
    size = cluster.size
    edges = [_chain(cluster)]
    if groups is not None:
        _, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        edges.append(_chain(codes))
    comp = _components(size, np.concatenate(edges))
    if groups is None:
        first = np.full(comp.max() + 1, size, dtype=np.int64)
        np.minimum.at(first, comp, np.arange(size))
        counts = np.bincount(comp)
        return np.array(
            [f"duplicates-{first[c]}" if counts[c] > 1 else f"image-{i}" for i, c in enumerate(comp)], dtype=str
        )
    names = np.asarray(groups, dtype=str)
    order = np.argsort(names, kind="stable")
    smallest = {}
    for i in order:  # sorted names: the first seen per component is its smallest
        smallest.setdefault(comp[i], names[i])
    return np.array([smallest[c] for c in comp], dtype=str)


def _chain(codes: np.ndarray) -> np.ndarray:
    """Edges linking consecutive members of each code (``-1`` = no code) into one component."""
    idx = np.flatnonzero(codes >= 0)
    order = idx[np.argsort(codes[idx], kind="stable")]
    same = codes[order[1:]] == codes[order[:-1]]
    return np.stack([order[:-1][same], order[1:][same]], axis=1) if order.size > 1 else np.zeros((0, 2), np.int64)


def clusters_across_folds(clusters, folds) -> np.ndarray:
    """Clusters whose images lie in more than one fold of some repeat.

    Parameters
    ----------
    clusters : DuplicateReport or array-like of int of shape (n_images,)
    folds : array-like of int of shape (n_repeats, n_images) or (n_images,)

    Returns
    -------
    ndarray of int
        Sorted cluster ids.
    """
    folds = np.atleast_2d(np.asarray(folds))
    cluster = _cluster_ids(clusters, folds.shape[1])
    member = cluster >= 0
    bad = set()
    for row in folds:
        pairs = np.unique(np.stack([cluster[member], row[member]], axis=1), axis=0)
        ids, counts = np.unique(pairs[:, 0], return_counts=True)
        bad.update(int(c) for c in ids[counts > 1])
    return np.array(sorted(bad), dtype=np.int64)
