"""Feature extraction: hooks capture what the network computes, pooling, the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layergain.data import load_image_set
from layergain.errors import DataError, InputValueError
from layergain.features import FeatureCache, extract_features
from layergain.features.extract import feature_key, fold_batch_norms
from layergain.features.images import load_rgb
from layergain.models import load_backbone
from tests.helpers import make_folder_set

SIZE = 96  # small images keep the CPU tests fast; 224 is the default


@pytest.fixture(scope="module")
def small_set():
    return load_image_set(max_per_class=2, seed=0)


@pytest.fixture(scope="module")
def lite0():
    return load_backbone()


def _manual_stem_and_head(backbone, paths):
    """Obvious reference: run the network's modules by hand, NCHW, float32, one image at a time."""
    m = backbone.module
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std).view(1, 3, 1, 1)
    stems, heads = [], []
    with torch.no_grad():
        for p in paths:
            x = torch.from_numpy(load_rgb(p, SIZE)).permute(2, 0, 1)[None].float() / 255
            x = (x - mean) / std
            stem = m.bn1(m.conv_stem(x))
            head = m.bn2(m.conv_head(m.blocks(stem)))
            stems.append(stem.mean((2, 3)))
            heads.append(head.mean((2, 3)))
    return torch.cat(stems).numpy(), torch.cat(heads).numpy()


def test_hooks_capture_every_layer_as_the_network_computes_it(lite0, small_set):
    feats = extract_features(lite0, small_set, image_size=SIZE, batch_size=5).features
    assert list(feats) == [layer.name for layer in lite0.layers]
    for layer in lite0.layers:
        assert feats[layer.name].shape == (len(small_set), layer.width)
        assert feats[layer.name].dtype == np.float32
    stem, head = _manual_stem_and_head(lite0, small_set.paths)
    np.testing.assert_allclose(feats["stem"], stem, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats["head"], head, rtol=1e-3, atol=1e-3)


def test_pooling_variants(lite0, small_set):
    avg = extract_features(lite0, small_set.subset(np.arange(3)), image_size=SIZE, pooling="avg").features
    mx = extract_features(lite0, small_set.subset(np.arange(3)), image_size=SIZE, pooling="max").features
    both = extract_features(lite0, small_set.subset(np.arange(3)), image_size=SIZE, pooling="avgmax").features
    for name in ("stem", "head"):
        np.testing.assert_array_equal(both[name], np.concatenate([avg[name], mx[name]], axis=1))
        assert np.all(mx[name] >= avg[name] - 1e-6)
    with pytest.raises(InputValueError, match="`pooling` must be one of"):
        extract_features(lite0, small_set, pooling="median")


def test_cache_is_reused_for_subsets_and_never_reads_images_again(tmp_path, lite0):
    root = make_folder_set(tmp_path / "set", per_class=2, classes=3)
    full = load_image_set(root)
    cache = FeatureCache(tmp_path / "cache")
    first = extract_features(lite0, full, image_size=SIZE, cache=cache, chunk_size=4).features
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2  # 6 images in chunks of 4
    # Destroy the image files: a cached extraction must not need them.
    for p in full.paths:
        p.write_bytes(b"gone")
    again = extract_features(lite0, full, image_size=SIZE, cache=cache).features
    reordered = extract_features(lite0, full.subset(np.array([5, 0, 3])), image_size=SIZE, cache=cache).features
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        np.testing.assert_array_equal(first[name][[5, 0, 3]], reordered[name])
    # another configuration (image size) is another cache entry and needs the images
    with pytest.raises(DataError, match="cannot decode image"):
        extract_features(lite0, full, image_size=SIZE + 32, cache=cache)


def test_interrupted_extraction_resumes_from_finished_chunks(tmp_path, lite0):
    root = make_folder_set(tmp_path / "set", per_class=2, classes=3)
    full = load_image_set(root)
    cache = FeatureCache(tmp_path / "cache")
    # eager: the network itself runs (the folded engine runs a copy and checks it on a batch first)
    extract_features(lite0, full.subset(np.arange(4)), image_size=SIZE, cache=cache, engine="eager")  # "interrupted" after 4
    calls = []
    handle = lite0.module.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        resumed = extract_features(lite0, full, image_size=SIZE, cache=cache, engine="eager").features
    finally:
        handle.remove()
    assert sum(calls) == 2  # only the two missing images went through the network
    fresh = extract_features(lite0, full, image_size=SIZE, engine="eager").features
    for name in fresh:
        np.testing.assert_allclose(resumed[name], fresh[name], rtol=1e-5, atol=1e-5)


