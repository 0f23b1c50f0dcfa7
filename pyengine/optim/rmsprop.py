"""RMSprop (Hinton's lecture 6e; centered form of Graves, 2013), as torch.optim.RMSprop."""

from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer, _check_params

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""g += weight_decay * p;  s = alpha s + (1 - alpha) g^2;
    centered: a = alpha a + (1 - alpha) g, denom = sqrt(s - a^2) + eps, else sqrt(s) + eps;
    momentum: b = momentum b + g / denom, p -= lr b;  else p -= lr g / denom.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        _check_params(
            "RMSprop",
            learning_rate=(lr, lr >= 0.0),
            epsilon_value=(eps, eps >= 0.0),
            momentum_value=(momentum, momentum >= 0.0),
            weight_decay_value=(weight_decay, weight_decay >= 0.0),
            alpha_value=(alpha, alpha >= 0.0),
        )
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            wd, mom, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p, g in self._grads(group):
                w = p.data
                xp = p._xp
                if group["maximize"]:
                    g = -g
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["square_avg"] = Tensor(xp.zeros_like(w))
                    if mom > 0:
                        st["momentum_buffer"] = Tensor(xp.zeros_like(w))
                    if centered:
                        st["grad_avg"] = Tensor(xp.zeros_like(w))
                st["step"] += 1
                if wd != 0:
                    g = g + wd * w
                s = st["square_avg"].data
                s *= alpha
                s += (1 - alpha) * (g * g)
                if centered:
                    a = st["grad_avg"].data
                    a *= alpha
                    a += (1 - alpha) * g
                    avg = xp.sqrt(s - a * a)
                else:
                    avg = xp.sqrt(s)
                avg += eps
                if mom > 0:
                    b = st["momentum_buffer"].data
                    b *= mom
                    b += g / avg
                    w -= lr * b
                else:
                    w -= lr * (g / avg)
        return loss
