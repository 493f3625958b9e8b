"""Readouts: each against a slow, obvious implementation (loops) on a small feature map; several
readouts from one forward pass, each cached under its own key; transformers read as timm reads them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from layergain.data import load_image_set
from layergain.errors import InputValueError, ModelError
from layergain.features import FeatureCache, LayerReader, extract_features, read
from layergain.features.extract import feature_config, feature_key
from layergain.features.images import load_rgb
from layergain.features.readouts import cov_projection
from layergain.models import ProbeLayer, load_backbone

SIZE = 64
VIT = {"img_size": 32, "patch_size": 8, "depth": 2}
SWIN = {"img_size": 64, "embed_dim": 32, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 2, 4], "window_size": 2}


def _layer(layout: str, channels: int, prefix: int = 0) -> ProbeLayer:
    return ProbeLayer(
        "l", "m", 0, 1.0, channels, 0, layout=layout, channels=channels, prefix_tokens=prefix, class_token=prefix > 0,
        readout="cls" if layout == "tokens" else "avg",
    )


@pytest.fixture
def fmap(seed):
    """A small feature map (n=3, C=6, H=5, W=4) with negative values, float64 for the references."""
    return torch.from_numpy(np.random.default_rng(seed).normal(0.3, 1.0, size=(3, 6, 5, 4)))


# --- slow, obvious references: loops over images, channels and positions -------------------------

def _positions(x):  # list per image of the (C,) vectors at each position, row by row
    n, _, h, w = x.shape
    return [[x[i, :, a, b] for a in range(h) for b in range(w)] for i in range(n)]


def slow_avg(x):
    return np.array([[np.mean([x[i, c, a, b] for a in range(x.shape[2]) for b in range(x.shape[3])]) for c in range(x.shape[1])] for i in range(x.shape[0])])


def slow_max(x):
    return np.array([[max(x[i, c, a, b] for a in range(x.shape[2]) for b in range(x.shape[3])) for c in range(x.shape[1])] for i in range(x.shape[0])])


def slow_gem(x, p=3, eps=1e-6):
    n, c, h, w = x.shape
    return np.array([[np.mean([max(x[i, k, a, b], eps) ** p for a in range(h) for b in range(w)]) ** (1 / p) for k in range(c)] for i in range(n)])


def slow_grid(x, k=2):
    n, c, h, w = x.shape
    out = np.zeros((n, k * k * c))
    for i in range(n):
        col = 0
        for ci, cj in itertools.product(range(k), range(k)):  # cells row by row
            rows = range(math.floor(ci * h / k), math.ceil((ci + 1) * h / k))
            cols = range(math.floor(cj * w / k), math.ceil((cj + 1) * w / k))
            for ch in range(c):
                out[i, col] = np.mean([x[i, ch, a, b] for a in rows for b in cols])
                col += 1
    return out


def slow_cov(x, dims=64):
    c = x.shape[1]
    proj = cov_projection(c, dims) if c > dims else np.eye(c)
    out = []
    for vectors in _positions(x):
        z = [proj.T @ v for v in vectors]
        mean = sum(z) / len(z)
        d = len(mean)
        cov = np.zeros((d, d))
        for zp in z:
            for a in range(d):
                for b in range(d):
                    cov[a, b] += (zp[a] - mean[a]) * (zp[b] - mean[b])
        cov /= len(z) - 1
        out.append([cov[a, b] for a in range(d) for b in range(a, d)])
    return np.array(out)


SLOW = {
    "avg": slow_avg,
    "max": slow_max,
    "avgmax": lambda x: np.concatenate([slow_avg(x), slow_max(x)], axis=1),
    "gem": slow_gem,
    "gem:1": lambda x: slow_gem(x, p=1),
    "grid": slow_grid,
    "grid:3": lambda x: slow_grid(x, 3),
    "grid:4": lambda x: slow_grid(x, 4),
    "cov": slow_cov,
    "cov:4": lambda x: slow_cov(x, 4),
}


@pytest.mark.parametrize("readout", list(SLOW))
def test_map_readouts_equal_the_slow_implementation_channels_first_and_last(fmap, readout):
    expected = SLOW[readout](fmap.numpy())
    layer = _layer("nchw", 6)
    assert expected.shape == (3, layer.width_for(readout))
    fast = read(fmap.float(), layer, readout).numpy()
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)
    last = read(fmap.float().permute(0, 2, 3, 1), _layer("nhwc", 6), readout).numpy()  # (n, H, W, C)
    np.testing.assert_allclose(last, fast, rtol=1e-6, atol=1e-6)
    channels_last_strides = read(fmap.float().contiguous(memory_format=torch.channels_last), layer, readout).numpy()
    np.testing.assert_allclose(channels_last_strides, fast, rtol=1e-6, atol=1e-6)


def test_avg_is_the_mean_as_before_readouts_existed_bit_for_bit(fmap):
    x = fmap.float()
    assert torch.equal(read(x, _layer("nchw", 6), "avg"), x.mean(dim=(2, 3), dtype=torch.float32))
    assert torch.equal(read(x, _layer("nchw", 6), "max"), x.amax(dim=(2, 3)))


def test_gem_reads_the_positive_part_and_lies_between_avg_and_max(fmap):
    x = fmap.float()
    layer = _layer("nchw", 6)
    gem = read(x, layer, "gem")
    clamped = x.clamp(min=1e-6)
    assert torch.all(gem >= read(clamped, layer, "avg") - 1e-6) and torch.all(gem <= read(clamped, layer, "max") + 1e-6)
    assert torch.equal(read(x, layer, "gem"), read(clamped, layer, "gem"))  # negatives count as eps


def test_cov_projection_is_fixed_orthonormal_and_keeps_the_projected_covariance(fmap):
    p = cov_projection(6, 4)
    np.testing.assert_allclose(p.T @ p, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(p, cov_projection(6, 4))  # the same on every call and run
    assert not np.allclose(cov_projection(7, 4)[:6], p)  # another width, another draw
    # cov:4 of a 6-channel map is the covariance of the map projected by p
    projected = torch.einsum("nchw,cd->ndhw", fmap, torch.from_numpy(p))
    np.testing.assert_allclose(read(fmap.float(), _layer("nchw", 6), "cov:4"), read(projected.float(), _layer("nchw", 4), "cov"), atol=1e-5)
    # a layer at most m wide is not projected: its full covariance (np.cov over positions)
    full = np.stack([np.cov(fmap[i].reshape(6, -1).numpy())[np.triu_indices(6)] for i in range(3)])
    np.testing.assert_allclose(read(fmap.float(), _layer("nchw", 6), "cov"), full, atol=1e-5)


def test_token_readouts_equal_loops_over_tokens(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 3 + 9, 5))  # 3 prefix tokens (class + 2 registers), 9 patch tokens
    layer = _layer("tokens", 5, prefix=3)
    cls = np.array([x[i, 0] for i in range(2)])
    mean = np.array([[np.mean([x[i, t, d] for t in range(3, 12)]) for d in range(5)] for i in range(2)])
    t = torch.from_numpy(x).float()
    np.testing.assert_allclose(read(t, layer, "cls"), cls, rtol=1e-6)
    np.testing.assert_allclose(read(t, layer, "mean"), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(read(t, layer, "cls+mean"), np.concatenate([cls, mean], 1), rtol=1e-5, atol=1e-6)


def test_readouts_of_a_pooled_vector():
    x = torch.arange(6.0).view(2, 3)
    layer = _layer("vector", 3)
    assert torch.equal(read(x, layer, "avg"), x) and torch.equal(read(x, layer, "max"), x)
    assert torch.equal(read(x, layer, "avgmax"), torch.cat([x, x], 1))
    with pytest.raises(InputValueError, match=r"readout 'cov' does not apply .*a vector \(n, 3\): use avg, max or avgmax"):
        read(x, layer, "cov")


def test_readout_errors_name_the_layer_and_what_applies():
    small = torch.zeros(1, 6, 1, 3)
    with pytest.raises(InputValueError, match=r"readout 'grid' cuts a map into 2x2 cells, and layer 'l' is 1x3"):
        read(small, _layer("nchw", 6), "grid")
    with pytest.raises(InputValueError, match=r"readout 'cov' is a covariance over spatial positions, and layer 'l' has 1x1"):
        read(torch.zeros(1, 6, 1, 1), _layer("nchw", 6), "cov")
    no_class = _layer("tokens", 4, prefix=0)
    with pytest.raises(InputValueError, match=r"readout 'cls' needs a class token, and layer 'l' .*has none; use readout 'mean'"):
        read(torch.zeros(1, 9, 4), no_class, "cls")
    with pytest.raises(ModelError, match=r"module 'm' \(layer 'l'\) gave a tensor of shape \(1, 5, 2, 2\), not the nchw output with 6 channels"):
        LayerReader(_layer("nchw", 6), ["avg"])(torch.zeros(1, 5, 2, 2))


# --- real networks ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images():
    return load_image_set(max_per_class=1, seed=0).subset(np.arange(4))


@pytest.fixture(scope="module")
def lite0_random():
    return load_backbone(weights=None, seed=0)


@pytest.fixture(scope="module")
def vit():
    return load_backbone("timm:vit_tiny_patch16_224", weights=None, seed=0, model_kwargs=VIT)


def _inputs(backbone, image_set, size):
    """The images as extract_features normalises them (uint8 * 255-scaled mean and std)."""
    x = torch.stack([torch.from_numpy(load_rgb(p, size)).permute(2, 0, 1) for p in image_set.paths]).float()
    return (x - torch.tensor(backbone.mean).view(1, 3, 1, 1) * 255) / (torch.tensor(backbone.std).view(1, 3, 1, 1) * 255)


def test_deepest_cls_after_the_final_norm_is_timms_pre_logits(vit, images):
    run = extract_features(vit, images, readouts=["cls", "mean", "cls+mean"])
    assert run.readouts == ("cls", "mean", "cls+mean") and vit.layers[-1].name == "norm"
    x = _inputs(vit, images, 32)
    with torch.inference_mode():
        tokens = vit.module.forward_features(x)
        pre_logits = vit.module.forward_head(tokens, pre_logits=True)
        patch_mean = vit.module.pool(tokens, pool_type="avg")  # timm's own mean: prefix tokens excluded
    np.testing.assert_allclose(run.by_readout["cls"]["norm"], pre_logits.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run.by_readout["mean"]["norm"], patch_mean.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        run.by_readout["cls+mean"]["norm"], np.concatenate([run.by_readout["cls"]["norm"], run.by_readout["mean"]["norm"]], 1)
    )
    for layer in vit.layers:
        for r in run.readouts:
            assert run.by_readout[r][layer.name].shape == (4, layer.width_for(r))
    assert run.features is run.by_readout["cls"]  # the first readout


def test_register_tokens_are_excluded_from_the_patch_mean(images):
    b = load_backbone("timm:vit_small_patch14_reg4_dinov2", weights=None, seed=0, model_kwargs={"img_size": 28, "depth": 1, "embed_dim": 64, "num_heads": 2})
    run = extract_features(b, images, readouts="mean")
    with torch.inference_mode():
        tokens = b.module.forward_features(_inputs(b, images, 28))
    assert tokens.shape[1] == 5 + 4  # class + 4 registers, 2x2 patches
    np.testing.assert_allclose(run.features["norm"], tokens[:, 5:].mean(1).numpy(), rtol=1e-5, atol=1e-5)


def test_swin_is_pooled_over_its_spatial_axes(images):
    b = load_backbone("timm:swin_tiny_patch4_window7_224", weights=None, seed=0, model_kwargs=SWIN)
    run = extract_features(b, images, readouts=["avg", "grid", "cov"])
    with torch.inference_mode():
        pre_logits = b.module.forward_head(b.module.forward_features(_inputs(b, images, SIZE)), pre_logits=True)
    np.testing.assert_allclose(run.by_readout["avg"]["norm"], pre_logits.numpy(), rtol=1e-5, atol=1e-5)
    for layer in b.layers:
        assert run.by_readout["avg"][layer.name].shape == (4, layer.channels)
        assert run.by_readout["grid"][layer.name].shape == (4, 4 * layer.channels)


def test_several_readouts_come_from_one_forward_pass(tmp_path, images, lite0_random):
    backbone = lite0_random
    calls: list[int] = []
    handle = backbone.module.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    readouts = ["avg", "max", "avgmax", "gem", "grid", "cov"]
    cache = FeatureCache(tmp_path / "cache")
    try:
        run = extract_features(backbone, images, image_size=SIZE, readouts=readouts, engine="eager", cache=cache)
        assert sum(calls) == len(images)  # every image through the network once, for all six readouts
        calls.clear()
        again = extract_features(backbone, images, image_size=SIZE, readouts=["cov", "avg"], engine="eager", cache=cache)
        assert sum(calls) == 0  # both from the cache
        single = extract_features(backbone, images, image_size=SIZE, readouts="gem", engine="eager")
    finally:
        handle.remove()
    assert run.readouts == tuple(readouts) and again.readouts == ("cov", "avg")
    assert len(set(run.keys.values())) == 6 and run.key == run.keys["avg"]
    assert sorted(p.parent.name for p in (tmp_path / "cache").rglob("config.json")) == sorted(run.keys.values())
    for name in run.features:
        np.testing.assert_array_equal(again.by_readout["cov"][name], run.by_readout["cov"][name])
        np.testing.assert_array_equal(single.features[name], run.by_readout["gem"][name])
    layer = backbone.layers[-1]  # head: 1280 channels, projected to 64 dims for cov
    assert run.by_readout["cov"][layer.name].shape == (4, 2080) == (4, layer.width_for("cov"))


def test_a_new_readout_runs_only_the_images_it_lacks(tmp_path, images, lite0_random):
    backbone = lite0_random
    cache = FeatureCache(tmp_path / "cache")
    extract_features(backbone, images.subset(np.arange(2)), image_size=SIZE, readouts="avg", engine="eager", cache=cache)
    calls: list[int] = []
    handle = backbone.module.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        run = extract_features(backbone, images, image_size=SIZE, readouts=["avg", "max"], engine="eager", cache=cache)
    finally:
        handle.remove()
    assert sum(calls) == 4  # max lacked every image; avg lacked two
    fresh = extract_features(backbone, images, image_size=SIZE, readouts=["avg", "max"], engine="eager")
    for r in ("avg", "max"):
        for name in fresh.features:
            np.testing.assert_array_equal(run.by_readout[r][name], fresh.by_readout[r][name])


def test_the_readout_is_in_the_cache_key_and_old_keys_stay():
    lite0 = load_backbone()
    keys = {r: feature_key(lite0, image_size=96, readout=r) for r in ("avg", "max", "avgmax", "gem", "gem:4", "grid", "grid:3", "cov", "cov:32")}
    assert len(set(keys.values())) == len(keys)
    assert feature_key(lite0, image_size=96, readout="grid:2") == keys["grid"]
    assert feature_key(lite0, image_size=96, pooling="max") == keys["max"]  # the older parameter name
    # The key of Lite0's ImageNet features read with avg at 96 px, as computed before readouts existed
    # (commit d2b89c3: feature_key(load_backbone(), image_size=96, pooling="avg", engine="eager")).
    assert keys["avg"] == "e04fe5d359355416f520de180fb43449"
    assert "readout" not in feature_config(lite0, image_size=96, readout="avg")
    assert feature_config(lite0, image_size=96, readout="cov")["readout"]["dims"] == 64


def test_channels_last_and_token_models_get_keys_unlike_the_misread_ones(vit):
    config = feature_config(vit, readout="cls")
    assert config["layouts"] == [["tokens", 1]] * 3 and config["image_size"] == 32


def test_extraction_errors(vit, images, lite0_random):
    with pytest.raises(InputValueError, match=r"readout 'avg' does not apply to layer 'blocks.0'"):
        extract_features(vit, images, pooling="avg")
    with pytest.raises(InputValueError, match=r"`image_size` is 224, and timm:vit_tiny_patch16_224 only takes 32x32 images"):
        extract_features(vit, images, image_size=224)
    with pytest.raises(InputValueError, match="pass either `readouts` or `pooling`, not both"):
        extract_features(vit, images, readouts=["cls"], pooling="cls")
    with pytest.raises(InputValueError, match=r"`readouts` must be one of .*got 'median'"):
        extract_features(vit, images, readouts=["cls", "median"])
    with pytest.raises(InputValueError, match=r"readout 'grid:4' cuts a map into 4x4 cells, and layer 'blocks.5.0' is 2x2"):
        extract_features(lite0_random, images, image_size=64, readouts=["avg", "grid:4"])


def test_traced_engine_reads_tokens_as_eager_does(vit, images):
    eager = extract_features(vit, images, readouts=["cls", "mean"], engine="eager")
    traced = extract_features(vit, images, readouts=["cls", "mean"], engine="traced")
    assert traced.engine == "traced" and traced.keys != eager.keys
    for r in eager.readouts:
        for name in eager.features:
            np.testing.assert_allclose(traced.by_readout[r][name], eager.by_readout[r][name], rtol=1e-4, atol=1e-4)
