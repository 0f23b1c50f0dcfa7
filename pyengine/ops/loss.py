"""Regression and binary-classification losses (torch.nn.functional's names and defaults).

mse_loss and l1_loss are composed of Tensor ops. binary_cross_entropy is one elementwise
Function with torch's clamps (log clamped at -100; the gradient's denominator x(1-x) clamped at
1e-12). binary_cross_entropy_with_logits is written with a stable softplus,
softplus(z) = max(z, 0) + log1p(exp(-|z|)), so no exp overflows. All backward passes are in
Tensor ops (twice differentiable). cross_entropy / nll_loss live with softmax (ops/softmax.py).
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .elementwise import sigmoid

__all__ = [
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
]

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check(op: str, input, target, reduction: str, same_shape: bool) -> None:
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"[{op}] {name} must be a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"[{op}] {name} must be a floating-point tensor, got {t.dtype}")
    if target.dtype != input.dtype:
        raise TypeError(
            f"[{op}] target has dtype {target.dtype} but input has {input.dtype}; "
            "cast one explicitly"
        )
    if target.device != input.device:
        raise RuntimeError(f"[{op}] target is on {target.device} but input on {input.device}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{op}] reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if tuple(target.shape) != tuple(input.shape):
        if same_shape:
            raise ValueError(
                f"[{op}] target size {tuple(target.shape)} must be the same as input size "
                f"{tuple(input.shape)}"
            )
        try:
            np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            raise ValueError(
                f"[{op}] input {tuple(input.shape)} and target {tuple(target.shape)} do not "
                "broadcast"
            ) from None
        warnings.warn(
            f"[{op}] using a target size {tuple(target.shape)} that is different to the input "
            f"size {tuple(input.shape)}; they are broadcast, which is likely not what you want",
            stacklevel=3,
        )


def _check_weight(op: str, name: str, w, input: Tensor) -> None:
    if w is None:
        return
    if not isinstance(w, Tensor):
        raise TypeError(f"[{op}] {name} must be a Tensor, got {type(w).__name__}")
    if w.dtype != input.dtype or w.device != input.device:
        raise TypeError(
            f"[{op}] {name} must have the input's dtype {input.dtype} and device {input.device}, "
            f"got {w.dtype} on {w.device}"
        )
    try:
        np.broadcast_shapes(tuple(w.shape), tuple(input.shape))
    except ValueError:
        raise ValueError(
            f"[{op}] {name} of shape {tuple(w.shape)} does not broadcast to input "
            f"{tuple(input.shape)}"
        ) from None


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of (input - target)^2."""
    _check("mse_loss", input, target, reduction, same_shape=False)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of |input - target|; the gradient at 0 is 0, as in torch."""
    _check("l1_loss", input, target, reduction, same_shape=False)
    return _reduce((input - target).abs(), reduction)


# ----------------------------------------------------------------------------- BCE


def _log_clamped(xp, a):
    with np.errstate(divide="ignore"):
        return xp.maximum(xp.log(a), -100.0)


class _BinaryCrossEntropy(Function):
    """-(y log x + (1-y) log(1-x)) elementwise, each log clamped at -100 (torch)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        xp = x._xp
        out = -(y.data * _log_clamped(xp, x.data) + (1 - y.data) * _log_clamped(xp, 1 - x.data))
        return Tensor(out.astype(x.dtype, copy=False))

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = g * (x - y) / (x * (1 - x)).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gy = g * ((1 - x).log().clamp(min=-100.0) - x.log().clamp(min=-100.0))
        return gx, gy


def binary_cross_entropy(
    input: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean"
) -> Tensor:
    """BCE between probabilities input in [0, 1] and target (same shape)."""
    _check("binary_cross_entropy", input, target, reduction, same_shape=True)
    _check_weight("binary_cross_entropy", "weight", weight, input)
    xp = input._xp
    if input.numel() and bool(xp.any((input.data < 0) | (input.data > 1) | xp.isnan(input.data))):
        raise ValueError("[binary_cross_entropy] all elements of input should be between 0 and 1")
    loss = _BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class _Softplus(Function):
    """log(1 + exp(x)) without overflow; d/dx = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xp = x._xp
        a = x.data
        return Tensor(xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a))))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * sigmoid(x),)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    reduction: str = "mean",
    pos_weight: Optional[Tensor] = None,
) -> Tensor:
    """BCE of sigmoid(input) against target, computed stably from the logits.

    loss = pos_weight y softplus(-x) + (1 - y) softplus(x), times weight; pos_weight
    broadcasts against the last (class) dimension.
    """
    op = "binary_cross_entropy_with_logits"
    _check(op, input, target, reduction, same_shape=True)
    _check_weight(op, "weight", weight, input)
    _check_weight(op, "pos_weight", pos_weight, input)
    # -[p y log s(x) + (1 - y) log(1 - s(x))] = p y softplus(-x) + (1 - y) softplus(x): a sum
    # of non-negative terms, so no cancellation (torch's (1 - y) x + ... loses small losses).
    pos = target * _Softplus.apply(-input)
    if pos_weight is not None:
        pos = pos * pos_weight
    loss = pos + (1 - target) * _Softplus.apply(input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
