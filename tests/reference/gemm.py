"""Reference for GEMM (flat row-major buffers, BLAS-style) and matmul (NumPy semantics).

gemm: C = act(alpha * op(A) @ op(B) + beta * C + bias), written element by element
from the contract: op(A)(i, k) = A[i*lda + k], or A[k*lda + i] if transA; likewise B;
C(i, j) = C[i*ldc + j]. beta == 0 means C is not read. Only the M x N addressed
elements of C change; everything else in the buffer is left as it was.
"""

from __future__ import annotations

import math

import numpy as np

from ._util import unbroadcast

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU: 0.5 x (1 + erf(x / sqrt 2))."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def relu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, 0.0)


def op_matrix(buf, trans: bool, rows: int, cols: int, ld: int, offset: int = 0) -> np.ndarray:
    """The rows x cols matrix read from a flat buffer: (r, c) = buf[offset + r*ld + c],
    or buf[offset + c*ld + r] when trans."""
    flat = np.asarray(buf, dtype=np.float64).reshape(-1)
    r = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    idx = offset + (c * ld + r if trans else r * ld + c)
    return flat[idx]


def c_indices(M: int, N: int, ldc: int, offset: int = 0) -> np.ndarray:
    """Flat indices of the M x N elements of C."""
    return offset + np.arange(M)[:, None] * ldc + np.arange(N)[None, :]


def gemm(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    B,
    ldb,
    beta,
    C,
    ldc,
    *,
    bias=None,
    bias_kind="none",
    act="none",
    offA=0,
    offB=0,
    offC=0,
) -> np.ndarray:
    """Return a float64 copy of the flat buffer C after the call (C itself is untouched)."""
    a = op_matrix(A, transA, M, K, lda, offA)
    b = op_matrix(B, transB, K, N, ldb, offB)
    out = np.array(C, dtype=np.float64).reshape(-1).copy()
    idx = c_indices(M, N, ldc, offC)
    acc = alpha * (a @ b) if K > 0 else np.zeros((M, N))  # K == 0: an empty sum is 0
    if beta != 0:
        acc = acc + beta * out[idx]
    if bias_kind == "row":
        acc = acc + np.asarray(bias, dtype=np.float64).reshape(M, 1)
    elif bias_kind == "col":
        acc = acc + np.asarray(bias, dtype=np.float64).reshape(1, N)
    elif bias_kind != "none":
        raise ValueError(bias_kind)
    if act == "relu":
        acc = relu(acc)
    elif act == "gelu":
        acc = gelu(acc)
    elif act != "none":
        raise ValueError(act)
    out[idx] = acc
    return out


def gemm_strided_batched(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    strideA,
    B,
    ldb,
    strideB,
    beta,
    C,
    ldc,
    strideC,
    batch,
    *,
    bias=None,
    bias_kind="none",
    act="none",
) -> np.ndarray:
    """Batch b reads A at offset b*strideA (B likewise) and writes C at b*strideC."""
    out = np.array(C, dtype=np.float64).reshape(-1).copy()
    for i in range(batch):
        out = gemm(
            transA,
            transB,
            M,
            N,
            K,
            alpha,
            A,
            lda,
            B,
            ldb,
            beta,
            out,
            ldc,
            bias=bias,
            bias_kind=bias_kind,
            act=act,
            offA=i * strideA,
            offB=i * strideB,
            offC=i * strideC,
        )
    return out


# ---------------------------------------------------------------- matmul (Tensor @)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NumPy matmul semantics: 1-D operands promoted, leading batch dims broadcast."""
    return np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))


def matmul_vjp(g, a, b):
    """d/dA (A @ B) applied to g: g @ B^T; d/dB: A^T @ g; batch broadcasting summed out."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    g = np.asarray(g, np.float64)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a.ndim == 1 and b.ndim == 1:  # vector . vector: g is a scalar
        g = g.reshape(1, 1)
    elif a.ndim == 1:  # the promoted row was removed from the result
        g = np.expand_dims(g, -2)
    elif b.ndim == 1:  # the promoted column was removed
        g = np.expand_dims(g, -1)
    ga = np.matmul(g, np.swapaxes(b2, -1, -2))
    gb = np.matmul(np.swapaxes(a2, -1, -2), g)
    return unbroadcast(ga, a2.shape).reshape(a.shape), unbroadcast(gb, b2.shape).reshape(b.shape)
