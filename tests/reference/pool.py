"""Reference pooling in float64 with direct loops (NumPy only), from the definitions.

Conventions (PyTorch's, the spec of pyengine's kernels):
- input (N, C, H, W) or unbatched (C, H, W); window of output (oh, ow): rows oh*sH - pH + kh*dH,
  columns ow*sW - pW + kw*dW, only those inside the plane (padding never wins / is never summed).
- output size: floor((H + 2p - d(k-1) - 1) / s) + 1, or ceil with ceil_mode, minus one when the
  last window would start beyond the input plus the left padding.
- max: a NaN in the window makes the output NaN and its index the LAST NaN in row-major window
  order; otherwise the index is the FIRST position holding the maximum. A window without a single
  in-plane element gives -inf and PyTorch's start index (first row/column >= 0 on the dilation
  grid). Index = h*W + w in the plane. The gradient goes to the index only.
- avg: sum of in-plane elements / divisor_override, or / window size clipped to the padded plane
  (count_include_pad) or to the plane.
- adaptive windows: [floor(i*In/Out), ceil((i+1)*In/Out)).
- max_unpool2d: zeros, then y.flat[idx[i]] = x[i] in order; its gradient is a gather
  (PyTorch's convention, exact when the indices are distinct).
- nearest upsampling by integer factors f: y[oh, ow] = x[oh // fH, ow // fW].
"""

from __future__ import annotations

import math

import numpy as np


def _pair(v, default=None):
    if v is None or (isinstance(v, (tuple, list)) and len(v) == 0):
        return default
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1
    out = (math.ceil(num / s) if ceil_mode else math.floor(num / s)) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _batch(x):
    x = np.asarray(x, dtype=np.float64)
    return (x[None], True) if x.ndim == 3 else (x, False)


def _window_positions(o, k, s, p, d, n):
    """In-plane positions of window o along one axis, in window order."""
    return [o * s - p + i * d for i in range(k) if 0 <= o * s - p + i * d < n]


def _first_on_grid(o, s, p, d):
    start = o * s - p
    while start < 0:
        start += d
    return start


def _max_windows(x, k, s, p, d, ceil_mode):
    """Yields (n, c, oh, ow, value, index) for every output of max pooling."""
    N, C, H, W = x.shape
    OH = out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    OW = out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                rows = _window_positions(oh, k[0], s[0], p[0], d[0], H)
                for ow in range(OW):
                    cols = _window_positions(ow, k[1], s[1], p[1], d[1], W)
                    vals = [(x[n, c, h, w], h * W + w) for h in rows for w in cols]
                    best, bi = (
                        -np.inf,
                        (
                            _first_on_grid(oh, s[0], p[0], d[0]) * W
                            + _first_on_grid(ow, s[1], p[1], d[1])
                        ),
                    )
                    nans = [i for v, i in vals if np.isnan(v)]
                    if nans:
                        best, bi = np.nan, nans[-1]
                    elif vals:
                        m = max(v for v, _ in vals)
                        if m > -np.inf:
                            best, bi = m, next(i for v, i in vals if v == m)
                    y[n, c, oh, ow], idx[n, c, oh, ow] = best, bi
    return y, idx


def _scatter_add(g, idx, H, W):
    N, C = g.shape[:2]
    gx = np.zeros((N, C, H * W))
    gf = g.reshape(N, C, -1)
    idf = idx.reshape(N, C, -1)
    for n in range(N):
        for c in range(C):
            for o in range(gf.shape[2]):
                if 0 <= idf[n, c, o] < H * W:
                    gx[n, c, idf[n, c, o]] += gf[n, c, o]
    return gx.reshape(N, C, H, W)


def max_pool2d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    x, added = _batch(x)
    k = _pair(kernel_size)
    y, idx = _max_windows(x, k, _pair(stride, k), _pair(padding), _pair(dilation), ceil_mode)
    if added:
        y, idx = y[0], idx[0]
    return (y, idx) if return_indices else y


