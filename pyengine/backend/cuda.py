"""CUDA backend: glue between CuPy arrays and the kernels of ``pyengine._cuda``.

No kernel logic lives here: this module picks transpose flags, leading
dimensions and batch strides from CuPy array strides, allocates outputs with
CuPy and launches on CuPy's current stream. CuPy is imported lazily so that
importing pyengine works on machines without it.
"""

from __future__ import annotations

import functools
import itertools
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import cupy

__all__ = [
    "BIAS_KINDS",
    "ACTIVATIONS",
    "is_available",
    "unavailable_reason",
    "require",
    "info",
    "matmul",
    "gemm",
]

_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
BIAS_KINDS = {"none": 0, "row": 1, "col": 2}
ACTIVATIONS = {"none": 0, "relu": 1, "gelu": 2}


@functools.cache
def _probe() -> tuple[ModuleType | None, ModuleType | None, str | None]:
    """Import the extension and CuPy once; return (_cuda, cupy, reason unavailable)."""
    try:
        from pyengine import _cuda
    except ImportError as exc:
        return None, None, f"pyengine was built without its CUDA module ({_build_hint()}; {exc})"
    try:
        import cupy
    except ImportError as exc:
        return _cuda, None, f"CuPy is not installed (pip install cupy-cuda13x or similar; {exc})"
    try:
        count = _cuda.device_count()
    except RuntimeError as exc:
        return _cuda, cupy, f"the CUDA runtime failed to start ({exc})"
    if count == 0:
        return _cuda, cupy, "no CUDA GPU is visible (no device, or no NVIDIA driver)"
    return _cuda, cupy, None


def _build_hint() -> str:
    try:
        from pyengine import _build_info as bi
    except ImportError:
        return "no build information"
    if str(bi.CUDA_OPTION).upper() == "OFF":
        return "the build had PYENGINE_CUDA=OFF"
    if not bi.CUDA_COMPILER_FOUND:
        return "no CUDA compiler was found at build time"
    return f"CUDA_BUILT={bi.CUDA_BUILT}"


