"""dropout (inverted scaling, pyengine's seeded generator) and embedding (a row lookup).

dropout multiplies by a constant mask (drawn on the CPU, so a seed gives the same mask on every
device); its backward is that of a product, twice differentiable. embedding's backward
scatter-adds the gradient into the weight's rows (zero at ``padding_idx``), written with the
indexing Functions, so it is differentiable again too.
"""

from __future__ import annotations

import numbers
from typing import Optional

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, _move, _rng
from .indexing import IndexPut

__all__ = ["dropout", "embedding"]


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (when training)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"[dropout] input must be a Tensor, got {type(input).__name__}")
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] dropout probability has to be between 0 and 1, but got {p}")
    if not input.is_floating_point():
        raise TypeError(f"[dropout] expects a floating-point tensor, got {input.dtype}")
    if not training or p == 0.0:
        return input
    keep = _rng().random(input.shape) >= p
    if p == 1.0:
        scale = np.zeros(input.shape, dtype=input.dtype)
    else:
        scale = keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    mask = Tensor(_move(scale, input.device))
    if inplace:
        if input.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "[dropout] inplace=True on a tensor that requires grad is not supported "
                "(pyengine's autograd has no in-place ops); use inplace=False"
            )
        input.data *= mask.data
        return input
    return input * mask


class _Embedding(Function):
    @staticmethod
    def forward(ctx, idx, weight, padding_idx):
        ctx.idx = idx
        ctx.num = weight.shape[0]
        ctx.padding_idx = padding_idx
        return Tensor(weight.data[idx])

    @staticmethod
    def backward(ctx, g):
        gw = IndexPut.apply(g, (ctx.idx,), (ctx.num,) + tuple(g.shape[ctx.idx.ndim :]))
        if ctx.padding_idx is not None:
            keep = g._xp.ones((ctx.num,) + (1,) * (gw.ndim - 1), dtype=g.dtype)
            keep[ctx.padding_idx] = 0
            gw = gw * Tensor(keep)
        return None, gw, None


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: Optional[int] = None,
    max_norm: Optional[float] = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of weight (num_embeddings, embedding_dim) picked by the integer tensor input."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError("[embedding] weight must be a 2-D Tensor (num_embeddings, embedding_dim)")
    if isinstance(input, Tensor):
        if input.dtype.kind not in "iu":
            raise TypeError(f"[embedding] input must be an integer tensor, got {input.dtype}")
        if input.device != weight.device:
            raise RuntimeError(
                f"[embedding] input is on {input.device} but weight on {weight.device}"
            )
        idx = input.data
    else:
        raise TypeError(f"[embedding] input must be a Tensor, got {type(input).__name__}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "[embedding] max_norm, scale_grad_by_freq and sparse are not implemented"
        )
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"[embedding] padding_idx {padding_idx} must be within num_embeddings")
        padding_idx = padding_idx % n
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(
            f"[embedding] index out of range: indices must be in [0, {n}), got "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return _Embedding.apply(idx, weight, padding_idx)
