"""Bad calls -> the right exception type, with a message starting with the op's [name]."""

from __future__ import annotations

import re
import sys

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


# =============================================================================================
# Every public op: a table of bad calls. Each case names its op; the message must start with
# "[op] " (an nn layer may name itself or the functional op it calls). test_table_covers_*
# fail when a public op, Tensor op, creation function or layer has no case, so a new op must
# come with its bad calls.
# =============================================================================================

F = pe.functional
nn = pe.nn

OP_CASES: list = []  # (op, label, call, exception type(s), message regex)


def bad(op: str, label: str, call, exc, pattern: str | None = None) -> None:
    OP_CASES.append((op, label, call, exc, pattern or rf"^\[{op}\] "))


def r32(*shape):
    return pe.randn(*shape, dtype=pe.float32)


def r64(*shape):
    return pe.randn(*shape, dtype=pe.float64)


TOO_BIG = (ValueError, MemoryError)
BIG = 2**62  # element count of BIG x BIG overflows int64
HUGE = 2**46  # float32 elements: 256 TiB, more than the address space

# ---- linear
bad("linear", "weight 3-D", lambda: F.linear(r32(2, 3), r32(4, 3, 1)), ValueError)
bad("linear", "in_features", lambda: F.linear(r32(2, 3), r32(4, 5)), ValueError)
bad("linear", "0-d input", lambda: F.linear(r32(), r32(4, 3)), ValueError)
bad("linear", "bias shape", lambda: F.linear(r32(2, 3), r32(4, 3), r32(5)), ValueError)
bad("linear", "f32 x f64", lambda: F.linear(r32(2, 3), r64(4, 3)), TypeError)
bad("linear", "bias f64", lambda: F.linear(r32(2, 3), r32(4, 3), r64(4)), TypeError)
bad("linear", "int input", lambda: F.linear(i64(2, 3), i64(4, 3)), TypeError)
bad("linear", "not a tensor", lambda: F.linear(np.ones((2, 3)), r32(4, 3)), TypeError)
# ---- pad
bad("pad", "mode", lambda: F.pad(r32(1, 2, 3), (1, 1), mode="wrap"), ValueError)
bad("pad", "reflect >= size", lambda: F.pad(r32(1, 2, 3), (3, 3), mode="reflect"), ValueError)
bad("pad", "not ints", lambda: F.pad(r32(3), (1.5, 1)), (TypeError, ValueError))
bad("pad", "crop below 0", lambda: F.pad(r32(3), (-2, -2)), ValueError)
bad("pad", "overflow", lambda: F.pad(r32(2, 2), (BIG, BIG, BIG, BIG)), TOO_BIG)
bad("pad", "too big", lambda: F.pad(r32(2, 3, 8, 8), (2**40, 2**40)), TOO_BIG)
# ---- pointwise activations: float only, Tensor only
for _op in ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "selu", "softplus"):
    bad(_op, "not a tensor", lambda _op=_op: getattr(F, _op)([1.0, 2.0]), TypeError)
for _op in ("sigmoid", "tanh", "gelu", "silu", "elu", "selu", "softplus"):
    bad(_op, "int input", lambda _op=_op: getattr(F, _op)(i64(3)), TypeError)
bad("gelu", "approximate", lambda: F.gelu(r32(3), approximate="fast"), ValueError)
bad("leaky_relu", "slope not a number", lambda: F.leaky_relu(r32(3), "a"), TypeError)
bad("elu", "alpha not a number", lambda: F.elu(r32(3), alpha=None), TypeError)
bad("softplus", "beta 0", lambda: F.softplus(r32(3), beta=0.0), ValueError)

# ---- conv1d / conv2d / conv_transpose2d
x4, w4 = (lambda: r32(2, 4, 7, 7)), (lambda: r32(6, 4, 3, 3))
x3, w3 = (lambda: r32(2, 4, 9)), (lambda: r32(6, 4, 3))
bad("conv2d", "input 2-D", lambda: F.conv2d(r32(4, 7), w4()), ValueError)
bad("conv2d", "input 5-D", lambda: F.conv2d(r32(1, 2, 4, 7, 7), w4()), ValueError)
bad("conv2d", "weight 3-D", lambda: F.conv2d(x4(), r32(6, 4, 3)), ValueError)
bad("conv2d", "channels", lambda: F.conv2d(x4(), r32(6, 3, 3, 3)), ValueError)
bad("conv2d", "bias shape", lambda: F.conv2d(x4(), w4(), r32(5)), ValueError)
bad("conv2d", "f32 x f64", lambda: F.conv2d(x4(), r64(6, 4, 3, 3)), TypeError)
bad("conv2d", "bias f64", lambda: F.conv2d(x4(), w4(), r64(6)), TypeError)
bad("conv2d", "int input", lambda: F.conv2d(i64(2, 4, 7, 7), i64(6, 4, 3, 3)), TypeError)
bad("conv2d", "stride 0", lambda: F.conv2d(x4(), w4(), stride=0), ValueError)
bad("conv2d", "stride -1", lambda: F.conv2d(x4(), w4(), stride=(1, -1)), ValueError)
bad("conv2d", "padding -1", lambda: F.conv2d(x4(), w4(), padding=-1), ValueError)
bad("conv2d", "dilation 0", lambda: F.conv2d(x4(), w4(), dilation=0), ValueError)
bad("conv2d", "groups 0", lambda: F.conv2d(x4(), w4(), groups=0), ValueError)
bad(
    "conv2d",
    "groups !| in",
    lambda: F.conv2d(r32(2, 3, 7, 7), r32(6, 1, 3, 3), groups=2),
    ValueError,
)
bad("conv2d", "groups !| out", lambda: F.conv2d(x4(), r32(5, 2, 3, 3), groups=2), ValueError)
bad("conv2d", "kernel > input", lambda: F.conv2d(r32(1, 4, 2, 2), w4()), ValueError)
bad("conv2d", "padding str", lambda: F.conv2d(x4(), w4(), padding="full"), ValueError)
bad("conv2d", "same + stride", lambda: F.conv2d(x4(), w4(), padding="same", stride=2), ValueError)
bad(
    "conv2d",
    "stride tuple len",
    lambda: F.conv2d(x4(), w4(), stride=(1, 1, 1)),
    (TypeError, ValueError),
)
bad("conv2d", "stride float", lambda: F.conv2d(x4(), w4(), stride=1.5), (TypeError, ValueError))
bad("conv2d", "padding overflow", lambda: F.conv2d(x4(), w4(), padding=2**31), TOO_BIG)
bad("conv2d", "padding too big", lambda: F.conv2d(x4(), w4(), padding=2**20), TOO_BIG)
bad("conv1d", "input 4-D", lambda: F.conv1d(x4(), w3()), ValueError)
bad("conv1d", "channels", lambda: F.conv1d(x3(), r32(6, 3, 3)), ValueError)
bad("conv1d", "f32 x f64", lambda: F.conv1d(x3(), r64(6, 4, 3)), TypeError)
bad("conv1d", "int input", lambda: F.conv1d(i64(2, 4, 9), i64(6, 4, 3)), TypeError)
bad("conv1d", "stride 0", lambda: F.conv1d(x3(), w3(), stride=0), ValueError)
bad("conv1d", "dilation -1", lambda: F.conv1d(x3(), w3(), dilation=-1), ValueError)
bad("conv1d", "groups", lambda: F.conv1d(x3(), w3(), groups=3), ValueError)
wt = lambda: r32(4, 3, 3, 3)  # noqa: E731  (in, out/groups, kh, kw)
bad("conv_transpose2d", "input 2-D", lambda: F.conv_transpose2d(r32(4, 7), wt()), ValueError)
bad("conv_transpose2d", "channels", lambda: F.conv_transpose2d(r32(2, 5, 7, 7), wt()), ValueError)
bad("conv_transpose2d", "f32 x f64", lambda: F.conv_transpose2d(x4(), r64(4, 3, 3, 3)), TypeError)
bad(
    "conv_transpose2d",
    "int input",
    lambda: F.conv_transpose2d(i64(2, 4, 7, 7), i64(4, 3, 3, 3)),
    TypeError,
)
bad("conv_transpose2d", "stride 0", lambda: F.conv_transpose2d(x4(), wt(), stride=0), ValueError)
bad(
    "conv_transpose2d", "padding -1", lambda: F.conv_transpose2d(x4(), wt(), padding=-1), ValueError
)
bad(
    "conv_transpose2d", "dilation 0", lambda: F.conv_transpose2d(x4(), wt(), dilation=0), ValueError
)
bad(
    "conv_transpose2d",
    "output_padding >= stride",
    lambda: F.conv_transpose2d(x4(), wt(), stride=2, output_padding=2),
    ValueError,
)
bad("conv_transpose2d", "groups", lambda: F.conv_transpose2d(x4(), wt(), groups=3), ValueError)
bad("conv_transpose2d", "bias", lambda: F.conv_transpose2d(x4(), wt(), r32(4)), ValueError)
bad(
    "conv_transpose2d",
    "stride overflow",
    lambda: F.conv_transpose2d(x4(), wt(), stride=2**31),
    TOO_BIG,
)
bad(
    "conv_transpose2d",
    "stride too big",
    lambda: F.conv_transpose2d(x4(), wt(), stride=2**20),
    TOO_BIG,
)

