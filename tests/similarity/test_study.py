"""layer_similarity and study_similarity: the values of the pairwise functions, labelled, NaN with reasons,
netCDF-safe."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from layergain import schema as S
from layergain.errors import InputTypeError, InputValueError
from layergain.results.io import decode_attr, load_results, save_results
from layergain.similarity import (
    MEASURES,
    cka_matrix,
    debiased_cka,
    layer_similarity,
    linear_cka,
    pwcca,
    rbf_cka,
    study,
    study_similarity,
    svcca,
)

WIDTHS = [4, 6, 12, 30]
LAYERS = [f"block{i}" for i in range(len(WIDTHS))]


def _features(rng: np.random.Generator, n: int, seeds: int = 3, dtype=np.float64) -> dict[str, dict[str, np.ndarray]]:
    base = {layer: rng.standard_normal((n, w)) for layer, w in zip(LAYERS, WIDTHS)}
    out = {S.PRETRAINED: base}
    for s in range(seeds):
        out[S.random_init_name(s)] = {
            layer: b @ rng.standard_normal((w, w)) * 0.5 + rng.standard_normal((n, w)) for (layer, b), w in zip(base.items(), WIDTHS)
        }
    return {i: {k: v.astype(dtype) for k, v in f.items()} for i, f in out.items()}


FUNCTIONS = {
    "cka_linear": linear_cka,
    "cka_debiased": debiased_cka,
    "cka_rbf": rbf_cka,
    "svcca": svcca,
    "pwcca": pwcca,
}


def test_values_equal_the_pairwise_functions(seed: int) -> None:
    feats = _features(np.random.default_rng(seed), 120)
    ds = layer_similarity(feats)
    randoms = [S.random_init_name(s) for s in range(3)]
    assert list(ds[S.INIT].values) == randoms and list(ds[S.LAYER].values) == LAYERS
    assert list(ds[S.PAIR].values) == ["random-0|random-1", "random-0|random-2", "random-1|random-2"]
    assert list(ds["pair_first"].values) == ["random-0", "random-0", "random-1"]
    for name, fn in FUNCTIONS.items():
        assert ds[name].dims == (S.INIT, S.LAYER) and ds[name + "_rr"].dims == (S.PAIR, S.LAYER)
        for layer in LAYERS:
            for init in randoms:
                got = float(ds[name].sel({S.INIT: init, S.LAYER: layer}))
                assert got == pytest.approx(fn(feats[S.PRETRAINED][layer], feats[init][layer]), rel=1e-8), (name, init, layer)
            got = float(ds[name + "_rr"].sel({S.PAIR: "random-0|random-2", S.LAYER: layer}))
            assert got == pytest.approx(fn(feats["random-0"][layer], feats["random-2"][layer]), rel=1e-8)


def test_float32_features(seed: int) -> None:
    feats = _features(np.random.default_rng(seed), 150)
    ds64 = layer_similarity(feats)
    ds32 = layer_similarity({i: {k: v.astype(np.float32) for k, v in f.items()} for i, f in feats.items()})
    for name in MEASURES:
        np.testing.assert_allclose(ds32[name].values, ds64[name].values, atol=2e-4)


def test_nan_with_reasons_never_aborts(seed: int) -> None:
    """Too few images for SVCCA at the wide layer, NaN features in one init: NaN plus a reason."""
    feats = _features(np.random.default_rng(seed), 40)
    feats["random-1"]["block1"][3, 2] = np.nan
    ds = layer_similarity(feats, keep=0.999)
    why = ds["svcca"].attrs["nan_reason"]
    assert np.isnan(ds["svcca"].sel({S.LAYER: "block3"})).all()
    assert "n_images - 1 = 39 is less than" in why["block3"]["random-0"]
    assert np.isnan(ds["cka_linear"].sel({S.INIT: "random-1", S.LAYER: "block1"}))
    assert not np.isnan(ds["cka_linear"].sel({S.INIT: "random-0", S.LAYER: "block1"}))
    assert "NaN or infinite" in ds["cka_linear"].attrs["nan_reason"]["block1"]["random-1"]
    rr_why = ds["cka_linear_rr"].attrs["nan_reason"]["block1"]
    assert "random-1" in rr_why
    assert np.isnan(ds["cka_linear_rr"].sel({S.PAIR: "random-0|random-1", S.LAYER: "block1"}))
    assert not np.isnan(ds["cka_linear_rr"].sel({S.PAIR: "random-0|random-2", S.LAYER: "block1"}))


def test_pretrained_layer_invalid() -> None:
    feats = _features(np.random.default_rng(0), 30)
    feats[S.PRETRAINED]["block0"][:] = 1.0
    ds = layer_similarity(feats, measures=("cka_linear",))
    assert np.isnan(ds["cka_linear"].sel({S.LAYER: "block0"})).all()
    assert "constant across images" in ds["cka_linear"].attrs["nan_reason"]["block0"][S.PRETRAINED]


def test_netcdf_round_trip(tmp_path, seed: int) -> None:
    """Attrs are Python values; save_results writes them (dicts as JSON), decode_attr reads them back."""
    feats = _features(np.random.default_rng(seed), 50)
    feats["random-0"]["block1"][0, 0] = np.nan  # a nan_reason to carry
    ds = layer_similarity(feats)
    back = load_results(save_results(ds, tmp_path / "similarity.nc"))
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    for name in ds.variables:
        assert {k: decode_attr(v) for k, v in back[name].attrs.items()} == ds[name].attrs, name
    assert {k: decode_attr(v) for k, v in back.attrs.items()} == ds.attrs
    assert "NaN or infinite" in ds["cka_linear"].attrs["nan_reason"]["block1"]["random-0"]
    assert back["svcca"].attrs["keep"] == 0.99
    assert "SVCCA (Raghu et al. 2017)" in back["svcca"].attrs["method"]


def test_one_random_init_has_no_references() -> None:
    ds = layer_similarity(_features(np.random.default_rng(0), 40, seeds=1), measures=("cka_debiased",))
    assert "cka_debiased_rr" not in ds and S.PAIR not in ds.dims
    assert ds["cka_debiased"].shape == (1, len(LAYERS))


def test_selected_measures_and_progress() -> None:
    calls = []
    ds = layer_similarity(
        _features(np.random.default_rng(0), 40), measures=("svcca",), progress=lambda *a: calls.append(a)
    )
    assert set(ds.data_vars) == {"svcca", "svcca_rr"}
    assert [c[:2] for c in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert ds.attrs["similarity_measures"] == ["svcca"]


def test_torch_features() -> None:
    torch = pytest.importorskip("torch")
    feats = _features(np.random.default_rng(0), 40)
    as_torch = {i: {k: torch.from_numpy(v) for k, v in f.items()} for i, f in feats.items()}
    xr.testing.assert_allclose(layer_similarity(as_torch), layer_similarity(feats))


def test_errors() -> None:
    feats = _features(np.random.default_rng(0), 20)
    with pytest.raises(InputValueError, match="no pretrained network 'pretrained'.*`pretrained=`"):
        layer_similarity({k: v for k, v in feats.items() if k != S.PRETRAINED})
    with pytest.raises(InputValueError, match="at least one random init"):
        layer_similarity({S.PRETRAINED: feats[S.PRETRAINED]})
    with pytest.raises(InputValueError, match="same layers in the same order"):
        layer_similarity({S.PRETRAINED: feats[S.PRETRAINED], "random-0": dict(reversed(feats["random-0"].items()))})
    short = {k: dict(v) for k, v in feats.items()}
    short["random-2"]["block2"] = short["random-2"]["block2"][:-1]
    with pytest.raises(InputValueError, match="same images, got image counts"):
        layer_similarity(short)
    with pytest.raises(InputValueError, match="`measures` must be a non-empty selection"):
        layer_similarity(feats, measures=("cka",))
    with pytest.raises(InputValueError, match="`measures` must be a non-empty selection.*got \\['cka_matrix'\\]"):
        layer_similarity(feats, measures=("cka_matrix",))  # the cross-layer matrices: cka_matrix, study_similarity
    with pytest.raises(InputTypeError, match="`features` must be a mapping init name"):
        layer_similarity([feats])
    with pytest.raises(InputValueError, match=r"`keep` must lie in \(0, 1\]"):
        layer_similarity(feats, keep=2.0)
    with pytest.raises(InputValueError, match="`bandwidth` must be positive"):
        layer_similarity(feats, bandwidth=0.0)


class _MemoryStore:
    """The part of a FeatureStore that study_similarity reads, over arrays in memory."""

    def __init__(self, feats: dict[str, dict[str, np.ndarray]]) -> None:
        self.feats = feats
        self.layers = tuple(LAYERS)
        self.sha256 = tuple(str(i) for i in range(len(feats[S.PRETRAINED][LAYERS[0]])))

    def layer(self, init: str, layer: str) -> np.ndarray:
        return self.feats[init][layer]

    def rows(self, init: str, index: np.ndarray) -> dict[str, np.ndarray]:
        return {layer: self.feats[init][layer][index] for layer in self.layers}

    def blocks(self, size: int) -> list[np.ndarray]:
        n = len(self.sha256)
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]


def test_study_similarity_per_layer_and_streamed_matrices(monkeypatch, seed: int) -> None:
    """Per layer as layer_similarity on all layers at once; matrices streamed in blocks as cka_matrix."""
    monkeypatch.setattr(study, "SIMILARITY_BLOCK", 16)  # 40 images: 3 blocks
    feats = _features(np.random.default_rng(seed), 40)  # too few for SVCCA at block3: NaN with a reason
    inits = [S.PRETRAINED, "random-0", "random-1", "random-2"]
    logged = []
    ds = study_similarity(_MemoryStore(feats), inits, log=logged.append)
    assert logged == ["similarity: done"]
    whole = layer_similarity(feats)
    for name in whole.data_vars:
        xr.testing.assert_allclose(ds[name], whole[name])
        assert ds[name].attrs["nan_reason"] == whole[name].attrs["nan_reason"]
    assert "n_images - 1 = 39 is less than" in ds["svcca"].attrs["nan_reason"]["block3"]["random-0"]
    for name, kind in (("cka_matrix", "linear"), ("cka_debiased_matrix", "debiased")):
        assert ds[name].dims == (S.INIT, S.LAYER_PRETRAINED, S.LAYER_OTHER)
        assert ds[name].attrs["streaming_block"] == 16
        assert ds[name].attrs["nan_reason"] == {}
        for init in inits[1:]:
            expected = cka_matrix(feats[S.PRETRAINED], feats[init], kind=kind).values
            np.testing.assert_allclose(ds[name].sel({S.INIT: init}).values, expected, rtol=1e-9)


def test_study_similarity_one_layer_per_process_is_the_serial_run(monkeypatch) -> None:
    """n_jobs=2: every layer on joblib's processes, the same numbers and reasons; and one job
    where two layers' RBF kernels would not fit in half the available memory."""
    feats = _features(np.random.default_rng(5), 40)
    inits = list(feats)
    serial = study_similarity(_MemoryStore(feats), inits)
    xr.testing.assert_identical(study_similarity(_MemoryStore(feats), inits, n_jobs=2), serial)
    asked = []
    monkeypatch.setattr(study, "in_order", lambda fn, units, jobs: (asked.append(jobs), map(fn, units))[1])
    monkeypatch.setattr(study, "jobs_within_memory", lambda jobs, size: 1 if size > 100_000 else jobs)
    study_similarity(_MemoryStore(feats), inits, n_jobs=2)  # 4 kernels of 40 x 40 float64: 51 200 bytes
    monkeypatch.setattr(study, "RBF_MAX_IMAGES", 30)  # no RBF kernels at all
    study_similarity(_MemoryStore(feats), inits, n_jobs=2)
    monkeypatch.setattr(study, "RBF_MAX_IMAGES", 10_000)
    monkeypatch.setattr(study, "jobs_within_memory", lambda jobs, size: 1 if size > 50_000 else jobs)
    study_similarity(_MemoryStore(feats), inits, n_jobs=2)
    assert asked == [2, 2, 1]


