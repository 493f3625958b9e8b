r"""Features from elsewhere: read and write precomputed per-layer features of several networks.

A study needs, for the same images, the features of every probe layer of the ImageNet-pretrained
network and of at least two copies of the same architecture with random weights. Features
extracted elsewhere (on a GPU, with a foundation model, with a WSI toolkit) enter layergain in
one of the layouts below; :func:`export_features` writes them, :func:`read_features` reads and
validates them, :func:`match` puts them in a manifest's image order, and
:attr:`ExternalFeatures.store` hands them to the probes and similarity stages. Nothing here
imports torch.

Layout (version 1)
------------------
Names used below: *init* is ``pretrained`` or ``random-<seed>`` (``<seed>`` a non-negative
integer; at least two random inits), *layer* a probe-layer name (no ``/``, not starting with
``.``), *n* the number of images, *width* a layer's number of features (it may differ between
layers, never between networks for one layer). Features are stored as float32 (float64 or integer
input is converted); NaN or inf are refused. Every network's features are in the same image
order. On reading, inits are put in the order ``pretrained``, then random inits by seed.

*Metadata* (``meta``, optional, any JSON-serialisable dict) has these known keys: ``model``,
``readout``, ``baseline`` (strings) and ``relative_depth``, ``module`` (objects layer -> float,
layer -> str; only layers of the file).

**netCDF** (``PATH.nc``; netCDF4, as xarray writes it) and **zarr** (``PATH.zarr``, the same
dataset in a zarr store; needs the optional ``zarr`` package):

- coordinates ``init`` (dim ``init``, str) and ``image`` (dim ``image``, str image ids);
- one variable ``features__<layer>`` per layer, dims (``init``, ``image``, ``unit__<layer>``),
  float32;
- optional variable ``sha256`` (dim ``image``, str): the images' checksums;
- global attributes: ``layergain_features`` = ``"1"`` (layout version); ``layers`` = JSON list
  of layer names, shallow to deep (required with more than one layer: the order is the depth
  axis); ``model``, ``readout``, ``baseline`` (str, optional); ``relative_depth``, ``module``
  (JSON objects, optional); ``meta`` (JSON object of any other metadata, optional). Any other
  global attribute is read into ``meta`` as it is.

**npz** (``PATH.npz``, ``numpy.savez`` without pickles):

- ``image_ids`` (n,) str; ``inits`` (k,) str; ``layers`` (L,) str, shallow to deep;
- ``<init>/<layer>`` (n, width) float32 for every init and layer;
- optional ``sha256`` (n,) str; optional ``meta``: 0-d str, a JSON object (the whole ``meta``).

**HDF5 folder** (``PATH`` without a suffix), as WSI patch-feature toolkits (CLAM, Trident)
write one ``.h5`` per slide with a ``features`` (n, d) and a ``coords`` (n, 2) dataset:

- ``PATH/<init>/<layer>.h5``: one file per network and layer; or
  ``PATH/<init>/<layer>/<slide>.h5``: one file per slide (slides in name order, rows in file
  order);
- each file: dataset ``features`` (n, width); dataset ``image_ids`` (n,) str, or else
  ``coords`` (n, 2) from which the ids are made: ``<x>_<y>`` in a ``<layer>.h5``,
  ``<slide>:<x>_<y>`` in a per-slide file (``<slide>`` the file name without ``.h5``);
  optional ``sha256`` (n,) str;
- ``PATH/layergain.json`` (optional with one layer, required with more: a folder listing has no
  depth order): ``{"layergain_features": "1", "inits": [...], "layers": [...], "meta": {...}}``.
  Without it, the inits are the sub-folders.
- Files of different networks or layers may list the images in different orders (they are
  aligned by id) but must hold the same images.

Example
-------
>>> import numpy as np
>>> from layergain.features.external import export_features, read_features
>>> rng = np.random.default_rng(0)
>>> ids = ["a.png", "b.png", "c.png"]
>>> feats = {(i, l): rng.normal(size=(3, w)).astype("float32")
...          for i in ("pretrained", "random-0", "random-1") for l, w in (("stem", 4), ("head", 8))}
>>> export_features("feats.npz", image_ids=ids, inits=["pretrained", "random-0", "random-1"],
...                 layers=["stem", "head"], read_layer=lambda i, l: feats[i, l])  # doctest: +SKIP
>>> read_features("feats.npz").layers  # doctest: +SKIP
['stem', 'head']
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from layergain import schema as S
from layergain._files import atomic_target
from layergain.errors import DataError, InputTypeError, InputValueError, OutputError

__all__ = [
    "FORMATS",
    "LAYOUT_VERSION",
    "ExternalFeatures",
    "ExternalStore",
    "export_features",
    "feature_format",
    "match",
    "read_features",
]

LAYOUT_VERSION = "1"
#: Global attribute (netCDF/zarr) and JSON key (HDF5 folder) holding the layout version.
VERSION_ATTR = "layergain_features"
FEATURES_PREFIX = "features__"
UNIT_PREFIX = "unit__"
SHA256 = "sha256"
LAYERS_ATTR = "layers"
META_ATTR = "meta"
#: Known metadata keys stored as plain string attributes, and as JSON objects keyed by layer.
META_STRINGS = ("model", "readout", "baseline")
META_PER_LAYER = ("relative_depth", "module")
NPZ_IMAGE_IDS, NPZ_INITS, NPZ_LAYERS = "image_ids", "inits", "layers"
H5_FEATURES, H5_COORDS, H5_IMAGE_IDS = "features", "coords", "image_ids"
H5_INDEX = "layergain.json"

Format = Literal["netcdf", "npz", "zarr", "hdf5"]
FORMATS: tuple[str, ...] = ("netcdf", "npz", "zarr", "hdf5")
_SUFFIXES = {".nc": "netcdf", ".npz": "npz", ".zarr": "zarr", "": "hdf5"}
_RANDOM = re.compile(rf"^{re.escape(S.RANDOM_PREFIX)}(\d+)$")
_SHOW = 5  # ids shown in an error message


# ----------------------------------------------------------------------------------------------
# The features and their store


@dataclass(frozen=True)
class ExternalStore:
    """In-memory features with the interface of :class:`layergain.features.store.FeatureStore`.

    Attributes
    ----------
    root : str
        Where the features came from.
    keys : dict of str to str
        A name per network (init -> ``"<root>#<init>"``).
    sha256 : tuple of str
        One string per image, in image order: the checksums where the file has them, else the
        image ids.
    layers : tuple of str
        Probe-layer names, shallow to deep.
    features : dict
        init -> layer -> float32 array of shape (n_images, width).

    It pickles with its arrays (joblib memory-maps large arrays for its workers).
    """

    root: str
    keys: dict
    sha256: tuple
    layers: tuple
    features: dict = field(repr=False)

    def layer(self, init: str, layer: str) -> np.ndarray:
        """Features of one layer of one network, shape (n_images, width) (a copy)."""
        return self.features[init][layer].copy()

    def rows(self, init: str, index: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer of one network for the images at ``index``."""
        index = np.asarray(index)
        return {layer: self.features[init][layer][index] for layer in self.layers}

    def blocks(self, size: int) -> list[np.ndarray]:
        """Image indices in consecutive blocks of at most ``size``."""
        n = len(self.sha256)
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]


