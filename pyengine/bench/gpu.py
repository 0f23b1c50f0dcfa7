# ruff: noqa: B023  (every lambda is timed before its loop variable moves on)
"""GPU side by side (`python -m pyengine bench --device cuda [family ...] [--quick]`):
pyengine's CUDA kernels against cuBLAS (through CuPy), cuDNN and SDPA (through PyTorch) on the
same card in the same process. Needs a GPU, CuPy and PyTorch with CUDA.

Each case is timed with CUDA events on the legacy default stream, which both CuPy's and
PyTorch's default streams are: two warm-up calls, then the median of `REPS` event pairs around
`ITERS` back-to-back calls. fp32 compares with fp32 (TF32 off in PyTorch and CuPy). ratio =
their time / ours (above 1: we are faster). A case that fails prints its error and the table
goes on.
"""

from __future__ import annotations

import json
import math
import os
import traceback

import numpy as np

import pyengine as pe
import pyengine.functional as F
from pyengine import nn
from pyengine.backend import cuda as pcuda

cp = torch = None  # imported by main(): CuPy must see CUPY_TF32 before its first import

QUICK = False
REPS, ITERS = 11, 5
ROWS: list[dict] = []


def timed(fn) -> float:
    """Median seconds per call of fn (device time between events)."""
    fn()
    fn()
    torch.cuda.synchronize()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(REPS):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(cp.cuda.Stream.null)
        for _ in range(ITERS):
            fn()
        b.record(cp.cuda.Stream.null)
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b) / 1e3 / ITERS)
    return float(np.median(times))


def row(name, ours, theirs, who, work=None, unit=""):
    """One table row: times in ms, ratio = their time / our time (> 1: we are faster)."""
    r = dict(case=name, ours_ms=ours * 1e3, ref_ms=theirs * 1e3, ref=who, ratio=theirs / ours)
    rate = ""
    if work is not None:
        r["ours_rate"], r["ref_rate"], r["unit"] = work / ours, work / theirs, unit
        rate = f"  {r['ours_rate']:9.1f} vs {r['ref_rate']:9.1f} {unit}"
    ROWS.append(r)
    print(
        f"{name:44s} {ours * 1e3:9.3f} ms  {who} {theirs * 1e3:9.3f} ms"
        f"  ratio {r['ratio']:.2f}{rate}",
        flush=True,
    )


def pe_cuda(a, grad=False):
    return pe.tensor(np.asarray(a), device="cuda", requires_grad=grad)


def th(a, grad=False):
    return torch.tensor(np.asarray(a), device="cuda", requires_grad=grad)


def case_gemm():
    rng = np.random.default_rng(0)
    for n in [2048] if QUICK else [1024, 4096]:
        a = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        err = float(
            cp.linalg.norm(pcuda.matmul(a, b) - cp.matmul(a, b)) / cp.linalg.norm(cp.matmul(a, b))
        )
        print(f"  sgemm {n}: rel err vs cuBLAS {err:.2e}")
        row(
            f"sgemm fp32 {n}^3",
            timed(lambda: pcuda.matmul(a, b)),
            timed(lambda: cp.matmul(a, b)),
            "cuBLAS",
            2 * n**3 / 1e12,
            "TFLOP/s",
        )


