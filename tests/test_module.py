"""nn.Module semantics (registration, iteration, modes, state dicts, moves), the containers,
and nn.init (bounds, moments, fans, gains), checked against torch's documented behaviour."""

from __future__ import annotations

import copy
import importlib.util
import math
from collections import OrderedDict

import numpy as np
import pytest

import pyengine as pe
from pyengine import nn
from pyengine.nn import init

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


class Block(nn.Module):
    def __init__(self, n=4):
        super().__init__()
        self.weight = nn.Parameter(pe.randn(n, n))
        self.register_buffer("running", pe.zeros(n))
        self.register_buffer("scratch", pe.ones(n), persistent=False)
        self.lin = nn.Linear(n, n)

    def forward(self, x):
        return self.lin(x @ self.weight) + self.running


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()
        self.head = nn.Linear(4, 2, bias=False)
        self.plain = 3

    def forward(self, x):
        return self.head(self.b(self.a(x)))


def test_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "a.weight",
        "a.lin.weight",
        "a.lin.bias",
        "b.weight",
        "b.lin.weight",
        "b.lin.bias",
        "head.weight",
    ]
    assert [n for n, _ in net.named_buffers()] == [
        "a.running",
        "a.scratch",
        "b.running",
        "b.scratch",
    ]
    assert [n for n, _ in net.named_children()] == ["a", "b", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "a", "a.lin", "b", "b.lin", "head"]
    assert list(net.state_dict()) == [
        "a.weight",
        "a.running",
        "a.lin.weight",
        "a.lin.bias",
        "b.weight",
        "b.running",
        "b.lin.weight",
        "b.lin.bias",
        "head.weight",
    ]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert len(list(net.a.parameters(recurse=False))) == 1
    assert net.plain == 3 and "plain" not in net._parameters
    assert net.head.bias is None


def test_reassignment_rules():
    m = Block()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = pe.zeros(4, 4)
    m.weight = None
    assert "weight" in m._parameters and m.weight is None
    with pytest.raises(TypeError, match="child module 'lin'"):
        m.lin = 3
    m.running = pe.ones(4)  # buffers accept tensors
    assert m._buffers["running"] is m.running
    p = nn.Parameter(pe.zeros(2))
    m.running = p  # a Parameter moves a name from the buffers to the parameters
    assert "running" not in m._buffers and m._parameters["running"] is p
    del m.lin
    assert "lin" not in m._modules
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("forward", pe.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="register_parameter"):
        m.register_parameter("q", pe.zeros(1))


def test_module_without_init_call():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pe.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.Identity(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]


def test_train_eval_and_requires_grad():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout()))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("no")
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_zero_grad_and_apply():
    net = Net()
    net(pe.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Parameter"] * 0 + ["Linear", "Block", "Linear", "Block", "Linear", "Net"]


def test_to_double_keeps_objects_and_casts_only_floats():
    net = Net()
    net.register_buffer("count", pe.tensor(3))
    params = list(net.parameters())
    net(pe.randn(2, 4)).sum().backward()
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == pe.float64 and p.grad.dtype == pe.float64 for p in net.parameters())
    assert net.a.running.dtype == pe.float64
    assert net.count.dtype == pe.int64
    out = net(pe.randn(2, 4, dtype=pe.float64))
    assert out.dtype == pe.float64
    net.to(pe.float32)
    assert net.head.weight.dtype == pe.float32
    net.to("cpu", dtype=pe.float64)
    assert net.head.weight.dtype == pe.float64
    with pytest.raises(TypeError, match="floating-point"):
        net.to(pe.int64)


def test_state_dict_round_trip_and_sharing():
    pe.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert all(not v.requires_grad for v in sd.values())
    assert np.shares_memory(sd["a.weight"].data, a.a.weight.data)  # detached views, as torch
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=k)
        assert not np.shares_memory(v.data, w.data)  # copied, not aliased
    x = pe.randn(5, 4)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_load_state_dict_accepts_numpy_and_keeps_identity():
    net = nn.Linear(3, 2)
    w = net.weight
    net.load_state_dict(
        {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.zeros(2, np.float32)}
    )
    assert net.weight is w
    np.testing.assert_array_equal(net.weight.detach().numpy(), np.arange(6).reshape(2, 3))


