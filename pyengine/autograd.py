"""Reverse-mode automatic differentiation.

A `Function` subclass defines static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``.
``Fn.apply(*args)`` runs forward with gradients off and, when any input requires grad, makes
the context the ``grad_fn`` of the outputs. The graph is a DAG of contexts ("nodes"); each node
holds edges to the nodes (or leaf tensors) that produced its inputs. Outputs are never saved in
their own node, so graphs hold no reference cycles and are freed by reference counting.

Backward functions written with Tensor operations are differentiable again: with
``create_graph=True`` they record a graph, which gives second-order gradients. All built-in
differentiable ops of the foundation are written this way; fused kernels (later) document
whether they support it.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

__all__ = [
    "Function",
    "GradcheckError",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]

# ----------------------------------------------------------------------------- grad mode

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations record a graph in this thread (True by default)."""
    return getattr(_state, "enabled", True)


def _set_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode:
    """A context manager and decorator that sets grad mode and restores it on exit."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False

    def __call__(self, fn):
        mode = self.mode

        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_enabled(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_enabled(prev)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(_GradMode):
    """Disable graph recording: ``with pyengine.no_grad(): ...`` or as a decorator."""

    mode = False


class enable_grad(_GradMode):
    """Enable graph recording inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode`` (as a function call, a context manager or a decorator)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _set_enabled(self.mode)

    def __enter__(self):
        return self


# ----------------------------------------------------------------------------- Function


class Context:
    """The node of one Function call: saved tensors, edges to inputs, output metadata."""

    __slots__ = (
        "fn",
        "needs_input_grad",
        "next_edges",
        "_saved",
        "_freed",
        "_out_meta",
        "_retained",
        "__dict__",
        "__weakref__",
    )

    def __init__(self, fn: type):
        self.fn = fn
        self.needs_input_grad: tuple = ()
        self.next_edges: list = []
        self._saved: Optional[tuple] = None
        self._freed = False
        self._out_meta: list = []
        self._retained: Optional[dict] = None

    def save_for_backward(self, *tensors) -> None:
        """Keep inputs (Tensors or None) for backward; read them back from saved_tensors."""
        self._saved = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(_FREED_MSG.format(self.name()))
        return self._saved or ()

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def _free(self) -> None:
        self._saved = None
        self.__dict__.clear()
        self._freed = True


_FREED_MSG = (
    "[backward] Trying to backward through the graph a second time ({}): the saved tensors "
    "were freed after the first backward. Pass retain_graph=True to the first backward call "
    "if you need to backward through the graph again."
)


class Function:
    """Base class of differentiable operations (PyTorch's torch.autograd.Function)."""

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Function.forward must be overridden")

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        raise NotImplementedError("Function.backward must be overridden")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from .tensor import Tensor

        ctx = Context(cls)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.needs_input_grad = needs
        if not (any(needs) and is_grad_enabled()):
            # Nothing to record: forward's inner ops see no input that requires grad.
            return cls.forward(ctx, *args, **kwargs)
        _set_enabled(False)
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _set_enabled(True)
        outputs = out if isinstance(out, tuple) else (out,)
        wrapped = []
        for i, t in enumerate(outputs):
            if isinstance(t, Tensor):
                if any(t is a for a in args):  # never hand an input back as an output
                    t = Tensor(t.data)
                if t.is_floating_point():
                    t.requires_grad = True
                    t.grad_fn = ctx
                    t._output_nr = i
                ctx._out_meta.append((t.shape, t.dtype, t.device))
            else:
                ctx._out_meta.append(None)
            wrapped.append(t)
        ctx.next_edges = [_edge_of(a) if n else None for a, n in zip(args, needs)]
        return tuple(wrapped) if isinstance(out, tuple) else wrapped[0]


