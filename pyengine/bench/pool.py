"""Pooling cases: forward + backward of typical CNN pooling layers, side by side with PyTorch.

Each case times one forward and one backward through the public API (pyengine: F.* with
autograd; torch: torch.nn.functional with autograd), float32, NCHW, the libraries sampled in
turn (pyengine/bench/_interleaved.py). The unit is input elements per second (higher is
better), so the ratio column reads as a speed-up.
"""

from __future__ import annotations

import numpy as np

import pyengine as pe
import pyengine.functional as F

from . import optional_torch
from ._interleaved import run_case_interleaved

UNIT = "M input elem/s, fwd+bwd"


def cases(quick: bool = False) -> list:
    """(name, shape, op, kwargs); op names a function of pyengine.functional and of torch's."""
    out = [
        (
            "max 3x3 s2 p1 (8,64,56,56)",
            (8, 64, 56, 56),
            "max_pool2d",
            {"kernel_size": 3, "stride": 2, "padding": 1},
        ),
        ("avg 2x2 s2 (8,64,56,56)", (8, 64, 56, 56), "avg_pool2d", {"kernel_size": 2}),
        ("adaptive avg 1x1 (8,512,7,7)", (8, 512, 7, 7), "adaptive_avg_pool2d", {"output_size": 1}),
    ]
    if not quick:
        out += [
            ("max 2x2 s2 (8,64,112,112)", (8, 64, 112, 112), "max_pool2d", {"kernel_size": 2}),
            (
                "max 3x3 s1 p1 (8,192,28,28)",
                (8, 192, 28, 28),
                "max_pool2d",
                {"kernel_size": 3, "stride": 1, "padding": 1},
            ),
            (
                "avg 3x3 s1 p1 excl (8,192,28,28)",
                (8, 192, 28, 28),
                "avg_pool2d",
                {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
            ),
            (
                "adaptive avg 7x7 (8,512,14,14)",
                (8, 512, 14, 14),
                "adaptive_avg_pool2d",
                {"output_size": 7},
            ),
            (
                "adaptive max 6x6 (8,256,13,13)",
                (8, 256, 13, 13),
                "adaptive_max_pool2d",
                {"output_size": 6},
            ),
            (
                "nearest x2 (8,64,28,28)",
                (8, 64, 28, 28),
                "interpolate",
                {"scale_factor": 2, "mode": "nearest"},
            ),
        ]
    return out


def _fwd_bwd(fn, x, g):
    def step():
        x.grad = None
        y = fn(x)
        y.backward(g)

    return step


def run(quick: bool = False) -> list:
    rng = np.random.default_rng(0)
    torch = optional_torch()
    rows = []
    for name, shape, op, kw in cases(quick):
        xn = rng.standard_normal(shape, dtype=np.float32)
        px = pe.tensor(xn, requires_grad=True)
        pf = getattr(F, op)
        y = pf(px, **kw)
        gn = rng.standard_normal(tuple(y.shape), dtype=np.float32)
        impls = {"pyengine": _fwd_bwd(lambda t, pf=pf, kw=kw: pf(t, **kw), px, pe.tensor(gn))}
        if torch is not None:
            tx = torch.from_numpy(xn.copy()).requires_grad_(True)
            tf = getattr(torch.nn.functional, op)
            impls["torch"] = _fwd_bwd(lambda t, tf=tf, kw=kw: tf(t, **kw), tx, torch.from_numpy(gn))
        elems = 1e3 * float(np.prod(shape))  # divided by 1e9 there: millions per second
        rows.append(run_case_interleaved(name, elems, impls, min_time=0.3 if quick else 1.0))
    return rows
