"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (torch.optim.SGD)."""

from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer, _check_params

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, with torch's update rule:

    g = grad (negated if maximize) + weight_decay * p;
    b = g at the first step, else momentum * b + (1 - dampening) * g;
    g = g + momentum * b (nesterov) or b (momentum != 0);  p = p - lr * g.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        _check_params(
            "SGD",
            learning_rate=(lr, lr >= 0.0),
            momentum_value=(momentum, momentum >= 0.0),
            weight_decay_value=(weight_decay, weight_decay >= 0.0),
        )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p, g in self._grads(group):
                w = p.data
                d = -g if group["maximize"] else g
                if wd != 0:
                    d = d + wd * w
                if mom != 0:
                    st = self.state[p]
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = Tensor(d.copy())
                        st["momentum_buffer"] = buf
                    else:
                        buf.data *= mom
                        buf.data += (1 - damp) * d
                    d = d + mom * buf.data if nesterov else buf.data
                w -= lr * d
        return loss
