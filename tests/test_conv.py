"""conv2d / conv_transpose2d / conv1d / conv_general vs tests/reference/conv.py (NumPy).

Forward and backward through helpers.check_op (float32 and float64; gradcheck in float64 on
the small cases), every CPU ISA path (the conv runs on the ISA-specific GEMM) and both thread
counts (threads over images vs inside the GEMM), gradients of gradients, transposed-conv
output sizes, nn.Conv2d / nn.ConvTranspose2d, and the table of bad calls.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import check_op
from reference import conv as R

import pyengine as pe
import pyengine.functional as F
from pyengine import nn
from pyengine.ops.conv import conv_general

DTYPES = [pe.float32, pe.float64]
GRAD_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _small(in_shapes, out_shape) -> bool:
    """gradcheck builds full Jacobians: only for small inputs and outputs."""
    n_in = sum(int(np.prod(s)) for s in in_shapes if s is not None)
    return n_in <= 400 and int(np.prod(out_shape)) <= 300


# ----------------------------------------------------------------------------- conv2d
# (N, C, H, W), (O, C/g, kh, kw), bias, stride, padding, dilation, groups
CONV2D = [
    ((2, 3, 7, 9), (4, 3, 3, 3), True, 1, 1, 1, 1),
    ((1, 4, 8, 6), (6, 2, 3, 3), True, 1, 0, 1, 2),  # groups 2, batch 1
    ((2, 4, 9, 7), (4, 1, 3, 3), False, 1, 1, 1, 4),  # depthwise
    ((2, 3, 11, 10), (5, 3, 3, 3), True, 2, 1, 1, 1),  # stride 2
    ((1, 2, 13, 11), (3, 2, 3, 3), True, 3, 2, 1, 1),  # stride 3
    ((2, 2, 11, 12), (3, 2, 3, 3), True, 1, 2, 2, 1),  # dilation 2
    ((1, 3, 6, 5), (2, 3, 1, 1), True, 1, 0, 1, 1),  # 1x1: straight GEMM
    ((2, 4, 7, 6), (6, 2, 1, 1), False, 2, 0, 1, 2),  # 1x1 strided, grouped
    ((1, 2, 9, 9), (3, 2, 5, 5), True, 1, 2, 1, 1),  # kernel 5
    ((1, 1, 12, 11), (2, 1, 7, 7), True, 2, 3, 1, 1),  # kernel 7
    ((2, 3, 5, 8), (4, 3, 2, 3), True, (1, 2), (1, 0), (2, 1), 1),  # non-square everything
    ((1, 2, 7, 9), (4, 2, 4, 3), True, 1, "same", 1, 1),  # 'same', even kernel: asymmetric
    ((1, 2, 8, 7), (2, 2, 3, 2), True, 1, "same", (2, 1), 1),
    ((2, 2, 6, 7), (3, 2, 3, 3), True, 1, "valid", 1, 1),
    ((1, 2, 3, 3), (2, 2, 3, 3), True, 1, 0, 1, 1),  # output 1x1
    ((1, 6, 5, 4), (6, 2, 3, 3), True, 2, 1, 1, 3),  # groups 3 with stride
    ((2, 6, 7, 8), (2, 6, 3, 3), True, 1, 1, 1, 1),  # fewer outputs than inputs: via col2im
    ((1, 8, 6, 5), (4, 4, 3, 2), True, 1, (1, 0), 1, 2),
    ((1, 3, 6, 9), (2, 3, 3, 3), True, 2, 1, 1, 1),  # odd W with stride 2 (phase split)
    ((2, 3, 9, 11), (3, 1, 3, 3), True, 2, 1, 1, 3),  # depthwise, strided, odd W
    ((1, 4, 10, 9), (4, 1, 3, 2), False, (1, 2), (2, 1), 2, 4),  # depthwise, dilated
    ((2, 6, 7, 8), (6, 1, 5, 5), True, 1, "same", 1, 6),  # depthwise 5x5 'same'
]


def _conv2d_case(case, dtype, gradcheck=None):
    x, w, bias, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = R.conv2d(np.zeros(x), np.zeros(w), None, **kw).shape
    ins = [x, w, (w[0],) if bias else None]
    if gradcheck is None:
        gradcheck = _small(ins, out)
    tol = GRAD_TOL[np.dtype(dtype)]
    check_op(
        F.conv2d,
        R.conv2d,
        R.conv2d_vjp,
        ins,
        dtype=dtype,
        kwargs=kw,
        gradcheck=gradcheck,
        grad_rtol=tol,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV2D, ids=str)
def test_conv2d(case, dtype):
    _conv2d_case(case, dtype)


@pytest.mark.parametrize("case", [CONV2D[0], CONV2D[2], CONV2D[3], CONV2D[6], CONV2D[11]], ids=str)
def test_conv2d_isa_and_threads(cpu_isa, num_threads, case):
    for dtype in DTYPES:
        _conv2d_case(case, dtype, gradcheck=False)


def _rand_conv2d_case(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 3, 4]))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    h = int(rng.integers(max(1, (kh - 1) * d[0] + 1 - 2 * p[0]), 14))
    w = int(rng.integers(max(1, (kw - 1) * d[1] + 1 - 2 * p[1]), 14))
    n = int(rng.integers(1, 4))
    return (
        (n, cg * groups, h, w),
        (og * groups, cg, kh, kw),
        bool(rng.integers(0, 2)),
        s,
        p,
        d,
        groups,
    )


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_random_shapes(seed):
    rng = np.random.default_rng(1000 + seed)
    case = _rand_conv2d_case(rng)
    _conv2d_case(case, pe.float32, gradcheck=False)
    _conv2d_case(case, pe.float64, gradcheck=False)


def test_conv2d_larger_parallel(num_threads):
    """Shapes where the GEMM blocks (MC/KC/NC) and the per-thread columns really split."""
    _conv2d_case(((3, 16, 20, 19), (24, 16, 3, 3), True, 1, 1, 1, 1), pe.float32, False)
    _conv2d_case(((1, 32, 15, 17), (40, 16, 3, 3), True, 2, 1, 1, 2), pe.float32, False)
    # batch 1: the threads split the copies (im2col, col2im, phase splits) inside one item
    _conv2d_case(((1, 16, 24, 23), (24, 16, 3, 3), True, 1, 1, 1, 1), pe.float32, False)
    _conv2d_case(((1, 16, 47, 45), (24, 16, 3, 3), True, 2, 1, 1, 1), pe.float32, False)
    _transpose_case(((1, 16, 24, 24), (16, 8, 4, 4), True, 2, 1, 0, 1, 1), pe.float32, False)


@pytest.mark.parametrize("chunk", ["1", "2000"])
def test_conv2d_chunked_columns(monkeypatch, chunk):
    """Column buffers split into chunks of output rows (1 row, a few rows) give the same."""
    monkeypatch.setenv("PYENGINE_CONV_CHUNK_BYTES", chunk)
    for case in (CONV2D[0], CONV2D[3], CONV2D[10], CONV2D[16]):
        _conv2d_case(case, pe.float64, gradcheck=False)
    _transpose_case(TRANSPOSE[1], pe.float64, gradcheck=False)


def test_conv2d_unbatched_and_views():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(pe.tensor(x), pe.tensor(w), padding=1)
    np.testing.assert_allclose(
        y.detach().numpy(), R.conv2d(x[None], w, padding=1)[0], rtol=1e-10, atol=1e-10
    )
    # non-contiguous input (a transposed view) is read correctly
    xt = pe.tensor(rng.standard_normal((2, 3, 7, 8))).transpose(2, 3)
    y = F.conv2d(xt, pe.tensor(w), padding=1)
    np.testing.assert_allclose(
        y.detach().numpy(), R.conv2d(xt.numpy(), w, padding=1), rtol=1e-10, atol=1e-10
    )


# ----------------------------------------------------------------------------- conv_transpose2d
# (N, C, H, W), (C, O/g, kh, kw), bias, stride, padding, output_padding, groups, dilation
TRANSPOSE = [
    ((2, 3, 4, 5), (3, 2, 4, 4), True, 2, 1, 0, 1, 1),  # the DCGAN up-sampling block
    ((1, 4, 3, 4), (4, 3, 3, 3), True, 2, 1, 1, 2, 1),  # output_padding 1, groups 2
    ((2, 2, 3, 3), (2, 2, 3, 3), False, 3, 0, 2, 1, 1),  # stride 3, output_padding 2
    ((1, 2, 4, 3), (2, 3, 3, 3), True, 1, 1, 0, 1, 2),  # dilation 2, stride 1
    ((1, 2, 3, 4), (2, 2, 2, 3), True, (2, 1), (0, 1), (1, 0), 1, (1, 2)),
    ((2, 4, 3, 3), (4, 1, 3, 3), True, 2, 1, 1, 4, 1),  # depthwise
    ((1, 3, 4, 4), (3, 2, 1, 1), True, 1, 0, 0, 1, 1),  # 1x1
    ((1, 2, 5, 6), (2, 3, 3, 3), True, 1, 3, 0, 1, 1),  # padding > k-1: crops
    ((1, 2, 3, 3), (2, 2, 3, 3), True, 2, 0, 1, 1, 2),  # output_padding < dilation
    ((1, 2, 3, 4), (2, 2, 3, 3), True, 2, 1, 0, 1, 1),  # odd output W (phase merge)
]


def _transpose_case(case, dtype, gradcheck=None):
    x, w, bias, stride, padding, opad, groups, dilation = case
    kw = dict(stride=stride, padding=padding, output_padding=opad, groups=groups, dilation=dilation)
    out = R.conv_transpose2d(np.zeros(x), np.zeros(w), None, **kw).shape
    ins = [x, w, (w[1] * groups,) if bias else None]
    if gradcheck is None:
        gradcheck = _small(ins, out)
    tol = GRAD_TOL[np.dtype(dtype)]
    check_op(
        F.conv_transpose2d,
        R.conv_transpose2d,
        R.conv_transpose2d_vjp,
        ins,
        dtype=dtype,
        kwargs=kw,
        gradcheck=gradcheck,
        grad_rtol=tol,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE, ids=str)
def test_conv_transpose2d(case, dtype):
    _transpose_case(case, dtype)


@pytest.mark.parametrize("case", [TRANSPOSE[0], TRANSPOSE[1]], ids=str)
def test_conv_transpose2d_isa_and_threads(cpu_isa, num_threads, case):
    for dtype in DTYPES:
        _transpose_case(case, dtype, gradcheck=False)


@pytest.mark.parametrize(
    "h,k,s,p,op,d",
    [
        (5, 4, 2, 1, 0, 1),
        (5, 3, 2, 1, 1, 1),
        (4, 3, 3, 0, 2, 1),
        (4, 3, 1, 0, 1, 2),
        (1, 1, 1, 0, 0, 1),
        (7, 5, 3, 2, 2, 2),
        (3, 2, 4, 1, 3, 1),
    ],
)
def test_conv_transpose2d_output_size(h, k, s, p, op, d):
    x = pe.zeros(1, 1, h, h + 1)
    w = pe.zeros(1, 1, k, k)
    y = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
    want_h = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
    want_w = h * s - 2 * p + d * (k - 1) + op + 1
    assert tuple(y.shape) == (1, 1, want_h, want_w)


# ----------------------------------------------------------------------------- conv1d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        ((2, 3, 11), (4, 3, 3), True, 1, 1, 1, 1),
        ((1, 4, 13), (2, 2, 5), False, 2, 2, 1, 2),
        ((2, 2, 9), (3, 2, 4), True, 1, "same", 2, 1),
        ((1, 2, 6), (2, 2, 2), True, 3, "valid", 1, 1),
    ],
    ids=str,
)
def test_conv1d(case, dtype):
    x, w, bias, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_op(
        F.conv1d,
        R.conv1d,
        R.conv1d_vjp,
        [x, w, (w[0],) if bias else None],
        dtype=dtype,
        kwargs=kw,
        grad_rtol=GRAD_TOL[np.dtype(dtype)],
    )


# ----------------------------------------------------------------------------- conv_general
# The kernel's own parameter space, including what the public ops never produce: stride and
# input dilation together, negative (cropping) and asymmetric pads, flip without transposition.
GENERAL = [
    dict(stride=(2, 3), input_dilation=(2, 2), pad_lo=(1, 2), pad_hi=(2, 0)),
    dict(stride=(1, 1), input_dilation=(3, 2), pad_lo=(2, 1), pad_hi=(1, 3), flip=True),
    dict(stride=(2, 1), pad_lo=(-1, 0), pad_hi=(1, -1), dilation=(2, 1)),
    dict(stride=(1, 1), input_dilation=(2, 1), pad_lo=(-1, 1), pad_hi=(0, 0), wtrans=True),
    dict(stride=(1, 2), pad_lo=(0, 3), pad_hi=(2, 1), groups=2, flip=True, wtrans=True),
    dict(
        stride=(1, 1),
        input_dilation=(2, 3),
        pad_lo=(1, 1),
        pad_hi=(1, 1),
        groups=2,
        dilation=(1, 2),
    ),
    # depthwise (one channel per group): the direct loops instead of a one-row GEMM
    dict(stride=(2, 3), input_dilation=(2, 2), pad_lo=(1, 2), pad_hi=(2, 0), groups=3, dw=True),
    dict(
        stride=(1, 1),
        input_dilation=(2, 3),
        pad_lo=(2, 1),
        pad_hi=(1, 3),
        groups=2,
        flip=True,
        wtrans=True,
        dw=True,
    ),
    dict(stride=(2, 2), pad_lo=(1, 0), pad_hi=(0, 1), groups=2, dw=True),
    dict(stride=(1, 1), pad_lo=(2, 0), pad_hi=(0, 2), groups=3, dilation=(2, 1), dw=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geo", GENERAL, ids=str)
def test_conv_general(geo, dtype):
    groups = geo.get("groups", 1)
    c, o = (groups, groups) if geo.get("dw") else (2 * groups, 3 * groups)
    wshape = (c, o // groups, 3, 2) if geo.get("wtrans") else (o, c // groups, 3, 2)
    x = (2, c, 5, 4)
    kw = {k: v for k, v in geo.items() if k != "dw"}
    tol = GRAD_TOL[np.dtype(dtype)]
    check_op(
        conv_general,
        R.conv_general,
        R.conv_general_vjp,
        [x, wshape, (o,)],
        dtype=dtype,
        kwargs=kw,
        gradcheck=False,
        grad_rtol=tol,
    )


# The direct float32 path (AVX-512: flat padded images, tiles of 8 channels x 48 positions or
# of 6 positions x 64 channels) takes convs with >= 8 output channels per group, or at least as
# many output as input channels (grouped convs); its grad-input (the adjoint) likewise with the
# roles swapped. Output channel counts that are not multiples of 8 or 16 or 64, tiles that straddle
# rows and images, strides 1-3, dilation, groups, cropping pads, both threading modes (one
# image per thread; one image split over tiles), and each tile forced as well as chosen.
DIRECT = [
    # N, C, O, H, W, kh, kw, extra kwargs of conv_general
    (2, 8, 8, 7, 9, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),
    (1, 9, 13, 11, 6, 3, 2, dict(pad_lo=(2, 0), pad_hi=(0, 1))),
    (3, 5, 17, 9, 9, 3, 3, dict(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),
    (2, 10, 16, 13, 11, 3, 3, dict(stride=(3, 2), pad_lo=(1, 2), pad_hi=(0, 1))),
    (1, 8, 8, 12, 10, 3, 3, dict(dilation=(2, 1), pad_lo=(2, 1), pad_hi=(2, 1))),
    (2, 16, 16, 9, 8, 3, 3, dict(groups=2, pad_lo=(1, 1), pad_hi=(1, 1))),
    (1, 8, 12, 9, 10, 3, 3, dict(pad_lo=(-1, 1), pad_hi=(1, -1), stride=(1, 2))),
    (1, 12, 8, 5, 4, 1, 1, dict(pad_lo=(1, 0), pad_hi=(0, 1))),  # 1x1 padded: not a GEMM
    (4, 3, 32, 8, 8, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),  # RGB stem shape
    (1, 8, 8, 20, 21, 5, 5, dict(pad_lo=(2, 2), pad_hi=(2, 2))),  # several tiles per row
    # input dilation, stride 1 (transposed convs): one stride-1 sub-kernel per output phase
    (2, 8, 8, 5, 6, 3, 3, dict(input_dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 3))),
    (1, 9, 16, 4, 7, 4, 4, dict(input_dilation=(2, 3), pad_lo=(2, 1), pad_hi=(3, 2))),
    (1, 8, 9, 4, 5, 1, 2, dict(input_dilation=(3, 2), pad_lo=(0, 1), pad_hi=(2, 0))),  # no taps
    (
        1,
        8,
        8,
        5,
        5,
        3,
        3,
        dict(input_dilation=(2, 2), dilation=(2, 1), pad_lo=(1, 2), pad_hi=(3, 1)),
    ),
    (2, 16, 8, 4, 5, 3, 3, dict(input_dilation=(2, 2), pad_lo=(-1, 1), pad_hi=(1, 0), groups=2)),
    (2, 8, 70, 6, 7, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),  # 64 + 6 channels
    (1, 16, 40, 9, 9, 3, 3, dict(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),
    (2, 12, 36, 5, 4, 3, 3, dict(input_dilation=(2, 2), pad_lo=(1, 1), pad_hi=(2, 2))),
    (1, 100, 50, 5, 6, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),  # input channels in 2 chunks
    (2, 16, 16, 9, 8, 3, 3, dict(groups=4, pad_lo=(1, 1), pad_hi=(1, 1))),  # 4 per group
    (1, 8, 16, 7, 7, 3, 3, dict(groups=8, stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),  # 1 -> 2
    # no padding: pixel tiles read the image in place
    (2, 9, 20, 7, 8, 1, 1, dict(stride=(2, 2))),
    (1, 8, 50, 6, 7, 3, 2, dict(stride=(1, 2))),
]


@pytest.mark.parametrize("tile", ["", "0", "1"], ids=["chosen", "rows", "pixels"])
@pytest.mark.parametrize("case", DIRECT, ids=str)
def test_conv_direct_path(cpu_isa, num_threads, case, tile, monkeypatch):
    monkeypatch.setenv("PYENGINE_CONV_PIXEL", tile)  # "0": 8 x 48 tiles, "1": 6 x 64
    n, c, o, h, w, kh, kw, geo = case
    groups = geo.get("groups", 1)
    check_op(
        conv_general,
        R.conv_general,
        R.conv_general_vjp,
        [(n, c, h, w), (o, c // groups, kh, kw), (o,)],
        dtype=pe.float32,
        kwargs=geo,
        gradcheck=False,
    )


@pytest.mark.parametrize("tile", ["", "0", "1"], ids=["chosen", "rows", "pixels"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_conv_with_no_input_channels_gives_the_bias(tile, transposed, monkeypatch):
    """Zero input channels: every output is the bias (the direct tiles start from it and have
    no channel to add), whichever tile runs."""
    monkeypatch.setenv("PYENGINE_CONV_PIXEL", tile)
    x = pe.zeros(2, 0, 5, 5)
    b = pe.arange(64, dtype=pe.float32)
    if transposed:
        y = F.conv_transpose2d(x, pe.zeros(0, 64, 3, 3), b, stride=2)
    else:
        y = F.conv2d(x, pe.zeros(64, 0, 3, 3), b)
    expected = np.broadcast_to(np.arange(64, dtype=np.float32)[None, :, None, None], y.shape)
    np.testing.assert_array_equal(y.numpy(), expected)


# The direct depthwise path (float32, AVX-512: 16 channels at a time, stored (position,
# channel), one row kernel call per output row, outputs back into y in one transpose per phase
# of at most 512 or row by row; a forward with column stride 2 works on NCHW planes instead)
# for forward, grad-input (its adjoint: input-dilated and flipped when strided) and
# grad-weight; channel counts past one group of 16; channel multipliers > 1 are grouped convs,
# not this path.
DEPTHWISE = [
    # N, C, H, W, kh, kw, extra kwargs of conv_general (groups = C)
    (2, 5, 9, 11, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),
    (1, 3, 14, 13, 3, 3, dict(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),
    (3, 4, 12, 9, 5, 3, dict(stride=(2, 1), pad_lo=(2, 0), pad_hi=(1, 1))),
    (1, 6, 11, 12, 3, 3, dict(dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 2))),
    (2, 3, 70, 5, 3, 3, dict(stride=(3, 3), pad_lo=(0, 1), pad_hi=(2, 0))),
    (1, 4, 5, 6, 4, 4, dict(input_dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 3))),
    (2, 21, 7, 9, 3, 3, dict(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),  # 16 + 5 channels
    (1, 18, 6, 6, 3, 3, dict(pad_lo=(-1, 1), pad_hi=(1, -1))),  # cropping pads
    # column stride 2 takes the NCHW plane kernel (forward): two vectors per output row (21,
    # 18 and 32 columns), a stride of 1, 2 or 3 down, dilation, 5 wide, asymmetric pads
    (1, 3, 10, 40, 3, 5, dict(stride=(1, 2), pad_lo=(1, 2), pad_hi=(0, 3))),
    (2, 2, 13, 37, 3, 3, dict(stride=(3, 2), dilation=(2, 2), pad_lo=(2, 1), pad_hi=(1, 2))),
    (1, 17, 9, 64, 3, 3, dict(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1))),
    # over 512 outputs: put back into y row by row instead of in one transpose
    (1, 17, 30, 20, 3, 3, dict(pad_lo=(1, 1), pad_hi=(1, 1))),
]


def test_conv_depthwise_stride2_planes_rezeroed_per_padding(num_threads):
    """The stride-2 plane path keeps a zero-padded plane per thread across calls: two convs with
    the same padded height but the vertical padding split differently must not see each other's
    rows where their padding is."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 20, 20)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    for lo, hi in [((0, 1), (1, 1)), ((1, 1), (0, 1)), ((0, 1), (1, 1))]:
        geo = dict(stride=(2, 2), pad_lo=lo, pad_hi=hi, groups=4)
        y = conv_general(pe.tensor(x), pe.tensor(w), **geo)
        np.testing.assert_allclose(y.numpy(), R.conv_general(x, w, **geo), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", DEPTHWISE, ids=str)
def test_conv_depthwise_direct_path(cpu_isa, num_threads, case):
    n, c, h, w, kh, kw, geo = case
    check_op(
        conv_general,
        R.conv_general,
        R.conv_general_vjp,
        [(n, c, h, w), (c, 1, kh, kw), (c,)],
        dtype=pe.float32,
        kwargs=dict(geo, groups=c),
        gradcheck=False,
    )


# Winograd F(2x2, 3x3) (float32, AVX-512, stride-1 3x3 convs with one group; forced with
# PYENGINE_CONV_WINOGRAD=1 wherever the shape allows, so that small cases run it too): output
# sizes odd and even (half-empty tiles), tile rows of more than 16 tiles (runs cut at 16),
# chunks that end mid-row and mid-image, channel counts off multiples of 8, padding 0 to 2,
# asymmetric and cropping pads, a 1x1 output, and flipped / transposed weights (the forward of
# a stride-1 transposed conv; every grad-input here is one too).
WINOGRAD = [
    # N, C, O, H, W, extra kwargs of conv_general
    (2, 8, 8, 9, 8, dict(pad_lo=(1, 1), pad_hi=(1, 1))),
    (1, 3, 5, 7, 6, dict(pad_lo=(2, 0), pad_hi=(0, 1))),
    (3, 17, 21, 13, 35, dict(pad_lo=(1, 1), pad_hi=(1, 1))),  # chunks of 192 tiles
    (1, 8, 8, 1, 1, dict(pad_lo=(1, 1), pad_hi=(1, 1))),
    (2, 16, 16, 3, 3, {}),
    (1, 20, 9, 40, 37, dict(pad_lo=(2, 2), pad_hi=(2, 2))),
    (1, 8, 12, 6, 9, dict(pad_lo=(-1, 1), pad_hi=(1, -1))),
    (1, 200, 64, 10, 30, dict(pad_lo=(1, 1), pad_hi=(1, 1))),  # chunks of 48 tiles
    (2, 12, 10, 8, 11, dict(pad_lo=(1, 2), pad_hi=(1, 0), flip=True, wtrans=True)),
]


@pytest.mark.parametrize("mode", ["1", ""], ids=["forced", "chosen"])
@pytest.mark.parametrize("case", WINOGRAD, ids=str)
def test_conv_winograd(cpu_isa, num_threads, case, mode, monkeypatch):
    monkeypatch.setenv("PYENGINE_CONV_WINOGRAD", mode)
    n, c, o, h, w, geo = case
    wshape = (c, o, 3, 3) if geo.get("wtrans") else (o, c, 3, 3)
    check_op(
        conv_general,
        R.conv_general,
        R.conv_general_vjp,
        [(n, c, h, w), wshape, (o,)],
        dtype=pe.float32,
        kwargs=geo,
        gradcheck=False,
    )


def test_conv_winograd_runs_where_chosen(monkeypatch):
    """The ResNet 64->64 56x56 shape takes Winograd by default for its forward, grad-input and
    grad-weight: the rounding of each differs from the direct tiles' (so the path did run), and
    both are within float32 error of the reference."""
    if "avx512" not in pe.supported_cpu_isas():
        pytest.skip("the Winograd path needs AVX-512")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32)
    gy = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))
    geo = dict(pad_lo=(1, 1), pad_hi=(1, 1))
    want = [R.conv_general(x64, w64, **geo), *R.conv_general_vjp(gy64, x64, w64, **geo)[:2]]
    got = {}
    threads = pe.get_num_threads()
    pe.set_num_threads(2)  # the choice asks for several chunks per thread
    try:
        for mode in ["", "0"]:
            monkeypatch.setenv("PYENGINE_CONV_WINOGRAD", mode)
            xt, wt = pe.tensor(x, requires_grad=True), pe.tensor(w, requires_grad=True)
            y = conv_general(xt, wt, **geo)
            y.backward(pe.tensor(gy))
            got[mode] = [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()]
            for a, b in zip(got[mode], want, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    finally:
        pe.set_num_threads(threads)
    for name, a, b in zip(["forward", "grad-input", "grad-weight"], got[""], got["0"], strict=True):
        assert not np.array_equal(a, b), f"{name}: Winograd did not run"


# 1x1 convs with short images (9 to 99 positions: over 10% of the GEMM's 16-column steps
# idle) and C*O >= 256^2: the forward and grad-input are one GEMM over the batch's columns, with
# micro-panels packed straight from the images (pointwise_columns in cpu/conv.cpp), and the
# grad-weight one GEMM over the batch gathered into one (channels, N*HW) matrix, in chunks
# (batch_pointwise). Panels that span 2 to 5 images, channel counts off the register tile
# (260, 129), more input channels than one K slice (300; 640 for a grad-input), column counts
# off the panel width, a stored weight transposed (wtrans, as conv_transpose2d stores it) or
# flipped, and 1 and 2 threads.
POINTWISE_BATCHED = [
    ((3, 256, 5, 5), (256, 256, 1, 1), {}),
    ((3, 128, 7, 7), (512, 128, 1, 1), {}),
    ((3, 256, 7, 7), (256, 256, 1, 1), dict(wtrans=True, flip=True)),
    ((3, 300, 5, 5), (260, 300, 1, 1), {}),
    ((3, 129, 9, 11), (640, 129, 1, 1), {}),
    ((5, 256, 3, 3), (256, 256, 1, 1), {}),  # 9 positions: a panel spans up to 5 images
]


@pytest.mark.parametrize("chunked", [False, True], ids=["one_chunk", "chunks"])
@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", POINTWISE_BATCHED, ids=str)
def test_conv_pointwise_batched_columns(cpu_isa, num_threads, case, dtype, chunked, monkeypatch):
    """chunks: the gathered matrices capped at 2 images' worth, so a batch of 3 is gathered as
    2 + 1 (the grad-weight accumulates over the chunks)."""
    xs, ws, geo = case
    if chunked:
        per_image = (xs[1] + (ws[1] if geo.get("wtrans") else ws[0])) * xs[2] * xs[3]
        monkeypatch.setenv("PYENGINE_CONV_BATCH_ELEMS", str(2 * per_image))
    _check_pointwise(case, dtype)


def _check_pointwise(case, dtype):
    """A 1x1 case (input shape, weight shape, geometry) with a bias, against the reference."""
    xs, ws, geo = case
    bs = (ws[1] if geo.get("wtrans") else ws[0],)
    check_op(
        conv_general,
        R.conv_general,
        R.conv_general_vjp,
        [xs, ws, bs],
        dtype=dtype,
        kwargs=geo,
        gradcheck=False,
    )


# 1x1 convs that batch_pointwise leaves (C*O < 256^2, or images whose columns fill the GEMM's
# 16-column steps) with a batch that splits over the threads: with 2 threads each runs the
# column GEMM of its own images (pointwise_images in cpu/conv.cpp); with 1, a GEMM per image.
# Panels that span two images (14x14, 6x6, 4x4), an uneven split (9 images: 5 + 4), output
# channels off the register tile (70, 17), more input channels than one K slice (300: edge
# tiles kept across the slices), a stored weight transposed and flipped; the grad-input is the
# same path with the weight transposed.
POINTWISE_IMAGES = [
    ((4, 64, 14, 14), (70, 64, 1, 1), {}),
    ((2, 300, 4, 4), (40, 300, 1, 1), {}),
    ((9, 24, 6, 6), (17, 24, 1, 1), {}),
    ((4, 32, 10, 10), (32, 48, 1, 1), dict(wtrans=True, flip=True)),
]


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", POINTWISE_IMAGES, ids=str)
def test_conv_pointwise_images(cpu_isa, num_threads, case, dtype):
    _check_pointwise(case, dtype)


# ----------------------------------------------------------------------------- higher order


@pytest.mark.parametrize(
    "op,args,kw",
    [
        (F.conv2d, ((1, 2, 5, 4), (2, 2, 3, 2)), dict(stride=(2, 1), padding=1)),
        (
            F.conv_transpose2d,
            ((1, 2, 3, 3), (2, 1, 3, 3)),
            dict(stride=2, padding=1, output_padding=1),
        ),
    ],
    ids=["conv2d", "conv_transpose2d"],
)
def test_double_backward(op, args, kw):
    """Gradients of gradients by finite differences (create_graph=True through conv)."""
    rng = np.random.default_rng(3)
    x = pe.tensor(rng.standard_normal(args[0]), requires_grad=True)
    w = pe.tensor(rng.standard_normal(args[1]), requires_grad=True)
    y_shape = op(x, w, **kw).shape
    proj = pe.tensor(rng.standard_normal(y_shape))

    def grads(x, w):
        with pe.enable_grad():  # gradcheck's finite differences run under no_grad
            y = op(x, w, **kw)
            gx, gw = pe.autograd.grad((y * proj).sum(), (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw * gw).sum() + (gx.sum() * gw.sum())

    assert pe.autograd.gradcheck(grads, (x, w))


def test_double_backward_through_bias_grad():
    """The bias gradient (our per-channel sum kernel) is differentiable again: through it to
    x, w and b by finite differences."""
    rng = np.random.default_rng(5)
    x = pe.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = pe.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    b = pe.tensor(rng.standard_normal(3), requires_grad=True)

    def f(x, w, b):
        with pe.enable_grad():
            y = F.conv2d(x, w, b, stride=(2, 1), padding=1)
            (gb,) = pe.autograd.grad((y * y * y).sum(), (b,), create_graph=True)
        return (gb * gb).sum()

    assert pe.autograd.gradcheck(f, (x, w, b))


# ----------------------------------------------------------------------------- nn layers


def test_nn_conv2d_matches_functional():
    pe.manual_seed(0)
    m = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert tuple(m.weight.shape) == (6, 2, 3, 3) and tuple(m.bias.shape) == (6,)
    bound = 1 / math.sqrt(2 * 9)  # kaiming_uniform_(a=sqrt(5)) and the bias: 1/sqrt(fan_in)
    assert np.abs(m.weight.detach().numpy()).max() <= bound + 1e-7
    assert np.abs(m.bias.detach().numpy()).max() <= bound + 1e-7
    assert np.abs(m.weight.detach().numpy()).max() > 0.5 * bound
    x = pe.randn(2, 4, 9, 8)
    y = m(x)
    want = R.conv2d(
        x.detach().numpy(), m.weight.detach().numpy(), m.bias.detach().numpy(), 2, 1, 1, 2
    )
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    names = [n for n, _ in m.named_parameters()]
    assert names == ["weight", "bias"]
    assert "Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)" in repr(m)


def test_nn_conv2d_options():
    m = nn.Conv2d(3, 4, (3, 5), padding="same", dilation=2, bias=False, dtype=pe.float64)
    assert m.bias is None and m.weight.dtype == pe.float64
    x = pe.randn(1, 3, 7, 9, dtype=pe.float64)
    np.testing.assert_allclose(
        m(x).detach().numpy(),
        R.conv2d(x.detach().numpy(), m.weight.detach().numpy(), None, 1, "same", 2, 1),
        rtol=1e-10,
        atol=1e-10,
    )
    # padding_mode: F.pad with that mode, then an unpadded conv (as torch)
    m2 = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect", dtype=pe.float64)
    x2 = pe.randn(1, 2, 5, 6, dtype=pe.float64)
    y2 = m2(x2)
    xp = np.pad(x2.numpy(), ((0, 0), (0, 0), (1, 1), (2, 2)), mode="reflect")
    np.testing.assert_allclose(
        y2.detach().numpy(),
        R.conv2d(xp, m2.weight.detach().numpy(), m2.bias.detach().numpy()),
        rtol=1e-10,
        atol=1e-10,
    )
    with pytest.raises(ValueError, match=r"^\[Conv2d\] padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"^\[ConvTranspose2d\] padding_mode must be one of"):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"^\[Conv2d\]"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"^\[Conv2d\]"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


def test_nn_conv_transpose2d():
    pe.manual_seed(1)
    m = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2)
    assert tuple(m.weight.shape) == (4, 3, 4, 4)
    bound = 1 / math.sqrt(3 * 16)  # torch: fan_in from weight.size(1) * kh * kw
    assert np.abs(m.weight.detach().numpy()).max() <= bound + 1e-7
    assert np.abs(m.bias.detach().numpy()).max() <= bound + 1e-7
    x = pe.randn(2, 4, 5, 6)
    y = m(x)
    assert tuple(y.shape) == (2, 6, 10, 12)
    want = R.conv_transpose2d(
        x.detach().numpy(), m.weight.detach().numpy(), m.bias.detach().numpy(), 2, 1, 0, 2, 1
    )
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    # output_size picks the output_padding, as torch
    y2 = m(x, output_size=(11, 13))
    assert tuple(y2.shape) == (2, 6, 11, 13)
    with pytest.raises(ValueError, match=r"^\[ConvTranspose2d\]"):
        m(x, output_size=(14, 12))


# ----------------------------------------------------------------------------- errors


def _t(*shape, dtype=pe.float32):
    return pe.zeros(*shape, dtype=dtype)


ERRORS = [
    # (callable, exception, message start)
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3), groups=2),
        ValueError,
        r"^\[conv2d\] input channels \(3\) must be divisible by groups",
    ),
    (
        lambda: F.conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2),
        ValueError,
        r"^\[conv2d\] output channels \(3\) must be divisible",
    ),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(4, 3, 3, 3)), ValueError, r"^\[conv2d\] weight of shape"),
    (
        lambda: F.conv2d(_t(1, 3, 2, 5), _t(4, 3, 3, 3)),
        ValueError,
        r"^\[conv2d\] kernel size .* is larger than the padded input",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 4, 4), _t(4, 3, 3, 3), dilation=2),
        ValueError,
        r"^\[conv2d\] kernel size",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=0),
        ValueError,
        r"^\[conv2d\] stride must be positive",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), dilation=(1, 0)),
        ValueError,
        r"^\[conv2d\] dilation must be positive",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), padding=-1),
        ValueError,
        r"^\[conv2d\] padding must be non-negative",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), padding="full"),
        ValueError,
        r"^\[conv2d\] padding must be",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=2, padding="same"),
        ValueError,
        r"^\[conv2d\] padding='same' is not supported for strided",
    ),
    (
        lambda: F.conv2d(_t(3, 5, 5, 1, 1), _t(4, 3, 3, 3)),
        ValueError,
        r"^\[conv2d\] expected a 3-D \(unbatched\) or 4-D",
    ),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3)), ValueError, r"^\[conv2d\] weight must be 4-D"),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(4, 1)),
        ValueError,
        r"^\[conv2d\] bias must be 1-D",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(5)),
        ValueError,
        r"^\[conv2d\] bias must have 4 elements",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3, dtype=pe.float64)),
        TypeError,
        r"^\[conv2d\] input is float32 but weight is float64",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(4, dtype=pe.float64)),
        TypeError,
        r"^\[conv2d\] input is float32 but bias is float64",
    ),
    (
        lambda: F.conv2d(pe.zeros(1, 3, 5, 5, dtype=pe.int64), _t(4, 3, 3, 3)),
        TypeError,
        r"^\[conv2d\] input must be float32 or float64",
    ),
    (
        lambda: F.conv2d(np.zeros((1, 3, 5, 5)), _t(4, 3, 3, 3)),
        TypeError,
        r"^\[conv2d\] input must be a Tensor",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=1.5),
        TypeError,
        r"^\[conv2d\] stride must be an int",
    ),
    (
        lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), groups=0),
        ValueError,
        r"^\[conv2d\] groups must be a positive int",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 4, 5, 5), _t(4, 2, 3, 3), stride=2, output_padding=2),
        ValueError,
        r"^\[conv_transpose2d\] output_padding",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 4, 5, 5), _t(4, 2, 3, 3), output_padding=1),
        ValueError,
        r"^\[conv_transpose2d\] output_padding",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), groups=2),
        ValueError,
        r"^\[conv_transpose2d\] input channels \(3\) must be divisible",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)),
        ValueError,
        r"^\[conv_transpose2d\] weight of shape",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 2, 2), _t(3, 2, 3, 3), padding=3),
        ValueError,
        r"^\[conv_transpose2d\] kernel size",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), stride=0),
        ValueError,
        r"^\[conv_transpose2d\] stride must be positive",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), padding=-1),
        ValueError,
        r"^\[conv_transpose2d\] padding must be non-negative",
    ),
    (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3, dtype=pe.float64)),
        TypeError,
        r"^\[conv_transpose2d\] input is float32 but weight is float64",
    ),
    (
        lambda: F.conv_transpose2d(_t(3, 5, 5), _t(3, 2, 3)),
        ValueError,
        r"^\[conv_transpose2d\] weight must be 4-D",
    ),
    (lambda: F.conv1d(_t(1, 3, 5), _t(4, 3, 7)), ValueError, r"^\[conv1d\] kernel size"),
    (
        lambda: F.conv1d(_t(1, 3, 5, 5), _t(4, 3, 3, 3)),
        ValueError,
        r"^\[conv1d\] expected a 2-D \(unbatched\) or 3-D",
    ),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    fn, exc, msg = ERRORS[i]
    with pytest.raises(exc, match=msg):
        fn()


