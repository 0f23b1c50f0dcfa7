"""The low-level kernel API: BLAS-style GEMM on flat buffers, for testing and benchmarking.

A, B, C are NumPy or CuPy arrays (or Tensors, whose data is used) holding row-major matrices;
C is overwritten in place. See csrc/cpu/gemm.h for the full contract.
"""

from __future__ import annotations

from .backend import for_array
from .tensor import Tensor


def _arr(x):
    return x.data if isinstance(x, Tensor) else x


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
) -> None:
    """C = act(alpha*op(A)*op(B) + beta*C + bias), in place; beta == 0 does not read C."""
    A, B, C = _arr(A), _arr(B), _arr(C)
    for_array(C).gemm(
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
        bias=_arr(bias),
        bias_kind=bias_kind,
        act=act,
    )


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
) -> None:
    """batch GEMMs; matrix b of A starts at A[b*strideA] (0 broadcasts), likewise B and C."""
    A, B, C = _arr(A), _arr(B), _arr(C)
    for_array(C).gemm_strided_batched(
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
        bias=_arr(bias),
        bias_kind=bias_kind,
        act=act,
    )