def test_random_twin_features_differ_from_pretrained(lite0, small_set):
    rand = load_backbone(weights=None, seed=0)
    a = extract_features(lite0, small_set.subset(np.arange(2)), image_size=SIZE).features
    b = extract_features(rand, small_set.subset(np.arange(2)), image_size=SIZE).features
    assert not np.allclose(a["blocks.3.0"], b["blocks.3.0"])


def test_traced_engine_agrees_with_eager_and_has_its_own_cache_entry(tmp_path, lite0, small_set):
    subset = small_set.subset(np.arange(6))
    cache = FeatureCache(tmp_path / "cache")
    run = extract_features(lite0, subset, image_size=SIZE, cache=cache, engine="eager")
    assert run.engine == "eager" and run.key == feature_key(lite0, image_size=SIZE, pooling="avg", engine="eager")
    eager = run.features
    run = extract_features(lite0, subset, image_size=SIZE, cache=cache, engine="traced")
    assert run.engine == "traced" and run.key == feature_key(lite0, image_size=SIZE, pooling="avg", engine="traced")
    traced = run.features
    again = extract_features(lite0, subset, image_size=SIZE, cache=cache, engine="traced")  # from the cache
    assert (again.engine, again.key) == (run.engine, run.key)
    for name in eager:  # batch norms folded into convolutions: equal up to float32 rounding
        np.testing.assert_allclose(traced[name], eager[name], rtol=1e-3, atol=1e-3 * np.abs(eager[name]).max())
    assert len([p for p in (tmp_path / "cache").rglob("config.json")]) == 2
    with pytest.raises(InputValueError, match="`engine` must be one of"):
        extract_features(lite0, subset, engine="compiled")


@pytest.mark.parametrize("seed", [None, 0])
def test_folded_engine_equals_eager_up_to_rounding(tmp_path, small_set, seed):
    """Batch norms folded into convolutions (the default engine): every probe layer equals the
    eager network's to float32 rounding, for the ImageNet weights and a random twin; all 49 batch
    norms of Lite0 are folded; the original network is left as it was."""
    backbone = load_backbone(weights="pretrained" if seed is None else None, seed=seed)
    subset = small_set.subset(np.arange(6))
    cache = FeatureCache(tmp_path / "cache")
    eager = extract_features(backbone, subset, image_size=SIZE, cache=cache, engine="eager").features
    run = extract_features(backbone, subset, image_size=SIZE, cache=cache)
    assert run.engine == "folded"
    folded = run.features
    for name in eager:
        scale = np.abs(eager[name]).max()
        np.testing.assert_allclose(folded[name], eager[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
        assert not np.array_equal(folded[name], eager[name]) or name == "stem"  # really another computation
    assert len(list((tmp_path / "cache").rglob("config.json"))) == 2  # its own cache entry
    example = torch.randn(2, 3, SIZE, SIZE)
    net = fold_batch_norms(backbone.module.eval(), example)
    batch_norms = [m for m in backbone.module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(batch_norms) == 49
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


class _ConvUsedTwice(torch.nn.Module):
    """conv -> bn, and the conv's output also added to the result: folding would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_folding_is_checked_against_the_network():
    """A convolution whose output is used twice is folded by the hook-based pairing (hooks cannot
    see the sum), so its output changes: the reason the engine compares before it trusts a fold."""
    torch.manual_seed(0)
    net = _ConvUsedTwice().eval()
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batch_norms(net, x)
    with torch.no_grad():
        assert not torch.allclose(folded(x), net(x), atol=1e-3)


def test_model_without_batch_norms_runs_eagerly(small_set):
    """SqueezeNet has no batch norms: nothing to fold, the folded engine falls back to eager."""
    backbone = load_backbone("squeezenet1_0", weights=None, seed=0)
    subset = small_set.subset(np.arange(2))
    run = extract_features(backbone, subset, image_size=SIZE)
    assert run.engine == "eager" and run.key == feature_key(backbone, image_size=SIZE, pooling="avg", engine="eager")
    feats = run.features
    assert fold_batch_norms(backbone.module.eval(), torch.randn(1, 3, SIZE, SIZE)) is None
    eager = extract_features(backbone, subset, image_size=SIZE, engine="eager").features
    for name in feats:
        np.testing.assert_array_equal(feats[name], eager[name])
