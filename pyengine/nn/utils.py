"""Gradient clipping (torch.nn.utils.clip_grad_norm_, clip_grad_value_)."""

from __future__ import annotations

import math
from typing import Iterable, Union

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

_Params = Union[Tensor, Iterable[Tensor]]


def _grads(parameters: _Params, op: str) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"[{op}] parameters must be Tensors, got {type(p).__name__}")
        if p.grad is not None:
            out.append(p.grad)
    return out


def clip_grad_norm_(
    parameters: _Params,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Scale the gradients in place so that their joint norm is at most max_norm.

    The norm is taken over all gradients together, as if concatenated; the scale is
    max_norm / (total_norm + 1e-6) when below 1. Returns the total norm (before clipping) as
    a 0-d float32 tensor (float64 if any gradient is float64).
    """
    grads = _grads(parameters, "clip_grad_norm_")
    norm_type = float(norm_type)
    dtype = np.float64 if any(g.dtype == np.float64 for g in grads) else np.float32
    if not grads:
        return Tensor(np.zeros((), dtype=dtype))
    # per-gradient norms in float64 on each gradient's device, then combined on the host
    norms = []
    for g in grads:
        a = g.data
        xp = g._xp
        if a.size == 0:
            norms.append(0.0)
            continue
        if math.isinf(norm_type):
            norms.append(float(xp.max(xp.abs(a))))
        else:
            a64 = xp.abs(a.astype(np.float64))
            if norm_type == 2.0:
                norms.append(float(xp.sqrt(xp.sum(a64 * a64))))
            elif norm_type == 1.0:
                norms.append(float(xp.sum(a64)))
            else:
                norms.append(float(xp.sum(a64**norm_type)) ** (1.0 / norm_type))
    if math.isinf(norm_type):
        total = max(norms)
    elif norm_type == 1.0:
        total = sum(norms)
    else:
        total = sum(n**norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"[clip_grad_norm_] the total norm of order {norm_type} for gradients is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            g.data *= g.dtype.type(coef)
    return Tensor(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters: _Params, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters, "clip_grad_value_"):
        g._xp.clip(g.data, -clip_value, clip_value, out=g.data)