def test_binding_errors():
    """The kernel bindings check on their own (before touching memory), naming the op."""
    from pyengine import _C

    x = np.zeros((1, 4, 5, 5), np.float32)
    w = np.zeros((4, 2, 3, 3), np.float32)
    geo = dict(
        stride=(1, 1),
        pad_lo=(0, 0),
        pad_hi=(0, 0),
        dilation=(1, 1),
        input_dilation=(1, 1),
        groups=2,
        flip=False,
        wtrans=False,
    )
    with pytest.raises(ValueError, match=r"^\[conv2d\] input channels"):
        _C.conv_general(np.zeros((1, 3, 5, 5), np.float32), w, None, op="conv2d", **geo)
    with pytest.raises(TypeError, match=r"^\[conv2d\] weight has dtype float64"):
        _C.conv_general(x, w.astype(np.float64), None, op="conv2d", **geo)
    with pytest.raises(ValueError, match=r"^\[conv2d\] input must be C-contiguous"):
        _C.conv_general(x.transpose(0, 1, 3, 2), w, None, op="conv2d", **geo)
    with pytest.raises(ValueError, match=r"^\[conv2d\] grad_output must have shape"):
        _C.conv_general_grad_input(
            np.zeros((1, 4, 4, 4), np.float32), w, (1, 4, 5, 5), op="conv2d", **geo
        )
    with pytest.raises(ValueError, match=r"^\[conv2d\] stride must be >= 1"):
        _C.conv_general(x, w, None, op="conv2d", **{**geo, "stride": (0, 1)})