# ---- attention
q4 = lambda: r32(2, 3, 5, 8)  # noqa: E731
SDPA = "scaled_dot_product_attention"
bad(SDPA, "1-D", lambda: F.scaled_dot_product_attention(r32(8), r32(8), r32(8)), ValueError)
bad(
    SDPA,
    "head dim",
    lambda: F.scaled_dot_product_attention(q4(), r32(2, 3, 5, 7), q4()),
    ValueError,
)
bad(
    SDPA,
    "kv length",
    lambda: F.scaled_dot_product_attention(q4(), r32(2, 3, 6, 8), q4()),
    ValueError,
)
bad(SDPA, "batch", lambda: F.scaled_dot_product_attention(q4(), r32(3, 3, 5, 8), q4()), ValueError)
bad(
    SDPA,
    "f32 x f64",
    lambda: F.scaled_dot_product_attention(q4(), q4(), r64(2, 3, 5, 8)),
    TypeError,
)
bad(SDPA, "int", lambda: F.scaled_dot_product_attention(*[i64(2, 3, 5, 8)] * 3), TypeError)
bad(
    SDPA,
    "mask shape",
    lambda: F.scaled_dot_product_attention(q4(), q4(), q4(), attn_mask=r32(4, 4)),
    ValueError,
)
bad(
    SDPA,
    "mask dtype",
    lambda: F.scaled_dot_product_attention(q4(), q4(), q4(), attn_mask=r64(5, 5)),
    TypeError,
)
bad(
    SDPA,
    "dropout_p 1.5",
    lambda: F.scaled_dot_product_attention(q4(), q4(), q4(), dropout_p=1.5),
    ValueError,
)
bad(
    SDPA,
    "causal + mask",
    lambda: F.scaled_dot_product_attention(q4(), q4(), q4(), attn_mask=r32(5, 5), is_causal=True),
    ValueError,
)

# ---- norms
bad("batch_norm", "1-D input", lambda: F.batch_norm(r32(4), r32(4), r32(4)), ValueError)
bad("batch_norm", "running_mean shape", lambda: F.batch_norm(r32(2, 4), r32(3), r32(4)), ValueError)
bad(
    "batch_norm",
    "weight shape",
    lambda: F.batch_norm(r32(2, 4), None, None, r32(3), training=True),
    ValueError,
)
bad("batch_norm", "f32 x f64", lambda: F.batch_norm(r32(2, 4), r64(4), r64(4)), TypeError)
bad(
    "batch_norm", "int input", lambda: F.batch_norm(i64(2, 4), None, None, training=True), TypeError
)
bad(
    "batch_norm",
    "one value/channel",
    lambda: F.batch_norm(r32(1, 4), None, None, training=True),
    ValueError,
)
bad("batch_norm", "eval, no stats", lambda: F.batch_norm(r32(2, 4), None, None), ValueError)
bad(
    "batch_norm",
    "eps < 0",
    lambda: F.batch_norm(r32(2, 4), None, None, training=True, eps=-1.0),
    ValueError,
)
bad("layer_norm", "shape", lambda: F.layer_norm(r32(2, 5), (4,)), ValueError)
bad("layer_norm", "shape too long", lambda: F.layer_norm(r32(5), (2, 5)), ValueError)
bad("layer_norm", "weight shape", lambda: F.layer_norm(r32(2, 5), (5,), r32(4)), ValueError)
bad("layer_norm", "f32 x f64", lambda: F.layer_norm(r32(2, 5), (5,), r64(5)), TypeError)
bad("layer_norm", "int input", lambda: F.layer_norm(i64(2, 5), (5,)), TypeError)
bad("layer_norm", "negative size", lambda: F.layer_norm(r32(2, 5), (-5,)), ValueError)
bad("group_norm", "groups do not divide C", lambda: F.group_norm(r32(2, 6, 3), 4), ValueError)
bad("group_norm", "groups 0", lambda: F.group_norm(r32(2, 6, 3), 0), ValueError)
bad("group_norm", "weight shape", lambda: F.group_norm(r32(2, 6, 3), 2, r32(3)), ValueError)
bad("group_norm", "f32 x f64", lambda: F.group_norm(r32(2, 6, 3), 2, r64(6)), TypeError)
bad("group_norm", "int input", lambda: F.group_norm(i64(2, 6, 3), 2), TypeError)
bad("group_norm", "rank 1", lambda: F.group_norm(r32(6), 2), ValueError)
bad("instance_norm", "1 spatial element", lambda: F.instance_norm(r32(2, 3, 1)), ValueError)
bad("instance_norm", "rank 2", lambda: F.instance_norm(r32(2, 3)), ValueError)
bad("instance_norm", "mean without var", lambda: F.instance_norm(r32(2, 3, 4), r32(3)), ValueError)
bad(
    "instance_norm",
    "no running stats",
    lambda: F.instance_norm(r32(2, 3, 4), use_input_stats=False),
    ValueError,
)
bad("instance_norm", "weight f64", lambda: F.instance_norm(r32(2, 3, 4), weight=r64(3)), TypeError)

# ---- softmax family and losses
for _op in ("softmax", "log_softmax"):
    bad(_op, "dim", lambda _op=_op: getattr(F, _op)(r32(2, 3), dim=2), (ValueError, IndexError))
    bad(_op, "int input", lambda _op=_op: getattr(F, _op)(i64(2, 3), dim=1), TypeError)
    bad(_op, "not a tensor", lambda _op=_op: getattr(F, _op)([1.0, 2.0], dim=0), TypeError)
