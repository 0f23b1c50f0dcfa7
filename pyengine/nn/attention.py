"""MultiheadAttention, TransformerEncoderLayer and TransformerEncoder, as in torch.nn.

Parameter names and shapes are torch's (``in_proj_weight`` (3E, E), ``in_proj_bias``,
``out_proj.weight``, ``out_proj.bias``; ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``
when kdim or vdim differ from embed_dim), so a torch state dict converted to NumPy loads
unchanged. With ``need_weights=False`` attention runs in the fused kernel
(F.scaled_dot_product_attention); with ``need_weights=True`` the softmax is materialized, as
torch does, so that the weights can be returned.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Optional, Union

import numpy as np

from .. import functional as F
from ..tensor import Tensor, empty
from . import init
from .linear import Dropout, Linear, _factory
from .module import Module, ModuleList, Parameter

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"]


def _mask_array(op: str, name: str, mask, dtype) -> Optional[np.ndarray]:
    """A user mask as an array: bool (True = masked out, torch's MHA convention) or float."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"[{op}] {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise TypeError(
            f"[{op}] only bool and floating types of {name} are supported, got {mask.dtype}"
        )
    if mask.dtype.kind == "f" and mask.dtype != dtype:
        raise TypeError(f"[{op}] {name} has dtype {mask.dtype} but the input has {dtype}")
    return mask.data


def _map_same(fn, query, key, value):
    """(fn(query), fn(key), fn(value)), with fn applied once to arguments that are the same
    tensor, so that self-attention (query is key is value) stays recognizable."""
    q = fn(query)
    k = q if key is query else fn(key)
    v = q if value is query else (k if value is key else fn(value))
    return q, k, v


