"""CUDA backend: glue between CuPy arrays and the kernels of ``pyengine._cuda``.

No kernel logic lives here: this module picks transpose flags, leading
dimensions and batch strides from CuPy array strides, allocates outputs with
CuPy and launches on CuPy's current stream. CuPy is imported lazily so that
importing pyengine works on machines without it.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _cuda_state

if TYPE_CHECKING:  # pragma: no cover
    import cupy

__all__ = [
    "is_available",
    "unavailable_reason",
    "require",
    "matmul",
    "gemm",
    "gemm_strided_batched",
]

_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_BIAS_KINDS = {"none": 0, "row": 1, "col": 2}  # as pyengine._C: per row (M) / per column (N)
_ACTS = {"none": 0, "relu": 1, "gelu": 2}


def is_available() -> bool:
    """True when pyengine._cuda is built, CuPy imports and at least one GPU is visible."""
    return _cuda_state.is_available()


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used here (module not built / CuPy missing / no GPU), or None."""
    status = _cuda_state.status()["status"]
    return None if status == "ok" else status


def require() -> tuple[ModuleType, ModuleType]:
    """Return (pyengine._cuda, cupy), or raise RuntimeError("[cuda] ...") saying why not."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"[cuda] CUDA is not available: {reason}")
    import cupy

    from pyengine import _cuda

    return _cuda, cupy


# ----------------------------------------------------------------------------- helpers


def _dtype_name(op: str, *arrays: cupy.ndarray) -> str:
    dt = arrays[0].dtype
    for x in arrays[1:]:
        if x.dtype != dt:
            names = ", ".join(str(y.dtype) for y in arrays)
            raise TypeError(f"[{op}] operands must have the same dtype but have {names}")
    if dt not in _DTYPES:
        raise TypeError(f"[{op}] dtype must be float32 or float64 but is {dt}")
    return _DTYPES[dt]


def _check_cupy(op: str, cp: ModuleType, **arrays: Any) -> None:
    for name, x in arrays.items():
        if not isinstance(x, cp.ndarray):
            raise TypeError(f"[{op}] {name} must be a cupy.ndarray but is {type(x).__name__}")


def _matrix_layout(x: cupy.ndarray) -> tuple[bool, int] | None:
    """(trans, ld) describing the trailing 2-D matrix of x for the GEMM, or None.

    Not transposed: element (i, k) at i*ld + k. Transposed: at k*ld + i. Size-1
    dimensions impose nothing, so row/column vectors with any stride qualify.
    """
    rows, cols = x.shape[-2:]
    if rows == 0 or cols == 0:  # nothing is read
        return False, max(cols, 1)
    sr, sc = x.strides[-2:]
    e = x.itemsize
    if sr % e or sc % e:
        return None
    sr, sc = sr // e, sc // e
    if (cols <= 1 or sc == 1) and (rows <= 1 or sr >= max(cols, 1)):
        return False, (sr if rows > 1 else max(cols, 1))
    if (rows <= 1 or sr == 1) and (cols <= 1 or sc >= max(rows, 1)):
        return True, (sc if cols > 1 else max(rows, 1))
    return None


def _batch_strides(x: cupy.ndarray, batch: tuple[int, ...]) -> list[int] | None:
    """Element strides of x's batch dims broadcast to `batch` (0 where broadcast)."""
    nb = x.ndim - 2
    out = []
    for d, size in enumerate(batch):
        xd = d - (len(batch) - nb)
        if xd < 0 or x.shape[xd] == 1 or size == 1:
            out.append(0)
            continue
        s = x.strides[xd]
        if s % x.itemsize or s < 0:  # as _C: batch strides are >= 0
            return None
        out.append(s // x.itemsize)
    return out


def _operand(cp: ModuleType, x: cupy.ndarray, batch: tuple[int, ...]):
    """(x, trans, ld, batch strides), copying x to C order only when its strides cannot serve."""
    layout = _matrix_layout(x)
    strides = _batch_strides(x, batch)
    if layout is None or strides is None:
        x = cp.ascontiguousarray(x)  # the one explicit copy: no usable unit stride
        layout = _matrix_layout(x)
        strides = _batch_strides(x, batch)
    assert layout is not None and strides is not None
    return x, layout[0], layout[1], strides


def _merge_batch_dims(sizes: list[int], *strides: list[int]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 batch dims and merge neighbours that step uniformly for every operand."""
    keep = [d for d, n in enumerate(sizes) if n != 1]
    msizes = [sizes[d] for d in keep]
    mstrides = [[s[d] for d in keep] for s in strides]
    d = len(msizes) - 2
    while d >= 0:
        if all(s[d] == s[d + 1] * msizes[d + 1] for s in mstrides):
            msizes[d] *= msizes[d + 1]
            del msizes[d + 1]
            for s in mstrides:
                s[d] = s.pop(d + 1)  # the merged dim steps like the inner one
        d -= 1
    return msizes, mstrides


# ----------------------------------------------------------------------------- ops


def matmul(
    a: cupy.ndarray, b: cupy.ndarray, bias: cupy.ndarray | None = None, act: str = "none"
) -> cupy.ndarray:
    """``act(a @ b + bias)`` for CuPy arrays with NumPy's matmul semantics (float32 / float64).

    1-D operands are promoted (and the added dimension removed from the result),
    batch dimensions broadcast. Strided views are used in place when one of their
    two trailing strides is the element size; otherwise they are copied to C order.
    bias (optional) is a contiguous 1-D array of length N added to every row, as
    backend.cpu.matmul. Runs on CuPy's current stream.
    """
    mod, cp = require()
    _check_cupy("matmul", cp, a=a, b=b, **({} if bias is None else {"bias": bias}))
    dtype = _dtype_name("matmul", a, b, *([] if bias is None else [bias]))
    if act not in _ACTS:
        raise ValueError(f"[matmul] act must be 'none', 'relu' or 'gelu' but is {act!r}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"[matmul] operands must have at least 1 dimension but have shapes {a.shape} and "
            f"{b.shape}"
        )
    if a.device != b.device:
        raise ValueError(f"[matmul] operands are on different devices: {a.device} and {b.device}")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (m, k), (k2, n) = a2.shape[-2:], b2.shape[-2:]
    if k != k2:
        raise ValueError(
            f"[matmul] inner dimensions differ: a has shape {a.shape} (K={k}), b has shape "
            f"{b.shape} (K={k2})"
        )
    try:
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"[matmul] batch dimensions do not broadcast: a has shape {a.shape}, b has shape "
            f"{b.shape}"
        ) from None

    if bias is not None and (
        bias.ndim != 1 or bias.shape[0] != n or (n > 1 and bias.strides[0] != bias.itemsize)
    ):
        raise ValueError(
            f"[matmul] bias must be a contiguous 1-D array of length {n} but has shape "
            f"{bias.shape} and strides {bias.strides}"
        )
    with a.device:
        c = cp.empty(batch + (m, n), dtype=a.dtype)
        if c.size:
            _batched_gemm(mod, cp, a2, b2, c, batch, dtype, bias, _ACTS[act])
    if b.ndim == 1:
        c = c[..., 0]
    if a.ndim == 1:
        c = c[..., 0] if b.ndim == 1 else c[..., 0, :]
    return c


def _batched_gemm(
    mod: ModuleType,
    cp: ModuleType,
    a: cupy.ndarray,
    b: cupy.ndarray,
    c: cupy.ndarray,
    batch: tuple[int, ...],
    dtype: str,
    bias: cupy.ndarray | None,
    act: int,
) -> None:
    """c[...] = a[...] @ b[...] over broadcast batch dims: one strided-batched launch per
    combination of the batch dims that cannot be merged into a single stride."""
    a, ta, lda, sa = _operand(cp, a, batch)
    b, tb, ldb, sb = _operand(cp, b, batch)
    sc = [s // c.itemsize for s in c.strides[:-2]]
    m, k = a.shape[-2:]  # logical op(A) is M x K whatever the storage
    n = c.shape[-1]
    sizes, (sa, sb, sc) = _merge_batch_dims(list(batch), sa, sb, sc)
    inner = sizes[-1] if sizes else 1
    isa, isb, isc = (sa[-1], sb[-1], sc[-1]) if sizes else (0, 0, 0)
    e = c.itemsize
    stream = cp.cuda.get_current_stream().ptr
    for idx in itertools.product(*(range(s) for s in sizes[:-1])):
        oa = sum(i * s for i, s in zip(idx, sa)) * e
        ob = sum(i * s for i, s in zip(idx, sb)) * e
        oc = sum(i * s for i, s in zip(idx, sc)) * e
        mod.gemm_strided_batched(
            ta, tb, m, n, k, 1.0,
            a.data.ptr + oa, lda, isa,
            b.data.ptr + ob, ldb, isb,
            0.0, c.data.ptr + oc, n, isc, inner, dtype, stream,
            0 if bias is None else bias.data.ptr, 0 if bias is None else 2, act,
        )  # fmt: skip


def _flat_checks(
    op: str,
    cp: ModuleType,
    ta: bool,
    tb: bool,
    M: int,
    N: int,
    K: int,
    A: cupy.ndarray,
    lda: int,
    sa: int,
    B: cupy.ndarray,
    ldb: int,
    sb: int,
    C: cupy.ndarray,
    ldc: int,
    sc: int,
    batch: int,
    bias: cupy.ndarray | None,
    bias_kind: str,
    act: str,
) -> tuple[str, int, int]:
    """The checks of pyengine._C's gemm on flat buffers, so no launch can touch memory outside
    A, B, C or bias. Returns (dtype name, bias kind code, act code)."""
    named = {"A": A, "B": B, "C": C} | ({} if bias is None else {"bias": bias})
    _check_cupy(op, cp, **named)
    dtype = _dtype_name(op, *named.values())
    for name, x in named.items():
        if not x.flags.c_contiguous:
            raise ValueError(f"[{op}] {name} must be C-contiguous (a flat buffer)")
        if x.device != C.device:
            raise ValueError(f"[{op}] {name} is on {x.device} but C is on {C.device}")
    if bias_kind not in _BIAS_KINDS:
        raise ValueError(f"[{op}] bias_kind must be 'none', 'row' or 'col' but is {bias_kind!r}")
    if act not in _ACTS:
        raise ValueError(f"[{op}] act must be 'none', 'relu' or 'gelu' but is {act!r}")
    if min(M, N, K, batch) < 0:
        raise ValueError(f"[{op}] M, N, K, batch must be >= 0 but are {M}, {N}, {K}, {batch}")

    def span(rows: int, cols: int, ld: int) -> int:
        return 0 if rows == 0 or cols == 0 else (rows - 1) * ld + cols

    def need(stride: int, extent: int) -> int:
        return 0 if batch == 0 or extent == 0 else (batch - 1) * stride + extent

    a_rows, a_cols = (K, M) if ta else (M, K)
    b_rows, b_cols = (N, K) if tb else (K, N)
    # ld and stride rules are checked by _cuda itself; extents need the array sizes.
    if (
        lda >= max(1, a_cols)
        and ldb >= max(1, b_cols)
        and ldc >= max(1, N)
        and min(sa, sb, sc) >= 0
    ):
        for name, x, stride, extent in (
            ("A", A, sa, span(a_rows, a_cols, lda)),
            ("B", B, sb, span(b_rows, b_cols, ldb)),
            ("C", C, sc, span(M, N, ldc)),
        ):
            if name != "C" and (K == 0 or M == 0 or N == 0):
                continue  # nothing read
            if x.size < need(stride, extent):
                raise ValueError(
                    f"[{op}] {name} holds {x.size} elements but {need(stride, extent)} are needed"
                )
    kind = _BIAS_KINDS[bias_kind]
    if kind:
        if bias is None:
            raise ValueError(f"[{op}] bias_kind={bias_kind!r} needs a bias array")
        n = M if kind == 1 else N
        if bias.size < n:
            raise ValueError(f"[{op}] bias holds {bias.size} elements but {n} are needed")
    elif bias is not None:
        raise ValueError(f"[{op}] a bias was given with bias_kind='none'")
    return dtype, kind, _ACTS[act]


def gemm(
    transA: bool,
    transB: bool,
    M: int,
    N: int,
    K: int,
    alpha: float,
    A: cupy.ndarray,
    lda: int,
    B: cupy.ndarray,
    ldb: int,
    beta: float,
    C: cupy.ndarray,
    ldc: int,
    *,
    bias: cupy.ndarray | None = None,
    bias_kind: str = "none",
    act: str = "none",
) -> None:
    """BLAS-style GEMM on flat row-major CuPy buffers; C is overwritten (see cuda/gemm.h).

    Same signature and checks as backend.cpu.gemm; enqueued on CuPy's current stream.
    """
    gemm_strided_batched(
        transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
        bias=bias, bias_kind=bias_kind, act=act,
    )  # fmt: skip


def gemm_strided_batched(
    transA: bool,
    transB: bool,
    M: int,
    N: int,
    K: int,
    alpha: float,
    A: cupy.ndarray,
    lda: int,
    strideA: int,
    B: cupy.ndarray,
    ldb: int,
    strideB: int,
    beta: float,
    C: cupy.ndarray,
    ldc: int,
    strideC: int,
    batch: int,
    *,
    bias: cupy.ndarray | None = None,
    bias_kind: str = "none",
    act: str = "none",
) -> None:
    """Strided-batched GEMM on flat CuPy buffers: matrix b of A starts at A[b*strideA], etc."""
    mod, cp = require()
    dtype, kind, act_code = _flat_checks(
        "gemm", cp, bool(transA), bool(transB), M, N, K, A, lda, strideA, B, ldb, strideB,
        C, ldc, strideC, batch, bias, bias_kind, act,
    )  # fmt: skip
    with C.device:
        mod.gemm_strided_batched(
            bool(transA), bool(transB), M, N, K, float(alpha),
            A.data.ptr, lda, strideA, B.data.ptr, ldb, strideB,
            float(beta), C.data.ptr, ldc, strideC, batch, dtype,
            cp.cuda.get_current_stream().ptr,
            bias.data.ptr if kind else 0, kind, act_code,
        )  # fmt: skip