tgt = lambda: pe.tensor([0, 2])  # noqa: E731
bad(
    "cross_entropy",
    "target shape",
    lambda: F.cross_entropy(r32(2, 3), pe.tensor([0, 1, 2])),
    ValueError,
)
bad(
    "cross_entropy",
    "target range",
    lambda: F.cross_entropy(r32(2, 3), pe.tensor([0, 3])),
    (ValueError, IndexError),
)
bad(
    "cross_entropy",
    "target negative",
    lambda: F.cross_entropy(r32(2, 3), pe.tensor([0, -1])),
    (ValueError, IndexError),
)
bad(
    "cross_entropy",
    "target float shape",
    lambda: F.cross_entropy(r32(2, 3), r32(2)),
    (TypeError, ValueError),
)
bad("cross_entropy", "probs f64", lambda: F.cross_entropy(r32(2, 3), r64(2, 3)), TypeError)
bad(
    "cross_entropy",
    "weight shape",
    lambda: F.cross_entropy(r32(2, 3), tgt(), weight=r32(2)),
    ValueError,
)
bad(
    "cross_entropy",
    "weight f64",
    lambda: F.cross_entropy(r32(2, 3), tgt(), weight=r64(3)),
    TypeError,
)
bad("cross_entropy", "int input", lambda: F.cross_entropy(i64(2, 3), tgt()), TypeError)
bad(
    "cross_entropy",
    "reduction",
    lambda: F.cross_entropy(r32(2, 3), tgt(), reduction="avg"),
    ValueError,
)
bad(
    "cross_entropy",
    "smoothing",
    lambda: F.cross_entropy(r32(2, 3), tgt(), label_smoothing=1.5),
    ValueError,
)
bad("cross_entropy", "0-d input", lambda: F.cross_entropy(r32(), pe.tensor(0)), ValueError)
bad("nll_loss", "target shape", lambda: F.nll_loss(r32(2, 3), pe.tensor([0])), ValueError)
bad(
    "nll_loss",
    "target range",
    lambda: F.nll_loss(r32(2, 3), pe.tensor([0, 5])),
    (ValueError, IndexError),
)
bad("nll_loss", "target float", lambda: F.nll_loss(r32(2, 3), r32(2)), TypeError)
bad("nll_loss", "weight f64", lambda: F.nll_loss(r32(2, 3), tgt(), weight=r64(3)), TypeError)
bad("nll_loss", "int input", lambda: F.nll_loss(i64(2, 3), tgt()), TypeError)
bad("nll_loss", "reduction", lambda: F.nll_loss(r32(2, 3), tgt(), reduction="all"), ValueError)
for _op in ("mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
    _f = getattr(F, _op)
    bad(_op, "shape", lambda _f=_f: _f(pe.rand(2, 3), pe.rand(3, 2)), ValueError)
    bad(
        _op,
        "f32 x f64",
        lambda _f=_f: _f(pe.rand(2, 3), pe.rand(2, 3, dtype=pe.float64)),
        TypeError,
    )
    bad(_op, "int input", lambda _f=_f: _f(i64(2, 3), i64(2, 3)), TypeError)
    bad(
        _op,
        "reduction",
        lambda _f=_f: _f(pe.rand(2, 3), pe.rand(2, 3), reduction="avg"),
        ValueError,
    )
    bad(_op, "not a tensor", lambda _f=_f: _f(np.ones((2, 3)), pe.rand(2, 3)), TypeError)
for _op in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
    _f = getattr(F, _op)
    bad(
        _op,
        "weight shape",
        lambda _f=_f: _f(pe.rand(2, 3), pe.rand(2, 3), weight=r32(4)),
        ValueError,
    )
    bad(_op, "weight f64", lambda _f=_f: _f(pe.rand(2, 3), pe.rand(2, 3), weight=r64(3)), TypeError)
bad(
    "binary_cross_entropy_with_logits",
    "pos_weight shape",
    lambda: F.binary_cross_entropy_with_logits(r32(2, 3), pe.rand(2, 3), pos_weight=r32(2)),
    ValueError,
)


# ---- recurrent
def _rnn_w(G, I, H, dt=pe.float32):  # noqa: E741
    return [pe.randn(G * H, I, dtype=dt), pe.randn(G * H, H, dtype=dt), None, None]


bad(
    "lstm_cell",
    "input 3-D",
    lambda: F.lstm_cell(r32(1, 2, 3), (r32(2, 4), r32(2, 4)), *_rnn_w(4, 3, 4)[:2]),
    ValueError,
)
bad(
    "lstm_cell",
    "hx not a pair",
    lambda: F.lstm_cell(r32(2, 3), r32(2, 4), *_rnn_w(4, 3, 4)[:2]),
    TypeError,
)
bad(
    "lstm_cell",
    "h shape",
    lambda: F.lstm_cell(r32(2, 3), (r32(2, 5), r32(2, 4)), *_rnn_w(4, 3, 4)[:2]),
    ValueError,
)
bad(
    "lstm_cell",
    "input size",
    lambda: F.lstm_cell(r32(2, 5), (r32(2, 4), r32(2, 4)), *_rnn_w(4, 3, 4)[:2]),
    ValueError,
)
bad(
    "lstm_cell",
    "f32 x f64",
    lambda: F.lstm_cell(r64(2, 3), (r32(2, 4), r32(2, 4)), *_rnn_w(4, 3, 4)[:2]),
    TypeError,
)
bad(
    "lstm_cell",
    "int input",
    lambda: F.lstm_cell(i64(2, 3), (r32(2, 4), r32(2, 4)), *_rnn_w(4, 3, 4)[:2]),
    TypeError,
)
bad(
    "lstm_cell",
    "bias shape",
    lambda: F.lstm_cell(r32(2, 3), (r32(2, 4), r32(2, 4)), *_rnn_w(4, 3, 4)[:2], r32(4)),
    ValueError,
)
bad(
    "gru_cell",
    "input 3-D",
    lambda: F.gru_cell(r32(1, 2, 3), r32(2, 4), *_rnn_w(3, 3, 4)[:2]),
    ValueError,
)
bad(
    "gru_cell",
    "h shape",
    lambda: F.gru_cell(r32(2, 3), r32(3, 4), *_rnn_w(3, 3, 4)[:2]),
    ValueError,
)
bad(
    "gru_cell",
    "weight gates",
    lambda: F.gru_cell(r32(2, 3), r32(2, 4), *_rnn_w(4, 3, 4)[:2]),
    ValueError,
)
bad(
    "gru_cell",
    "f32 x f64",
    lambda: F.gru_cell(r32(2, 3), r32(2, 4), *_rnn_w(3, 3, 4, pe.float64)[:2]),
    TypeError,
)
bad(
    "gru_cell",
    "int input",
    lambda: F.gru_cell(i64(2, 3), r32(2, 4), *_rnn_w(3, 3, 4)[:2]),
    TypeError,
)
for _op, _G in (("lstm", 4), ("gru", 3)):
    _f = getattr(F, _op)
    _h = (lambda: (r32(1, 2, 4), r32(1, 2, 4))) if _op == "lstm" else (lambda: r32(1, 2, 4))
    bad(
        _op,
        "input 4-D",
        lambda _f=_f, _h=_h, _G=_G: _f(r32(5, 2, 3, 1), _h(), _rnn_w(_G, 3, 4)),
        ValueError,
    )
    bad(
        _op,
        "input size",
        lambda _f=_f, _h=_h, _G=_G: _f(r32(5, 2, 6), _h(), _rnn_w(_G, 3, 4)),
        ValueError,
    )
    bad(
        _op,
        "weights count",
        lambda _f=_f, _h=_h, _G=_G: _f(r32(5, 2, 3), _h(), _rnn_w(_G, 3, 4)[:3]),
        ValueError,
    )
    bad(
        _op,
        "f32 x f64",
        lambda _f=_f, _h=_h, _G=_G: _f(r64(5, 2, 3), _h(), _rnn_w(_G, 3, 4)),
        TypeError,
    )
    bad(
        _op,
        "int input",
        lambda _f=_f, _h=_h, _G=_G: _f(i64(5, 2, 3), _h(), _rnn_w(_G, 3, 4)),
        TypeError,
    )
    bad(
        _op,
        "lengths > T",
        lambda _f=_f, _h=_h, _G=_G: _f(r32(5, 2, 3), _h(), _rnn_w(_G, 3, 4), lengths=[6, 2]),
        ValueError,
    )
    bad(
        _op,
        "num_layers 0",
        lambda _f=_f, _h=_h, _G=_G: _f(r32(5, 2, 3), _h(), [], num_layers=0),
        ValueError,
    )
bad(
    "lstm",
    "h shape",
    lambda: F.lstm(r32(5, 2, 3), (r32(1, 3, 4), r32(1, 2, 4)), _rnn_w(4, 3, 4)),
    ValueError,
)
bad("gru", "h shape", lambda: F.gru(r32(5, 2, 3), r32(2, 2, 4), _rnn_w(3, 3, 4)), ValueError)

# ---- dropout, embedding
bad("dropout", "p > 1", lambda: F.dropout(r32(3), p=1.5), ValueError)
bad("dropout", "p < 0", lambda: F.dropout(r32(3), p=-0.1), ValueError)
bad("dropout", "int input", lambda: F.dropout(i64(3), p=0.5), TypeError)
bad("dropout", "not a tensor", lambda: F.dropout([1.0], p=0.5), TypeError)
bad("embedding", "float indices", lambda: F.embedding(r32(3), r32(5, 2)), TypeError)
bad(
    "embedding",
    "index range",
    lambda: F.embedding(pe.tensor([0, 5]), r32(5, 2)),
    (IndexError, ValueError),
)
bad(
    "embedding",
    "negative index",
    lambda: F.embedding(pe.tensor([-1]), r32(5, 2)),
    (IndexError, ValueError),
)
bad("embedding", "weight 1-D", lambda: F.embedding(pe.tensor([0]), r32(5)), ValueError)
bad(
    "embedding",
    "padding_idx",
    lambda: F.embedding(pe.tensor([0]), r32(5, 2), padding_idx=7),
    ValueError,
)

# ---- pooling
xp4 = lambda: r32(2, 3, 8, 8)  # noqa: E731
bad("max_pool2d", "input 2-D", lambda: F.max_pool2d(r32(8, 8), 2), ValueError)
bad("max_pool2d", "input 5-D", lambda: F.max_pool2d(r32(1, 2, 3, 8, 8), 2), ValueError)
bad("max_pool2d", "kernel 0", lambda: F.max_pool2d(xp4(), 0), ValueError)
bad("max_pool2d", "kernel -2", lambda: F.max_pool2d(xp4(), (2, -2)), ValueError)
bad("max_pool2d", "stride 0", lambda: F.max_pool2d(xp4(), 2, stride=0), ValueError)
bad("max_pool2d", "dilation 0", lambda: F.max_pool2d(xp4(), 2, dilation=0), ValueError)
bad("max_pool2d", "padding > k/2", lambda: F.max_pool2d(xp4(), 2, padding=2), ValueError)
bad("max_pool2d", "padding -1", lambda: F.max_pool2d(xp4(), 2, padding=-1), ValueError)
bad("max_pool2d", "output empty", lambda: F.max_pool2d(xp4(), 9), ValueError)
bad("max_pool2d", "kernel overflow", lambda: F.max_pool2d(xp4(), 2**31), ValueError)
bad("max_pool2d", "int input", lambda: F.max_pool2d(i64(2, 3, 8, 8), 2), TypeError)
bad("max_pool2d", "kernel float", lambda: F.max_pool2d(xp4(), 2.5), (TypeError, ValueError))
bad("avg_pool2d", "input 2-D", lambda: F.avg_pool2d(r32(8, 8), 2), ValueError)
bad("avg_pool2d", "kernel 0", lambda: F.avg_pool2d(xp4(), 0), ValueError)
bad("avg_pool2d", "stride -1", lambda: F.avg_pool2d(xp4(), 2, stride=-1), ValueError)
bad("avg_pool2d", "padding > k/2", lambda: F.avg_pool2d(xp4(), 3, padding=2), ValueError)
bad("avg_pool2d", "divisor 0", lambda: F.avg_pool2d(xp4(), 2, divisor_override=0), ValueError)
bad("avg_pool2d", "int input", lambda: F.avg_pool2d(i64(2, 3, 8, 8), 2), TypeError)
for _op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
    _f = getattr(F, _op)
    bad(_op, "input 2-D", lambda _f=_f: _f(r32(8, 8), 2), ValueError)
    bad(_op, "size 0", lambda _f=_f: _f(xp4(), 0), ValueError)
    bad(_op, "size -1", lambda _f=_f: _f(xp4(), (2, -1)), ValueError)
    bad(_op, "size len 3", lambda _f=_f: _f(xp4(), (2, 2, 2)), (TypeError, ValueError))
    bad(_op, "int input", lambda _f=_f: _f(i64(2, 3, 8, 8), 2), TypeError)
    bad(_op, "size overflow", lambda _f=_f: _f(xp4(), (2**31, 2**31)), TOO_BIG)


def _unpool_args():
    y, idx = F.max_pool2d(xp4(), 2, return_indices=True)
    return y, idx


bad(
    "max_unpool2d",
    "indices shape",
    lambda: F.max_unpool2d(_unpool_args()[0], pe.zeros(2, 3, 4, 3, dtype=pe.int64), 2),
    ValueError,
)
bad(
    "max_unpool2d",
    "indices float",
    lambda: F.max_unpool2d(_unpool_args()[0], r32(2, 3, 4, 4), 2),
    TypeError,
)
bad("max_unpool2d", "kernel 0", lambda: F.max_unpool2d(*_unpool_args(), 0), ValueError)
bad("max_unpool2d", "stride 0", lambda: F.max_unpool2d(*_unpool_args(), 2, stride=0), ValueError)
bad(
    "max_unpool2d",
    "output_size",
    lambda: F.max_unpool2d(*_unpool_args(), 2, output_size=(20, 20)),
    ValueError,
)
bad(
    "max_unpool2d",
    "output_size overflow",
    lambda: F.max_unpool2d(*_unpool_args(), 2, output_size=(2**31, 2**31)),
    TOO_BIG,
)
bad(
    "max_unpool2d",
    "index out of range",
    lambda: F.max_unpool2d(_unpool_args()[0], pe.full((2, 3, 4, 4), 64), 2),
    (ValueError, IndexError),
)
bad(
    "max_unpool2d",
    "input 2-D",
    lambda: F.max_unpool2d(r32(4, 4), pe.zeros(4, 4, dtype=pe.int64), 2),
    ValueError,
)
bad(
    "interpolate",
    "size and scale",
    lambda: F.interpolate(xp4(), size=4, scale_factor=2),
    ValueError,
)
bad("interpolate", "neither", lambda: F.interpolate(xp4()), ValueError)
bad(
    "interpolate",
    "mode",
    lambda: F.interpolate(xp4(), scale_factor=2, mode="cubic"),
    (ValueError, NotImplementedError),
)
bad("interpolate", "size 0", lambda: F.interpolate(xp4(), size=0), ValueError)
bad("interpolate", "scale -2", lambda: F.interpolate(xp4(), scale_factor=-2), ValueError)
bad("interpolate", "input 2-D", lambda: F.interpolate(r32(8, 8), scale_factor=2), ValueError)
bad("interpolate", "int input", lambda: F.interpolate(i64(2, 3, 8, 8), scale_factor=2), TypeError)
bad("interpolate", "scale too big", lambda: F.interpolate(xp4(), scale_factor=2**20), TOO_BIG)
bad("interpolate", "scale overflow", lambda: F.interpolate(xp4(), scale_factor=2**31), TOO_BIG)

# ---- Tensor ops (pyengine.ops.__all__, also Tensor methods)
for _op in (
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "minimum",
    "pow",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
):
    _f = getattr(pe, _op)
    bad(_op, "f32 x f64", lambda _f=_f: _f(f32(2), f64(2)), TypeError)
    bad(_op, "broadcast", lambda _f=_f: _f(f32(2, 3), f32(3, 2)), ValueError)
for _op in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid"):
    bad(_op, "int input (pe.)", lambda _op=_op: getattr(pe, _op)(i64(3)), TypeError)
for _op in ("abs", "neg", "sign", "relu", "isnan", "isfinite", "logical_not", "clone"):
    bad(_op, "str input", lambda _op=_op: getattr(pe, _op)("x"), TypeError)
bad("clamp", "f64 bound tensor", lambda: pe.clamp(f32(2), f64(2)), TypeError)
bad("clamp", "min > max tensor shape", lambda: pe.clamp(f32(2), f32(3)), ValueError)
bad("clip", "no bounds", lambda: pe.clip(f32(2)), ValueError, r"^\[(clip|clamp)\] ")  # an alias
bad("where", "f32 x f64", lambda: pe.where(pe.tensor([True, False]), f32(2), f64(2)), TypeError)
bad("cast", "complex", lambda: pe.cast(f32(2), np.complex64), TypeError)
bad("cast", "bogus", lambda: pe.cast(f32(2), "float7"), (TypeError, ValueError))
for _op in ("sum", "mean", "var", "std", "amax", "amin", "argmax", "argmin", "max", "min"):
    bad(_op, "dim", lambda _op=_op: getattr(pe, _op)(f32(2, 3), dim=5), (ValueError, IndexError))
bad("mean", "int input", lambda: pe.mean(i64(3)), TypeError)
bad("var", "int input", lambda: pe.var(i64(3)), TypeError)
bad("std", "int input", lambda: pe.std(i64(3)), TypeError)
bad("amin", "empty", lambda: pe.amin(f32(0)), ValueError)
bad("argmin", "empty", lambda: pe.argmin(f32(0)), ValueError)
bad("min", "empty", lambda: pe.min(f32(0)), ValueError)
bad("gather", "index float", lambda: pe.gather(f32(2, 3), 1, f32(2, 1)), TypeError)
bad(
    "gather",
    "index range",
    lambda: pe.gather(f32(2, 3), 1, pe.tensor([[3], [0]])),
    (IndexError, ValueError),
)
bad("gather", "index rank", lambda: pe.gather(f32(2, 3), 1, pe.tensor([0, 1])), ValueError)
bad(
    "gather",
    "dim",
    lambda: pe.gather(f32(2, 3), 2, pe.tensor([[0], [1]])),
    (IndexError, ValueError),
)
bad("matmul", "f32 x f64", lambda: pe.matmul(f32(2, 2), f64(2, 2)), TypeError)
bad("matmul", "shape", lambda: pe.matmul(f32(2, 3), f32(2, 3)), ValueError)
bad("mm", "3-D", lambda: pe.mm(f32(2, 2, 2), f32(2, 2)), ValueError)
bad("mm", "shape", lambda: pe.mm(f32(2, 3), f32(2, 3)), ValueError)
bad("mm", "f32 x f64", lambda: pe.mm(f32(2, 2), f64(2, 2)), TypeError)
bad("bmm", "2-D", lambda: pe.bmm(f32(2, 2), f32(2, 2)), ValueError)
bad("bmm", "batch", lambda: pe.bmm(f32(2, 2, 2), f32(3, 2, 2)), ValueError)
bad("bmm", "int", lambda: pe.bmm(i64(2, 2, 2), i64(2, 2, 2)), TypeError)
bad("index", "out of range", lambda: pe.index(f32(3), 3), (IndexError, ValueError))
bad("index", "float index", lambda: pe.index(f32(3), f32(1)), (IndexError, TypeError))
bad("index_select", "index float", lambda: pe.index_select(f32(3, 2), 0, f32(2)), TypeError)
bad(
    "index_select",
    "index range",
    lambda: pe.index_select(f32(3, 2), 0, pe.tensor([3])),
    (IndexError, ValueError),
)
bad(
    "index_select", "index 2-D", lambda: pe.index_select(f32(3, 2), 0, pe.tensor([[0]])), ValueError
)
bad("reshape", "numel", lambda: pe.reshape(f32(2, 3), 7), ValueError)
bad("reshape", "negative", lambda: pe.reshape(f32(2, 3), -2, 3), ValueError)
bad("view", "numel", lambda: pe.view(f32(2, 3), 5), ValueError, r"^\[(view|reshape)\] ")
bad("permute", "dim range", lambda: pe.permute(f32(2, 3), 0, 2), (ValueError, IndexError))
bad("transpose", "dim", lambda: pe.transpose(f32(2, 3), 0, -3), (ValueError, IndexError))
bad("expand", "size", lambda: pe.expand(f32(2), 3), ValueError)
bad("expand", "negative", lambda: pe.expand(f32(1), -2), ValueError)
bad("broadcast_to", "shape", lambda: pe.broadcast_to(f32(3), (2,)), ValueError)
bad("squeeze", "dim", lambda: pe.squeeze(f32(2, 1), 2), (ValueError, IndexError))
bad("unsqueeze", "dim", lambda: pe.unsqueeze(f32(2), -3), (ValueError, IndexError))
bad("flatten", "dim", lambda: pe.flatten(f32(2, 3), 0, 3), (ValueError, IndexError))
bad("unflatten", "sizes", lambda: pe.unflatten(f32(2, 6), 1, (4, 2)), ValueError)
bad("split", "size 0", lambda: pe.split(f32(4), 0), ValueError)
bad("chunk", "negative", lambda: pe.chunk(f32(4), -1), ValueError)
bad("cat", "not a list", lambda: pe.cat(f32(2)), TypeError)
bad(
    "concat", "shapes", lambda: pe.concat([f32(2, 3), f32(3, 2)]), ValueError, r"^\[(concat|cat)\] "
)
bad("stack", "f32 x f64", lambda: pe.stack([f32(2), f64(2)]), TypeError)
bad("stack", "empty", lambda: pe.stack([]), ValueError)
_huge_view = lambda: pe.ones(1, 1).expand(2**22, 2**22)  # noqa: E731  (64 TiB as float32)
bad("expand", "overflow", lambda: pe.ones(1, 1).expand(2**40, 2**40), TOO_BIG)
bad("clone", "too big", lambda: pe.clone(_huge_view()), TOO_BIG)
bad(
    "contiguous", "too big", lambda: _huge_view().contiguous(), TOO_BIG, r"^\[(contiguous|clone)\] "
)
bad("add", "too big", lambda: _huge_view() + pe.ones(1, 1), TOO_BIG)
bad("mul", "too big", lambda: pe.ones(2**22, 1) * pe.ones(1, 2**22), TOO_BIG)
bad("exp", "too big", lambda: _huge_view().exp(), TOO_BIG)
bad("conv2d", "kernel 0", lambda: F.conv2d(x4(), r32(6, 4, 0, 3)), ValueError)

# ---- Tensor methods that write in place (outside autograd) and other methods
bad("copy_", "shape", lambda: f32(2).copy_(f32(3)), ValueError)
bad("copy_", "f32 <- f64", lambda: f32(2).copy_(f64(2)), TypeError)
bad("add_", "f32 += f64", lambda: f32(2).add_(f64(2)), TypeError)
bad("add_", "would grow", lambda: f32(2).add_(f32(2, 2)), ValueError)
bad("sub_", "shape", lambda: f32(2).sub_(f32(3)), ValueError, r"^\[(sub_|add_)\] ")
bad("mul_", "shape", lambda: f32(2).mul_(f32(3)), ValueError)
bad("div_", "int tensor", lambda: i64(2).div_(2.0), TypeError)
bad("clamp_", "no bounds", lambda: f32(2).clamp_(), ValueError)
bad("fill_", "not a number", lambda: f32(2).fill_("a"), (TypeError, ValueError))
bad("setitem", "shape", lambda: f32(2, 3).__setitem__(0, f32(4)), ValueError)
bad("setitem", "f32 <- f64", lambda: f32(2, 3).__setitem__(0, f64(3)), TypeError)
bad("uniform_", "int tensor", lambda: i64(2).uniform_(), TypeError)
bad("uniform_", "a > b", lambda: f32(2).uniform_(1, 0), ValueError)
bad("normal_", "std < 0", lambda: f32(2).normal_(0, -1), ValueError)
bad("zero_", "leaf requiring grad", lambda: pe.ones(2, requires_grad=True).zero_(), RuntimeError)
bad("size", "dim", lambda: f32(2).size(3), IndexError)
bad("to", "bogus dtype", lambda: f32(2).to("bogus"), (TypeError, ValueError), r"^\[(to|dtype)\] ")

# ---- creation functions: negative sizes, overflowing element counts, allocation failures
for _op in ("zeros", "ones", "empty", "rand", "randn"):
    _f = getattr(pe, _op)
    bad(_op, "negative", lambda _f=_f: _f(2, -1), ValueError)
    bad(_op, "float size", lambda _f=_f: _f(2.5), (TypeError, ValueError))
    bad(_op, "overflow", lambda _f=_f: _f(BIG, BIG), TOO_BIG)
    bad(_op, "too big", lambda _f=_f: _f(HUGE), TOO_BIG)
bad("rand", "int dtype", lambda: pe.rand(2, dtype=pe.int64), TypeError)
bad("full", "negative", lambda: pe.full((2, -1), 1.0), ValueError)
bad("full", "overflow", lambda: pe.full((BIG, BIG), 1.0), TOO_BIG)
bad("full", "too big", lambda: pe.full((HUGE,), 1.0), TOO_BIG)
bad("arange", "step 0", lambda: pe.arange(0, 5, 0), ValueError)
bad("arange", "wrong sign", lambda: pe.arange(0, 5, -1), ValueError)
bad("arange", "inf", lambda: pe.arange(0, float("inf")), ValueError)
bad("arange", "nan", lambda: pe.arange(0, float("nan")), ValueError)
bad("arange", "too big", lambda: pe.arange(0, BIG), TOO_BIG)
bad("linspace", "negative", lambda: pe.linspace(0, 1, -1), ValueError)
bad("linspace", "too big", lambda: pe.linspace(0, 1, BIG), TOO_BIG)
bad("eye", "negative", lambda: pe.eye(-1), ValueError)
bad("eye", "overflow", lambda: pe.eye(BIG), TOO_BIG)
bad("randint", "negative", lambda: pe.randint(0, 5, (-1,)), ValueError)
bad("randint", "low >= high", lambda: pe.randint(5, 0, (3,)), ValueError)
bad("randint", "overflow", lambda: pe.randint(0, 5, (BIG, BIG)), TOO_BIG)
for _op in ("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like"):
    _f = getattr(pe, _op)
    _args = (1.0,) if _op == "full_like" else ()
    bad(_op, "not a tensor", lambda _f=_f, _args=_args: _f([1.0], *_args), TypeError)
bad("rand_like", "int tensor", lambda: pe.rand_like(i64(2)), TypeError)
bad("tensor", "ragged", lambda: pe.tensor([[1.0], [1.0, 2.0]]), (TypeError, ValueError))
bad("as_tensor", "complex", lambda: pe.as_tensor(np.array([1j])), TypeError)
bad("from_numpy", "list", lambda: pe.from_numpy([1.0]), TypeError)
bad("from_numpy", "complex", lambda: pe.from_numpy(np.array([1j])), TypeError)
bad("from_dlpack", "not dlpack", lambda: pe.from_dlpack([1.0]), TypeError)

# ---- nn layers: constructors (bad sizes, negative kernel/stride/dilation, groups) and forward
#      calls with the wrong rank, shape or dtype. The message names the layer or its op.


def layer(name: str, label: str, call, exc, ops: str) -> None:
    bad(f"nn.{name}", label, call, exc, rf"^\[({name}|{ops})\] ")


layer("Linear", "in -1", lambda: nn.Linear(-1, 3), ValueError, "linear")
layer("Linear", "out float", lambda: nn.Linear(3, 2.5), (TypeError, ValueError), "linear")
layer("Linear", "features", lambda: nn.Linear(3, 2)(r32(4, 5)), ValueError, "linear")
layer("Linear", "f64 input", lambda: nn.Linear(3, 2)(r64(4, 3)), TypeError, "linear")
for _name in ("Conv1d", "Conv2d", "ConvTranspose2d"):
    _C = getattr(nn, _name)
    _ops = {"Conv1d": "conv1d", "Conv2d": "conv2d", "ConvTranspose2d": "conv_transpose2d"}[_name]
    _x = (lambda: r32(2, 4, 9)) if _name == "Conv1d" else (lambda: r32(2, 4, 7, 7))
    layer(_name, "in 0", lambda _C=_C: _C(0, 4, 3), ValueError, _ops)
    layer(_name, "out -1", lambda _C=_C: _C(4, -1, 3), ValueError, _ops)
    layer(_name, "kernel 0", lambda _C=_C: _C(4, 4, 0), ValueError, _ops)
    layer(_name, "kernel -3", lambda _C=_C: _C(4, 4, -3), ValueError, _ops)
    layer(_name, "stride 0", lambda _C=_C: _C(4, 4, 3, stride=0), ValueError, _ops)
    layer(_name, "padding -1", lambda _C=_C: _C(4, 4, 3, padding=-1), ValueError, _ops)
    layer(_name, "dilation 0", lambda _C=_C: _C(4, 4, 3, dilation=0), ValueError, _ops)
    layer(_name, "groups 0", lambda _C=_C: _C(4, 4, 3, groups=0), ValueError, _ops)
    layer(_name, "groups !| in", lambda _C=_C: _C(3, 4, 3, groups=2), ValueError, _ops)
    layer(_name, "groups !| out", lambda _C=_C: _C(4, 3, 3, groups=2), ValueError, _ops)
    layer(_name, "padding_mode", lambda _C=_C: _C(4, 4, 3, padding_mode="mirror"), ValueError, _ops)
    layer(_name, "channels", lambda _C=_C, _x=_x: _C(5, 4, 3)(_x()), ValueError, _ops)
    layer(_name, "rank", lambda _C=_C: _C(4, 4, 3)(r32(2, 4, 7, 7, 7)), ValueError, _ops)
    layer(_name, "f64 input", lambda _C=_C, _x=_x: _C(4, 4, 3)(_x().double()), TypeError, _ops)
layer(
    "Conv2d",
    "same + stride",
    lambda: nn.Conv2d(4, 4, 3, stride=2, padding="same"),
    ValueError,
    "conv2d",
)
layer(
    "ConvTranspose2d",
    "output_padding",
    lambda: nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=2),
    ValueError,
    "conv_transpose2d",
)
for _name, _op in (("MaxPool2d", "max_pool2d"), ("AvgPool2d", "avg_pool2d")):
    _C = getattr(nn, _name)
    layer(_name, "kernel 0", lambda _C=_C: _C(0)(xp4()), ValueError, _op)
    layer(_name, "stride -1", lambda _C=_C: _C(2, stride=-1)(xp4()), ValueError, _op)
    layer(_name, "padding > k/2", lambda _C=_C: _C(2, padding=2)(xp4()), ValueError, _op)
    layer(_name, "rank", lambda _C=_C: _C(2)(r32(8)), ValueError, _op)
