"""Convolution cases: ResNet-like conv2d layers and a DCGAN-like conv_transpose2d, forward and
forward+backward (grad of input, weight and bias), float32, side by side with PyTorch."""

from __future__ import annotations

import numpy as np

import pyengine as pe
import pyengine.functional as F

from . import optional_torch, run_case

UNIT = "GFLOP/s"


def cases(quick: bool = False) -> list:
    """(name, transposed, N, C_in, C_out, H, W, k, stride, padding, groups)."""
    out = [
        ("conv 8x64->64 56x56 k3 p1", False, 8, 64, 64, 56, 56, 3, 1, 1, 1),
        ("conv 8x128->256 28x28 k3 s2 p1", False, 8, 128, 256, 28, 28, 3, 2, 1, 1),
        ("conv 8x256->256 14x14 k1", False, 8, 256, 256, 14, 14, 1, 1, 0, 1),
        ("conv 8x3->32 32x32 k3 p1", False, 8, 3, 32, 32, 32, 3, 1, 1, 1),
        ("convT 8x64->32 16x16->32x32 k4 s2 p1", True, 8, 64, 32, 16, 16, 4, 2, 1, 1),
    ]
    if quick:
        return out[:3] + out[4:]
    return out + [  # ResNet-50's last stage, depthwise (MobileNet-like), grouped (ResNeXt-like)
        ("conv 8x2048->512 7x7 k1", False, 8, 2048, 512, 7, 7, 1, 1, 0, 1),
        ("depthwise 8x128 56x56 k3 p1", False, 8, 128, 128, 56, 56, 3, 1, 1, 128),
        ("depthwise 8x256 28x28 k3 s2 p1", False, 8, 256, 256, 28, 28, 3, 2, 1, 256),
        ("depthwise 8x512 14x14 k3 s2 p1", False, 8, 512, 512, 14, 14, 3, 2, 1, 512),
        ("grouped 8x128->128 28x28 k3 p1 g32", False, 8, 128, 128, 28, 28, 3, 1, 1, 32),
    ]


def flops(transposed, N, C, O, H, W, k, s, p, g=1) -> float:
    """Multiply-adds x 2 of the forward (the backward does twice as many)."""
    if transposed:  # every input pixel meets every tap once
        return 2.0 * N * C * H * W * O * k * k / g
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    return 2.0 * N * O * oh * ow * C * k * k / g


def _operands(transposed, N, C, O, H, W, k, rng, g=1):
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    wshape = (C, O // g, k, k) if transposed else (O, C // g, k, k)
    w = (rng.standard_normal(wshape, dtype=np.float32) / np.sqrt(C // g * k * k)).astype(np.float32)
    b = rng.standard_normal(O, dtype=np.float32)
    return x, w, b


def _pyengine_fns(transposed, x, w, b, s, p, groups=1):
    px = pe.from_numpy(x).requires_grad_()
    pw = pe.from_numpy(w).requires_grad_()
    pb = pe.from_numpy(b).requires_grad_()

    def fwd():
        with pe.no_grad():
            if transposed:
                return F.conv_transpose2d(px, pw, pb, stride=s, padding=p, groups=groups)
            return F.conv2d(px, pw, pb, stride=s, padding=p, groups=groups)

    y = fwd()
    g = pe.from_numpy(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))

    def fwd_bwd():
        px.grad = pw.grad = pb.grad = None
        if transposed:
            out = F.conv_transpose2d(px, pw, pb, stride=s, padding=p, groups=groups)
        else:
            out = F.conv2d(px, pw, pb, stride=s, padding=p, groups=groups)
        out.backward(g)

    return fwd, fwd_bwd


def _torch_fns(torch, transposed, x, w, b, s, p, groups=1):
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    op = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d

    def fwd():
        with torch.no_grad():
            return op(tx, tw, tb, stride=s, padding=p, groups=groups)

    g = torch.from_numpy(
        np.random.default_rng(1).standard_normal(tuple(fwd().shape), dtype=np.float32)
    )

    def fwd_bwd():
        tx.grad = tw.grad = tb.grad = None
        op(tx, tw, tb, stride=s, padding=p, groups=groups).backward(g)

    return fwd, fwd_bwd


def run(quick: bool = False) -> list:
    rng = np.random.default_rng(0)
    torch = optional_torch()
    rows = []
    min_time = 0.1 if quick else 0.3
    for name, transposed, N, C, O, H, W, k, s, p, g in cases(quick):
        x, w, b = _operands(transposed, N, C, O, H, W, k, rng, g)
        fl = flops(transposed, N, C, O, H, W, k, s, p, g)
        pf, pfb = _pyengine_fns(transposed, x, w, b, s, p, g)
        tf, tfb = _torch_fns(torch, transposed, x, w, b, s, p, g) if torch else (None, None)
        rows.append(run_case(name + " fwd", fl, {"pyengine": pf, "torch": tf}, min_time))
        rows.append(run_case(name + " fwd+bwd", 3 * fl, {"pyengine": pfb, "torch": tfb}, min_time))
    return rows
