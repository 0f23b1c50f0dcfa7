"""Attention cases: fused F.scaled_dot_product_attention vs torch's, forward and forward+backward.

FLOPs count the four matrix products of the forward (2 for Q K^T, 2 for P V per element:
4*B*H*Lq*Lk*D, halved when causal) and 2.5x that for forward+backward (five products in the
backward, FlashAttention-2 style, the recomputation of Q K^T included). A last case runs the
long causal forward+backward in a fresh process and reports the peak RSS growth beside the
time, against the bytes of inputs, output and gradients.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import pyengine as pe

from . import optional_torch, run_case

UNIT = "GFLOP/s"


def cases(quick: bool = False) -> list:
    """(B, H, L, D, causal)."""
    out = [(4, 8, 512, 64, False), (4, 8, 512, 64, True)]
    if not quick:
        out.append((1, 12, 2048, 64, True))
    return out


def _flops(B, H, L, D, causal):
    return 4.0 * B * H * L * L * D * (0.5 if causal else 1.0)


def _impls(B, H, L, D, causal, backward, torch):
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((B, H, L, D), dtype=np.float32) for _ in range(4))
    pq, pk, pv = (pe.tensor(a, requires_grad=backward) for a in (q, k, v))
    pg = pe.tensor(g)
    sdpa = pe.functional.scaled_dot_product_attention

    def ours():
        out = sdpa(pq, pk, pv, is_causal=causal)
        if backward:
            out.backward(pg)

    impls = {"pyengine": ours}
    if torch is not None:
        tq, tk, tv = (torch.tensor(a, requires_grad=backward) for a in (q, k, v))
        tg = torch.tensor(g)
        tsdpa = torch.nn.functional.scaled_dot_product_attention

        def theirs():
            if backward:
                tsdpa(tq, tk, tv, is_causal=causal).backward(tg)
            else:
                with torch.no_grad():
                    tsdpa(tq, tk, tv, is_causal=causal)

        impls["torch"] = theirs
    return impls


def _hwm_mib() -> float:
    """Peak resident set of this process in MiB: VmHWM (reset by exec, unlike ru_maxrss, which
    a child inherits from its parent on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(lib: str, B=1, H=12, L=4096, D=64, causal=True, threads=None) -> dict:
    """In this process: one forward+backward; seconds and peak RSS growth (MiB) over the inputs."""
    import time

    if threads:
        pe.set_num_threads(threads)
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((B, H, L, D), dtype=np.float32) for _ in range(4)]
    if lib == "torch":
        import torch

        torch.set_num_threads(pe.get_num_threads())
        q, k, v = (torch.tensor(a, requires_grad=True) for a in arrs[:3])
        g = torch.tensor(arrs[3])
        fn = torch.nn.functional.scaled_dot_product_attention
    else:
        q, k, v = (pe.tensor(a, requires_grad=True) for a in arrs[:3])
        g = pe.tensor(arrs[3])
        fn = pe.functional.scaled_dot_product_attention
    before = _hwm_mib()
    t0 = time.perf_counter()
    fn(q, k, v, is_causal=causal).backward(g)
    sec = time.perf_counter() - t0
    after = _hwm_mib()
    io = B * H * L * D * 4 * 8 / 2**20  # q, k, v, grad_out, out, dq, dk, dv
    return {"seconds": sec, "rss_delta_mib": after - before, "io_mib": io}


def _peak_rss_subprocess(lib: str) -> dict:
    code = (
        "import json, pyengine as pe; from pyengine.bench.attention import peak_rss; "
        f"print(json.dumps(peak_rss({lib!r}, threads={pe.get_num_threads()})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list:
    torch = optional_torch()
    rows = []
    for B, H, L, D, causal in cases(quick):
        for backward in (False, True):
            name = (
                f"{'fwd+bwd' if backward else 'fwd'} ({B},{H},{L},{D}){' causal' if causal else ''}"
            )
            flops = _flops(B, H, L, D, causal) * (3.5 if backward else 1.0)
            rows.append(
                run_case(
                    name,
                    flops,
                    _impls(B, H, L, D, causal, backward, torch),
                    min_time=0.2 if quick else 0.5,
                )
            )
    if not quick:
        libs = ["pyengine"] + (["torch"] if torch is not None else [])
        mem = {lib: _peak_rss_subprocess(lib) for lib in libs}
        for lib, m in mem.items():
            print(
                f"[attention] fwd+bwd (1,12,4096,64) causal, {lib}: {m['seconds'] * 1e3:.0f} ms, "
                f"peak RSS +{m['rss_delta_mib']:.1f} MiB (inputs+outputs+grads "
                f"{m['io_mib']:.1f} MiB)"
            )
        flops = _flops(1, 12, 4096, 64, True) * 3.5
        row = {"case": "fwd+bwd (1,12,4096,64) causal, 1 run"}
        for lib, m in mem.items():
            row[lib] = flops / m["seconds"] / 1e9
            row[f"{lib}_rss_delta_mib"] = m["rss_delta_mib"]
        if "torch" in row:
            row["ratio"] = row["pyengine"] / row["torch"]
        rows.append(row)
    return rows