def max_pool2d_vjp(
    g, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    if return_indices:
        g = g[0]
    xb, added = _batch(x)
    k = _pair(kernel_size)
    _, idx = _max_windows(xb, k, _pair(stride, k), _pair(padding), _pair(dilation), ceil_mode)
    g = np.asarray(g, np.float64)
    gx = _scatter_add(g[None] if added else g, idx, *xb.shape[2:])
    return [gx[0] if added else gx]


def _avg_divisor(oh, ow, H, W, k, s, p, rows, cols, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    if count_include_pad:
        hs, ws = oh * s[0] - p[0], ow * s[1] - p[1]
        return (min(hs + k[0], H + p[0]) - hs) * (min(ws + k[1], W + p[1]) - ws)
    return len(rows) * len(cols)


def _avg_loop(x, k, s, p, ceil_mode, count_include_pad, divisor_override, g=None):
    """Forward (g None) or the adjoint of average pooling for the gradient g."""
    N, C, H, W = x.shape
    OH = out_size(H, k[0], s[0], p[0], 1, ceil_mode)
    OW = out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    gx = np.zeros_like(x)
    for oh in range(OH):
        rows = _window_positions(oh, k[0], s[0], p[0], 1, H)
        for ow in range(OW):
            cols = _window_positions(ow, k[1], s[1], p[1], 1, W)
            div = _avg_divisor(
                oh, ow, H, W, k, s, p, rows, cols, count_include_pad, divisor_override
            )
            for n in range(N):
                for c in range(C):
                    if g is None:
                        y[n, c, oh, ow] = sum(x[n, c, h, w] for h in rows for w in cols) / div
                    else:
                        for h in rows:
                            for w in cols:
                                gx[n, c, h, w] += g[n, c, oh, ow] / div
    return y if g is None else gx


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    x, added = _batch(x)
    k = _pair(kernel_size)
    y = _avg_loop(
        x, k, _pair(stride, k), _pair(padding), ceil_mode, count_include_pad, divisor_override
    )
    return y[0] if added else y


def avg_pool2d_vjp(
    g,
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    xb, added = _batch(x)
    g = np.asarray(g, np.float64)
    k = _pair(kernel_size)
    gx = _avg_loop(
        xb,
        k,
        _pair(stride, k),
        _pair(padding),
        ceil_mode,
        count_include_pad,
        divisor_override,
        g[None] if added else g,
    )
    return [gx[0] if added else gx]


def _adaptive_size(x, output_size):
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size, output_size)
    if len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    return tuple(n if o is None else o for o, n in zip(output_size, x.shape[-2:]))


def _ada(i, n_in, n_out):
    return range((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out))


def adaptive_avg_pool2d(x, output_size):
    xb, added = _batch(x)
    OH, OW = _adaptive_size(xb, output_size)
    N, C, H, W = xb.shape
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        rows = _ada(oh, H, OH)
        for ow in range(OW):
            cols = _ada(ow, W, OW)
            y[:, :, oh, ow] = xb[:, :, rows.start : rows.stop, cols.start : cols.stop].mean(
                axis=(2, 3)
            )
    return y[0] if added else y


def adaptive_avg_pool2d_vjp(g, x, output_size):
    xb, added = _batch(x)
    g = np.asarray(g, np.float64)
    g = g[None] if added else g
    OH, OW = _adaptive_size(xb, output_size)
    gx = np.zeros_like(xb)
    for oh in range(OH):
        rows = _ada(oh, xb.shape[2], OH)
        for ow in range(OW):
            cols = _ada(ow, xb.shape[3], OW)
            gx[:, :, rows.start : rows.stop, cols.start : cols.stop] += g[:, :, oh, ow][
                :, :, None, None
            ] / (len(rows) * len(cols))
    return [gx[0] if added else gx]


def _adaptive_max(xb, OH, OW):
    N, C, H, W = xb.shape
    y = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    vals = [
                        (xb[n, c, h, w], h * W + w)
                        for h in _ada(oh, H, OH)
                        for w in _ada(ow, W, OW)
                    ]
                    nans = [i for v, i in vals if np.isnan(v)]
                    if nans:
                        y[n, c, oh, ow], idx[n, c, oh, ow] = np.nan, nans[-1]
                        continue
                    m = max(v for v, _ in vals)
                    y[n, c, oh, ow] = m
                    idx[n, c, oh, ow] = next(i for v, i in vals if v == m)
    return y, idx


def adaptive_max_pool2d(x, output_size, return_indices=False):
    xb, added = _batch(x)
    y, idx = _adaptive_max(xb, *_adaptive_size(xb, output_size))
    if added:
        y, idx = y[0], idx[0]
    return (y, idx) if return_indices else y


def adaptive_max_pool2d_vjp(g, x, output_size, return_indices=False):
    if return_indices:
        g = g[0]
    xb, added = _batch(x)
    _, idx = _adaptive_max(xb, *_adaptive_size(xb, output_size))
    g = np.asarray(g, np.float64)
    gx = _scatter_add(g[None] if added else g, idx, *xb.shape[2:])
    return [gx[0] if added else gx]


def unpool_default_size(in_size, k, s, p):
    return (in_size - 1) * s + k - 2 * p


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    xb, added = _batch(x)
    ib = np.asarray(indices)[None] if added else np.asarray(indices)
    k = _pair(kernel_size)
    s, p = _pair(stride, k), _pair(padding)
    if output_size is None:
        OH, OW = (unpool_default_size(xb.shape[2 + i], k[i], s[i], p[i]) for i in range(2))
    else:
        OH, OW = tuple(output_size)[-2:]
    N, C = xb.shape[:2]
    y = np.zeros((N, C, OH * OW))
    for n in range(N):
        for c in range(C):
            for i, v in zip(ib[n, c].reshape(-1), xb[n, c].reshape(-1)):
                y[n, c, i] = v
    y = y.reshape(N, C, OH, OW)
    return y[0] if added else y


def max_unpool2d_vjp(g, x, indices, kernel_size, stride=None, padding=0, output_size=None):
    g = np.asarray(g, np.float64)
    gb = g[None] if g.ndim == 3 else g
    ib = np.asarray(indices)
    ib = ib[None] if ib.ndim == 3 else ib
    N, C = gb.shape[:2]
    gx = np.empty(ib.shape)
    for n in range(N):
        for c in range(C):
            flat = gb[n, c].reshape(-1)
            gx[n, c] = flat[ib[n, c]]
    return [gx[0] if g.ndim == 3 else gx, None]


def _factors(x, size, scale_factor):
    dims = x.shape[2:]
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * len(dims)
        return tuple(o // i for o, i in zip(sizes, dims))
    sf = (
        tuple(scale_factor)
        if isinstance(scale_factor, (tuple, list))
        else (scale_factor,) * len(dims)
    )
    return tuple(int(f) for f in sf)


def interpolate(x, size=None, scale_factor=None, mode="nearest"):
    x = np.asarray(x, np.float64)
    f = _factors(x, size, scale_factor)
    out_shape = x.shape[:2] + tuple(n * k for n, k in zip(x.shape[2:], f))
    y = np.empty(out_shape)
    for pos in np.ndindex(*out_shape[2:]):
        src = tuple(o // k for o, k in zip(pos, f))
        y[(slice(None), slice(None)) + pos] = x[(slice(None), slice(None)) + src]
    return y


def interpolate_vjp(g, x, size=None, scale_factor=None, mode="nearest"):
    x = np.asarray(x, np.float64)
    f = _factors(x, size, scale_factor)
    gx = np.zeros_like(x)
    for pos in np.ndindex(*np.shape(g)[2:]):
        src = tuple(o // k for o, k in zip(pos, f))
        gx[(slice(None), slice(None)) + src] += np.asarray(g)[(slice(None), slice(None)) + pos]
    return [gx]
