"""Reference for the convolution family (NumPy float64, direct loops from the definitions).

Every convolution here is a bilinear form  y[n, g, o, P] = sum W[g, o, c, K] x[n, g, c, Q]
over the "taps" (P, Q, K) -- output position, input position, kernel position -- that the op's
definition connects (one list per spatial dim). Forward, grad-input and grad-weight all walk
the same taps, so the adjoints follow from the definition by construction:

    conv2d (torch):            Q = P*stride - pad_lo + K*dilation            (gather)
    conv_transpose2d (torch):  P = Q*stride - padding + K*dilation           (scatter),
                               out = (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1
    conv_general:              the input dilated by idil (zeros between elements), padded by
                               pad_lo/pad_hi (negative crops), correlated at `stride` with the
                               kernel dilated by `dilation`, read rotated when `flip`;
                               weight (O, C/g, kh, kw), or (C, O/g, kh, kw) when `wtrans`.

Never imports pyengine.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- helpers


def pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _canonical(w, groups: int, wtrans: bool) -> np.ndarray:
    """The weight as Wc[g, o, c, kh, kw] (a view)."""
    w = np.asarray(w, dtype=np.float64)
    a, b, kh, kw = w.shape
    if wtrans:  # (C, O/g, kh, kw)
        return w.reshape(groups, a // groups, b, kh, kw).transpose(0, 2, 1, 3, 4)
    return w.reshape(groups, a // groups, b, kh, kw)


def _from_canonical(gwc, groups: int, wtrans: bool) -> np.ndarray:
    """Inverse of _canonical: a gradient in canonical layout back to the stored layout."""
    g, og, cg, kh, kw = gwc.shape
    if wtrans:
        return gwc.transpose(0, 2, 1, 3, 4).reshape(g * cg, og, kh, kw)
    return gwc.reshape(g * og, cg, kh, kw)


def _forward(x, wc, taps_h, taps_w, out_hw):
    n, c, _, _ = x.shape
    g, og, cg = wc.shape[:3]
    xg = np.asarray(x, np.float64).reshape(n, g, cg, x.shape[2], x.shape[3])
    y = np.zeros((n, g, og) + tuple(out_hw))
    for p, q, k in taps_h:
        for pw, qw, kw in taps_w:
            y[:, :, :, p, pw] += np.einsum("goc,ngc->ngo", wc[:, :, :, k, kw], xg[:, :, :, q, qw])
    return y.reshape(n, g * og, out_hw[0], out_hw[1])


def _grad_input(gy, wc, taps_h, taps_w, in_hw):
    n = gy.shape[0]
    g, og, cg = wc.shape[:3]
    gyg = np.asarray(gy, np.float64).reshape(n, g, og, gy.shape[2], gy.shape[3])
    gx = np.zeros((n, g, cg) + tuple(in_hw))
    for p, q, k in taps_h:
        for pw, qw, kw in taps_w:
            gx[:, :, :, q, qw] += np.einsum("goc,ngo->ngc", wc[:, :, :, k, kw], gyg[:, :, :, p, pw])
    return gx.reshape(n, g * cg, in_hw[0], in_hw[1])


def _grad_weight(x, gy, wshape_c, taps_h, taps_w):
    n = x.shape[0]
    g, og, cg, kh_, kw_ = wshape_c
    xg = np.asarray(x, np.float64).reshape(n, g, cg, x.shape[2], x.shape[3])
    gyg = np.asarray(gy, np.float64).reshape(n, g, og, gy.shape[2], gy.shape[3])
    gwc = np.zeros(wshape_c)
    for p, q, k in taps_h:
        for pw, qw, kw in taps_w:
            gwc[:, :, :, k, kw] += np.einsum(
                "ngo,ngc->goc", gyg[:, :, :, p, pw], xg[:, :, :, q, qw]
            )
    return gwc


def _bias(y, b):
    if b is None:
        return y
    return y + np.asarray(b, np.float64)[None, :, None, None]


# ----------------------------------------------------------------------------- conv2d


def same_padding(k: int, dilation: int) -> tuple[int, int]:
    """torch's padding='same': total d*(k-1), the extra element (if odd) on the high side."""
    total = dilation * (k - 1)
    return total // 2, total - total // 2


