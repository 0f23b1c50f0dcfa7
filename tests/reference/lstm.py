"""Reference for LSTM and GRU: NumPy float64 cells, unrolled layers and their adjoints.

Written from torch's documented formulas, one step at a time (never from our kernels).

LSTM (gate order i, f, g, o):
    a = x W_ih^T + b_ih + h W_hh^T + b_hh = [a_i | a_f | a_g | a_o]
    i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f c + i g;  h' = o tanh(c')
GRU (gate order r, z, n):
    [ir | iz | in] = x W_ih^T + b_ih;  [hr | hz | hn] = h W_hh^T + b_hh
    r = sigmoid(ir + hr);  z = sigmoid(iz + hz);  n = tanh(in + r hn)
    h' = (1 - z) n + z h
Layers run the cell over t = 0..T-1 (reverse: T-1..0). With ``lengths``, sequence n is
active at step t iff t < lengths[n]; an inactive step keeps the state and outputs 0 (what
torch's packed sequences give). Stacked layers feed the concatenated outputs of both
directions to the next layer. Weights are given as torch orders them: per layer, per
direction (forward, then reverse), [w_ih, w_hh, b_ih, b_hh] (biases may be None).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _f64(*xs):
    return [None if x is None else np.asarray(x, dtype=np.float64) for x in xs]


def _lin(x, w, b):
    out = x @ w.T
    return out if b is None else out + b


# ----------------------------------------------------------------------------- cells


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') for x (N, I), h, c (N, H)."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = _f64(x, h, c, w_ih, w_hh, b_ih, b_hh)
    a = _lin(x, w_ih, b_ih) + _lin(h, w_hh, b_hh)
    ai, af, ag, ao = np.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c2 = f * c + i * g
    return o * np.tanh(c2), c2


def lstm_cell_vjp(grads, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """Adjoint of lstm_cell: grads = (dh', dc') (None = 0) -> one gradient per input."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = _f64(x, h, c, w_ih, w_hh, b_ih, b_hh)
    dh2, dc2 = grads
    a = _lin(x, w_ih, b_ih) + _lin(h, w_hh, b_hh)
    ai, af, ag, ao = np.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c2 = f * c + i * g
    tc = np.tanh(c2)
    dh2 = np.zeros_like(c2) if dh2 is None else np.asarray(dh2, np.float64)
    dc2 = np.zeros_like(c2) if dc2 is None else np.asarray(dc2, np.float64)
    dc_tot = dc2 + dh2 * o * (1.0 - tc**2)
    da = np.concatenate(
        [
            dc_tot * g * i * (1 - i),
            dc_tot * c * f * (1 - f),
            dc_tot * i * (1 - g**2),
            dh2 * tc * o * (1 - o),
        ],
        axis=-1,
    )
    db = da.sum(axis=0)
    return (
        da @ w_ih,
        da @ w_hh,
        dc_tot * f,
        da.T @ x,
        da.T @ h,
        None if b_ih is None else db,
        None if b_hh is None else db.copy(),
    )


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' for x (N, I), h (N, H)."""
    x, h, w_ih, w_hh, b_ih, b_hh = _f64(x, h, w_ih, w_hh, b_ih, b_hh)
    ir, iz, in_ = np.split(_lin(x, w_ih, b_ih), 3, axis=-1)
    hr, hz, hn = np.split(_lin(h, w_hh, b_hh), 3, axis=-1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def gru_cell_vjp(dh2, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """Adjoint of gru_cell -> one gradient per input."""
    x, h, w_ih, w_hh, b_ih, b_hh = _f64(x, h, w_ih, w_hh, b_ih, b_hh)
    ir, iz, in_ = np.split(_lin(x, w_ih, b_ih), 3, axis=-1)
    hr, hz, hn = np.split(_lin(h, w_hh, b_hh), 3, axis=-1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    dh2 = np.asarray(dh2, np.float64)
    dn_pre = dh2 * (1 - z) * (1 - n**2)
    dz_pre = dh2 * (h - n) * z * (1 - z)
    dr_pre = dn_pre * hn * r * (1 - r)
    dai = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)
    dah = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1)
    return (
        dai @ w_ih,
        dh2 * z + dah @ w_hh,
        dai.T @ x,
        dah.T @ h,
        None if b_ih is None else dai.sum(axis=0),
        None if b_hh is None else dah.sum(axis=0),
    )


# ----------------------------------------------------------------------------- one layer


def _steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _active(T, N, lengths):
    lens = np.full(N, T) if lengths is None else np.asarray(lengths)
    return np.arange(T)[:, None] < lens[None, :]  # (T, N)


def lstm_layer(x, h0, c0, w, reverse=False, lengths=None):
    """One direction over x (T, N, I): (y (T, N, H), h_n, c_n); w = [w_ih, w_hh, b_ih, b_hh]."""
    x = np.asarray(x, np.float64)
    T, N = x.shape[:2]
    act = _active(T, N, lengths)
    h, c = np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    y = np.zeros((T, N, h.shape[-1]))
    for t in _steps(T, reverse):
        m = act[t][:, None]
        h2, c2 = lstm_cell(x[t], h, c, *w)
        y[t] = np.where(m, h2, 0.0)
        h, c = np.where(m, h2, h), np.where(m, c2, c)
    return y, h, c


def lstm_layer_vjp(dy, dh_n, dc_n, x, h0, c0, w, reverse=False, lengths=None):
    """Adjoint of lstm_layer: (dx, dh0, dc0, [dw_ih, dw_hh, db_ih, db_hh])."""
    x = np.asarray(x, np.float64)
    T, N = x.shape[:2]
    act = _active(T, N, lengths)
    states, h, c = {}, np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    for t in _steps(T, reverse):
        states[t] = (h, c)
        m = act[t][:, None]
        h2, c2 = lstm_cell(x[t], h, c, *w)
        h, c = np.where(m, h2, h), np.where(m, c2, c)
    dx = np.zeros_like(x)
    dw = [None if p is None else np.zeros(np.shape(p)) for p in w]
    dh = np.zeros_like(h) if dh_n is None else np.asarray(dh_n, np.float64).copy()
    dc = np.zeros_like(c) if dc_n is None else np.asarray(dc_n, np.float64).copy()
    for t in reversed(list(_steps(T, reverse))):
        m = act[t][:, None].astype(np.float64)
        hp, cp = states[t]
        g_h2 = m * (dh + (0.0 if dy is None else dy[t]))
        g_c2 = m * dc
        gx, gh, gc, *gw = lstm_cell_vjp((g_h2, g_c2), x[t], hp, cp, *w)
        dx[t] = gx
        dh = (1 - m) * dh + gh
        dc = (1 - m) * dc + gc
        dw = [None if a is None else a + b for a, b in zip(dw, gw)]
    return dx, dh, dc, dw


def gru_layer(x, h0, w, reverse=False, lengths=None):
    """One direction over x (T, N, I): (y (T, N, H), h_n)."""
    x = np.asarray(x, np.float64)
    T, N = x.shape[:2]
    act = _active(T, N, lengths)
    h = np.asarray(h0, np.float64)
    y = np.zeros((T, N, h.shape[-1]))
    for t in _steps(T, reverse):
        m = act[t][:, None]
        h2 = gru_cell(x[t], h, *w)
        y[t] = np.where(m, h2, 0.0)
        h = np.where(m, h2, h)
    return y, h


def gru_layer_vjp(dy, dh_n, x, h0, w, reverse=False, lengths=None):
    """Adjoint of gru_layer: (dx, dh0, [dw_ih, dw_hh, db_ih, db_hh])."""
    x = np.asarray(x, np.float64)
    T, N = x.shape[:2]
    act = _active(T, N, lengths)
    states, h = {}, np.asarray(h0, np.float64)
    for t in _steps(T, reverse):
        states[t] = h
        m = act[t][:, None]
        h = np.where(m, gru_cell(x[t], h, *w), h)
    dx = np.zeros_like(x)
    dw = [None if p is None else np.zeros(np.shape(p)) for p in w]
    dh = np.zeros_like(h) if dh_n is None else np.asarray(dh_n, np.float64).copy()
    for t in reversed(list(_steps(T, reverse))):
        m = act[t][:, None].astype(np.float64)
        g_h2 = m * (dh + (0.0 if dy is None else dy[t]))
        gx, gh, *gw = gru_cell_vjp(g_h2, x[t], states[t], *w)
        dx[t] = gx
        dh = (1 - m) * dh + gh
        dw = [None if a is None else a + b for a, b in zip(dw, gw)]
    return dx, dh, dw


# ----------------------------------------------------------------------------- stacked


def _layout(x, batch_first):
    x = np.asarray(x, np.float64)
    return np.swapaxes(x, 0, 1) if batch_first else x


def rnn(
    mode, x, h0, c0, weights, num_layers=1, bidirectional=False, batch_first=False, lengths=None
):
    """Stacked (bi)directional LSTM ('lstm') or GRU ('gru') like torch.nn.LSTM / GRU.

    x (T, N, I) or (N, T, I) if batch_first; h0, c0 (L*D, N, H) (c0 ignored for GRU);
    returns (y, h_n, c_n) with c_n None for GRU.
    """
    D = 2 if bidirectional else 1
    inp = _layout(x, batch_first)
    hs, cs = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            w = weights[4 * k : 4 * k + 4]
            if mode == "lstm":
                y, h, c = lstm_layer(inp, h0[k], c0[k], w, d == 1, lengths)
                cs.append(c)
            else:
                y, h = gru_layer(inp, h0[k], w, d == 1, lengths)
            outs.append(y)
            hs.append(h)
        inp = np.concatenate(outs, axis=-1)
    y = np.swapaxes(inp, 0, 1) if batch_first else inp
    return y, np.stack(hs), (np.stack(cs) if mode == "lstm" else None)


def rnn_vjp(
    mode,
    grads,
    x,
    h0,
    c0,
    weights,
    num_layers=1,
    bidirectional=False,
    batch_first=False,
    lengths=None,
):
    """Adjoint of rnn: grads = (dy, dh_n, dc_n) (None = 0) -> (dx, dh0, dc0, dweights)."""
    dy, dh_n, dc_n = grads
    D = 2 if bidirectional else 1
    inputs = [_layout(x, batch_first)]
    for layer in range(num_layers):  # forward again, keeping each layer's input
        outs = []
        for d in range(D):
            k = layer * D + d
            w = weights[4 * k : 4 * k + 4]
            if mode == "lstm":
                outs.append(lstm_layer(inputs[-1], h0[k], c0[k], w, d == 1, lengths)[0])
            else:
                outs.append(gru_layer(inputs[-1], h0[k], w, d == 1, lengths)[0])
        inputs.append(np.concatenate(outs, axis=-1))
    H = np.shape(h0)[-1]
    g = np.zeros_like(inputs[-1]) if dy is None else _layout(dy, batch_first)
    dh0 = np.zeros(np.shape(h0))
    dc0 = np.zeros(np.shape(h0))
    dweights = [None] * len(weights)
    for layer in reversed(range(num_layers)):
        gin = np.zeros_like(inputs[layer])
        for d in range(D):
            k = layer * D + d
            w = weights[4 * k : 4 * k + 4]
            gy = g[..., d * H : (d + 1) * H]
            ghn = None if dh_n is None else dh_n[k]
            if mode == "lstm":
                gcn = None if dc_n is None else dc_n[k]
                gx, dh0[k], dc0[k], gw = lstm_layer_vjp(
                    gy, ghn, gcn, inputs[layer], h0[k], c0[k], w, d == 1, lengths
                )
            else:
                gx, dh0[k], gw = gru_layer_vjp(gy, ghn, inputs[layer], h0[k], w, d == 1, lengths)
            gin += gx
            dweights[4 * k : 4 * k + 4] = gw
        g = gin
    dx = np.swapaxes(g, 0, 1) if batch_first else g
    return dx, dh0, (dc0 if mode == "lstm" else None), dweights