@dataclass(frozen=True)
class ExternalFeatures:
    """Validated precomputed features of one image set for the pretrained and random networks.

    Attributes
    ----------
    image_ids : tuple of str
        One unique id per image; the row order of every array.
    inits : list of str
        ``pretrained``, then ``random-<seed>`` by seed (at least two).
    layers : list of str
        Probe-layer names, shallow to deep.
    features : dict
        init -> layer -> float32 array of shape (n_images, width); read-only arrays.
    meta : dict
        Metadata (``model``, ``readout``, ``baseline``, ``relative_depth``, ``module``, ...).
    sha256 : tuple of str or None
        Image checksums, where the source has them.
    source : str
        Path read (or a description).
    """

    image_ids: tuple
    inits: list
    layers: list
    features: dict = field(repr=False)
    meta: dict = field(default_factory=dict)
    sha256: tuple | None = None
    source: str = ""

    @property
    def n_images(self) -> int:
        """Number of images."""
        return len(self.image_ids)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Seeds of the random networks, in the order of :attr:`inits` (pretrained excluded)."""
        return tuple(int(_RANDOM.match(init).group(1)) for init in self.inits[1:])

    @property
    def widths(self) -> dict[str, int]:
        """Width of each layer."""
        return {layer: self.features[S.PRETRAINED][layer].shape[1] for layer in self.layers}

    @property
    def store(self) -> ExternalStore:
        """The features as a store for the probes and similarity stages."""
        return ExternalStore(
            root=self.source,
            keys={init: f"{self.source}#{init}" for init in self.inits},
            sha256=tuple(self.sha256) if self.sha256 is not None else tuple(self.image_ids),
            layers=tuple(self.layers),
            features=self.features,
        )


# ----------------------------------------------------------------------------------------------
# Validation (one error per problem, saying what is wrong and how to fix it)


def _show(items: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _check_ids(ids: Sequence[str], where: str, error: type = DataError) -> tuple[str, ...]:
    ids = tuple(ids)
    if not ids:
        raise error(f"{where} has no images; it needs at least one image id.")
    bad = [x for x in ids if not isinstance(x, str) or not x]
    if bad:
        raise error(f"image ids in {where} must be non-empty strings; got {_show([str(b) for b in bad])}.")
    dup = [x for x, c in Counter(ids).items() if c > 1]
    if dup:
        raise error(
            f"{len(dup)} image id(s) occur more than once in {where}: {_show(dup)}; each image needs one unique "
            "id (for patches of slides, e.g. '<slide>:<x>_<y>')."
        )
    return ids


def _check_names(names: Sequence[str], kind: str, where: str, error: type) -> None:
    bad = [n for n in names if not isinstance(n, str) or not n or "/" in n or n.startswith(".")]
    if bad:
        raise error(f"{kind} names in {where} must be non-empty strings without '/' that do not start with '.'; "
                    f"got {_show([str(b) for b in bad])}.")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise error(f"{kind} names occur more than once in {where}: {_show(dup)}.")


def _order_inits(inits: Sequence[str], where: str, error: type = DataError) -> list[str]:
    """``pretrained`` first, then random inits by seed; the errors of a missing or odd network."""
    _check_names(inits, "init", where, error)
    if S.PRETRAINED not in inits:
        raise error(
            f"no {S.PRETRAINED!r} network in {where} (inits: {_show(inits)}); the features of the "
            f"ImageNet-pretrained network must be stored under init {S.PRETRAINED!r}."
        )
    others = [i for i in inits if i != S.PRETRAINED]
    odd = [i for i in others if not _RANDOM.match(i)]
    if odd:
        raise error(
            f"init names {_show(odd)} in {where} are neither {S.PRETRAINED!r} nor "
            f"'{S.RANDOM_PREFIX}<seed>'; name each random network after its seed, e.g. "
            f"{S.random_init_name(0)!r}."
        )
    if len(others) < 2:
        raise error(
            f"{where} has {len(others)} random network(s) ({_show(others) or 'none'}); at least 2 are needed: "
            "the random-vs-random similarity is the reference that pretrained-vs-random is judged against, "
            "and the spread over seeds enters every interval. Extract features of at least 2 random seeds."
        )
    seeds = [int(_RANDOM.match(i).group(1)) for i in others]
    dup = [s for s, c in Counter(seeds).items() if c > 1]
    if dup:
        raise error(f"random seeds occur more than once in {where} (e.g. 'random-1' and 'random-01'): seeds {dup}.")
    return [S.PRETRAINED] + [i for _, i in sorted(zip(seeds, others))]


def _as_features(array, init: str, layer: str, n: int, where: str, error: type = DataError) -> np.ndarray:
    """A (n, width) finite float32 array, or the error saying what is wrong with it."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise error(
            f"features of init {init!r}, layer {layer!r} in {where} have shape {array.shape}; each network's "
            "layer needs a 2-D array of shape (n_images, width), one row per image (pool or flatten feature maps "
            "first)."
        )
    if array.shape[0] != n:
        raise error(
            f"features of init {init!r}, layer {layer!r} in {where} have {array.shape[0]} row(s) but there are "
            f"{n} image ids; each layer needs one row per image, in the order of the ids."
        )
    if array.shape[1] == 0:
        raise error(f"features of init {init!r}, layer {layer!r} in {where} have width 0.")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise error(f"features of init {init!r}, layer {layer!r} in {where} have dtype {array.dtype}; "
                    "a real number type is needed (float32 is stored).")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise error(
            f"features of init {init!r}, layer {layer!r} in {where} have {int((~finite).sum())} non-finite "
            f"value(s) (NaN or inf) in {bad_rows.size} image(s) (rows {_show([str(r) for r in bad_rows])}"
            "); recompute them, or drop those images from the features and the manifest."
        )
    return array


