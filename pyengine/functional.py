"""The public functional API (torch.nn.functional's names): F.relu, F.pad, F.linear, ...

Op families that run in our own kernels get their Function here as they land (conv, pool,
norm, softmax, attention, lstm); the foundation holds the basic ones.
"""

from __future__ import annotations

from typing import Optional

from .ops import matmul, pad, relu, sigmoid, tanh
from .tensor import Tensor

__all__ = ["linear", "pad", "relu", "sigmoid", "tanh"]


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    out = matmul(input, weight.mT)
    return out + bias if bias is not None else out
