"""matmul with NumPy's semantics (1-D promotion, broadcast batch dims) in our GEMM kernels.

The forward calls backend.<device>.matmul; backward is two matmuls written in Tensor ops, so
second-order gradients work.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import for_array
from ..tensor import Tensor
from .elementwise import sum_to

_FLOATS = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def _check(a: Tensor, b: Tensor, op: str) -> None:
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(
            f"[{op}] expects two Tensors, got {type(a).__name__} and {type(b).__name__}"
        )
    da, db = a.data, b.data
    if type(da) is not type(db):
        raise RuntimeError(f"[{op}] tensors are on {a.device} and {b.device}")
    if da.dtype not in _FLOATS or db.dtype not in _FLOATS:
        bad = da.dtype if da.dtype not in _FLOATS else db.dtype
        raise TypeError(f"[{op}] expects float32 or float64 tensors, got {bad}")
    if da.dtype != db.dtype:
        raise TypeError(f"[{op}] dtypes differ: {a.dtype} and {b.dtype}; cast one explicitly")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[{op}] both arguments need at least 1 dimension, got 0-d")


class Matmul(Function):
    """a @ b for a, b of ndim >= 2 (batch dims broadcast)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return Tensor(for_array(a.data).matmul(a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = sum_to(g @ b.mT, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to(a.mT @ g, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def matmul(a: Tensor, b: Tensor, _op: str = "matmul") -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are promoted and the added dim removed."""
    _check(a, b, _op)
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]:  # the common case, lean
        return Matmul.apply(a, b)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"[{_op}] shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({a2.shape[-1]} != {b2.shape[-2]})"
        )
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"[{_op}] batch dims of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
        ) from None
    out = Matmul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def mm(a: Tensor, b: Tensor) -> Tensor:
    _check(a, b, "mm")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"[mm] expects 2-D tensors, got {a.ndim}-D and {b.ndim}-D")
    return matmul(a, b, "mm")


def bmm(a: Tensor, b: Tensor) -> Tensor:
    _check(a, b, "bmm")
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"[bmm] expects 3-D tensors, got {a.ndim}-D and {b.ndim}-D")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"[bmm] batch sizes differ: {a.shape[0]} and {b.shape[0]}")
    return matmul(a, b, "bmm")