layer(
    "MaxPool2d", "dilation 0", lambda: nn.MaxPool2d(2, dilation=0)(xp4()), ValueError, "max_pool2d"
)
layer(
    "MaxUnpool2d",
    "kernel 0",
    lambda: nn.MaxUnpool2d(0)(*_unpool_args()),
    ValueError,
    "max_unpool2d",
)
layer(
    "AdaptiveAvgPool2d",
    "size 0",
    lambda: nn.AdaptiveAvgPool2d(0)(xp4()),
    ValueError,
    "adaptive_avg_pool2d",
)
layer(
    "AdaptiveMaxPool2d",
    "size -1",
    lambda: nn.AdaptiveMaxPool2d(-1)(xp4()),
    ValueError,
    "adaptive_max_pool2d",
)
layer("Upsample", "neither", lambda: nn.Upsample()(xp4()), ValueError, "interpolate")
for _name in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"):
    _C = getattr(nn, _name)
    layer(_name, "features 0", lambda _C=_C: _C(0), ValueError, "batch_norm")
    layer(_name, "features -1", lambda _C=_C: _C(-1), ValueError, "batch_norm")
    layer(_name, "rank", lambda _C=_C: _C(3)(r32(2, 3, 4, 4, 4, 4)), ValueError, "batch_norm")
    layer(_name, "channels", lambda _C=_C: _C(3)(r32(2, 4, 5)), ValueError, "batch_norm")