def test_load_state_dict_errors():
    net = Net()
    sd = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = dict(sd)
    del bad["a.weight"]
    bad["a.extra"] = np.zeros(1, np.float32)
    bad["c.weight"] = np.zeros(1, np.float32)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Net")
    assert 'Missing key(s) in state_dict: "a.weight"' in msg
    assert '"a.extra"' in msg and '"c.weight"' in msg
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["a.weight"]
    assert sorted(res.unexpected_keys) == ["a.extra", "c.weight"]
    shape = dict(sd)
    shape["head.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(
        RuntimeError,
        match=r"size mismatch for head.weight: copying a param with "
        r"shape \(3, 4\) from checkpoint, the shape in current "
        r"model is \(2, 4\)",
    ):
        net.load_state_dict(shape, strict=False)
    dtype = dict(sd)
    dtype["head.weight"] = sd["head.weight"].astype(np.float64)
    with pytest.raises(RuntimeError, match="dtype mismatch for head.weight"):
        net.load_state_dict(dtype)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([1, 2])
    before = net.head.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError):
        net.load_state_dict({**sd, "head.weight": "nope"})
    np.testing.assert_array_equal(net.head.weight.detach().numpy(), before)


def test_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    h2 = lin.register_forward_hook(lambda m, args, out: out * 0)
    out = lin(pe.ones(1, 2))
    assert calls == ["pre"] and np.all(out.detach().numpy() == 0)
    h1.remove()
    h2.remove()
    assert np.any(lin(pe.ones(1, 2)).detach().numpy() != 0) and calls == ["pre"]


def test_sequential():
    pe.manual_seed(1)
    l1, l2 = nn.Linear(3, 4), nn.Linear(4, 2)
    seq = nn.Sequential(l1, nn.Identity(), l2)
    x = pe.randn(5, 3)
    np.testing.assert_allclose(seq(x).detach().numpy(), l2(l1(x)).detach().numpy())
    assert seq[0] is l1 and seq[-1] is l2 and len(seq) == 3
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    named = nn.Sequential(OrderedDict([("first", l1), ("second", l2)]))
    assert [n for n, _ in named.named_children()] == ["first", "second"]
    assert list(named.state_dict()) == [
        "first.weight",
        "first.bias",
        "second.weight",
        "second.bias",
    ]
    seq.append(nn.Identity())
    assert len(seq) == 4
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"] and seq[1] is l2
    with pytest.raises(IndexError):
        seq[7]


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.Identity())
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "Linear", "Linear", "Identity"]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    del ml[0]
    assert type(ml[0]).__name__ == "Linear" and len(ml[1:3]) == 2
    ml += [nn.Identity()]
    assert len(ml) == 5
    with pytest.raises(TypeError):
        ml.extend(nn.Linear(1, 1))
    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)})
    assert list(md.keys()) == ["enc", "dec"] and "enc" in md and len(md) == 2
    assert [n for n, _ in md.named_parameters()] == [
        "enc.weight",
        "enc.bias",
        "dec.weight",
        "dec.bias",
    ]
    md["act"] = nn.Identity()
    assert md.pop("act").__class__.__name__ == "Identity" and len(md) == 2


def test_parameter():
    t = pe.randn(2, 3)
    p = nn.Parameter(t)
    assert isinstance(p, pe.Tensor) and p.requires_grad and p.is_leaf
    assert np.shares_memory(p.data, t.data)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(pe.zeros(1), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating-point"):
        nn.Parameter(pe.tensor([1, 2]))
    q = nn.Parameter(pe.tensor([1, 2]), requires_grad=False)
    assert q.dtype == pe.int64
    (p * 2).sum().backward()
    c = copy.deepcopy(p)
    assert isinstance(c, nn.Parameter) and not np.shares_memory(c.data, p.data)
    np.testing.assert_array_equal(c.grad.numpy(), p.grad.numpy())


def test_deepcopy_module():
    net = Net()
    clone = copy.deepcopy(net)
    x = pe.randn(2, 4)
    np.testing.assert_array_equal(net(x).detach().numpy(), clone(x).detach().numpy())
    with pe.no_grad():
        clone.head.weight.fill_(0)
    assert np.any(net.head.weight.detach().numpy() != 0)


def test_get_submodule_and_dir():
    net = Net()
    assert net.get_submodule("a.lin") is net.a.lin
    assert net.get_parameter("b.lin.bias") is net.b.lin.bias
    with pytest.raises(AttributeError):
        net.get_submodule("a.nope")
    assert "head" in dir(net) and "running" in dir(net.a)


def test_repr_layout():
    net = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Dropout(0.1), nn.Flatten()))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): Dropout(p=0.1, inplace=False)\n"
        "    (1): Flatten(start_dim=1, end_dim=-1)\n"
        "  )\n"
        ")"
    )