def test_wide_layers_take_the_matrices_from_memory(monkeypatch, seed: int) -> None:
    """Where the streamed products would be large (wide readouts: `cov` of Lite0 is ~28 000 units,
    31 GB for 5 random inits), the matrices come from the layers in memory: the same values."""
    feats = _features(np.random.default_rng(seed), 40)
    inits = [S.PRETRAINED, "random-0", "random-1", "random-2"]
    streamed = study_similarity(_MemoryStore(feats), inits)
    monkeypatch.setattr(study, "STREAM_BYTES", 0)
    in_memory = study_similarity(_MemoryStore(feats), inits)
    for name in ("cka_matrix", "cka_debiased_matrix"):
        assert streamed[name].attrs["streaming_block"] > 0 and in_memory[name].attrs["streaming_block"] == 0
        np.testing.assert_allclose(in_memory[name].values, streamed[name].values, rtol=1e-9)
        assert in_memory[name].dims == streamed[name].dims and in_memory[name].attrs["nan_reason"] == {}


def test_study_similarity_many_images(monkeypatch) -> None:
    """Above RBF_MAX_IMAGES, RBF CKA (an N x N kernel per network) is NaN with its reason."""
    monkeypatch.setattr(study, "RBF_MAX_IMAGES", 30)
    feats = _features(np.random.default_rng(0), 40)
    ds = study_similarity(_MemoryStore(feats), list(feats))
    for name in ("cka_rbf", "cka_rbf_rr"):
        assert np.isnan(ds[name]).all()
        assert "not computed above 30 images" in ds[name].attrs["nan_reason"]["all layers"]
    assert np.isfinite(ds["cka_linear"].sel({S.LAYER: "block1"})).all()
