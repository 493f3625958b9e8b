"""Array plumbing shared by the similarity measures (private).

numpy is the default. torch tensors are accepted without importing torch here: a tensor on the
CPU is viewed as a numpy array (no copy; numpy's BLAS also uses the symmetric ``syrk`` kernel
for ``a.T @ a``), a tensor on an accelerator (CUDA, MPS) stays there and the heavy products run
with torch, taken from the tensor's own module (so torch is imported only by whoever made it).
CPU tensors are not given to torch on purpose: on the 2-core AMD machine of bench/README.md,
the 17 x 17 cross-layer tables at n = 2000 took 0.77 s (feature form) and 0.52 s (Gram form)
with numpy and scipy's symmetric rank-k products, 0.90 s and 0.77 s with torch (MKL has no
``syrk`` in torch) on one thread, and 3 s and 20 s with torch on its default two threads.

Threads: the products of one call run as single-threaded BLAS tasks on a few Python threads
(:func:`serial_blas`, :meth:`NumpyOps.pool`), not as multi-threaded BLAS calls.

Precision policy: the matrix products (the only O(n p q) work) run at the input's precision,
float32 for float32/float16/bfloat16 inputs and float64 otherwise. Means, row norms, and every
sum that forms an HSIC value are accumulated in float64.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from layergain.errors import InputTypeError, InputValueError
from layergain.validation import as_float_matrix, check_feature_shape

__all__ = ["NumpyOps", "TorchOps", "is_tensor", "n_workers", "one_blas_thread", "ops_for", "serial_blas"]

#: Below this width :meth:`NumpyOps.gram` is a GEMM with a contiguous transpose: numpy's ``a @ a.T``
#: (syrk, then a cache-unfriendly copy of one triangle to the other) was 1.7-2.3x slower at 5000
#: rows and 16-112 columns, the same at 320 and faster at 1280 (the same values to rounding).
GEMM_GRAM_WIDTH = 256
# Multiply-adds below which a BLAS product runs on one thread (see one_blas_thread).
_SMALL_WORK = 2e8

# Elements per chunk when inner products of n x n matrices are accumulated (float64 between
# chunks keeps float32 products accurate; small chunks also bound the temporary memory).
_CHUNK = 1 << 16


@functools.cache
def _blas() -> Any:
    from scipy.linalg import blas

    return blas


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries.

    threadpoolctl is a dependency of layergain: without it every BLAS product would run on all
    threads, 8x slower for the 17 x 17 CKA matrix on a busy machine, so its absence is an error,
    never a silent slow path.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError as error:
        raise ImportError(
            "layergain.similarity needs threadpoolctl (a dependency of layergain) to run BLAS products on "
            "one thread; it is not installed in this environment. Install it with `pip install "
            "'threadpoolctl>=3.1'`, or install layergain itself (`pip install -e .`), which brings its dependencies."
        ) from error
    _blas()  # load scipy's BLAS (its own OpenBLAS) first: the controller sees only loaded libraries
    return ThreadpoolController()


def one_blas_thread(work: float = 0.0) -> contextlib.AbstractContextManager[Any]:
    """Run the enclosed BLAS/LAPACK calls on one thread when ``work`` (multiply-adds) is small.

    ``work=0`` (the default) always limits: used around LAPACK eigen/singular value
    decompositions of at most a few thousand rows. OpenBLAS threads wait for each other at every
    step; on a machine whose cores are busy (a shared node, CI) a 512 x 512 ``eigh`` on two
    threads was measured 70x slower than on one, and small products several times slower, while
    large products keep their threads. Inside :func:`serial_blas` this does nothing (BLAS is
    already on one thread).
    """
    controller = _blas_controller()
    if work >= _SMALL_WORK or _SERIAL[0] > 0:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


# Open serial_blas sections (process-wide, as BLAS thread counts are) and the limit they hold.
_SERIAL: list[Any] = [0, None]
_SERIAL_LOCK = threading.Lock()


@contextlib.contextmanager
def serial_blas() -> Iterator[None]:
    """BLAS on one thread for the whole section; the section parallelises by itself (:meth:`NumpyOps.pool`).

    The products of one computation run as independent single-threaded tasks on a few Python
    threads (BLAS releases the GIL) instead of each product on all threads: threads never wait
    for each other inside a product, nor spin idle between products. numpy and scipy each bring
    their own OpenBLAS; with scipy's left on two threads while numpy's ran single-threaded
    products, the Gram form of the 17 x 17 Lite0 matrix at n = 2000 took 5-6 s instead of 0.55 s
    on the loaded 2-core machine. Sections may nest and overlap across threads: the limit holds
    from the first opened to the last closed.
    """
    controller = _blas_controller()
    with _SERIAL_LOCK:
        if _SERIAL[0] == 0:
            _SERIAL[1] = controller.limit(limits=1, user_api="blas")
        _SERIAL[0] += 1
    try:
        yield
    finally:
        with _SERIAL_LOCK:
            _SERIAL[0] -= 1
            if _SERIAL[0] == 0 and _SERIAL[1] is not None:
                _SERIAL[1].restore_original_limits()
                _SERIAL[1] = None


def n_workers() -> int:
    """Python threads for independent BLAS tasks: the CPU cores this process may use (at most 8)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


