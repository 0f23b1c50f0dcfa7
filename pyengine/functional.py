"""The public functional API (torch.nn.functional's names): F.relu, F.pad, F.linear, ...

Op families that run in our own kernels get their Function here as they land (conv, pool,
norm, softmax, attention, lstm); the foundation holds the basic ones.
"""

from __future__ import annotations

from typing import Optional  # noqa: F401

from .ops import pad, relu, sigmoid, tanh
from .ops.activation import elu, gelu, leaky_relu, selu, silu, softplus
from .ops.attention import scaled_dot_product_attention
from .ops.conv import conv1d, conv2d, conv_transpose2d
from .ops.dropout import dropout, embedding
from .ops.linear import linear
from .ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    l1_loss,
    mse_loss,
)
from .ops.lstm import gru, gru_cell, lstm, lstm_cell
from .ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from .ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    interpolate,
    max_pool2d,
    max_unpool2d,
)
from .ops.softmax import cross_entropy, log_softmax, nll_loss, softmax
from .tensor import Tensor  # noqa: F401

__all__ = ["linear", "pad", "relu", "sigmoid", "tanh"]
__all__ += ["conv1d", "conv2d", "conv_transpose2d"]
__all__ += ["scaled_dot_product_attention"]
__all__ += [
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "nll_loss",
]
__all__ += ["gelu", "silu", "leaky_relu", "elu", "selu", "softplus"]
__all__ += ["lstm", "lstm_cell", "gru", "gru_cell"]
__all__ += [
    "dropout",
    "embedding",
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
]
__all__ += [
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "max_unpool2d",
    "interpolate",
]