def is_available() -> bool:
    """True when pyengine._cuda is built, CuPy imports and at least one GPU is visible."""
    return _probe()[2] is None


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used, or None when it can."""
    return _probe()[2]


def require() -> tuple[ModuleType, ModuleType]:
    """Return (pyengine._cuda, cupy) or raise RuntimeError("[cuda] ...") saying why not."""
    mod, cp, reason = _probe()
    if reason is not None:
        raise RuntimeError(f"[cuda] CUDA is not available: {reason}")
    return mod, cp


def info() -> dict[str, Any]:
    """What the CUDA module was built for and what it sees (for ``python -m pyengine info``)."""
    mod, _, reason = _probe()
    out: dict[str, Any] = {"available": reason is None, "reason": reason}
    if mod is not None:
        out["built_architectures"] = mod.built_architectures()
        out["runtime_version"] = mod.runtime_version()
        out["driver_version"] = mod.driver_version()
        try:
            out["devices"] = mod.devices()
        except RuntimeError as exc:
            out["devices"] = []
            out["devices_error"] = str(exc)
    return out


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
        if s % x.itemsize:
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


def matmul(a: cupy.ndarray, b: cupy.ndarray) -> cupy.ndarray:
    """``a @ b`` for CuPy arrays with NumPy's matmul semantics (float32 / float64).

    1-D operands are promoted (and the added dimension removed from the result),
    batch dimensions broadcast. Strided views are used in place when one of their
    two trailing strides is the element size; otherwise they are copied to C order.
    Runs on CuPy's current stream.
    """
    mod, cp = require()
    _check_cupy("matmul", cp, a=a, b=b)
    dtype = _dtype_name("matmul", a, b)
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

    with a.device:
        c = cp.empty(batch + (m, n), dtype=a.dtype)
        if c.size:
            _batched_gemm(mod, cp, a2, b2, c, batch, dtype)
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
        )  # fmt: skip


def _row_major_ld(op: str, name: str, x: cupy.ndarray) -> int:
    """ld of a matrix whose rows are contiguous (unit stride on the last dim)."""
    e = x.itemsize
    rows, cols = x.shape[-2:]
    sr, sc = x.strides[-2:]
    if cols > 1 and sc != e or sr % e or (rows > 1 and sr // e < cols):
        raise ValueError(
            f"[{op}] {name} must have contiguous rows (unit stride on the last dimension) but "
            f"has shape {x.shape} and strides {x.strides}"
        )
    return sr // e if rows > 1 else max(cols, 1)


def gemm(
    a: cupy.ndarray,
    b: cupy.ndarray,
    c: cupy.ndarray | None = None,
    *,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
    bias: cupy.ndarray | None = None,
    bias_kind: str = "col",
    act: str = "none",
) -> cupy.ndarray:
    """``c = act(alpha * op(a) @ op(b) + beta * c + bias)`` with pyengine._cuda.gemm.

    a, b, c are 2-D CuPy arrays with contiguous rows (any row stride); op(x) is x.T
    when trans_x. The arrays as stored are (M, K) or (K, M) for a, (K, N) or (N, K)
    for b, (M, N) for c. c is written in place and returned; when c is None it is
    allocated and beta must be 0. bias is a contiguous 1-D array of length N
    (bias_kind="col", as in a linear layer) or M (bias_kind="row"); act is "none",
    "relu" or "gelu" (exact). Runs on CuPy's current stream.
    """
    mod, cp = require()
    named = {"a": a, "b": b, "c": c, "bias": bias}
    named = {key: x for key, x in named.items() if x is not None}
    _check_cupy("gemm", cp, **named)
    arrays = list(named.values())
    dtype = _dtype_name("gemm", *arrays)
    if a.ndim != 2 or b.ndim != 2 or (c is not None and c.ndim != 2):
        shapes = [x.shape for x in (a, b, c) if x is not None]
        raise ValueError(f"[gemm] a, b and c must be 2-D but have shapes {shapes}")
    if any(x.device != a.device for x in arrays):
        raise ValueError("[gemm] all arrays must be on the same device")
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if k != kb:
        raise ValueError(f"[gemm] op(a) is {m}x{k} but op(b) is {kb}x{n}: inner dimensions differ")
    if bias_kind not in BIAS_KINDS:
        raise ValueError(f"[gemm] bias_kind must be one of {list(BIAS_KINDS)} but is {bias_kind!r}")
    if act not in ACTIVATIONS:
        raise ValueError(f"[gemm] act must be one of {list(ACTIVATIONS)} but is {act!r}")
    kind = 0
    if bias is not None and bias_kind != "none":
        want = n if bias_kind == "col" else m
        if bias.ndim != 1 or bias.shape[0] != want:
            raise ValueError(
                f"[gemm] bias ({bias_kind}) must have shape ({want},) but has {bias.shape}"
            )
        if bias.shape[0] > 1 and bias.strides[0] != bias.itemsize:
            raise ValueError(f"[gemm] bias must be contiguous but has strides {bias.strides}")
        kind = BIAS_KINDS[bias_kind]
    with a.device:
        if c is None:
            if beta != 0:
                raise ValueError(f"[gemm] beta = {beta} needs an output c to read")
            c = cp.empty((m, n), dtype=a.dtype)
        elif c.shape != (m, n):
            raise ValueError(f"[gemm] c must have shape {(m, n)} but has {c.shape}")
        lda = _row_major_ld("gemm", "a", a)
        ldb = _row_major_ld("gemm", "b", b)
        ldc = _row_major_ld("gemm", "c", c)
        mod.gemm(
            trans_a, trans_b, m, n, k, float(alpha),
            a.data.ptr, lda, b.data.ptr, ldb, float(beta), c.data.ptr, ldc,
            dtype, cp.cuda.get_current_stream().ptr,
            bias.data.ptr if kind else 0, kind, ACTIVATIONS[act],
        )  # fmt: skip
    return c
