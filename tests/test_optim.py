"""Optimizers vs the NumPy update rules of tests/reference/optim.py, and LR schedules vs their
closed forms (and vs torch when it is installed)."""

from __future__ import annotations

import copy
import importlib.util
import math

import numpy as np
import pytest
from reference import optim as R

import pyengine as pe
from pyengine import nn, optim
from pyengine.optim import lr_scheduler as S

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

SHAPE = (3, 5)
STEPS = 7


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.5, 2.0, SHAPE)  # loss = sum(A p^2 / 2 + c p): grad = A p + c
    c = rng.normal(size=SHAPE)
    p0 = rng.normal(size=SHAPE)
    return A, c, p0


def _run_pe(cls, hp, p0, A, c, n=STEPS, dtype=pe.float64):
    p = nn.Parameter(pe.tensor(p0, dtype=dtype))
    At, ct = pe.tensor(A, dtype=dtype), pe.tensor(c, dtype=dtype)
    opt = cls([p], **hp)
    out = []
    for _ in range(n):
        opt.zero_grad()
        loss = (0.5 * At * p * p + ct * p).sum()
        loss.backward()
        opt.step()
        out.append(p.detach().numpy().copy())
    return out, opt, p


CASES = [
    (optim.SGD, R.sgd_step, dict(lr=0.1)),
    (optim.SGD, R.sgd_step, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, R.sgd_step, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    (optim.SGD, R.sgd_step, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    (optim.SGD, R.sgd_step, dict(lr=0.05, momentum=0.5, maximize=True)),
    (optim.Adam, R.adam_step, dict()),
    (optim.Adam, R.adam_step, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6)),
    (optim.Adam, R.adam_step, dict(lr=0.05, weight_decay=0.1)),
    (optim.Adam, R.adam_step, dict(lr=0.05, amsgrad=True)),
    (optim.Adam, R.adam_step, dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    (optim.AdamW, R.adamw_step, dict(lr=0.05)),
    (optim.AdamW, R.adamw_step, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    (optim.RMSprop, R.rmsprop_step, dict()),
    (optim.RMSprop, R.rmsprop_step, dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    (optim.RMSprop, R.rmsprop_step, dict(lr=0.01, momentum=0.9)),
    (optim.RMSprop, R.rmsprop_step, dict(lr=0.01, momentum=0.5, centered=True)),
    (optim.Adagrad, R.adagrad_step, dict()),
    (
        optim.Adagrad,
        R.adagrad_step,
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5),
    ),
]


def _id(case):
    cls, _, hp = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in hp.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_optimizer_matches_reference(case):
    cls, ref, hp = case
    A, c, p0 = _problem()
    got, _, _ = _run_pe(cls, hp, p0, A, c)
    want = R.trajectory(ref, p0, lambda p: A * p + c, STEPS, **hp)
    for t, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12, err_msg=f"step {t + 1}")
    # the parameters moved (a test that would pass with a no-op optimizer is no test)
    assert np.abs(got[-1] - p0).max() > 1e-3


@pytest.mark.parametrize("case", CASES[::3], ids=[_id(c) for c in CASES[::3]])
def test_optimizer_float32_keeps_dtype(case):
    cls, ref, hp = case
    A, c, p0 = _problem(1)
    got, opt, p = _run_pe(cls, hp, p0, A, c, dtype=pe.float32)
    want = R.trajectory(
        ref, p0.astype(np.float32).astype(np.float64), lambda q: A * q + c, STEPS, **hp
    )
    assert p.dtype == pe.float32 and got[-1].dtype == np.float32
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, pe.Tensor):
                assert v.dtype == pe.float32
    np.testing.assert_allclose(got[-1], want[-1], rtol=1e-4, atol=1e-5)


def test_adamw_differs_from_adam_l2():
    """Decoupled weight decay is not L2 regularization: the trajectories must differ."""
    A, c, p0 = _problem(2)
    hp = dict(lr=0.05, weight_decay=0.5)
    adam, _, _ = _run_pe(optim.Adam, hp, p0, A, c)
    adamw, _, _ = _run_pe(optim.AdamW, hp, p0, A, c)
    assert np.abs(adam[-1] - adamw[-1]).max() > 1e-3


def test_adam_first_step_is_lr_sign():
    """Bias correction: Adam's first step is lr * g / (|g| + eps) = lr * sign(g)."""
    A, c, p0 = _problem(3)
    got, _, _ = _run_pe(optim.Adam, dict(lr=0.01, eps=0.0), p0, A, c, n=1)
    g = A * p0 + c
    np.testing.assert_allclose(got[0], p0 - 0.01 * np.sign(g), rtol=1e-12, atol=1e-14)


def test_param_groups_and_skipped_grads():
    A, c, p0 = _problem(4)
    a = nn.Parameter(pe.tensor(p0))
    b = nn.Parameter(pe.tensor(p0))
    frozen = nn.Parameter(pe.tensor(p0))
    opt = optim.SGD([{"params": [a]}, {"params": [b, frozen], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9
    for _ in range(3):
        opt.zero_grad()
        ((a * a).sum() + (b * b).sum()).backward()
        opt.step()
    wa = R.trajectory(R.sgd_step, p0, lambda p: 2 * p, 3, lr=0.1, momentum=0.9)[-1]
    wb = R.trajectory(R.sgd_step, p0, lambda p: 2 * p, 3, lr=0.5, momentum=0.9)[-1]
    np.testing.assert_allclose(a.detach().numpy(), wa, rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), wb, rtol=1e-12)
    np.testing.assert_array_equal(frozen.detach().numpy(), p0)  # no grad: untouched
    assert frozen not in opt.state


@pytest.mark.parametrize("case", [CASES[3], CASES[9], CASES[11], CASES[15], CASES[17]], ids=_id)
def test_state_dict_resume_equals_uninterrupted(case):
    cls, _, hp = case
    A, c, p0 = _problem(5)
    full, _, _ = _run_pe(cls, hp, p0, A, c, n=6)
    first, opt, p = _run_pe(cls, hp, p0, A, c, n=3)
    sd = copy.deepcopy(opt.state_dict())
    assert sorted(sd) == ["param_groups", "state"] and sd["param_groups"][0]["params"] == [0]
    q = nn.Parameter(pe.tensor(p.detach().numpy().copy()))
    opt2 = cls([q], **{k: (v * 7 if k == "lr" else v) for k, v in hp.items()})
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    At, ct = pe.tensor(A), pe.tensor(c)
    for _ in range(3):
        opt2.zero_grad()
        (0.5 * At * q * q + ct * q).sum().backward()
        opt2.step()
    np.testing.assert_allclose(q.detach().numpy(), full[-1], rtol=1e-13, atol=1e-14)


def test_state_dict_load_casts_to_param_dtype():
    p = nn.Parameter(pe.randn(4, dtype=pe.float32))
    opt = optim.Adam([p])
    p.grad = pe.ones(4)
    opt.step()
    sd = opt.state_dict()
    sd = {
        "state": {0: {"step": 1, "exp_avg": np.ones(4), "exp_avg_sq": np.ones(4)}},
        "param_groups": sd["param_groups"],
    }
    opt.load_state_dict(sd)
    assert opt.state[p]["exp_avg"].dtype == pe.float32 and opt.state[p]["step"] == 1


def test_closure_and_zero_grad():
    p = nn.Parameter(pe.tensor([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with pe.no_grad():
        loss = opt.step(closure)  # the closure runs with grad enabled
    assert loss.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize(
    "make, msg",
    [
        (lambda p: optim.SGD([p], lr=-1), "[SGD] Invalid learning rate"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "[SGD] Nesterov"),
        (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "[SGD] Invalid momentum"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.9)), "[Adam] Invalid beta parameter at index 0"),
        (lambda p: optim.Adam([p], eps=-1), "[Adam] Invalid epsilon"),
        (lambda p: optim.AdamW([p], weight_decay=-1), "[AdamW] Invalid weight decay"),
        (lambda p: optim.RMSprop([p], alpha=-1), "[RMSprop] Invalid alpha"),
        (lambda p: optim.Adagrad([p], lr_decay=-1), "[Adagrad] Invalid lr decay"),
        (lambda p: optim.SGD([], lr=0.1), "[SGD] optimizer got an empty parameter list"),
        (lambda p: optim.SGD([p, p], lr=0.1), "duplicate parameters"),
        (
            lambda p: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1),
            "more than one parameter group",
        ),
    ],
)
def test_bad_arguments(make, msg):
    p = nn.Parameter(pe.zeros(2))
    with pytest.raises(ValueError) as e:
        make(p)
    assert msg in str(e.value)


def test_type_errors():
    p = nn.Parameter(pe.zeros(2))
    with pytest.raises(TypeError, match=r"\[SGD\].*iterable"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"\[SGD\].*set"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(ValueError, match=r"\[Adam\].*different number of parameter groups"):
        optim.Adam([p]).load_state_dict({"state": {}, "param_groups": []})


def test_repr():
    p = nn.Parameter(pe.zeros(2))
    r = repr(optim.SGD([p], lr=0.1))
    assert r.startswith("SGD (") and "Parameter Group 0" in r and "lr: 0.1" in r


# ----------------------------------------------------------------------------- schedulers


def _opt(lr=0.1, n_groups=1, cls=optim.SGD, **kw):
    groups = [{"params": [nn.Parameter(pe.zeros(1))], "lr": lr * (i + 1)} for i in range(n_groups)]
    return cls(groups, lr=lr, **kw)


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(list(sched.get_last_lr()))
        assert out[-1] == [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
    return out


SCHED_CASES = [
    (S.StepLR, dict(step_size=3, gamma=0.5), lambda b, e: R.step_lr(b, e, 3, 0.5), 12),
    (S.StepLR, dict(step_size=1), lambda b, e: R.step_lr(b, e, 1), 5),
    (
        S.MultiStepLR,
        dict(milestones=[2, 5, 5, 9], gamma=0.3),
        lambda b, e: R.multistep_lr(b, e, [2, 5, 5, 9], 0.3),
        12,
    ),
    (S.ExponentialLR, dict(gamma=0.9), lambda b, e: R.exponential_lr(b, e, 0.9), 10),
    (
        S.CosineAnnealingLR,
        dict(T_max=6, eta_min=0.001),
        lambda b, e: R.cosine_lr(b, e, 6, 0.001),
        20,
    ),
    (S.CosineAnnealingLR, dict(T_max=4), lambda b, e: R.cosine_lr(b, e, 4), 13),
    (S.LinearLR, dict(), lambda b, e: R.linear_lr(b, e), 9),
    (
        S.LinearLR,
        dict(start_factor=0.25, end_factor=0.5, total_iters=4),
        lambda b, e: R.linear_lr(b, e, 0.25, 0.5, 4),
        9,
    ),
]


@pytest.mark.parametrize(
    "cls, kw, formula, n",
    SCHED_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(SCHED_CASES)],
)
def test_scheduler_closed_form(cls, kw, formula, n):
    opt = _opt(0.1, n_groups=2)
    got = _lrs(cls(opt, **kw), opt, n)
    for e, lrs in enumerate(got):
        for base, lr in zip((0.1, 0.2), lrs):
            assert lr == pytest.approx(formula(base, e), rel=1e-12, abs=1e-15), f"epoch {e}"


@pytest.mark.parametrize(
    "cls, kw, formula, n",
    SCHED_CASES[::2],
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(SCHED_CASES[::2])],
)
def test_scheduler_step_with_epoch_uses_closed_form(cls, kw, formula, n):
    opt = _opt(0.1)
    sched = cls(opt, **kw)
    with pytest.warns(UserWarning):
        sched.step(5)
    assert sched.get_last_lr()[0] == pytest.approx(formula(0.1, 5), rel=1e-12)


def test_sequential_lr():
    opt = _opt(0.1)
    warm = S.LinearLR(opt, start_factor=0.1, total_iters=3)
    decay = S.ExponentialLR(opt, gamma=0.9)
    sched = S.SequentialLR(opt, [warm, decay], milestones=[3])
    got = [lr[0] for lr in _lrs(sched, opt, 10)]
    want = [R.linear_lr(0.1, e, 0.1, 1.0, 3) if e < 3 else 0.1 * 0.9 ** (e - 3) for e in range(10)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        S.SequentialLR(opt, [warm, decay], milestones=[3, 4])


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_lr(anneal):
    opt = _opt(0.1, cls=optim.SGD, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=20, anneal_strategy=anneal)
    got = _lrs(sched, opt, 20)
    want = [R.one_cycle_lr(s, 1.0, 20, anneal=anneal) for s in range(20)]
    np.testing.assert_allclose([g[0] for g in got], want, rtol=1e-12)
    assert max(g[0] for g in got) == pytest.approx(1.0, rel=1e-2)
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        sched.step()


def test_one_cycle_cycles_adam_beta1():
    opt = _opt(0.1, cls=optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)
    for _ in range(3):
        opt.step()
        sched.step()
    assert 0.85 < opt.param_groups[0]["betas"][0] < 0.95
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_scheduler_state_dict_round_trip():
    opt = _opt(0.1)
    s1 = S.CosineAnnealingLR(opt, T_max=10)
    _lrs(s1, opt, 4)
    sd = s1.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 4
    opt2 = _opt(0.1)
    opt2.param_groups[0]["initial_lr"] = 0.1
    s2 = S.CosineAnnealingLR(opt2, T_max=10, last_epoch=3)
    s2.load_state_dict(sd)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    a = _lrs(s1, opt, 5)
    b = _lrs(s2, opt2, 5)
    assert a == b


def test_resume_without_initial_lr_raises():
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), step_size=2, last_epoch=3)


@needs_torch
@pytest.mark.parametrize(
    "name, kw, n",
    [
        ("StepLR", dict(step_size=3, gamma=0.5), 12),
        ("MultiStepLR", dict(milestones=[2, 5, 5, 8]), 12),
        ("ExponentialLR", dict(gamma=0.9), 10),
        ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01), 25),
        ("LinearLR", dict(start_factor=0.2, total_iters=4), 10),
        ("OneCycleLR", dict(max_lr=1.0, total_steps=20), 20),
        (
            "OneCycleLR",
            dict(max_lr=1.0, total_steps=30, three_phase=True, anneal_strategy="linear"),
            30,
        ),
    ],
)
def test_scheduler_matches_torch(name, kw, n):
    import torch

    opt = _opt(0.1, momentum=0.9)
    tp = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    ours = getattr(S, name)(opt, **kw)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for e in range(n):
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-12), e
        assert opt.param_groups[0]["momentum"] == pytest.approx(topt.param_groups[0]["momentum"])
        opt.step()
        topt.step()
        ours.step()
        theirs.step()