def _check_widths(features: Mapping[str, Mapping[str, np.ndarray]], layer: str, where: str, error: type) -> None:
    widths = {init: layers[layer].shape[1] for init, layers in features.items() if layer in layers}
    if len(set(widths.values())) > 1:
        raise error(
            f"layer {layer!r} has different widths between networks in {where}: "
            + ", ".join(f"{init} {w}" for init, w in widths.items())
            + "; the networks must share one architecture and one readout."
        )


def _check_meta(meta, layers: Sequence[str], where: str, error: type) -> dict:
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InputTypeError(f"`meta` in {where} must be a dict; got {type(meta).__name__}.")
    meta = dict(meta)
    for key in META_STRINGS:
        if key in meta and not isinstance(meta[key], str):
            raise error(f"meta {key!r} in {where} must be a string; got {meta[key]!r}.")
    for key in META_PER_LAYER:
        if key in meta:
            if not isinstance(meta[key], Mapping):
                raise error(f"meta {key!r} in {where} must map layer names to values; got {meta[key]!r}.")
            extra = [k for k in meta[key] if k not in layers]
            if extra:
                raise error(f"meta {key!r} in {where} names layers that are not in the features: {_show(extra)}.")
            meta[key] = dict(meta[key])
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as err:
        raise InputTypeError(f"`meta` in {where} must be JSON-serialisable (str, numbers, lists, dicts): {err}.") from None
    return meta


def _assemble(
    where: str,
    image_ids: Sequence[str],
    inits: Sequence[str],
    layers: Sequence[str],
    raw: Mapping[str, Mapping[str, object]],
    meta=None,
    sha256=None,
) -> ExternalFeatures:
    """Validate what a reader found and build :class:`ExternalFeatures`."""
    ids = _check_ids(image_ids, where)
    inits = _order_inits(list(inits), where)
    layers = list(layers)
    if not layers:
        raise DataError(f"{where} holds no layers; it needs features of at least one layer.")
    _check_names(layers, "layer", where, DataError)
    for layer in layers:
        missing = [init for init in inits if layer not in raw.get(init, {})]
        if missing:
            present = [init for init in inits if init not in missing]
            raise DataError(
                f"layer {layer!r} is missing for network(s) {_show(missing)} in {where} (present for "
                f"{_show(present) or 'none'}); every network needs every layer."
            )
    features: dict[str, dict[str, np.ndarray]] = {init: {} for init in inits}
    for layer in layers:
        for init in inits:
            array = _as_features(raw[init][layer], init, layer, len(ids), where)
            array.flags.writeable = False
            features[init][layer] = array
        _check_widths(features, layer, where, DataError)
    if sha256 is not None:
        sha256 = tuple(str(s) for s in sha256)
        if len(sha256) != len(ids):
            raise DataError(f"{where} has {len(sha256)} sha256 checksum(s) for {len(ids)} images; give one per image.")
    return ExternalFeatures(
        image_ids=ids, inits=inits, layers=layers, features=features,
        meta=_check_meta(meta, layers, where, DataError), sha256=sha256, source=where,
    )


