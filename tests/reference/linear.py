"""Reference for linear: y = x W^T + b (float64), and its vector-Jacobian product.

x has shape (..., in), W (out, in), b (out,). With y_{..., o} = sum_i x_{..., i} W_{o, i} + b_o:
dL/dx = g W, dL/dW = sum over leading dims of g^T x, dL/db = sum over leading dims of g.
"""

from __future__ import annotations

import numpy as np


def linear(x, w, b=None):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    y = np.einsum("...i,oi->...o", x, w)
    return y + np.asarray(b, np.float64) if b is not None else y


def linear_vjp(g, x, w, b=None):
    g, x, w = (np.asarray(a, np.float64) for a in (g, x, w))
    gx = np.einsum("...o,oi->...i", g, w)
    gw = g.reshape(-1, w.shape[0]).T @ x.reshape(-1, w.shape[1])  # sum_n g[n, o] x[n, i]
    gb = g.reshape(-1, w.shape[0]).sum(axis=0) if b is not None else None
    return (gx, gw, gb) if b is not None else (gx, gw)


def embedding(idx, w):
    return np.asarray(w, np.float64)[np.asarray(idx)]


def embedding_vjp(g, idx, w, padding_idx=None):
    """Rows of dL/dW collect the gradients of every position that looked them up."""
    gw = np.zeros(np.shape(w), np.float64)
    flat_idx = np.asarray(idx).reshape(-1)
    flat_g = np.asarray(g, np.float64).reshape(len(flat_idx), -1)
    for k, i in enumerate(flat_idx):
        if i != padding_idx:
            gw[i] += flat_g[k]
    return gw
