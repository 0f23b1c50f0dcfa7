"""Reference for scaled-dot-product attention: materialized softmax, float64, and its adjoint.

    S = Q K^T * scale (+ additive mask, or -inf where a bool mask is False or above the causal
    diagonal: key j > query i, top-left aligned); P = softmax(S) over keys, a row whose scores
    are all -inf gives P = 0 (pyengine's convention: zeros, not NaN); Pd = P * keep / (1 - p)
    for a dropout keep mask; out = Pd V.

The adjoint is the textbook softmax one: dS = P * (dP - sum_j P dP), with dP = (g V^T) * keep /
(1 - p). Batch dims broadcast as NumPy's matmul; the mask gets no gradient.
"""

from __future__ import annotations

import math

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _scores(q, k, attn_mask, is_causal, scale):
    q, k = _f(q), _f(k)
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    s = (q @ np.swapaxes(k, -1, -2)) * sc
    Lq, Lk = s.shape[-2:]
    if is_causal:
        allowed = np.arange(Lk)[None, :] <= np.arange(Lq)[:, None]
        s = np.where(allowed, s, -np.inf)
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        s = np.where(m, s, -np.inf) if m.dtype == np.bool_ else s + _f(m)
    return s, sc


def _probs(s):
    m = np.max(s, axis=-1, keepdims=True)
    dead = ~np.isfinite(m) & (m < 0)  # every key masked
    e = np.exp(s - np.where(dead, 0.0, m))
    e = np.where(dead, 0.0, e)
    tot = e.sum(axis=-1, keepdims=True)
    return np.where(dead, 0.0, e / np.where(dead, 1.0, tot))


def _dropout_scale(keep, dropout_p):
    if keep is None:
        return 1.0
    return np.asarray(keep, dtype=np.float64) / (1.0 - dropout_p)


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, keep=None
):
    """out (..., Lq, Ev); keep: the dropout keep mask (..., Lq, Lk) or None (no dropout)."""
    s, _ = _scores(q, k, attn_mask, is_causal, scale)
    p = _probs(s) * _dropout_scale(keep, dropout_p)
    return p @ _f(v)


def scaled_dot_product_attention_vjp(
    g, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, keep=None
):
    """(dq, dk, dv, None) for the upstream gradient g (..., Lq, Ev)."""
    q, k, v, g = _f(q), _f(k), _f(v), _f(g)
    s, sc = _scores(q, k, attn_mask, is_causal, scale)
    p = _probs(s)
    ds_ = _dropout_scale(keep, dropout_p)
    pd = p * ds_
    dv = np.swapaxes(pd, -1, -2) @ g
    dp = (g @ np.swapaxes(v, -1, -2)) * ds_
    dsc = p * (dp - np.sum(p * dp, axis=-1, keepdims=True))
    dq = (dsc @ k) * sc
    dk = (np.swapaxes(dsc, -1, -2) @ q) * sc
    return dq, dk, dv