def _strings(values) -> list[str]:
    values = np.asarray(values).reshape(-1)
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]


# ----------------------------------------------------------------------------------------------
# Matching to a manifest


def match(external: ExternalFeatures, image_ids: Sequence[str], *, subset: bool = False) -> ExternalFeatures:
    """Put the features in the order of a manifest's images.

    Parameters
    ----------
    external : ExternalFeatures
        Features as read by :func:`read_features`.
    image_ids : sequence of str
        The manifest's image ids, in its order; matched exactly (case and path separators
        included) to ``external.image_ids``.
    subset : bool, default=False
        Allow features of images that are not in ``image_ids`` (a subset of the manifest was
        asked for, e.g. ``max_per_class``); they are left out. Otherwise they are an error.

    Returns
    -------
    ExternalFeatures
        The same features with rows (and checksums) in the order of ``image_ids``.

    Raises
    ------
    DataError
        When the two sets of ids differ (up to 5 ids missing on either side are named, with
        their counts), or ``image_ids`` repeats an id.
    """
    wanted = _check_ids(image_ids, "the manifest", InputValueError)
    if wanted == external.image_ids:
        return external
    have = set(external.image_ids)
    lacking = [x for x in wanted if x not in have]
    extra = [] if subset else sorted(have.difference(wanted))
    if lacking or extra:
        parts = []
        if lacking:
            parts.append(f"{len(lacking)} manifest image(s) have no features ({_show(lacking)})")
        if extra:
            parts.append(f"{len(extra)} featured image(s) are not in the manifest ({_show(extra)})")
        raise DataError(
            f"image ids of the features in {external.source} do not match the manifest: " + "; ".join(parts)
            + ". The ids are matched exactly: use the same ids in both (e.g. the manifest's paths as written), "
            "and features of exactly the manifest's images."
        )
    position = {x: i for i, x in enumerate(external.image_ids)}
    index = np.fromiter((position[x] for x in wanted), dtype=np.intp, count=len(wanted))
    features = {}
    for init, layers in external.features.items():
        features[init] = {}
        for layer, array in layers.items():
            reordered = array[index]
            reordered.flags.writeable = False
            features[init][layer] = reordered
    sha256 = None if external.sha256 is None else tuple(external.sha256[i] for i in index)
    return ExternalFeatures(
        image_ids=wanted, inits=list(external.inits), layers=list(external.layers), features=features,
        meta=dict(external.meta), sha256=sha256, source=external.source,
    )


# ----------------------------------------------------------------------------------------------
# Reading


def feature_format(path: str | os.PathLike) -> Format:
    """The layout of ``path`` from its suffix: ``.nc``, ``.npz``, ``.zarr``, or none (HDF5 folder)."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputValueError(
            f"cannot tell the features layout of {str(path)!r} from its suffix {suffix!r}: use '.nc' (netCDF), "
            "'.npz', '.zarr', or a folder without a suffix (HDF5 files, PATH/<init>/<layer>.h5)."
        )
    return _SUFFIXES[suffix]


def read_features(path: str | os.PathLike) -> ExternalFeatures:
    """Read and validate precomputed features in one of the layouts of this module.

    Parameters
    ----------
    path : str or path-like
        A ``.nc``, ``.npz`` or ``.zarr`` path, or a folder of HDF5 files (see the module docstring).

    Returns
    -------
    ExternalFeatures
        Every array in memory, float32, checked finite and of one width per layer.

    Raises
    ------
    DataError
        When the path is missing, unreadable, or breaks the layout: duplicate ids, no
        ``pretrained`` network, fewer than 2 random networks, a layer missing in one network,
        widths differing between networks, NaN or inf features, arrays of the wrong rank.
    InputValueError
        When the suffix names no known layout.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"features path {str(path)!r} does not exist.")
    if path.is_file() and path.suffix.lower() in (".h5", ".hdf5"):
        raise DataError(
            f"{str(path)!r} is one HDF5 file; HDF5 features are read from a folder PATH/<init>/<layer>.h5 (or "
            "PATH/<init>/<layer>/<slide>.h5) holding the pretrained network and at least 2 random ones."
        )
    fmt = feature_format(path)
    reader = {"netcdf": _read_netcdf, "npz": _read_npz, "zarr": _read_zarr, "hdf5": _read_hdf5}[fmt]
    return reader(path)