@needs_torch
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_optimizer_matches_torch(case):
    import torch

    cls, _, hp = case
    A, c, p0 = _problem(6)
    got, _, _ = _run_pe(cls, hp, p0, A, c)
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = getattr(torch.optim, cls.__name__)([tp], **hp)
    At, ct = torch.tensor(A), torch.tensor(c)
    for t in range(STEPS):
        topt.zero_grad()
        (0.5 * At * tp * tp + ct * tp).sum().backward()
        topt.step()
        np.testing.assert_allclose(got[t], tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_math_sanity_of_reference():
    """The reference's closed forms at their anchor points (guards the guard)."""
    assert R.cosine_lr(1.0, 0, 10) == 1.0 and R.cosine_lr(1.0, 10, 10) == pytest.approx(0.0)
    assert R.one_cycle_lr(0, 1.0, 100) == pytest.approx(1 / 25)
    assert R.one_cycle_lr(99, 1.0, 100) == pytest.approx(1 / 25 / 1e4)
    assert math.isclose(R.linear_lr(1.0, 5), 1.0)


@needs_torch
@pytest.mark.parametrize(
    "name, hp",
    [
        ("Adam", dict(lr=0.1, amsgrad=True)),
        ("SGD", dict(lr=0.1, momentum=0.9)),
        ("RMSprop", dict(lr=0.01, centered=True)),
    ],
)
def test_torch_optimizer_state_dict_resumes(name, hp):
    """A torch optimizer's state dict, tensors converted to NumPy, resumes here exactly."""
    import torch

    tp = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    topt = getattr(torch.optim, name)([tp], **hp)

    def tstep():
        topt.zero_grad()
        (tp**2).sum().backward()
        topt.step()

    for _ in range(3):
        tstep()
    sd = topt.state_dict()
    state = {
        k: {kk: vv.numpy() if hasattr(vv, "numpy") else vv for kk, vv in v.items()}
        for k, v in sd["state"].items()
    }
    p = nn.Parameter(pe.tensor(tp.detach().numpy().copy()))
    opt = getattr(optim, name)([p], **hp)
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    for _ in range(3):
        tstep()
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-13, atol=1e-15)
