"""Optimizer base class with torch.optim.Optimizer's semantics.

``param_groups`` is a list of dicts (``params`` plus hyperparameters); ``state`` maps each
parameter to its per-parameter state (Tensors such as ``exp_avg``, and an int ``step``).
``state_dict()`` packs parameters as integer indices in group order, as torch does, so a state
dict round-trips through ``load_state_dict`` onto a fresh optimizer of the same shape.

Updates run in place on the parameters' arrays (NumPy on cpu, CuPy on cuda) outside autograd:
the Parameter objects never change, only their values.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, Callable, Dict, Optional

import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor, _is_cupy, _move

__all__ = ["Optimizer"]


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def _copy_value(v):
    if isinstance(v, Tensor):
        return Tensor(v.data.copy())
    if hasattr(v, "copy") and (hasattr(v, "__array_interface__") or _is_cupy(v)):
        return v.copy()
    return copy.deepcopy(v)


class Optimizer:
    """Base class: subclasses implement ``step`` over ``self.param_groups``."""

    def __init__(self, params, defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        self.param_groups: list = []
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"[{name}] params argument given to the optimizer should be an iterable of "
                "Tensors or dicts, but got a Tensor"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                f"[{name}] optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs; use a list instead"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"[{name}] optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for g in param_groups:
            self.add_param_group(g)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for key in sorted(group):
                if key != "params":
                    s += f"\n    {key}: {group[key]}"
        return s + "\n)"

    # ---- groups
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters (a dict with 'params' and optional hyperparameters)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"[{name}] param_group must be a dict, got {type(param_group).__name__}"
            )
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"[{name}] optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs; use a list instead"
            )
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"[{name}] optimizer can only optimize Tensors, but one of the "
                    f"params is {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(f"[{name}] can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"[{name}] a parameter group contains duplicate parameters")
        group = dict(param_group)
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(
                    f"[{name}] parameter group didn't specify a value of required "
                    f"optimization parameter {key}"
                )
            group.setdefault(key, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & {id(p) for p in params}:
            raise ValueError(f"[{name}] some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients
    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    def step(self, closure: Optional[Callable[[], Any]] = None):
        raise NotImplementedError(f"[{type(self).__name__}] step is not implemented")

    def _closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grads(self, group):
        """(param, grad array) for each parameter of the group that has a gradient."""
        name = type(self).__name__
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.data
            if g.shape != p.data.shape or g.dtype != p.data.dtype or type(g) is not type(p.data):
                raise RuntimeError(
                    f"[{name}] gradient of shape {tuple(g.shape)} ({g.dtype}) does not match its "
                    f"parameter {tuple(p.shape)} ({p.dtype}) or is on another device"
                )
            yield p, g

    # ---- state dict
    def state_dict(self) -> Dict[str, Any]:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]} (torch's
        layout). Values are references, as in torch: copy before mutating."""
        mapping: Dict[int, int] = {}
        index = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                if id(p) not in mapping:
                    mapping[id(p)] = index
                    index += 1
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {mapping[id(p)]: s for p, s in self.state.items() if id(p) in mapping}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load a state dict from state_dict(); tensors are copied to each parameter's device
        and floating-point state to its dtype (as torch; 'step' is kept)."""
        name = type(self).__name__
        if (
            not isinstance(state_dict, dict)
            or "param_groups" not in state_dict
            or "state" not in state_dict
        ):
            raise ValueError(f"[{name}] state_dict must be a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"[{name}] loaded state dict has a different number of parameter groups"
            )
        for g, sg in zip(self.param_groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"[{name}] loaded state dict contains a parameter group that "
                    "doesn't match the size of optimizer's group"
                )
        id_map = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for i, p in zip(sg["params"], g["params"]):
                id_map[i] = p
        new_state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map:
                continue
            p = id_map[k]
            new_state[p] = {key: self._cast(p, key, val) for key, val in v.items()}
        self.state = new_state
        groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            groups.append(ng)
        self.param_groups = groups

    @staticmethod
    def _cast(p: Tensor, key: str, value):
        """A loaded state value for parameter p: arrays become Tensors on p's device (floating
        ones in p's dtype), never aliasing the loaded dict; 'step' becomes a Python int (a
        torch checkpoint stores it as a 0-d tensor)."""
        if isinstance(value, Tensor):
            arr = value.data
        elif isinstance(value, (np.ndarray, np.generic)) or _is_cupy(value):
            arr = value
        else:
            return _copy_value(value)
        if key == "step":
            return int(_move(np.asarray(arr) if isinstance(arr, np.generic) else arr, "cpu").item())
        arr = np.asarray(arr) if isinstance(arr, np.generic) else arr
        if arr.dtype.kind == "f" and p.is_floating_point() and arr.dtype != p.dtype:
            arr = arr.astype(p.dtype)  # a new array already
        elif _move(arr, p.device) is arr:
            arr = arr.copy()
        return Tensor(_move(arr, p.device))


def _check_params(name: str, **checks) -> None:
    """checks: label -> (value, ok); raises ValueError('[name] Invalid <label>: value')."""
    for label, (value, ok) in checks.items():
        if not ok:
            raise ValueError(f"[{name}] Invalid {label.replace('_', ' ')}: {value}")