def conv2d_pads(weight_hw, padding, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """(pad_lo, pad_hi) per dim for torch's padding argument (int, pair, 'same', 'valid')."""
    d = pair(dilation)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        lo_hi = [same_padding(k, dd) for k, dd in zip(weight_hw, d)]
        return (lo_hi[0][0], lo_hi[1][0]), (lo_hi[0][1], lo_hi[1][1])
    p = pair(padding)
    return p, p


def _conv2d_taps(n_in, k, s, pl, ph, d):
    n_out = (n_in + pl + ph - d * (k - 1) - 1) // s + 1
    assert n_out >= 1, "kernel larger than the padded input"
    taps = [(o, o * s - pl + kk * d, kk) for o in range(n_out) for kk in range(k)]
    return [t for t in taps if 0 <= t[1] < n_in], n_out


def _conv2d_geometry(x, w, stride, padding, dilation):
    s, d = pair(stride), pair(dilation)
    lo, hi = conv2d_pads(w.shape[2:], padding, dilation)
    th, oh = _conv2d_taps(x.shape[2], w.shape[2], s[0], lo[0], hi[0], d[0])
    tw, ow = _conv2d_taps(x.shape[3], w.shape[3], s[1], lo[1], hi[1], d[1])
    return th, tw, (oh, ow)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """torch.nn.functional.conv2d: weight (O, C/groups, kh, kw)."""
    th, tw, out = _conv2d_geometry(x, w, stride, padding, dilation)
    return _bias(_forward(x, _canonical(w, groups, False), th, tw, out), b)


def conv2d_vjp(gy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias or None) of conv2d for output gradient gy."""
    th, tw, _ = _conv2d_geometry(x, w, stride, padding, dilation)
    wc = _canonical(w, groups, False)
    gx = _grad_input(gy, wc, th, tw, x.shape[2:])
    gw = _from_canonical(_grad_weight(x, gy, wc.shape, th, tw), groups, False)
    gb = None if b is None else np.asarray(gy, np.float64).sum(axis=(0, 2, 3))
    return gx, gw, gb


# ----------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_size(n_in, k, stride, padding, output_padding, dilation) -> int:
    return (n_in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


def _transpose_taps(n_in, k, s, p, op, d):
    n_out = conv_transpose2d_size(n_in, k, s, p, op, d)
    taps = [(q * s - p + kk * d, q, kk) for q in range(n_in) for kk in range(k)]
    return [t for t in taps if 0 <= t[0] < n_out], n_out


def _transpose_geometry(x, w, stride, padding, output_padding, dilation):
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    th, oh = _transpose_taps(x.shape[2], w.shape[2], s[0], p[0], op[0], d[0])
    tw, ow = _transpose_taps(x.shape[3], w.shape[3], s[1], p[1], op[1], d[1])
    return th, tw, (oh, ow)


def conv_transpose2d(
    x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> np.ndarray:
    """torch.nn.functional.conv_transpose2d: weight (C, O/groups, kh, kw)."""
    th, tw, out = _transpose_geometry(x, w, stride, padding, output_padding, dilation)
    return _bias(_forward(x, _canonical(w, groups, True), th, tw, out), b)


def conv_transpose2d_vjp(
    gy, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    th, tw, _ = _transpose_geometry(x, w, stride, padding, output_padding, dilation)
    wc = _canonical(w, groups, True)
    gx = _grad_input(gy, wc, th, tw, x.shape[2:])
    gw = _from_canonical(_grad_weight(x, gy, wc.shape, th, tw), groups, True)
    gb = None if b is None else np.asarray(gy, np.float64).sum(axis=(0, 2, 3))
    return gx, gw, gb


# ----------------------------------------------------------------------------- conv_general


def general_size(n_in, k, stride, pad_lo, pad_hi, dilation, input_dilation) -> int:
    span = (n_in - 1) * input_dilation + 1 + pad_lo + pad_hi
    return (span - ((k - 1) * dilation + 1)) // stride + 1


def _general_taps(n_in, k, s, pl, ph, d, di, flip):
    n_out = general_size(n_in, k, s, pl, ph, d, di)
    assert n_out >= 1, "kernel larger than the padded input"
    taps = []
    for o in range(n_out):
        for kk in range(k):
            q = o * s - pl + kk * d  # coordinate in the dilated input
            if q >= 0 and q % di == 0 and q // di < n_in:
                taps.append((o, q // di, k - 1 - kk if flip else kk))
    return taps, n_out


def _general_geometry(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, flip):
    s, pl, ph = pair(stride), pair(pad_lo), pair(pad_hi)
    d, di = pair(dilation), pair(input_dilation)
    th, oh = _general_taps(x.shape[2], w.shape[2], s[0], pl[0], ph[0], d[0], di[0], flip)
    tw, ow = _general_taps(x.shape[3], w.shape[3], s[1], pl[1], ph[1], d[1], di[1], flip)
    return th, tw, (oh, ow)


def conv_general(
    x,
    w,
    b=None,
    stride=1,
    pad_lo=0,
    pad_hi=0,
    dilation=1,
    input_dilation=1,
    groups=1,
    flip=False,
    wtrans=False,
) -> np.ndarray:
    th, tw, out = _general_geometry(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, flip)
    return _bias(_forward(x, _canonical(w, groups, wtrans), th, tw, out), b)


def conv_general_vjp(
    gy,
    x,
    w,
    b=None,
    stride=1,
    pad_lo=0,
    pad_hi=0,
    dilation=1,
    input_dilation=1,
    groups=1,
    flip=False,
    wtrans=False,
):
    th, tw, _ = _general_geometry(x, w, stride, pad_lo, pad_hi, dilation, input_dilation, flip)
    wc = _canonical(w, groups, wtrans)
    gx = _grad_input(gy, wc, th, tw, x.shape[2:])
    gw = _from_canonical(_grad_weight(x, gy, wc.shape, th, tw), groups, wtrans)
    gb = None if b is None else np.asarray(gy, np.float64).sum(axis=(0, 2, 3))
    return gx, gw, gb


# ----------------------------------------------------------------------------- conv1d


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """torch.nn.functional.conv1d as the height-1 case of conv2d."""
    pad = padding if isinstance(padding, str) else (0, int(np.ravel([padding])[0]))
    y = conv2d(
        x[:, :, None, :],
        w[:, :, None, :],
        b,
        (1, pair(stride)[0]),
        pad,
        (1, pair(dilation)[0]),
        groups,
    )
    return y[:, :, 0, :]


def conv1d_vjp(gy, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pad = padding if isinstance(padding, str) else (0, int(np.ravel([padding])[0]))
    gx, gw, gb = conv2d_vjp(
        gy[:, :, None, :],
        x[:, :, None, :],
        w[:, :, None, :],
        b,
        (1, pair(stride)[0]),
        pad,
        (1, pair(dilation)[0]),
        groups,
    )
    return gx[:, :, 0, :], gw[:, :, 0, :], gb
