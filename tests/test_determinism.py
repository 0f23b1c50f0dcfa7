"""Determinism on the CPU: the same inputs and seed give bitwise identical results run after
run, and across thread counts where the algorithm allows (see docs/DESIGN.md, "Determinism").

Each case computes forward outputs and gradients (and, for the optimizer, parameters after a
few steps). Every case must be bitwise reproducible run to run at a fixed thread count. Across
thread counts (1, 2, 3) a case is bitwise identical unless THREAD_DEPENDENT names it with the
reason: there a reduction is split into per-thread partial sums whose number depends on the
thread count; the results then agree to a few ulps of the reduction, which is asserted.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F
import pyengine.nn as nn

THREADS = (1, 2, 3)


@contextmanager
def threads(n: int):
    prev = pe.get_num_threads()
    pe.set_num_threads(n)
    try:
        yield
    finally:
        pe.set_num_threads(prev)


def _inputs(seed, *shapes, dtype=np.float32, grad=True):
    rng = np.random.default_rng(seed)
    return [pe.tensor(rng.standard_normal(s).astype(dtype), requires_grad=grad) for s in shapes]


def _fwd_bwd(fn, shapes, dtype=np.float32, seed=0):
    """A case: fresh seeded inputs, forward, backward of a fixed random projection; returns the
    outputs and the input gradients as NumPy arrays."""

    def run():
        pe.manual_seed(1234)  # dropout and init draw from pyengine's generator
        xs = _inputs(seed, *shapes, dtype=dtype)
        outs = fn(*xs)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        outs = [o for o in outs if isinstance(o, pe.Tensor) and o.dtype.kind == "f"]
        rng = np.random.default_rng(99)
        loss = sum(
            (o * pe.tensor(rng.standard_normal(o.shape).astype(o.dtype))).sum() for o in outs
        )
        loss.backward()
        return [o.detach().numpy().copy() for o in outs] + [x.grad.numpy().copy() for x in xs]

    return run


def _conv1x1(w_shape):
    w = pe.tensor(np.random.default_rng(7).standard_normal(w_shape).astype(np.float32))
    return lambda x, b: F.conv2d(x, w, b)


def _lstm(mode, T, N, I, H, bi):  # noqa: E741
    G = 4 if mode == "lstm" else 3
    D = 2 if bi else 1
    shapes = [(T, N, I), (D, N, H), (D, N, H)]
    shapes += [(G * H, I), (G * H, H), (G * H,), (G * H,)] * D

    def fn(x, h0, c0, *w):
        if mode == "lstm":
            y, (h, c) = F.lstm(x, (h0, c0), [t * 0.3 for t in w], 1, bi)
            return y, h, c
        y, h = F.gru(x, h0, [t * 0.3 for t in w], 1, bi)
        return y, h + 0 * c0.sum()

    return fn, shapes


def _train(model_fn, opt_fn, x_shape, loss_fn, steps=3):
    def run():
        pe.manual_seed(0)
        model = model_fn()
        opt = opt_fn(model.parameters())
        rng = np.random.default_rng(5)
        x = pe.tensor(rng.standard_normal(x_shape).astype(np.float32))
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(model(x))
            loss.backward()
            opt.step()
        return [p.detach().numpy().copy() for p in model.parameters()]

    return run


def _mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Dropout(0.2), nn.Linear(128, 10))


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, stride=2),
        nn.Flatten(),
        nn.LayerNorm(16 * 3 * 3),
        nn.Linear(16 * 3 * 3, 10),
    )


class _Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 32, num_layers=2, bidirectional=True)
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


_CE_TARGET = np.random.default_rng(3).integers(0, 10, 32)

CASES = {
    # GEMM splits output blocks among threads, never K: every element has one summation order.
    "matmul f32": _fwd_bwd(lambda a, b: a @ b, [(300, 257), (257, 190)]),
    "matmul f64": _fwd_bwd(lambda a, b: a @ b, [(130, 67), (67, 150)], np.float64),
    "bmm small M": _fwd_bwd(lambda a, b: pe.bmm(a, b), [(3, 4, 300), (3, 300, 200)]),
    "linear": _fwd_bwd(lambda x, w, b: F.linear(x, w, b), [(64, 96), (80, 96), (80,)]),
    "conv2d batch": _fwd_bwd(
        lambda x, w, b: F.conv2d(x, w, b, padding=1), [(4, 8, 16, 16), (16, 8, 3, 3), (16,)]
    ),
    # 1x1 over a batch: with 2 threads each runs the column GEMM of its own images, with 1 or 3
    # a GEMM per image; the weight is a constant so that only forward, grad-input and the bias
    # gradient are compared (bitwise). 300 channels: two K slices, the bias added after both.
    "conv2d 1x1 deep": _fwd_bwd(_conv1x1((40, 300, 1, 1)), [(4, 300, 6, 6), (40,)]),
    "conv2d 1x1": _fwd_bwd(_conv1x1((70, 64, 1, 1)), [(4, 64, 14, 14), (70,)]),
    "conv2d one image": _fwd_bwd(
        lambda x, w: F.conv2d(x, w, stride=2, padding=1), [(1, 16, 24, 23), (24, 16, 3, 3)]
    ),
    "conv_transpose2d": _fwd_bwd(
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), [(4, 8, 9, 9), (8, 4, 4, 4)]
    ),
    "depthwise conv2d": _fwd_bwd(
        lambda x, w: F.conv2d(x, w, padding=1, groups=8), [(2, 8, 20, 20), (8, 1, 3, 3)]
    ),
    "max_pool2d": _fwd_bwd(lambda x: F.max_pool2d(x, 3, 2, 1), [(4, 8, 33, 31)]),
    "avg_pool2d": _fwd_bwd(lambda x: F.avg_pool2d(x, 3, 2, 1), [(4, 8, 33, 31)]),
    "adaptive_avg_pool2d": _fwd_bwd(lambda x: F.adaptive_avg_pool2d(x, 5), [(4, 8, 17, 19)]),
    "batch_norm NCHW": _fwd_bwd(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(8, 16, 24, 24), (16,), (16,)],
    ),
    "batch_norm NC": _fwd_bwd(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(2048, 32), (32,), (32,)],
    ),
    "batch_norm NC f64": _fwd_bwd(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(2048, 32), (32,), (32,)],
        np.float64,
    ),
    "layer_norm": _fwd_bwd(
        lambda x, w, b: F.layer_norm(x, (256,), w, b), [(512, 256), (256,), (256,)]
    ),
    "softmax": _fwd_bwd(lambda x: F.softmax(x, dim=-1), [(256, 300)]),
    "log_softmax dim 0": _fwd_bwd(lambda x: F.log_softmax(x, dim=0), [(300, 64)]),
    "cross_entropy": _fwd_bwd(
        lambda x: F.cross_entropy(x, pe.tensor(np.tile(_CE_TARGET, 32))), [(1024, 10)]
    ),
    "cross_entropy NCd": _fwd_bwd(
        lambda x: F.cross_entropy(x, pe.tensor(np.zeros((4, 100), np.int64))), [(4, 10, 100)]
    ),
    "attention": _fwd_bwd(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [(2, 4, 130, 32), (2, 4, 130, 32), (2, 4, 130, 32)],
    ),
    "attention one head": _fwd_bwd(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        [(1, 1, 200, 16), (1, 1, 300, 16), (1, 1, 300, 16)],
    ),
    "attention one head long": _fwd_bwd(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        [(1, 1, 64, 16), (1, 1, 1100, 16), (1, 1, 1100, 16)],
    ),
    "attention dropout": _fwd_bwd(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.25),
        [(2, 2, 70, 16), (2, 2, 90, 16), (2, 2, 90, 16)],
    ),
    "lstm": _fwd_bwd(*_lstm("lstm", 12, 16, 24, 48, True)),
    "gru": _fwd_bwd(*_lstm("gru", 12, 16, 24, 48, True)),
    "lstm f64": _fwd_bwd(*_lstm("lstm", 6, 5, 7, 9, False), np.float64),
    # N*H >= 2048: the time loop runs on a team (bias gradients summed per row block)
    "lstm team": _fwd_bwd(*_lstm("lstm", 5, 41, 6, 64, False)),
    "gru team": _fwd_bwd(*_lstm("gru", 5, 41, 6, 64, False)),
    "adam mlp": _train(
        _mlp,
        lambda p: pe.optim.Adam(p, lr=1e-2),
        (32, 64),
        lambda y: F.cross_entropy(y, pe.tensor(_CE_TARGET)),
    ),
    "sgd cnn": _train(
        _cnn,
        lambda p: pe.optim.SGD(p, lr=0.05, momentum=0.9),
        (8, 3, 16, 16),
        lambda y: F.cross_entropy(y, pe.tensor(_CE_TARGET[:8])),
    ),
    "adamw lstm": _train(
        _Seq, lambda p: pe.optim.AdamW(p, lr=1e-2), (10, 4, 8), lambda y: (y * y).mean()
    ),
}

# Cases whose result depends on the thread count (not on the run), with the reason.
_CONV_GW = (
    "conv grad-weight: each thread of the team sums the (image, group) items it owns into its "
    "own partial, and the partials are added in member order; with N*groups > 1 the grouping "
    "of the sum follows the thread count (csrc/cpu/conv.cpp, t_wacc)"
)
THREAD_DEPENDENT: dict = {
    "conv2d batch": _CONV_GW,
    "conv_transpose2d": _CONV_GW,
    "depthwise conv2d": _CONV_GW,
    "sgd cnn": "its conv layers' grad-weight and LayerNorm's dweight/dbias (see those cases)",
    "batch_norm NC": (
        "(N, C) batch_norm: per-thread row-block partial sums (in double) of the statistics and "
        "of the backward's reductions, added in thread order (csrc/cpu/isa/norm_impl.h); float32 "
        "inputs usually come out bitwise equal because the double partials are exact, float64 not"
    ),
    "batch_norm NC f64": "as batch_norm NC",
    "layer_norm": (
        "layer_norm backward: dweight/dbias are per-thread partial rows summed in thread order "
        "(dx and the forward are per row, bitwise)"
    ),
    "attention one head long": (
        "attention backward with batch*heads < threads: each head's key blocks are split into "
        "min(key blocks, ceil(2*threads / (batch*heads))) chunks with their own dQ partials, "
        "summed afterwards (csrc/cpu/attention.cpp); dK, dV and the forward are bitwise"
    ),
}


def _bitwise_equal(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b)
    )


@pytest.mark.parametrize("name", list(CASES))
def test_run_to_run_bitwise(name):
    for n in (1, 2):
        with threads(n):
            first, second = CASES[name](), CASES[name]()
        assert _bitwise_equal(first, second), f"{name}: two runs with {n} threads differ"


@pytest.mark.parametrize("name", list(CASES))
def test_across_thread_counts(name):
    results = {}
    for n in THREADS:
        with threads(n):
            results[n] = CASES[name]()
    base = results[1]
    for n in THREADS[1:]:
        if name not in THREAD_DEPENDENT:
            diffs = [
                float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
                for x, y in zip(base, results[n])
            ]
            assert _bitwise_equal(base, results[n]), (
                f"{name}: 1 and {n} threads differ (max abs diff per array {diffs})"
            )
        else:
            for x, y in zip(base, results[n]):
                tol = 1e-5 if x.dtype == np.float32 else 1e-12
                np.testing.assert_allclose(y, x, rtol=tol, atol=tol * max(1.0, np.abs(x).max()))


def test_thread_count_restored():
    prev = pe.get_num_threads()
    with threads(1):
        assert pe.get_num_threads() == 1
    assert pe.get_num_threads() == prev
