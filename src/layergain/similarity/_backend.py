"""Array plumbing shared by the similarity measures (private).

numpy is the default. torch tensors are accepted without importing torch here: a tensor on the
CPU is viewed as a numpy array (no copy; numpy's BLAS also uses the symmetric ``syrk`` kernel
for ``a.T @ a``), a tensor on an accelerator (CUDA, MPS) stays there and the heavy products run
with torch, taken from the tensor's own module (so torch is imported only by whoever made it).

Precision policy: the matrix products (the only O(n p q) work) run at the input's precision,
float32 for float32/float16/bfloat16 inputs and float64 otherwise. Means, row norms, and every
sum that forms an HSIC value are accumulated in float64.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError
from layergain.validation import as_float_matrix, check_feature_shape

__all__ = ["NumpyOps", "TorchOps", "ops_for", "is_tensor", "one_blas_thread"]

# Multiply-adds below which a BLAS product runs on one thread (see one_blas_thread).
_SMALL_WORK = 2e8

# Elements per chunk when inner products of n x n matrices are accumulated (float64 between
# chunks keeps float32 products accurate; small chunks also bound the temporary memory).
_CHUNK = 1 << 16


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def one_blas_thread(work: float = 0.0) -> contextlib.AbstractContextManager[Any]:
    """Run the enclosed BLAS/LAPACK calls on one thread when ``work`` (multiply-adds) is small.

    ``work=0`` (the default) always limits: used around LAPACK eigen/singular value
    decompositions of at most a few thousand rows. OpenBLAS threads wait for each other at every
    step; on a machine whose cores are busy (a shared node, CI) a 512 x 512 ``eigh`` on two
    threads was measured 70x slower than on one, and small products several times slower, while
    large products keep their threads.
    """
    controller = _blas_controller()
    if controller is None or work >= _SMALL_WORK:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def is_tensor(x: Any) -> bool:
    """True for a torch tensor, recognised without importing torch."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _on_accelerator(x: Any) -> bool:
    return is_tensor(x) and getattr(getattr(x, "device", None), "type", "cpu") != "cpu"