layer("BatchNorm2d", "3-D input", lambda: nn.BatchNorm2d(3)(r32(3, 4, 4)), ValueError, "batch_norm")
layer(
    "BatchNorm2d", "f64 input", lambda: nn.BatchNorm2d(3)(r64(2, 3, 4, 4)), TypeError, "batch_norm"
)
layer("LayerNorm", "negative", lambda: nn.LayerNorm(-3), ValueError, "layer_norm")
layer("LayerNorm", "shape", lambda: nn.LayerNorm(4)(r32(2, 5)), ValueError, "layer_norm")
layer("LayerNorm", "f64 input", lambda: nn.LayerNorm(5)(r64(2, 5)), TypeError, "layer_norm")
layer("GroupNorm", "not divisible", lambda: nn.GroupNorm(4, 6), ValueError, "group_norm")
layer("GroupNorm", "groups 0", lambda: nn.GroupNorm(0, 6), ValueError, "group_norm")
layer("GroupNorm", "channels", lambda: nn.GroupNorm(2, 6)(r32(2, 4, 3)), ValueError, "group_norm")
for _name, _rank in (("InstanceNorm1d", 3), ("InstanceNorm2d", 4), ("InstanceNorm3d", 5)):
    _C = getattr(nn, _name)
    _ok = (2, 3) + (4,) * (_rank - 2)
    layer(_name, "features 0", lambda _C=_C: _C(0), ValueError, "instance_norm")
    layer(_name, "rank", lambda _C=_C: _C(3)(r32(2)), ValueError, "instance_norm")
    layer(
        _name,
        "channels",
        lambda _C=_C, _ok=_ok: _C(5, affine=True)(r32(*_ok)),
        ValueError,
        "instance_norm",
    )