@needs_torch
def test_repr_matches_torch():
    import torch

    ours = nn.Sequential(
        nn.Linear(3, 4, bias=False),
        nn.Dropout(0.2),
        nn.Flatten(0),
        nn.Identity(),
        nn.Unflatten(1, (2, 2)),
        nn.Embedding(5, 3, padding_idx=1),
        nn.MSELoss(),
        nn.BCEWithLogitsLoss(reduction="sum"),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 4, bias=False),
        torch.nn.Dropout(0.2),
        torch.nn.Flatten(0),
        torch.nn.Identity(),
        torch.nn.Unflatten(1, (2, 2)),
        torch.nn.Embedding(5, 3, padding_idx=1),
        torch.nn.MSELoss(),
        torch.nn.BCEWithLogitsLoss(reduction="sum"),
    )
    assert repr(ours) == repr(theirs)


def test_missing_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


# ----------------------------------------------------------------------------- init


@pytest.mark.parametrize(
    "nonlin, param, gain",
    [
        ("linear", None, 1.0),
        ("conv2d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5 / 3),
        ("relu", None, math.sqrt(2)),
        ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain(nonlin, param, gain):
    assert init.calculate_gain(nonlin, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def _bound_check(t, bound):
    a = t.detach().numpy()
    assert np.abs(a).max() <= bound * (1 + 1e-6)
    assert np.abs(a).max() > 0.9 * bound  # the whole range is used
    # U(-b, b): variance b^2 / 3
    assert np.var(a) == pytest.approx(bound**2 / 3, rel=0.05)


def test_uniform_inits_bounds_and_fans():
    pe.manual_seed(0)
    w = pe.empty(200, 30, 3, 3)  # fan_in = 270, fan_out = 1800
    init.xavier_uniform_(w, gain=2.0)
    _bound_check(w, 2.0 * math.sqrt(6 / (270 + 1800)))
    init.kaiming_uniform_(w, a=math.sqrt(5))  # torch's Linear/Conv default
    _bound_check(w, 1 / math.sqrt(270))
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    _bound_check(w, math.sqrt(2) * math.sqrt(3 / 1800))
    init.uniform_(w, -0.3, 0.7)
    a = w.detach().numpy()
    assert a.min() >= -0.3 and a.max() < 0.7 and a.mean() == pytest.approx(0.2, abs=0.01)


def test_normal_inits_moments():
    pe.manual_seed(0)
    w = pe.empty(300, 400)
    init.xavier_normal_(w)
    assert w.detach().numpy().std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.detach().numpy().std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    init.normal_(w, 1.5, 0.1)
    assert w.detach().numpy().mean() == pytest.approx(1.5, abs=0.002)


def test_trunc_normal():
    pe.manual_seed(0)
    w = pe.empty(400, 500, dtype=pe.float64)
    init.trunc_normal_(w, mean=0.5, std=2.0, a=-1.0, b=3.0)
    a = w.numpy()
    assert a.min() >= -1.0 and a.max() <= 3.0
    # truncated normal on [alpha, beta] in std units: mean = mu + sigma (phi(a)-phi(b)) / Z
    al, be = (-1 - 0.5) / 2, (3 - 0.5) / 2
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
    Z = Phi(be) - Phi(al)
    mean = 0.5 + 2 * (phi(al) - phi(be)) / Z
    var = 4 * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2)
    assert a.mean() == pytest.approx(mean, abs=0.01)
    assert a.var() == pytest.approx(var, rel=0.01)
    # a far tail still lands inside [a, b]
    init.trunc_normal_(w, a=5.0, b=6.0)
    assert w.numpy().min() >= 5.0 and w.numpy().max() <= 6.0 and w.numpy().mean() < 5.3


def test_inverse_normal_cdf_accuracy():
    from pyengine.nn.init import _ndtri

    p = np.concatenate(
        [np.logspace(-300, -1, 200), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-15, -1, 50)]
    )
    z = _ndtri(p)
    back = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    dens = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    dz = (back - p) / dens  # the error in z: Acklam's bound is a relative 1.15e-9
    assert np.all(np.abs(dz) <= 2e-9 * np.maximum(1, np.abs(z)))


def test_orthogonal_and_constants():
    pe.manual_seed(0)
    for shape in [(5, 5), (3, 7), (8, 2), (4, 2, 3)]:
        w = pe.empty(*shape, dtype=pe.float64)
        init.orthogonal_(w, gain=1.5)
        m = w.numpy().reshape(shape[0], -1)
        r, c = m.shape
        gram = m @ m.T if r <= c else m.T @ m
        np.testing.assert_allclose(gram, 2.25 * np.eye(min(r, c)), atol=1e-12)
    w = pe.empty(3, 4)
    assert init.zeros_(w) is w and np.all(w.numpy() == 0)
    init.ones_(w)
    assert np.all(w.numpy() == 1)
    init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    init.eye_(w)
    np.testing.assert_array_equal(w.numpy(), np.eye(3, 4))
    k = pe.empty(4, 2, 3, 3)
    init.dirac_(k, groups=2)
    x = k.numpy()
    assert x.sum() == 4 and x[0, 0, 1, 1] == 1 and x[1, 1, 1, 1] == 1 and x[2, 0, 1, 1] == 1


def test_init_is_seeded_and_works_on_parameters():
    lin = nn.Linear(4, 3)
    pe.manual_seed(7)
    init.kaiming_uniform_(lin.weight)
    a = lin.weight.detach().numpy().copy()
    pe.manual_seed(7)
    init.kaiming_uniform_(lin.weight)  # requires_grad parameter: no error (runs under no_grad)
    np.testing.assert_array_equal(a, lin.weight.detach().numpy())
    assert lin.weight.requires_grad and lin.weight.grad_fn is None
    gen = np.random.default_rng(3)
    init.normal_(lin.weight, generator=gen)
    b = lin.weight.detach().numpy().copy()
    init.normal_(lin.weight, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(b, lin.weight.detach().numpy())


def test_init_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(pe.empty(5))
    with pytest.raises(ValueError, match="fan_in, fan_out"):
        init.kaiming_normal_(pe.empty(2, 2), mode="fan_avg")
    with pytest.raises(TypeError, match=r"\[normal_\]"):
        init.normal_(pe.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"\[orthogonal_\]"):
        init.orthogonal_(pe.empty(3))
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(pe.empty(0, 3))


# ----------------------------------------------------------------------------- nn.utils


def _grads_params(seed=0):
    rng = np.random.default_rng(seed)
    ps = [nn.Parameter(pe.zeros(*s, dtype=pe.float64)) for s in [(3, 4), (5,), (2, 2, 2)]]
    gs = [rng.normal(size=p.shape) * 3 for p in ps]
    for p, g in zip(ps, gs):
        p.grad = pe.tensor(g.copy())
    return ps, gs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm(norm_type, max_norm):
    ps, gs = _grads_params()
    flat = np.concatenate([g.ravel() for g in gs])
    total = (
        np.abs(flat).max()
        if math.isinf(norm_type)
        else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    )
    got = nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    assert isinstance(got, pe.Tensor) and got.item() == pytest.approx(total, rel=1e-12)
    coef = min(1.0, max_norm / (total + 1e-6))
    for p, g in zip(ps, gs):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    if max_norm < total:
        new = nn.utils.clip_grad_norm_(ps, 1e9, norm_type).item()
        assert new == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_edge_cases():
    p = nn.Parameter(pe.zeros(3))
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no grads
    p.grad = pe.tensor([np.inf, 1.0, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    q = nn.Parameter(pe.zeros(2))
    q.grad = pe.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(q, 1.0).item() == pytest.approx(5.0)  # a single tensor
    assert q.grad.dtype == pe.float32
    np.testing.assert_allclose(q.grad.numpy(), [0.6, 0.8], rtol=1e-5)


def test_clip_grad_value():
    ps, gs = _grads_params(1)
    nn.utils.clip_grad_value_(ps, 0.7)
    for p, g in zip(ps, gs):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.7, 0.7))


@needs_torch
def test_clip_grad_norm_matches_torch():
    import torch

    ps, gs = _grads_params(2)
    tps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in gs]
    for t, g in zip(tps, gs):
        t.grad = torch.tensor(g.copy())
    a = nn.utils.clip_grad_norm_(ps, 1.0, 2.0).item()
    b = torch.nn.utils.clip_grad_norm_(tps, 1.0, 2.0).item()
    assert a == pytest.approx(b, rel=1e-12)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
