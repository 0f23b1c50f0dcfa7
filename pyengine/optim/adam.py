"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as torch.optim."""

from __future__ import annotations

import math
from typing import Tuple

from ..tensor import Tensor
from .optimizer import Optimizer, _check_params

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam with bias correction, optional AMSGrad and weight decay.

    t += 1;  g += weight_decay * p  (or p *= 1 - lr * weight_decay when decoupled);
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (AMSGrad: vmax = max(vmax, v), used for v)
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        name = type(self).__name__
        _check_params(
            name,
            learning_rate=(lr, lr >= 0.0),
            epsilon_value=(eps, eps >= 0.0),
            beta_parameter_at_index_0=(betas[0], 0.0 <= betas[0] < 1.0),
            beta_parameter_at_index_1=(betas[1], 0.0 <= betas[1] < 1.0),
            weight_decay_value=(weight_decay, weight_decay >= 0.0),
        )
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad = group["weight_decay"], group["amsgrad"]
            decoupled = group.get("decoupled_weight_decay", False)
            for p, g in self._grads(group):
                w = p.data
                xp = p._xp
                if group["maximize"]:
                    g = -g
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = Tensor(xp.zeros_like(w))
                    st["exp_avg_sq"] = Tensor(xp.zeros_like(w))
                    if amsgrad:
                        st["max_exp_avg_sq"] = Tensor(xp.zeros_like(w))
                st["step"] += 1
                t = st["step"]
                if wd != 0:
                    if decoupled:
                        w *= 1 - lr * wd
                    else:
                        g = g + wd * w
                m, v = st["exp_avg"].data, st["exp_avg_sq"].data
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * (g * g)
                bc1 = 1 - b1**t
                bc2_sqrt = math.sqrt(1 - b2**t)
                if amsgrad:
                    vmax = st["max_exp_avg_sq"].data
                    xp.maximum(vmax, v, out=vmax)
                    denom = xp.sqrt(vmax)
                else:
                    denom = xp.sqrt(v)
                denom /= bc2_sqrt
                denom += eps
                w -= (lr / bc1) * (m / denom)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