layer("Embedding", "num -1", lambda: nn.Embedding(-1, 3), ValueError, "embedding")
layer("Embedding", "dim -1", lambda: nn.Embedding(5, -1), ValueError, "embedding")
layer(
    "Embedding", "padding_idx", lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, "embedding"
)
layer("Embedding", "float indices", lambda: nn.Embedding(5, 3)(r32(2)), TypeError, "embedding")
layer("Dropout", "p 2", lambda: nn.Dropout(2.0), ValueError, "dropout")
for _name, _op in (("LSTM", "lstm"), ("GRU", "gru")):
    _C = getattr(nn, _name)
    layer(_name, "hidden 0", lambda _C=_C: _C(3, 0), ValueError, _op)
    layer(_name, "input -1", lambda _C=_C: _C(-1, 4), ValueError, _op)
    layer(_name, "num_layers 0", lambda _C=_C: _C(3, 4, num_layers=0), ValueError, _op)
    layer(_name, "dropout 1.5", lambda _C=_C: _C(3, 4, dropout=1.5), ValueError, _op)
    layer(_name, "rank", lambda _C=_C: _C(3, 4)(r32(5, 2, 3, 1)), ValueError, _op)
    layer(_name, "input size", lambda _C=_C: _C(3, 4)(r32(5, 2, 6)), ValueError, _op)
    layer(_name, "f64 input", lambda _C=_C: _C(3, 4)(r64(5, 2, 3)), TypeError, _op)
layer("LSTM", "proj_size -1", lambda: nn.LSTM(3, 4, proj_size=-1), ValueError, "lstm")
layer("LSTM", "proj_size >= hidden", lambda: nn.LSTM(3, 4, proj_size=4), ValueError, "lstm")
for _name, _op in (("LSTMCell", "lstm_cell"), ("GRUCell", "gru_cell")):
    _C = getattr(nn, _name)
    layer(_name, "hidden 0", lambda _C=_C: _C(3, 0), ValueError, _op)
    layer(_name, "input -1", lambda _C=_C: _C(-1, 4), ValueError, _op)
    layer(_name, "rank", lambda _C=_C: _C(3, 4)(r32(5, 2, 3)), ValueError, _op)
    layer(_name, "f64 input", lambda _C=_C: _C(3, 4)(r64(2, 3)), TypeError, _op)
layer("MultiheadAttention", "heads !| dim", lambda: nn.MultiheadAttention(10, 3), ValueError, SDPA)
layer("MultiheadAttention", "dim 0", lambda: nn.MultiheadAttention(0, 1), ValueError, SDPA)
layer(
    "MultiheadAttention",
    "dropout 2",
    lambda: nn.MultiheadAttention(8, 2, dropout=2.0),
    ValueError,
    SDPA,
)
layer(
    "MultiheadAttention",
    "rank",
    lambda: nn.MultiheadAttention(8, 2)(r32(2, 3, 4, 8), r32(2, 3, 4, 8), r32(2, 3, 4, 8)),
    ValueError,
    SDPA,
)
layer(
    "MultiheadAttention",
    "embed dim",
    lambda: nn.MultiheadAttention(8, 2)(r32(5, 2, 6), r32(5, 2, 6), r32(5, 2, 6)),
    ValueError,
    SDPA,
)
layer(
    "MultiheadAttention",
    "f64 input",
    lambda: nn.MultiheadAttention(8, 2)(r64(5, 2, 8), r64(5, 2, 8), r64(5, 2, 8)),
    TypeError,
    SDPA,
)
layer(
    "TransformerEncoderLayer",
    "nhead !| d",
    lambda: nn.TransformerEncoderLayer(10, 3),
    ValueError,
    "MultiheadAttention|" + SDPA,
)
layer(
    "TransformerEncoderLayer",
    "activation",
    lambda: nn.TransformerEncoderLayer(8, 2, activation="swish"),
    ValueError,
    "transformer",
)
layer(
    "TransformerEncoder",
    "num_layers -1",
    lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), -1),
    ValueError,
    "transformer",
)
layer(
    "Flatten",
    "dims",
    lambda: nn.Flatten(3, 1)(r32(2, 3, 4, 5)),
    (ValueError, IndexError),
    "flatten",
)
layer(
    "Unflatten",
    "sizes",
    lambda: nn.Unflatten(1, (4, 2))(r32(2, 6)),
    ValueError,
    "unflatten|reshape|view",
)
for _name, _op in (
    ("ReLU", "relu"),
    ("Sigmoid", "sigmoid"),
    ("Tanh", "tanh"),
    ("GELU", "gelu"),
    ("SiLU", "silu"),
    ("ELU", "elu"),
    ("SELU", "selu"),
    ("LeakyReLU", "leaky_relu"),
    ("Softplus", "softplus"),
):
    layer(_name, "not a tensor", lambda _n=_name: getattr(nn, _n)()(np.ones(3)), TypeError, _op)
