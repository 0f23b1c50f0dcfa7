"""GEMM cases: square sizes, a BERT-like projection, batched small, tall-skinny, transposes."""

from __future__ import annotations

import numpy as np

import pyengine as pe

from . import optional_torch, run_case

UNIT = "GFLOP/s"


def cases(quick: bool = False) -> list:
    """(name, batch, M, N, K, transA, transB)."""
    out = [
        ("64^3", 0, 64, 64, 64, False, False),
        ("256^3", 0, 256, 256, 256, False, False),
        ("512^3", 0, 512, 512, 512, False, False),
        ("1024^3", 0, 1024, 1024, 1024, False, False),
    ]
    if not quick:
        out += [
            ("2048^3", 0, 2048, 2048, 2048, False, False),
            ("4096x768x3072", 0, 4096, 3072, 768, False, False),
        ]
    out += [
        ("batched 64x(128x64 . 64x128)", 64, 128, 128, 64, False, False),
        ("tall-skinny 8192x64 . 64x64", 0, 8192, 64, 64, False, False),
        ("512^3 A^T", 0, 512, 512, 512, True, False),
        ("512^3 B^T", 0, 512, 512, 512, False, True),
        ("512^3 A^T B^T", 0, 512, 512, 512, True, True),
    ]
    return out


def _operands(batch, M, N, K, ta, tb, rng):
    lead = (batch,) if batch else ()
    a = rng.standard_normal(lead + ((K, M) if ta else (M, K)), dtype=np.float32)
    b = rng.standard_normal(lead + ((N, K) if tb else (K, N)), dtype=np.float32)
    return a, b


def _t(x, trans):
    return np.swapaxes(x, -1, -2) if trans else x


def run(quick: bool = False) -> list:
    rng = np.random.default_rng(0)
    torch = optional_torch()
    rows = []
    for name, batch, M, N, K, ta, tb in cases(quick):
        a, b = _operands(batch, M, N, K, ta, tb, rng)
        pa, pb = pe.from_numpy(a), pe.from_numpy(b)
        pa, pb = (pa.mT if ta else pa), (pb.mT if tb else pb)
        na, nb = _t(a, ta), _t(b, tb)
        impls = {"pyengine": lambda pa=pa, pb=pb: pa @ pb, "numpy": lambda na=na, nb=nb: na @ nb}
        if torch is not None:
            ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
            ta_, tb_ = (ta_.mT if ta else ta_), (tb_.mT if tb else tb_)
            impls["torch"] = lambda x=ta_, y=tb_: x @ y
        flops = 2.0 * max(batch, 1) * M * N * K
        rows.append(run_case(name, flops, impls, min_time=0.1 if quick else 0.3))
    return rows
