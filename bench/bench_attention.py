"""pytest-benchmark suite for fused attention: `pytest bench/bench_attention.py --benchmark-only`.

The cases are those of `python -m pyengine bench attention` (pyengine/bench/attention.py); each
is timed for pyengine and (when installed) torch's F.scaled_dot_product_attention, forward and
forward+backward, so the two sit side by side in pytest-benchmark's table.
"""

import numpy as np
import pytest

import pyengine as pe
from pyengine.bench.attention import _impls, cases

try:
    import torch

    torch.set_num_threads(pe.get_num_threads())
except ImportError:  # pragma: no cover
    torch = None

CASES = cases(quick=False)
LIBS = ["pyengine"] + (["torch"] if torch is not None else [])


def _name(case):
    B, H, L, D, causal = case
    return f"({B},{H},{L},{D}){'-causal' if causal else ''}"


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("lib", LIBS)
def bench_attention(benchmark, case, backward, lib):
    benchmark.group = f"{'fwd+bwd' if backward else 'fwd'} {_name(case)}"
    impls = _impls(*case, backward, torch)
    benchmark(impls[lib])


def bench_attention_matches_reference():
    """Not a timing: the benchmarked call computes the right thing (one small case)."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 2, 33, 16)) for _ in range(3))
    out = pe.functional.scaled_dot_product_attention(*(pe.tensor(a) for a in (q, k, v)))
    s = q @ np.swapaxes(k, -1, -2) / 4.0
    p = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(out.numpy(), (p / p.sum(-1, keepdims=True)) @ v, rtol=1e-10)