def _additive(m, dtype, xp):
    """bool (True = masked out) -> 0 / -inf of dtype; float masks unchanged."""
    if m.dtype == np.bool_:
        return xp.where(m, dtype.type(-np.inf), dtype.type(0)).astype(dtype)
    return m


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: out_proj(softmax(q k^T / sqrt(hd) + mask) v) per head.

    add_bias_kv and add_zero_attn are not supported (NotImplementedError). Differences from
    torch: with need_weights=False a query row whose keys are all masked gives zeros (torch's
    fused path gives NaN); the materialized path (need_weights=True) gives NaN there, as torch.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: Optional[int] = None,
        vdim: Optional[int] = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        op = "MultiheadAttention"
        for nm, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"[{op}] {nm} must be a positive int, got {v!r}")
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"[{op}] embed_dim must be divisible by num_heads, got {embed_dim} and {num_heads}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"[{op}] dropout must be in [0, 1), got {dropout}")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(f"[{op}] add_bias_kv and add_zero_attn are not implemented")
        fk = _factory(device, dtype)
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * E, E, **fk))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(E, E, **fk))
            self.k_proj_weight = Parameter(empty(E, self.kdim, **fk))
            self.v_proj_weight = Parameter(empty(E, self.vdim, **fk))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * E, **fk))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, **fk)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    # ------------------------------------------------------------------ projections
    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one GEMM for q, k and v
                qkv = F.linear(query, w, b)
                return qkv[..., :E], qkv[..., E : 2 * E], qkv[..., 2 * E :]
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        need_weights: bool = True,
        attn_mask: Optional[Tensor] = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """(attn_output, attn_weights or None); shapes as torch (batch_first or (L, N, E))."""
        op = "MultiheadAttention"
        for nm, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"[{op}] {nm} must be a Tensor, got {type(t).__name__}")
            pdt = self.out_proj.weight.dtype
            if t.dtype != pdt:
                raise TypeError(
                    f"[{op}] {nm} has dtype {t.dtype} but the layer's parameters are {pdt}; "
                    "cast one explicitly (no implicit casts)"
                )
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                f"[{op}] query, key and value must all be 2-D (unbatched) or 3-D, "
                f"got {query.ndim}-D, {key.ndim}-D and {value.ndim}-D"
            )
        if query.shape[-1] != self.embed_dim:
            raise ValueError(
                f"[{op}] query has {query.shape[-1]} features but embed_dim is {self.embed_dim}"
            )
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(
                f"[{op}] key/value features must be kdim={self.kdim}, "
                f"vdim={self.vdim}, got {key.shape[-1]} and {value.shape[-1]}"
            )
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"[{op}] key and value shapes differ: {tuple(key.shape)} vs {tuple(value.shape)}"
            )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                f"[{op}] Need attn_mask if specifying the is_causal hint "
                "(as torch); pass the causal mask too"
            )
        dtype = query.dtype
        am = _mask_array(op, "attn_mask", attn_mask, dtype)
        kpm = _mask_array(op, "key_padding_mask", key_padding_mask, dtype)

        # to (N, L, E)
        if not batched:
            query, key, value = _map_same(lambda x: x.unsqueeze(0), query, key, value)
            if kpm is not None:
                kpm = kpm.reshape((1,) + kpm.shape)
        elif not self.batch_first:
            query, key, value = _map_same(lambda x: x.transpose(0, 1), query, key, value)
        N, L, S, H, hd = query.shape[0], query.shape[1], key.shape[1], self.num_heads, self.head_dim
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"[{op}] query batch {query.shape[0]} != key batch {key.shape[0]}")
        xp = query._xp
        # masks to something broadcastable to (N, H, L, S)
        if am is not None:
            if am.shape == (L, S):
                am = am.reshape(1, 1, L, S)
            elif am.shape == (N * H, L, S):
                am = am.reshape(N, H, L, S)
            else:
                raise ValueError(
                    f"[{op}] attn_mask must be ({L}, {S}) or ({N * H}, {L}, {S}), "
                    f"got {tuple(am.shape)}"
                )
        if kpm is not None:
            if kpm.shape != (N, S):
                raise ValueError(
                    f"[{op}] key_padding_mask must be ({N}, {S}), got {tuple(kpm.shape)}"
                )
            kpm = kpm.reshape(N, 1, 1, S)

        q, k, v = self._project(query, key, value)  # (N, L|S, E)
        q, k, v = (t.reshape(t.shape[0], t.shape[1], H, hd).permute(0, 2, 1, 3) for t in (q, k, v))
        p = self.dropout if self.training else 0.0

        weights = None
        if need_weights:
            mask = None
            for m in (am, kpm):
                if m is not None:
                    m = _additive(m, dtype, xp)
                    mask = m if mask is None else mask + m
            scores = (q @ k.mT) * (1.0 / math.sqrt(hd))
            if mask is not None:
                scores = scores + Tensor(xp.ascontiguousarray(mask))
            attn = F.softmax(scores, dim=-1)
            if p > 0.0:
                attn = F.dropout(attn, p=p)
            out = attn @ v
            weights = attn.mean(dim=1) if average_attn_weights else attn
            if not batched:
                weights = weights.squeeze(0)
        else:
            causal, mask = False, None
            if is_causal and kpm is None and am is not None:
                causal, am = True, None  # the hint: attn_mask is the causal mask
            masks = [m for m in (am, kpm) if m is not None]
            if masks and all(m.dtype == np.bool_ for m in masks):
                mask = ~masks[0] if len(masks) == 1 else ~(masks[0] | masks[1])  # True = attend
            elif masks:
                mask = _additive(masks[0], dtype, xp)
                if len(masks) == 2:
                    mask = mask + _additive(masks[1], dtype, xp)
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=None if mask is None else Tensor(mask),
                dropout_p=p,
                is_causal=causal,
            )
        # (N, H, L, hd) -> (N, L, E) -> out_proj
        out = out.permute(0, 2, 1, 3).reshape(N, L, self.embed_dim)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"dropout={self.dropout}, batch_first={self.batch_first}"
        )


def _activation(name_or_fn) -> Callable:
    if callable(name_or_fn):
        return name_or_fn
    if name_or_fn == "relu":
        return F.relu
    if name_or_fn == "gelu":
        return F.gelu
    raise ValueError(f"[TransformerEncoderLayer] activation should be relu/gelu, not {name_or_fn}")


class TransformerEncoderLayer(Module):
    """torch.nn.TransformerEncoderLayer: self-attention and a feed-forward block, each with a
    residual connection and LayerNorm (after, or before with norm_first=True)."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Union[str, Callable] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        from .normalization import LayerNorm

        fk = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **fk
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **fk)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **fk)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **fk)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(
        self,
        src: Tensor,
        src_mask: Optional[Tensor] = None,
        src_key_padding_mask: Optional[Tensor] = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """torch.nn.TransformerEncoder: num_layers deep copies of encoder_layer, then norm."""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Optional[Module] = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(
                f"[TransformerEncoder] num_layers must be an int >= 0, got {num_layers!r}"
            )
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Optional[Tensor] = None,
        src_key_padding_mask: Optional[Tensor] = None,
        is_causal: Optional[bool] = None,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(
                x,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )
        if self.norm is not None:
            x = self.norm(x)
        return x