def _conv(N, C, O, H, k, s, p):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((O, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    OH = (H + 2 * p - k) // s + 1
    flops = 2 * N * O * OH * OH * C * k * k / 1e12
    name = f"conv {N}x{C}->{O} {H}x{H} k{k} s{s}"
    xp, wp, xt, wt = pe_cuda(x, True), pe_cuda(w, True), th(x, True), th(w, True)
    yp = F.conv2d(xp, wp, stride=s, padding=p)
    yt = torch.nn.functional.conv2d(xt, wt, stride=s, padding=p)
    err = float(
        np.linalg.norm(cp.asnumpy(yp.data) - yt.detach().cpu().numpy())
        / np.linalg.norm(yt.detach().cpu().numpy())
    )
    print(f"  {name}: rel err vs cuDNN {err:.2e}")
    with pe.no_grad():
        ours = timed(lambda: F.conv2d(xp, wp, stride=s, padding=p))
    with torch.no_grad():
        theirs = timed(lambda: torch.nn.functional.conv2d(xt, wt, stride=s, padding=p))
    row(name + " fwd", ours, theirs, "cuDNN", flops, "TFLOP/s")
    gp, gt = pe_cuda(np.ones(yp.shape, np.float32)), torch.ones(yt.shape, device="cuda")

    def ours_fb():
        F.conv2d(xp, wp, stride=s, padding=p).backward(gp)

    def theirs_fb():
        torch.nn.functional.conv2d(xt, wt, stride=s, padding=p).backward(gt)

    row(name + " fwd+bwd", timed(ours_fb), timed(theirs_fb), "cuDNN", 3 * flops, "TFLOP/s")


def case_conv():
    shapes = [
        (64, 64, 64, 56, 3, 1, 1),
        (64, 128, 256, 28, 3, 2, 1),
        (64, 256, 256, 14, 1, 1, 0),
        (64, 3, 32, 32, 3, 1, 1),
    ]
    for sh in shapes[:1] if QUICK else shapes:
        try:
            _conv(*sh)
        except Exception:
            traceback.print_exc()


def case_lstm():
    for T, N, H in [(32, 64, 512)] if QUICK else [(64, 32, 256), (32, 64, 512)]:
        rng = np.random.default_rng(2)
        x = rng.standard_normal((T, N, H), dtype=np.float32)
        pe.manual_seed(0)
        ours_m = nn.LSTM(H, H).cuda()
        ref_m = torch.nn.LSTM(H, H).cuda()
        with torch.no_grad():
            for name, p in ours_m.named_parameters():
                getattr(ref_m, name).copy_(torch.as_tensor(cp.asnumpy(p.data), device="cuda"))
        xp, xt = pe_cuda(x, True), th(x, True)
        yp, yt = ours_m(xp)[0], ref_m(xt)[0]
        err = float(np.abs(cp.asnumpy(yp.data) - yt.detach().cpu().numpy()).max())
        print(f"  lstm T{T} N{N} H{H}: max abs err vs cuDNN {err:.2e}")
        flops = 2 * T * N * 4 * H * (2 * H) / 1e12
        with pe.no_grad():
            ours = timed(lambda: ours_m(xp))
        with torch.no_grad():
            theirs = timed(lambda: ref_m(xt))
        row(f"lstm T{T} N{N} I=H={H} fwd", ours, theirs, "cuDNN", flops, "TFLOP/s")
        gp, gt = pe_cuda(np.ones(yp.shape, np.float32)), torch.ones(yt.shape, device="cuda")
        row(
            f"lstm T{T} N{N} I=H={H} fwd+bwd",
            timed(lambda: ours_m(xp)[0].backward(gp)),
            timed(lambda: ref_m(xt)[0].backward(gt)),
            "cuDNN",
            3 * flops,
            "TFLOP/s",
        )


def _norm_row(name, ours_fn, ref_fn, x_ours, x_ref, gbytes_fwd, gbytes_fb):
    """fwd (no grad) and fwd+bwd rows for one normalization; bytes are the ideal traffic."""
    with pe.no_grad(), torch.no_grad():
        row(
            name + " fwd",
            timed(lambda: ours_fn(x_ours)),
            timed(lambda: ref_fn(x_ref)),
            "torch",
            gbytes_fwd,
            "GB/s",
        )
    xg, xgt = pe_cuda(cp.asnumpy(x_ours.data), True), x_ref.detach().clone().requires_grad_()
    y, yt = ours_fn(xg), ref_fn(xgt)
    g, gt = pe_cuda(np.ones(y.shape, np.float32)), torch.ones(yt.shape, device="cuda")
    row(
        name + " fwd+bwd",
        timed(lambda: ours_fn(xg).backward(g)),
        timed(lambda: ref_fn(xgt).backward(gt)),
        "torch",
        gbytes_fb,
        "GB/s",
    )


def case_norm():
    rng = np.random.default_rng(3)
    # 8192 rows: a transformer's activations, where launch overhead shows; 65536: the kernels.
    for rows in (8192, 65536):
        x = rng.standard_normal((rows, 1024), dtype=np.float32)
        xp, xt = pe_cuda(x), th(x)
        gb = x.nbytes / 1e9  # fwd: read x, write y; fwd+bwd: + read y or x, read dy, write dx
        _norm_row(
            f"softmax {rows}x1024",
            lambda t: F.softmax(t, dim=-1),
            lambda t: torch.softmax(t, dim=-1),
            xp,
            xt,
            2 * gb,
            5 * gb,
        )
        w, b = pe_cuda(np.ones(1024, np.float32)), pe_cuda(np.zeros(1024, np.float32))
        wt, bt = th(np.ones(1024, np.float32)), th(np.zeros(1024, np.float32))
        _norm_row(
            f"layer_norm {rows}x1024",
            lambda t: F.layer_norm(t, (1024,), w, b),
            lambda t: torch.nn.functional.layer_norm(t, (1024,), wt, bt),
            xp,
            xt,
            2 * gb,
            5 * gb,
        )
        # Training: the weight and bias gradients too (column sums over every row).
        wg, bg = pe_cuda(np.ones(1024, np.float32), True), pe_cuda(np.zeros(1024, np.float32), True)
        wgt, bgt = th(np.ones(1024, np.float32), True), th(np.zeros(1024, np.float32), True)
        xg, xgt = pe_cuda(x, True), th(x, True)
        g, gt = pe_cuda(np.ones(x.shape, np.float32)), torch.ones(x.shape, device="cuda")
        row(
            f"layer_norm {rows}x1024 fwd+bwd with affine grads",
            timed(lambda: F.layer_norm(xg, (1024,), wg, bg).backward(g)),
            timed(lambda: torch.nn.functional.layer_norm(xgt, (1024,), wgt, bgt).backward(gt)),
            "torch",
            5 * gb,
            "GB/s",
        )
        # The kernels alone, through the backend (no autograd Function, no Tensor).
        xc = cp.asarray(x)
        with torch.no_grad():
            row(
                f"  backend softmax {rows}x1024 fwd",
                timed(lambda: pcuda.softmax_forward(xc, 1, False)),
                timed(lambda: torch.softmax(xt, dim=-1)),
                "torch",
                2 * gb,
                "GB/s",
            )
            row(
                f"  backend layer_norm {rows}x1024 fwd",
                timed(lambda: pcuda.layer_norm_forward(xc, w.data, b.data, 1e-5)),
                timed(lambda: torch.nn.functional.layer_norm(xt, (1024,), wt, bt)),
                "torch",
                2 * gb,
                "GB/s",
            )
    xb = rng.standard_normal((32, 64, 112, 112), dtype=np.float32)
    g1, b1 = pe_cuda(np.ones(64, np.float32)), pe_cuda(np.zeros(64, np.float32))
    g1t, b1t = th(np.ones(64, np.float32)), th(np.zeros(64, np.float32))
    # training mode without running statistics; ideal: fwd reads x twice, writes y; the
    # backward reads x and dy twice and writes dx.
    gbb = xb.nbytes / 1e9
    _norm_row(
        "batch_norm 32x64x112x112 train",
        lambda t: F.batch_norm(t, None, None, g1, b1, training=True),
        lambda t: torch.nn.functional.batch_norm(t, None, None, g1t, b1t, training=True),
        pe_cuda(xb),
        th(xb),
        3 * gbb,
        8 * gbb,
    )
    a = cp.asarray(rng.standard_normal(1 << 28, dtype=np.float32))
    o = cp.empty_like(a)
    t = timed(lambda: cp.copyto(o, a))
    print(f"  device copy 1 GiB: {2 * a.nbytes / t / 1e9:.0f} GB/s (read + write)")


def case_attention():
    B, H, L, D = (1, 8, 1024, 64) if QUICK else (4, 16, 4096, 128)
    rng = np.random.default_rng(4)
    q, k, v = (cp.asarray(rng.standard_normal((B, H, L, D)).astype(np.float16)) for _ in range(3))
    go = cp.asarray(rng.standard_normal((B, H, L, D)).astype(np.float16))
    qt, kt, vt = (torch.as_tensor(a, device="cuda").requires_grad_() for a in (q, k, v))
    got = torch.as_tensor(go, device="cuda")
    scale = 1.0 / math.sqrt(D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for causal in (False, True):
        flops = 4 * B * H * L * L * D / (2 if causal else 1) / 1e12
        out, lse = pcuda.sdpa_forward(q, k, v, None, causal, scale, 0.0, 0)
        ref = sdpa(qt, kt, vt, is_causal=causal)
        err = float((torch.as_tensor(out).float() - ref.float()).norm() / ref.float().norm())
        print(f"  sdpa fp16 causal={causal}: rel err vs torch {err:.2e}")
        name = f"sdpa fp16 {B}x{H}x{L}x{D} causal={causal}"
        with torch.no_grad():
            theirs = timed(lambda: sdpa(qt, kt, vt, is_causal=causal))
        ours = timed(lambda: pcuda.sdpa_forward(q, k, v, None, causal, scale, 0.0, 0))
        row(name + " fwd", ours, theirs, "SDPA", flops, "TFLOP/s")
        ours = timed(
            lambda: pcuda.sdpa_backward(q, k, v, None, causal, scale, 0.0, 0, out, lse, go)
        )
        theirs = timed(lambda: torch.autograd.grad(ref, (qt, kt, vt), got, retain_graph=True))
        row(name + " bwd", ours, theirs, "SDPA", 2.5 * flops, "TFLOP/s")


CASES = {
    "gemm": case_gemm,
    "conv": case_conv,
    "lstm": case_lstm,
    "norm": case_norm,
    "attention": case_attention,
}
FAMILIES = list(CASES)


def main(ops=None, quick: bool = False, json_path=None) -> int:
    """Run the named families (default: all); 2 when there is no GPU or a name is unknown."""
    global cp, torch, QUICK, REPS, ITERS
    ops = list(ops or FAMILIES)
    unknown = [o for o in ops if o not in CASES]
    if unknown:
        print(f"[bench] unknown GPU families {unknown}; available: {FAMILIES}")
        return 2
    if not pcuda.is_available():
        print(f"[bench] --device cuda needs a CUDA GPU: {pcuda.unavailable_reason()}")
        return 2
    os.environ.setdefault("CUPY_TF32", "0")
    import cupy
    import torch as th

    cp, torch = cupy, th
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    QUICK = quick
    REPS, ITERS = (5, 3) if quick else (11, 5)
    print(
        f"{torch.cuda.get_device_name()}; torch {torch.__version__}, cupy {cp.__version__}; "
        f"median of {REPS} x {ITERS} calls"
    )
    for name in ops:
        try:
            CASES[name]()
        except Exception:
            traceback.print_exc()
    if json_path:
        with open(json_path, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), rows=ROWS), f, indent=1)
    return 0