def _unreadable(path: Path, fmt: str, err: BaseException) -> DataError:
    return DataError(f"cannot read {str(path)!r} as {fmt} features: {type(err).__name__}: {err}")


def _from_dataset(ds, where: str) -> ExternalFeatures:
    """ExternalFeatures from an xarray Dataset in the netCDF/zarr layout."""
    for coord in (S.INIT, S.IMAGE):
        if coord not in ds.coords:
            raise DataError(f"{where} has no {coord!r} coordinate; the layout needs coordinates "
                            f"{S.INIT!r} (network names) and {S.IMAGE!r} (image ids).")
    variables = [str(v) for v in ds.data_vars if str(v).startswith(FEATURES_PREFIX)]
    found = [v[len(FEATURES_PREFIX):] for v in variables]
    attrs = dict(ds.attrs)
    if LAYERS_ATTR in attrs:
        try:
            layers = json.loads(attrs[LAYERS_ATTR])
        except (TypeError, ValueError):
            layers = None
        if not isinstance(layers, list):
            raise DataError(f"attribute {LAYERS_ATTR!r} of {where} must be a JSON list of layer names, shallow to "
                            f"deep; got {attrs[LAYERS_ATTR]!r}.")
    elif len(found) <= 1:
        layers = found
    else:
        raise DataError(f"{where} has {len(found)} feature variables but no {LAYERS_ATTR!r} attribute: the order of "
                        "the layers (shallow to deep) cannot be guessed; set it to a JSON list of layer names.")
    missing = [layer for layer in layers if layer not in found]
    unlisted = [layer for layer in found if layer not in layers]
    if missing or unlisted:
        raise DataError(
            f"{where}: the {LAYERS_ATTR!r} attribute and the {FEATURES_PREFIX}<layer> variables disagree"
            + (f"; no variable for layer(s) {_show(missing)}" if missing else "")
            + (f"; layer(s) {_show(unlisted)} not listed" if unlisted else "") + "."
        )
    inits = _strings(ds[S.INIT].values)
    raw: dict[str, dict[str, np.ndarray]] = {init: {} for init in inits}
    for layer in layers:
        var = ds[FEATURES_PREFIX + layer]
        unit = UNIT_PREFIX + layer
        if set(var.dims) != {S.INIT, S.IMAGE, unit}:
            raise DataError(f"variable {FEATURES_PREFIX + layer!r} of {where} has dims {var.dims}; it needs dims "
                            f"({S.INIT!r}, {S.IMAGE!r}, {unit!r}).")
        values = var.transpose(S.INIT, S.IMAGE, unit).values
        for k, init in enumerate(inits):
            raw[init][layer] = values[k]
    meta = {}
    for key, value in attrs.items():
        if key in (LAYERS_ATTR, VERSION_ATTR, META_ATTR):
            continue
        if key in META_PER_LAYER:
            try:
                value = json.loads(value)
            except (TypeError, ValueError):
                raise DataError(f"attribute {key!r} of {where} must be a JSON object keyed by layer; got {value!r}.") \
                    from None
        meta[key] = value.tolist() if isinstance(value, (np.generic, np.ndarray)) else value
    if META_ATTR in attrs:
        try:
            extra = json.loads(attrs[META_ATTR])
        except (TypeError, ValueError):
            extra = None
        if not isinstance(extra, dict):
            raise DataError(f"attribute {META_ATTR!r} of {where} must be a JSON object; got {attrs[META_ATTR]!r}.")
        meta.update(extra)
    sha256 = _strings(ds[SHA256].values) if SHA256 in ds.variables else None
    return _assemble(where, _strings(ds[S.IMAGE].values), inits, layers, raw, meta, sha256)


def _read_netcdf(path: Path) -> ExternalFeatures:
    import xarray as xr

    try:
        ds = xr.open_dataset(path, engine="netcdf4")
    except Exception as err:  # noqa: BLE001 - any failure to open is an unreadable file
        raise _unreadable(path, "netCDF", err) from None
    with ds:
        return _from_dataset(ds, str(path))


def _need_zarr() -> None:
    if importlib.util.find_spec("zarr") is None:
        raise DataError("the zarr layout needs the optional 'zarr' package, which is not installed: "
                        "`pip install zarr`, or use '.nc' or '.npz' instead.")


def _read_zarr(path: Path) -> ExternalFeatures:
    _need_zarr()
    import xarray as xr

    try:
        ds = xr.open_zarr(path)
    except Exception as err:  # noqa: BLE001
        raise _unreadable(path, "zarr", err) from None
    with ds:
        return _from_dataset(ds, str(path))


