"""Probe layers of transformers, channels-last and convolutional models (timm and torchvision, random
weights, tiny configurations): default lists, layouts, widths per readout, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from layergain.errors import InputValueError, ModelError
from layergain.models import load_backbone, probe_layers

# Tiny configurations of real timm architectures (random weights; timm's own constructor kwargs).
VIT = {"img_size": 32, "patch_size": 8, "depth": 2}  # vit_tiny: embed_dim 192, 16 patches
SWIN = {"img_size": 64, "embed_dim": 32, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 2, 4], "window_size": 2}


@pytest.fixture(scope="module")
def vit():
    return load_backbone("timm:vit_tiny_patch16_224", weights=None, seed=0, model_kwargs=VIT)


@pytest.fixture(scope="module")
def swin():
    return load_backbone("timm:swin_tiny_patch4_window7_224", weights=None, seed=0, model_kwargs=SWIN)


def test_vit_layers_are_every_block_and_the_final_norm_read_as_tokens(vit):
    layers = vit.layers
    assert [layer.name for layer in layers] == ["blocks.0", "blocks.1", "norm"]
    assert vit.input_size == 32 and vit.default_readout == "cls"
    for layer in layers:
        assert (layer.layout, layer.prefix_tokens, layer.class_token, layer.readout) == ("tokens", 1, True, "cls")
        # the width is the embedding dimension, not the 17 tokens
        assert layer.width == layer.channels == vit.module.embed_dim == 192
        assert layer.width_for("cls") == layer.width_for("mean") == 192 and layer.width_for("cls+mean") == 384
    # the class token and the position embedding are used from the start: counted at every layer
    m = vit.module
    first = sum(p.numel() for p in [*m.patch_embed.parameters(), m.cls_token, m.pos_embed, *m.blocks[0].parameters()])
    assert layers[0].params_to_layer == first
    assert layers[-1].params_to_layer == sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in m.head.parameters())


def test_cnn_readouts_do_not_apply_to_tokens_and_token_readouts_not_to_maps(vit):
    with pytest.raises(InputValueError, match=r"readout 'avg' does not apply to layer 'blocks.0' .*token sequence \(n, tokens, 192\): use cls, mean or cls\+mean"):
        vit.layers[0].width_for("avg")
    cnn = load_backbone("resnet18", weights=None, seed=0)
    with pytest.raises(InputValueError, match=r"readout 'cls' does not apply to layer 'stem' .*feature map \(nchw, 64 channels\)"):
        cnn.layers[0].width_for("cls")


@pytest.mark.parametrize(
    ("arch", "kwargs", "prefix", "readout", "last"),
    [
        ("deit_tiny_distilled_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 1}, 2, "cls", "norm"),
        ("vit_small_patch14_reg4_dinov2", {"img_size": 28, "depth": 1, "embed_dim": 64, "num_heads": 2}, 5, "cls", "norm"),
        # BEiT and EVA pool the patch tokens and normalise after pooling (fc_norm): no final norm layer
        ("beit_base_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 64, "num_heads": 2}, 1, "mean", "blocks.0"),
        ("eva02_tiny_patch14_224", {"img_size": 28, "depth": 1}, 1, "mean", "blocks.0"),
    ],
)
def test_transformer_families(arch, kwargs, prefix, readout, last):
    b = load_backbone(f"timm:{arch}", weights=None, seed=0, model_kwargs=kwargs)
    assert b.layers[-1].name == last and b.default_readout == readout
    for layer in b.layers:
        assert layer.layout == "tokens" and layer.prefix_tokens == prefix == b.module.num_prefix_tokens
        assert layer.width == b.module.embed_dim


def test_swin_stages_keep_channels_last_and_their_width_is_the_channel_count(swin):
    layers = swin.layers
    assert [layer.name for layer in layers] == [
        "patch_embed", "layers.0.blocks.0", "layers.1.blocks.0", "layers.2.blocks.0", "layers.2.blocks.1",
        "layers.3.blocks.0", "norm",
    ]
    stage_channels = [f["num_chs"] for f in swin.module.feature_info]
    assert stage_channels == [32, 64, 128, 256]
    expected = [32, 32, 64, 128, 128, 256, 256]  # not the spatial sizes 16, 16, 8, 4, 4, 2, 2
    assert [layer.width for layer in layers] == expected
    assert all(layer.layout == "nhwc" and layer.readout == "avg" for layer in layers)
    assert layers[1].width_for("grid") == 32 * 4 and layers[-1].width_for("cov") == 64 * 65 // 2


def test_convnext_stem_and_every_block_channels_first():
    b = load_backbone("timm:convnext_atto", weights=None, seed=0)
    names = [layer.name for layer in b.layers]
    assert names[0] == "stem" and len(names) == 1 + 2 + 2 + 6 + 2
    stage = [f["num_chs"] for f in b.module.feature_info]
    for layer in b.layers[1:]:
        assert layer.layout == "nchw" and layer.width == stage[int(layer.name.split(".")[1])]
    assert b.layers[0].width == stage[0] == 40


@pytest.mark.parametrize(
    ("name", "first", "last", "n"),
    [
        ("timm:mobilenetv3_small_050", "stem", "blocks.5.0", 13),
        ("torchvision:efficientnet_b0", "features.0", "features.8", 18),  # stem, 16 blocks, head
        ("torchvision:mobilenet_v3_small", "features.0", "features.12", 13),
    ],
)
def test_cnn_default_layers_from_timm_and_torchvision(name, first, last, n):
    b = load_backbone(name, weights=None, seed=0)
    assert (b.layers[0].name, b.layers[-1].name, len(b.layers)) == (first, last, n)
    assert all(layer.layout == "nchw" for layer in b.layers)
    params = [layer.params_to_layer for layer in b.layers]
    assert params == sorted(params)


def test_torchvision_vit_reads_its_class_token():
    b = load_backbone("torchvision:vit_b_16", weights=None, seed=0, model_kwargs={"image_size": 32})
    assert b.layers[0].name == "encoder.layers.encoder_layer_0" and b.layers[-1].name == "encoder.ln"
    assert len(b.layers) == 13 and b.input_size == 32 and b.default_readout == "cls"
    assert all((layer.layout, layer.width, layer.prefix_tokens) == ("tokens", 768, 1) for layer in b.layers)


def test_local_state_dict_of_a_tiny_vit(tmp_path, vit):
    path = tmp_path / "vit.pth"
    torch.save(vit.module.state_dict(), path)
    local = load_backbone("timm:vit_tiny_patch16_224", weights=path, model_kwargs=VIT)
    assert local.init == "pretrained" and local.weights_source == str(path) and len(local.weights_sha256) == 64
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(local.module(x), vit.module(x))
    assert [layer.width for layer in local.layers] == [192, 192, 192]
    # the architecture's kwargs are part of its identity (feature cache key)
    assert '"img_size": 32' in local.identity and local.model_kwargs == VIT
    with pytest.raises(ModelError, match="do not fit the architecture"):
        load_backbone("timm:vit_tiny_patch16_224", weights=path, model_kwargs={**VIT, "depth": 1})


def test_model_kwargs_errors():
    with pytest.raises(ModelError, match=r"cannot be built with model_kwargs=\{'no_such_argument': 1\}"):
        load_backbone("timm:vit_tiny_patch16_224", weights=None, seed=0, model_kwargs={"no_such_argument": 1})
    with pytest.raises(ModelError, match="`model_kwargs` must hold JSON values"):
        load_backbone("resnet18", weights=None, seed=0, model_kwargs={"norm_layer": nn.BatchNorm2d})


class _Odd(nn.Module):
    """Modules whose outputs layergain cannot read: a tuple, a 5-D tensor, a 3-D tensor in a CNN."""

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Volume(nn.Module):
        def forward(self, x):
            return x[:, :, None]

    class Flat(nn.Module):
        def forward(self, x):
            return x.flatten(2)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pair, self.volume, self.flat = self.Pair(), self.Volume(), self.Flat()

    def forward(self, x):
        x = self.conv(x)
        self.pair(x)
        self.volume(x)
        return self.flat(x)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("pair", r"cannot read the output of module 'pair' of _Odd: it is a tuple of 2 \(\(1, 4, 30, 30\), \(1, 4, 30, 30\)\)"),
        ("volume", r"cannot read the output of module 'volume' of _Odd: it is a tensor of shape \(1, 4, 1, 30, 30\)"),
        ("flat", r"cannot read the output of module 'flat': a tensor of shape \(1, 4, 900\) is read as the tokens"),
    ],
)
def test_unreadable_module_output_is_a_clear_error(module, message):
    with pytest.raises(ModelError, match=message):
        probe_layers(_Odd(), layers=[module], image_size=32)


def test_mixed_layouts_have_no_default_readout(vit):
    b = load_backbone("timm:vit_tiny_patch16_224", weights=None, seed=0, model_kwargs=VIT, layers=["patch_embed.proj", "blocks.0"])
    assert [layer.layout for layer in b.layers] == ["nchw", "tokens"]
    with pytest.raises(ModelError, match=r"different layouts \(patch_embed.proj: nchw, blocks.0: tokens\)"):
        _ = b.default_readout


def test_each_layer_lists_the_readouts_that_apply(vit, swin):
    assert vit.layers[0].readouts == ("cls", "mean", "cls+mean")
    assert swin.layers[0].readouts == ("avg", "max", "avgmax", "gem", "grid", "cov")
    b = load_backbone("timm:vit_tiny_patch16_224", weights=None, seed=0, model_kwargs=VIT, layers=["patch_embed", "blocks.0"])
    assert b.layers[0].prefix_tokens == 0 and b.layers[0].readouts == ("mean",)  # patch tokens, no class token yet
