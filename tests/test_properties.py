"""Property tests (hypothesis) for the kernel families: random shapes and arguments against the
NumPy float64 references in tests/reference/.

Each example runs forward and backward (through a random projection, vs the reference adjoint)
with helpers.check_op, in float64 (the default tight tolerance) and in float32 (looser), under
one CPU ISA path drawn with the example, so the examples spread over every path.
Finite differences are left to the family tests (they are slow); shapes stay small.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from helpers import check_op, distinct
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import activation as RA
from reference import conv as RC
from reference import linear as RL
from reference import lstm as RR
from reference import norm as RN
from reference import pool as RP
from reference import softmax as RS
from test_lstm import gru_inputs, layer_fns  # the same layer ops and references

import pyengine as pe
import pyengine.functional as F

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
ISAS = st.sampled_from(list(pe.supported_cpu_isas()))
DTYPES = (pe.float64, pe.float32)
# float32: sums of a few dozen products and chains through time lose a few more bits
F32_TOL = dict(rtol=3e-5, atol=3e-5, grad_rtol=1e-4, grad_atol=1e-4)


@contextmanager
def isa(name: str):
    prev = pe.get_cpu_isa()
    pe.set_cpu_isa(name)
    try:
        yield
    finally:
        pe.set_cpu_isa(prev)


def check_both(op, ref, vjp, inputs, *, kwargs=None, gen=None, f32_tol=None):
    """check_op in float64 (default tolerances) and float32 (F32_TOL or f32_tol)."""
    for dtype in DTYPES:
        tol = (f32_tol or F32_TOL) if dtype == pe.float32 else {}
        check_op(op, ref, vjp, inputs, dtype=dtype, kwargs=kwargs, gen=gen, gradcheck=False, **tol)


small = st.integers(1, 3)


# ----------------------------------------------------------------------------- conv


@st.composite
def conv2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(small), draw(small)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        padding = draw(st.sampled_from(["same", "valid"]))
    else:
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    pads = (0, 0) if isinstance(padding, str) else padding
    h = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - 2 * pads[0]), 10))
    w = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - 2 * pads[1]), 10))
    n = draw(small)
    bias = draw(st.booleans())
    return (n, cg * groups, h, w), (og * groups, cg, kh, kw), bias, stride, padding, dil, groups


@SETTINGS
@given(case=conv2d_cases(), isa_name=ISAS)
def test_conv2d_properties(case, isa_name):
    x, w, bias, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    with isa(isa_name):
        check_both(F.conv2d, RC.conv2d, RC.conv2d_vjp, [x, w, (w[0],) if bias else None], kwargs=kw)


@st.composite
def conv_transpose2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cg, og = draw(small), draw(small)
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    opad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dil))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    for n_in, k, s, p, o, d in zip((h, w), (kh, kw), stride, pad, opad, dil):
        assume(RC.conv_transpose2d_size(n_in, k, s, p, o, d) >= 1)
    n = draw(small)
    bias = draw(st.booleans())
    return (n, cg * groups, h, w), (cg * groups, og, kh, kw), bias, stride, pad, opad, groups, dil


@SETTINGS
@given(case=conv_transpose2d_cases(), isa_name=ISAS)
def test_conv_transpose2d_properties(case, isa_name):
    x, w, bias, stride, padding, opad, groups, dilation = case
    kw = dict(stride=stride, padding=padding, output_padding=opad, groups=groups, dilation=dilation)
    ins = [x, w, (w[1] * groups,) if bias else None]
    with isa(isa_name):
        check_both(F.conv_transpose2d, RC.conv_transpose2d, RC.conv_transpose2d_vjp, ins, kwargs=kw)


@SETTINGS
@given(
    n=small,
    groups=st.sampled_from([1, 2]),
    cg=small,
    og=small,
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    dil=st.integers(1, 2),
    length=st.integers(1, 12),
    isa_name=ISAS,
)
def test_conv1d_properties(n, groups, cg, og, k, stride, pad, dil, length, isa_name):
    assume(length + 2 * pad >= dil * (k - 1) + 1)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ins = [(n, cg * groups, length), (og * groups, cg, k), (og * groups,)]
    with isa(isa_name):
        check_both(F.conv1d, RC.conv1d, RC.conv1d_vjp, ins, kwargs=kw)


# ----------------------------------------------------------------------------- pool


@st.composite
def pool_cases(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    sizes = []
    for i in range(2):
        sizes.append(draw(st.integers(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]), 9)))
    shape = (draw(small), draw(small), *sizes)
    if draw(st.booleans()):
        shape = shape[1:]  # unbatched (C, H, W)
    return shape, k, s, p, d, ceil_mode


@SETTINGS
@given(case=pool_cases(), isa_name=ISAS)
def test_max_pool2d_properties(case, isa_name):
    shape, k, s, p, d, ceil_mode = case
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    with isa(isa_name):
        check_both(
            F.max_pool2d, RP.max_pool2d, RP.max_pool2d_vjp, [shape], kwargs=kw, gen=distinct()
        )


@SETTINGS
@given(
    case=pool_cases(dilation=False),
    count_include_pad=st.booleans(),
    divisor=st.one_of(st.none(), st.integers(1, 5)),
    isa_name=ISAS,
)
def test_avg_pool2d_properties(case, count_include_pad, divisor, isa_name):
    shape, k, s, p, _, ceil_mode = case
    kw = dict(
        kernel_size=k,
        stride=s,
        padding=p,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor,
    )
    with isa(isa_name):
        check_both(F.avg_pool2d, RP.avg_pool2d, RP.avg_pool2d_vjp, [shape], kwargs=kw)


@SETTINGS
@given(
    n=small,
    c=small,
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    data=st.data(),
    isa_name=ISAS,
)
def test_adaptive_pool2d_properties(n, c, h, w, data, isa_name):
    out = (data.draw(st.integers(1, h)), data.draw(st.one_of(st.none(), st.integers(1, w))))
    with isa(isa_name):
        check_both(
            F.adaptive_avg_pool2d,
            RP.adaptive_avg_pool2d,
            RP.adaptive_avg_pool2d_vjp,
            [(n, c, h, w)],
            kwargs=dict(output_size=out),
        )
        check_both(
            F.adaptive_max_pool2d,
            RP.adaptive_max_pool2d,
            RP.adaptive_max_pool2d_vjp,
            [(n, c, h, w)],
            kwargs=dict(output_size=out),
            gen=distinct(),
        )


# ----------------------------------------------------------------------------- norm


@SETTINGS
@given(
    shape=st.sampled_from([2, 3, 4]).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 5) for _ in range(nd)])
    ),
    affine=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-3]),
    isa_name=ISAS,
)
def test_batch_norm_train_properties(shape, affine, eps, isa_name):
    per_channel = int(np.prod(shape)) // shape[1]
    assume(per_channel > 1)  # one value per channel is an error in training mode

    def op(x, w, b, eps):
        return F.batch_norm(x, None, None, w, b, training=True, eps=eps)

    def ref(x, w, b, eps):
        return RN.batch_norm_train(x, w, b, eps)

    def vjp(g, x, w, b, eps):
        return RN.batch_norm_train_vjp(g, x, w, b, eps)

    c = (shape[1],) if affine else None
    with isa(isa_name):
        check_both(op, ref, vjp, [shape, c, c], kwargs=dict(eps=eps))


@SETTINGS
@given(
    shape=st.sampled_from([2, 3, 4]).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 5) for _ in range(nd)])
    ),
    isa_name=ISAS,
)
def test_batch_norm_eval_properties(shape, isa_name):
    rng = np.random.default_rng(sum(shape))
    mean = rng.standard_normal(shape[1])
    var = rng.uniform(0.2, 2.0, shape[1])

    def op(x, w, b):
        return F.batch_norm(x, pe.tensor(mean, dtype=x.dtype), pe.tensor(var, dtype=x.dtype), w, b)

    def ref(x, w, b):
        return RN.batch_norm_eval(x, mean.astype(x.dtype), var.astype(x.dtype), w, b)

    def vjp(g, x, w, b):
        out = RN.batch_norm_eval_vjp(g, x, mean.astype(x.dtype), var.astype(x.dtype), w, b)
        return out[0], out[3], out[4]

    c = (shape[1],)
    with isa(isa_name):
        check_op(op, ref, vjp, [shape, c, c], dtype=pe.float64, gradcheck=False)


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=3).map(
        lambda s: (*s, 0)  # placeholder for the last dim, drawn wider (vector tails)
    ),
    last=st.integers(1, 40),
    data=st.data(),
    affine=st.booleans(),
    isa_name=ISAS,
)
def test_layer_norm_properties(shape, last, data, affine, isa_name):
    shape = (*shape[:-1], last)
    k = data.draw(st.integers(1, len(shape)))
    ns = shape[-k:]
    kw = dict(normalized_shape=ns)

    def vjp(g, x, normalized_shape, w=None, b=None):
        dx, _, dw, db = RN.layer_norm_vjp(g, x, normalized_shape, w, b)
        return dx, dw, db

    def op(x, w, b, normalized_shape):
        return F.layer_norm(x, normalized_shape, w, b)

    def ref(x, w, b, normalized_shape):
        return RN.layer_norm(x, normalized_shape, w, b)

    def vjp_(g, x, w, b, normalized_shape):
        return vjp(g, x, normalized_shape, w, b)

    p = ns if affine else None
    with isa(isa_name):
        check_both(op, ref, vjp_, [shape, p, p], kwargs=kw)


# ----------------------------------------------------------------------------- softmax, losses


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 7), min_size=0, max_size=3).map(tuple),
    last=st.integers(1, 40),
    data=st.data(),
    log=st.booleans(),
    isa_name=ISAS,
)
def test_softmax_properties(shape, last, data, log, isa_name):
    shape = (*shape, last)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    op = F.log_softmax if log else F.softmax
    ref = RS.log_softmax if log else RS.softmax
    vjp = RS.log_softmax_vjp if log else RS.softmax_vjp
    with isa(isa_name):
        check_both(
            lambda x, dim: op(x, dim=dim),
            ref,
            vjp,
            [shape],
            kwargs=dict(dim=dim),
        )


@SETTINGS
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 7),
    extra=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.0, 0.1, 0.5]),
    ignore=st.booleans(),
    probs=st.booleans(),
    seed=st.integers(0, 2**16),
    isa_name=ISAS,
)
def test_cross_entropy_properties(
    n, c, extra, reduction, weighted, smoothing, ignore, probs, seed, isa_name
):
    rng = np.random.default_rng(seed)
    if probs:  # class probabilities: a float target, differentiated too (as torch)
        p = rng.uniform(0.0, 1.0, (n, c, *extra))
        target = p / p.sum(axis=1, keepdims=True)
        ignore_index = -100
    else:
        target = rng.integers(0, c, (n, *extra)).astype(np.int64)
        ignore_index = int(target.flat[0]) if ignore else -100
        assume(not (ignore and reduction == "mean" and (target == ignore_index).all()))
    weight = rng.uniform(0.2, 2.0, c) if weighted else None  # a constant (not differentiated)
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    with isa(isa_name):
        for dtype in DTYPES:
            tol = F32_TOL if dtype == pe.float32 else {}
            wt = None if weight is None else pe.tensor(weight, dtype=dtype)
            check_op(
                lambda x, t, wt=wt, **k: F.cross_entropy(x, t, wt, **k),
                lambda x, t, **k: RS.cross_entropy(x, t, weight, **k),
                lambda g, x, t, **k: RS.cross_entropy_vjp(g, x, t, weight, **k)[:2],
                [(n, c, *extra), target.astype(np.dtype(dtype)) if probs else target],
                dtype=dtype,
                kwargs=kw,
                gradcheck=False,
                **tol,
            )


@SETTINGS
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 7),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
    isa_name=ISAS,
)
def test_nll_loss_properties(n, c, reduction, weighted, seed, isa_name):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, c, (n,)).astype(np.int64)
    weight = rng.uniform(0.2, 2.0, c) if weighted else None
    with isa(isa_name):
        for dtype in DTYPES:
            wt = None if weight is None else pe.tensor(weight, dtype=dtype)
            check_op(
                lambda x, t, wt=wt: F.nll_loss(x, t, wt, reduction=reduction),
                lambda x, t: RS.nll_loss(x, t, weight, reduction=reduction),
                lambda g, x, t: RS.nll_loss_vjp(g, x, t, weight, reduction=reduction)[:2],
                [(n, c), target],
                dtype=dtype,
                gradcheck=False,
            )


# ----------------------------------------------------------------------------- LSTM / GRU


@SETTINGS
@given(
    mode=st.sampled_from(["lstm", "gru"]),
    n=st.integers(1, 4),
    i=st.integers(1, 6),
    h=st.integers(1, 20),
    bias=st.booleans(),
    isa_name=ISAS,
)
def test_rnn_cell_properties(mode, n, i, h, bias, isa_name):
    G = 4 if mode == "lstm" else 3
    shapes = [(n, i), (n, h)] + ([(n, h)] if mode == "lstm" else [])
    shapes += [(G * h, i), (G * h, h)] + ([(G * h,), (G * h,)] if bias else [None, None])
    with isa(isa_name):
        if mode == "lstm":
            check_both(
                lambda x, hh, c, wi, wh, bi, bh: F.lstm_cell(x, (hh, c), wi, wh, bi, bh),
                RR.lstm_cell,
                RR.lstm_cell_vjp,
                shapes,
            )
        else:
            check_both(F.gru_cell, RR.gru_cell, RR.gru_cell_vjp, shapes)


@SETTINGS
@given(
    mode=st.sampled_from(["lstm", "gru"]),
    T=st.integers(1, 5),
    N=st.integers(1, 3),
    I=st.integers(1, 4),
    H=st.integers(1, 18),
    L=st.integers(1, 2),
    bi=st.booleans(),
    bf=st.booleans(),
    data=st.data(),
    isa_name=ISAS,
)
def test_rnn_layer_properties(mode, T, N, I, H, L, bi, bf, data, isa_name):  # noqa: E741
    lens = None
    if data.draw(st.booleans()):
        lens = data.draw(st.lists(st.integers(1, T), min_size=N, max_size=N))
    G = 4 if mode == "lstm" else 3
    D = 2 if bi else 1
    shapes = [(N, T, I) if bf else (T, N, I), (L * D, N, H), (L * D, N, H)]
    for layer in range(L):
        for _ in range(D):
            shapes += [(G * H, I if layer == 0 else D * H), (G * H, H), (G * H,), (G * H,)]
    if mode == "gru":
        shapes = gru_inputs(shapes)
    op, ref, vjp = layer_fns(mode, L, bi, bf, lens)
    with isa(isa_name):
        check_both(op, ref, vjp, shapes)


# ----------------------------------------------------------------------------- linear, activations


@SETTINGS
@given(
    lead=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    fin=st.integers(1, 9),
    fout=st.integers(1, 9),
    bias=st.booleans(),
    isa_name=ISAS,
)
def test_linear_properties(lead, fin, fout, bias, isa_name):
    with isa(isa_name):
        check_both(
            F.linear,
            RL.linear,
            lambda g, x, w, b: (*RL.linear_vjp(g, x, w, b), None)[:3],
            [(*lead, fin), (fout, fin), (fout,) if bias else None],
        )


ACTIVATIONS = {
    "gelu": (
        F.gelu,
        RA.gelu,
        RA.gelu_vjp,
        lambda d: dict(approximate=d(st.sampled_from(["none", "tanh"]))),
    ),
    "silu": (F.silu, RA.silu, RA.silu_vjp, lambda d: {}),
    "leaky_relu": (
        F.leaky_relu,
        RA.leaky_relu,
        RA.leaky_relu_vjp,
        lambda d: dict(negative_slope=d(st.floats(-2.0, 2.0))),
    ),
    "elu": (F.elu, RA.elu, RA.elu_vjp, lambda d: dict(alpha=d(st.floats(0.1, 3.0)))),
    "selu": (F.selu, RA.selu, RA.selu_vjp, lambda d: {}),
    "softplus": (
        F.softplus,
        RA.softplus,
        RA.softplus_vjp,
        lambda d: dict(beta=d(st.floats(0.25, 4.0)), threshold=d(st.floats(0.5, 20.0))),
    ),
}


@SETTINGS
@given(
    name=st.sampled_from(sorted(ACTIVATIONS)),
    shape=st.lists(st.integers(1, 7), min_size=0, max_size=3).map(tuple),
    data=st.data(),
    isa_name=ISAS,
)
def test_activation_properties(name, shape, data, isa_name):
    op, ref, vjp, kwargs = ACTIVATIONS[name]
    kw = kwargs(data.draw)

    def gen(rng, s):  # away from the kinks at 0 and at softplus's threshold
        x = rng.uniform(-4, 4, s)
        x[np.abs(x) < 0.05] = 0.5
        if name == "softplus":
            bx = x * kw["beta"]
            x[np.abs(bx - kw["threshold"]) < 0.05] += 0.2
        return x

    with isa(isa_name):
        check_both(op, ref, vjp, [shape], kwargs=kw, gen=gen)