def _read_npz(path: Path) -> ExternalFeatures:
    where = str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        raise _unreadable(path, "npz", err) from None
    with archive:
        names = set(archive.files)
        missing = [k for k in (NPZ_IMAGE_IDS, NPZ_INITS, NPZ_LAYERS) if k not in names]
        if missing:
            raise DataError(f"{where} lacks the array(s) {_show(missing)}; the npz layout needs "
                            f"{NPZ_IMAGE_IDS!r}, {NPZ_INITS!r}, {NPZ_LAYERS!r} and '<init>/<layer>' arrays.")
        try:
            ids, inits, layers = (_strings(archive[k]) for k in (NPZ_IMAGE_IDS, NPZ_INITS, NPZ_LAYERS))
            raw = {init: {layer: archive[f"{init}/{layer}"] for layer in layers if f"{init}/{layer}" in names}
                   for init in inits}
            sha256 = _strings(archive[SHA256]) if SHA256 in names else None
            meta = json.loads(str(archive[META_ATTR][()])) if META_ATTR in names else {}
        except ValueError as err:
            raise DataError(f"cannot read {where}: {err}. Store ids and names as str arrays "
                            "(np.asarray(ids, dtype=str)), features as float arrays, and meta as a JSON string.") \
                from None
    if not isinstance(meta, dict):
        raise DataError(f"array {META_ATTR!r} of {where} must hold a JSON object; got {meta!r}.")
    return _assemble(where, ids, inits, layers, raw, meta, sha256)


def _need_h5py():
    try:
        import h5py
    except ImportError:
        raise DataError("HDF5 features need the 'h5py' package, which is not installed: `pip install h5py`.") \
            from None
    return h5py


def _coord_ids(coords, prefix: str, where: str) -> list[str]:
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise DataError(f"dataset {H5_COORDS!r} of {where} has shape {coords.shape}; it needs shape (n, 2) "
                        f"(x, y of each patch), or add an {H5_IMAGE_IDS!r} dataset of image ids.")
    if np.issubdtype(coords.dtype, np.floating) and np.all(coords == np.round(coords)):
        coords = coords.astype(np.int64)
    return [f"{prefix}{x}_{y}" for x, y in coords.tolist()]


def _read_h5_file(h5py, path: Path, slide: str | None) -> tuple[list[str], np.ndarray, list[str] | None]:
    """(ids, features, sha256) of one HDF5 file."""
    where = str(path)
    try:
        with h5py.File(path, "r") as f:
            if H5_FEATURES not in f:
                raise DataError(f"{where} has no {H5_FEATURES!r} dataset; each file needs {H5_FEATURES!r} "
                                f"(n, width) and {H5_IMAGE_IDS!r} (n,) or {H5_COORDS!r} (n, 2).")
            array = f[H5_FEATURES][()]
            if H5_IMAGE_IDS in f:
                ids = _strings(f[H5_IMAGE_IDS][()])
            elif H5_COORDS in f:
                ids = _coord_ids(f[H5_COORDS][()], "" if slide is None else f"{slide}:", where)
            else:
                raise DataError(f"{where} has neither an {H5_IMAGE_IDS!r} nor a {H5_COORDS!r} dataset; the image "
                                "ids come from one of them.")
            sha256 = _strings(f[SHA256][()]) if SHA256 in f else None
    except (OSError, KeyError) as err:
        raise _unreadable(path, "HDF5", err) from None
    if np.ndim(array) >= 1 and np.shape(array)[0] != len(ids):
        raise DataError(f"{where} has {np.shape(array)[0]} feature row(s) but {len(ids)} image id(s); give one "
                        "row per image.")
    return ids, array, sha256


def _read_h5_layer(h5py, folder: Path, layer: str):
    """(ids, features, sha256) of one network's layer: one file, or one file per slide."""
    single, per_slide = folder / f"{layer}.h5", folder / layer
    if single.is_file() and per_slide.is_dir():
        raise DataError(f"both {str(single)!r} and {str(per_slide)!r} exist; keep one.")
    if single.is_file():
        return _read_h5_file(h5py, single, None)
    slides = sorted(p for p in per_slide.glob("*.h5") if not p.name.startswith("."))
    parts = [_read_h5_file(h5py, p, p.stem) for p in slides]
    for p, (_, array, _) in zip(slides, parts):
        if np.ndim(array) != 2:
            raise DataError(f"features in {str(p)!r} have shape {np.shape(array)}; each file needs a 2-D "
                            f"{H5_FEATURES!r} dataset of shape (n_patches, width).")
    ids = [i for part in parts for i in part[0]]
    shas = [part[2] for part in parts]
    sha256 = [s for part in shas for s in part] if all(s is not None for s in shas) else None
    widths = {np.shape(part[1])[1] for part in parts}
    if len(widths) > 1:
        raise DataError(f"slides of {str(per_slide)!r} have different feature widths {sorted(widths)}.")
    return ids, np.concatenate([part[1] for part in parts]), sha256


def _h5_layers_present(folder: Path) -> set[str]:
    names = {p.stem for p in folder.glob("*.h5") if p.is_file() and not p.name.startswith(".")}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.h5"))}
    return names