layer("Softmax", "dim", lambda: nn.Softmax(dim=3)(r32(2, 3)), (ValueError, IndexError), "softmax")
layer(
    "LogSoftmax",
    "dim",
    lambda: nn.LogSoftmax(dim=3)(r32(2, 3)),
    (ValueError, IndexError),
    "log_softmax",
)
layer(
    "CrossEntropyLoss",
    "reduction",
    lambda: nn.CrossEntropyLoss(reduction="x"),
    ValueError,
    "cross_entropy",
)
layer(
    "CrossEntropyLoss",
    "target",
    lambda: nn.CrossEntropyLoss()(r32(2, 3), pe.tensor([0, 3])),
    (ValueError, IndexError),
    "cross_entropy",
)
layer("NLLLoss", "reduction", lambda: nn.NLLLoss(reduction="x"), ValueError, "nll_loss")
layer("MSELoss", "reduction", lambda: nn.MSELoss(reduction="x"), ValueError, "mse_loss")
layer("L1Loss", "shape", lambda: nn.L1Loss()(r32(2), r32(3)), ValueError, "l1_loss")
layer("BCELoss", "reduction", lambda: nn.BCELoss(reduction="x"), ValueError, "binary_cross_entropy")
layer(
    "BCEWithLogitsLoss",
    "dtype",
    lambda: nn.BCEWithLogitsLoss()(r32(2), pe.rand(2, dtype=pe.float64)),
    TypeError,
    "binary_cross_entropy_with_logits",
)


@pytest.mark.parametrize("case", OP_CASES, ids=[f"{c[0]}: {c[1]}" for c in OP_CASES])
def test_op_error(case):
    op, label, call, exc, pattern = case
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), (
        f"{op} ({label}): message {str(info.value)!r} does not match {pattern!r}"
    )


def test_case_labels_unique():
    keys = [(c[0], c[1]) for c in OP_CASES]
    assert len(keys) == len(set(keys))


_COVERED = {c[0] for c in OP_CASES}


def test_table_covers_every_functional_op():
    missing = sorted(n for n in F.__all__ if callable(getattr(F, n)) and n not in _COVERED)
    assert not missing, f"public functional ops with no bad-call case in OP_CASES: {missing}"


def test_table_covers_every_tensor_op():
    missing = sorted(n for n in pe.ops.__all__ if n not in _COVERED)
    assert not missing, f"Tensor ops with no bad-call case in OP_CASES: {missing}"


def test_table_covers_every_creation_function():
    tensor_module = sys.modules["pyengine.tensor"]  # pe.tensor is the function
    missing = sorted(
        n for n in tensor_module.__all__ if n not in ("Tensor", "manual_seed") + tuple(_COVERED)
    )
    assert not missing, f"creation functions with no bad-call case in OP_CASES: {missing}"


def test_table_covers_every_layer():
    skip = {"Module", "ModuleDict", "ModuleList", "Parameter", "Sequential", "Identity"}
    layers = [
        n
        for n in nn.__all__
        if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)
    ]
    missing = sorted(n for n in layers if n not in skip and f"nn.{n}" not in _COVERED)
    assert not missing, f"nn layers with no bad-call case in OP_CASES: {missing}"


# =============================================================================================
# Non-contiguous inputs: the same values in a transposed (Fortran-order) or strided layout
# must give the contiguous result (forward and gradients), or be refused with a ValueError
# naming the op and saying "contiguous". Never a wrong answer read through the wrong strides.
# =============================================================================================


def _nc_array(a: np.ndarray) -> np.ndarray:
    """a's values in a layout that is not C-contiguous."""
    if a.ndim >= 2 and a.shape[-1] > 1 and a.shape[-2] > 1:
        out = np.asfortranarray(a)
    else:
        out = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)[..., ::2] if a.ndim else a
        out[...] = a
    return out


def _tensors(res) -> list:
    if isinstance(res, pe.Tensor):
        return [res]
    if isinstance(res, (tuple, list)):
        return [t for r in res for t in _tensors(r)]
    return []


def _run_case(fn, args, noncontig: bool):
    if noncontig:
        args = [
            pe.Tensor(_nc_array(a.data), requires_grad=a.requires_grad)
            if isinstance(a, pe.Tensor) and a.ndim
            else a
            for a in args
        ]
        assert any(isinstance(a, pe.Tensor) and not a.data.flags.c_contiguous for a in args)
    else:
        args = [
            pe.Tensor(a.data.copy(), requires_grad=a.requires_grad)
            if isinstance(a, pe.Tensor)
            else a
            for a in args
        ]
    outs = [t for t in _tensors(fn(*args)) if t.dtype.kind == "f"]
    rng = np.random.default_rng(7)
    loss = None
    for t in outs:
        if t.requires_grad:
            term = (t * pe.tensor(rng.standard_normal(t.shape), dtype=t.dtype)).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    grads = [a.grad for a in args if isinstance(a, pe.Tensor) and a.requires_grad]
    return [t.detach().numpy() for t in outs], [None if g is None else g.numpy() for g in grads]


_NC_RNG = np.random.default_rng(0)


def _g(*shape, grad=True, positive=False):
    a = _NC_RNG.standard_normal(shape)
    if positive:
        a = _NC_RNG.uniform(0.05, 0.95, shape)
    return pe.tensor(a, dtype=pe.float64, requires_grad=grad)


def _seeded(fn):
    def run(*args):
        pe.manual_seed(123)
        return fn(*args)

    return run


def _pool_then_unpool(x):
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    return F.max_unpool2d(y, idx, 2)


def _lstm_w(G, I, H):  # noqa: E741
    return [_g(G * H, I), _g(G * H, H), _g(G * H), _g(G * H)]