_MAX_WORKERS = 8
_POOL_NAME = "layergain-blas"


@functools.cache
def _executor() -> ThreadPoolExecutor | None:
    """The threads that run BLAS tasks, made on first use and kept (idle threads cost nothing)."""
    workers = n_workers()
    return ThreadPoolExecutor(workers, thread_name_prefix=_POOL_NAME) if workers > 1 else None


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: new workers, no serial section open."""
    global _SERIAL_LOCK
    _executor.cache_clear()
    _SERIAL_LOCK = threading.Lock()
    _SERIAL[:] = [0, None]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _serial_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [fn(i) for i in items]


def is_tensor(x: Any) -> bool:
    """True for a torch tensor, recognised without importing torch."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _on_accelerator(x: Any) -> bool:
    return is_tensor(x) and getattr(getattr(x, "device", None), "type", "cpu") != "cpu"


class NumpyOps:
    """The operations the measures need, on numpy arrays."""

    name = "numpy"

    def pool(self, work: float) -> Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]:
        """A ``map(fn, items)`` that runs independent tasks on :func:`n_workers` threads.

        Results come back in the order of ``items`` (sums over them do not depend on which
        thread ran what). Serial when ``work`` (multiply-adds in all) is small, on one core, or
        when called from a task. Use inside :func:`serial_blas`.
        """
        executor = _executor() if work >= _SMALL_WORK / 4 else None
        if executor is None or threading.current_thread().name.startswith(_POOL_NAME):
            return _serial_map
        return lambda fn, items: list(executor.map(fn, items)) if len(items) > 1 else [fn(i) for i in items]

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
        """``a a^T``: a GEMM with a contiguous transpose below :data:`GEMM_GRAM_WIDTH` columns,
        numpy's ``a @ a.T`` (syrk, then a copy of one triangle to the other) above."""
        with one_blas_thread(a.shape[0] * a.shape[0] * a.shape[1]):
            return a @ np.ascontiguousarray(a.T) if a.shape[1] < GEMM_GRAM_WIDTH else a @ a.T

    def row_sq64(self, a: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, a, dtype=np.float64)

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

    def zeros(self, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        return np.zeros(shape, dtype=like.dtype)

    def gram_upper(self, a: np.ndarray, out: np.ndarray) -> None:
        """``out`` (b x b) <- one triangle of ``a a^T`` with a zero diagonal (symmetric rank-k).

        Only one triangle is written, always the same one (``syrk``: half the multiply-adds of
        a product): the other must already be zero and stays so.
        """
        syrk = _blas().ssyrk if a.dtype == np.float32 else _blas().dsyrk
        with one_blas_thread(a.shape[0] * a.shape[0] * a.shape[1] / 2):
            # a.T is Fortran-ordered (no copy); out.T too, so syrk writes into ``out`` in place.
            c = syrk(1.0, a.T, trans=1, beta=0.0, c=out.T, overwrite_c=1)
        if not np.shares_memory(c, out):  # pragma: no cover - scipy honours overwrite_c for this layout
            out[...] = np.tril(c.T)  # syrk's upper triangle of out.T is the lower one of out
        np.fill_diagonal(out, 0)

    def mm_t_into(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        """``out`` <- ``a b^T``."""
        with one_blas_thread(a.shape[0] * a.shape[1] * b.shape[0]):
            np.matmul(a, b.T, out=out)

    def row_dot64(self, a: np.ndarray) -> np.ndarray:
        """Row-wise sums of squares at the input's precision, returned as float64 (one chunk)."""
        return np.einsum("ij,ij->i", a, a).astype(np.float64)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)


class TorchOps(NumpyOps):
    """The same operations on torch tensors that live on an accelerator."""

    name = "torch"

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def pool(self, work: float) -> Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]:
        # The accelerator runs the products; tasks are queued to it in order.
        return _serial_map

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

    def row_sq64(self, a: Any) -> np.ndarray:
        return self.to_numpy(self.torch.einsum("ij,ij->i", a, a).double())

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

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        return self.torch.zeros(shape, dtype=like.dtype, device=like.device)

    def gram_upper(self, a: Any, out: Any) -> None:
        # torch has no syrk: the full product, then the strict upper triangle.
        self.torch.mm(a, a.T, out=out)
        out.triu_(1)

    def mm_t_into(self, a: Any, b: Any, out: Any) -> None:
        self.torch.mm(a, b.T, out=out)

    def row_dot64(self, a: Any) -> np.ndarray:
        return self.to_numpy(self.torch.einsum("ij,ij->i", a, a).double())

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