def _read_hdf5(path: Path) -> ExternalFeatures:
    where = str(path)
    h5py = _need_h5py()
    index = path / H5_INDEX
    meta: dict = {}
    if index.is_file():
        try:
            spec = json.loads(index.read_text())
            inits, layers, meta = list(spec["inits"]), list(spec["layers"]), dict(spec.get("meta", {}))
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{str(index)!r} must be a JSON object with lists 'inits' and 'layers' and an "
                            f"optional object 'meta': {err}") from None
    else:
        inits = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not inits:
            raise DataError(f"{where} holds no network folders; the HDF5 layout is PATH/<init>/<layer>.h5 (or "
                            "PATH/<init>/<layer>/<slide>.h5) with inits 'pretrained', 'random-0', 'random-1', ...")
        found = set().union(*(_h5_layers_present(path / init) for init in inits))
        if len(found) > 1:
            raise DataError(
                f"{where} holds {len(found)} layers ({_show(sorted(found))}) but no {H5_INDEX}: the order of the "
                f"layers (shallow to deep) cannot be guessed; write {str(index)!r} as "
                '{"inits": ["pretrained", "random-0", ...], "layers": [shallowest, ..., deepest]}.'
            )
        layers = sorted(found)
    _order_inits(inits, where)  # the errors of a missing network before any file is read
    raw: dict[str, dict[str, np.ndarray]] = {init: {} for init in inits}
    ids = sha256 = None
    for init in inits:
        for layer in layers:
            folder = path / init
            if not ((folder / f"{layer}.h5").is_file() or (folder / layer).is_dir()):
                continue  # reported by _assemble as a layer missing in one network
            these, array, these_sha = _read_h5_layer(h5py, folder, layer)
            if ids is None:
                ids = _check_ids(these, f"{folder / layer}")
                sha256 = these_sha
            elif list(these) != list(ids):
                array = _align(these, array, ids, f"{folder / layer}", where)
            raw[init][layer] = array
    if ids is None:
        raise DataError(f"{where} holds no HDF5 features of the layers {_show(layers)}.")
    return _assemble(where, ids, inits, layers, raw, meta, sha256)


def _align(these: Sequence[str], array, ids: Sequence[str], what: str, where: str) -> np.ndarray:
    """Rows of ``array`` (ids ``these``) in the order ``ids``."""
    these = _check_ids(these, what)
    position = {x: i for i, x in enumerate(these)}
    lacking = [x for x in ids if x not in position]
    extra = sorted(set(these).difference(ids))
    if lacking or extra:
        raise DataError(
            f"{what} holds other images than the first file of {where}: {len(lacking)} missing ({_show(lacking)}), "
            f"{len(extra)} extra ({_show(extra)}); every network and layer needs features of the same images."
        )
    if np.ndim(array) < 1:
        return array
    return np.asarray(array)[[position[x] for x in ids]]


# ----------------------------------------------------------------------------------------------
# Writing


def export_features(
    path: str | os.PathLike,
    *,
    image_ids: Sequence[str],
    inits: Sequence[str],
    layers: Sequence[str],
    read_layer: Callable[[str, str], np.ndarray],
    meta: Mapping | None = None,
    sha256: Sequence[str] | None = None,
) -> Path:
    """Write features in the layout named by the suffix of ``path``, atomically.

    Parameters
    ----------
    path : str or path-like
        ``.nc`` (netCDF), ``.npz``, ``.zarr`` (needs ``zarr``), or a folder without a suffix
        (HDF5 files). An existing file is replaced; an existing folder only when it holds a
        previous export.
    image_ids : sequence of str
        Unique image ids, the row order of every array.
    inits : sequence of str
        ``pretrained`` and at least two ``random-<seed>`` names.
    layers : sequence of str
        Layer names, shallow to deep.
    read_layer : callable
        ``read_layer(init, layer)`` -> array-like of shape (n_images, width); called once per
        network and layer, so that one layer is in memory at a time (all networks of one layer
        for netCDF/zarr).
    meta : dict, default=None
        JSON-serialisable metadata (``model``, ``readout``, ``baseline``, ``relative_depth``,
        ``module``, ...).
    sha256 : sequence of str, default=None
        Image checksums, one per image.

    Returns
    -------
    Path
        ``path``. On any error nothing is left behind (the output is written under a temporary
        name beside it and renamed at the end).
    """
    path = Path(path)
    fmt = feature_format(path)
    where = "the exported features"
    ids = _check_ids(image_ids, where, InputValueError)
    ordered = _order_inits(list(inits), where, InputValueError)
    layers = list(layers)
    if not layers:
        raise InputValueError("`layers` is empty; export at least one layer.")
    _check_names(layers, "layer", where, InputValueError)
    meta = _check_meta(meta, layers, where, InputValueError)
    if sha256 is not None:
        sha256 = [str(s) for s in sha256]
        if len(sha256) != len(ids):
            raise InputValueError(f"`sha256` has {len(sha256)} checksum(s) for {len(ids)} images; give one per image.")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist.")
    if fmt == "zarr":
        _need_zarr()
    if fmt == "hdf5":
        _need_h5py()
    spec = _Spec(ids, ordered, layers, meta, sha256, read_layer)
    if fmt in ("netcdf", "npz"):
        with atomic_target(path) as tmp:
            (_write_netcdf if fmt == "netcdf" else _write_npz)(tmp, spec)
    else:
        with _atomic_folder(path, _is_previous_export) as tmp:
            (_write_zarr if fmt == "zarr" else _write_hdf5)(tmp, spec)
    return path