NONCONTIG = {
    "linear": lambda: (F.linear, [_g(5, 4), _g(3, 4), _g(3)]),
    "matmul": lambda: (pe.matmul, [_g(2, 5, 4), _g(2, 4, 3)]),
    "conv2d": lambda: (
        lambda x, w, b: F.conv2d(x, w, b, padding=1),
        [_g(2, 3, 6, 5), _g(4, 3, 3, 3), _g(4)],
    ),
    "conv2d strided": lambda: (
        lambda x, w: F.conv2d(x, w, stride=2, dilation=(1, 2)),
        [_g(2, 2, 7, 9), _g(4, 2, 3, 2)],
    ),
    "conv1d": lambda: (lambda x, w: F.conv1d(x, w, groups=2), [_g(2, 4, 9), _g(6, 2, 3)]),
    "conv_transpose2d": lambda: (
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
        [_g(2, 3, 4, 5), _g(3, 2, 3, 3)],
    ),
    "max_pool2d": lambda: (lambda x: F.max_pool2d(x, 3, 2, 1), [_g(2, 3, 7, 6)]),
    "avg_pool2d": lambda: (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [_g(2, 3, 7, 6)]),
    "adaptive_avg_pool2d": lambda: (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [_g(2, 3, 7, 6)]),
    "adaptive_max_pool2d": lambda: (lambda x: F.adaptive_max_pool2d(x, (3, 2)), [_g(2, 3, 7, 6)]),
    "max_unpool2d": lambda: (_pool_then_unpool, [_g(2, 3, 6, 4)]),
    "interpolate": lambda: (lambda x: F.interpolate(x, scale_factor=2), [_g(2, 3, 4, 5)]),
    "batch_norm train": lambda: (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [_g(4, 3, 5, 2), _g(3), _g(3)],
    ),
    "batch_norm eval": lambda: (
        lambda x, m, v: F.batch_norm(x, m, v),
        [_g(4, 3, 5, 2), _g(3, grad=False), _g(3, grad=False, positive=True)],
    ),
    "layer_norm": lambda: (
        lambda x, w, b: F.layer_norm(x, (5,), w, b),
        [_g(4, 3, 5), _g(5), _g(5)],
    ),
    "group_norm": lambda: (
        lambda x, w, b: F.group_norm(x, 2, w, b),
        [_g(3, 4, 5, 2), _g(4), _g(4)],
    ),
    "instance_norm": lambda: (lambda x: F.instance_norm(x), [_g(3, 4, 5, 2)]),
    "softmax": lambda: (lambda x: F.softmax(x, dim=-1), [_g(4, 6)]),
    "softmax dim 0": lambda: (lambda x: F.softmax(x, dim=0), [_g(4, 6)]),
    "log_softmax": lambda: (lambda x: F.log_softmax(x, dim=1), [_g(3, 4, 5)]),
    "cross_entropy": lambda: (
        lambda x: F.cross_entropy(x, pe.tensor([[0, 2, 1], [3, 3, 0]])),
        [_g(2, 4, 3)],
    ),
    "cross_entropy probs": lambda: (
        F.cross_entropy,
        [_g(5, 4), _g(5, 4, grad=False, positive=True)],
    ),
    "nll_loss": lambda: (lambda x: F.nll_loss(x, pe.tensor([0, 2, 1, 3, 3])), [_g(5, 4)]),
    "scaled_dot_product_attention": lambda: (
        lambda q, k, v: F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        ),
        [_g(2, 5, 3, 4), _g(2, 5, 3, 4), _g(2, 5, 3, 4)],
    ),
    "scaled_dot_product_attention dropout": lambda: (
        _seeded(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)),
        [_g(2, 3, 5, 4), _g(2, 3, 6, 4), _g(2, 3, 6, 4)],
    ),
    "lstm": lambda: (
        lambda x, h, c, *w: F.lstm(x, (h, c), w),
        [_g(5, 3, 4), _g(1, 3, 6), _g(1, 3, 6), *_lstm_w(4, 4, 6)],
    ),
    "gru": lambda: (lambda x, h, *w: F.gru(x, h, w), [_g(5, 3, 4), _g(1, 3, 6), *_lstm_w(3, 4, 6)]),
    "lstm_cell": lambda: (
        lambda x, h, c, *w: F.lstm_cell(x, (h, c), *w),
        [_g(3, 4), _g(3, 6), _g(3, 6), *_lstm_w(4, 4, 6)],
    ),
    "gru_cell": lambda: (
        lambda x, h, *w: F.gru_cell(x, h, *w),
        [_g(3, 4), _g(3, 6), *_lstm_w(3, 4, 6)],
    ),
    "embedding": lambda: (lambda w: F.embedding(pe.tensor([[0, 3], [2, 2]]), w), [_g(4, 3)]),
    "dropout": lambda: (_seeded(lambda x: F.dropout(x, 0.4)), [_g(4, 6)]),
    "pad reflect": lambda: (lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [_g(2, 4, 5)]),
    "mse_loss": lambda: (F.mse_loss, [_g(4, 3), _g(4, 3)]),
    "binary_cross_entropy": lambda: (
        F.binary_cross_entropy,
        [_g(4, 3, positive=True), _g(4, 3, grad=False, positive=True)],
    ),
    "binary_cross_entropy_with_logits": lambda: (
        F.binary_cross_entropy_with_logits,
        [_g(4, 3), _g(4, 3, grad=False, positive=True)],
    ),
    "gelu": lambda: (F.gelu, [_g(4, 3)]),
    "softplus": lambda: (F.softplus, [_g(4, 3)]),
    "sum": lambda: (lambda x: x.sum(dim=0), [_g(4, 3)]),
    "var": lambda: (lambda x: x.var(dim=1), [_g(4, 3)]),
}


@pytest.mark.parametrize("name", list(NONCONTIG))
def test_noncontiguous_input(name):
    fn, args = NONCONTIG[name]()
    out_c, grads_c = _run_case(fn, args, noncontig=False)
    try:
        out_n, grads_n = _run_case(fn, args, noncontig=True)
    except ValueError as e:  # refusing is allowed, with a clear message
        assert re.search(ANY_OP, str(e)) and "contiguous" in str(e), str(e)
        return
    assert len(out_c) == len(out_n)
    for a, b in zip(out_c, out_n):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=f"{name} forward")
    for a, b in zip(grads_c, grads_n):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=f"{name} grad")


# =============================================================================================
# NaN and Inf pass through as IEEE arithmetic says (and stay in their own rows/windows).
# =============================================================================================

INF, NAN = np.inf, np.nan


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_inf_nan(dtype):
    x = np.array(
        [
            [-INF, 0.0, 0.0, 1.0],
            [INF, 1.0, 2.0, 0.0],
            [NAN, 1.0, 2.0, 0.0],
            [-INF] * 4,
            [1, 2, 3, 4],
        ],
        dtype,
    )
    y = F.softmax(pe.tensor(x), dim=1).numpy()
    e = np.exp(np.array([0.0, 0.0, 1.0]) - 1.0)
    np.testing.assert_allclose(y[0], np.r_[0.0, e / e.sum()], rtol=1e-6)
    assert y[0, 0] == 0.0
    assert np.isnan(y[1]).all()  # inf - inf = nan: the whole row
    assert np.isnan(y[2]).all()
    assert np.isnan(y[3]).all()  # -inf - (-inf) = nan, as torch
    e = np.exp(np.arange(1.0, 5.0) - 4.0)
    np.testing.assert_allclose(y[4], e / e.sum(), rtol=1e-6)  # untouched by its neighbours
    ly = F.log_softmax(pe.tensor(x), dim=1).numpy()
    assert ly[0, 0] == -INF and np.isfinite(ly[0, 1:]).all()
    assert np.isnan(ly[1]).all() and np.isnan(ly[2]).all()
    assert np.isfinite(ly[4]).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy notes the nan it makes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_activations_nan_inf(dtype):
    x = pe.tensor(np.array([NAN, INF, -INF, -1.0, 2.0], dtype))
    y = F.relu(x).numpy()
    assert np.isnan(y[0]) and y[1] == INF and y[2] == 0 and y[3] == 0 and y[4] == 2
    for fn in (F.gelu, F.silu, F.elu, F.selu, F.softplus, F.leaky_relu, F.sigmoid, F.tanh):
        out = fn(x).numpy()
        assert np.isnan(out[0]), fn.__name__  # nan in, nan out
        assert np.isfinite(out[3:]).all(), fn.__name__
    assert F.sigmoid(x).numpy()[1] == 1 and F.sigmoid(x).numpy()[2] == 0
    assert F.softplus(x).numpy()[1] == INF and F.softplus(x).numpy()[2] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 70])  # a small product and one through the blocked GEMM
def test_matmul_nan_inf(dtype, n):
    rng = np.random.default_rng(1)
    a = rng.uniform(1, 2, (n, n)).astype(dtype)
    b = rng.uniform(1, 2, (n, n)).astype(dtype)
    a[0, 0] = NAN  # row 0 of the product is nan
    a[1, 1] = INF  # row 1: +inf * (b[1, j] > 0) ...
    b[1, 0], b[1, 1] = 0.0, -1.0  # ... but inf * 0 = nan, and inf * -1 = -inf
    for y in ((pe.tensor(a) @ pe.tensor(b)).numpy(), pe.matmul(pe.tensor(a), pe.tensor(b)).numpy()):
        assert np.isnan(y[0]).all()
        assert np.isnan(y[1, 0]) and y[1, 1] == -INF and (y[1, 2:] == INF).all()
        assert np.isfinite(y[2:]).all()
        ref = a[2:].astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(y[2:], ref, rtol=1e-5)


def test_pool_and_conv_nan_stays_in_its_windows():
    x = np.ones((1, 1, 6, 6))
    x[0, 0, 2, 3] = NAN
    y = F.max_pool2d(pe.tensor(x), 2).numpy()[0, 0]
    assert np.isnan(y[1, 1]) and np.isnan(y).sum() == 1  # max propagates nan, as torch
    y = F.avg_pool2d(pe.tensor(x), 2).numpy()[0, 0]
    assert np.isnan(y[1, 1]) and np.isnan(y).sum() == 1
    y = F.conv2d(pe.tensor(x), pe.ones(1, 1, 3, 3, dtype=pe.float64), padding=1).numpy()[0, 0]
    hit = np.zeros((6, 6), bool)
    hit[1:4, 2:5] = True  # the outputs whose 3x3 window covers (2, 3)
    assert (np.isnan(y) == hit).all()
    x[0, 0, 2, 3] = INF
    y = F.conv2d(pe.tensor(x), pe.tensor(np.array([[[[1.0, 0.0, -1.0]]]]))).numpy()[0, 0]
    # output column j reads x[:, j] - x[:, j + 2], with 0 * inf = nan at j = 2
    assert y[2, 1] == -INF and np.isnan(y[2, 2]) and y[2, 3] == INF
    assert np.isfinite(np.delete(y, 2, axis=0)).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_norms_and_losses_nan_inf():
    x = np.random.default_rng(0).standard_normal((3, 5))
    x[1, 2] = INF
    y = F.layer_norm(pe.tensor(x), (5,)).numpy()
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    logits = np.zeros((2, 3))
    logits[0, 1] = -INF  # a class with zero probability: the loss stays finite
    logits[1, 2] = INF
    loss = F.cross_entropy(pe.tensor(logits), pe.tensor([0, 0]), reduction="none").numpy()
    np.testing.assert_allclose(loss[0], np.log(2.0))
    assert np.isnan(loss[1])
    s = pe.tensor(np.array([INF, -INF, 1.0])).sum().item()
    assert np.isnan(s)