def _edge_of(t):
    """Where a gradient for tensor t goes: its producing node and output slot, or the leaf."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    return (t, None)


# ----------------------------------------------------------------------------- engine


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, (tuple, list)):
        return tuple(x)
    return (x,)


def _initial_grads(tensors, grad_tensors):
    from .tensor import Tensor, ones_like

    grads = []
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError(
                "[backward] element of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(
                    "[backward] grad can be implicitly created only for scalar outputs; "
                    f"pass gradient= for an output of shape {tuple(t.shape)}"
                )
            g = ones_like(t)
        elif not isinstance(g, Tensor):
            g = Tensor(t._xp.asarray(g, dtype=t.dtype))
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"[backward] gradient has shape {tuple(g.shape)} but the output has shape "
                f"{tuple(t.shape)}"
            )
        if g.dtype != t.dtype:
            raise TypeError(f"[backward] gradient has dtype {g.dtype} but the output has {t.dtype}")
        grads.append(g)
    return grads


def _collect(roots):
    """Count, for every node reachable from roots, how many edges point at it."""
    deps: dict = {}
    seen = set()
    stack = [n for n in roots]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._freed:
            raise RuntimeError(_FREED_MSG.format(node.name()))
        for edge in node.next_edges:
            if edge is None or edge[1] is None:
                continue
            child = edge[0]
            deps[id(child)] = deps.get(id(child), 0) + 1
            stack.append(child)
    return deps


def _accumulate(buf: dict, key, g):
    prev = buf.get(key)
    buf[key] = g if prev is None else prev + g


def _run_backward(tensors, grad_tensors, retain_graph, create_graph, capture=None):
    """Propagate gradients from tensors. Leaves accumulate .grad unless capture is given, in
    which case the gradients for the captured edges are returned and no .grad is touched."""
    from .tensor import zeros

    grads = _initial_grads(tensors, grad_tensors)
    buffers: dict = {}  # id(node) -> {output_nr: grad}
    nodes: dict = {}  # id(node) -> node
    leaf_grads: dict = {}  # id(leaf) -> (leaf, grad)
    roots = []
    for t, g in zip(tensors, grads):
        if t.grad_fn is None:
            _accumulate_leaf(leaf_grads, t, g)
        else:
            node = t.grad_fn
            nodes[id(node)] = node
            _accumulate(buffers.setdefault(id(node), {}), t._output_nr, g)
            roots.append(node)
    deps = _collect(roots)
    ready = deque(n for n in {id(r): r for r in roots}.values() if deps.get(id(n), 0) == 0)
    captured: dict = {}
    prev_mode = is_grad_enabled()
    _set_enabled(create_graph)
    try:
        while ready:
            node = ready.popleft()
            buf = buffers.pop(id(node), {})
            if capture is not None:
                for nr, g in buf.items():
                    if (id(node), nr) in capture:
                        captured[(id(node), nr)] = g
            if node._retained:
                for nr, ref in node._retained.items():
                    t = ref()
                    if t is not None and nr in buf:
                        t.grad = buf[nr] if create_graph else buf[nr].detach()
            out_grads = []
            for nr, meta in enumerate(node._out_meta):
                g = buf.get(nr)
                if g is None and meta is not None:
                    g = zeros(meta[0], dtype=meta[1], device=meta[2])
                out_grads.append(g)
            in_grads = node.fn.backward(node, *out_grads)
            in_grads = _check_grads(node, _as_tuple(in_grads))
            edges = node.next_edges
            if not retain_graph:
                node._free()
            for edge, g in zip(edges, in_grads):
                if edge is None:
                    continue
                child, nr = edge
                if nr is None:  # a leaf tensor
                    if g is not None:
                        _accumulate_leaf(leaf_grads, child, g)
                    continue
                if g is not None:
                    _accumulate(buffers.setdefault(id(child), {}), nr, g)
                nodes[id(child)] = child
                deps[id(child)] -= 1
                if deps[id(child)] == 0:
                    ready.append(child)
    finally:
        _set_enabled(prev_mode)
    if capture is not None:
        for key, g in leaf_grads.items():
            captured[(key, None)] = g[1]
        return captured
    for leaf, g in leaf_grads.values():
        if not create_graph:
            g = g.detach()
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    return None


def _accumulate_leaf(leaf_grads: dict, leaf, g):
    prev = leaf_grads.get(id(leaf))
    leaf_grads[id(leaf)] = (leaf, g if prev is None else prev[1] + g)


def _check_grads(node, grads: tuple) -> tuple:
    from .tensor import Tensor

    n = len(node.next_edges)
    if len(grads) < n:
        raise RuntimeError(
            f"[{node.name()}] backward returned {len(grads)} gradients but forward had {n} inputs"
        )
    grads = grads[:n]
    for i, (edge, g) in enumerate(zip(node.next_edges, grads)):
        if edge is None or g is None:
            continue
        if not isinstance(g, Tensor):
            raise TypeError(
                f"[{node.name()}] gradient {i} must be a Tensor, got {type(g).__name__}"
            )
        target = edge[0] if edge[1] is None else None
        if target is not None and tuple(g.shape) != tuple(target.shape):
            raise RuntimeError(
                f"[{node.name()}] gradient {i} has shape {tuple(g.shape)} but the input has "
                f"shape {tuple(target.shape)}"
            )
    return grads


def backward(
    tensors,
    grad_tensors=None,
    retain_graph: Optional[bool] = None,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's .grad (torch.autograd.backward)."""
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors) or (None,) * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise ValueError("[backward] got a different number of tensors and grad_tensors")
    if retain_graph is None:
        retain_graph = create_graph
    _run_backward(tensors, grad_tensors, retain_graph, create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: Optional[bool] = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """Gradients of outputs with respect to inputs, returned rather than accumulated."""
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs) or (None,) * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    keys = []
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("[grad] one of the inputs does not require grad")
        keys.append((id(x.grad_fn), x._output_nr) if x.grad_fn is not None else (id(x), None))
    captured = _run_backward(outputs, grad_outputs, retain_graph, create_graph, set(keys))
    result = []
    for key in keys:
        g = captured.get(key)
        if g is None and not allow_unused:
            raise RuntimeError(
                "[grad] one of the inputs was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


# ----------------------------------------------------------------------------- gradcheck


class GradcheckError(RuntimeError):
    """The analytical and numerical Jacobians of gradcheck disagree."""


def _flat_outputs(out) -> list:
    from .tensor import Tensor

    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.is_floating_point()]


