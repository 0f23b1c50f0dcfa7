"""F.linear / nn.Linear (the GEMM with its fused bias epilogue), Identity, Flatten, Unflatten,
Dropout and Embedding, against tests/reference/linear.py; torch interop when installed."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from helpers import assert_close, check_op, numeric_vjp
from reference import linear as R

import pyengine as pe
import pyengine.functional as F
from pyengine import nn

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

# (x shape, out_features): odd, prime and size-1 dims, 1-D and 3-D inputs
SHAPES = [
    ((4, 3), 5),
    ((1, 1), 1),
    ((7, 13), 11),
    ((2, 3, 5), 4),
    ((6,), 3),
    ((0, 3), 2),
    ((3, 1), 17),
    ((17, 8), 1),
]


def _lin(x, w, b):
    return F.linear(x, w, b)


def _lin_nobias(x, w):
    return F.linear(x, w)


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64])
@pytest.mark.parametrize("xshape, out", SHAPES, ids=[f"{s}->{o}" for s, o in SHAPES])
def test_linear_vs_reference(xshape, out, dtype, cpu_isa):
    n_in = xshape[-1]
    gc = math.prod(xshape) + out * n_in + out <= 400 and 0 not in xshape
    check_op(
        _lin,
        R.linear,
        R.linear_vjp,
        [xshape, (out, n_in), (out,)],
        dtype=dtype,
        gradcheck=gc and dtype == pe.float64,
    )
    check_op(
        _lin_nobias,
        R.linear,
        R.linear_vjp,
        [xshape, (out, n_in)],
        dtype=dtype,
        gradcheck=gc and dtype == pe.float64,
    )


def test_linear_reference_is_its_own_adjoint():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4)), rng.normal(size=5)
    g = rng.normal(size=(2, 3, 5))
    got = R.linear_vjp(g, x, w, b)
    for i in range(3):
        np.testing.assert_allclose(
            got[i], numeric_vjp(R.linear, [x, w, b], i, g), rtol=1e-6, atol=1e-8
        )


def test_linear_uses_fused_bias_epilogue(monkeypatch):
    from pyengine.backend import cpu

    seen = []
    real = cpu.matmul

    def spy(a, b, bias=None, act="none"):
        seen.append(bias is not None)
        return real(a, b, bias=bias, act=act)

    monkeypatch.setattr(cpu, "matmul", spy)
    x = pe.randn(4, 6)
    w, b = pe.randn(3, 6), pe.randn(3)
    y = F.linear(x, w, b)
    assert seen == [True]  # one GEMM call with the bias, no separate add
    assert_close(y, R.linear(x.numpy(), w.numpy(), b.numpy()))


def test_linear_transposed_and_strided_inputs():
    x = pe.randn(6, 4).mT  # (4, 6) non-contiguous view
    w = pe.randn(6, 3).mT  # (3, 6)
    b = pe.randn(3)
    assert_close(F.linear(x, w, b), R.linear(x.numpy(), w.numpy(), b.numpy()))
    xs = pe.randn(5, 8)[:, ::2]  # no unit stride: copied explicitly by the backend
    w2 = pe.randn(2, 4)
    assert_close(F.linear(xs, w2), R.linear(xs.numpy(), w2.numpy()))
    x3 = pe.randn(3, 4, 6).permute(1, 0, 2)  # 3-D non-contiguous leading dims
    assert_close(F.linear(x3, w, b), R.linear(x3.numpy(), w.numpy(), b.numpy()))


def test_linear_second_order_matches_composed():
    pe.manual_seed(0)
    xs = [pe.randn(3, 4, dtype=pe.float64, requires_grad=True) for _ in range(2)]
    ws = [pe.randn(2, 4, dtype=pe.float64, requires_grad=True) for _ in range(2)]
    with pe.no_grad():
        xs[1].copy_(xs[0])
        ws[1].copy_(ws[0])
    b = pe.randn(2, dtype=pe.float64)
    outs = [F.linear(xs[0], ws[0], b), xs[1] @ ws[1].mT + b]
    grads = []
    for out, x, w in zip(outs, xs, ws):
        (gx,) = pe.autograd.grad((out.tanh() ** 2).sum(), [x], create_graph=True)
        (gx * gx).sum().backward()
        grads.append((gx.detach().numpy(), x.grad.numpy(), w.grad.numpy()))
    for a, c in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "args, exc, msg",
    [
        (lambda: (pe.randn(2, 3), pe.randn(4, 5)), ValueError, "[linear] input's last dimension"),
        (lambda: (pe.randn(2, 3), pe.randn(3)), ValueError, "[linear] weight must have 2"),
        (lambda: (pe.randn(2, 3), pe.randn(4, 3), pe.randn(3)), ValueError, "[linear] bias"),
        (lambda: (pe.randn(2, 3), pe.randn(4, 3, dtype=pe.float64)), TypeError, "[linear] weight"),
        (lambda: (pe.tensor([1, 2]), pe.tensor([[1, 2]])), TypeError, "[linear] input"),
        (lambda: (np.zeros((2, 3)), pe.randn(4, 3)), TypeError, "[linear] input must be a Tensor"),
        (lambda: (pe.tensor(1.0), pe.randn(4, 1)), ValueError, "[linear] input must have"),
    ],
)
def test_linear_errors(args, exc, msg):
    with pytest.raises(exc) as e:
        F.linear(*args())
    assert str(e.value).startswith(msg)


def test_linear_module_init_and_forward():
    pe.manual_seed(0)
    lin = nn.Linear(300, 200)
    bound = 1 / math.sqrt(300)  # kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in))
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert w.shape == (200, 300) and b.shape == (200,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    x = pe.randn(5, 300)
    assert_close(lin(x), R.linear(x.numpy(), w, b))
    assert repr(lin) == "Linear(in_features=300, out_features=200, bias=True)"
    d = nn.Linear(3, 2, bias=False, dtype=pe.float64)
    assert d.bias is None and d.weight.dtype == pe.float64
    assert [n for n, _ in d.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"\[Linear\] in_features"):
        nn.Linear(-1, 2)
    with pytest.warns(UserWarning, match="zero-element"):  # as torch
        z = nn.Linear(0, 3)  # in_features 0: weight (3, 0), bias zeros, output = bias
    np.testing.assert_array_equal(z(pe.randn(2, 0)).detach().numpy(), np.zeros((2, 3)))


def test_identity_flatten_unflatten():
    x = pe.randn(2, 3, 4, 5)
    assert nn.Identity(54, foo=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20)
    y = nn.Unflatten(1, (3, 1, 4))(nn.Flatten(1, 2)(x))
    assert y.shape == (2, 3, 1, 4, 5)
    np.testing.assert_array_equal(y.numpy().reshape(x.shape), x.numpy())
    with pytest.raises(TypeError):
        nn.Unflatten(1, 3)


# ----------------------------------------------------------------------------- dropout


def test_dropout_statistics_and_scaling():
    pe.manual_seed(0)
    x = pe.ones(200, 500, requires_grad=True)
    y = F.dropout(x, p=0.3)
    a = y.detach().numpy()
    kept = a != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(a[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a)  # d/dx (x * mask/(1-p)) = mask/(1-p)


def test_dropout_modes_and_seed():
    x = pe.randn(50, 40)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((50, 40)))
    pe.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    pe.manual_seed(3)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    m = nn.Dropout(0.5)
    m.eval()
    assert m(x) is x
    m.train()
    assert (m(x).numpy() == 0).mean() == pytest.approx(0.5, abs=0.05)
    y = pe.ones(1000)
    assert F.dropout(y, 0.5, inplace=True) is y and (y.numpy() == 0).any()
    with pytest.raises(RuntimeError, match=r"\[dropout\] inplace"):
        F.dropout(pe.ones(3, requires_grad=True), 0.5, inplace=True)
    x64 = pe.randn(3, dtype=pe.float64)
    assert F.dropout(x64, 0.2).dtype == pe.float64


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(pe.ones(2), p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)


# ----------------------------------------------------------------------------- embedding


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64])
@pytest.mark.parametrize("idx_shape", [(5,), (3, 4), (1,), (2, 1, 3)])
def test_embedding_vs_reference(idx_shape, dtype):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 7, idx_shape)
    idx.reshape(-1)[0] = idx.reshape(-1)[-1]  # a repeated index: gradients must accumulate
    for pad in (None, int(idx.reshape(-1)[0])):
        check_op(
            lambda w, pad=pad: F.embedding(pe.tensor(idx), w, padding_idx=pad),
            lambda w: R.embedding(idx, w),
            lambda g, w, pad=pad: (R.embedding_vjp(g, idx, w, pad),),
            # padding_idx cuts the row's gradient on purpose: finite differences would not
            [(7, 3)],
            dtype=dtype,
            gradcheck=dtype == pe.float64 and pad is None,
        )


def test_embedding_module():
    pe.manual_seed(0)
    e = nn.Embedding(10, 4, padding_idx=2)
    w = e.weight.detach().numpy()
    np.testing.assert_array_equal(w[2], 0)
    assert np.abs(w).max() > 0.5  # N(0, 1) init
    out = e(pe.tensor([[2, 3], [3, 9]]))
    np.testing.assert_array_equal(out.detach().numpy(), w[[[2, 3], [3, 9]]])
    out.sum().backward()
    g = e.weight.grad.numpy()
    np.testing.assert_array_equal(g[2], 0)
    np.testing.assert_array_equal(g[3], 2)
    np.testing.assert_array_equal(g[9], 1)
    pre = nn.Embedding.from_pretrained(pe.randn(3, 2))
    assert not pre.weight.requires_grad
    assert repr(e) == "Embedding(10, 4, padding_idx=2)"
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == 4


def test_embedding_errors():
    w = pe.randn(5, 2)
    with pytest.raises(IndexError, match=r"\[embedding\] index out of range"):
        F.embedding(pe.tensor([0, 5]), w)
    with pytest.raises(IndexError, match=r"\[embedding\] index out of range"):
        F.embedding(pe.tensor([-1]), w)
    with pytest.raises(TypeError, match=r"\[embedding\] input must be an integer"):
        F.embedding(pe.tensor([0.0]), w)
    with pytest.raises(ValueError, match=r"\[embedding\] weight"):
        F.embedding(pe.tensor([0]), pe.randn(5))
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(3, 2, max_norm=1.0)


# ----------------------------------------------------------------------------- torch interop


@needs_torch
def test_torch_mlp_state_dict_loads_and_matches():
    import torch

    torch.manual_seed(0)
    tnet = torch.nn.Sequential(
        torch.nn.Linear(7, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 3)
    )
    tnet.eval()
    sd = {k: v.detach().numpy() for k, v in tnet.state_dict().items()}

    class Relu(nn.Module):
        def forward(self, x):
            return x.relu()

    net = nn.Sequential(nn.Linear(7, 16), Relu(), nn.Dropout(0.2), nn.Linear(16, 3))
    assert list(net.state_dict()) == list(sd)
    net.load_state_dict(sd)
    net.eval()
    x = np.random.default_rng(1).normal(size=(9, 7)).astype(np.float32)
    want = tnet(torch.from_numpy(x)).detach().numpy()
    got = net(pe.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_torch
def test_linear_gradients_match_torch():
    import torch

    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(2, 5, 6)), rng.normal(size=(4, 6)), rng.normal(size=4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    px, pw, pb = (pe.tensor(a, requires_grad=True) for a in (x, w, b))
    (torch.nn.functional.linear(tx, tw, tb) ** 2).sum().backward()
    (F.linear(px, pw, pb) ** 2).sum().backward()
    for p, t in ((px, tx), (pw, tw), (pb, tb)):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)