# ----------------------------------------------------------------------------- grad-bias kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape",
    [(3, 5, 4, 7), (4, 37, 23, 29)],  # the second: channels over the team, 41 lanes + a tail of 11
    ids=["small", "team"],
)
def test_grad_bias_kernel(num_threads, shape, dtype):
    from pyengine import _C

    gy = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    # Rows of two 16-lane passes or more add in float lanes in float32: allow their
    # rounding against the magnitudes summed.
    scale = np.abs(gy.astype(np.float64)).sum((0, 2, 3)).max()
    long_rows = dtype == np.float32 and shape[2] * shape[3] >= 32
    np.testing.assert_allclose(
        _C.conv_general_grad_bias(gy),
        gy.astype(np.float64).sum((0, 2, 3)),
        rtol=1e-6,
        atol=1e-7 * scale if long_rows else 0.0,
    )


# ----------------------------------------------------------------------------- CUDA


def test_cuda_kernels_host_emulation(tmp_path):
    """cuda/conv.cu's tile functions run on the host (no GPU needed) vs direct loops."""
    import os
    import shutil
    import subprocess

    nvcc = shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None
    )
    if nvcc is None:
        pytest.skip("nvcc not found")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = str(tmp_path / "conv_emu")
    subprocess.run(
        [
            nvcc,
            "-std=c++17",
            "-O1",
            "-arch=sm_80",
            "-w",
            "-I" + root + "/csrc",
            "-I" + root + "/cuda",
            root + "/tests/cuda_emu/conv_emu.cu",
            "-o",
            exe,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    out = subprocess.run([exe], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failures" in out.stdout


def _cuda_or_skip():
    from pyengine.backend import cuda as pcuda

    if not pcuda.is_available():
        pytest.skip(f"no CUDA GPU: {pcuda.unavailable_reason()}")
    import cupy

    return pcuda, cupy


def _geo(**kw):
    g = dict(
        stride=(1, 1),
        pad_lo=(0, 0),
        pad_hi=(0, 0),
        dilation=(1, 1),
        input_dilation=(1, 1),
        groups=1,
        flip=False,
        wtrans=False,
    )
    g.update(kw)
    return g


CUDA_GEOS = [
    ((2, 3, 9, 8), (4, 3, 3, 3), _geo(pad_lo=(1, 1), pad_hi=(1, 1))),
    ((2, 4, 11, 10), (6, 2, 3, 3), _geo(stride=(2, 2), pad_lo=(1, 1), pad_hi=(1, 1), groups=2)),
    ((1, 70, 9, 9), (130, 70, 3, 3), _geo(pad_lo=(1, 1), pad_hi=(1, 1))),  # several tiles
    ((2, 4, 6, 7), (4, 1, 3, 3), _geo(dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 2), groups=4)),
    (
        (2, 3, 5, 4),
        (3, 2, 4, 4),
        _geo(input_dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 2), flip=True, wtrans=True),
    ),  # conv_transpose2d k4 s2 p1
    (
        (1, 2, 5, 6),
        (3, 2, 3, 2),
        _geo(stride=(2, 3), input_dilation=(2, 2), pad_lo=(1, -1), pad_hi=(0, 2)),
    ),
    ((3, 8, 7, 7), (8, 8, 1, 1), _geo()),
    # several 128-column tiles with image boundaries inside them, K over many slices of 8;
    # 72 output channels take the 128-row tile (rows past 72 idle), grad-input the 64-row one
    ((3, 20, 13, 11), (72, 20, 3, 3), _geo(pad_lo=(1, 0), pad_hi=(2, 1))),
    ((2, 130, 9, 9), (140, 130, 1, 1), _geo(stride=(2, 1))),
    # the fast kernels' 64-row tiles: 24 channels, and 4 groups of 4 output channels
    (
        (2, 16, 10, 9),
        (24, 16, 3, 3),
        _geo(stride=(1, 2), dilation=(2, 1), pad_lo=(2, 1), pad_hi=(1, 1)),
    ),
    ((2, 32, 8, 8), (16, 8, 3, 3), _geo(pad_lo=(1, 1), pad_hi=(1, 1), groups=4)),
    # grouped grad-input on the fast forward (adjoint K = 144), grouped 128-row tiles
    ((2, 32, 8, 8), (64, 8, 3, 3), _geo(pad_lo=(1, 1), pad_hi=(1, 1), groups=4)),
    ((1, 8, 6, 6), (260, 4, 5, 5), _geo(pad_lo=(2, 1), pad_hi=(2, 3), groups=2)),
    # a transposed conv whose grad-weight (over the adjoint, K = 72) takes the fast kernel
    (
        (2, 16, 6, 5),
        (16, 8, 3, 3),
        _geo(input_dilation=(2, 2), pad_lo=(2, 2), pad_hi=(2, 2), flip=True, wtrans=True),
    ),
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CUDA_GEOS, ids=str)
def test_cuda_conv_general_kernels(case, dtype):
    pcuda, cp = _cuda_or_skip()
    xs, ws, geo = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    o = ws[1] * geo["groups"] if geo["wtrans"] else ws[0]
    b = rng.standard_normal(o).astype(dtype)
    want = R.conv_general(x, w, b, **geo)
    y = pcuda.conv_general(cp.asarray(x), cp.asarray(w), cp.asarray(b), geo).get()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * np.abs(want).max())
    gy = rng.standard_normal(want.shape).astype(dtype)
    gx_r, gw_r, gb_r = R.conv_general_vjp(gy, x, w, b, **geo)
    gx = pcuda.conv_general_grad_input(cp.asarray(gy), cp.asarray(w), xs, geo).get()
    gw = pcuda.conv_general_grad_weight(cp.asarray(x), cp.asarray(gy), ws, geo).get()
    gb = pcuda.conv_general_grad_bias(cp.asarray(gy)).get()
    for got, ref in ((gx, gx_r), (gw, gw_r), (gb, gb_r)):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max()))