class NumpyOps:
    """The operations the measures need, on numpy arrays."""

    name = "numpy"

    def validate(self, x: Any, name: str, *, min_rows: int, dtype: Any) -> np.ndarray:
        return as_float_matrix(x, name, min_rows=min_rows, dtype=dtype, allow_constant=False)

    def float_dtype(self, x: Any) -> Any:
        """float32 for inputs of at most single precision, float64 otherwise."""
        dt = getattr(x, "dtype", None)
        if is_tensor(x):
            low = str(dt) in ("torch.float32", "torch.float16", "torch.bfloat16")
        else:
            low = dt is not None and np.dtype(dt) in (np.float32, np.float16)
        return np.float32 if low else np.float64

    def centre(self, x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=0, dtype=np.float64)
        return x - mean.astype(x.dtype)

    def concat(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)

    def t_matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a.T @ b``; numpy uses syrk when ``b`` is ``a``."""
        with one_blas_thread(a.shape[0] * a.shape[1] * b.shape[1]):
            return a.T @ b

    def gram(self, a: np.ndarray) -> np.ndarray:
        with one_blas_thread(a.shape[0] * a.shape[0] * a.shape[1]):
            return a @ a.T

    def zero_diagonal(self, k: np.ndarray) -> np.ndarray:
        np.fill_diagonal(k, 0)
        return k

    def row_sq64(self, a: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, a, dtype=np.float64)

    def row_sum64(self, a: np.ndarray) -> np.ndarray:
        return a.sum(axis=1, dtype=np.float64)

    def col_sum64(self, a: np.ndarray) -> np.ndarray:
        return a.sum(axis=0, dtype=np.float64)

    def matvec64(self, a: np.ndarray, v: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return (a @ v.astype(a.dtype)).astype(np.float64)

    def block_sumsq64(self, c: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Sums of squares of the blocks of ``c`` cut at ``rows`` x ``cols`` (start offsets)."""
        sq = np.square(c, dtype=np.float64)
        return np.add.reduceat(np.add.reduceat(sq, cols, axis=1), rows, axis=0)

    def inner64(self, ks: Sequence[np.ndarray], ls: Sequence[np.ndarray] | None) -> np.ndarray:
        """Matrix of Frobenius inner products <K_a, L_b> of equal-shape matrices, in float64."""
        return _chunked_inner(self, ks, ls)

    def stack_flat(self, mats: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
        return np.stack([m.reshape(-1)[start:stop] for m in mats])

    def mm_t64(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with one_blas_thread(a.shape[0] * a.shape[1] * b.shape[0]):
            return (a @ b.T).astype(np.float64)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)


class TorchOps(NumpyOps):
    """The same operations on torch tensors that live on an accelerator."""

    name = "torch"

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def _torch_dtype(self, dtype: Any) -> Any:
        return self.torch.float32 if dtype is np.float32 else self.torch.float64

    def validate(self, x: Any, name: str, *, min_rows: int, dtype: Any) -> Any:
        torch = self.torch
        if x.is_complex() or not (x.is_floating_point() or x.dtype in _int_dtypes(torch)):
            raise InputTypeError(f"`{name}` must be a numeric array, got dtype {x.dtype}.")
        check_feature_shape(tuple(x.shape), name, min_rows=min_rows)
        x = x.detach().to(self._torch_dtype(dtype))
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            raise InputValueError(
                f"`{name}` contains {bad} NaN or infinite value(s). Remove the affected images or "
                "units, or replace the values (e.g. numpy.nan_to_num) before computing."
            )
        if bool((x.amax(dim=0) == x.amin(dim=0)).all()):
            raise InputValueError(
                f"`{name}` is constant across images (every unit has zero variance); "
                "the measure is undefined. Check that the layer's features are not collapsed."
            )
        return x

    def centre(self, x: Any) -> Any:
        mean = x.mean(dim=0, dtype=self.torch.float64)
        return x - mean.to(x.dtype)

    def concat(self, blocks: Sequence[Any]) -> Any:
        return blocks[0] if len(blocks) == 1 else self.torch.cat(list(blocks), dim=1)

    def zero_diagonal(self, k: Any) -> Any:
        k.fill_diagonal_(0)
        return k

    def row_sq64(self, a: Any) -> np.ndarray:
        return self.to_numpy(self.torch.einsum("ij,ij->i", a, a).double())

    def row_sum64(self, a: Any) -> np.ndarray:
        return self.to_numpy(a.sum(dim=1, dtype=self.torch.float64))

    def col_sum64(self, a: Any) -> np.ndarray:
        return self.to_numpy(a.sum(dim=0, dtype=self.torch.float64))

    def matvec64(self, a: Any, v: np.ndarray) -> np.ndarray:
        vt = self.torch.as_tensor(v, dtype=a.dtype, device=a.device)
        return self.to_numpy((a @ vt).double())

    def block_sumsq64(self, c: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        sq = self.to_numpy(c.double().square())
        return np.add.reduceat(np.add.reduceat(sq, cols, axis=1), rows, axis=0)

    def stack_flat(self, mats: Sequence[Any], start: int, stop: int) -> Any:
        return self.torch.stack([m.reshape(-1)[start:stop] for m in mats])

    def mm_t64(self, a: Any, b: Any) -> np.ndarray:
        return self.to_numpy((a @ b.T).double())

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy() if is_tensor(a) else np.asarray(a)



def _int_dtypes(torch: Any) -> tuple[Any, ...]:
    return (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _chunked_inner(ops: NumpyOps, ks: Sequence[Any], ls: Sequence[Any] | None) -> np.ndarray:
    size = int(np.prod(ks[0].shape))
    out = np.zeros((len(ks), len(ks) if ls is None else len(ls)))
    for start in range(0, size, _CHUNK):
        stop = min(start + _CHUNK, size)
        a = ops.stack_flat(ks, start, stop)
        b = a if ls is None else ops.stack_flat(ls, start, stop)
        out += ops.mm_t64(a, b)
    return out


def ops_for(*arrays: Any) -> NumpyOps:
    """The operations for these inputs: torch if every input is a tensor on one accelerator."""
    if arrays and all(_on_accelerator(a) for a in arrays):
        devices = {str(a.device) for a in arrays}
        if len(devices) == 1:
            return TorchOps(sys.modules[type(arrays[0]).__module__.split(".")[0]])
        raise InputValueError(
            f"All tensors must be on one device, got {sorted(devices)}. Move them with "
            "`.to(device)` first."
        )
    return NumpyOps()
