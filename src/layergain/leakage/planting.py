"""Planted near-duplicates of real images, to measure what the duplicate search finds."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from layergain.data import ImageSet, load_image_set
from layergain.errors import InputValueError
from layergain.validation import check_int

__all__ = ["plant_copy", "plant_duplicates"]


def plant_copy(image, seed: int | np.random.Generator | None = None, *, crop: float = 0.9, jpeg: tuple[int, int] = (70, 90)):
    """A near-duplicate of a PIL image: every change below at once, each drawn at random.

    A flip or 90° rotation (one of the 8, identity included); a crop keeping a fraction
    ``U(crop, 1)`` of each side at a random position; rescaling by ``U(0.7, 1.3)``; colour
    jitter (per-channel gain ``U(0.92, 1.08)`` and offset ``U(-10, 10)`` grey levels); JPEG
    re-encoding at quality ``U(*jpeg)``.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = image.convert("RGB")
    g = int(rng.integers(8))
    if g & 1:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if g & 2:
        im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if g & 4:
        im = im.transpose(Image.Transpose.TRANSPOSE)
    w, h = im.size
    f = rng.uniform(crop, 1.0)
    cw, ch = max(1, round(w * f)), max(1, round(h * f))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = im.crop((x0, y0, x0 + cw, y0 + ch))
    s = rng.uniform(0.7, 1.3)
    im = im.resize((max(8, round(cw * s)), max(8, round(ch * s))), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.float64) * rng.uniform(0.92, 1.08, size=3) + rng.uniform(-10, 10, size=3)
    im = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(rng.integers(jpeg[0], jpeg[1] + 1)))
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def plant_duplicates(
    image_set: ImageSet,
    dest: str | Path,
    *,
    n_copies: int,
    seed: int | np.random.Generator | None = None,
    crop: float = 0.9,
    new_groups: bool = False,
) -> tuple[ImageSet, np.ndarray]:
    """The images of ``image_set`` plus ``n_copies`` planted near-duplicates of some of them.

    Copies (:func:`plant_copy`) of distinct images drawn at random are written as JPEG under
    ``dest``, with a ``manifest.csv`` there that lists the originals (absolute paths) and the
    copies, with the originals' labels and groups.

    Parameters
    ----------
    image_set : ImageSet
    dest : str or Path
        An empty or new folder.
    n_copies : int
        At most ``len(image_set)``.
    seed : int or numpy.random.Generator or None
    crop : float, default=0.9
        Smallest side fraction a copy keeps.
    new_groups : bool, default=False
        Give each copy a group of its own (``"planted-<k>"``) instead of its original's, so that
        every planted cluster spans two groups.

    Returns
    -------
    planted : ImageSet
        Originals first, in their order, then the copies.
    original : ndarray of int of shape (n_images,)
        Index in ``planted`` of each image's original (an original's own index).
    """
    from PIL import Image

    check_int(n_copies, "n_copies", minimum=1, maximum=len(image_set))
    if not 0.0 < crop <= 1.0:
        raise InputValueError(f"`crop` is the smallest side fraction a copy keeps and must lie in (0, 1], got {crop}.")
    rng = np.random.default_rng(seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    picks = np.sort(rng.choice(len(image_set), size=n_copies, replace=False))
    groups = image_set.groups
    rows = []
    for i, p in enumerate(image_set.paths):
        group = groups[i] if groups is not None else (f"original-{i}" if new_groups else "")
        rows.append((str(p.resolve()), image_set.class_names[image_set.labels[i]], group))
    for k, i in enumerate(picks):
        with Image.open(image_set.paths[i]) as im:
            copy = plant_copy(im, rng, crop=crop)
        label = image_set.class_names[image_set.labels[i]]
        name = f"copies/{label}/copy-{k:05d}.jpg"
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        copy.save(dest / name, "JPEG", quality=95)
        group = f"planted-{k}" if new_groups else ("" if groups is None else groups[i])
        rows.append((name, label, group))
    with open(dest / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        grouped = groups is not None or new_groups
        writer.writerow(["path", "label", "group"] if grouped else ["path", "label"])
        for path, label, group in rows:
            writer.writerow([path, label, group] if grouped else [path, label])
    planted = load_image_set(dest / "manifest.csv")
    original = np.concatenate([np.arange(len(image_set)), picks])
    return planted, original
