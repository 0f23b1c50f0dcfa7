"""CPU backend: turns NumPy arrays into calls of pyengine._C kernels."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, *, bias=None,
         bias_kind="none", act="none"):
    """BLAS-style GEMM on flat row-major buffers; C is overwritten (see csrc/cpu/gemm.h)."""
    _C.gemm(bool(transA), bool(transB), M, N, K, float(alpha), A, lda, B, ldb, float(beta), C,
            ldc, bias, bias_kind, act)


def gemm_strided_batched(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta,
                         C, ldc, strideC, batch, *, bias=None, bias_kind="none", act="none"):
    """Strided-batched GEMM on flat buffers: matrix b of A starts at A[b*strideA], etc."""
    _C.gemm_strided_batched(bool(transA), bool(transB), M, N, K, float(alpha), A, lda, strideA, B,
                            ldb, strideB, float(beta), C, ldc, strideC, batch, bias, bias_kind,
                            act)


def _gemm_ready(a: np.ndarray) -> bool:
    """True if the kernel can read the trailing 2-D matrices of a in place."""
    if a.ndim < 2:
        return False
    item = a.itemsize
    rows, cols = a.shape[-2], a.shape[-1]
    s1, s2 = a.strides[-2], a.strides[-1]
    if min(a.strides, default=0) < 0:
        return False
    row_major = (s2 == item or cols <= 1) and (rows <= 1 or s1 >= max(cols, 1) * item)
    col_major = (s1 == item or rows <= 1) and (cols <= 1 or s2 >= max(rows, 1) * item)
    return row_major or col_major


def _merge_batch(a: np.ndarray, batch: tuple) -> Optional[np.ndarray]:
    """View a (already broadcast to batch + 2 dims) as (prod(batch), r, c) without copying,
    or None when its batch strides cannot be expressed as one stride."""
    nb = int(np.prod(batch)) if batch else 1
    if not batch:
        return a.reshape((1,) + a.shape)
    shape, strides = a.shape[: len(batch)], a.strides[: len(batch)]
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        stride = 0
    elif all(s == 0 for _, s in dims):
        stride = 0
    else:
        for (n1, s1), (n2, s2) in zip(dims, dims[1:]):
            if s1 != s2 * n2:
                return None
        stride = dims[-1][1]
    return np.lib.stride_tricks.as_strided(
        a, shape=(nb,) + a.shape[-2:], strides=(stride,) + a.strides[-2:], writeable=False
    )


def matmul(a: np.ndarray, b: np.ndarray, bias: Optional[np.ndarray] = None,
           act: str = "none") -> np.ndarray:
    """act(a @ b + bias) for arrays of ndim >= 2 with broadcast batch dims, in our GEMM.

    dtype and shape checks are the caller's (pyengine.ops.matmul); views are used in place
    when one of their two trailing strides is unit, else copied explicitly.
    """
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    out = np.empty(batch + (M, N), dtype=a.dtype)
    if out.size == 0:
        return out
    ops = []
    for x in (a, b):
        if not _gemm_ready(x):
            x = np.ascontiguousarray(x)
        x = np.broadcast_to(x, batch + x.shape[-2:])
        x3 = _merge_batch(x, batch)
        if x3 is None:
            x3 = np.ascontiguousarray(x).reshape((-1,) + x.shape[-2:])
        ops.append(x3)
    _C.matmul_into(ops[0], ops[1], out.reshape((-1, M, N)), bias, act)
    return out
