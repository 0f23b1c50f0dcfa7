"""Adagrad (Duchi, Hazan & Singer, 2011), as torch.optim.Adagrad."""

from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer, _check_params

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""t += 1;  g += weight_decay * p;  clr = lr / (1 + (t - 1) lr_decay);
    s += g^2;  p -= clr g / (sqrt(s) + eps);  s starts at initial_accumulator_value.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        _check_params(
            "Adagrad",
            learning_rate=(lr, lr >= 0.0),
            lr_decay_value=(lr_decay, lr_decay >= 0.0),
            weight_decay_value=(weight_decay, weight_decay >= 0.0),
            initial_accumulator_value=(initial_accumulator_value, initial_accumulator_value >= 0.0),
            epsilon_value=(eps, eps >= 0.0),
        )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group) -> None:
        st = self.state[p]
        if not st:
            st["step"] = 0
            st["sum"] = Tensor(p._xp.full_like(p.data, group["initial_accumulator_value"]))

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, wd = (
                group["lr"],
                group["lr_decay"],
                group["eps"],
                group["weight_decay"],
            )
            for p, g in self._grads(group):
                w = p.data
                xp = p._xp
                if group["maximize"]:
                    g = -g
                self._init_state(p, group)
                st = self.state[p]
                st["step"] += 1
                if wd != 0:
                    g = g + wd * w
                clr = lr / (1 + (st["step"] - 1) * lr_decay)
                s = st["sum"].data
                s += g * g
                std = xp.sqrt(s)
                std += eps
                w -= clr * (g / std)
        return loss
