"""Norm cases: layer_norm 8192x768 and batch_norm (training) 32x64x56x56, forward and
forward+backward, float32, side by side with PyTorch (interleaved samples, medians).

GB/s counts the minimum DRAM traffic of the op, the same for both libraries:
forward reads x and writes y (2 arrays); forward+backward adds reading dy and x and writing
dx (5 arrays in all). Parameters and statistics are negligible.
"""

from __future__ import annotations

import numpy as np

import pyengine as pe
import pyengine.functional as F

from ._interleaved import run_elementwise

UNIT = "GB/s"


def cases(quick: bool = False) -> list:
    """(name, kind, shape, backward)."""
    out = [
        ("layer_norm 8192x768 fwd", "ln", (8192, 768), False),
        ("layer_norm 8192x768 fwd+bwd", "ln", (8192, 768), True),
        ("batch_norm 32x64x56x56 fwd", "bn", (32, 64, 56, 56), False),
        ("batch_norm 32x64x56x56 fwd+bwd", "bn", (32, 64, 56, 56), True),
    ]
    if not quick:
        out += [
            ("batch_norm 4096x512 (N,C) fwd+bwd", "bn", (4096, 512), True),
            ("layer_norm 2048x4096 fwd+bwd", "ln", (2048, 4096), True),
        ]
    return out


def _fns(kind, shape, backward, lib, torch, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    C = shape[-1] if kind == "ln" else shape[1]
    w = rng.standard_normal(C, dtype=np.float32)
    b = rng.standard_normal(C, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    if lib == "pyengine":
        mod, t = F, lambda a, rg=False: pe.from_numpy(a.copy()).requires_grad_(rg)
        rm, rv = pe.zeros(C), pe.ones(C)
        no_grad = pe.no_grad
    else:
        mod = torch.nn.functional
        t = lambda a, rg=False: torch.from_numpy(a.copy()).requires_grad_(rg)  # noqa: E731
        rm, rv = torch.zeros(C), torch.ones(C)
        no_grad = torch.no_grad
    px, pw, pb, pg = t(x, backward), t(w, backward), t(b, backward), t(g)

    def op():
        if kind == "ln":
            return mod.layer_norm(px, (C,), pw, pb, 1e-5)
        return mod.batch_norm(px, rm, rv, pw, pb, True, 0.1, 1e-5)

    if not backward:

        def fwd():
            with no_grad():
                return op()

        return fwd

    def fwd_bwd():
        px.grad = pw.grad = pb.grad = None
        op().backward(pg)

    return fwd_bwd


def run(quick: bool = False) -> list:
    return run_elementwise(cases(quick), _fns, quick)