@pytest.mark.cuda
def test_cuda_conv2d_autograd():
    _cuda_or_skip()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    xt = pe.tensor(x, device="cuda", requires_grad=True)
    wt = pe.tensor(w, device="cuda", requires_grad=True)
    bt = pe.tensor(b, device="cuda", requires_grad=True)
    y = F.conv2d(xt, wt, bt, stride=2, padding=1, groups=2)
    assert y.device == "cuda"
    np.testing.assert_allclose(
        y.detach().cpu().numpy(), R.conv2d(x, w, b, 2, 1, 1, 2), rtol=1e-10, atol=1e-10
    )
    gy = rng.standard_normal(tuple(y.shape))
    y.backward(pe.tensor(gy, device="cuda"))
    gx, gw, gb = R.conv2d_vjp(gy, x, w, b, 2, 1, 1, 2)
    for t, ref in ((xt, gx), (wt, gw), (bt, gb)):
        np.testing.assert_allclose(t.grad.cpu().numpy(), ref, rtol=1e-10, atol=1e-10)
    xt2 = pe.tensor(x[:, :4], device="cuda")
    wt2 = pe.tensor(rng.standard_normal((4, 3, 4, 4)), device="cuda")
    y2 = F.conv_transpose2d(xt2, wt2, stride=2, padding=1)
    np.testing.assert_allclose(
        y2.cpu().numpy(),
        R.conv_transpose2d(x[:, :4], wt2.cpu().numpy(), None, 2, 1),
        rtol=1e-10,
        atol=1e-10,
    )