def gradcheck(
    fn: Callable,
    inputs: Union[Sequence, Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Compare backward's Jacobian with central finite differences (torch.autograd.gradcheck).

    Inputs that require grad should be float64; the check perturbs them in place and restores
    them. Returns True, or raises GradcheckError (or returns False if raise_exception=False).
    """
    from .tensor import Tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("[gradcheck] no input requires grad")
    for x in diff:
        if x.dtype != np.float64:
            warnings.warn(
                f"[gradcheck] an input requiring grad has dtype {x.dtype}, not float64: "
                "the check will likely fail",
                stacklevel=2,
            )
    outputs = _flat_outputs(fn(*inputs))
    if not outputs:
        raise ValueError("[gradcheck] fn returned no floating-point Tensor")
    numerical = _numerical_jacobians(fn, inputs, diff, outputs, eps)
    analytical = _analytical_jacobians(outputs, diff)
    for oi, (num_o, ana_o) in enumerate(zip(numerical, analytical)):
        for ii, (n, a) in enumerate(zip(num_o, ana_o)):
            if not np.allclose(a, n, atol=atol, rtol=rtol):
                err = np.abs(a - n).max()
                msg = (
                    f"[gradcheck] Jacobian mismatch for output {oi} with respect to input {ii}: "
                    f"max abs difference {err:.3e} (atol={atol}, rtol={rtol})"
                )
                if n.size <= 64:
                    msg += f"\nnumerical:\n{n}\nanalytical:\n{a}"
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def _numerical_jacobians(fn, inputs, diff, outputs, eps):
    """J[o][i] has shape (outputs[o].numel(), diff[i].numel())."""
    jac = [[np.zeros((o.numel(), x.numel())) for x in diff] for o in outputs]
    with no_grad():
        for ii, x in enumerate(diff):
            data = x.data
            for j, idx in enumerate(np.ndindex(*data.shape)):
                orig = data[idx].item()
                data[idx] = orig + eps
                plus = [_to_host(o) for o in _flat_outputs(fn(*inputs))]
                data[idx] = orig - eps
                minus = [_to_host(o) for o in _flat_outputs(fn(*inputs))]
                data[idx] = orig
                for oi in range(len(outputs)):
                    jac[oi][ii][:, j] = ((plus[oi] - minus[oi]) / (2 * eps)).reshape(-1)
    return jac


def _analytical_jacobians(outputs, diff):
    from .tensor import Tensor

    jac = [[np.zeros((o.numel(), x.numel())) for x in diff] for o in outputs]
    for oi, o in enumerate(outputs):
        if not o.requires_grad:
            continue
        for k in range(o.numel()):
            onehot = o._xp.zeros(o.shape, dtype=o.dtype)
            onehot.reshape(-1)[k] = 1
            gs = grad(o, diff, grad_outputs=Tensor(onehot), retain_graph=True, allow_unused=True)
            for ii, g in enumerate(gs):
                if g is not None:
                    jac[oi][ii][k, :] = _to_host(g).reshape(-1)
    return jac


def _to_host(t) -> np.ndarray:
    d = t.data
    return np.array(d.get() if hasattr(d, "get") else d, dtype=np.float64, copy=True)
