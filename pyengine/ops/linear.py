"""linear: input @ weight.T + bias in one GEMM call, the bias added by the GEMM's epilogue.

Forward calls ``backend.<device>.matmul(x, w.T, bias=b)`` on a 2-D view of the input
(leading dims flattened); ``w.T`` is a transposed view the GEMM reads in place. Backward is
two matmuls and a sum, written in Tensor ops, so second-order gradients work.
"""

from __future__ import annotations

import math
from typing import Optional

from ..autograd import Function
from ..backend import for_array
from ..tensor import Tensor

__all__ = ["linear"]


class Linear(Function):
    """y = x @ w.T + b for x of shape (..., in), w (out, in), b (out,) or None."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        n_in, n_out = w.shape[1], w.shape[0]
        rows = math.prod(x.shape[:-1])  # explicit: reshape(-1, 0) is ambiguous when empty
        x2 = x.data.reshape(rows, n_in)
        bias = None if b is None else x._xp.ascontiguousarray(b.data)
        out = for_array(x.data).matmul(x2, w.data.T, bias=bias)
        return Tensor(out.reshape(tuple(x.shape[:-1]) + (n_out,)))

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        n_in, n_out = w.shape[1], w.shape[0]
        rows = math.prod(x.shape[:-1])
        g2 = g.reshape(rows, n_out)
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = (g2 @ w).reshape(*x.shape) if need_x else None
        gw = g2.mT @ x.reshape(rows, n_in) if need_w else None
        gb = g2.sum(0) if need_b else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is None and name == "bias":
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"[linear] {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind != "f" or t.dtype.itemsize not in (4, 8):
            raise TypeError(f"[linear] {name} must be float32 or float64, got {t.dtype}")
        if t.dtype != input.dtype:
            raise TypeError(
                f"[linear] {name} has dtype {t.dtype} but input has {input.dtype}; "
                "cast one explicitly"
            )
        if t.device != input.device:
            raise RuntimeError(f"[linear] {name} is on {t.device} but input is on {input.device}")
    if weight.ndim != 2:
        raise ValueError(
            f"[linear] weight must have 2 dimensions (out_features, in_features) but has shape "
            f"{tuple(weight.shape)}"
        )
    if input.ndim < 1:
        raise ValueError("[linear] input must have at least 1 dimension, got a 0-d tensor")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"[linear] input's last dimension is {input.shape[-1]} but weight has shape "
            f"{tuple(weight.shape)} (in_features={weight.shape[1]})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"[linear] bias must have shape ({weight.shape[0]},) but has {tuple(bias.shape)}"
        )
    return Linear.apply(input, weight, bias)
