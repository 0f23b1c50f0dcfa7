"""Interleaved timing for bandwidth-bound families (norm, softmax, activation): on a shared
machine the libraries are sampled in turn, repeat after repeat, and each reports its median, so
a burst of load from elsewhere hits all of them alike."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from . import optional_torch


def _sample(fn: Callable[[], object], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def run_case_interleaved(
    name: str, nbytes: float, impls: dict, min_time: float, repeats: int = 7
) -> dict:
    """impls: {'pyengine': fn, 'torch': fn or None, ...}; reports GB/s (nbytes / median time)
    and ratio = pyengine / the best other."""
    fns = {k: f for k, f in impls.items() if f is not None}
    inner = {}
    for lib, fn in fns.items():
        fn()  # warm-up: workspaces, caches, lazy imports
        one = max(_sample(fn, 1), 1e-7)
        inner[lib] = max(1, int(min_time / repeats / one))
    samples: dict = {lib: [] for lib in fns}
    for _ in range(repeats):
        for lib, fn in fns.items():
            samples[lib].append(_sample(fn, inner[lib]))
    row = {"case": name}
    for lib, s in samples.items():
        s.sort()
        row[lib] = nbytes / s[len(s) // 2] / 1e9
    others = [row[k] for k in fns if k != "pyengine"]
    if others:
        row["ratio"] = row["pyengine"] / max(others)
    return row


def run_elementwise(cases: list, fns: Callable, quick: bool) -> list:
    """Rows for (name, kind, shape, backward) cases of a family whose pass reads and writes
    whole arrays (norm, activation): fns(kind, shape, backward, lib, torch, rng) gives each
    library's callable; GB/s counts x read and y written (2 arrays), 5 with the backward (x and
    dy read again, dx written)."""
    rng = np.random.default_rng(0)
    torch = optional_torch()
    rows = []
    for name, kind, shape, backward in cases:
        impls = {"pyengine": fns(kind, shape, backward, "pyengine", torch, rng)}
        if torch is not None:
            impls["torch"] = fns(kind, shape, backward, "torch", torch, rng)
        nbytes = 4.0 * int(np.prod(shape)) * (5 if backward else 2)
        rows.append(run_case_interleaved(name, nbytes, impls, min_time=0.3 if quick else 1.0))
    return rows
