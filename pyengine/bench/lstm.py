"""LSTM cases: whole layers (forward, forward+backward) and one LSTMCell step, float32, side by
side with torch.nn.LSTM / LSTMCell (oneDNN on the CPU) when torch is installed.

The two libraries are timed interleaved (pyengine, torch, pyengine, torch, ...) and the median
of each is reported, so that load on a shared machine hits both alike. GFLOP/s count the GEMM
work only: forward 2*T*N*G*H*(I + H) (G = 4 gates), forward+backward three times that.
"""

from __future__ import annotations

import time

import numpy as np

import pyengine as pe

from . import optional_torch

UNIT = "GFLOP/s"
MODE = "LSTM"
GATES = 4


def cases(quick: bool = False) -> list:
    """(name, kind, T, N, I, H); kind is 'fwd', 'fwd+bwd' or 'cell'."""
    out = [
        ("layer T64 N32 I=H=256 fwd", "fwd", 64, 32, 256, 256),
        ("layer T64 N32 I=H=256 fwd+bwd", "fwd+bwd", 64, 32, 256, 256),
        ("layer T32 N64 I=H=512 fwd", "fwd", 32, 64, 512, 512),
        ("layer T32 N64 I=H=512 fwd+bwd", "fwd+bwd", 32, 64, 512, 512),
        ("cell N64 H=512 fwd", "cell", 1, 64, 512, 512),
        ("cell N64 H=512 fwd+bwd", "cell+bwd", 1, 64, 512, 512),
    ]
    return out[:1] + out[4:5] if quick else out


def flops(kind: str, T: int, N: int, I: int, H: int, gates: int = GATES) -> float:
    f = 2.0 * T * N * gates * H * (I + H)
    return 3 * f if kind.endswith("bwd") else f


def _copy_weights(pm, tm) -> None:
    pm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def _fns(mode: str, kind: str, T, N, I, H, torch):
    """(pyengine fn, torch fn or None) for one case."""
    rng = np.random.default_rng(0)
    cell = kind.startswith("cell")
    name = mode + ("Cell" if cell else "")
    pm = getattr(pe.nn, name)(I, H)
    tm = getattr(torch.nn, name)(I, H) if torch is not None else None
    if tm is not None:
        _copy_weights(pm, tm)
    x = rng.standard_normal((N, I) if cell else (T, N, I), dtype=np.float32)
    h = rng.standard_normal((N, H), dtype=np.float32)
    backward = kind.endswith("bwd")

    def p_args(xt):
        if not cell:
            return (xt,)
        ht = pe.tensor(h)
        return (xt, (ht, ht)) if mode == "LSTM" else (xt, ht)

    def t_args(xt):
        if not cell:
            return (xt,)
        ht = torch.from_numpy(h)
        return (xt, (ht, ht)) if mode == "LSTM" else (xt, ht)

    def first(out):
        return out[0] if isinstance(out, tuple) else out

    px = pe.tensor(x, requires_grad=backward)
    if backward:

        def pf():
            px.grad = None
            first(pm(*p_args(px))).sum().backward()
    else:

        def pf():
            with pe.no_grad():
                pm(*p_args(px))

    tf = None
    if tm is not None:
        tx = torch.from_numpy(x).requires_grad_(backward)
        if backward:

            def tf():
                tx.grad = None
                first(tm(*t_args(tx))).sum().backward()
        else:

            def tf():
                with torch.no_grad():
                    tm(*t_args(tx))

    return pf, tf


def interleaved(fns: dict, min_time: float = 0.3, rounds: int = 7) -> dict:
    """Median seconds per call of each fn, timed in alternation round by round."""
    for fn in fns.values():
        fn()  # warm-up
    per = {}
    for k, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        per[k] = max(1, int(min_time / rounds / max(time.perf_counter() - t0, 1e-7)))
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(per[k]):
                fn()
            samples[k].append((time.perf_counter() - t0) / per[k])
    return {k: float(np.median(v)) for k, v in samples.items()}


def run(quick: bool = False, mode: str = MODE, gates: int = GATES) -> list:
    torch = optional_torch()
    rows = []
    for name, kind, T, N, I, H in cases(quick):
        pf, tf = _fns(mode, kind, T, N, I, H, torch)
        fns = {"pyengine": pf}
        if tf is not None:
            fns["torch"] = tf
        secs = interleaved(fns, min_time=0.15 if quick else 0.4)
        f = flops(kind, T, N, I, H, gates)
        row = {"case": name}
        for lib, s in secs.items():
            row[lib] = f / s / 1e9
            row[lib + "_ms"] = s * 1e3
        if "torch" in row:
            row["ratio"] = row["pyengine"] / row["torch"]
        rows.append(row)
    return rows
