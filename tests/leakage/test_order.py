"""Hidden-structure check: folds in a declared order vs shuffled folds.

Features are cheap colour statistics of real Kather 2016 tiles (layergain's check takes any
features; the pipeline gives it one layer of the pretrained network). The planted order effect is
a stain batch per block of the file order. (Kather's real slide order, with these weak colour
features, gives a gap of about 0.035 at p 0.05-0.1: too close to the line for a test; see
bench/leakage.py --order.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from layergain.data import load_image_set
from layergain.errors import InputValueError, NotEnoughDataError
from layergain.leakage import block_folds, order_check

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")


def colour_features(paths) -> np.ndarray:
    """Mean and SD of R, G, B on a 4 x 4 grid (as bench/leakage.py --order)."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
        cells = a.reshape(4, 8, 4, 8, 3).transpose(0, 2, 1, 3, 4).reshape(16, 64, 3)
        out.append(np.concatenate([cells.mean(1).ravel(), cells.std(1).ravel()]))
    return np.array(out)


@pytest.fixture(scope="module")
def kather():
    image_set = load_image_set(SHARED / "kather2016_crc_texture", group_column="slide_id", max_per_class=150, seed=0)
    rng = np.random.default_rng(20160627)  # a fixed subset; the tests' seeds drive the shuffles
    keep = np.isin(image_set.labels, [0, 1, 3, 5])  # tumour, stroma, lympho, mucosa: on 8-10 slides each
    idx = np.sort(rng.choice(np.flatnonzero(keep), size=400, replace=False))
    sub = image_set.subset(idx)
    return sub, colour_features(sub.paths)


@needs_shared
def test_flags_a_planted_stain_batch_order(kather, seed):
    """Each fifth of every class, in file order, gets its own stain shift (RGB offsets of SD 20 grey
    levels on the colour means): a case per block of the file order, whose look goes with its class."""
    sub, x = kather
    rng = np.random.default_rng(seed)
    batch = block_folds(sub.labels, folds=5)
    shift = np.zeros_like(x)
    offsets = rng.normal(0, 20.0, size=(int(sub.labels.max()) + 1, 5, 3))
    shift[:, :48] = np.tile(offsets[sub.labels, batch], 16)
    check = order_check(x + shift, sub.labels, seed=seed)
    assert check.flagged
    assert check.p_value == pytest.approx(1 / 20)
    assert check.gap >= 0.02
    assert "hidden structure" in check.summary() and "file order" in check.summary()
    assert check.attrs()["order_check_flagged"] == 1
    shuffled = order_check(x + shift[rng.permutation(len(sub))], sub.labels, seed=seed)
    assert not shuffled.flagged


@needs_shared
def test_does_not_flag_a_shuffled_order(kather, seed):
    sub, x = kather
    order = np.random.default_rng(seed).permutation(len(sub))
    check = order_check(x, sub.labels, order=order, seed=seed + 100)
    assert not check.flagged
    assert "no sign" in check.summary()


@needs_shared
@pytest.mark.slow
def test_false_flag_rate_under_shuffled_order(kather, seed):
    """Exact bound alpha = 0.05; 30 shuffled orders: P(>= 6 flags | rate 0.05) = 0.016."""
    sub, x = kather
    rng = np.random.default_rng(seed)
    flags = sum(order_check(x, sub.labels, order=rng.permutation(len(sub)), seed=rng).flagged for _ in range(30))
    assert flags <= 5


def test_block_folds_are_contiguous_stratified_blocks():
    labels = np.array([0] * 10 + [1] * 5)
    folds = block_folds(labels, folds=5)
    assert folds[:10].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert folds[10:].tolist() == [0, 1, 2, 3, 4]
    order = np.arange(15)[::-1]
    assert block_folds(labels, order, folds=5)[:10].tolist() == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]


def test_planted_block_effect_on_synthetic_features(seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 100)
    batch = np.tile(np.repeat(np.arange(5), 20), 2)  # file order = batch within each class
    x = rng.normal(size=(200, 5)) + labels[:, None] * 0.8 + rng.normal(size=(5, 5))[batch] * 1.5
    assert order_check(x, labels, seed=seed).flagged


def test_errors():
    x, labels = np.zeros((20, 3)), np.repeat([0, 1], 10)
    with pytest.raises(InputValueError, match="could never flag"):
        order_check(x, labels, n_shuffles=9)
    with pytest.raises(InputValueError, match="one entry per row of `features`"):
        order_check(x, labels[:5])
    with pytest.raises(InputValueError, match="one sort key per image"):
        block_folds(labels, np.arange(3))
    with pytest.raises(NotEnoughDataError, match="fewer than the 5 folds"):
        order_check(x[:6], np.array([0, 0, 0, 1, 1, 1]))
