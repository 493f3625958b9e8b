r"""Dihedral-invariant, crop-tolerant image descriptors for near-duplicate search.

Each image is read once as grey levels and cut into 14 windows (the whole image, and
sub-windows covering 90 % and 95 % of each side at the corners, edges and centre). Every
window is resized (area averaging) to a 32 x 32 thumbnail whose low-frequency block of the
orthonormal 2-D DCT-II, without its DC term, weighted by frequency (whitening) and scaled to
unit norm, is the window's descriptor. The dot product of two descriptors is the correlation of the two low-passed,
mean-free windows (Parseval), so it ignores brightness and contrast changes, JPEG noise and
small colour shifts; the windows absorb small crops (a crop of an image matches one of the
original's windows).

The eight flips and 90° rotations act on a DCT block by sign changes and a transpose
(:func:`dihedral_stack`): a horizontal flip multiplies coefficient :math:`(u, v)` by
:math:`(-1)^v`, a vertical flip by :math:`(-1)^u`, a transpose swaps :math:`u` and :math:`v`.
Comparing one descriptor with the eight transforms of another needs no image transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["WINDOWS", "Descriptors", "describe_images", "dct_descriptors", "dihedral_stack"]

#: Windows as (side fraction, x position, y position); position 0 = left/top, 1 = right/bottom.
#: The first is the whole image (the coarse search uses it alone).
WINDOWS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.5, 0.5),
    *((0.9, a, b) for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5, 1.0)),
    *((0.95, a, b) for a in (0.0, 1.0) for b in (0.0, 1.0)),
)


@dataclass(frozen=True)
class Descriptors:
    """Descriptors of a set of images.

    Attributes
    ----------
    coarse : ndarray of float32 of shape (n_images, k_coarse, k_coarse)
        Unit-norm low-frequency DCT block of the whole image (DC removed).
    fine : ndarray of float32 of shape (n_images, n_windows, k_fine, k_fine)
        The same for every window of :data:`WINDOWS`, with more frequencies.
    texture : ndarray of float64 of shape (n_images,)
        RMS of the whole image's low-passed, mean-free grey levels (0-255 scale), the coarse
        block's norm per pixel: near 0 for a flat image (background, fat) whose descriptor is
        mostly noise.
    """

    coarse: np.ndarray
    fine: np.ndarray
    texture: np.ndarray


def _windows(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    base = 4 * size  # windows are cut from one grey thumbnail of this side: 5x faster than from the image
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("L", (base, base))  # decode at a reduced scale where the file allows it
        grey = im.convert("L")
    if grey.size != (base, base):
        grey = grey.resize((base, base), Image.Resampling.BOX)
    out = np.empty((len(WINDOWS), size, size), dtype=np.float32)
    for k, (f, a, b) in enumerate(WINDOWS):
        x0, y0 = (base - base * f) * a, (base - base * f) * b
        box = (x0, y0, x0 + base * f, y0 + base * f)
        out[k] = np.asarray(grey.resize((size, size), Image.Resampling.BOX, box=box), dtype=np.float32)
    return out


def _dct_matrix(size: int, k: int) -> np.ndarray:
    """First ``k`` rows of the orthonormal DCT-II matrix of length ``size``."""
    n = np.arange(size)
    m = np.cos(np.pi * (2 * n[None, :] + 1) * np.arange(k)[:, None] / (2 * size)) * np.sqrt(2.0 / size)
    m[0] /= np.sqrt(2.0)
    return m


def dct_descriptors(thumbnails: np.ndarray, k: int, whiten: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm ``k`` × ``k`` low-frequency DCT blocks (DC removed) of square thumbnails.

    Parameters
    ----------
    thumbnails : ndarray of shape (..., size, size)
    k : int
    whiten : float, default=0.0
        Weight coefficient :math:`(u, v)` by :math:`(u^2 + v^2)^{whiten / 2}` before scaling.

    Returns
    -------
    blocks : ndarray of float32 of shape (..., k, k)
    norm : ndarray of float64 of shape (...)
        The block's norm before scaling.
    """
    x = np.asarray(thumbnails, dtype=np.float64)
    d = _dct_matrix(x.shape[-1], k)
    c = d @ x @ d.T  # the k x k low-frequency block of scipy.fft.dctn(x, norm="ortho")
    c[..., 0, 0] = 0.0
    norm = np.sqrt((c**2).sum(axis=(-2, -1)))
    if whiten:
        u = np.arange(k, dtype=np.float64)
        c = c * np.hypot(u[:, None], u[None, :]) ** whiten
        norm_w = np.sqrt((c**2).sum(axis=(-2, -1)))
        return (c / np.maximum(norm_w, 1e-12)[..., None, None]).astype(np.float32), norm
    return (c / np.maximum(norm, 1e-12)[..., None, None]).astype(np.float32), norm


def dihedral_stack(blocks: np.ndarray) -> np.ndarray:
    """The eight flips/90° rotations of DCT blocks, flattened.

    Parameters
    ----------
    blocks : ndarray of shape (..., k, k)

    Returns
    -------
    ndarray of shape (8, ..., k * k)
        Element 0 is the identity.
    """
    k = blocks.shape[-1]
    sign = np.where(np.arange(k) % 2, -1.0, 1.0).astype(blocks.dtype)
    one = np.ones(k, dtype=blocks.dtype)
    out = []
    for transpose in (False, True):
        x = np.swapaxes(blocks, -1, -2) if transpose else blocks
        for a in (one, sign):
            for b in (one, sign):
                out.append((x * np.outer(a, b)).reshape(*blocks.shape[:-2], k * k))
    return np.stack(out)


def describe_images(
    paths: Sequence[str | Path], *, size: int = 32, k_coarse: int = 6, k_fine: int = 16, whiten: float = 1.0
) -> Descriptors:
    r"""Descriptors of the images at ``paths`` (see the module docstring).

    Parameters
    ----------
    paths : sequence of str or Path
    size : int, default=32
        Thumbnail side in pixels.
    k_coarse, k_fine : int, default=6, 16
        DCT frequencies per axis kept for the coarse (whole image) and fine (windows) descriptors.
    whiten : float, default=1.0
        The fine blocks' coefficients are weighted by :math:`\sqrt{u^2 + v^2}^{\,whiten}` before
        scaling to unit norm, which undoes the :math:`1/f` fall-off of tissue images' spectra: without
        it one large structure (a tissue edge on white) dominates and distinct edge patches match.
    """
    thumbs = np.stack([_windows(Path(p), size) for p in paths]) if len(paths) else np.zeros((0, len(WINDOWS), size, size))
    coarse, norm = dct_descriptors(thumbs[:, 0], k_coarse)
    fine, _ = dct_descriptors(thumbs, k_fine, whiten)
    return Descriptors(coarse=coarse, fine=fine, texture=norm / size)
