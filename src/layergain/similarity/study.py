r"""Every similarity measure of a run: pretrained vs each random init, random vs random, per layer.

- :func:`layer_similarity`: the per-layer measures on arrays in memory.
- :func:`study_similarity`: the similarity stage of a run, read from the feature cache one layer at
  a time (through :func:`layer_similarity`) and, for the cross-layer CKA matrices, one block of
  images at a time (:class:`~layergain.similarity.StreamingCKAMatrix`).

Neither aborts for one layer's measure: a value that cannot be computed (too few images for SVCCA,
a collapsed layer, NaN features) is stored as NaN and the reason goes into the variable's
``nan_reason`` attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any, Protocol

import numpy as np
import xarray as xr

from layergain import schema as S
from layergain.errors import InputTypeError, InputValueError, LayergainError
from layergain.parallel import in_order, jobs_within_memory
from layergain.similarity._backend import NumpyOps, one_blas_thread, ops_for
from layergain.similarity._hsic import hsic_tables
from layergain.similarity.cca import Directions, canonical, check_directions, check_keep, directions
from layergain.similarity.cka import check_bandwidth, common_float, rbf_gram_centred
from layergain.similarity.matrix import METHODS
from layergain.similarity.streaming import StreamingCKAMatrix

__all__ = [
    "MEASURES",
    "PAIR_SEPARATOR",
    "RBF_MAX_IMAGES",
    "SIMILARITY_BLOCK",
    "FeatureSource",
    "layer_similarity",
    "study_similarity",
]

#: Every measure :func:`layer_similarity` can compute (the names of its output variables).
MEASURES: tuple[str, ...] = (
    "cka_linear",
    "cka_debiased",
    "cka_rbf",
    "svcca",
    "pwcca",
)
#: Joins the two random inits of a random-vs-random pair: "random-0|random-1".
PAIR_SEPARATOR = "|"
#: Images per block of the streamed cross-layer CKA matrices of :func:`study_similarity`.
SIMILARITY_BLOCK = 2048
#: Above this many images :func:`study_similarity` stores RBF CKA (an N x N kernel per network) as NaN.
RBF_MAX_IMAGES = 10_000

Progress = Callable[[int, int, str], object]
Log = Callable[[str], object]


class FeatureSource(Protocol):
    """What :func:`study_similarity` reads: :class:`layergain.features.FeatureStore` or alike."""

    sha256: tuple
    layers: tuple

    def layer(self, init: str, layer: str) -> Any: ...

    def rows(self, init: str, index: np.ndarray) -> Mapping[str, Any]: ...

    def blocks(self, size: int) -> list[np.ndarray]: ...


def layer_similarity(
    features: Mapping[str, Mapping[str, Any]],
    *,
    pretrained: str = S.PRETRAINED,
    measures: Sequence[str] = MEASURES,
    keep: float = 0.99,
    bandwidth: Any = "median",
    progress: Progress | None = None,
) -> xr.Dataset:
    r"""Similarity of each pretrained layer to the same layer of each random init, with references.

    Parameters
    ----------
    features : mapping of str to mapping of str to array-like of shape (n_images, n_units)
        ``features[init][layer]``: the features of every image at every probe layer of every
        network, e.g. ``{"pretrained": {...}, "random-0": {...}, ...}``. Every init has the same
        layer names in the same order (shallow to deep) and the same images in the same order.
        numpy arrays or torch tensors.
    pretrained : str, default="pretrained"
        The key of the pretrained network; every other key is a random init.
    measures : sequence of str, default=all of :data:`MEASURES`
        Which of ``"cka_linear"``, ``"cka_debiased"``, ``"cka_rbf"``, ``"svcca"``, ``"pwcca"`` to
        compute. The cross-layer matrices are :func:`~layergain.similarity.cka_matrix` (arrays)
        and :func:`study_similarity` (a run).
    keep : float in (0, 1], default=0.99
        Share of variance kept on each side by SVCCA and PWCCA.
    bandwidth : "median" or float or tuple of two floats, default="median"
        Kernel width of RBF CKA (see :func:`~layergain.similarity.rbf_cka`); a pair gives the
        pretrained network's and the random inits' widths.
    progress : callable, optional
        Called as ``progress(done, total, message)`` after each layer.

    Returns
    -------
    xarray.Dataset
        For each requested per-layer measure ``m``: ``m(init, layer)``, the measure between the
        pretrained layer and the same layer of each random init (``init`` lists the random inits
        only), and ``m_rr(pair, layer)``, the same measure between every pair of random inits
        (``pair`` like ``"random-0|random-1"``, with coordinates ``pair_first`` and
        ``pair_second``; present with two or more random inits). Each variable's attrs hold ``method``,
        ``long_name`` and ``nan_reason`` (a dict layer -> {init or pair -> reason}, ``{}`` when
        nothing is missing); the Dataset's attrs hold the settings. Attrs are Python values:
        :func:`layergain.results.io.save_results` writes them to netCDF (dicts as JSON).

    Raises
    ------
    InputValueError
        No pretrained or no random init, different layer names or image counts across inits,
        an unknown measure or a bad ``keep`` / ``bandwidth``.
    InputTypeError
        ``features`` is not a mapping of mappings.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> feats = {
    ...     init: {"stem": rng.normal(size=(60, 8)), "head": rng.normal(size=(60, 16))}
    ...     for init in ("pretrained", "random-0", "random-1")
    ... }
    >>> ds = layer_similarity(feats, measures=("cka_linear", "cka_debiased"))
    >>> ds["cka_debiased"].dims, ds["cka_debiased_rr"].sizes["pair"]
    (('init', 'layer'), 1)
    """
    measures = _check_measures(measures)
    keep = check_keep(keep)
    sigma = check_bandwidth(bandwidth)
    inits, layers, n = _check_features(features, pretrained)
    pairs = list(combinations(range(1, len(inits)), 2))

    tables = {m: np.full((len(layers), len(inits), len(inits)), np.nan) for m in measures}
    reasons: dict[str, dict[str, dict[str, str]]] = {m: {} for m in measures}
    ops = ops_for(*(features[i][layer] for i in inits for layer in layers))
    dtype = common_float(ops, *(features[i][layer] for i in inits for layer in layers))
    for li, layer in enumerate(layers):
        arrays = _prepare_layer(ops, features, inits, layer, dtype, measures, reasons)
        for m, table, why in _layer_measures(ops, arrays, inits, measures, keep, sigma):
            tables[m][li] = table
            for (i, j), reason in why.items():
                key = inits[j] if i == 0 else inits[i] + PAIR_SEPARATOR + inits[j]
                reasons[m].setdefault(layer, {})[key] = reason
        if progress is not None:
            progress(li + 1, len(layers), f"similarity of layer {layer!r}")

    ds = _per_layer_dataset(tables, reasons, inits, layers, pairs, keep, bandwidth)
    ds.attrs.update(
        {
            "similarity_pretrained": pretrained,
            "similarity_measures": list(measures),
            "similarity_keep": keep,
            "similarity_rbf_bandwidth": bandwidth,
            "similarity_n_images": n,
        }
    )
    return ds


def study_similarity(
    store: FeatureSource, inits: Sequence[str], *, n_jobs: int | None = 1, log: Log | None = None
) -> xr.Dataset:
    r"""The similarity stage of a run: every measure, read from cached features a piece at a time.

    Each layer's per-layer measures come from :func:`layer_similarity` on that layer of every
    network (memory: one layer's width); the cross-layer CKA matrices are accumulated over blocks
    of :data:`SIMILARITY_BLOCK` images (memory: one block). Above :data:`RBF_MAX_IMAGES` images,
    RBF CKA (an N x N kernel per network) is stored as NaN with its reason.

    Parameters
    ----------
    store : FeatureStore or alike
        Features of every network in ``inits``: ``store.layers`` (names, shallow to deep),
        ``store.sha256`` (one per image), ``store.layer(init, layer)`` -> array of shape
        (n_images, n_units), ``store.blocks(size)`` -> image indices and ``store.rows(init,
        index)`` -> mapping layer -> array of shape (len(index), n_units).
    inits : sequence of str
        The pretrained network first, then every random init.
    n_jobs : int, default=1
        joblib processes (or the Dask backend's workers), one layer each; fewer where the RBF
        kernels of that many layers would not fit in half the available memory. The store must
        be picklable, as the probes' is. Results are identical to a serial run.
    log : callable, optional
        Called with one line of text when the stage is done.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`layer_similarity` (``m(init, layer)`` and ``m_rr(pair, layer)``
        for every measure of :data:`MEASURES`), with ``nan_reason`` gathered over the layers,
        and ``cka_matrix(init, layer_pretrained, layer_other)`` and ``cka_debiased_matrix``:
        every pretrained layer against every layer of each random init.
    """
    inits = list(inits)
    per_layer = list(MEASURES)
    n = len(store.sha256)
    big = n > RBF_MAX_IMAGES
    if big:  # an N x N kernel per network: 20 GB at 50 000 images
        per_layer.remove("cka_rbf")
    kernels = len(inits) * n * n * 8 if "cka_rbf" in per_layer else 0  # float64 at most, one per network
    jobs = jobs_within_memory(n_jobs, kernels)
    # The cross-layer matrices (streamed over blocks of images, the longest unit) first, so that
    # they run beside the layers.
    units = [(store, inits, None, per_layer)] + [(store, inits, layer, per_layer) for layer in store.layers]
    matrices, *parts = in_order(_unit, units, jobs)
    ds = xr.concat(parts, dim=S.LAYER, combine_attrs="override")
    for name in ds.data_vars:  # each part knows the NaN reasons of its own layer
        reasons = {}
        for part in parts:
            reasons.update(part[name].attrs.get("nan_reason", {}))
        ds[name].attrs["nan_reason"] = reasons
    if big:
        why = (f"RBF CKA needs an N x N kernel per network; with {n} images it is not computed "
               f"above {RBF_MAX_IMAGES} images (use a --max-per-class subset for it)")
        for name, like in (("cka_rbf", "cka_linear"), ("cka_rbf_rr", "cka_linear_rr")):
            if like in ds:
                ds[name] = xr.full_like(ds[like], np.nan)
                ds[name].attrs = {"long_name": "RBF CKA", "nan_reason": {"all layers": why}}
    ds = ds.merge(matrices)
    if log is not None:
        log("similarity: done")
    return ds


def _unit(unit: tuple) -> xr.Dataset:
    """A work unit of :func:`study_similarity`: the per-layer measures of one layer of every
    network, or (layer ``None``) the cross-layer CKA matrices."""
    store, inits, layer, measures = unit
    # one BLAS thread wherever the unit runs (this process, a joblib or a Dask worker), so the
    # numbers are the same bits whichever runs it (two threads moved SVCCA and PWCCA by 1 ulp)
    with one_blas_thread():
        if layer is None:
            return _cka_matrices(store, inits)
        return layer_similarity({init: {layer: store.layer(init, layer)} for init in inits}, measures=measures)


#: The streamed cross-layer matrices keep a (total width)^2 float64 product per random init; above
#: this many bytes for all of them (wide readouts: `cov` gives ~28 000 units, 31 GB for 5 inits),
#: the matrices come from the layers in memory instead, one random init at a time.
STREAM_BYTES = 2**30


def _cka_matrices(store: FeatureSource, inits: list[str]) -> xr.Dataset:
    """Pretrained × random cross-layer CKA (linear and debiased) per random init: streamed over
    blocks of images, or from the layers in memory where the streamed products would be large."""
    randoms = inits[1:]
    total = sum(int(a.shape[1]) for a in store.rows(inits[0], np.arange(1)).values())
    streamed = 8 * total * total * len(randoms) <= STREAM_BYTES
    per_init = _streamed_matrices(store, inits) if streamed else _in_memory_matrices(store, inits)
    out = {}
    for kind, name in (("linear", "cka_matrix"), ("debiased", "cka_debiased_matrix")):
        mats = [per_init[init][kind] for init in randoms]
        da = xr.concat(mats, dim=xr.DataArray(randoms, dims=S.INIT, name=S.INIT), combine_attrs="override")
        bad = {str(layer): "constant features: CKA undefined" for layer in store.layers
               if np.isnan(da.sel({S.LAYER_PRETRAINED: layer}).values).all()}
        da.attrs = {
            "long_name": f"{'linear' if kind == 'linear' else 'debiased'} CKA, pretrained layer vs every layer "
                         "of each random init",
            "method": da.attrs.get("method", ""),
            "streaming_block": SIMILARITY_BLOCK if streamed else 0,
            "nan_reason": bad,
        }
        out[name] = da
    return xr.Dataset(out)


def _streamed_matrices(store: FeatureSource, inits: list[str]) -> dict[str, dict[str, xr.DataArray]]:
    randoms = inits[1:]
    acc = {init: StreamingCKAMatrix() for init in randoms}
    for block in store.blocks(SIMILARITY_BLOCK):
        xs = store.rows(inits[0], block)
        for init in randoms:
            acc[init].update(xs, store.rows(init, block))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {init: {kind: acc[init].cka_matrix(kind=kind) for kind in ("linear", "debiased")} for init in randoms}


def _in_memory_matrices(store: FeatureSource, inits: list[str]) -> dict[str, dict[str, xr.DataArray]]:
    """As :func:`_streamed_matrices`, from every layer of the pretrained network and of one random
    init at a time (:func:`~layergain.similarity._hsic.hsic_tables` takes the Gram form where
    images are fewer than units: n x n per layer instead of width x width per pair). Constant
    layers are refused by :func:`~layergain.similarity.matrix.prepare_layers`, as
    :func:`~layergain.similarity.cka_matrix` refuses them."""
    from layergain.similarity.cka import check_debiased_rows
    from layergain.similarity.matrix import matrix_array, prepare_layers

    names = [str(layer) for layer in store.layers]
    xs = [store.layer(inits[0], layer) for layer in names]
    ops = ops_for(*xs)
    dtype = common_float(ops, *xs)
    cx = prepare_layers(ops, names, xs, "xs", min_rows=2, dtype=dtype)
    n = int(cx[0].shape[0])
    check_debiased_rows(n, "xs")
    out = {}
    for init in inits[1:]:
        cy = prepare_layers(ops, names, [store.layer(init, layer) for layer in names], "ys", min_rows=2,
                            dtype=dtype)
        tables = hsic_tables(ops, cx, cy)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {"linear": tables.linear_cka(), "debiased": tables.debiased_cka()[0]}
        out[init] = {kind: matrix_array(v, names, names, kind, n) for kind, v in values.items()}
    return out


def _check_measures(measures: Sequence[str]) -> list[str]:
    if isinstance(measures, str):
        measures = [measures]
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise InputValueError(
            f"`measures` must be a non-empty selection of {', '.join(map(repr, MEASURES))}; got "
            f"{list(measures)!r}."
        )
    return list(dict.fromkeys(measures))


def _check_features(features: Any, pretrained: str) -> tuple[list[str], list[str], int]:
    """Inits (pretrained first), layer names and image count; raise on a structural mismatch."""
    if not isinstance(features, Mapping) or not all(isinstance(v, Mapping) for v in features.values()):
        raise InputTypeError(
            "`features` must be a mapping init name -> (mapping layer name -> array of shape "
            f"(n_images, n_units)), got {type(features).__name__}."
        )
    if pretrained not in features:
        raise InputValueError(
            f"`features` has no pretrained network {pretrained!r} (keys: {list(features)}). Pass "
            "its features under that key or set `pretrained=`."
        )
    inits = [pretrained] + [str(k) for k in features if k != pretrained]
    if len(inits) < 2:
        raise InputValueError(
            "`features` needs at least one random init beside the pretrained network, got only "
            f"{pretrained!r}."
        )
    layers = [str(k) for k in features[pretrained]]
    if not layers:
        raise InputValueError(f"`features[{pretrained!r}]` has no layers.")
    for init in inits[1:]:
        if [str(k) for k in features[init]] != layers:
            raise InputValueError(
                f"Every init must have the same layers in the same order: {pretrained!r} has "
                f"{layers}, {init!r} has {list(features[init])}."
            )
    rows = {(i, layer): int(np.shape(features[i][layer])[0]) if np.ndim(features[i][layer]) else 0
            for i in inits for layer in layers}
    if len(set(rows.values())) != 1:
        raise InputValueError(
            f"Every init and layer must describe the same images, got image counts {rows}."
        )
    return inits, layers, next(iter(rows.values()))


def _prepare_layer(
    ops: NumpyOps,
    features: Mapping[str, Mapping[str, Any]],
    inits: list[str],
    layer: str,
    dtype: Any,
    measures: list[str],
    reasons: dict[str, dict[str, dict[str, str]]],
) -> list[Any]:
    """Validated, centred features of one layer per init (None with a reason where invalid)."""
    out = []
    for init in inits:
        try:
            a = ops.validate(features[init][layer], f"features[{init!r}][{layer!r}]", min_rows=2, dtype=dtype)
            out.append(ops.centre(a))
        except LayergainError as err:
            out.append(None)
            for m in measures:
                reasons[m].setdefault(layer, {})[init] = str(err)
    return out


def _layer_measures(
    ops: NumpyOps,
    arrays: list[Any],
    inits: list[str],
    measures: list[str],
    keep: float,
    sigma: tuple[float | None, float | None],
) -> list[tuple[str, np.ndarray, dict[tuple[int, int], str]]]:
    """(measure, init x init table, reasons by (i, j)) for one layer."""
    ok = [i for i, a in enumerate(arrays) if a is not None]
    out = []
    if "cka_linear" in measures or "cka_debiased" in measures:
        out += _cka_tables(ops, arrays, ok, inits, measures)
    if "cka_rbf" in measures:
        out.append(_rbf_table(ops, arrays, ok, inits, sigma))
    if "svcca" in measures or "pwcca" in measures:
        out += _cca_tables(ops, arrays, ok, keep, measures)
    return out


def _blank(size: int) -> np.ndarray:
    return np.full((size, size), np.nan)


def _cka_tables(
    ops: NumpyOps, arrays: list[Any], ok: list[int], inits: list[str], measures: list[str]
) -> list[tuple[str, np.ndarray, dict[tuple[int, int], str]]]:
    size = len(arrays)
    lin, deb = _blank(size), _blank(size)
    why: dict[tuple[int, int], str] = {}
    if len(ok) >= 2:
        tables = hsic_tables(ops, [arrays[i] for i in ok], None)
        lin[np.ix_(ok, ok)] = tables.linear_cka()
        n = tables.n
        if n >= 4:
            values, h, _ = tables.debiased_cka()
            deb[np.ix_(ok, ok)] = values
            for pos, i in enumerate(ok):
                if not h[pos] > 0:
                    why.update(_pairs_with(i, size, f"the unbiased HSIC of {inits[i]} with itself is "
                                                   f"{h[pos]:.3g} <= 0 with {n} images: debiased CKA undefined"))
        else:
            why.update(_pairs_with(-1, size, f"debiased CKA needs at least 4 images, got {n}"))
    out = []
    if "cka_linear" in measures:
        out.append(("cka_linear", lin, {}))
    if "cka_debiased" in measures:
        out.append(("cka_debiased", deb, why))
    return out


def _pairs_with(i: int, size: int, reason: str) -> dict[tuple[int, int], str]:
    """Reasons for every pair involving init ``i`` (every pair for ``i = -1``)."""
    return {(a, b): reason for a, b in combinations(range(size), 2) if i in (-1, a, b)}


def _rbf_table(
    ops: NumpyOps, arrays: list[Any], ok: list[int], inits: list[str], sigma: tuple[float | None, float | None]
) -> tuple[str, np.ndarray, dict[tuple[int, int], str]]:
    size = len(arrays)
    table = _blank(size)
    why: dict[tuple[int, int], str] = {}
    grams, good = [], []
    for i in ok:
        try:
            # One bandwidth per network: sigma_x for the pretrained, sigma_y for the random inits.
            grams.append(rbf_gram_centred(ops.to_numpy(arrays[i]), sigma[0] if i == 0 else sigma[1], inits[i])[0])
            good.append(i)
        except LayergainError as err:
            why.update(_pairs_with(i, size, str(err)))
    if len(good) >= 2:
        g = NumpyOps().inner64(grams, None)
        table[np.ix_(good, good)] = g / np.sqrt(np.outer(np.diag(g), np.diag(g)))
    return "cka_rbf", table, why


def _cca_tables(
    ops: NumpyOps, arrays: list[Any], ok: list[int], keep: float, measures: list[str]
) -> list[tuple[str, np.ndarray, dict[tuple[int, int], str]]]:
    size = len(arrays)
    sv, pw = _blank(size), _blank(size)
    why: dict[tuple[int, int], str] = {}
    dirs: dict[int, Directions] = {i: directions(ops.to_numpy(arrays[i]).astype(np.float64), keep) for i in ok}
    for a, b in combinations(ok, 2):
        n = dirs[a].u.shape[0]
        try:
            check_directions(n, dirs[a].k, dirs[b].k, "SVCCA/PWCCA", keep)
        except LayergainError as err:
            why[a, b] = str(err)
            continue
        c = canonical(dirs[a], dirs[b])
        sv[a, b] = sv[b, a] = float(np.mean(c.rho))
        pw[a, b] = pw[b, a] = float(np.sum(c.weights * c.rho))
    out = []
    if "svcca" in measures:
        out.append(("svcca", sv, why))
    if "pwcca" in measures:
        out.append(("pwcca", pw, why))
    return out


def _per_layer_dataset(
    tables: dict[str, np.ndarray],
    reasons: dict[str, dict[str, dict[str, str]]],
    inits: list[str],
    layers: list[str],
    pairs: list[tuple[int, int]],
    keep: float,
    bandwidth: Any,
) -> xr.Dataset:
    randoms = inits[1:]
    ds = xr.Dataset(coords={S.INIT: randoms, S.LAYER: layers})
    if pairs:
        ds = ds.assign_coords(
            {
                S.PAIR: [inits[a] + PAIR_SEPARATOR + inits[b] for a, b in pairs],
                "pair_first": (S.PAIR, [inits[a] for a, _ in pairs]),
                "pair_second": (S.PAIR, [inits[b] for _, b in pairs]),
            }
        )
    for m, t in tables.items():
        ds[m] = ((S.INIT, S.LAYER), t[:, 0, 1:].T.copy())
        ds[m].attrs = _attrs(m, "pretrained vs each random init, same layer", _only(reasons[m], inits), keep, bandwidth)
        if pairs:
            rr = np.stack([t[:, a, b] for a, b in pairs])
            ds[m + "_rr"] = ((S.PAIR, S.LAYER), rr)
            names = [inits[a] + PAIR_SEPARATOR + inits[b] for a, b in pairs]
            ds[m + "_rr"].attrs = _attrs(m, "random vs random (reference), same layer",
                                         _only(reasons[m], names + randoms), keep, bandwidth)
    return ds


def _only(reasons: dict[str, dict[str, str]], keys: list[str]) -> dict[str, dict[str, str]]:
    """Reasons whose key is one of ``keys`` (an init or a pair), layer by layer."""
    out = {layer: {k: v for k, v in by.items() if k in keys} for layer, by in reasons.items()}
    return {layer: by for layer, by in out.items() if by}


_LONG_NAMES = {
    "cka_linear": "linear CKA",
    "cka_debiased": "debiased linear CKA",
    "cka_rbf": "RBF CKA",
    "svcca": "SVCCA",
    "pwcca": "PWCCA",
}


def _show(value: Any) -> str:
    """A bandwidth as JSON writes it: "median", 0.5, [0.5, 1.0]."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value) if isinstance(value, int) else repr(float(value))


def _attrs(measure: str, what: str, reasons: dict[str, Any], keep: float, bandwidth: Any) -> dict[str, Any]:
    method = {
        "cka_linear": METHODS["linear"],
        "cka_debiased": METHODS["debiased"],
        "cka_rbf": f"RBF CKA, biased HSIC (Kornblith et al. 2019), bandwidth={_show(bandwidth)} "
        "(median: sigma^2 = median squared distance between distinct images, per network)",
        "svcca": f"SVCCA (Raghu et al. 2017), mean canonical correlation of the top singular "
        f"directions keeping {keep} of the variance, keep={keep}",
        "pwcca": f"PWCCA (Morcos et al. 2018) after SVD truncation keeping {keep} of the variance, keep={keep}",
    }[measure]
    attrs: dict[str, Any] = {"long_name": f"{_LONG_NAMES[measure]}, {what}", "method": method,
                             "nan_reason": reasons}
    if measure in ("svcca", "pwcca"):
        attrs["keep"] = keep
    return attrs

