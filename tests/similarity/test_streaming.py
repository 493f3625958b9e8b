"""Streaming CKA agrees with the full computation on all images."""

from __future__ import annotations

import numpy as np
import pytest

from layergain.errors import InputValueError, NotEnoughDataError
from layergain.similarity import StreamingCKA, StreamingCKAMatrix, cka_matrix, debiased_cka, linear_cka

from . import reference as ref


@pytest.mark.parametrize("batch", [1, 7, 64, 1000])
def test_pair_agrees_with_full(seed: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    x = ref.real_like(rng, 300, 20)
    y = ref.real_like(rng, 300, 12) + x[:, :12]
    acc = StreamingCKA()
    for i in range(0, 300, batch):
        acc.update(x[i : i + batch], y[i : i + batch])
    assert acc.n_images_ == 300
    assert acc.linear_cka() == pytest.approx(linear_cka(x, y), rel=1e-9)
    assert acc.debiased_cka() == pytest.approx(debiased_cka(x, y), rel=1e-8)


def test_float32_batches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = ref.real_like(rng, 500, 30)
    y = 0.5 * x[:, :10] + rng.standard_normal((500, 10))
    acc = StreamingCKA()
    for i in range(0, 500, 128):
        acc.update(x[i : i + 128].astype(np.float32), y[i : i + 128].astype(np.float32))
    assert acc.linear_cka() == pytest.approx(linear_cka(x, y), abs=1e-5)
    assert acc.debiased_cka() == pytest.approx(debiased_cka(x, y), abs=1e-5)


def test_matrix_agrees_with_full(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((240, 5))
    xs = {f"a{w}": base @ rng.standard_normal((5, w)) + rng.standard_normal((240, w)) + 9 for w in (3, 8, 30)}
    ys = {f"b{w}": base @ rng.standard_normal((5, w)) + rng.standard_normal((240, w)) for w in (16, 4)}
    acc = StreamingCKAMatrix()
    for i in range(0, 240, 50):
        acc.update({k: v[i : i + 50] for k, v in xs.items()}, {k: v[i : i + 50] for k, v in ys.items()})
    for kind in ("linear", "debiased"):
        got = acc.cka_matrix(kind=kind)
        np.testing.assert_allclose(got.values, cka_matrix(xs, ys, kind=kind).values, rtol=1e-9)
        assert got.dims == ("layer_pretrained", "layer_other")


def test_torch_batches() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((100, 6))
    acc = StreamingCKA().update(torch.from_numpy(x[:50]), torch.from_numpy(2 * x[:50]))
    acc.update(torch.from_numpy(x[50:]), torch.from_numpy(2 * x[50:]))
    assert acc.linear_cka() == pytest.approx(1.0)


def test_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputValueError, match="No batch was added"):
        StreamingCKA().linear_cka()
    acc = StreamingCKA().update(rng.standard_normal((10, 3)), rng.standard_normal((10, 2)))
    with pytest.raises(InputValueError, match=r"same layers in `xs`: first batch \{'x': 3\}, this batch \{'x': 4\}"):
        acc.update(rng.standard_normal((10, 4)), rng.standard_normal((10, 2)))
    with pytest.raises(InputValueError, match="same number of images.*got 10 and 9"):
        acc.update(rng.standard_normal((10, 3)), rng.standard_normal((9, 2)))
    bad = rng.standard_normal((10, 3))
    bad[1, 1] = np.inf
    with pytest.raises(InputValueError, match="contains 1 NaN or infinite"):
        acc.update(bad, rng.standard_normal((10, 2)))
    with pytest.raises(NotEnoughDataError, match="at least 4 images"):
        StreamingCKA().update(rng.standard_normal((3, 2)), rng.standard_normal((3, 2))).debiased_cka()
    constant = StreamingCKA().update(np.ones((5, 2)), rng.standard_normal((5, 2))).update(np.ones((5, 2)), rng.standard_normal((5, 2)))
    with pytest.raises(InputValueError, match="constant across all images seen"):
        constant.linear_cka()
    with pytest.raises(InputValueError, match="`kind` must be one of"):
        good = rng.standard_normal((10, 3))
        StreamingCKAMatrix().update({"a": good}, {"b": good}).cka_matrix(kind="rbf")
