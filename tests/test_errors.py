"""Bad calls -> the right exception type, with a message starting with the op's [name]."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pyengine as pe


def _has_gpu() -> bool:
    devs = pe.info().get("cuda_devices")
    return bool(devs) if not isinstance(devs, int) else devs > 0


def f32(*shape):
    return pe.ones(*shape, dtype=pe.float32)


def f64(*shape):
    return pe.ones(*shape, dtype=pe.float64)


def i64(*shape):
    return pe.ones(*shape, dtype=pe.int64)


def _backward_twice():
    y = (pe.ones(2, requires_grad=True).exp()).sum()
    y.backward()
    y.backward()


def _gemm(**over):
    args = dict(
        transA=False,
        transB=False,
        M=2,
        N=2,
        K=2,
        alpha=1.0,
        A=np.ones(4),
        lda=2,
        B=np.ones(4),
        ldb=2,
        beta=0.0,
        C=np.zeros(4),
        ldc=2,
    )
    args.update(over)
    return pe.gemm(*args.values())


ANY_OP = r"^\[\w+\] "

# name: (call, exception type(s), regex the message must match)
CASES = {
    # dtypes
    "add f32+f64": (lambda: f32(2) + f64(2), TypeError, r"^\[add\] "),
    "sub f32-f64": (lambda: f32(2) - f64(2), TypeError, r"^\[sub\] "),
    "mul f32*f64": (lambda: f32(2) * f64(2), TypeError, r"^\[mul\] "),
    "div f32/f64": (lambda: f32(2) / f64(2), TypeError, r"^\[div\] "),
    "maximum f32,f64": (lambda: pe.maximum(f32(2), f64(2)), TypeError, r"^\[maximum\] "),
    "matmul f32@f64": (lambda: f32(2, 2) @ f64(2, 2), TypeError, r"^\[matmul\] "),
    "matmul int": (lambda: i64(2, 2) @ i64(2, 2), TypeError, r"^\[matmul\] "),
    "cat f32,f64": (lambda: pe.cat([f32(2), f64(2)]), TypeError, r"^\[cat\] "),
    "where non-bool cond": (lambda: pe.where(f32(2), f32(2), f32(2)), TypeError, r"^\[where\] "),
    "tensor complex": (lambda: pe.tensor(np.array([1j])), TypeError, r"^\[tensor\] "),
    "tensor str": (lambda: pe.tensor(np.array(["a"])), TypeError, r"^\[tensor\] "),
    "exp of int": (lambda: pe.exp(i64(2)), TypeError, r"^\[exp\] "),
    "requires_grad int": (
        lambda: pe.tensor([1, 2], requires_grad=True),
        (TypeError, RuntimeError),
        ANY_OP,
    ),
    # shapes
    "matmul shapes": (lambda: f32(2, 3) @ f32(4, 5), ValueError, r"^\[matmul\] "),
    "matmul 1-D mismatch": (lambda: f32(3) @ f32(4), ValueError, r"^\[matmul\] "),
    "matmul batch": (lambda: f32(2, 3, 4) @ f32(3, 4, 5), ValueError, r"^\[matmul\] "),
    "matmul 0-d": (lambda: f32() @ f32(3), ValueError, r"^\[matmul\] "),
    "add broadcast": (lambda: f32(2, 3) + f32(4), ValueError, r"^\[add\] "),
    "mul broadcast": (lambda: f32(2, 3) * f32(2, 4), ValueError, r"^\[mul\] "),
    "where broadcast": (
        lambda: pe.where(pe.tensor([True, False]), f32(3), f32(3)),
        ValueError,
        r"^\[where\] ",
    ),
    "reshape numel": (lambda: f32(2, 3).reshape(4, 2), ValueError, r"^\[(reshape|view)\] "),
    "reshape two -1": (lambda: f32(2, 3).reshape(-1, -1), ValueError, r"^\[(reshape|view)\] "),
    "view numel": (lambda: f32(6).view(4), ValueError, r"^\[(view|reshape)\] "),
    "expand bad": (lambda: f32(3, 2).expand(3, 4), ValueError, r"^\[expand\] "),
    "expand fewer dims": (lambda: f32(2, 3).expand(3), ValueError, r"^\[expand\] "),
    "permute not a perm": (lambda: f32(2, 3).permute(0, 0), ValueError, r"^\[permute\] "),
    "permute wrong len": (lambda: f32(2, 3).permute(0), ValueError, r"^\[permute\] "),
    "cat shapes": (lambda: pe.cat([f32(2, 3), f32(2, 4)], dim=0), ValueError, r"^\[cat\] "),
    "cat empty": (lambda: pe.cat([]), ValueError, r"^\[cat\] "),
    "stack shapes": (lambda: pe.stack([f32(2), f32(3)]), ValueError, r"^\[stack\] "),
    "split sections": (lambda: f32(5).split([2, 2]), ValueError, r"^\[split\] "),
    "chunk zero": (lambda: f32(5).chunk(0), ValueError, r"^\[chunk\] "),
    "pad odd length": (lambda: pe.functional.pad(f32(3), (1,)), ValueError, r"^\[pad\] "),
    "pad too long": (lambda: pe.functional.pad(f32(3), (1, 1, 1, 1)), ValueError, r"^\[pad\] "),
    "flatten start>end": (lambda: f32(2, 3, 4).flatten(2, 1), ValueError, r"^\[flatten\] "),
    "item multi": (lambda: f32(2).item(), ValueError, r"^\[item\] "),
    "amax empty": (lambda: f32(0).amax(), ValueError, r"^\[amax\] "),
    "max empty": (lambda: f32(0, 3).max(dim=0), ValueError, r"^\[(max|argmax)\] "),
    "argmax empty": (lambda: f32(0).argmax(), ValueError, r"^\[argmax\] "),
    "clamp no bounds": (lambda: f32(2).clamp(), ValueError, r"^\[clamp\] "),
    # dims out of range (torch raises IndexError; a ValueError is acceptable too)
    "sum dim": (lambda: f32(2, 3).sum(dim=2), (ValueError, IndexError), r"^\[sum\] "),
    "transpose dim": (
        lambda: f32(2, 3).transpose(0, 2),
        (ValueError, IndexError),
        r"^\[transpose\] ",
    ),
    "unsqueeze dim": (lambda: f32(2, 3).unsqueeze(4), (ValueError, IndexError), r"^\[unsqueeze\] "),
    "squeeze dim": (lambda: f32(2, 3).squeeze(3), (ValueError, IndexError), r"^\[squeeze\] "),
    "cat dim": (lambda: pe.cat([f32(2), f32(2)], dim=1), (ValueError, IndexError), r"^\[cat\] "),
    "index out of range": (lambda: f32(3)[3], (IndexError, ValueError), ANY_OP),
    "index array out of range": (
        lambda: f32(3)[np.array([0, 5])],
        (IndexError, ValueError),
        ANY_OP,
    ),
    "too many indices": (lambda: f32(3)[0, 0], (IndexError, ValueError), ANY_OP),
    "mask shape": (lambda: f32(3)[np.array([True, False])], (IndexError, ValueError), ANY_OP),
    # autograd misuse
    "backward non-scalar": (
        lambda: (pe.ones(2, requires_grad=True) * 2.0).backward(),
        RuntimeError,
        r"^\[backward\] ",
    ),
    "backward twice": (_backward_twice, RuntimeError, ANY_OP),
    "backward no grad": (lambda: pe.ones(2).sum().backward(), RuntimeError, ANY_OP),
    "grad wrong shape": (
        lambda: (pe.ones(2, requires_grad=True) * 2.0).backward(pe.ones(3)),
        (RuntimeError, ValueError),
        ANY_OP,
    ),
    "numpy of requires_grad": (
        lambda: pe.ones(2, requires_grad=True).numpy(),
        RuntimeError,
        r"^\[numpy\] ",
    ),
    # kernels
    "gemm A small": (lambda: _gemm(A=np.ones(3)), ValueError, r"^\[gemm\] "),
    "gemm ldc": (lambda: _gemm(ldc=1), ValueError, r"^\[gemm\] "),
    "gemm dtype": (lambda: _gemm(B=np.ones(4, np.float32)), TypeError, r"^\[gemm\] "),
    "gemm act": (
        lambda: pe.gemm(
            False,
            False,
            2,
            2,
            2,
            1.0,
            np.ones(4),
            2,
            np.ones(4),
            2,
            0.0,
            np.zeros(4),
            2,
            act="tanh",
        ),
        ValueError,
        r"^\[gemm\] ",
    ),
    # configuration
    "set_num_threads 0": (lambda: pe.set_num_threads(0), ValueError, ANY_OP),
    "set_cpu_isa bogus": (lambda: pe.set_cpu_isa("sse9"), ValueError, ANY_OP),
}

if not _has_gpu():
    CASES["cuda()"] = (lambda: pe.ones(2).cuda(), RuntimeError, r"^\[(cuda|to)\] ")
    CASES["tensor on cuda"] = (lambda: pe.tensor([1.0], device="cuda"), RuntimeError, r"^\[\w+\] ")
    CASES["zeros on cuda"] = (lambda: pe.zeros(2, device="cuda"), RuntimeError, r"^\[\w+\] ")
CASES["unknown device"] = (lambda: pe.zeros(2, device="tpu"), (ValueError, RuntimeError), ANY_OP)


@pytest.mark.parametrize("name", list(CASES))
def test_error(name):
    call, exc, pattern = CASES[name]
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), (
        f"message {str(info.value)!r} does not match {pattern!r}"
    )


def test_error_leaves_no_partial_state():
    """A failed op on tensors that require grad does not break a later backward."""
    x = pe.ones(2, requires_grad=True)
    with pytest.raises(ValueError):
        x + pe.ones(3)
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
