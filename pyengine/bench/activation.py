"""Activation cases: GELU (exact and tanh) and SiLU, each a fused C++ forward and backward on
the CPU, forward and forward+backward, float32, side by side with PyTorch (interleaved samples,
medians).

GB/s counts the minimum DRAM traffic, the same for both libraries: forward reads x and writes
y (2 arrays); forward+backward adds reading x and dy and writing dx (5 in all).
"""

from __future__ import annotations

import numpy as np

import pyengine as pe
import pyengine.functional as F

from ._interleaved import run_elementwise

UNIT = "GB/s"


def cases(quick: bool = False) -> list:
    """(name, kind, shape, backward); kind: a GELU's `approximate`, or "silu"."""
    out = [
        ("gelu 4096x1024 fwd", "none", (4096, 1024), False),
        ("gelu 4096x1024 fwd+bwd", "none", (4096, 1024), True),
        ("silu 4096x1024 fwd+bwd", "silu", (4096, 1024), True),
    ]
    if not quick:
        out += [
            ("gelu tanh 4096x1024 fwd", "tanh", (4096, 1024), False),
            ("gelu tanh 4096x1024 fwd+bwd", "tanh", (4096, 1024), True),
            ("silu 4096x1024 fwd", "silu", (4096, 1024), False),
            ("gelu 64x128x3072 fwd+bwd", "none", (64, 128, 3072), True),
        ]
    return out


def _fns(kind, shape, backward, lib, torch, rng):
    x = rng.standard_normal(shape, dtype=np.float32) * 2
    g = rng.standard_normal(shape, dtype=np.float32)
    if lib == "pyengine":
        mod, no_grad = F, pe.no_grad
        px = pe.from_numpy(x.copy()).requires_grad_(backward)
        pg = pe.from_numpy(g)
    else:
        mod, no_grad = torch.nn.functional, torch.no_grad
        px = torch.from_numpy(x.copy()).requires_grad_(backward)
        pg = torch.from_numpy(g)

    def op():
        return mod.silu(px) if kind == "silu" else mod.gelu(px, approximate=kind)

    if not backward:

        def fwd():
            with no_grad():
                return op()

        return fwd

    def fwd_bwd():
        px.grad = None
        op().backward(pg)

    return fwd_bwd


def run(quick: bool = False) -> list:
    return run_elementwise(cases(quick), _fns, quick)
