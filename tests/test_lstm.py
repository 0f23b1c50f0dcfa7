"""LSTM / GRU: cells, layers (stacked, bidirectional, batch_first, lengths), nn modules.

Forward vs the NumPy float64 reference (tests/reference/lstm.py), backward vs its adjoint,
gradcheck in float64 through 5 time steps, every CPU ISA path (the pointwise passes are
ISA-specific), 1 and 2 threads, the vector math's accuracy, bad calls, and torch parity
(state dicts converted to NumPy) when torch is installed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import assert_close, check_op, numeric_vjp, uniform
from reference import lstm as R

import pyengine as pe
import pyengine.functional as F
from pyengine import _C

DTYPES = [pe.float32, pe.float64]
DT_IDS = ["f32", "f64"]

# Gradients of long recurrences in float32 collect more rounding than one op does.
F32_GRAD = dict(grad_rtol=1e-4, grad_atol=1e-4)


def _grad_tol(dtype):
    return F32_GRAD if np.dtype(dtype) == np.float32 else {}


# ----------------------------------------------------------------------------- vector math


def _ulp_error(out, ref):
    ref32 = np.abs(ref).astype(np.float32)
    return np.abs(out.astype(np.float64) - ref) / np.spacing(np.maximum(ref32, np.float32(1e-37)))


@pytest.mark.parametrize(
    "fn,ref,lo,hi,max_ulp",
    [
        ("exp", np.exp, -87.0, 88.0, 2.0),
        ("sigmoid", R.sigmoid, -30.0, 30.0, 3.0),
        ("tanh", np.tanh, -12.0, 12.0, 3.0),
        ("tanh", np.tanh, -0.6, 0.6, 3.0),  # the polynomial branch and the switch at 0.4
    ],
)
def test_vector_math_accuracy(cpu_isa, fn, ref, lo, hi, max_ulp):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.linspace(lo, hi, 20001),
            rng.uniform(lo, hi, 20001),
            [0.0, -0.0, 1e-30, -1e-30, 1e-6, 0.4, -0.4],
        ]
    ).astype(np.float32)
    x = x[(x >= lo) & (x <= hi)] if fn == "exp" else x
    for n in (len(x), 1, 7, 15, 17):  # full vectors and masked tails
        xs = np.ascontiguousarray(x[:n])
        out = np.empty_like(xs)
        _C.rnn_math(fn, xs, out)
        want = ref(xs.astype(np.float64))
        err = _ulp_error(out, want)
        worst = xs[err.argmax()]
        assert err.max() <= max_ulp, f"{fn} on {cpu_isa}: {err.max():.2f} ulp at x={worst}"


def test_vector_math_limits(cpu_isa):
    x = np.array([-1e4, -100, -30, 30, 100, 1e4, np.inf, -np.inf], np.float32)
    s, t = np.empty_like(x), np.empty_like(x)
    _C.rnn_math("sigmoid", x, s)
    _C.rnn_math("tanh", x, t)
    assert np.all((s >= 0) & (s <= 1)) and s[-3] == 1.0 and s[0] < 1e-30
    np.testing.assert_array_equal(t, np.sign(x))
    z = np.zeros(3, np.float32)
    out = np.empty_like(z)
    _C.rnn_math("tanh", z, out)
    np.testing.assert_array_equal(out, z)


def test_vector_math_nan_propagates(cpu_isa):
    x = np.array([np.nan, 1.0, np.nan] + [0.5] * 13 + [np.nan], np.float32)
    for fn in ("exp", "sigmoid", "tanh"):
        out = np.empty_like(x)
        _C.rnn_math(fn, x, out)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(x), err_msg=fn)


def test_vector_math_float64():
    x = np.linspace(-20, 20, 1001)
    for fn, ref in (("exp", np.exp), ("sigmoid", R.sigmoid), ("tanh", np.tanh)):
        out = np.empty_like(x)
        _C.rnn_math(fn, x, out)
        np.testing.assert_allclose(out, ref(x), rtol=1e-14, atol=1e-300)


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_reference_adjoint_vs_finite_differences(mode):
    """The reference's hand-written adjoint agrees with central differences of its forward."""
    rng = np.random.default_rng(3)
    T, N, I, H, L = 3, 2, 2, 2, 2
    lens = [3, 1]
    G = 4 if mode == "lstm" else 3
    shapes = [(T, N, I), (2 * L, N, H), (2 * L, N, H)]
    for layer in range(L):
        shapes += [(G * H, I if layer == 0 else 2 * H), (G * H, H), (G * H,), (G * H,)] * 2
    args = [rng.uniform(-1, 1, s) for s in shapes]

    def f(x, h0, c0, *w):
        out = R.rnn(mode, x, h0, c0, list(w), L, True, False, lens)
        return out if mode == "lstm" else out[:2]

    outs = f(*args)
    gs = tuple(rng.standard_normal(o.shape) for o in outs)
    dx, dh0, dc0, dw = R.rnn_vjp(
        mode, gs + ((None,) if mode == "gru" else ()), *args[:3], args[3:], L, True, False, lens
    )
    want = [dx, dh0] + ([dc0] if mode == "lstm" else [None]) + list(dw)
    for i, g in enumerate(want):
        if g is not None:
            np.testing.assert_allclose(g, numeric_vjp(f, args, i, gs), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- cells

CELL_SHAPES = [  # (N, I, H)
    (1, 1, 1),
    (3, 5, 7),
    (2, 13, 17),  # H = 17: one full AVX-512 vector and a 1-lane tail
    (5, 3, 16),
    (4, 8, 33),
]


def _cell_inputs(N, I, H, G, bias=True, with_c=True):
    shapes = [(N, I), (N, H)] + ([(N, H)] if with_c else []) + [(G * H, I), (G * H, H)]
    return shapes + ([(G * H,), (G * H,)] if bias else [None, None])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", CELL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_lstm_cell(cpu_isa, shape, dtype):
    N, I, H = shape
    check_op(
        lambda x, h, c, wi, wh, bi, bh: F.lstm_cell(x, (h, c), wi, wh, bi, bh),
        R.lstm_cell,
        R.lstm_cell_vjp,
        _cell_inputs(N, I, H, 4),
        dtype=dtype,
        gradcheck=dtype == pe.float64 and N * H * 4 * (I + H) < 800,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", CELL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gru_cell(cpu_isa, shape, dtype):
    N, I, H = shape
    check_op(
        F.gru_cell,
        R.gru_cell,
        R.gru_cell_vjp,
        _cell_inputs(N, I, H, 3, with_c=False),
        dtype=dtype,
        gradcheck=dtype == pe.float64 and N * H * 3 * (I + H) < 800,
    )


def test_cells_without_bias():
    check_op(
        lambda x, h, c, wi, wh, bi, bh: F.lstm_cell(x, (h, c), wi, wh, bi, bh),
        R.lstm_cell,
        R.lstm_cell_vjp,
        _cell_inputs(2, 3, 4, 4, bias=False),
        dtype=pe.float64,
    )
    check_op(
        F.gru_cell,
        R.gru_cell,
        R.gru_cell_vjp,
        _cell_inputs(2, 3, 4, 3, False, False),
        dtype=pe.float64,
    )


# ----------------------------------------------------------------------------- layers

# (T, N, I, H, num_layers, bidirectional, batch_first, lengths)
LAYER_CASES = [
    (5, 2, 3, 4, 1, False, False, None),
    (5, 2, 3, 4, 1, True, False, None),
    (5, 3, 2, 3, 2, False, False, None),
    (5, 2, 3, 3, 2, True, True, None),
    (5, 3, 3, 4, 1, True, False, [5, 2, 1]),
    (5, 3, 2, 3, 2, True, True, [3, 5, 1]),
    (1, 1, 1, 1, 1, False, False, None),
    (7, 1, 5, 17, 1, True, False, None),
    (3, 4, 1, 2, 3, False, True, [1, 2, 3, 3]),
]


def _layer_id(c):
    T, N, I, H, L, bi, bf, lens = c
    s = f"T{T}N{N}I{I}H{H}L{L}" + ("-bi" if bi else "") + ("-bf" if bf else "")
    return s + ("-len" if lens else "")


def _layer_inputs(mode, T, N, I, H, L, bi, bf, bias=True):
    G = 4 if mode == "lstm" else 3
    D = 2 if bi else 1
    x = (N, T, I) if bf else (T, N, I)
    shapes = [x, (L * D, N, H), (L * D, N, H)]
    for layer in range(L):
        for _ in range(D):
            size = I if layer == 0 else D * H
            shapes += [(G * H, size), (G * H, H)] + ([(G * H,), (G * H,)] if bias else [None, None])
    return shapes


def layer_fns(mode, L, bi, bf, lens):
    if mode == "lstm":

        def op(x, h0, c0, *w):
            y, (h, c) = F.lstm(x, (h0, c0), w, L, bi, bf, lengths=lens)
            return y, h, c

        def ref(x, h0, c0, *w):
            return R.rnn("lstm", x, h0, c0, list(w), L, bi, bf, lens)

        def vjp(g, x, h0, c0, *w):
            dx, dh0, dc0, dw = R.rnn_vjp("lstm", g, x, h0, c0, list(w), L, bi, bf, lens)
            return [dx, dh0, dc0, *dw]

    else:

        def op(x, h0, c0, *w):
            return F.gru(x, h0, w, L, bi, bf, lengths=lens)

        def ref(x, h0, c0, *w):
            return R.rnn("gru", x, h0, None, list(w), L, bi, bf, lens)[:2]

        def vjp(g, x, h0, c0, *w):
            dx, dh0, _, dw = R.rnn_vjp(
                "gru", (g[0], g[1], None), x, h0, None, list(w), L, bi, bf, lens
            )
            return [dx, dh0, None, *dw]

    return op, ref, vjp


def gru_inputs(shapes):
    """GRU has no c0: pass a constant (bool) placeholder that neither side reads."""
    shapes = list(shapes)
    shapes[2] = np.zeros(1, dtype=bool)
    return shapes


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", LAYER_CASES, ids=_layer_id)
def test_layer(case, dtype, mode):
    T, N, I, H, L, bi, bf, lens = case
    op, ref, vjp = layer_fns(mode, L, bi, bf, lens)
    shapes = _layer_inputs(mode, T, N, I, H, L, bi, bf)
    if mode == "gru":
        shapes = gru_inputs(shapes)
    numel = sum(int(np.prod(s)) for s in shapes if isinstance(s, tuple))
    check_op(
        op,
        ref,
        vjp,
        shapes,
        dtype=dtype,
        gradcheck=dtype == pe.float64 and numel <= 1000,
        **_grad_tol(dtype),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_layer_isa_paths(cpu_isa, mode, dtype):
    case = (5, 3, 4, 19, 1, True, False, [5, 3, 2])  # H = 19: vector tails on every ISA
    T, N, I, H, L, bi, bf, lens = case
    op, ref, vjp = layer_fns(mode, L, bi, bf, lens)
    shapes = _layer_inputs(mode, T, N, I, H, L, bi, bf)
    shapes = gru_inputs(shapes) if mode == "gru" else shapes
    check_op(op, ref, vjp, shapes, dtype=dtype, gradcheck=False, **_grad_tol(dtype))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_layer_without_bias(mode):
    T, N, I, H, L, bi, bf = 4, 2, 3, 3, 2, True, False
    op, ref, vjp = layer_fns(mode, L, bi, bf, [4, 2])
    shapes = _layer_inputs(mode, T, N, I, H, L, bi, bf, bias=False)
    shapes = gru_inputs(shapes) if mode == "gru" else shapes
    check_op(op, ref, vjp, shapes, dtype=pe.float64)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_layer_threads(num_threads, mode):
    """N*H above the threshold that parallelizes the pointwise pass (and the GEMMs)."""
    T, N, I, H, L, bi, bf = 6, 48, 40, 200, 1, True, True
    lens = [1 + (n * 5) % T for n in range(N)]
    shapes = _layer_inputs(mode, T, N, I, H, L, bi, bf)
    _check_f32_layer(mode, layer_fns(mode, L, bi, bf, lens), shapes)


def _check_f32_layer(mode, fns, shapes):
    """float32 against the reference, inputs of torch's init scale (pre-activations O(1), as
    in real use)."""
    op, ref, vjp = fns
    shapes = gru_inputs(shapes) if mode == "gru" else shapes
    check_op(
        op,
        ref,
        vjp,
        shapes,
        dtype=pe.float32,
        gradcheck=False,
        gen=uniform(-0.15, 0.15),
        **F32_GRAD,
    )


# h0 = 0 (what hx=None gives): the first step leaves out h_prev W_hh^T (cpu/lstm.h). The team
# loop with lengths, bidirectional (the reverse direction starts short sequences later, from
# h0), a cell step (T = 1: two GEMMs, the second left out), and a small single-thread loop.
ZERO_H0 = [
    (6, 48, 40, 200, True, True),
    (1, 48, 40, 200, False, False),
    (5, 3, 4, 19, False, False),
]


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("case", ZERO_H0, ids=str)
def test_layer_zero_initial_state(cpu_isa, num_threads, mode, case):
    T, N, I, H, bi, var = case
    lens = [1 + (n * 5) % T for n in range(N)] if var else None
    shapes = _layer_inputs(mode, T, N, I, H, 1, bi, False)
    shapes[1] = np.zeros(shapes[1])  # h0, still an input: dh0 is checked
    _check_f32_layer(mode, layer_fns(mode, 1, bi, False, lens), shapes)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_zero_initial_state_does_not_read_w_hh_at_the_first_step(mode):
    """The skipped product is not read (as BLAS with alpha = 0): a NaN in W_hh reaches the
    output from the second step on, or from the first when h0 is not zero."""
    m = getattr(pe.nn, mode)(3, 4)
    m.weight_hh_l0.data[0, 0] = np.nan
    x = pe.randn(2, 1, 3)
    y = m(x)[0].detach().numpy()
    assert np.isfinite(y[0]).all() and np.isnan(y[1]).any()
    h0 = np.zeros((1, 1, 4), np.float32)
    h0[0, 0, 0] = 1e-30
    hx = pe.tensor(h0) if mode == "GRU" else (pe.tensor(h0), pe.zeros(1, 1, 4))
    assert np.isnan(m(x, hx)[0].detach().numpy()[0]).any()


def test_long_sequence_float32():
    """64 steps, I = H = 64: float32 stays close to the float64 reference."""
    op, ref, vjp = layer_fns("lstm", 1, False, False, None)
    check_op(
        op,
        ref,
        vjp,
        _layer_inputs("lstm", 64, 4, 64, 64, 1, False, False),
        dtype=pe.float32,
        gradcheck=False,
        gen=uniform(-0.3, 0.3),
        grad_rtol=1e-4,
        grad_atol=1e-4,
    )


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_layer_depth_beyond_one_slice(mode):
    """H = 1031: the backward's recurrent products have depth 4H (3H) > 4096, so the step
    GEMM runs its depth in two slices, with edge rows (N = 9) and edge columns."""
    T, N, I, H, L, bi, bf = 2, 9, 3, 1031 if mode == "lstm" else 1370, 1, False, False
    op, ref, vjp = layer_fns(mode, L, bi, bf, None)
    shapes = _layer_inputs(mode, T, N, I, H, L, bi, bf)
    shapes = gru_inputs(shapes) if mode == "gru" else shapes
    check_op(op, ref, vjp, shapes, dtype=pe.float64, gradcheck=False, gen=uniform(-0.05, 0.05))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_gradcheck_5_steps_with_lengths(mode):
    """Finite differences for input, initial states, weights and biases, 5 steps."""
    op, _, _ = layer_fns(mode, 1, True, False, [5, 3])
    rng = np.random.default_rng(1)
    shapes = _layer_inputs(mode, 5, 2, 3, 3, 1, True, False)
    ts = [pe.tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes]
    if mode == "gru":
        ts[2] = None
    proj = [pe.tensor(rng.standard_normal(s)) for s in [(5, 2, 6), (2, 2, 3), (2, 2, 3)]]

    def fn(*args):
        a = list(args)
        if mode == "gru":
            a.insert(2, None)
        outs = op(*a)
        return sum((o * p).sum() for o, p in zip(outs, proj))

    assert pe.autograd.gradcheck(fn, tuple(t for t in ts if t is not None))


# ----------------------------------------------------------------------------- semantics


def test_unbatched_matches_batch_of_one():
    pe.manual_seed(0)
    m = pe.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    x = pe.randn(7, 3)
    y, (h, c) = m(x)
    assert tuple(y.shape) == (7, 10) and tuple(h.shape) == (4, 5) and tuple(c.shape) == (4, 5)
    y1, (h1, c1) = m(x.unsqueeze(0))  # batch_first: (1, 7, 3)
    assert_close(y, y1.detach().numpy()[0])
    assert_close(h, h1.detach().numpy()[:, 0])
    g = pe.nn.GRU(3, 5)
    y, h = g(x)
    y1, h1 = g(x.unsqueeze(1))
    assert_close(y, y1.detach().numpy()[:, 0])
    assert_close(h, h1.detach().numpy()[:, 0])
    cell = pe.nn.LSTMCell(3, 5)
    h, c = cell(x[0])
    h1, c1 = cell(x[:1])
    assert tuple(h.shape) == (5,)
    assert_close(h, h1.detach().numpy()[0])


def test_lengths_outputs_zero_past_end_and_states_at_last_step():
    pe.manual_seed(0)
    m = pe.nn.LSTM(4, 6, bidirectional=True).double()
    x = pe.randn(6, 3, 4, dtype=pe.float64)
    lens = [6, 2, 4]
    y, (h, c) = m(x, lengths=pe.tensor(lens))
    yn = y.detach().numpy()
    for n, L in enumerate(lens):
        assert np.all(yn[L:, n] == 0)
        # each sequence alone, truncated, gives the same outputs and states
        y1, (h1, c1) = m(x[:L, n : n + 1])
        assert_close(yn[:L, n], y1.detach().numpy()[:, 0], pe.float64)
        assert_close(h.detach().numpy()[:, n], h1.detach().numpy()[:, 0], pe.float64)
        assert_close(c.detach().numpy()[:, n], c1.detach().numpy()[:, 0], pe.float64)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_inference_path_matches_training_path(mode):
    """no_grad keeps nothing for backward (LSTM: one step's gates only): same results."""
    pe.manual_seed(0)
    m = getattr(pe.nn, mode)(5, 8, num_layers=2, bidirectional=True, batch_first=True)
    x = pe.randn(3, 4, 5)
    y, h = m(x, lengths=[4, 1, 3])
    with pe.no_grad():
        y2, h2 = m(x, lengths=[4, 1, 3])
    assert not y2.requires_grad
    np.testing.assert_allclose(y.detach().numpy(), y2.numpy(), rtol=1e-6, atol=1e-7)
    for a, b in zip(h if mode == "LSTM" else [h], h2 if mode == "LSTM" else [h2]):
        np.testing.assert_allclose(a.detach().numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_backward_twice_with_retain_graph():
    pe.manual_seed(0)
    m = pe.nn.LSTM(3, 4)
    x = pe.randn(5, 2, 3, requires_grad=True)
    y, _ = m(x)
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-6)
    with pytest.raises(RuntimeError, match=r"^\[backward\] "):
        loss.backward()


def test_double_backward_raises():
    m = pe.nn.GRU(2, 3).double()
    x = pe.randn(3, 1, 2, dtype=pe.float64, requires_grad=True)
    y, _ = m(x)
    with pytest.raises(NotImplementedError, match=r"^\[gru\] double backward"):
        pe.autograd.grad(y.sum(), [x], create_graph=True)


def test_only_h_n_used():
    """Unused outputs get zero gradients; gradients still reach the weights and the input."""
    pe.manual_seed(0)
    m = pe.nn.LSTM(3, 4, batch_first=True).double()
    x = pe.randn(2, 5, 3, dtype=pe.float64, requires_grad=True)
    w = [p.detach().numpy() for p in m._weights()]
    _, (h, _) = m(x)
    h.sum().backward()
    dx, dh0, dc0, dw = R.rnn_vjp(
        "lstm",
        (None, np.ones((1, 2, 4)), None),
        x.detach().numpy(),
        np.zeros((1, 2, 4)),
        np.zeros((1, 2, 4)),
        w,
        1,
        False,
        True,
    )
    assert_close(x.grad, dx, pe.float64)
    assert_close(m.weight_hh_l0.grad, dw[1], pe.float64)
    assert_close(m.bias_ih_l0.grad, dw[2], pe.float64)


def test_module_parameters_and_init():
    pe.manual_seed(0)
    m = pe.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    names = dict(m.named_parameters())
    assert tuple(names["weight_ih_l0"].shape) == (80, 10)
    assert tuple(names["weight_hh_l0"].shape) == (80, 20)
    assert tuple(names["bias_ih_l0_reverse"].shape) == (80,)
    assert tuple(names["weight_ih_l1"].shape) == (80, 40)
    assert len(names) == 16
    k = 1 / np.sqrt(20)
    for p in m.parameters():
        a = p.detach().numpy()
        assert a.min() >= -k and a.max() <= k and a.std() > k / 3
    g = pe.nn.GRU(7, 5, bias=False)
    assert sorted(dict(g.named_parameters())) == ["weight_hh_l0", "weight_ih_l0"]
    assert tuple(g.weight_ih_l0.shape) == (15, 7)
    c = pe.nn.GRUCell(3, 4)
    assert tuple(c.weight_hh.shape) == (12, 4) and tuple(c.bias_ih.shape) == (12,)
    assert "LSTM(10, 20, num_layers=2, bidirectional=True)" in repr(m)


def test_dropout_between_layers_only_in_training():
    pe.manual_seed(0)
    m = pe.nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = pe.randn(3, 2, 3)
    m.eval()
    y1, _ = m(x)
    y2, _ = m(x)
    np.testing.assert_array_equal(y1.detach().numpy(), y2.detach().numpy())
    m.train()
    y3, _ = m(x)
    assert not np.allclose(y3.detach().numpy(), y1.detach().numpy())


# ----------------------------------------------------------------------------- bad calls


def _lstm(*a, **k):
    return pe.nn.LSTM(4, 5, *a, **k)


ERRORS = {
    "wrong input size": (lambda: _lstm()(pe.randn(3, 2, 6)), ValueError, r"^\[lstm\] input.size"),
    "wrong h0 shape": (
        lambda: _lstm()(pe.randn(3, 2, 4), (pe.zeros(2, 2, 5), pe.zeros(1, 2, 5))),
        ValueError,
        r"^\[lstm\] expected h_0 of shape \(1, 2, 5\)",
    ),
    "wrong c0 shape": (
        lambda: _lstm()(pe.randn(3, 2, 4), (pe.zeros(1, 2, 5), pe.zeros(1, 3, 5))),
        ValueError,
        r"^\[lstm\] expected c_0",
    ),
    "dtype mismatch input": (
        lambda: _lstm()(pe.randn(3, 2, 4, dtype=pe.float64)),
        TypeError,
        r"^\[lstm\] .*dtype",
    ),
    "dtype mismatch h0": (
        lambda: _lstm()(
            pe.randn(3, 2, 4), (pe.zeros(1, 2, 5, dtype=pe.float64), pe.zeros(1, 2, 5))
        ),
        TypeError,
        r"^\[lstm\] ",
    ),
    "int input": (lambda: _lstm()(pe.ones(3, 2, 4, dtype=pe.int64)), TypeError, r"^\[lstm\] "),
    "4-D input": (lambda: _lstm()(pe.randn(1, 3, 2, 4)), ValueError, r"^\[lstm\] "),
    "lengths too long": (
        lambda: _lstm()(pe.randn(3, 2, 4), lengths=[4, 1]),
        ValueError,
        r"^\[lstm\] lengths must lie in \[1, 3\]",
    ),
    "lengths zero": (
        lambda: _lstm()(pe.randn(3, 2, 4), lengths=[0, 1]),
        ValueError,
        r"^\[lstm\] lengths",
    ),
    "lengths count": (
        lambda: _lstm()(pe.randn(3, 2, 4), lengths=[1]),
        ValueError,
        r"^\[lstm\] lengths",
    ),
    "lengths float": (
        lambda: _lstm()(pe.randn(3, 2, 4), lengths=[1.5, 2]),
        TypeError,
        r"^\[lstm\] lengths",
    ),
    "hx not a tuple": (
        lambda: _lstm()(pe.randn(3, 2, 4), pe.zeros(1, 2, 5)),
        TypeError,
        r"^\[lstm\] hx",
    ),
    "zero steps": (lambda: _lstm()(pe.randn(0, 2, 4)), ValueError, r"^\[lstm\] "),
    "proj_size": (lambda: _lstm(proj_size=2), NotImplementedError, r"^\[LSTM\] proj_size"),
    "num_layers 0": (lambda: _lstm(num_layers=0), ValueError, r"^\[LSTM\] num_layers"),
    "dropout > 1": (lambda: _lstm(dropout=1.5), ValueError, r"^\[LSTM\] dropout"),
    "gru wrong h0": (
        lambda: pe.nn.GRU(4, 5)(pe.randn(3, 2, 4), pe.zeros(1, 1, 5)),
        ValueError,
        r"^\[gru\] expected h_0",
    ),
    "gru wrong input size": (
        lambda: pe.nn.GRU(4, 5)(pe.randn(3, 2, 3)),
        ValueError,
        r"^\[gru\] input.size",
    ),
    "cell wrong input size": (
        lambda: pe.nn.LSTMCell(4, 5)(pe.randn(2, 3)),
        ValueError,
        r"^\[lstm_cell\] ",
    ),
    "cell wrong h shape": (
        lambda: pe.nn.LSTMCell(4, 5)(pe.randn(2, 4), (pe.zeros(3, 5), pe.zeros(2, 5))),
        ValueError,
        r"^\[lstm_cell\] expected h",
    ),
    "cell dtype mismatch": (
        lambda: pe.nn.GRUCell(4, 5)(pe.randn(2, 4, dtype=pe.float64)),
        TypeError,
        r"^\[gru_cell\] ",
    ),
    "gru cell 3-D input": (
        lambda: pe.nn.GRUCell(4, 5)(pe.randn(1, 2, 4)),
        ValueError,
        r"^\[gru_cell\] ",
    ),
    # the binding checks too (direct calls of the kernel)
    "kernel w_hh shape": (
        lambda: _C.lstm_layer_forward(
            np.zeros((2, 1, 3), np.float32),
            np.zeros((8, 3), np.float32),
            np.zeros((8, 3), np.float32),
            None,
            None,
            np.zeros((1, 2), np.float32),
            np.zeros((1, 2), np.float32),
            None,
            0,
            np.zeros((1, 2), np.float32),
            np.zeros((1, 2), np.float32),
            None,
            None,
            None,
            False,
            False,
            None,
        ),
        ValueError,
        r"^\[lstm\] weight_hh",
    ),
    "kernel dtype": (
        lambda: _C.gru_layer_forward(
            np.zeros((2, 1, 3), np.float32),
            np.zeros((6, 3), np.float64),
            np.zeros((6, 2), np.float32),
            None,
            None,
            np.zeros((1, 2), np.float32),
            None,
            0,
            np.zeros((1, 2), np.float32),
            None,
            None,
            None,
            False,
            False,
            None,
        ),
        TypeError,
        r"^\[gru\] weight_ih",
    ),
    "kernel lengths": (
        lambda: _C.gru_layer_forward(
            np.zeros((2, 1, 3), np.float32),
            np.zeros((6, 3), np.float32),
            np.zeros((6, 2), np.float32),
            None,
            None,
            np.zeros((1, 2), np.float32),
            None,
            0,
            np.zeros((1, 2), np.float32),
            None,
            None,
            None,
            False,
            False,
            np.array([3]),
        ),
        ValueError,
        r"^\[gru\] lengths",
    ),
    "kernel y too narrow": (
        lambda: _C.gru_layer_forward(
            np.zeros((2, 1, 3), np.float32),
            np.zeros((6, 3), np.float32),
            np.zeros((6, 2), np.float32),
            None,
            None,
            np.zeros((1, 2), np.float32),
            np.zeros((2, 1, 3), np.float32),
            2,
            np.zeros((1, 2), np.float32),
            None,
            None,
            None,
            False,
            False,
            None,
        ),
        ValueError,
        r"^\[gru\] output",
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    call, exc, pattern = ERRORS[name]
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


# ----------------------------------------------------------------------------- torch parity


def _torch():
    return pytest.importorskip("torch")


def _load_from_torch(ours, theirs):
    sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    result = ours.load_state_dict(sd)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("bf", [False, True], ids=["tm", "bf"])
def test_torch_state_dict_parity(mode, bf):
    torch = _torch()
    torch.manual_seed(0)
    tm = getattr(torch.nn, mode)(6, 9, num_layers=2, bidirectional=True, batch_first=bf)
    pm = getattr(pe.nn, mode)(6, 9, num_layers=2, bidirectional=True, batch_first=bf)
    _load_from_torch(pm, tm)
    x = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    px = pe.tensor(x, requires_grad=True)
    tout, pout = tm(tx), pm(px)
    if mode == "LSTM":
        (ty, (th, tc)), (py, (ph, pc)) = tout, pout
        assert_close(pc, tc.detach().numpy(), rtol=1e-5, atol=1e-5)
    else:
        (ty, th), (py, ph) = tout, pout
    assert_close(py, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert_close(ph, th.detach().numpy(), rtol=1e-5, atol=1e-5)
    # gradients too
    (ty.square().sum() + th.sum()).backward()
    ((py * py).sum() + ph.sum()).backward()
    assert_close(px.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    for name, p in pm.named_parameters():
        assert_close(
            p.grad, dict(tm.named_parameters())[name].grad.numpy(), rtol=1e-4, atol=1e-4, what=name
        )


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_torch_packed_sequence_parity(mode):
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    tm = getattr(torch.nn, mode)(3, 5, bidirectional=True)
    pm = getattr(pe.nn, mode)(3, 5, bidirectional=True)
    _load_from_torch(pm, tm)
    lens = [2, 6, 4]
    x = np.random.default_rng(1).standard_normal((6, 3, 3)).astype(np.float32)
    packed = pack_padded_sequence(torch.from_numpy(x), torch.tensor(lens), enforce_sorted=False)
    tout = tm(packed)
    ty = pad_packed_sequence(tout[0], total_length=6)[0]
    pout = pm(pe.tensor(x), lengths=lens)
    assert_close(pout[0], ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    th = tout[1][0] if mode == "LSTM" else tout[1]
    ph = pout[1][0] if mode == "LSTM" else pout[1]
    assert_close(ph, th.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["LSTMCell", "GRUCell"])
def test_torch_cell_parity(mode):
    torch = _torch()
    torch.manual_seed(0)
    tm, pm = getattr(torch.nn, mode)(7, 6), getattr(pe.nn, mode)(7, 6)
    _load_from_torch(pm, tm)
    rng = np.random.default_rng(2)
    x, h, c = (rng.standard_normal(s).astype(np.float32) for s in [(3, 7), (3, 6), (3, 6)])
    if mode == "LSTMCell":
        th, tc = tm(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
        ph, pc = pm(pe.tensor(x), (pe.tensor(h), pe.tensor(c)))
        assert_close(pc, tc.detach().numpy())
    else:
        th = tm(torch.from_numpy(x), torch.from_numpy(h))
        ph = pm(pe.tensor(x), pe.tensor(h))
    assert_close(ph, th.detach().numpy())


# ----------------------------------------------------------------------------- CUDA


@pytest.fixture
def gpu():
    from pyengine.backend import cuda as pcuda

    if not pcuda.is_available():
        pytest.skip(f"no CUDA GPU: {pcuda.unavailable_reason()}")


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("lens", [None, [5, 2, 4]], ids=["full", "lengths"])
def test_cuda_layer_vs_reference(gpu, mode, dtype, lens):
    """Stacked bidirectional batch_first layer on the GPU: forward and every gradient."""
    pe.manual_seed(0)
    pm = getattr(pe.nn, mode)(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    pm = pm.double() if dtype == pe.float64 else pm
    w = [None if p is None else p.detach().numpy().astype(np.float64) for p in pm._weights()]
    pm = pm.cuda()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 5, 4)).astype(dtype)
    h0 = rng.uniform(-1, 1, (4, 3, 6)).astype(dtype)
    c0 = rng.uniform(-1, 1, (4, 3, 6)).astype(dtype)
    px = pe.tensor(x).cuda().requires_grad_()
    ph0 = pe.tensor(h0).cuda().requires_grad_()
    pc0 = pe.tensor(c0).cuda().requires_grad_()
    if mode == "LSTM":
        y, (h, c) = pm(px, (ph0, pc0), lengths=lens)
        outs = [y, h, c]
    else:
        y, h = pm(px, ph0, lengths=lens)
        outs = [y, h]
    ry, rh, rc = R.rnn(mode.lower(), x, h0, c0, w, 2, True, True, lens)
    refs = [ry, rh] + ([rc] if mode == "LSTM" else [])
    for o, r in zip(outs, refs):
        assert_close(o.cpu().detach().numpy(), r, dtype, rtol=1e-5 if dtype == pe.float32 else None)
    gs = [rng.standard_normal(r.shape) for r in refs]
    loss = sum((o * pe.tensor(g.astype(dtype)).cuda()).sum() for o, g in zip(outs, gs))
    loss.backward()
    gl = (gs[0], gs[1], gs[2] if mode == "LSTM" else None)
    dx, dh0, dc0, dw = R.rnn_vjp(mode.lower(), gl, x, h0, c0, w, 2, True, True, lens)
    tol = _grad_tol(dtype)
    kw = dict(rtol=tol.get("grad_rtol"), atol=tol.get("grad_atol"))
    assert_close(px.grad.cpu().numpy(), dx, dtype, **kw)
    assert_close(ph0.grad.cpu().numpy(), dh0, dtype, **kw)
    if mode == "LSTM":
        assert_close(pc0.grad.cpu().numpy(), dc0, dtype, **kw)
    for p, g in zip(pm._weights(), dw):
        assert_close(p.grad.cpu().numpy(), g, dtype, **kw)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_cuda_bias_grads_many_rows(gpu, mode):
    """T*N = 1200 rows: the bias gradients' column sums run in many row slices (and a part-filled
    block of 32 columns: 4H = 36, 3H = 27); every gradient against the reference."""
    T, N, I, H = 40, 30, 3, 9
    pe.manual_seed(0)
    pm = getattr(pe.nn, mode)(I, H).double()
    w = [p.detach().numpy().copy() for p in pm._weights()]
    pm = pm.cuda()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (T, N, I))
    h0, c0 = rng.uniform(-1, 1, (1, N, H)), rng.uniform(-1, 1, (1, N, H))
    px = pe.tensor(x).cuda().requires_grad_()
    ph0 = pe.tensor(h0).cuda().requires_grad_()
    pc0 = pe.tensor(c0).cuda().requires_grad_()
    y = pm(px, (ph0, pc0))[0] if mode == "LSTM" else pm(px, ph0)[0]
    gy = rng.standard_normal(y.shape)
    (y * pe.tensor(gy).cuda()).sum().backward()
    gl = (gy, np.zeros((1, N, H)), np.zeros((1, N, H)) if mode == "LSTM" else None)
    dx, dh0, _, dw = R.rnn_vjp(
        mode.lower(), gl, x, h0, c0 if mode == "LSTM" else None, w, 1, False, False, None
    )
    assert_close(px.grad.cpu().numpy(), dx, pe.float64)
    assert_close(ph0.grad.cpu().numpy(), dh0, pe.float64)
    for p, g in zip(pm._weights(), dw):
        assert_close(p.grad.cpu().numpy(), g, pe.float64)


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["LSTMCell", "GRUCell"])
def test_cuda_cell_matches_cpu(gpu, mode):
    pe.manual_seed(0)
    cell = getattr(pe.nn, mode)(5, 7)
    x = pe.randn(3, 5)
    h = pe.randn(3, 7)
    hx = (h, pe.randn(3, 7)) if mode == "LSTMCell" else h
    want = cell(x, hx)
    gcell = cell.cuda()
    ghx = tuple(t.cuda() for t in hx) if mode == "LSTMCell" else hx.cuda()
    got = gcell(x.cuda(), ghx)
    for a, b in zip(
        got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)
    ):
        assert_close(a.cpu().detach().numpy(), b.detach().numpy())
