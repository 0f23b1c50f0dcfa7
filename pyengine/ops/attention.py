"""scaled_dot_product_attention: torch's signature, the fused kernels of csrc/cpu/attention.h.

The forward runs FlashAttention-2 (online softmax, no L x L matrix) and keeps the logsumexp of
each query row; the backward recomputes the probabilities from Q, K, V, the output and the
logsumexp. Dropout is a counter-based hash of (seed, batch*head, query, key): the forward draws
one seed from pyengine's generator (``pe.manual_seed``) and the backward replays the same mask,
which is never stored. The fused backward is not differentiable again (no double backward).
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backend import for_array
from ..tensor import Tensor, _rng

__all__ = ["scaled_dot_product_attention"]

_OP = "scaled_dot_product_attention"


def _as_4d(a, B: int, H: int) -> np.ndarray:
    """(..., L, E) -> (B, H, L, E), a view whenever the batch dims allow it."""
    return a.reshape((B, H) + a.shape[-2:])


def _kernel_ready(a):
    """A (B,H,L,E) array the kernel reads in place: unit last stride, rows not overlapping."""
    item = a.itemsize
    s = a.strides
    if min(s, default=0) < 0 or any(x % item for x in s):
        return a.copy()
    if a.shape[3] > 1 and s[3] != item:
        return a.copy()
    if a.shape[2] > 1 and s[2] < a.shape[3] * item:
        return a.copy()
    return a


class ScaledDotProductAttention(Function):
    """Fused attention of (..., L, E) tensors; the kernels see (B, H, L, E) arrays q4, k4, v4.

    forward(query, key, value, q4, k4, v4, mask, is_causal, scale, dropout_p, seed): the first
    three are the caller's tensors (gradients go to them), mask is None or a constant array
    broadcast to (B, H, Lq, Lk).
    """

    @staticmethod
    def forward(ctx, query, key, value, q4, k4, v4, mask, is_causal, scale, dropout_p, seed):
        be = for_array(q4)
        out, lse = be.sdpa_forward(q4, k4, v4, mask, is_causal, scale, dropout_p, seed)
        # Arrays, not Tensors, are kept: no reference from the node to its own output tensor.
        ctx.arrays = (q4, k4, v4, out, lse)
        ctx.args = (mask, is_causal, scale, dropout_p, seed)
        ctx.shapes = (tuple(query.shape), tuple(key.shape), tuple(value.shape))
        return Tensor(out.reshape(tuple(query.shape[:-1]) + (value.shape[-1],)))

    @staticmethod
    def backward(ctx, g):
        if is_grad_enabled():
            raise RuntimeError(
                f"[{_OP}] the fused backward is not differentiable (no double backward); "
                "use create_graph=False"
            )
        q4, k4, v4, out, lse = ctx.arrays
        mask, is_causal, scale, dropout_p, seed = ctx.args
        go = g._xp.ascontiguousarray(g.data).reshape(out.shape)
        dq, dk, dv = for_array(q4).sdpa_backward(
            q4, k4, v4, mask, is_causal, scale, dropout_p, seed, out, lse, go
        )
        need = ctx.needs_input_grad
        qs, ks, vs = ctx.shapes
        return (
            Tensor(dq.reshape(qs)) if need[0] else None,
            Tensor(dk.reshape(ks)) if need[1] else None,
            Tensor(dv.reshape(vs)) if need[2] else None,
        ) + (None,) * 8


def _check(query, key, value, attn_mask, dropout_p, is_causal, scale):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"[{_OP}] {name} must be a Tensor, got {type(t).__name__}")
    for name, t in (("key", key), ("value", value)):
        if t.device != query.device:
            raise RuntimeError(f"[{_OP}] {name} is on {t.device} but query is on {query.device}")
    floats = (np.float32, np.float64) + ((np.float16,) if query.device != "cpu" else ())
    if query.dtype not in floats:
        raise TypeError(
            f"[{_OP}] query must be float32 or float64 (or float16 on CUDA), got {query.dtype}"
        )
    for name, t in (("key", key), ("value", value)):
        if t.dtype != query.dtype:
            raise TypeError(
                f"[{_OP}] {name} has dtype {t.dtype} but query has {query.dtype}; "
                "cast one explicitly"
            )
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(
            f"[{_OP}] query, key and value must have the same rank >= 2 (..., L, E), got "
            f"{query.ndim}-D, {key.ndim}-D and {value.ndim}-D"
        )
    qs, ks, vs = tuple(query.shape), tuple(key.shape), tuple(value.shape)
    if not (qs[:-2] == ks[:-2] == vs[:-2]):
        raise ValueError(
            f"[{_OP}] query, key and value batch dims differ: {qs[:-2]}, {ks[:-2]}, {vs[:-2]}"
        )
    if ks[-1] != qs[-1]:
        raise ValueError(
            f"[{_OP}] query and key head dims differ: {qs[-1]} (query {qs}) vs {ks[-1]} (key {ks})"
        )
    if vs[-2] != ks[-2]:
        raise ValueError(
            f"[{_OP}] key and value lengths differ: {ks[-2]} (key {ks}) vs {vs[-2]} (value {vs})"
        )
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real):
        raise TypeError(f"[{_OP}] dropout_p must be a float, got {type(dropout_p).__name__}")
    if not 0.0 <= float(dropout_p) < 1.0:
        raise ValueError(f"[{_OP}] dropout_p must be in [0, 1), got {dropout_p}")
    if scale is not None and (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not math.isfinite(float(scale))
    ):
        raise ValueError(f"[{_OP}] scale must be a finite float or None, got {scale!r}")
    if attn_mask is not None:
        if is_causal:
            raise ValueError(f"[{_OP}] is_causal=True cannot be combined with an attn_mask")
        if not isinstance(attn_mask, Tensor):
            raise TypeError(
                f"[{_OP}] attn_mask must be a Tensor or None, got {type(attn_mask).__name__}"
            )
        if attn_mask.device != query.device:
            raise RuntimeError(
                f"[{_OP}] attn_mask is on {attn_mask.device} but query is on {query.device}"
            )
        if attn_mask.dtype != np.bool_ and attn_mask.dtype != query.dtype:
            raise TypeError(
                f"[{_OP}] attn_mask must be bool or {query.dtype} (additive), got {attn_mask.dtype}"
            )
        full = qs[:-2] + (qs[-2], ks[-2])
        try:
            ok = np.broadcast_shapes(tuple(attn_mask.shape), full) == full
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"[{_OP}] attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
                f"{full} (batch..., Lq, Lk)"
            )


def _repeat_kv_heads(query, key, value):
    """Grouped-query attention: repeat each key/value head for its group of query heads."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 3:
            raise ValueError(f"[{_OP}] enable_gqa=True needs {name} with a head dim (-3)")
    hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
    if hk != hv or hk == 0 or hq % hk != 0:
        raise ValueError(
            f"[{_OP}] enable_gqa=True needs key and value heads ({hk}, {hv}) equal and dividing "
            f"the query heads ({hq})"
        )
    if hk == hq:
        return key, value
    g = hq // hk
    out = []
    for t in (key, value):
        lead = tuple(t.shape[:-3])
        t = t.unsqueeze(-3).expand(*lead, hk, g, *t.shape[-2:])
        out.append(t.reshape(*lead, hq, *t.shape[-2:]))
    return tuple(out)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value, fused (torch.nn.functional's signature).

    query (..., Lq, E), key (..., Lk, E), value (..., Lk, Ev) with equal batch dims; a bool
    attn_mask takes part where True, a float one is added; both broadcast to (..., Lq, Lk).
    is_causal masks keys j > i (top-left aligned). A row with every key masked gives zeros
    (torch gives NaN there). The mask gets no gradient. enable_gqa: key/value may have fewer
    heads (dim -3) than query, a divisor of them (grouped-query attention; the key/value heads
    are repeated, so this path copies them).
    """
    if enable_gqa:
        key, value = _repeat_kv_heads(query, key, value)
    _check(query, key, value, attn_mask, dropout_p, is_causal, scale)
    qs = tuple(query.shape)
    batch = qs[:-2]
    H = batch[-1] if batch else 1
    B = int(np.prod(batch[:-1], dtype=np.int64)) if len(batch) > 1 else 1
    Lq, Lk = qs[-2], key.shape[-2]
    sc = 1.0 / math.sqrt(qs[-1]) if scale is None else float(scale)
    if qs[-1] == 0 and scale is None:
        sc = 1.0
    q4, k4, v4 = (_kernel_ready(_as_4d(t.data, B, H)) for t in (query, key, value))
    mask = None
    if attn_mask is not None:
        xp = query._xp
        m = xp.broadcast_to(attn_mask.data, batch + (Lq, Lk))
        mask = m.reshape((B, H, Lq, Lk))
    seed = int(_rng().integers(0, 2**63)) if dropout_p > 0 else 0
    return ScaledDotProductAttention.apply(
        query, key, value, q4, k4, v4, mask, bool(is_causal), sc, float(dropout_p), seed
    )
