"""Softmax cases: softmax / log_softmax over the last dim and over dim 1 of a 3-D tensor, and
cross_entropy with class targets, forward and forward+backward, float32, side by side with
PyTorch (interleaved samples, medians).

GB/s counts the minimum DRAM traffic, the same for both libraries: softmax forward reads x and
writes y (2 arrays), forward+backward adds reading y and dy and writing dx (5 in all);
cross_entropy forward reads the logits (1 array), forward+backward also writes their gradient
(2 arrays).
"""

from __future__ import annotations

import numpy as np

import pyengine as pe
import pyengine.functional as F

from . import optional_torch
from ._interleaved import run_case_interleaved

UNIT = "GB/s"


def cases(quick: bool = False) -> list:
    """(name, op, shape, dim, backward)."""
    out = [
        ("softmax 8192x1024 fwd", "softmax", (8192, 1024), -1, False),
        ("softmax 8192x1024 fwd+bwd", "softmax", (8192, 1024), -1, True),
        ("log_softmax 8192x1024 fwd+bwd", "log_softmax", (8192, 1024), -1, True),
        ("softmax 32x128x512 dim=1 fwd", "softmax", (32, 128, 512), 1, False),
        ("cross_entropy 8192x1000 fwd", "cross_entropy", (8192, 1000), 1, False),
        ("cross_entropy 8192x1000 fwd+bwd", "cross_entropy", (8192, 1000), 1, True),
    ]
    if not quick:
        out += [
            ("softmax 64x12x128x128 fwd+bwd", "softmax", (64, 12, 128, 128), -1, True),
            ("cross_entropy 64x21x64x64 fwd+bwd", "cross_entropy", (64, 21, 64, 64), 1, True),
        ]
    return out


def _fns(op, shape, dim, backward, lib, torch, rng):
    x = (rng.standard_normal(shape, dtype=np.float32) * 2).astype(np.float32)
    tshape = (shape[0],) + shape[2:]
    t = rng.integers(0, shape[1], tshape)
    if lib == "pyengine":
        mod = F
        px = pe.from_numpy(x.copy()).requires_grad_(backward)
        pt = pe.from_numpy(t)
        no_grad = pe.no_grad
    else:
        mod = torch.nn.functional
        px = torch.from_numpy(x.copy()).requires_grad_(backward)
        pt = torch.from_numpy(t)
        no_grad = torch.no_grad
    g = rng.standard_normal(shape, dtype=np.float32)
    pg = pe.from_numpy(g) if lib == "pyengine" else torch.from_numpy(g)

    def call():
        if op == "cross_entropy":
            return mod.cross_entropy(px, pt)
        return getattr(mod, op)(px, dim)

    if not backward:

        def fwd():
            with no_grad():
                return call()

        return fwd

    def fwd_bwd():
        px.grad = None
        y = call()
        if op == "cross_entropy":
            y.backward()
        else:
            y.backward(pg)

    return fwd_bwd


def run(quick: bool = False) -> list:
    rng = np.random.default_rng(0)
    torch = optional_torch()
    rows = []
    for name, op, shape, dim, backward in cases(quick):
        impls = {"pyengine": _fns(op, shape, dim, backward, "pyengine", torch, rng)}
        if torch is not None:
            impls["torch"] = _fns(op, shape, dim, backward, "torch", torch, rng)
        n = int(np.prod(shape))
        arrays = (2 if backward else 1) if op == "cross_entropy" else (5 if backward else 2)
        rows.append(
            run_case_interleaved(name, 4.0 * n * arrays, impls, min_time=0.3 if quick else 1.0)
        )
    return rows