@dataclass
class _Spec:
    ids: tuple
    inits: list
    layers: list
    meta: dict
    sha256: list | None
    read_layer: Callable
    widths: dict = field(default_factory=dict)

    def read(self, init: str, layer: str) -> np.ndarray:
        array = _as_features(self.read_layer(init, layer), init, layer, len(self.ids), "the exported features",
                             InputValueError)
        width = self.widths.setdefault(layer, array.shape[1])
        if array.shape[1] != width:
            raise InputValueError(f"layer {layer!r} has width {array.shape[1]} for {init} but {width} for "
                                  f"{self.inits[0]}; the networks must share one architecture and one readout.")
        return array


def _folder_mode() -> int:
    """The mode a plain ``mkdir`` would give under the current umask (``mkdtemp`` gives 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _is_previous_export(path: Path) -> bool:
    return (path / H5_INDEX).is_file() or (path / ".zgroup").is_file() or (path / "zarr.json").is_file()


class _atomic_folder:
    """Write a folder under a temporary name beside ``path``; rename it into place on success."""

    def __init__(self, path: Path, replaceable: Callable[[Path], bool]):
        self.path, self.replaceable = path, replaceable

    def __enter__(self) -> Path:
        if self.path.exists() and not (self.path.is_dir() and (self.replaceable(self.path)
                                                               or not any(self.path.iterdir()))):
            raise OutputError(f"{str(self.path)!r} exists and is not a previous features export; remove it or "
                              "choose another path.")
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial"))
        return self.tmp

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            os.chmod(self.tmp, _folder_mode())
            old = None
            if self.path.exists():
                old = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".old"))
                os.replace(self.path, old / "x")
            os.replace(self.tmp, self.path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise


def _dataset_attrs(spec: _Spec) -> dict:
    attrs = {VERSION_ATTR: LAYOUT_VERSION, LAYERS_ATTR: json.dumps(spec.layers)}
    rest = {}
    for key, value in spec.meta.items():
        if key in META_PER_LAYER:
            attrs[key] = json.dumps(value)
        elif isinstance(value, str) and key not in (LAYERS_ATTR, VERSION_ATTR, META_ATTR):
            attrs[key] = value
        else:
            rest[key] = value
    if rest:
        attrs[META_ATTR] = json.dumps(rest)
    return attrs


def _xarray_parts(spec: _Spec):
    """The coordinates dataset, then one dataset per layer (read lazily)."""
    import xarray as xr

    coords = {S.INIT: np.asarray(spec.inits, dtype=object), S.IMAGE: np.asarray(spec.ids, dtype=object)}
    attrs = _dataset_attrs(spec)  # on every part: appending to zarr replaces the global attributes
    head = xr.Dataset(coords=coords, attrs=attrs)
    if spec.sha256 is not None:
        head[SHA256] = ((S.IMAGE,), np.asarray(spec.sha256, dtype=object))
    yield head
    for layer in spec.layers:
        stacked = np.stack([spec.read(init, layer) for init in spec.inits])
        yield xr.Dataset({FEATURES_PREFIX + layer: ((S.INIT, S.IMAGE, UNIT_PREFIX + layer), stacked)}, attrs=attrs)


def _write_netcdf(tmp: Path, spec: _Spec) -> None:
    for k, part in enumerate(_xarray_parts(spec)):
        part.to_netcdf(tmp, mode="w" if k == 0 else "a", engine="netcdf4")


def _write_zarr(tmp: Path, spec: _Spec) -> None:
    target = tmp / "store.zarr"
    for k, part in enumerate(_xarray_parts(spec)):
        part.to_zarr(target, mode="w" if k == 0 else "a")
    # The folder itself is the store: move its contents up.
    for child in target.iterdir():
        os.replace(child, tmp / child.name)
    target.rmdir()


def _write_npz(tmp: Path, spec: _Spec) -> None:
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:

        def put(name: str, array: np.ndarray) -> None:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

        put(NPZ_IMAGE_IDS, np.asarray(spec.ids, dtype=str))
        put(NPZ_INITS, np.asarray(spec.inits, dtype=str))
        put(NPZ_LAYERS, np.asarray(spec.layers, dtype=str))
        if spec.sha256 is not None:
            put(SHA256, np.asarray(spec.sha256, dtype=str))
        if spec.meta:
            put(META_ATTR, np.asarray(json.dumps(spec.meta)))
        for layer in spec.layers:
            for init in spec.inits:
                put(f"{init}/{layer}", spec.read(init, layer))


def _write_hdf5(tmp: Path, spec: _Spec) -> None:
    h5py = _need_h5py()
    text = h5py.string_dtype()
    ids = np.asarray(spec.ids, dtype=object)
    for init in spec.inits:
        (tmp / init).mkdir()
        for layer in spec.layers:
            with h5py.File(tmp / init / f"{layer}.h5", "w") as f:
                f.create_dataset(H5_FEATURES, data=spec.read(init, layer))
                f.create_dataset(H5_IMAGE_IDS, data=ids, dtype=text)
                if spec.sha256 is not None:
                    f.create_dataset(SHA256, data=np.asarray(spec.sha256, dtype=object), dtype=text)
    index = {VERSION_ATTR: LAYOUT_VERSION, "inits": spec.inits, "layers": spec.layers, "meta": spec.meta}
    (tmp / H5_INDEX).write_text(json.dumps(index, indent=1) + "\n")
