"""Reference optimizer updates and learning-rate schedules, float64 NumPy.

Written from the algorithms as the papers / torch.optim documentation state them, one step as a
pure function of (parameter, gradient, state) -> (parameter, state); never imports pyengine.
``trajectory(step_fn, p0, grad_fn, n, **hp)`` runs n steps with the gradient recomputed from the
current parameter.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def trajectory(step_fn: Callable, p0: np.ndarray, grad_fn: Callable, n: int, **hp) -> list:
    p = np.asarray(p0, dtype=np.float64).copy()
    state: dict = {}
    out = []
    for _ in range(n):
        p, state = step_fn(p, grad_fn(p), state, **hp)
        out.append(p.copy())
    return out


def sgd_step(
    p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
):
    # torch.optim.SGD docs: g <- -g if maximize; g <- g + wd*p; b_1 = g, b_t = mu b_{t-1} +
    # (1 - tau) g; g <- g + mu b_t (nesterov) or b_t; p <- p - lr g
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        b = g.copy() if "b" not in state else momentum * state["b"] + (1 - dampening) * g
        state = {"b": b}
        g = g + momentum * b if nesterov else b
    return p - lr * g, state


def adam_step(
    p,
    g,
    state,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    # Kingma & Ba (2015), Algorithm 1, with torch's eps placement (eps added to sqrt(v_hat))
    # and AMSGrad (Reddi et al., 2018) on the bias-corrected second moment, as torch does.
    b1, b2 = betas
    g = -g if maximize else g
    t = state.get("t", 0) + 1
    if weight_decay and decoupled:  # AdamW (Loshchilov & Hutter, 2019): p <- p (1 - lr wd)
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    m = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    vmax = np.maximum(state.get("vmax", 0.0), v) if amsgrad else v
    v_hat = vmax / (1 - b2**t)
    p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, {"t": t, "m": m, "v": v, "vmax": vmax}


def adamw_step(
    p,
    g,
    state,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=1e-2,
    amsgrad=False,
    maximize=False,
):
    return adam_step(p, g, state, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


def rmsprop_step(
    p,
    g,
    state,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    # torch.optim.RMSprop docs: v = alpha v + (1 - alpha) g^2; centered: v~ = v - (g_avg)^2
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    v = alpha * state.get("v", 0.0) + (1 - alpha) * g * g
    ga = alpha * state.get("ga", 0.0) + (1 - alpha) * g
    vt = v - ga * ga if centered else v
    step = g / (np.sqrt(vt) + eps)
    if momentum > 0:
        b = momentum * state.get("b", 0.0) + step
        p = p - lr * b
    else:
        b = None
        p = p - lr * step
    return p, {"v": v, "ga": ga, "b": b}


def adagrad_step(
    p,
    g,
    state,
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    maximize=False,
):
    # Duchi et al. (2011) with torch's learning-rate decay: lr_t = lr / (1 + (t - 1) lr_decay)
    g = -g if maximize else g
    t = state.get("t", 0) + 1
    if weight_decay:
        g = g + weight_decay * p
    s = state.get("s", initial_accumulator_value) + g * g
    p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p, {"t": t, "s": s}


# ----------------------------------------------------------------- schedules (closed forms)


def step_lr(base, epoch, step_size, gamma=0.1):
    return base * gamma ** (epoch // step_size)


def multistep_lr(base, epoch, milestones, gamma=0.1):
    return base * gamma ** sum(1 for m in milestones if m <= epoch)


def exponential_lr(base, epoch, gamma):
    return base * gamma**epoch


def cosine_lr(base, epoch, T_max, eta_min=0.0):
    # SGDR (Loshchilov & Hutter, 2017) without restarts; valid for 0 <= epoch <= T_max
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def linear_lr(base, epoch, start_factor=1 / 3, end_factor=1.0, total_iters=5):
    return base * (
        start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters
    )


def one_cycle_lr(
    step, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4, anneal="cos"
):
    """The two-phase 1cycle policy (Smith & Topin): initial -> max over pct_start*total-1
    steps, then max -> min until total-1."""
    initial = max_lr / div_factor
    low = initial / final_div_factor
    end1 = pct_start * total_steps - 1
    end2 = total_steps - 1

    def ann(a, b, pct):
        if anneal == "cos":
            return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))
        return a + (b - a) * pct

    if step <= end1:
        return ann(initial, max_lr, step / end1)
    return ann(max_lr, low, (step - end1) / (end2 - end1))
