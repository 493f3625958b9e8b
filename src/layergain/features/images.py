"""Image decoding for the networks: any size and mode to an RGB tensor of a fixed size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from layergain.errors import DataError

__all__ = ["ImageDataset", "load_rgb"]


def load_rgb(path: Path, size: int) -> np.ndarray:
    """Decode ``path`` to a uint8 RGB array of shape (size, size, 3).

    Any mode (grey, palette, RGBA, CMYK, 16-bit) is converted to RGB; transparency is composited
    on white. The whole image is resized (bicubic, antialiased), not cropped: a pathology patch
    has no "centre" worth keeping over its borders.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = arr.max() if arr.max() > 0 else 1.0
                im = Image.fromarray((arr / top * 255).round().astype(np.uint8))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, rgba)
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
            return np.array(im, dtype=np.uint8)  # a writable copy for torch.from_numpy
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot decode image {path}: {exc}. Remove or replace the file, or pass `skip_bad_images=True`."
        ) from exc


class ImageDataset(torch.utils.data.Dataset):
    """Images as uint8 tensors of shape (3, size, size); normalisation happens on the device."""

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(load_rgb(self.paths[i], self.size)).permute(2, 0, 1)
